package whip

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/transport/v4/packetio"
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

// TestReplayBuffer_SameAsSRTPs: Pion's path with srtp's replay detector off
// and the stream's buffer deciding (replayBuffers) hands over exactly the
// packets that srtp with its own detector (the window of
// conference.SRTPReplayWindow) lets through. A sender's context encrypts
// 300 000 packets, its sequence numbers wrapping four times, with jumps
// (losses); they are delivered in order, lost, reordered within and beyond
// the window (and beyond half the sequence space: another rollover
// counter's, which does not authenticate), replayed, and forged; each
// delivery goes to both receivers, and both hand over the same packets.
func TestReplayBuffer_SameAsSRTPs(t *testing.T) {
	const ssrc = 99
	key, salt := bytes.Repeat([]byte{7}, 16), bytes.Repeat([]byte{9}, 12)
	profile := srtp.ProtectionProfileAeadAes128Gcm
	for _, seed := range []uint64{1, 2} {
		rng := rand.New(rand.NewPCG(seed, 18))
		sender, err := srtp.CreateContext(key, salt, profile)
		if err != nil {
			t.Fatal(err)
		}
		withDetector, err := srtp.CreateContext(key, salt, profile, srtp.SRTPReplayProtection(conference.SRTPReplayWindow))
		if err != nil {
			t.Fatal(err)
		}
		without, err := srtp.CreateContext(key, salt, profile, srtp.SRTPNoReplayProtection())
		if err != nil {
			t.Fatal(err)
		}
		bufs := &conference.PushBuffers{}
		b := replayBuffers(bufs, nil)(packetio.RTPBufferPacket, ssrc)
		handed := -1
		read := make([]byte, 1500)
		bufs.RTP(ssrc).Push(func() bool {
			n, err := bufs.RTP(ssrc).Read(read)
			if err != nil || n < 4 {
				t.Fatalf("read back: %v", err)
			}
			handed = int(binary.BigEndian.Uint16(read[2:4]))
			return true
		}, func() {})

		// The sender's packets, in its order: sequence numbers from near
		// a wrap, with jumps forward of up to 2000.
		var sent [][]byte
		seq := uint16(60000)
		for len(sent) < 300000 {
			if rng.IntN(100) == 0 {
				seq += uint16(rng.IntN(2000))
			}
			p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: uint32(len(sent)) * 960, SSRC: ssrc},
				Payload: []byte{byte(len(sent)), 1, 2, 3}}
			raw, err := p.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			enc, err := sender.EncryptRTP(nil, raw, nil)
			if err != nil {
				t.Fatal(err)
			}
			sent = append(sent, enc)
			seq++
		}
		deliver := func(i int, pkt []byte) {
			t.Helper()
			_, errA := withDetector.DecryptRTP(nil, pkt, nil)
			handed = -1
			plain, errB := without.DecryptRTP(nil, pkt, nil)
			if errB == nil {
				if _, err := b.Write(plain); err != nil {
					t.Fatal(err)
				}
			}
			gotB := errB == nil && handed >= 0
			if gotA := errA == nil; gotA != gotB {
				t.Fatalf("seed %d, delivery %d (sequence number %d): srtp's detector hands it over %v (%v), the buffer's %v",
					seed, i, binary.BigEndian.Uint16(pkt[2:4]), gotA, errA, gotB)
			}
		}
		next, counts := 0, map[string]int{}
		for i := 0; next < len(sent); i++ {
			switch r := rng.IntN(1000); {
			case r < 800: // in order
				deliver(i, sent[next])
				next++
				counts["in order"]++
			case r < 850: // lost
				next++
			case r < 900 && next > 0: // a replay of a recent one
				deliver(i, sent[next-1-rng.IntN(min(next, 5000))])
				counts["replayed"]++
			case r < 950 && next > 0: // reordered: an earlier one, maybe never delivered, maybe beyond the window
				deliver(i, sent[next-1-rng.IntN(min(next, 3*conference.SRTPReplayWindow))])
				counts["reordered"]++
			case r < 955 && next > 40000: // beyond half the sequence space
				deliver(i, sent[next-40000+rng.IntN(1000)])
				counts["far back"]++
			case r < 960 && next > 0: // forged: one bit flipped
				f := bytes.Clone(sent[next-1-rng.IntN(min(next, 100))])
				f[len(f)-1-rng.IntN(20)] ^= 1 << rng.IntN(8)
				deliver(i, f)
				counts["forged"]++
			case r < 970 && next+100 < len(sent): // ahead: the later ones come first
				for k := 5; k >= 0; k-- {
					deliver(i, sent[next+k])
				}
				next += 6
				counts["ahead"]++
			}
		}
		t.Logf("seed %d: deliveries %v", seed, counts)
	}
}

// TestReplayBuffer_WriteAllocatesNothing: the buffer's check takes no lock
// and allocates nothing per packet.
func TestReplayBuffer_WriteAllocatesNothing(t *testing.T) {
	bufs := &conference.PushBuffers{}
	b := replayBuffers(bufs, nil)(packetio.RTPBufferPacket, 5)
	read := make([]byte, 1500)
	bufs.RTP(5).Push(func() bool { _, err := bufs.RTP(5).Read(read); return err == nil }, func() {})
	pkt := make([]byte, 100)
	seq := uint16(0)
	if n := testing.AllocsPerRun(1000, func() {
		seq++
		binary.BigEndian.PutUint16(pkt[2:4], seq)
		_, _ = b.Write(pkt)
	}); n != 0 {
		t.Errorf("%.1f allocations per packet, want 0", n)
	}
}

// BenchmarkSRTPDecrypt: Pion's path's SRTP per packet in order
// (AEAD_AES_128_GCM, 100 bytes of payload): srtp with its detector of
// conference.SRTPReplayWindow packets, against srtp without one and the
// stream's buffer deciding (replayBuffer, handing over to a reader that
// discards).
func BenchmarkSRTPDecrypt(b *testing.B) {
	const ssrc = 5
	key, salt := bytes.Repeat([]byte{7}, 16), bytes.Repeat([]byte{9}, 12)
	profile := srtp.ProtectionProfileAeadAes128Gcm
	sender, err := srtp.CreateContext(key, salt, profile)
	if err != nil {
		b.Fatal(err)
	}
	pkts := encrypted(b, sender, ssrc, 1<<16-1)
	for _, tc := range []struct {
		name string
		opt  srtp.ContextOption
		buf  bool
	}{
		{"srtp-detector", srtp.SRTPReplayProtection(conference.SRTPReplayWindow), false},
		{"buffer-ring", srtp.SRTPNoReplayProtection(), true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			read := make([]byte, 1500)
			var w io.Writer
			fresh := func() {
				bufs := &conference.PushBuffers{}
				w = replayBuffers(bufs, nil)(packetio.RTPBufferPacket, ssrc)
				bufs.RTP(ssrc).Push(func() bool { _, err := bufs.RTP(ssrc).Read(read); return err == nil }, func() {})
			}
			var ctx *srtp.Context
			var hdr rtp.Header
			plain := make([]byte, 1500)
			i := len(pkts)
			b.ReportAllocs()
			for b.Loop() {
				if i == len(pkts) { // the sequence numbers' end: a fresh receiver
					b.StopTimer()
					if ctx, err = srtp.CreateContext(key, salt, profile, tc.opt); err != nil {
						b.Fatal(err)
					}
					fresh()
					i = 0
					b.StartTimer()
				}
				p, err := ctx.DecryptRTP(plain, pkts[i], &hdr)
				if err != nil {
					b.Fatal(err)
				}
				if tc.buf {
					_, _ = w.Write(p)
				}
				i++
			}
		})
	}
}
