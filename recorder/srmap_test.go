package recorder

import (
	"math"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/media"
	"github.com/rtcrec/recorder/recorder/conference"
)

// TestSenderClock_KeepsTheReportsWhoseMappingMoved: reports a second apart
// from a sender whose audio clock is steady, then one report late by 30 ms
// (a stalled write: not kept), then a 100 ms step (kept at the first report
// after it, once the next agrees), then a 0.4 % drift (a report kept each
// time the mapping moved more than 10 ms and the next agrees); the files' times are those of
// the file (after a skipped pause's shift); the steps say how far the
// file's audio moved.
func TestSenderClock_KeepsTheReportsWhoseMappingMoved(t *testing.T) {
	const rate, zero = 48000, 1_000_000
	c := &senderClock{rate: rate}
	ntp0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	lag := 0.0 // seconds of the sender's wall clock its audio lost so far
	send := func(w float64, late float64, shift uint32) {
		rtpAt := zero + uint32(math.Round((w-lag-late)*rate))
		c.report(conference.SenderReport{NTP: ntp0.Add(time.Duration(w * float64(time.Second))), RTPTime: rtpAt}, zero, shift)
	}
	for w := 1.0; w <= 5; w++ {
		send(w, 0, 0)
	}
	send(6, 0.030, 0) // late: one report alone
	send(7, 0, 0)
	lag = 0.1 // the capture stalls and loses 100 ms
	send(8, 0, 0)
	send(9, 0, 0)
	send(10, 0, 0)
	for w := 11.0; w <= 20; w++ { // the audio clock runs 0.4 % slow
		lag += 0.004
		send(w, 0, rate/2) // after a skipped pause of 0.5 s
	}
	kept := c.mappings()
	var by []float64
	for _, k := range kept {
		by = append(by, math.Round(k.NTP.Sub(ntp0).Seconds()))
	}
	// 1: the first; 8: the step, confirmed by 9; then the drift, 4 ms a
	// report: 13 (12 ms from 8, confirmed by 14), 16, 19.
	want := []float64{1, 8, 13, 16, 19}
	if len(by) != len(want) {
		t.Fatalf("kept the reports of %v s, want %v", by, want)
	}
	for i := range want {
		if by[i] != want[i] {
			t.Fatalf("kept the reports of %v s, want %v", by, want)
		}
	}
	if f := kept[1].File; math.Abs(f-7.9) > 1e-6 {
		t.Errorf("the step's report is %.4f s into the file, want 7.9", f)
	}
	if f := kept[2].File; math.Abs(f-(13-0.112-0.5)) > 1e-6 {
		t.Errorf("a report after the skipped pause is %.4f s into the file, want 12.388", f)
	}
}

// TestSenderClock_TakesTheStepsTheLiveMixTakes: the live mix (the track's
// media.AudioPipeline, following its sender's reports) and the manifest's
// mappings (by which the offline mix and the composite place the track's
// file: composition.TrackTiming.Steps) take the same moves of the reports
// for steps. A good clock whose capture stalls 19.6 ms at 4.5 s (Chromium's
// reports stepped so once, at load), reports a second apart: both take the
// step, and every beep (a wall-clock second's start) is within 2 ms in the
// live mix of where the file's placement puts it, but the one between the
// report that shows the step (5.3 s) and the one that confirms it (6.3 s):
// there the live mix, which cannot know yet, places it where it was before
// the step, the file's placement after (by design, up to a report
// interval). When the live mix took a move of up to 20 ms for drift, it
// approached the step by resampling and read it as a clock rate (0.18 %
// fast at the end): the beeps after it were 3.1-6.6 ms off (with Chromium,
// at load, 23 ms).
func TestSenderClock_TakesTheStepsTheLiveMixTakes(t *testing.T) {
	const rate, stallAt, stall, total = 8000, 4.5, 0.0196, 12.0
	wall := func(n int) float64 { // when sample n was captured
		w := float64(n) / rate
		if w >= stallAt {
			w += stall
		}
		return w
	}
	captured := func(w float64) int { // samples captured by then
		return int((w - min(max(w-stallAt, 0), stall)) * rate)
	}
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	now := start
	sink := &pcmSink{}
	mixer := media.NewMixer(media.MixConfig{SampleRate: rate, Start: start, Clock: func() time.Time { return now }}, sink)
	in := mixer.AddInput("a", media.InputOptions{})
	pipe, err := media.NewAudioPipeline(media.AudioPipelineConfig{Codec: media.CodecPCMU, Input: in})
	if err != nil {
		t.Fatal(err)
	}
	c := &senderClock{rate: rate}
	payload := make([]byte, 160)
	next, report := 0, 0 // the next packet, the next report (at report + 0.3 s)
	for ms := 0; float64(ms)/1000 < total; ms += 5 {
		for {
			n := next * 160
			at := wall(n+159) + 0.010 + float64(next%3)*0.002 // 10-14 ms in transit
			if at > float64(ms)/1000 {
				break
			}
			now = start.Add(time.Duration(at * float64(time.Second)))
			for ; float64(report)+0.3 <= at; report++ {
				w := float64(report) + 0.3
				sr := conference.SenderReport{SSRC: 1, NTP: start.Add(time.Duration(w * float64(time.Second))), RTPTime: uint32(captured(w))}
				c.report(sr, 0, 0)
				pipe.SenderReport(sr.SSRC, sr.NTP, sr.RTPTime)
			}
			for i := range payload {
				payload[i] = 0xFF // silence
				if math.Mod(wall(n+i), 1) < 0.1 {
					payload[i] = 0x90 // a beep
				}
			}
			if err := pipe.WriteRTP(&rtp.Packet{Header: rtp.Header{SSRC: 1, SequenceNumber: uint16(next), Timestamp: uint32(n)}, Payload: payload}); err != nil {
				t.Fatal(err)
			}
			next++
		}
		now = start.Add(time.Duration(ms) * time.Millisecond)
		if ms%20 == 0 {
			if err := mixer.Step(); err != nil {
				t.Fatal(err)
			}
		}
	}
	pipe.Close()
	mixer.RemoveInput(in)
	if err := mixer.Finish(mixer.Now()); err != nil {
		t.Fatal(err)
	}
	origin, ok := pipe.Origin()
	if !ok {
		t.Fatal("no origin: nothing placed")
	}
	timing := &composition.TrackTiming{ClockRate: rate, Mappings: c.mappings()}
	steps := timing.Steps()
	if len(steps) != 1 || math.Abs(steps[0].By-stall) > 0.001 {
		t.Fatalf("steps %+v: want one of %.1f ms", steps, stall*1000)
	}
	var live, file []float64 // the beeps' onsets in the live mix, and by the file's placement (seconds)
	for i := 1; i < len(sink.pcm); i++ {
		if sink.pcm[i] != 0 && sink.pcm[i-1] == 0 && (len(live) == 0 || float64(i)/rate-live[len(live)-1] > 0.5) {
			live = append(live, float64(i)/rate)
		}
	}
	for n := 1; wall(n) < total; n++ {
		if math.Mod(wall(n), 1) < 0.1 && math.Mod(wall(n-1), 1) >= 0.1 {
			f := float64(n) / rate // its time in the file
			by := 0.0
			for _, st := range steps {
				if st.File <= f {
					by = st.By
				}
			}
			file = append(file, float64(origin)/rate+f+by)
		}
	}
	t.Logf("beeps at %.4f s in the live mix, %.4f s by the file's placement (steps %+v); ratio %.5f; %+v", live, file, steps, pipe.Ratio(), pipe.Stats())
	if len(live) < len(file) {
		t.Fatalf("%d beeps in the live mix, %d in the file", len(live), len(file))
	}
	live = live[len(live)-len(file):] // the file's first may be before the mix's start
	for k := range file {
		if w := math.Round(file[k]); w > 5.3 && w < 6.3 {
			continue // between the report that shows the step and the one that confirms it
		}
		if d := live[k] - file[k]; math.Abs(d) > 0.002 {
			t.Errorf("beep at %.4f s in the live mix, %.4f s by the file's placement: %+.1f ms apart", live[k], file[k], d*1000)
		}
	}
}

// pcmSink keeps the mix's frames.
type pcmSink struct{ pcm []int16 }

func (s *pcmSink) WriteFrame(pcm []int16) error {
	s.pcm = append(s.pcm, pcm...)
	return nil
}
