package media

import (
	"slices"
	"testing"
	"time"
)

// TestAudioPipeline_TooLateIsShedNotShifted: with a 1 s budget, a PCMU track
// (each packet a constant level of its own, so every sample of the mix says
// which packet it came from):
//   - a stall of 2.5 s delivered in one burst: the packets later than the
//     budget (the stall's first 1.5 s) are dropped undecoded (Shed, Late),
//     the mapping stays, and the rest of the burst and every packet after
//     it are at their own places in the mix;
//   - a sender that stops for 3 s and goes on where its timestamps were
//     (they stood still: every packet after looks 3 s late, at real time):
//     shed for catchUpWindow, then re-anchored at arrival (the track is not
//     catching up), and the rest of it is in the mix.
func TestAudioPipeline_TooLateIsShedNotShifted(t *testing.T) {
	level := func(i int) byte { return byte(0x80 + i%100) } // distinct µ-law codes, none silent
	packets := func(n int) []timedPacket {
		payloads := make([][]byte, n)
		for i := range payloads {
			payloads[i] = slices.Repeat([]byte{level(i)}, 160)
		}
		return packetize(payloads, 8000, 9, 0, 0, 160)
	}
	// where returns, per 20 ms frame of the mix, the packet whose level it
	// holds (-1: silence or no single packet).
	where := func(pcm []int16) []int {
		var out []int
		for f := 0; f+160 <= len(pcm); f += 160 {
			k := -1
			for i := range 100 {
				if pcm[f] != 0 && pcm[f] == g711.ulaw[level(i)] && pcm[f+159] == pcm[f] {
					k = i
				}
			}
			out = append(out, k)
		}
		return out
	}
	t.Run("stall delivered in a burst", func(t *testing.T) {
		sink := &captureSink{}
		m, _ := newVirtualMixer(MixConfig{SampleRate: 8000, Latency: time.Second}, sink)
		p, err := NewAudioPipeline(AudioPipelineConfig{Codec: CodecPCMU, Input: m.AddInput("t", InputOptions{})})
		if err != nil {
			t.Fatal(err)
		}
		pkts := packets(400)
		for i := 100; i < 225; i++ { // sent from 2 s to 4.5 s, all arrive at 4.5 s
			pkts[i].at = 4500 * time.Millisecond
		}
		simulate(t, m, p, pkts, 8500*time.Millisecond)
		s := p.Stats()
		if s.Shed < 74 || s.Shed > 76 || s.Reanchors != 0 || s.Decoded+s.Shed != 400 {
			t.Errorf("%+v: want about 75 shed (1.5 s later than the budget), no re-anchor, the rest decoded", s)
		}
		got := where(sink.pcm)
		first := slices.IndexFunc(got, func(k int) bool { return k >= 0 })
		for f, k := range got[first:] {
			switch {
			case f == 174: // 1.02 s late, but the frame is written just after it came
			case f >= 100 && f < 174:
				if k != -1 {
					t.Errorf("frame %d holds packet %d: it came later than the budget", f, k)
				}
			case f < 400 && k != f%100:
				t.Errorf("frame %d holds packet %d, want %d", f, k, f%100)
			}
		}
	})
	t.Run("timestamps that stood still", func(t *testing.T) {
		sink := &captureSink{}
		m, _ := newVirtualMixer(MixConfig{SampleRate: 8000, Latency: time.Second}, sink)
		p, err := NewAudioPipeline(AudioPipelineConfig{Codec: CodecPCMU, Input: m.AddInput("t", InputOptions{})})
		if err != nil {
			t.Fatal(err)
		}
		pkts := packets(400)
		for i := 100; i < 400; i++ { // a 3 s silence of the sender, its timestamps going on where they were
			pkts[i].at += 3 * time.Second
		}
		simulate(t, m, p, pkts, 11*time.Second)
		s := p.Stats()
		if s.Reanchors != 1 || s.Shed < 45 || s.Shed > 60 {
			t.Errorf("%+v: want about a second shed (50), then one re-anchor", s)
		}
		got := where(sink.pcm)
		n := 0
		for _, k := range got {
			if k >= 0 {
				n++
			}
		}
		if want := 400 - int(s.Shed); n < want-2 {
			t.Errorf("%d frames of the track in the mix, want the %d not shed", n, want)
		}
	})
}
