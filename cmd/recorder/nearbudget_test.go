package main

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestServe_MixHoldsAudioDelayedNearlyTheBudget: issue 10's "every packet
// that arrives within the recording's latency budget (default 5 s) lands in
// the mix at its own place", near the budget's end, with a real Pion
// publisher's Opus tone through the test relay:
//   - span: the relay holds 25 packets (0.5 s) for 4.4 s while those after
//     them go on (a path that stalls for part of the stream);
//   - stall: the relay holds every packet from 2 s to 6.4 s after its first
//     and then delivers them at once, in order (the whole stream stalls).
//
// Each held packet comes at most 4.4 s after it was sent, within the 5 s
// default. The mix must have the tone wherever the track file has it (20 ms
// windows), and the file has no hole. (TestServe_MixHoldsTheTrackUnder-
// Impairments' longest delay is 1.8 s.)
func TestServe_MixHoldsAudioDelayedNearlyTheBudget(t *testing.T) {
	const freq = 660.0
	opus := realTimeTone(t, freq)
	dir := t.TempDir()
	s := serveProcess(t, dir)
	key := readKey(t, dir)
	const hold = 4400 * time.Millisecond
	for _, tc := range []struct {
		name string
		imp  impairment
	}{
		{"span", func(n int, _ time.Duration) (time.Duration, bool, bool) {
			if n >= 100 && n < 125 {
				return hold, false, false
			}
			return 0, false, false
		}},
		{"stall", func(_ int, e time.Duration) (time.Duration, bool, bool) {
			// Released at the relay's first packet + 6.4 s, by the same
			// reading of its clock: together, in the order they came.
			if e >= 2*time.Second && e < 2*time.Second+hold {
				return 2*time.Second + hold - e, false, false
			}
			return 0, false, false
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			conf := "nearbudget" + tc.name
			stop := publishOnSchedule(t, ctx, s, key, conf, "o", opus, time.Time{}, 20*time.Millisecond, tc.imp)
			defer stop()
			ev := startRecording(t, s, key, conf, false)
			time.Sleep(7 * time.Second)
			stopRecording(t, s, key, conf, ev)
			objects, man := recordingFiles(t, dir, ev.InstanceID)
			with, missing, mixTone, holes := trackVsMix(t, objects, man, freq)
			var line string
			if l := s.stderr.Lines("track's mix pipeline"); len(l) > 0 {
				line = l[len(l)-1]
			}
			t.Logf("%s, held %v: the track has the tone in %d windows of 20 ms (%d holes), the mix lacks %d; the mix has it in %d; pipeline %v",
				tc.name, hold, with, holes, missing, mixTone, logCounts(line, "late", "shed", "lost", "concealed", "reanchors", "deferred"))
			defer func() { // the recorder's log of the track: how the mix placed and dropped it
				if t.Failed() || os.Getenv("MIXDEBUG") != "" {
					for _, l := range s.stderr.Lines("track's", "late", "gave up", "reanchor", "jump") {
						t.Log(l)
					}
				}
			}()
			if with < 300 || missing > 0 {
				t.Errorf("the mix lacks the tone in %d of the track's %d windows with it", missing, with)
			}
			if holes > 0 {
				t.Errorf("the track file lacks the tone in %d windows of 20 ms, though every packet came within the budget", holes)
			}
		})
	}
}
