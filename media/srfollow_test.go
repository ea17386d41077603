package media

import (
	"bytes"
	"cmp"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/media/mediatest"
)

// slippingSender is a sender whose audio clock slips against its wall clock
// (whiptest.AudioClock's model): it captures rate × clock samples a second of
// its wall clock, and a capture stall at stallAt loses stall of them. Its
// sender reports map its RTP time to its wall clock truthfully. A sample's
// sound is a beep (µ-law 0x90) in the first 100 ms of every wall-clock
// second, silence (0xFF) otherwise: a beep begins where the sender's wall
// clock says a second began, whatever its RTP time says.
//
// A write stall (writeStall at writeStallAt) is not the capture's: the
// samples captured during it are sent at its end, in a burst, and a report
// made during it is stamped by the last sample written before it (Pion's
// reports), so it places the packets the stall later than the sender's clock
// does; the next report is right again. busy adds a write stall of
// busy[i] seconds that ends at report i's instant (none for 0): on a busy
// machine a publisher's writes lag tens of ms now and then, and a report
// made meanwhile is late by as much.
//
// With tick, it writes on a ticker of tick seconds (whiptest's camera: 5 ms),
// each packet at the first tick after it was captured, and its reports are
// Pion's: stamped by its last write (the RTP time of the last packet written
// and the time since it was written), so they are late by that write's wait
// for its tick, 0 to tick, as the packets are. Against a clock 0.5 % slow
// the wait falls by 0.1 ms a packet: a sawtooth of tick every second.
type slippingSender struct {
	rate                     float64
	clock                    float64   // its nominal RTP clock rate; default 8000
	stallAt, stall           float64   // seconds of the wall clock
	srJitter                 []float64 // how far off its reports are, in turn (seconds)
	writeStallAt, writeStall float64   // seconds of the wall clock
	busy                     []float64 // seconds, by report
	every                    float64   // seconds between reports, for busy
	tick                     float64   // seconds; 0: it writes each packet once captured
	first                    float64   // when it sends its first report, seconds of the wall clock; 0: at 0.3 s
	// lagAt, lagFor, lag: from lagAt for lagFor seconds of its wall clock
	// every write lags lag seconds (a publisher's goroutine that runs that
	// late on a loaded machine, for seconds: not a stall and a burst), and
	// a report made meanwhile is stamped by its last write: lag late.
	lagAt, lagFor, lag float64
	// lagThenAt, lagThen: from lagThenAt on (within the lag's span) every
	// write lags lagThen instead (a lag that grows).
	lagThenAt, lagThen float64
	// hum: between the beeps it sends a low hum (+-120, -48 dBFS), not
	// silence: no packet is silent.
	hum bool
}

// lagging returns how late the sender writes at wall time w (lagAt).
func (s slippingSender) lagging(w float64) float64 {
	if s.lag > 0 && w >= s.lagAt && w < s.lagAt+s.lagFor {
		if s.lagThenAt > 0 && w >= s.lagThenAt {
			return s.lagThen
		}
		return s.lag
	}
	return 0
}

// firstReport returns when the sender sends its first report (seconds of
// the wall clock); the next ones follow every report interval.
func (s slippingSender) firstReport() float64 { return cmp.Or(s.first, 0.3) }

// sent returns when the sender sent a packet captured by wall time w.
func (s slippingSender) sent(w float64) float64 {
	if at, n, ok := s.writeStalled(w); ok {
		w = at + n
	}
	w += s.lagging(w)
	if s.tick > 0 {
		w = math.Ceil(w/s.tick) * s.tick
	}
	return w
}

// lastWritten returns the RTP time a report of a sender that writes on a
// ticker (tick) makes at wall time w, as Pion's does: that of the last
// packet it wrote, on by the time since it wrote it.
func (s slippingSender) lastWritten(w float64) uint32 {
	m := s.captured(w)/160 + 1
	for m >= 0 && s.sent(s.wall(m*160+159)) > w {
		m--
	}
	return uint32(m*160 + int(math.Round((w-s.sent(s.wall(m*160+159)))*cmp.Or(s.clock, 8000))))
}

// writeStalled returns the write stall (its start and length) that wall time
// w falls in, if any.
func (s slippingSender) writeStalled(w float64) (at, n float64, ok bool) {
	if s.writeStall > 0 && w >= s.writeStallAt && w < s.writeStallAt+s.writeStall {
		return s.writeStallAt, s.writeStall, true
	}
	if len(s.busy) > 0 {
		i := int(math.Ceil((w - s.firstReport()) / s.every)) // the next report
		if n := s.busy[i%len(s.busy)]; i >= 0 && n > 0 && w >= float64(i)*s.every+s.firstReport()-n {
			return float64(i)*s.every + s.firstReport() - n, n, true
		}
	}
	return 0, 0, false
}

// wall returns when sample n was captured, in seconds of the wall clock.
func (s slippingSender) wall(n int) float64 {
	w := float64(n) / (s.rate * cmp.Or(s.clock, 8000))
	if s.stall > 0 && w >= s.stallAt {
		w += s.stall
	}
	return w
}

// captured returns how many samples the sender captured by wall time w.
func (s slippingSender) captured(w float64) int {
	if s.stall > 0 && w > s.stallAt {
		w -= min(w-s.stallAt, s.stall)
	}
	return int(w * s.rate * cmp.Or(s.clock, 8000))
}

// TestAudioPipeline_FollowsTheSendersReports: a track whose sender sends RTCP
// sender reports is placed in the live mix by them, like the offline mix and
// the composite place its file (composition.TrackTiming.Steps): its audio
// clock 0.5 % slow is absorbed by resampling, its 100 ms capture stall is a
// step (silence) followed once the next report confirms it, a report stamped
// 40 ms late (Pion stamps a report from when it last wrote a packet: a write
// that stalled) is not followed, as the packets' arrivals show it is not the
// sender's clock, and neither is one stamped 300 ms late by a write stall
// that delayed the packets as much (the arrivals cannot tell it from a
// capture stall; the next report, back on the line, can). Every beep (a wall-
// clock second's start) lands in the mix within 20 ms of its instant (but
// for those between a step and its confirmation: the stall earlier), and
// nothing is late; by the arrivals alone the live mix was 60-90 ms off after
// the stall, and following the 300 ms report stepped the mix forward and
// back, dropping 300 ms of audio. Nor are reports stamped late by a
// publisher whose writes lag 10-60 ms now and then on a busy machine (each
// report on trial for reportTrial: the packets that came meanwhile, not all
// of them late, arrived earlier by it than they could have, and it is
// taken back by as much): a good clock is never resampled, a slipping one's
// drift and step are followed as its on-time reports say. Followed as
// stamped, they had the mix resample a good clock by up to 1.7 % (a beep
// 22 ms late), and a slipping one by 3 % (beeps 27 ms late, and its step
// not taken: 98 ms off).
func TestAudioPipeline_FollowsTheSendersReports(t *testing.T) {
	for _, tc := range []struct {
		name    string
		snd     slippingSender
		every   float64 // seconds between reports
		outlier int     // the report (from 0) stamped late; -1: none
		late    float64 // how late it is stamped (seconds); default 40 ms
		total   float64 // seconds of the wall clock; default 12
	}{
		{"slips, a report a second", slippingSender{rate: 0.995, stallAt: 6.5, stall: 0.1}, 1, 4, 0, 0},
		{"slips, a report every 3 s", slippingSender{rate: 0.995, stallAt: 6.5, stall: 0.1}, 3, 2, 0, 15},
		{"a write stall of 350 ms, a report a second", slippingSender{rate: 1, writeStallAt: 4, writeStall: 0.35}, 1, -1, 0, 0},
		{"slips, a write stall, a report a second", slippingSender{rate: 0.995, stallAt: 7.5, stall: 0.1, writeStallAt: 4, writeStall: 0.35}, 1, -1, 0, 0},
		// A write that lags 200 ms right after the capture stall: the
		// packets' gap (300 ms) is mostly the write's, and they catch up
		// to the stall's 100 ms.
		{"slips, a write stall right after the capture's, a report a second", slippingSender{rate: 0.995, stallAt: 6.5, stall: 0.1, writeStallAt: 6.6, writeStall: 0.2}, 1, -1, 0, 0},
		{"a good clock, a report every 5 s", slippingSender{rate: 1}, 5, -1, 0, 0},
		// Chromium's reports of a good clock: 3 s apart, each off by up to
		// 7 ms (seen: -16, -23, -2 ms against the packets' arrivals).
		{"a good clock, reports off by up to 7 ms", slippingSender{rate: 1, srJitter: []float64{0, -0.007, 0.007, -0.003, 0.005}}, 3, -1, 0, 0},
		// A Pion publisher on a busy machine (load 10-20 on 2 cores): its
		// writes lag now and then, and a report made meanwhile is late by
		// as much (TestEndToEnd_RetroactiveBlackout's bob at 651 Hz in the
		// mix, alice at 430-462 Hz, and 20 ms holes). With the first
		// report late too (CI's TestEndToEnd_RetroactiveBlackout: alice
		// lacking a 20 ms window, Late 4 Shed 3; carol's 880 Hz at
		// 867 Hz), the reports followed from the first one after it
		// were as late as that one: the ones on time, or less late,
		// looked early, and a good clock was resampled by 1.4 % and
		// stepped back (beeps +30 then -23..-41 ms, Late 4 Shed 3).
		{"a good clock, writes lagging 0-60 ms, a report a second", slippingSender{rate: 1, busy: []float64{0, 0.03, 0.01, 0.05, 0, 0.02, 0.06, 0.015, 0.04}, every: 1}, 1, -1, 0, 20},
		{"a good clock, writes lagging 0-150 ms, a report a second", slippingSender{rate: 1, busy: []float64{0, 0.03, 0.15, 0.08, 0.05, 0.12, 0.02, 0.1, 0.015, 0.14}, every: 1}, 1, -1, 0, 20},
		{"a good clock, writes lagging 0-300 ms, a report a second", slippingSender{rate: 1, busy: []float64{0, 0.25, 0.15, 0.08, 0.3, 0.12, 0.02, 0.2, 0.015, 0.14}, every: 1}, 1, -1, 0, 20},
		// A report 5 ms late at the first slope (the fourth: 3 s of
		// reports) set the slope 0.17 % off, then taken for the clock's.
		{"a good clock, writes lagging 0-54 ms, the fourth report 5 ms late", slippingSender{rate: 1, busy: []float64{0, 0.018, 0, 0.005, 0.031, 0.014, 0.026, 0.054, 0.028, 0.025, 0.025}, every: 1}, 1, -1, 0, 20},
		{"a good clock, the first report 80 ms late, writes lagging 15-150 ms", slippingSender{rate: 1, busy: []float64{0.08, 0.03, 0.15, 0.05, 0.12, 0.02, 0.1, 0.015, 0.14}, every: 1}, 1, -1, 0, 20},
		{"a good clock, the first report 80 ms late, writes lagging 15-300 ms", slippingSender{rate: 1, busy: []float64{0.08, 0.25, 0.15, 0.3, 0.12, 0.02, 0.2, 0.015, 0.14}, every: 1}, 1, -1, 0, 20},
		{"a good clock, the first report 80 ms late, writes lagging 0-300 ms", slippingSender{rate: 1, busy: []float64{0.08, 0.25, 0.15, 0.3, 0.12, 0, 0.2, 0.015, 0.14}, every: 1}, 1, -1, 0, 20},
		{"slips, writes lagging 0-60 ms, a report a second", slippingSender{rate: 0.995, stallAt: 10.5, stall: 0.1, busy: []float64{0, 0.03, 0.01, 0.05, 0, 0.02, 0.06, 0.015, 0.04}, every: 1}, 1, -1, 0, 20},
		// A Pion publisher whose every write lags for seconds (its
		// goroutine scheduled 12-18 ms late on a loaded machine: not a
		// stall and a burst): each report made meanwhile is as late as
		// its packets, so no trial takes it back, and it moved 10-20 ms
		// from the line in a second, which no clock whose rate the
		// reports showed drifts (api's TestEndToEnd_Blackout at load 20:
		// alice's good clock resampled by 0.9 % for 0.86 s, then
		// stepped). Followed as drift, a good clock was resampled by
		// 0.8-1.3 % before the step. It is a step by the reports' word
		// and the packets' (they come as late): taken at ratio 1 once
		// confirmed, and so is the step back when the writes catch up,
		// in the next silence (TestAudioPipeline_AStepBackDropsNothing).
		// A clock 0.5 % fast whose reports are late now and then (a
		// sweep's lag lists): a late report was taken back onto packets
		// whose lateness already held the clock's drift (they come 5 ms
		// a second earlier by a line at the nominal rate), so every
		// report looked on the line and the slope was never seen: the
		// beeps 57 and 44 ms late by 20 s.
		{"runs fast, writes lagging 0-47 ms, a report a second", slippingSender{rate: 1.005, busy: []float64{0, 0.047, 0.009, 0.038, 0, 0.04, 0.031, 0, 0.005, 0.02, 0.042}, every: 1}, 1, -1, 0, 20},
		{"runs fast, writes lagging 0-55 ms, a report a second", slippingSender{rate: 1.005, busy: []float64{0, 0.032, 0.027, 0.008, 0.039, 0.05, 0.042, 0, 0.032, 0.054, 0}, every: 1}, 1, -1, 0, 20},
		{"a good clock, every write 12 ms late for 2 s, a report a second", slippingSender{rate: 1, lagAt: 3.6, lagFor: 2, lag: 0.012}, 1, -1, 0, 12},
		// Lagging from before the first slope (2.6 s) on: the slope was
		// taken with the late report, and caught up from 5 ms (0.94 %).
		{"a good clock, every write 12 ms late from 2.6 s for 3.4 s, a report a second", slippingSender{rate: 1, lagAt: 2.6, lagFor: 3.4, lag: 0.012}, 1, -1, 0, 12},
		{"a good clock, every write 18 ms late for 3 s, a report a second", slippingSender{rate: 1, lagAt: 5.1, lagFor: 3, lag: 0.018}, 1, -1, 0, 14},
		{"slips, every write 12 ms late for 2 s, a report a second", slippingSender{rate: 0.995, stallAt: 10.5, stall: 0.1, lagAt: 4.6, lagFor: 2, lag: 0.012}, 1, -1, 0, 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			followsReports(t, tc.snd, tc.every, tc.outlier, cmp.Or(tc.late, 0.040), cmp.Or(tc.total, 12), lateReader{})
		})
	}
}

// TestAudioPipeline_AStepBackDropsNothing: a publisher whose every write
// lags 12-18 ms for seconds (its goroutine scheduled late on a loaded
// machine: not a stall and a burst) stamps the reports made meanwhile as
// late as its packets come, so no trial takes them back: two of them make a
// step forward by the reports' word and the packets', and the lag's end a
// step back, confirmed by the next report. Jumped back, the mapping put the
// audio after it over the end of the audio before it, already decided, and
// dropped that: Late 1 in every case here (up to the step's 12-18 ms of the
// track missing from the mix). It is taken in the next silence instead, cut
// from it, or, under a hum that never pauses, caught up at most maxCatchUp
// beyond the clock's rate: nothing is late, every beep lies within 20 ms of
// its instant, and the ratio within maxCatchUp of the clock's from the step
// back on. (How the lag's start is followed, a near one as drift, is
// TestAudioPipeline_FollowsTheSendersReports'.)
func TestAudioPipeline_AStepBackDropsNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		snd   slippingSender
		every float64
		total float64
	}{
		{"every write 12 ms late for 2 s, a report a second", slippingSender{rate: 1, lagAt: 3.6, lagFor: 2, lag: 0.012}, 1, 12},
		{"every write 18 ms late for 3 s, a report a second", slippingSender{rate: 1, lagAt: 5.1, lagFor: 3, lag: 0.018}, 1, 14},
		{"every write 15 ms late for 8 s, reports every 3 s", slippingSender{rate: 1, lagAt: 3.6, lagFor: 8, lag: 0.015}, 3, 16},
		{"a slow clock, every write 12 ms late for 2 s, a report a second", slippingSender{rate: 0.995, lagAt: 4.6, lagFor: 2, lag: 0.012}, 1, 16},
		// A hum between the beeps: no silence to take the step in.
		{"a slow clock, every write 15 ms late for 2.5 s, a hum, a report a second", slippingSender{rate: 0.995, lagAt: 4.6, lagFor: 2.5, lag: 0.015, hum: true}, 1, 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := recordReports(t, tc.snd, tc.every, -1, 0, tc.total, lateReader{})
			if s := run.p.Stats(); s.Late != 0 || s.Shed != 0 || s.Reanchors != 0 {
				t.Errorf("stats %+v: want nothing late and no re-anchor", s)
			}
			if len(run.onsets) < int(tc.total)-1 {
				t.Fatalf("%d beeps in the mix, want %d", len(run.onsets), int(tc.total)-1)
			}
			back := tc.snd.lagAt + tc.snd.lagFor + 2*tc.every // the step back is confirmed by then
			for _, o := range run.onsets {
				if d := o - math.Round(o); math.Abs(d) > 0.020 {
					t.Errorf("beep at %.4f s in the mix: %+.1f ms from its instant", o, d*1000)
				}
				if d := o - math.Round(o); o > back+4 && math.Abs(d) > 0.005 {
					t.Errorf("beep at %.4f s in the mix: %+.1f ms from its instant, 4 s after the step back: want it taken (within 5 ms)", o, d*1000)
				}
			}
			if tc.snd.rate == 1 && run.worstAfter(back) != 0 {
				t.Errorf("a good clock resampled after the step back: the ratio %.5f off 1, want exactly 1 (taken in silence)", run.worstAfter(back))
			}
			if run.worstAfter(back) > maxCatchUp+0.001 {
				t.Errorf("the ratio was %.5f off the sender's clock after %.1f s: want at most %.3f (a catch-up within 0.5 %%)", run.worstAfter(back), back, maxCatchUp+0.001)
			}
		})
	}
}

// TestAudioPipeline_FirstReportStampedLate: a sender's first report is
// stamped late (a Pion publisher's write lagged: it stamps a report by its
// last write), by 40 or 90 ms, within what srPosition lets a report place a
// packet: it places the first packets after their receipt. The track is
// placed by its least-late packet's arrival instead (anchor, settleNow),
// the packet's length and its transit (30 ms) after its capture, and the
// next report, on time, shows by how much the first was late and corrects
// what the mapping took in from it (followReport): every beep stays there,
// nothing is late, a good clock is not resampled. Placed by the first
// report, the track was as much later (its file's pause cut and the mix's
// differed by it: TestManager_CutsTheMixAtTheInstant); kept, that
// lateness made every later report look as much early, confirmed as a step
// back at 2.3 s: the beeps from there 10-60 ms early, the step's overlap
// dropped (Late). With its first packet read 40 ms late (the least-late
// packet came after it), the late report, coming while the anchor settled,
// kept it from moving back to the least-late arrival: 40 ms late. Paused
// before the next report was followed, the first after the resume looked
// 20 ms early, and a good clock was resampled by 2.7 % after the resume.
func TestAudioPipeline_FirstReportStampedLate(t *testing.T) {
	firstRead40Late := lateReader{behind: func(at float64) float64 {
		if at < 0.035 { // the first packet (arrives at 30 ms)
			return 0.040
		}
		return 0
	}}
	for _, tc := range []struct {
		name  string
		every float64 // seconds between reports
		late  float64 // how late the first is stamped (seconds)
		r     lateReader
	}{
		{"40 ms late, a report a second", 1, 0.040, lateReader{}},
		{"90 ms late, a report a second", 1, 0.090, lateReader{}},
		{"90 ms late, a report every 5 s", 5, 0.090, lateReader{}},
		{"90 ms late, the first packet read 40 ms late", 1, 0.090, firstRead40Late},
		// A Pion publisher (its reports stamped by its last write),
		// paused before the next report was followed: the report made
		// during the pause, taken at the resume, looked 20 ms early, and
		// the mix caught that up over the second after its trial at
		// 0.973. So was TestEndToEnd_Pause's 440 Hz tone at 447 Hz (0.984)
		// from 0.3 s after the resume in train 1 (session 13).
		{"20 ms late, paused before the next report is followed", 1, 0.020, lateReader{pause: [2]float64{1.4, 3.5}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snd := slippingSender{rate: 1}
			if tc.r.pause[1] > 0 {
				snd.tick = 0.005
			}
			followsReports(t, snd, tc.every, 0, tc.late, 12, tc.r)
		})
	}
}

// TestAudioPipeline_SlippingClockResampledFromItsFirstSlope: a sender
// whose audio clock runs 0.5 % slow sends its first report 0.83 s in, once
// its track settled (placed by arrival), stamped 3 ms late, then one a
// second, as TestServe_CompositeFollowsASenderWhoseAudioClockSlips's
// publisher does. Their slope is known at the third report followed (two
// intervals: 1.99 s of a clock 0.5 % slow), when the audio is 7 ms behind
// their line (10 ms of drift since the first, less its 3 ms): the mix
// catches that up from there, at most maxCatchUp (0.5 %) beyond the
// clock's rate, so every beep from 2 s on lies within 5 ms (what the clock
// drifts in a report's interval) of where the mix places the later ones,
// on the line (the median offset from 6 s on), or within what is left of
// the offset at the first slope, caught up at 0.5 % since (1 ms for the
// beeps' own edges), and the ratio stays within 0.5 % of the clock's from
// the first slope on. With steer's 10 ms the catch-up waited for the fourth
// report, and with the slope's 2 s for a fifth when the reports spanned
// 1.98-1.99 s: the beep between them 10 ms early (the real binary's beep
// 2: −10 ms).
func TestAudioPipeline_SlippingClockResampledFromItsFirstSlope(t *testing.T) {
	snd := slippingSender{rate: 0.995, first: 0.83, srJitter: []float64{-0.003, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}
	run := recordReports(t, snd, 1, -1, 0, 12, lateReader{})
	onsets, p := run.onsets, run.p
	var steady []float64
	for _, o := range onsets {
		if o >= 6 {
			steady = append(steady, o-math.Round(o))
		}
	}
	if len(onsets) < 11 || len(steady) < 5 || run.resampledAt == 0 {
		t.Fatalf("beeps at %.4f s, resampled from %.2f s: want one a second, and resampling", onsets, run.resampledAt)
	}
	slices.Sort(steady)
	line := steady[len(steady)/2]
	// The offset at the first slope (when the ratio first left 1): that of
	// the last beep before it, on by the clock's drift till then.
	first := 0.0
	for _, o := range onsets {
		if o < run.resampledAt {
			first = math.Abs(o-math.Round(o)-line) + (run.resampledAt-o)*math.Abs(1/snd.rate-1)
		}
	}
	for _, o := range onsets {
		bound := max(0.005, first-maxCatchUp*max(o-run.resampledAt, 0)) + 0.001
		if d := o - math.Round(o) - line; o >= 2 && math.Abs(d) > bound {
			t.Errorf("beep at %.4f s: %+.1f ms from where the mix places the later ones (%+.1f ms from each second), want within %.1f ms (%.1f ms at the first slope, %.2f s, caught up at 0.5 %%)", o, d*1000, line*1000, bound*1000, first*1000, run.resampledAt)
		}
	}
	if run.worstSince > maxCatchUp {
		t.Errorf("the ratio was %.5f off the clock's from the first slope on, want within %.3f", run.worstSince, maxCatchUp)
	}
	if s := p.Stats(); s.Late != 0 || s.Reanchors != 0 {
		t.Errorf("stats %+v: want nothing late and no re-anchor", s)
	}
}

// TestAudioPipeline_AGoodClockIsNotResampledForOneReportsJitter: a good
// clock whose one report is off by 6-7 ms at the first slope (the second
// of reports 3 s apart 7 ms early; the third of reports a second apart 6 ms
// early; the first, 0.83 s in, 7 ms late, so that the honest ones after it
// look early) is never resampled: at the first slope the reports'
// offset from the line is caught up from 5 ms only when the packets'
// arrivals show the drift too (they come as much later by the line), and
// they do not. Caught up on the reports' word alone, each of these was
// resampled by 0.8-1.05 % at 3.2-3.6 s, then at 0.06 % to the end (beeps
// drifting to 13 ms off).
func TestAudioPipeline_AGoodClockIsNotResampledForOneReportsJitter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		snd   slippingSender
		every float64
	}{
		{"the second of reports 3 s apart 7 ms early", slippingSender{rate: 1, srJitter: []float64{0, 0.007, 0, 0, 0}}, 3},
		{"the third of reports a second apart 6 ms early", slippingSender{rate: 1, srJitter: []float64{0, 0, 0.006, 0, 0, 0, 0}}, 1},
		{"the first, 0.83 s in, 7 ms late", slippingSender{rate: 1, first: 0.83, srJitter: []float64{-0.007, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}, 1},
		// A Pion publisher on a busy machine as its track starts: its
		// first two reports 10 and 7.6 ms late (each less than
		// reportEarly, so neither is taken back), the rest on time. The
		// reports then show 10 ms of "drift" over 2 s that the arrivals do
		// not (TestEndToEnd_RetroactiveBlackout under load: carol's good
		// PCMU clock at 0.9916-1.0040, her 880 Hz at 876-882 Hz).
		{"the first two of reports a second apart 10 and 7.6 ms late", slippingSender{rate: 1, srJitter: []float64{-0.010, -0.0076, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}, 1},
		// The same made by its writes lagging (the packets too), and a
		// fourth report 30 ms late that its trial takes back.
		{"writes lagging 10, 8, 0 and 30 ms at the first four reports", slippingSender{rate: 1, busy: []float64{0.010, 0.008, 0, 0.030, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, every: 1}, 1},
		// Every write 6 ms late from just before the first slope (2.6 s):
		// the reports and the packets move 6 ms at once, a step, not the
		// 2 ms a second a drift shows from the reference on.
		{"every write 6 ms late from 2.6 s for 3.4 s", slippingSender{rate: 1, lagAt: 2.61, lagFor: 3.43, lag: 0.006}, 1},
		// Every write 12 ms late for the first 1.2 s: the second report
		// followed moves 12 ms at once, which no clock within MaxSkew's
		// drift followed from the first report shows in a second.
		{"every write 12 ms late for the first 1.2 s", slippingSender{rate: 1, lagFor: 1.2, lag: 0.012}, 1},
		// Reports 0.5 ms later each for their first 6 s (3 ms in all: a
		// report's jitter, no clock rate the arrivals show), then a
		// capture stall of 100 ms: the step, confirmed, set the ratio to
		// that slope (1.00055) for the rest of the recording.
		{"reports creeping 0.5 ms later a second for 6 s, then a 100 ms capture stall", slippingSender{rate: 1, stallAt: 6.5, stall: 0.1, srJitter: []float64{0, -0.0005, -0.001, -0.0015, -0.002, -0.0025, -0.003, -0.003, -0.003, -0.003, -0.003, -0.003, -0.003, -0.003}}, 1},
		// Every write 9 ms late from 3.6-3.9 s for 5 s (reports and
		// packets alike): the slope leaves a good clock's band at 6.6 s
		// (1.0014-1.0016: the arrivals show it too), and when the writes
		// come back on time the reports step back by the lag: that step,
		// confirmed, kept the slope, and a good clock was resampled by
		// 0.12 % from 10.3 s to the end.
		{"every write 9 ms late from 3.9 s for 5 s", slippingSender{rate: 1, lagAt: 3.9, lagFor: 5, lag: 0.009}, 1},
		{"every write 9 ms late from 3.6 s for 5 s", slippingSender{rate: 1, lagAt: 3.6, lagFor: 5, lag: 0.009}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := recordReports(t, tc.snd, tc.every, -1, 0, 12, lateReader{})
			if worst, worstAt := run.worst, run.worstAt; worst != 0 {
				t.Errorf("a good clock resampled: the ratio was %.5f off 1 at %.2f s, want exactly 1 throughout", worst, worstAt)
			}
			if s := run.p.Stats(); s.Late != 0 || s.Reanchors != 0 {
				t.Errorf("stats %+v: want nothing late and no re-anchor", s)
			}
		})
	}
}

// TestAudioPipeline_AGoodClockIsNotResampledForALag: a good clock whose
// every write (its reports, stamped by them, and its packets alike) lags 6-8
// ms for seconds from 3.9 s, as a publisher's does on a busy machine (two
// reports meanwhile 2-4 ms later still: their writes lagged more), with the
// recording paused meanwhile or not, is never resampled, and its beeps lie
// in the mix within 20 ms of their capture. The reports and the packets
// move at once and then no further: the report after the lag began showed
// a drift of 0.15-0.3 % since the reference that the arrivals showed too,
// the slope was taken and the offset from it caught up (0.2-0.7 % from 5.3
// s, as bob's 660 Hz in TestEndToEnd_RetroactiveBlackout under load). A
// clock 0.15 % slow, whose first slope (2 s, 3 ms) is a good clock's, still
// leaves it once its reports moved on: from 12 s on it plays at its rate.
func TestAudioPipeline_AGoodClockIsNotResampledForALag(t *testing.T) {
	for _, tc := range []struct {
		name  string
		snd   slippingSender
		pause [2]float64
	}{
		{"every write 8 ms late from 3.9 s for 6 s, two reports 2 ms later still", slippingSender{rate: 1, lagAt: 3.9, lagFor: 6, lag: 0.008, srJitter: lagJitter(0.002)}, [2]float64{}},
		{"every write 8 ms late from 3.9 s for 10 s, two reports 2 ms later still, a pause from 8 to 14 s", slippingSender{rate: 1, lagAt: 3.9, lagFor: 10, lag: 0.008, srJitter: lagJitter(0.002)}, [2]float64{8, 14}},
		{"every write 7 ms late from 3.9 s for 10 s, two reports 2 ms later still, a pause from 7 to 12 s", slippingSender{rate: 1, lagAt: 3.9, lagFor: 10, lag: 0.007, srJitter: lagJitter(0.002)}, [2]float64{7, 12}},
		{"every write 6 ms late from 3.9 s for 10 s, two reports 2 ms later still, a pause from 7 to 12 s", slippingSender{rate: 1, lagAt: 3.9, lagFor: 10, lag: 0.006, srJitter: lagJitter(0.002)}, [2]float64{7, 12}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := recordReports(t, tc.snd, 1, -1, 0, 20, lateReader{pause: tc.pause})
			if run.worst != 0 {
				t.Errorf("a good clock resampled: the ratio was %.5f off 1 at %.2f s, want exactly 1 throughout", run.worst, run.worstAt)
			}
			for _, o := range run.onsets {
				if d := o - math.Round(o); math.Abs(d) > 0.020 {
					t.Errorf("beep at %.4f s in the mix: %+.1f ms from its capture", o, d*1000)
				}
			}
			if s := run.p.Stats(); s.Late != 0 || s.Reanchors != 0 && tc.pause[1] == 0 {
				t.Errorf("stats %+v: want nothing late and no re-anchor", s)
			}
		})
	}
	t.Run("a clock 0.15 % slow", func(t *testing.T) {
		snd := slippingSender{rate: 0.9985}
		run := recordReports(t, snd, 1, -1, 0, 20, lateReader{})
		if w := run.worstAfter(12); w > 0.0005 {
			t.Errorf("the ratio was %.5f off the clock's rate (%.5f) after 12 s: want within 0.05 %% (its slope)", w, 1/snd.rate)
		}
	})
}

// lagJitter returns srJitter for slippingSender: its 6th and 7th reports
// (5.3 and 6.3 s) j later than the rest, as if their writes lagged more.
func lagJitter(j float64) []float64 {
	jit := make([]float64, 30)
	jit[5], jit[6] = -j, -j
	return jit
}

// TestAudioPipeline_ALagSlopeIsDroppedAtAFarStepBack: a good clock whose
// every write lags from 3.9 s (a Pion publisher on a busy machine: its
// reports, stamped by its writes, and its packets alike), 6-8 ms, then
// 12-16 ms a second on (a lag that grew: the reports moved on, and the
// arrivals with them), takes a slope of 1.002-1.003 from the lag; the
// recording is paused (a blackout) and the lag ends meanwhile. The mapping
// ran on at that slope through the pause, so the first reports after it
// step back by the lag and what the slope drifted meanwhile: over 20 ms, a
// far step, confirmed by the next report. The reports with the step lie on
// a good clock's line from the reference: the slope was the lag's, and from
// the step's candidate on the track plays at ratio 1, every beep from the
// step on within 20 ms of its instant. Kept, it resampled a good clock to
// the end (api TestEndToEnd_RetroactiveBlackout under load, session 21:
// bob's 660 Hz at 658 Hz after the blackout, 1.00286), and by the next
// slope and a catch-up for seconds after it (0.46-0.5 % off 1).
func TestAudioPipeline_ALagSlopeIsDroppedAtAFarStepBack(t *testing.T) {
	for _, tc := range []struct {
		name  string
		snd   slippingSender
		pause [2]float64
	}{
		{"every write 6 ms late from 3.9 s, 12 ms from 4.9 s, for 6 s, paused 6.8-11.6 s", slippingSender{rate: 1, lagAt: 3.9, lagFor: 6, lag: 0.006, lagThenAt: 4.9, lagThen: 0.012}, [2]float64{6.8, 11.6}},
		{"every write 8 ms late from 3.9 s, 16 ms from 4.9 s, for 3.5 s, paused 7.5-12.3 s", slippingSender{rate: 1, lagAt: 3.9, lagFor: 3.5, lag: 0.008, lagThenAt: 4.9, lagThen: 0.016}, [2]float64{7.5, 12.3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			total := tc.pause[1] + 6
			run := recordReports(t, tc.snd, 1, -1, 0, total, lateReader{pause: tc.pause})
			if s := run.p.Stats(); s.Late != 0 || s.Reanchors != 0 {
				t.Errorf("stats %+v: want nothing late and no re-anchor (the mapping kept across the pause)", s)
			}
			// The report made in the pause, given with the first packet
			// after it, is followed after its trial: the step's
			// candidate, from where the track plays at ratio 1; the next
			// one (a second on) confirms it, and the step back is taken.
			cand, back := tc.pause[1]+reportTrial.Seconds()+0.1, tc.pause[1]+1.4
			if w := run.worstAfter(cand); w != 0 || run.p.Ratio() != 1 {
				t.Errorf("a good clock resampled after the step back's candidate (%.1f s on): the ratio %.5f off 1, %.5f at the end, want exactly 1", cand, w, run.p.Ratio())
			}
			n := 0
			for _, o := range run.onsets {
				if o < back {
					continue
				}
				n++
				if d := o - math.Round(o); math.Abs(d) > 0.020 {
					t.Errorf("beep at %.4f s in the mix: %+.1f ms from its instant, after the step back: want within 20 ms", o, d*1000)
				}
			}
			if n < int(total-back)-1 {
				t.Errorf("%d beeps after the step back (%.1f s), want %d", n, back, int(total-back)-1)
			}
		})
	}
}

// TestAudioPipeline_ALagIsLeftAtAResume: a good clock whose every write
// (and so every report, stamped by it) lags for seconds, the lag ending
// while the track is paused (a blackout), and no silence in its audio (a
// hum between the beeps: a tone, music, a speaker who does not pause). The
// line the reports followed before the pause was late by the lag (and, with
// a lag that grew, ran on at its slope, 0.2-0.3 %), so the report made
// during the pause, given with the first packet after it, is a step back of
// 12-30 ms: the pause's cut takes it. From the resume on the track plays at
// ratio 1 and every beep lies within 5 ms of its instant, nothing late, no
// re-anchor. Taken as any other step (its candidate after the report's
// trial, confirmed by the next report a second on), the line's slope played
// on for 0.3 s after the resume, and the step back, found no silence to be
// taken in, was caught up at maxCatchUp (0.5 %) for seconds, the beeps
// meanwhile up to 30 ms late.
func TestAudioPipeline_ALagIsLeftAtAResume(t *testing.T) {
	for _, tc := range []struct {
		name  string
		snd   slippingSender
		pause [2]float64
	}{
		// A lag that grows (the mix takes it for a drift: a slope).
		{"every write 6 ms late from 3.9 s, 12 ms from 4.9 s, for 6 s, paused 6.8-11.6 s", slippingSender{rate: 1, lagAt: 3.9, lagFor: 6, lag: 0.006, lagThenAt: 4.9, lagThen: 0.012, hum: true}, [2]float64{6.8, 11.6}},
		{"every write 8 ms late from 3.9 s, 16 ms from 4.9 s, for 3.5 s, paused 7.5-12.3 s", slippingSender{rate: 1, lagAt: 3.9, lagFor: 3.5, lag: 0.008, lagThenAt: 4.9, lagThen: 0.016, hum: true}, [2]float64{7.5, 12.3}},
		// One that does not (a step: the line follows it, no slope).
		{"every write 14 ms late from 3.9 s for 6 s, paused 6.8-11.6 s", slippingSender{rate: 1, lagAt: 3.9, lagFor: 6, lag: 0.014, hum: true}, [2]float64{6.8, 11.6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			total := tc.pause[1] + 6
			run := recordReports(t, tc.snd, 1, -1, 0, total, lateReader{pause: tc.pause})
			if s := run.p.Stats(); s.Late != 0 || s.Reanchors != 0 {
				t.Errorf("stats %+v: want nothing late and no re-anchor", s)
			}
			if w := run.worstAfter(tc.pause[1] + 0.1); w != 0 || run.p.Ratio() != 1 { // from the first packet after it
				t.Errorf("a good clock resampled after the resume (%.1f s): the ratio %.5f off 1, %.5f at the end, want exactly 1", tc.pause[1], w, run.p.Ratio())
			}
			n := 0
			for _, o := range run.onsets {
				if o < tc.pause[1] {
					continue
				}
				n++
				if d := o - math.Round(o); math.Abs(d) > 0.005 {
					t.Errorf("beep at %.4f s in the mix: %+.1f ms from its instant, after the resume: want within 5 ms", o, d*1000)
				}
			}
			if n < int(total-tc.pause[1])-1 {
				t.Errorf("%d beeps after the resume (%.1f s), want %d", n, tc.pause[1], int(total-tc.pause[1])-1)
			}
		})
	}
}

// TestAudioPipeline_ASlowClockKeepsItsSlopeAtAResume: a clock 0.5 % slow
// whose every write lags 22 ms for seconds, the lag ending while the track is
// paused: the report after the pause steps back by the lag, as a good
// clock's does (TestAudioPipeline_ALagIsLeftAtAResume), but the slope is
// the clock's (shown before the lag): it is kept, never ratio 1 after the
// resume. Followed anew from the resume (the reports' slope unknown for
// 2-3 s), it played at ratio 1 meanwhile, its pitch 0.5 % off.
func TestAudioPipeline_ASlowClockKeepsItsSlopeAtAResume(t *testing.T) {
	for _, tc := range []struct {
		name  string
		snd   slippingSender
		pause [2]float64
	}{
		{"every write 22 ms late from 4.5 s for 3 s, paused 6.8-9.6 s", slippingSender{rate: 0.995, lagAt: 4.5, lagFor: 3, lag: 0.022, hum: true}, [2]float64{6.8, 9.6}},
		{"every write 22 ms late from 4.5 s for 3 s, paused 6.8-11.6 s", slippingSender{rate: 0.995, lagAt: 4.5, lagFor: 3, lag: 0.022, hum: true}, [2]float64{6.8, 11.6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := recordReports(t, tc.snd, 1, -1, 0, tc.pause[1]+6, lateReader{pause: tc.pause})
			if s := run.p.Stats(); s.Late != 0 || s.Reanchors != 0 {
				t.Errorf("stats %+v: want nothing late and no re-anchor", s)
			}
			one := math.Abs(1 - 1/tc.snd.rate) // the ratio 1's distance from the clock's
			for i, d := range run.off {
				if at := (time.Duration(i) * run.frame).Seconds(); at >= tc.pause[1]+0.1 && d == one {
					t.Errorf("played at ratio 1 at %.2f s, after the resume (%.1f s): want the clock's slope kept", at, tc.pause[1])
					break
				}
			}
		})
	}
}

// TestAudioPipeline_ASlowClockKeepsItsSlopeAcrossALagsStepBack: a clock
// 0.5 % slow whose every write lags 22 ms for 4.5-6 s from 1.4-2.3 s: the
// lag's start is a far step forward, confirmed, and the reference from
// there; the first slope (1.0049) is measured within the lag, and the
// lag's end, a step back of 22 ms, puts the reports back within reportLate
// of a good clock's line from that reference (0.5 % of the 4.5-5 s since
// is 22-25 ms). The slope is the clock's: from the lag's end on it is
// resampled at it, never at ratio 1, and every beep from 2.5 s after the
// lag's end lies within 5 ms of its instant. Taken for a lag's
// slope (a good clock's), the step dropped it: at ratio 1 till the next
// slope, then a catch-up, beeps 9.5-9.8 ms off; so did a far candidate
// played at ratio 1 till the next report (candOne).
func TestAudioPipeline_ASlowClockKeepsItsSlopeAcrossALagsStepBack(t *testing.T) {
	for _, tc := range []struct {
		name string
		snd  slippingSender
	}{
		// The lag's end a near step back, confirmed after a candidate.
		{"every write 22 ms late from 2.3 s for 4.5 s", slippingSender{rate: 0.995, lagAt: 2.3, lagFor: 4.5, lag: 0.022}},
		// A far one.
		{"every write 22 ms late from 1.4 s for 5.25 s", slippingSender{rate: 0.995, lagAt: 1.4, lagFor: 5.25, lag: 0.022}},
		{"every write 22 ms late from 1.7 s for 6 s", slippingSender{rate: 0.995, lagAt: 1.7, lagFor: 6, lag: 0.022}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := recordReports(t, tc.snd, 1, -1, 0, 20, lateReader{})
			if s := run.p.Stats(); s.Late != 0 || s.Reanchors != 0 {
				t.Errorf("stats %+v: want nothing late and no re-anchor", s)
			}
			end := tc.snd.lagAt + tc.snd.lagFor
			one := math.Abs(1 - 1/tc.snd.rate) // the ratio 1's distance from the clock's
			for i, d := range run.off {
				if at := (time.Duration(i) * run.frame).Seconds(); at >= end && d == one {
					t.Errorf("played at ratio 1 at %.2f s, after the lag's end (%.2f s): want the clock's slope kept", at, end)
					break
				}
			}
			after := end + 2.5
			for _, o := range run.onsets {
				if d := o - math.Round(o); o > after && math.Abs(d) > 0.005 {
					t.Errorf("beep at %.4f s in the mix: %+.1f ms from its instant, 2.5 s after the lag's end: want within 5 ms", o, d*1000)
				}
			}
		})
	}
}

// TestAudioPipeline_SlippingClockFollowedAcrossAPause: a Pion publisher
// (writes on a 5 ms ticker, reports stamped by its last write) whose audio
// clock runs 0.5 % slow, recorded with a pause from 2.7 s to 5.2 s while the
// mix catches up the offset its reports show (TestServe_CompositeFollows-
// ASenderWhoseAudioClockSlips pauses too). The catch-up ends where its
// timestamps show it caught up, and the report made during the pause, taken
// at the resume, is placed on at the clock's rate the reports showed: every
// beep where the reports place it, nothing late. The catch-up ended at the
// first drift window's end after the resume instead: the mapping ran past
// the reports' line through the pause and was pulled back at 2 % after it,
// onto audio already decided (2 packets late, dropped); with a 1 s pause in
// the real binary it ended 5-9 ms past the line (beeps 11-14 ms off).
func TestAudioPipeline_SlippingClockFollowedAcrossAPause(t *testing.T) {
	snd := slippingSender{rate: 0.995, stallAt: 8.5, stall: 0.1, tick: 0.005}
	followsReports(t, snd, 1, -1, 0, 12, lateReader{pause: [2]float64{2.7, 5.2}})
}

// TestAudioPipeline_ReaderBehindItsSocketFollowsTheReports: the sender's
// capture stalls 400 ms at 6.5 s (a sender that skips the ticks it missed
// on a loaded machine: its timestamps fall behind its wall clock, and its
// reports say so), while the recorder's reader, starved of CPU, falls 1.5 s
// behind its socket from 3 s to 4 s, and catches up from 9 s to 10 s. Given the packets' receive times
// (WriteRTPAt), the reports fit the arrivals and the live mix takes the step
// as the offline placement of the track's file does (Steps): every beep where
// the reports place it. Taken as arriving when read, the packets are 1.5 s
// late by the reports, more than srPosition lets a report place them: the
// mix does not take the step, and the beeps after it are 400 ms off the
// file's placement (seen before WriteRTPAt). This is how the real binary's
// mix came to have a hole where the file (checked as one run from its
// offset) has none, with a test sender that skipped ticks
// (TestServe_KillNineRecoversEverything, session 9): the silence is the
// sender's stall, placed as its clock says, not lost audio.
func TestAudioPipeline_ReaderBehindItsSocketFollowsTheReports(t *testing.T) {
	behind := func(at float64) float64 { // 1.5 s behind from 4 s to 9 s, caught up by 10 s
		return 1.5 * min(max(at-3, 0), 1, max(10-at, 0))
	}
	snd := slippingSender{rate: 1, stallAt: 6.5, stall: 0.4}
	followsReports(t, snd, 1, -1, 0, 12, lateReader{behind: behind, received: true})
}

// lateReader is a track's reader that reads each packet behind(arrival)
// seconds after it arrived (nil: at once). With received, it tells the
// pipeline when the packet arrived (WriteRTPAt); otherwise the packet is
// taken as arriving when read. With pause (seconds of arrival, from and to;
// zero: none), the recording is paused meanwhile, as the recorder's gate
// does it: the packets that arrive meanwhile are dropped (Pause before the
// first, Resync after the last), and the sender's latest report is given
// with the first packet after it (the recorder takes a report when it reads
// a packet).
type lateReader struct {
	behind   func(at float64) float64
	received bool
	pause    [2]float64
}

// paused reports whether a packet arriving at at (seconds) is dropped by the pause.
func (r lateReader) paused(at float64) bool {
	return at >= r.pause[0] && at < r.pause[1]
}

// followsReports records total seconds of snd's beeps with a report every
// every seconds (the one numbered outlierR stamped outlierLate seconds
// late; -1: none), read as r reads them, and checks that every beep lies in
// the mix where the reports place it, within 20 ms, nothing late,
// OriginSent, and the ratio.
func followsReports(t *testing.T, snd slippingSender, every float64, outlierR int, outlierLate, total float64, r lateReader) {
	t.Helper()
	run := recordReports(t, snd, every, outlierR, outlierLate, total, r)
	onsets, p := run.onsets, run.p
	beeps := int(total) - 1 // one a second, from 1 s
	for s := 1; s < int(total); s++ {
		if r.paused(float64(s)) {
			beeps-- // cut by the pause
		}
	}
	if len(onsets) < beeps {
		t.Fatalf("%d beeps in the mix, want %d", len(onsets), beeps)
	}
	// Where the reports place a beep: at its wall-clock instant. One
	// captured after the stall and before the second report after it (the
	// one that confirms the step) is held (the pipeline's hold) and moved
	// there by the step when it is confirmed, if that comes within the
	// budget (5 s) of the stall; otherwise the mix places it the stall
	// earlier (the offline mix and the composite until the first: Steps).
	// A sender on a ticker stamps its reports by its writes: they place
	// its audio a packet (20 ms) and half a tick later, on average.
	lag := 0.0
	if snd.tick > 0 {
		lag = 0.020 + snd.tick/2
	}
	if outlierR == 0 || len(snd.busy) > 0 && snd.busy[0] > 0 {
		// Placed by its least-late packet's arrival (its first report
		// placed it later): the packet's length and its transit after
		// its capture. The reports' line is followed from there.
		lag = 0.020 + reportTransit
	}
	for _, o := range onsets {
		want := math.Round(o - lag + snd.stall/2)
		if after := math.Ceil((snd.stallAt-snd.firstReport())/every)*every + snd.firstReport() + every; snd.stall > 0 && want >= snd.stallAt && want < after && after-snd.stallAt >= DefaultLatency.Seconds() {
			want -= snd.stall
		}
		want += lag
		if d := o - want; math.Abs(d) > 0.020 {
			t.Errorf("beep at %.4f s in the mix: %+.1f ms from where the reports place it (%.3f s)", o, d*1000, want)
		}
	}
	if s := p.Stats(); s.Late != 0 || s.Reanchors != 0 {
		t.Errorf("stats %+v: want nothing late and no re-anchor", s)
	}
	// The sender's instant the mix puts at the track's first sample (the
	// composite places the sender's video by it): its capture at 0 (a
	// sender on a ticker stamps its reports later: see lag).
	// A sender whose writes lag at every report stamps every report late:
	// the reports say its clock no earlier than the least-late one, and the
	// pipeline takes a report's lead on the line it follows for that line's
	// lateness from reportEarly on (less is a report's jitter).
	least := 0.0
	if len(snd.busy) > 0 {
		least = slices.Min(snd.busy)
	}
	if at, ok := p.OriginSent(); snd.tick == 0 && (!ok || at.Sub(run.t0).Seconds() < least-0.002 || at.Sub(run.t0).Seconds() > least+min(least, reportEarly.Seconds())+0.002) {
		t.Errorf("OriginSent %v (%v), want the first sample's capture at %v (+%v, ±2 ms)", at.Sub(run.t0), ok, least, min(least, reportEarly.Seconds()))
	}
	if r := p.Ratio(); math.Abs(r-1/snd.rate) > 0.002 || snd.rate == 1 && snd.srJitter == nil && r != 1 {
		t.Errorf("resampling ratio %.5f at the end, want about %.5f (the sender's clock; exactly 1 for a good one)", r, 1/snd.rate)
	}
	if snd.rate == 1 && snd.srJitter == nil && run.worst != 0 {
		// Resampled, a good clock's tone is off its pitch (1 %: a 660 Hz
		// tone at 653 Hz).
		t.Errorf("a good clock resampled: the ratio was %.5f off 1 at %.2f s, want exactly 1 throughout", run.worst, run.worstAt)
	}
	if run.worst > maxCatchUp+0.001 && r.pause[1] == 0 {
		// An offset from the reports' line is caught up at most 0.5 %
		// beyond the clock's rate (and 0.1 % for the error of the slope
		// measured): what is off more is a pitch a listener hears (a
		// first slope's catch-up over a second was 1.4-1.6 % off). Across
		// a pause a slipping clock whose slope was not known yet may have
		// its drift over the pause taken for a step (followReport).
		t.Errorf("the ratio was %.5f off the sender's clock at %.2f s: want at most %.3f (a catch-up within 0.5 %%)", run.worst, run.worstAt, maxCatchUp+0.001)
	}
}

// reportTransit is how long recordReports' packets take from their
// sending to the machine (seconds), before their jitter.
const reportTransit = 0.010

// reportRun is what recordReports recorded: the beeps' onsets in the mix
// (seconds), the pipeline, the virtual clock's start, the ratio's largest
// distance from the sender's clock and when (seconds), when the ratio first
// left 1 (0: never) and its largest distance from the clock's since, and
// for each packet written, when it arrived and where the mapping placed its
// first sample less its capture instant (seconds: PositionOf once written),
// and the ratio's distance from the sender's clock at every frame of the mix.
type reportRun struct {
	onsets                  []float64
	p                       *AudioPipeline
	t0                      time.Time
	worst, worstAt          float64
	resampledAt, worstSince float64
	arrived, placed         []float64
	off                     []float64
	frame                   time.Duration
}

// worstAfter returns the ratio's largest distance from the sender's clock
// from at seconds on.
func (r reportRun) worstAfter(at float64) float64 {
	w := 0.0
	for i, d := range r.off {
		if (time.Duration(i) * r.frame).Seconds() >= at {
			w = max(w, d)
		}
	}
	return w
}

// recordReports records total seconds of snd's beeps (followsReports)
// through a pipeline into a mix; every 0: the sender sends no reports.
func recordReports(t *testing.T, snd slippingSender, every float64, outlierR int, outlierLate, total float64, r lateReader) reportRun {
	t.Helper()
	sink := &captureSink{}
	m, c := newVirtualMixer(MixConfig{SampleRate: 8000}, sink)
	t0 := c.t
	p, err := NewAudioPipeline(AudioPipelineConfig{Codec: CodecPCMU, Input: m.AddInput("slips", InputOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	const transit = reportTransit
	jitter := func(n int) float64 { return float64((n*7)%4) * 0.004 } // 0-12 ms
	if snd.tick > 0 {
		jitter = func(int) float64 { return 0 } // the wait for the sender's tick is the packets' jitter
	}
	payload := make([]byte, 160)
	report := 0 // next report: at report·every + snd.firstReport() s of the wall clock
	frame := m.Config().Frame
	next := 0       // next packet
	last := 0.0     // its arrival: a burst comes in order
	lastRead := 0.0 // when it was read: in order too
	// The ratio's largest distance from the sender's clock, and when.
	worst, worstAt := 0.0, 0.0
	inPause := false
	resampledAt, worstSince := 0.0, 0.0 // when the ratio first left 1, and its furthest from the clock's since
	var off []float64                   // the ratio's distance from the clock's, at every frame
	var heldAt time.Time                // a report held by the pause (zero: none)
	var arrived, placed []float64
	var heldTS uint32
	for now := time.Duration(0); now.Seconds() < total+0.2; now += 5 * time.Millisecond {
		for {
			n := next * 160
			if snd.captured(now.Seconds()-transit) < n+160 {
				break // packet next is not captured yet (arrives transit after)
			}
			at := max(snd.sent(snd.wall(n+159))+transit+jitter(next), last)
			read := at
			if r.behind != nil {
				read = max(at+r.behind(at), lastRead)
			}
			if read > now.Seconds() {
				break
			}
			c.t, last, lastRead = t0.Add(time.Duration(read*float64(time.Second))), at, read
			for ; every > 0 && float64(report)*every+snd.firstReport() <= at; report++ {
				w := float64(report)*every + snd.firstReport()
				stamp := w
				if report == outlierR {
					stamp -= outlierLate // its RTP time is from outlierLate before its NTP time
				}
				if at, _, ok := snd.writeStalled(w - 1e-9); ok {
					stamp = at // by the last sample written
				}
				stamp -= snd.lagging(w)
				if j := snd.srJitter; len(j) > 0 {
					stamp += j[report%len(j)]
				}
				at, ts := t0.Add(time.Duration(w*float64(time.Second))), uint32(snd.captured(stamp))
				if snd.tick > 0 {
					ts = snd.lastWritten(w)
					if report == outlierR { // made as if its writes lagged outlierLate
						ts = snd.lastWritten(w - outlierLate)
					}
				}
				if r.paused(read) {
					heldAt, heldTS = at, ts
					continue
				}
				p.SenderReport(1, at, ts)
			}
			switch paused := r.paused(read); {
			case paused && !inPause:
				p.Pause()
				inPause = true
			case !paused && inPause:
				p.Resync()
				if !heldAt.IsZero() {
					p.SenderReport(1, heldAt, heldTS)
					heldAt = time.Time{}
				}
				inPause = false
			}
			if inPause {
				next++
				continue
			}
			for i := range payload {
				payload[i] = 0xFF
				if snd.hum {
					payload[i] = 0x70 | byte((n+i)%2)<<7 // -120, +120
				}
				if math.Mod(snd.wall(n+i), 1) < 0.1 {
					payload[i] = 0x90
				}
			}
			pkt := &rtp.Packet{Header: rtp.Header{SSRC: 1, SequenceNumber: uint16(next), Timestamp: uint32(n)}, Payload: payload}
			write := p.WriteRTP
			if r.received {
				write = func(pkt *rtp.Packet) error { return p.WriteRTPAt(pkt, t0.Add(time.Duration(at*float64(time.Second)))) }
			}
			if err := write(pkt); err != nil {
				t.Fatal(err)
			}
			if pos, ok := p.PositionOf(pkt.Timestamp); ok {
				arrived, placed = append(arrived, at), append(placed, float64(pos)/8000-snd.wall(n))
			}
			next++
		}
		c.t = t0.Add(now)
		if now%frame == 0 {
			if err := m.Step(); err != nil {
				t.Fatal(err)
			}
			d := math.Abs(p.Ratio() - 1/snd.rate)
			off = append(off, d)
			if p.Ratio() != 1 && resampledAt == 0 {
				resampledAt = now.Seconds()
			}
			if resampledAt > 0 {
				worstSince = max(worstSince, d)
			}
			if d > worst {
				worst, worstAt = d, now.Seconds()
			}
		}
	}
	p.Close()
	m.RemoveInput(p.input)
	if err := m.Finish(m.Now()); err != nil {
		t.Fatal(err)
	}
	var onsets []float64
	loud := func(v int16) bool { // a beep's sample: not silence, nor the hum
		if snd.hum {
			return v > 1000 || v < -1000
		}
		return v != 0
	}
	for i := 1; i < len(sink.pcm); i++ {
		if loud(sink.pcm[i]) && !loud(sink.pcm[i-1]) && (len(onsets) == 0 || float64(i)/8000-onsets[len(onsets)-1] > 0.5) {
			onsets = append(onsets, float64(i)/8000)
		}
	}
	t.Logf("beeps at %.4f s; ratio %.5f (furthest from the clock's %.5f at %.2f s); %+v", onsets, p.Ratio(), worst, worstAt, p.Stats())
	return reportRun{onsets, p, t0, worst, worstAt, resampledAt, worstSince, arrived, placed, off, frame}
}

// TestAudioPipeline_DeferredFollowsReportsInOrder: a sender report that
// comes while the track's packets are queued undecoded (deferred.go) applies
// to the packets that came after it, as it does on arrival. Track b stalls
// for good at 2 s, so the mixer runs the budget (5 s) behind and track a
// (Opus, its reader ticking) defers nearly the budget of packets; a's sender
// stalls its capture for 100 ms at 6.5 s, which its reports (every 3 s, as
// libwebrtc sends them for audio) show from the one at 9.3 s and the one at
// 12.3 s confirms. The mix is the very mix of decoding every packet on
// arrival, to the sample, and every beep (a wall-clock second's start) lands
// where the reports place it, within 20 ms: those captured after the stall
// and before the confirming report the stall earlier
// (TestAudioPipeline_FollowsTheSendersReports), the rest at their instant.
// A report applied when it came ran on the oldest queued packet, seconds
// older than it: the step was taken at 11.1 s, and the beep at 12 s landed
// 100 ms later than on arrival.
func TestAudioPipeline_DeferredFollowsReportsInOrder(t *testing.T) {
	const total = 17.0 // seconds of the wall clock
	snd := slippingSender{rate: 1, clock: 48000, stallAt: 6.5, stall: 0.1}
	// What a's sender captured, beeping in the first 100 ms of every second
	// of its wall clock, encoded by the real opusenc.
	pcm := mediatest.Sine(1000, 48000, snd.captured(total+1), 8000)
	for n := range pcm {
		if math.Mod(snd.wall(n), 1) >= 0.1 {
			pcm[n] = 0
		}
	}
	payloads := encodeOpus(t, pcm, "--bitrate", "24")
	want, _, _ := reportsScenario(t, snd, payloads, total, false)
	got, stats, queued := reportsScenario(t, snd, payloads, total, true)
	var beeps []float64
	for i, v := range got {
		if (v > 2000 || v < -2000) && (len(beeps) == 0 || float64(i)/8000-beeps[len(beeps)-1] > 0.5) {
			beeps = append(beeps, float64(i)/8000)
		}
	}
	t.Logf("beeps at %.4f s; a deferred up to %d packets; stats of a %+v", beeps, queued, stats)
	if queued < 200 {
		t.Fatalf("a deferred at most %d packets: the scenario no longer holds reports in its queue", queued)
	}
	if len(got) != len(want) || !slices.Equal(got, want) {
		t.Errorf("the mix differs from decoding on arrival (%d samples, %d differ; %d samples on arrival)", len(got), differ(got, want), len(want))
	}
	if len(beeps) < int(total)-1 {
		t.Fatalf("%d beeps in the mix, want %d", len(beeps), int(total)-1)
	}
	const confirmed = 12.3 // the report that confirms the step
	for _, o := range beeps {
		want := math.Round(o + snd.stall/2)
		if want >= snd.stallAt && want < confirmed {
			want -= snd.stall
		}
		if d := o - want; math.Abs(d) > 0.020 {
			t.Errorf("beep at %.4f s in the mix: %+.1f ms from where the reports place it (%.3f s)", o, d*1000, want)
		}
	}
	if stats.Late != 0 || stats.Lost != 0 {
		t.Errorf("stats of a %+v: want nothing late or lost", stats)
	}
}

// reportsScenario runs the scenario of
// TestAudioPipeline_DeferredFollowsReportsInOrder and returns the mix, a's
// stats and the most packets a had queued.
func reportsScenario(t *testing.T, snd slippingSender, payloads [][]byte, total float64, deferred bool) ([]int16, PipelineStats, int) {
	sink := &captureSink{}
	m, c := newVirtualMixer(MixConfig{SampleRate: 8000}, sink)
	t0 := c.t
	a, err := NewAudioPipeline(AudioPipelineConfig{Codec: CodecOpus, Input: m.AddInput("a", InputOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	if deferred {
		a.EnableDefer()
	}
	b, err := NewAudioPipeline(AudioPipelineConfig{Codec: CodecPCMU, Input: m.AddInput("b", InputOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	const transit, every = 0.010, 3.0
	silence := bytes.Repeat([]byte{0xFF}, 160)
	frame := m.Config().Frame
	next, nextB, report := 0, 0, 0 // a's next packet, b's, a's next report (at report·every + 0.3 s)
	lastA := time.Duration(0)
	queued := 0
	for now := time.Duration(0); now.Seconds() < total; now += 5 * time.Millisecond {
		c.t = t0.Add(now)
		// b: in step until 2 s, then nothing (its network stalled).
		for ; nextB < 100 && time.Duration(nextB)*20*time.Millisecond+10*time.Millisecond <= now; nextB++ {
			pkt := &rtp.Packet{Header: rtp.Header{SSRC: 2, SequenceNumber: uint16(nextB), Timestamp: uint32(160 * nextB)}, Payload: silence}
			if err := b.WriteRTP(pkt); err != nil {
				t.Fatal(err)
			}
		}
		for ; next < len(payloads); next++ {
			n := next * 960
			if at := snd.wall(n+959) + transit; at > now.Seconds() {
				break
			}
			for ; float64(report)*every+0.3 <= now.Seconds(); report++ {
				w := float64(report)*every + 0.3
				a.SenderReport(1, t0.Add(time.Duration(w*float64(time.Second))), uint32(snd.captured(w)))
			}
			pkt := &rtp.Packet{Header: rtp.Header{SSRC: 1, SequenceNumber: uint16(next), Timestamp: uint32(n)}, Payload: payloads[next]}
			if err := a.WriteRTP(pkt); err != nil {
				t.Fatal(err)
			}
			lastA = now
			queued = max(queued, a.dq.n)
		}
		if a.Deferred() && now-lastA >= 100*time.Millisecond {
			a.Tick() // a's reader: its read with a deadline timed out
			lastA = now
		}
		if now%frame == 0 {
			if err := m.Step(); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, p := range []*AudioPipeline{a, b} {
		p.Close()
		m.RemoveInput(p.input)
	}
	if err := m.Finish(m.Now()); err != nil {
		t.Fatal(err)
	}
	return sink.pcm, a.Stats(), queued
}
