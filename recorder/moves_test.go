package recorder

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/media"
	"github.com/rtcrec/recorder/recorder/conference"
)

// TestMixMoves_FilePlacedWhereTheMixPlacedIt: a µ-law track without
// sender reports, recorded through its sink into an 8 kHz mix, whose reader
// reads it late for the first 2 s (lag), then on time (5 ms in transit):
// the mix anchors it late, and once the packets come on time pulls it back
// by resampling (media's measure) — or, after a stall delivered in a burst
// with a budget of 1 s, after the burst. The beeps (100 ms at the start of
// every second of the sender's clock) lie in the live mix where the track's
// file, placed by its mediaOffset and the manifest's steps (the moves the
// sink kept: timing.moves), has them, within 20 ms; and from 14 s on where
// the sender captured them, within 20 ms. Without the moves (session 9's
// probe, docs/unlanded) the file's placement stays on the late anchor's
// line while the mix is pulled back: they part by the lag.
func TestMixMoves_FilePlacedWhereTheMixPlacedIt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		lag     float64 // seconds the first 2 s are read late
		stall   bool    // a 2.5 s stall from 2 s, released in a burst
		latency time.Duration
	}{
		{"read 350 ms late, then on time", 0.35, false, 0},
		{"read 100 ms late, then on time", 0.1, false, 0},
		{"read 100 ms late, then a stall and a burst", 0.1, true, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const rate, total = 8000, 24.0
			start := time.Unix(1000, 0)
			now := start
			ms, out, _ := muLawSink(t, start, &now, tc.latency)
			pipe := ms.audio.(*media.AudioPipeline)
			ms.logPlacement(pipe, 1)
			ms.moves = &mixMoves{rate: rate, clock: rate}
			arrival := func(n int) float64 { // packet n: sent at its last sample
				sent := float64(n+1) * 0.02
				switch {
				case sent < 2:
					return sent + tc.lag
				case tc.stall && sent < 4.5:
					return 4.5
				}
				return max(sent+0.005, 2+tc.lag)
			}
			live, placed, timing := recordBeeps(t, ms, out, start, &now, total, arrival, nil)
			steps := timing.Steps()
			origin, _ := pipe.Origin()
			t.Logf("origin %.4f s; beeps at %.4f s in the live mix, %.4f s by the file's placement (%d steps: %+v); ratio %.4f; %+v",
				float64(origin)/rate, live, placed, len(steps), steps, pipe.Ratio(), pipe.Stats())
			// Each beep of the file's placement has one in the live mix
			// within 20 ms.
			found, onTime := 0, 0
			var off []float64 // from 14 s on: beeps more than 20 ms off on time (ms)
			for k, f := range placed {
				i := len(live)
				for j, l := range live {
					if math.Abs(l-f) <= 0.05 {
						i = j
					}
				}
				if i == len(live) {
					// The beeps sent in the stall's first 1.5 s came later
					// than the budget: not in the mix.
					if sent := float64(k + 1); !tc.stall || sent < 2 || sent >= 3.5 {
						t.Errorf("the file's beep at %.4f s: none in the live mix within 50 ms", f)
					}
					continue
				}
				found++
				if d := live[i] - f; math.Abs(d) > 0.020 {
					t.Errorf("beep at %.4f s in the live mix, %.4f s by the file's placement: %+.1f ms apart", live[i], f, d*1000)
				}
				// On time: a packet's first sample where it came on time,
				// 25 ms after its capture (it is sent at its last sample, 5
				// ms in transit).
				if w := math.Round(live[i]); w >= 14 {
					onTime++
					if d := live[i] - w - 0.025; math.Abs(d) > 0.020 {
						off = append(off, d*1000)
					}
				}
			}
			if found < 12 || onTime < 8 {
				t.Errorf("%d beeps of the file's placement in the live mix (%d from 14 s on): the test shows nothing", found, onTime)
			}
			// After the stall too: the pull-back stops on time (it
			// overshot to 80 ms early, then came back at 0.2 %).
			if len(off) > 0 {
				t.Errorf("from 14 s on, beeps %.1f ms off on time (its first sample at its on-time arrival), want within 20 ms", off)
			}
		})
	}
}

// TestMixMoves_ALateStampedReportIsNoStep: a µ-law track with sender
// reports a second apart, recorded through its sink into an 8 kHz mix, its
// packets on time (10-14 ms in transit). The sender's first report is
// stamped 455 ms late (Pion stamps a report by when it last wrote a packet,
// and on a busy machine the publisher's writes lagged: TestDemo's alice,
// session 11, manifest steps [{File:0.626 By:-0.455} {File:1.64 By:0}]);
// the later ones are honest. The live mix leaves the late one out (it does
// not fit the arrivals) and places the track by its arrivals and the
// honest ones: no step. The manifest's timing, built as the track's end
// builds it, does not step either: every beep (100 ms at the start of each
// second of the sender's clock) lies in the live mix where the file's
// placement (mediaOffset and the timing's steps) has it, within 10 ms (a
// move is kept once it reaches 10 ms). On the old main the reports' steps
// placed the file's audio between the honest report that showed the "step"
// and the one that confirmed it 455 ms early (the live mix's move was
// kept only from the confirmation on): a 455 ms hole in the offline mix.
func TestMixMoves_ALateStampedReportIsNoStep(t *testing.T) {
	const rate, total, late = 8000, 8.0, 0.455
	start := time.Unix(1000, 0)
	now := start
	ms, out, pipe, sr := reportingSink(t, start, &now)
	// The reports: report k at k + 0.3 s, the first stamped late.
	report := 0
	arrival := func(n int) float64 { // sent at its last sample, 10-14 ms in transit
		return float64(n+1)*0.02 + 0.010 + float64(n%3)*0.002
	}
	live, placed, timing := recordBeeps(t, ms, out, start, &now, total, arrival, func(at float64) {
		for ; float64(report)+0.3 <= at; report++ {
			w := float64(report) + 0.3 // the sender's wall clock, and its audio clock
			stamped := w
			if report == 0 {
				stamped -= late // by a packet written 455 ms after its capture
			}
			*sr = conference.SenderReport{SSRC: 1, NTP: start.Add(time.Duration(w * float64(time.Second))),
				RTPTime: uint32(math.Round(stamped * rate)), Arrived: now}
		}
	})
	steps := timing.Steps()
	origin, _ := pipe.Origin()
	t.Logf("origin %.4f s; beeps at %.4f s in the live mix, %.4f s by the file's placement (steps %+v; mappings %+v); ratio %.4f; %+v",
		float64(origin)/rate, live, placed, steps, timing.Mappings, pipe.Ratio(), pipe.Stats())
	if len(live) < len(placed)+1 { // and the one at 0 s
		t.Fatalf("%d beeps in the live mix, want %d", len(live), len(placed)+1)
	}
	for k, f := range placed {
		if d := live[k+1] - f; math.Abs(d) > 0.010 {
			t.Errorf("beep at %.4f s in the live mix, %.4f s by the file's placement: %+.1f ms apart", live[k+1], f, d*1000)
		}
	}
	// The live mix took no step: its beeps a second apart.
	for k := 2; k < len(live); k++ {
		if d := live[k] - live[k-1] - 1; math.Abs(d) > 0.002 {
			t.Errorf("the live mix's beeps at %.4f and %.4f s: %+.1f ms off a second apart", live[k-1], live[k], d*1000)
		}
	}
	// The sender's instant the mix put at the file's first sample (what
	// the composite places the sender's video against) is by the honest
	// reports, as the mix followed them: the first sample was sent at
	// start (its wall clock is its audio clock), 10 ms before it came.
	// The first report kept (Mappings[0], FirstSent) says 455 ms later.
	first, _ := timing.FirstSent()
	if timing.MixSent == nil {
		t.Fatalf("no mixSent in the timing (first report kept says the first sample was sent at %+.1f ms)", first.Sub(start).Seconds()*1000)
	}
	t.Logf("mixSent %+.1f ms, first report kept %+.1f ms from the first sample's sending", timing.MixSent.Sub(start).Seconds()*1000, first.Sub(start).Seconds()*1000)
	if d := timing.MixSent.Sub(start); d.Abs() > 2*time.Millisecond {
		t.Errorf("mixSent %v from when the first sample was sent, want within 2 ms", d)
	}
}

// reportingSink is muLawSink (8 kHz, the default budget) for a track whose
// sender sends reports: its file's placement logged and its moves and
// reports kept, as a track with a mix has them. The latest report is what
// the returned one holds (none until its Arrived is set).
func reportingSink(t *testing.T, start time.Time, now *time.Time) (*mediaSink, *frameSink, *media.AudioPipeline, *conference.SenderReport) {
	t.Helper()
	const rate = 8000
	ms, out, _ := muLawSink(t, start, now, 0)
	pipe := ms.audio.(*media.AudioPipeline)
	ms.logPlacement(pipe, 1)
	ms.moves = &mixMoves{rate: rate, clock: rate}
	ms.srs = &senderClock{rate: rate}
	sr := &conference.SenderReport{}
	ms.sr = func() (conference.SenderReport, bool) { return *sr, !sr.Arrived.IsZero() }
	return ms, out, pipe, sr
}

// recordBeeps records total seconds of a sender's µ-law beeps (100 ms at
// the start of every second of its clock, a packet every 20 ms) through ms
// into its 8 kHz mix (muLawSink), packet n arriving arrival(n) seconds after
// start, the mixer stepped every 20 ms; before, if set, is called at each
// packet's arrival (seconds), before it is written. It closes the sink and
// the mix, and returns the beeps' onsets in the live mix, where the file's
// placement (the mix's origin of it plus its timing's steps, the timing as
// the track's end stores it) puts the file's beeps at 1 … total−2 s, and
// that timing (seconds).
func recordBeeps(t *testing.T, ms *mediaSink, out *frameSink, start time.Time, now *time.Time, total float64, arrival func(n int) float64, before func(at float64)) (live, placed []float64, timing *composition.TrackTiming) {
	t.Helper()
	const rate = 8000
	mixer, in, pipe := ms.mixer, ms.in, ms.audio.(*media.AudioPipeline)
	payload := make([]byte, 160)
	next := 0
	for step := 0; float64(step)*0.005 < total; step++ {
		for at := arrival(next); at <= float64(step)*0.005; at = arrival(next) {
			*now = start.Add(time.Duration(at * float64(time.Second)))
			if before != nil {
				before(at)
			}
			for i := range payload {
				payload[i] = 0xFF // silence
				if math.Mod(float64(next*160+i)/rate, 1) < 0.1 {
					payload[i] = 0x90 // a beep
				}
			}
			if err := ms.WriteRTP(&rtp.Packet{Header: rtp.Header{SSRC: 1, SequenceNumber: uint16(next), Timestamp: uint32(next * 160)}, Payload: payload}); err != nil {
				t.Fatal(err)
			}
			next++
		}
		*now = start.Add(time.Duration(step) * 5 * time.Millisecond)
		if step%4 == 0 {
			if err := mixer.Step(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := ms.Close(); err != nil {
		t.Fatal(err)
	}
	mixer.RemoveInput(in)
	if err := mixer.Finish(mixer.Now()); err != nil {
		t.Fatal(err)
	}
	origin, ok := pipe.Origin()
	if !ok {
		t.Fatal("no origin: nothing placed")
	}
	timing = ms.trackTiming(rate)
	steps := timing.Steps()
	for i := 1; i < len(out.pcm); i++ {
		if out.pcm[i] != 0 && out.pcm[i-1] == 0 {
			live = append(live, float64(i)/rate)
		}
	}
	for k := 1.0; k < total-1; k++ { // the sender's beep k, k s into the file
		by := 0.0
		for _, st := range steps {
			if st.File <= k {
				by = st.By
			}
		}
		placed = append(placed, float64(origin)/rate+k+by)
	}
	return live, placed, timing
}

// TestMixMoves_ACaptureStallPlacedAtTheStall: a µ-law track with sender
// reports a second apart (at k + 0.3 s), its packets on time (10-14 ms in
// transit), whose capture stalls 100 ms at 4.5 s of its wall clock: its
// RTP time falls 100 ms behind from there, so its beeps (at each second of
// its RTP time) are sent 100 ms later than before. The report at 5.3 s
// shows the step, the one at 6.3 s confirms it. The live mix holds the
// track's audio from the packets' gap at the stall and moves it by the step
// once confirmed (media's hold), and the sink moves the file's placement
// with it (mediaSink.placedAgain): every beep from 5 s on lies in the live
// mix and by the file's placement where the sender sent it (100 ms later
// than its RTP time says), within 10 ms. Before, the beeps at 5 and 6 s
// (between the stall and the confirmation) were 100 ms early in both.
func TestMixMoves_ACaptureStallPlacedAtTheStall(t *testing.T) {
	const rate, total, stallAt, stall = 8000, 10.0, 4.5, 0.1
	start := time.Unix(1000, 0)
	now := start
	ms, out, pipe, sr := reportingSink(t, start, &now)
	wall := func(n int) float64 { // when sample n was captured
		if w := float64(n) / rate; w < stallAt {
			return w
		}
		return float64(n)/rate + stall
	}
	report := 0
	arrival := func(n int) float64 { // sent at its last sample, 10-14 ms in transit
		return wall(n*160+159) + 1.0/rate + 0.010 + float64(n%3)*0.002
	}
	live, placed, timing := recordBeeps(t, ms, out, start, &now, total, arrival, func(at float64) {
		for ; float64(report)+0.3 <= at; report++ {
			w := float64(report) + 0.3 // the sender's wall clock
			rtpTime := w
			if w >= stallAt {
				rtpTime -= min(w-stallAt, stall)
			}
			*sr = conference.SenderReport{SSRC: 1, NTP: start.Add(time.Duration(w * float64(time.Second))),
				RTPTime: uint32(math.Round(rtpTime * rate)), Arrived: now}
		}
	})
	origin, _ := pipe.Origin()
	t.Logf("origin %.4f s; beeps at %.4f s in the live mix, %.4f s by the file's placement (steps %+v); %+v",
		float64(origin)/rate, live, placed, timing.Steps(), pipe.Stats())
	for k, f := range placed {
		sent := float64(k+1) + float64(origin)/rate // its RTP time on the mix's line before the stall
		if float64(k+1) >= stallAt {
			sent += stall
		}
		i := slices.IndexFunc(live, func(l float64) bool { return math.Abs(l-sent) < 0.5 })
		if i < 0 {
			t.Errorf("beep %d: none in the live mix within 500 ms of where it was sent (%.4f s)", k+1, sent)
		} else if d := live[i] - sent; math.Abs(d) > 0.010 {
			t.Errorf("beep %d at %.4f s in the live mix: %+.1f ms from where it was sent (%.4f s)", k+1, live[i], d*1000, sent)
		}
		if d := f - sent; math.Abs(d) > 0.010 {
			t.Errorf("beep %d at %.4f s by the file's placement: %+.1f ms from where it was sent (%.4f s)", k+1, f, d*1000, sent)
		}
	}
}
