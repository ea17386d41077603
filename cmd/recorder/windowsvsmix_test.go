package main

import (
	"math"
	"testing"

	"github.com/rtcrec/recorder/composition"
)

// TestWindowsVsMix_AStepOffTheWindowGrid: a track file with its tone
// throughout, placed 9 ms into the mix, that the mix moved 69 ms forward at
// 1.62 s of the file (a slow sender's clock met its reports' line: silence
// in the mix, recorded as a step); the mix holds every sample of the file
// where the manifest says. Its windows rounded to the mix's 20 ms grid sat
// 18 ms before their place, and the one after the step fell on the silence
// with 2 ms of its tone (MixHoldsTheTrackUnderImpairments/sender_clock_4%_slow,
// CI C of session 19: "the mix lacks the tone at [2.28] s", a mix that was
// right). A real hole is still one: 60 ms of the mix silenced, or the step
// missing from the manifest.
func TestWindowsVsMix_AStepOffTheWindowGrid(t *testing.T) {
	const freq, rate = 660.0, 8000
	track := make([]int16, 3*rate)
	for i := range track {
		track[i] = int16(4096 * math.Sin(2*math.Pi*freq*float64(i)/rate))
	}
	// mixOf lays the track in a mix of 3.2 s at zero s, moved by the steps
	// (each forward: silence before the rest).
	mixOf := func(zero float64, steps []composition.Step) []int16 {
		mix := make([]int16, 3*rate+rate/5)
		for i := range track {
			f := float64(i) / rate
			if p := int(math.Round((zero + f + composition.StepAt(steps, f)) * rate)); p >= 0 && p < len(mix) {
				mix[p] = track[i]
			}
		}
		return mix
	}
	for _, tc := range []struct {
		name    string
		zero    float64
		steps   []composition.Step
		hole    [2]float64 // seconds of the mix silenced
		laidBy  []composition.Step
		missing bool
	}{
		{"a step on a window's edge, 18 ms off the grid", 0.009, []composition.Step{{File: 1.62, By: 0.069}}, [2]float64{}, nil, false},
		{"a step within a window", 0.009, []composition.Step{{File: 1.631, By: 0.069}}, [2]float64{}, nil, false},
		{"a step back", 0.0171, []composition.Step{{File: 1.0, By: 0.029}, {File: 2.0, By: 0.0}}, [2]float64{}, nil, false},
		{"60 ms of the mix silenced", 0.009, []composition.Step{{File: 1.62, By: 0.069}}, [2]float64{2.5, 2.56}, nil, true},
		{"a step the manifest lacks", 0.009, nil, [2]float64{}, []composition.Step{{File: 1.62, By: 0.069}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			laid := tc.steps
			if tc.laidBy != nil {
				laid = tc.laidBy
			}
			mix := mixOf(tc.zero, laid)
			clear(mix[int(tc.hole[0]*rate):int(tc.hole[1]*rate)])
			with, missing, _, holes := windowsVsMix(t, mix, track, tc.zero, tc.steps, freq)
			t.Logf("the track has the tone in %d windows (%d holes), the mix lacks %d", with, holes, missing)
			if with < 140 || holes > 0 {
				t.Fatalf("the track: tone in %d windows, %d holes", with, holes)
			}
			if (missing > 0) != tc.missing {
				t.Errorf("the mix lacks %d windows, want a hole found: %v", missing, tc.missing)
			}
		})
	}
}
