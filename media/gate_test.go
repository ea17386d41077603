package media

import (
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// TestMixer_DoesNotWaitForAGatedInput: while a participant is blacked out
// (or the recording paused with silence) its track's gate drops every
// packet, and the mixer must not wait the whole budget for its input before
// each frame (the mix on disk lagged 5 s, and every other track's ring held
// 5 s). The recorder tells the input so (MixInput.Gate, at the first packet
// the gate drops, and GateEnds at the resume); the mix keeps everything of
// both tracks up to the cut and from the resume, to the sample, also when
// the gated track's audio after the resume is read 1.5 s late (a reader
// that fell behind): the mixer waits for it again from the resume on.
func TestMixer_DoesNotWaitForAGatedInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		late time.Duration // how late the gated track's packets after the resume are read
	}{
		{"resumes in step", 0},
		{"resumes read late", 1500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := &captureSink{}
			m, c := newVirtualMixer(MixConfig{SampleRate: 8000}, sink)
			t0 := c.t
			inA, inB := m.AddInput("a", InputOptions{}), m.AddInput("b", InputOptions{})
			a, err := NewAudioPipeline(AudioPipelineConfig{Codec: CodecPCMU, Input: inA})
			if err != nil {
				t.Fatal(err)
			}
			b, err := NewAudioPipeline(AudioPipelineConfig{Codec: CodecPCMU, Input: inB})
			if err != nil {
				t.Fatal(err)
			}
			const (
				packets   = 400 // 8 s of each track
				gateFrom  = 100 // b's packets [2 s, 4 s) are dropped by its gate
				gateUntil = 200
			)
			pa, pb := slices.Repeat([]byte{0x90}, 160), slices.Repeat([]byte{0xa0}, 160)
			pkt := func(ssrc uint32, i int, payload []byte) *rtp.Packet {
				return &rtp.Packet{Header: rtp.Header{SSRC: ssrc, SequenceNumber: uint16(i), Timestamp: uint32(160 * i)}, Payload: payload}
			}
			lateTicks := int(tc.late / (20 * time.Millisecond))
			nextB, gated := 0, false
			maxLag, ringCap := time.Duration(0), 0
			for k := 0; k < packets+lateTicks; k++ {
				at := time.Duration(k) * 20 * time.Millisecond
				c.t = t0.Add(at)
				if k < packets {
					if err := a.WriteRTP(pkt(1, k, pa)); err != nil {
						t.Fatal(err)
					}
				}
				if k == gateUntil {
					inB.GateEnds(uint64(gateUntil * 160)) // the resume request: audio from 4 s on passes
				}
				// b's packet i is read at i·20 ms, or, from the resume on,
				// tc.late after that.
				for nextB < packets && (nextB < gateUntil && nextB <= k || nextB >= gateUntil && nextB+lateTicks <= k) {
					i := nextB
					nextB++
					switch {
					case i >= gateFrom && i < gateUntil: // the gate drops it
						if !gated {
							gated = true
							b.Pause()
							inB.Gate(uint64(i * 160))
						}
					case gated: // the first packet after the resume
						gated = false
						inB.Ungate()
						b.Resync()
						fallthrough
					default:
						if err := b.WriteRTP(pkt(2, i, pb)); err != nil {
							t.Fatal(err)
						}
					}
				}
				if err := m.Step(); err != nil {
					t.Fatal(err)
				}
				if at >= 2600*time.Millisecond && at < 4*time.Second { // b gated, a in step
					maxLag = max(maxLag, m.Duration(m.Now()-m.Written()))
					ringCap = max(ringCap, inA.Ring().Cap())
				}
			}
			c.t = t0.Add(time.Duration(packets+lateTicks) * 20 * time.Millisecond)
			a.Close()
			b.Close()
			if err := m.Finish(m.Now()); err != nil {
				t.Fatal(err)
			}
			// The mixer stays its join wait (and a frame) behind, not the budget.
			if limit := m.Duration(m.joinWait) + 40*time.Millisecond; maxLag > limit {
				t.Errorf("while b was gated the mix was written up to %v behind now; want at most %v (the budget is %v)", maxLag, limit, m.Config().Latency)
			}
			if first := int(8000 * initialRingSeconds); ringCap > first {
				t.Errorf("a's ring grew to %d samples while b was gated; want its first size (%d)", ringCap, first)
			}
			for _, p := range []*AudioPipeline{a, b} {
				if s := p.Stats(); s.Late != 0 || s.Lost != 0 {
					t.Errorf("pipeline stats %+v: want nothing late or lost", s)
				}
			}
			va, vb := g711.ulaw[0x90], g711.ulaw[0xa0]
			if len(sink.pcm) < packets*160 {
				t.Fatalf("mix of %d samples, want at least %d", len(sink.pcm), packets*160)
			}
			bad := 0
			for i, x := range sink.pcm[:packets*160] {
				want := va
				if i < gateFrom*160 || i >= gateUntil*160 {
					want += vb
				}
				if x != want {
					bad++
					if bad <= 5 {
						t.Errorf("mix sample %d (%.4f s): %d, want %d", i, float64(i)/8000, x, want)
					}
				}
			}
			if bad > 0 {
				t.Errorf("%d samples of the mix differ from the tracks", bad)
			}
		})
	}
}
