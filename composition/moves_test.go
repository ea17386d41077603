package composition

import (
	"testing"
	"time"
)

// TestTrackTiming_StepsAddTheMovesByArrival: a track's steps are those of
// its sender's reports (relative to the first) plus the live mix's moves by
// arrival, at every file time where either changes; for a track the live
// mix placed (MixPlaced), its moves alone.
func TestTrackTiming_StepsAddTheMovesByArrival(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	// Reports 8 kHz: from file second 4 on, the sender's clock placed its
	// audio 100 ms later.
	reports := []Mapping{{NTP: at(1), RTP: 8000, File: 1}, {NTP: at(4.1), RTP: 32000, File: 4}}
	moves := []Step{{File: 2, By: -0.011}, {File: 3, By: -0.022}, {File: 6, By: -0.033}}
	for _, tc := range []struct {
		name   string
		timing *TrackTiming
		want   []Step
	}{
		{"none", &TrackTiming{ClockRate: 8000}, nil},
		{"nil", nil, nil},
		{"reports", &TrackTiming{ClockRate: 8000, Mappings: reports}, []Step{{File: 4, By: 0.1}}},
		{"moves", &TrackTiming{ClockRate: 8000, Moves: moves}, moves},
		{"both", &TrackTiming{ClockRate: 8000, Mappings: reports, Moves: moves},
			[]Step{{File: 2, By: -0.011}, {File: 3, By: -0.022}, {File: 4, By: 0.1 - 0.022}, {File: 6, By: 0.1 - 0.033}}},
		{"at one file time", &TrackTiming{ClockRate: 8000, Mappings: reports, Moves: []Step{{File: 4, By: -0.011}}},
			[]Step{{File: 4, By: 0.1 - 0.011}}},
		// Placed by the live mix: its moves alone, whatever the reports
		// say (it left out a report stamped late).
		{"placed by the mix", &TrackTiming{ClockRate: 8000, Mappings: reports, Moves: moves, MixPlaced: true}, moves},
		{"placed by the mix, unmoved", &TrackTiming{ClockRate: 8000, Mappings: reports, MixPlaced: true}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.timing.Steps()
			if len(got) != len(tc.want) {
				t.Fatalf("steps %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i].File != tc.want[i].File || got[i].By-tc.want[i].By > 1e-9 || tc.want[i].By-got[i].By > 1e-9 {
					t.Fatalf("steps %+v, want %+v", got, tc.want)
				}
			}
		})
	}
}
