package whip

import (
	"math/rand/v2"
	"testing"

	"github.com/pion/transport/v4/replaydetector"

	"github.com/rtcrec/recorder/recorder/conference"
)

// TestReplayRing_SameAsSRTPs: over random packet indexes (in order, lost,
// reordered within and beyond the window, replayed, jumps forward and back,
// across a ROC step), replayRing decides every packet as srtp's own detector
// (replaydetector.New with the SRTP index's limit) does: the same
// acceptance and the same "newest" answer.
func TestReplayRing_SameAsSRTPs(t *testing.T) {
	const maxIndex = 1<<48 - 1
	for _, seed := range []uint64{1, 2, 3} {
		const window = replayWindow
		rng := rand.New(rand.NewPCG(seed, window))
		want := replaydetector.New(uint(window), maxIndex).(replaydetector.CheckAccepter)
		got := newReplayRing(maxIndex)
		idx := uint64(65000) // near a ROC step
		var seen []uint64
		for i := range 200000 {
			seq := idx
			switch r := rng.IntN(100); {
			case r < 70:
				idx++
				seq = idx
			case r < 80 && len(seen) > 0: // a replay
				seq = seen[rng.IntN(len(seen))]
			case r < 90: // reordered: behind the newest, maybe beyond the window
				seq = idx - min(idx, uint64(rng.IntN(int(2*window))))
			case r < 95: // a loss or a jump forward
				idx += uint64(rng.IntN(int(2 * window)))
				seq = idx
			case r < 97:
				seq = uint64(rng.IntN(5)) // the first indexes (0: srtp's "newest" quirk)
			default:
				seq = maxIndex + 1 - uint64(rng.IntN(2)) // at and past the limit
			}
			tw, tg := want.CheckSeq(seq), got.CheckSeq(seq)
			if tw.Passed() != tg.Passed() {
				t.Fatalf("seed %d, packet %d (index %d): accepted %v, srtp's %v", seed, i, seq, tg.Passed(), tw.Passed())
			}
			if rng.IntN(20) == 0 {
				continue // checked, not accepted (it failed authentication)
			}
			if lw, lg := want.Accept(tw), got.Accept(tg); lw != lg {
				t.Fatalf("seed %d, packet %d (index %d): newest %v, srtp's %v", seed, i, seq, lg, lw)
			}
			if tw.Passed() && len(seen) < 1000 {
				seen = append(seen, seq)
			} else if tw.Passed() {
				seen[rng.IntN(len(seen))] = seq
			}
		}
	}
}

// TestReplayRing_ZeroAllocs: checking and accepting a packet allocates
// nothing.
func TestReplayRing_ZeroAllocs(t *testing.T) {
	r := newReplayRing(1<<48 - 1)
	seq := uint64(1)
	if n := testing.AllocsPerRun(1000, func() {
		r.Accept(r.CheckSeq(seq))
		seq++
	}); n != 0 {
		t.Errorf("%v allocations per packet, want 0", n)
	}
}

// BenchmarkReplay compares srtp's detector with replayRing for packets in
// order (conference.SRTPReplayWindow).
func BenchmarkReplay(b *testing.B) {
	for _, tc := range []struct {
		name string
		d    replaydetector.CheckAccepter
	}{
		{"srtp", replaydetector.New(conference.SRTPReplayWindow, 1<<48-1).(replaydetector.CheckAccepter)},
		{"ring", newReplayRing(1<<48 - 1)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for i := range b.N {
				tc.d.Accept(tc.d.CheckSeq(uint64(i + 1)))
			}
		})
	}
}
