package reorder

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// TestBuffer_ReleasesItsWindowWhenQuiet: an audio track's window (256
// slots, 40 KiB of payload: 49 KiB) is allocated when a packet must be held
// and released once 256 packets in a row passed on in order after it; a
// lost packet kept it for the rest of the recording before. Heap of 50
// buffers, each after one reordered pair and then the packets in order.
func TestBuffer_ReleasesItsWindowWhenQuiet(t *testing.T) {
	const n = 50
	cfg := Config{Budget: 5 * time.Second, Slots: 256, Bytes: 40 << 10}
	heap := func() int64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	bufs := make([]*Buffer, n)
	for i := range bufs {
		bufs[i] = New(&nullSink{}, cfg)
	}
	base := heap()
	feed := func(from, to uint16) {
		for s := from; s != to; s++ {
			for _, b := range bufs {
				b.Push(pkt(s, 80), t0.Add(time.Duration(s)*20*time.Millisecond))
			}
		}
	}
	feed(0, 10)
	for _, b := range bufs { // 11 before 10
		b.Push(pkt(11, 80), t0.Add(200*time.Millisecond))
		b.Push(pkt(10, 80), t0.Add(210*time.Millisecond))
	}
	held := (heap() - base) / n
	feed(12, 12+254) // 10, 11 (drained behind it) and 254: 255 in order after 11 was held
	still := (heap() - base) / n
	feed(12+254, 12+255)
	after := (heap() - base) / n
	runtime.KeepAlive(bufs)
	t.Logf("per buffer: %d bytes with its window (Memory %d), %d after 255 packets passed on in order, %d after 256", held, bufs[0].Memory(), still, after)
	if w := int64(bufs[0].Memory()) * 9 / 10; held < w || still < w {
		t.Errorf("the window is not there while it may be needed: %d, %d bytes", held, still)
	}
	if after > 1<<10 {
		t.Errorf("after 256 packets passed on in order a buffer holds %d bytes, want its window released", after)
	}
	// A packet held again allocates it again.
	for _, b := range bufs {
		b.Push(pkt(12+256, 80), t0.Add(6*time.Second)) // 12+255 missing
	}
	if again := (heap() - base) / n; again < int64(bufs[0].Memory())*9/10 {
		t.Errorf("a packet held after the release: %d bytes per buffer", again)
	}
}

// TestBuffer_ReleaseChangesNothing: a buffer that releases its window and one
// that keeps it pass on the same packets in the same order and count the
// same, over random arrivals: runs in order longer and shorter than the
// window, swaps, losses (never coming, or coming late, also after a pause
// that gave up on them at once), duplicates up to
// 4000 packets back, bursts held past the budget, new SSRCs and restarts.
func TestBuffer_ReleaseChangesNothing(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 7))
		kept, freed := &capture{t: t}, &capture{t: t}
		a, b := New(kept, Config{Slots: 256, Bytes: 40 << 10}), New(freed, Config{Slots: 256, Bytes: 40 << 10})
		a.keep = true
		seq, ssrc, ms := uint16(r.Uint32()), uint32(1), 0
		var recent []uint16
		push := func(p *rtp.Packet) {
			now := t0.Add(time.Duration(ms) * time.Millisecond)
			p2 := *p
			a.Push(p, now)
			b.Push(&p2, now)
		}
		send := func(s uint16) {
			p := pkt(s, 20+int(s)%100)
			p.SSRC = ssrc
			push(p)
			recent = append(recent, s)
		}
		releases := 0
		for range 400 {
			switch k := r.IntN(20); {
			case k < 8: // a run in order
				for range 1 + r.IntN(600) {
					send(seq)
					seq++
					ms += 20
				}
			case k < 11: // a swap
				send(seq + 1)
				send(seq)
				seq += 2
				ms += 40
			case k < 13: // a loss
				seq++
			case k < 15: // a duplicate, up to 4000 back
				if len(recent) > 0 {
					send(recent[len(recent)-1-r.IntN(min(len(recent), 4000))])
				}
			case k < 17: // a late packet: lost, then sent after the budget
				lost := seq
				seq++
				for range 300 {
					send(seq)
					seq++
					ms += 20
				}
				send(lost)
			case k < 18: // a burst held in the network past the budget
				burst := seq
				seq += 40
				for range 280 {
					send(seq)
					seq++
					ms += 20
				}
				for s := burst; s != burst+40; s++ {
					send(s)
				}
			case k < 19 && r.IntN(2) == 0: // a loss before a pause (given up on at the next packet), sent again later
				lost := seq
				send(seq + 1)
				seq += 2
				ms += 6000
				for range 100 + r.IntN(200) {
					send(seq)
					seq++
					ms += 20
				}
				send(lost)
			case k < 19: // a restart of the numbering
				seq -= uint16(3001 + r.IntN(20000))
			default:
				ssrc++
			}
			if b.freed {
				releases++
			}
		}
		a.Flush()
		b.Flush()
		if !slices.Equal(kept.seqs, freed.seqs) || !slices.Equal(kept.tss, freed.tss) {
			t.Fatalf("seed %d: passed on %d packets, releasing %d (first difference at %d)", seed, len(kept.seqs), len(freed.seqs), firstDiff(kept.seqs, freed.seqs))
		}
		if a.Stats() != b.Stats() {
			t.Fatalf("seed %d: stats %v, releasing %v", seed, a.Stats(), b.Stats())
		}
		if releases == 0 {
			t.Fatalf("seed %d: the window was never released", seed)
		}
		if seed == 0 {
			t.Logf("seed 0: %d packets passed on, %v; released at %d of 400 steps' ends", len(kept.seqs), a.Stats(), releases)
		}
	}
}

func firstDiff(a, b []uint16) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
