package recorder

import (
	"math"
	"testing"
	"time"

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
