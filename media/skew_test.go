package media

import (
	"cmp"
	"fmt"
	"math"
	"strings"
	"testing"
)

// TestAudioPipeline_SkewedClockOnTheTruth: issue 10's "one clock for all
// tracks: the offset between participants is within 20 ms of the truth" for
// a sender whose audio clock runs 4 % slow (beyond the issue's ±0.5 % of
// drift, within MaxSkew: a sender that skips ticks on a loaded machine),
// with Pion's reports (a second apart) or libwebrtc's (5 s apart).
// Its beeps (a wall-clock second's first 100 ms) lie in the mix where its
// sender captured them (its reports, true to its capture clock, say so),
// within 20 ms, from the first beep after its reports showed its rate (the
// second report), and nothing the track holds is dropped (nothing late).
// Before, the rate showed at the third report, and the drift meanwhile
// (40 ms a second) was caught up at the 0.8 % MaxSkew leaves: beeps up to
// 130 ms early with Pion's reports, 410 ms with libwebrtc's, and still 60
// and 400 ms early at 14 s.
func TestAudioPipeline_SkewedClockOnTheTruth(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rate  float64    // the sender's clock
		every float64    // seconds between reports; 0: none
		first float64    // the first report (seconds of the wall clock); 0: at 0.3 s, while the track settles
		from  float64    // every beep from here (seconds of the wall clock) within 20 ms
		stall [2]float64 // a write stall (the packets come later, then in a burst): when, how long (seconds); none if 0
	}{
		{"4 % slow, a report a second", 0.96, 1, 0, 2, [2]float64{}},
		{"4 % slow, a report every 5 s", 0.96, 5, 0, 6, [2]float64{}},
		// Placed by its arrival (the real binary's Pion publisher: its
		// first report came after the track settled), then by its
		// reports as far off them as the mapping was at the first.
		{"4 % slow, the first report after settling, a report a second", 0.96, 1, 0.83, 3, [2]float64{}},
		// A publisher's write that lags 35 ms between the first report
		// followed and the next (the real binary's at load 10: gaps of
		// 24-100 ms) is no step: its packets catch up.
		{"4 % slow, a report a second, a write lagging 35 ms", 0.96, 1, 0, 2, [2]float64{1.45, 0.035}},
		// ... or 70 ms as the second report's trial ends (the packet
		// that ends it comes after the gap, the burst after it): the
		// third report, on the line of the rate, shows it.
		{"4 % slow, a report a second, a write lagging 70 ms as a trial ends", 0.96, 1, 0, 3, [2]float64{1.55, 0.07}},
		// A clock running fast is placed later and later: it cannot jump
		// back over what was written, and is caught up at up to MaxSkew
		// (0.95 against its 0.9615: 1.15 % a second) from the second
		// report, 50 ms (Pion's) or 210 ms (libwebrtc's) late by then.
		{"4 % fast, a report a second", 1.04, 1, 0, 5, [2]float64{}},
		{"4 % fast, a report every 5 s", 1.04, 5, 0, 23, [2]float64{}},
		// By its arrivals: settled by 0.5 s, its rate shown by the first
		// drift window after the reference one (2.5 s), 100 ms early by
		// then, caught up at up to MaxSkew (0.8 % beyond its rate: it
		// is not jumped, which leaves silence in a continuous sound).
		{"4 % slow, no reports", 0.96, 0, 0, 13, [2]float64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snd := slippingSender{rate: tc.rate, first: tc.first, writeStallAt: tc.stall[0], writeStall: tc.stall[1]}
			total := max(14, math.Ceil(tc.from)+2)
			run := recordReports(t, snd, tc.every, -1, 0, total, lateReader{})
			lag := 0.0 // where the track is placed after its capture
			if tc.every == 0 || tc.first > 0 {
				lag = snd.wall(159) + reportTransit // by the first packet's arrival: its last sample's capture, and its transit
			}
			// The placement's error over time (the mapping, per packet
			// written), the worst per half second.
			var b strings.Builder
			for i, half := 0, 0.0; half < total; half += 0.5 {
				worst := 0.0
				for ; i < len(run.arrived) && run.arrived[i] < half+0.5; i++ {
					if e := run.placed[i] - lag; math.Abs(e) > math.Abs(worst) {
						worst = e
					}
				}
				fmt.Fprintf(&b, " %.1f:%+.0f", half, worst*1000)
			}
			t.Logf("the mapping's error (ms) by arrival, worst per half second:%s", b.String())
			var late []string
			for _, o := range run.onsets {
				want := math.Round(o-lag) + lag
				d := o - want
				if want >= tc.from && math.Abs(d) > 0.020 {
					late = append(late, fmt.Sprintf("%.0f s: %+.1f ms", want-lag, d*1000))
				}
			}
			if len(late) > 0 {
				t.Errorf("beeps more than 20 ms from their capture (from %.0f s on): %s", tc.from, strings.Join(late, ", "))
			}
			if len(run.onsets) < int(total)-1 {
				t.Errorf("%d beeps in the mix, want %d", len(run.onsets), int(total)-1)
			}
			if s := run.p.Stats(); s.Late != 0 || s.Reanchors != 0 {
				t.Errorf("stats %+v: want nothing late and no re-anchor", s)
			}
			if r := run.p.Ratio(); math.Abs(r-1/tc.rate) > 0.002 {
				t.Errorf("resampling ratio %.5f at the end, want about %.5f (the sender's clock)", r, 1/tc.rate)
			}
		})
	}
}

// TestAudioPipeline_LagEndIsNoClockRate: a good clock whose publisher's
// every write lags 30 ms for 3 s (its goroutine scheduled late on a loaded
// machine), with Pion's reports a second apart, stamped by its last write
// (30 ms late meanwhile). The lag's start is a gap and the reports' step a
// step; its end, the packets coming 30 ms earlier at once and the next
// report back on the line, is a step back, not a clock running 3 % fast:
// the track is never resampled. Taken for a rate (a far move the packets'
// arrivals showed, no gap), it was resampled at 0.95-1.05 from 7.6 s and
// still at 1.005 at 14 s, beeps 20-27 ms off from 8 s (drift's report).
func TestAudioPipeline_LagEndIsNoClockRate(t *testing.T) {
	snd := slippingSender{rate: 1, lagAt: 3.6, lagFor: 3, lag: 0.030}
	run := recordReports(t, snd, 1, -1, 0, 14, lateReader{})
	if run.worst != 0 {
		t.Errorf("a good clock resampled: the ratio was %.5f off 1 at %.2f s, want exactly 1 throughout", run.worst, run.worstAt)
	}
}

// TestAudioPipeline_ALagIsNoClockRate: a clock 0.5 % slow (issue 10's drift,
// absorbed by resampling) whose publisher's writes lag 18 ms, less than the
// arrival gap (reportStep) that tells a lag: once as a report is made (a
// write stall that ends at it: the report stamped 18 ms late, the packets
// before it in a burst), or for 1.4 s from 1.84 s (every write 18 ms late,
// a report made meanwhile too). Every beep lies in the mix within 20 ms of
// its capture and nothing is late. Taken for a clock rate (the report's
// move over the 2-3 s since the reference, with the drift, 1.1-1.4 %, and
// the packets' arrivals drifting the same way), the mapping jumped 31-32 ms
// forward onto that rate's line: beeps 22-34 ms late from there (drift's
// sweep: 7 of 40 report-lag runs of a 0.995 clock, 8 of 40 with 18 ms write
// lags, where drift's series had 1 and 1).
func TestAudioPipeline_ALagIsNoClockRate(t *testing.T) {
	busy := make([]float64, 15)
	busy[3] = 0.018
	for _, tc := range []struct {
		name string
		snd  slippingSender
	}{
		{"a report stamped 18 ms late", slippingSender{rate: 0.995, busy: busy, every: 1}},
		{"every write 18 ms late for 1.4 s", slippingSender{rate: 0.995, lagAt: 1.84, lagFor: 1.37, lag: 0.018}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := recordReports(t, tc.snd, 1, -1, 0, 14, lateReader{})
			var off []string
			for _, o := range run.onsets {
				if d := o - math.Round(o); math.Abs(d) > 0.020 {
					off = append(off, fmt.Sprintf("%.0f s: %+.1f ms", math.Round(o), d*1000))
				}
			}
			if len(off) > 0 {
				t.Errorf("beeps more than 20 ms from their capture: %s", strings.Join(off, ", "))
			}
			if len(run.onsets) < 13 {
				t.Errorf("%d beeps in the mix, want 13", len(run.onsets))
			}
			if s := run.p.Stats(); s.Late != 0 {
				t.Errorf("stats %+v: want nothing late", s)
			}
		})
	}
}

// TestAudioPipeline_LateStartPulledBack: a track whose first packets all
// come late while it settles (its reader, or its publisher, starved: 100 or
// 400 ms late for the first second, caught up over as long), a good clock
// whose first report comes after it settled (1.3 s), then one a second, is
// placed by the least-late arrival then (late by as much) and followed as
// far off its reports as it was at the first report followed. Its packets
// come on time from then on, earlier than the mapping places them: the
// mapping is pulled back onto their arrival, by resampling at up to MaxSkew
// while more than 20 ms late (nothing is dropped), then at 1 again: every
// beep from when 5 % has caught up the lateness (the second report followed
// and the lateness less 20 ms at 5 %) within 20 ms of its arrival on time
// (its capture, the packet's length and transit after). Main kept it 130 and
// 430 ms late for good; at a stop, the track's file kept what reached the
// machine before the stop and the mapping placed after it: past the mix's
// end (TestServe_MixHoldsTheTrackUnderImpairments/sender_clock_4%_slow,
// 9 windows, its publisher 418 ms late).
// And the same when the first report followed came while the reader was
// still late (its trial read as late as the anchor; late for 2 s, then
// on time, Pion's reports a second apart or Chromium's five): the next
// report's trial comes earlier by it than the first's, and the take-back
// reads that as the report stamped late, by the lateness the pull-back
// takes too: with both, the track was placed 50-400 ms EARLY for good
// (before its capture), where the take-back alone had it on time.
// And a clock 0.5 % slow or fast the same way (the reader sweep's late
// starts): with the reference's floor read as late as the anchor, the
// arrivals since looked that much earlier, against the drift the reports
// showed, and a slow clock kept ratio 1 after the pull (-20 to -41 ms from
// 7 s on, growing).
func TestAudioPipeline_LateStartPulledBack(t *testing.T) {
	for _, tc := range []struct {
		late, first, every, settled float64 // settled: when the reader is on time again
		catchUp                     bool    // caught up over as long as it was late (else at once)
		rate                        float64 // the sender's clock (0: 1, a good one)
	}{
		{late: 0.1, first: 1.3, every: 1, settled: 1, catchUp: true},
		{late: 0.4, first: 1.3, every: 1, settled: 1, catchUp: true},
		{late: 0.1, first: 1.0, every: 1, settled: 2},
		{late: 0.4, first: 1.0, every: 1, settled: 2},
		{late: 0.1, first: 1.0, every: 5, settled: 2},
		{late: 0.4, first: 1.0, every: 5, settled: 2},
		{late: 0.1, first: 1.0, every: 1, settled: 2, rate: 0.995},
		{late: 0.4, first: 1.0, every: 1, settled: 2, rate: 0.995},
		{late: 0.1, first: 1.0, every: 5, settled: 2, rate: 0.995},
		{late: 0.1, first: 1.0, every: 1, settled: 2, rate: 1.005},
	} {
		late, rate := tc.late, cmp.Or(tc.rate, 1)
		t.Run(fmt.Sprintf("%.0f ms late till %.0f s, first report at %.1f s, every %.0f s, clock %.3f", late*1000, tc.settled, tc.first, tc.every, rate), func(t *testing.T) {
			snd := slippingSender{rate: rate, first: tc.first}
			behind := func(at float64) float64 {
				if tc.catchUp {
					return max(late-max(at-tc.settled, 0), 0)
				}
				if at < tc.settled {
					return late
				}
				return 0
			}
			// From when the second report followed and 5 % caught the
			// lateness up.
			from := tc.first + tc.every + reportTrial.Seconds() + (late-pullFar.Seconds())/0.05 + 1
			total := math.Ceil(from) + 6
			run := recordReports(t, snd, tc.every, -1, 0, total, lateReader{behind: behind})
			lag := snd.wall(159) + reportTransit // on time: by its least-late arrival
			var off []string
			for _, o := range run.onsets {
				want := math.Round(o-lag) + lag
				if d := o - want; want-lag >= from && math.Abs(d) > 0.020 {
					off = append(off, fmt.Sprintf("%.0f s: %+.1f ms", want-lag, d*1000))
				}
			}
			if len(off) > 0 {
				t.Errorf("beeps more than 20 ms from their arrival on time (from %.1f s on): %s", from, strings.Join(off, ", "))
			}
			if s := run.p.Stats(); s.Late != 0 || s.Reanchors != 0 {
				t.Errorf("stats %+v: want nothing late and no re-anchor", s)
			}
			if r := run.p.Ratio(); rate == 1 && r != 1 {
				t.Errorf("resampling ratio %.5f at the end, want 1 (a good clock)", r)
			}
		})
	}
}

// TestAudioPipeline_AReaderLagIsNoReportStampedLate: a good clock with sender
// reports whose recorder's reader lags (the process starved of CPU: every
// packet read late, then a burst as it catches up; nothing wrong with the
// sender) is placed where its reports and its packets place it, for the
// whole recording: every beep (a wall-clock second's first 100 ms) no
// earlier than 20 ms before its capture (the reports' word) and no later
// than 20 ms after its least-late arrival (the packet's length and its
// transit after it), nothing late, and a good clock at ratio 1 at the end. A reader's lag shows in
// the packets' arrivals only (every track's at once), never in a report's
// stamp; a report stamped late shows in its own track's report against its
// packets. The take-back read the lag as a report stamped late: the line's
// floor (srBaseLeast) was taken while the reader lagged, and the report
// after it caught up, on time and on the line, looked as much early.
//   - 24 ms late for 2.5 s mid-recording, Pion's reports a second apart
//     (item4's reader sweep, seed 0): stepped back by the lag when the
//     reader caught up, every beep after 24 ms early for good.
//   - 100 ms late for its first 2 s, Chromium's reports 5 s apart, the
//     first at 0.5 s while it lagged: a 100 ms step back at 10.8 s, every
//     beep after it 100 ms before its capture for good.
func TestAudioPipeline_AReaderLagIsNoReportStampedLate(t *testing.T) {
	for _, tc := range []struct {
		name           string
		at, dur, lag   float64 // the reader's lag: from at for dur seconds of arrival
		first, every   float64 // the sender's reports
		from           float64 // every beep from here (seconds of its capture)
		total          float64
		neverResampled bool // a good clock not pulled back (the lag came after it settled)
	}{
		{name: "24 ms late for 2.5 s from 5.9 s, reports a second apart", at: 5.8567, dur: 2.4675, lag: 0.0243, first: 0.3066, every: 1, from: 1, total: 20, neverResampled: true},
		{name: "100 ms late for the first 2 s, reports 5 s apart from 0.5 s", at: 0, dur: 2, lag: 0.1, first: 0.5, every: 5, from: 1, total: 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snd := slippingSender{rate: 1, first: tc.first}
			behind := func(at float64) float64 {
				if at >= tc.at && at < tc.at+tc.dur {
					return tc.lag
				}
				return 0
			}
			run := recordReports(t, snd, tc.every, -1, 0, tc.total, lateReader{behind: behind})
			arrival := snd.wall(159) + reportTransit // the least-late arrival after the capture
			var off []string
			n := 0
			for _, o := range run.onsets {
				captured := math.Round(o - arrival/2)
				if captured < tc.from {
					continue
				}
				n++
				if d := o - captured; d < -0.020 || d > arrival+0.020 {
					off = append(off, fmt.Sprintf("%.0f s: %+.1f ms", captured, d*1000))
				}
			}
			if len(off) > 0 {
				t.Errorf("beeps not within [capture - 20 ms, arrival + 20 ms] (capture + [-20, %.0f] ms) from %.0f s on: %s", (arrival+0.020)*1000, tc.from, strings.Join(off, ", "))
			}
			if want := int(tc.total - tc.from); n < want {
				t.Errorf("%d beeps in the mix from %.0f s on, want %d", n, tc.from, want)
			}
			if s := run.p.Stats(); s.Late != 0 || s.Reanchors != 0 {
				t.Errorf("stats %+v: want nothing late and no re-anchor", s)
			}
			if r := run.p.Ratio(); r != 1 {
				t.Errorf("resampling ratio %.5f at the end, want 1 (a good clock)", r)
			}
			if tc.neverResampled && run.worst != 0 {
				t.Errorf("a good clock resampled: the ratio was %.5f off 1 at %.2f s, want exactly 1 throughout", run.worst, run.worstAt)
			}
		})
	}
}
