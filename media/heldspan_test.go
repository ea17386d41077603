package media

import (
	"cmp"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestAudioPipeline_SpanHeldNearlyTheBudgetLandsInTheMix: with the default
// budget (5 s), a PCMU track (a level per packet: every frame of the mix
// says which packet it holds) whose packets 100-124 (0.5 s) are held on
// their path for 2.5 to 4.4 s while the rest goes on (issue 10: every packet
// that arrives within the budget lands in the mix at its own place). Each
// frame holds its own packet; nothing is late, lost or re-anchored. A packet
// more than 128 behind the newest (2.56 s of 20 ms packets) was taken for a
// sequence restart: the span held 3 s or more was dropped (Late 25) and
// every packet after it counted lost (the real binary: lost 2861-3813,
// cmd/recorder TestServe_MixHoldsAudioDelayedNearlyTheBudget).
func TestAudioPipeline_SpanHeldNearlyTheBudgetLandsInTheMix(t *testing.T) {
	for _, hold := range []time.Duration{2500 * time.Millisecond, 3500 * time.Millisecond, 4400 * time.Millisecond} {
		t.Run(fmt.Sprint(hold), func(t *testing.T) {
			sink := &captureSink{}
			m, _ := newVirtualMixer(MixConfig{SampleRate: 8000}, sink)
			p, err := NewAudioPipeline(AudioPipelineConfig{Codec: CodecPCMU, Input: m.AddInput("t", InputOptions{})})
			if err != nil {
				t.Fatal(err)
			}
			payloads := make([][]byte, 500)
			for i := range payloads {
				payloads[i] = slices.Repeat([]byte{shedLevel(i)}, 160)
			}
			pkts := packetize(payloads, 8000, 9, 0, 0, 160)
			for i := 100; i < 125; i++ {
				pkts[i].at += hold
			}
			slices.SortStableFunc(pkts, func(a, b timedPacket) int { return cmp.Compare(a.at, b.at) })
			simulate(t, m, p, pkts, 16*time.Second)
			s := p.Stats()
			if s.Decoded != 500 || s.Late != 0 || s.Lost != 0 || s.Reanchors != 0 {
				t.Errorf("%+v: want every packet decoded, none late, lost or re-anchored", s)
			}
			got := framesByLevel(sink.pcm)
			first := slices.IndexFunc(got, func(k int) bool { return k >= 0 })
			if first < 0 || len(got)-first < 500 {
				t.Fatalf("the mix holds %d frames of the track from frame %d, want 500", len(got)-max(first, 0), first)
			}
			var wrong []int
			for f, k := range got[first : first+500] {
				if k != f%100 {
					wrong = append(wrong, f)
				}
			}
			if len(wrong) > 0 {
				t.Errorf("%d frames do not hold their own packet, from frame %d (packet %d there)", len(wrong), wrong[0], got[first+wrong[0]])
			}
		})
	}
}
