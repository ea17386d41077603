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

// TestTrack_Placement: a file's instant lies at its time zero (mediaOffset;
// Offset in a manifest without one) plus the instant, moved by the step
// it is in (Steps).
func TestTrack_Placement(t *testing.T) {
	zero := -0.3 // captured before the recording's start
	moves := &TrackTiming{ClockRate: 8000, Moves: []Step{{File: 2, By: -0.02}, {File: 5, By: 0.01}}, MixPlaced: true}
	for _, tc := range []struct {
		name  string
		track Track
		f     float64
		want  float64
	}{
		{"first sample", Track{Offset: 0.5, MediaOffset: &zero, Timing: moves}, 0, -0.3},
		{"before a step", Track{Offset: 0.5, MediaOffset: &zero, Timing: moves}, 1.999, 1.699},
		{"at a step", Track{Offset: 0.5, MediaOffset: &zero, Timing: moves}, 2, 1.68},
		{"after two", Track{Offset: 0.5, MediaOffset: &zero, Timing: moves}, 6, 5.71},
		{"no timing", Track{Offset: 0.5, MediaOffset: &zero}, 6, 5.7},
		{"no mediaOffset", Track{Offset: 0.5, Timing: moves}, 6, 6.51},
	} {
		if got := tc.track.Placement()(tc.f); got-tc.want > 1e-9 || tc.want-got > 1e-9 {
			t.Errorf("%s: file's %g s placed at %g s, want %g s", tc.name, tc.f, got, tc.want)
		}
	}
}
