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
					if gate(b, inB, i, gateFrom, gateUntil, &gated) {
						continue
					}
					if err := b.WriteRTP(pkt(2, i, pb)); err != nil {
						t.Fatal(err)
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

// gate plays the recorder's gate for packet i (20 ms) of a track whose
// packets [from, until) are dropped (a pause): it reports whether it drops
// i, and tells the pipeline p and its input in as the recorder does
// (Pause and Gate at the first it drops, Ungate and Resync at the first it
// lets through after); gated is whether it dropped the packet before.
func gate(p *AudioPipeline, in *MixInput, i, from, until int, gated *bool) bool {
	switch {
	case i >= from && i < until:
		if !*gated {
			*gated = true
			p.Pause()
			in.Gate(uint64(i * 160))
		}
		return true
	case *gated:
		*gated = false
		in.Ungate()
		p.Resync()
	}
	return false
}

// TestAudioPipeline_ALateResumeKeepsItsTimestamps: a PCMU track (a level
// per packet: every sample of the mix says which packet it came from) with
// a 5 s budget whose sender sends a report every second by its clock; the
// recording is paused from 2 s to 4 s (its gate drops the packets of the
// pause, MixInput.Gate and GateEnds as the recorder calls them). The
// sender's packets from 3.5 s on are held and come in one burst at 6.8 s
// (a publisher starved of CPU, a network stall), then in real time: the
// first packet after the resume comes 2.8 s late, more than half the budget
// and within it, and the sender's reports place it by its timestamps, as
// its track file does. Every packet outside the pause is in the mix at its
// own place, none is re-anchored. Before, the pipeline took a first packet
// after a pause later than half the budget for a sender whose timestamps
// stood still and re-anchored it at its arrival (and again each second of
// the burst, more than a second ahead of its arrival): the mix lost the 2.8
// s after the resume and held the rest late, where the track file, the
// offline mix and the manifest's moves (which stop at a re-anchor) have it
// at its timestamps (the live and offline mixes apart under load, session
// 22: a publisher writing 2.7 s late).
func TestAudioPipeline_ALateResumeKeepsItsTimestamps(t *testing.T) {
	for _, reports := range []bool{true, false} {
		t.Run(map[bool]string{true: "with reports", false: "without reports"}[reports], func(t *testing.T) {
			sink := &captureSink{}
			m, c := newVirtualMixer(MixConfig{SampleRate: 8000}, sink)
			t0 := c.t
			in := m.AddInput("t", InputOptions{})
			p, err := NewAudioPipeline(AudioPipelineConfig{Codec: CodecPCMU, Input: in})
			if err != nil {
				t.Fatal(err)
			}
			const (
				n         = 500 // 10 s
				gateFrom  = 100 // the pause: [2 s, 4 s)
				gateUntil = 200
				heldFrom  = 175 // held from 3.5 s, released at 6.8 s
				release   = 340
			)
			arrive := func(i int) int { // in 20 ms ticks
				if i >= heldFrom && i < release {
					return release
				}
				return i
			}
			next, gated := 0, false
			for k := 0; k < n+20; k++ {
				c.t = t0.Add(time.Duration(k) * 20 * time.Millisecond)
				if k == gateUntil {
					in.GateEnds(uint64(gateUntil * 160)) // the resume: audio from 4 s on passes
				}
				for ; next < n && arrive(next) <= k; next++ {
					i := next
					if reports && i%50 == 0 {
						p.SenderReport(9, t0.Add(time.Duration(i)*20*time.Millisecond), uint32(160*i))
					}
					if gate(p, in, i, gateFrom, gateUntil, &gated) {
						continue
					}
					if err := p.WriteRTP(&rtp.Packet{Header: rtp.Header{SSRC: 9, SequenceNumber: uint16(i), Timestamp: uint32(160 * i)}, Payload: slices.Repeat([]byte{shedLevel(i)}, 160)}); err != nil {
						t.Fatal(err)
					}
				}
				if err := m.Step(); err != nil {
					t.Fatal(err)
				}
			}
			p.Close()
			m.RemoveInput(in)
			if err := m.Finish(m.Now()); err != nil {
				t.Fatal(err)
			}
			got := framesByLevel(sink.pcm)
			var moved []int
			for f := range n {
				want := f % 100
				if f >= gateFrom && f < gateUntil {
					want = -1
				}
				if f >= len(got) || got[f] != want {
					moved = append(moved, f)
				}
			}
			s := p.Stats()
			t.Logf("%d of %d frames not where their packet belongs; %+v", len(moved), n, s)
			if !reports {
				return // nothing tells timestamps that stood still from late packets: logged, not asserted
			}
			if s.Reanchors != 0 || s.Late != 0 {
				t.Errorf("%+v: want no re-anchor, nothing late", s)
			}
			if len(moved) > 0 {
				t.Errorf("%d frames of the mix do not hold their own packet (or silence in the pause), from frame %d (%.2f s): %v",
					len(moved), moved[0], float64(moved[0])/50, moved[:min(len(moved), 10)])
			}
		})
	}
}
