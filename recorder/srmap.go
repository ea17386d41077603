package recorder

import (
	"sync"
	"time"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/recorder/conference"
)

// senderClock keeps the sender reports of a track whose NTP↔RTP mapping
// moved: the manifest's timing.mappings, by which a sender whose media clock
// slips against its wall clock (a sound card running fast, a capture that
// stalls) is placed piecewise (composition.TrackTiming.Steps) where no live
// mix placed the track (video; audio without a mix). An audio track in the
// mix is placed where the mix placed it (mixMoves), which checks each report
// against the packets' arrival first: the raw reports may say otherwise (a
// first report stamped late, which the mix left out, would step the file
// by its lateness).
//
// A report is kept when its mapping moved (composition.ReportMoved: more
// than composition.MappingMoved) from the last one kept and the next report
// has not moved from it: a sender that stamps its reports from when it
// last wrote a packet (Pion) gives one report late by as long as a stalled
// write, and that one is not a move of its clock. The first report is kept
// as it comes.
//
// report is called by the track's reader goroutine when a report comes (about
// once a second, never per packet); mappings at the track's end.
type senderClock struct {
	rate float64 // RTP clock rate

	// reader goroutine only
	last     time.Time // when the file's first sample was sent, by the last report kept
	cand     composition.Mapping
	candSent time.Time
	haveCand bool

	// onKeep, when set, is called (on the reader goroutine) after a report
	// is kept: the session stores the running track's timing (rate-limited).
	onKeep func()

	mu   sync.Mutex
	kept []composition.Mapping
}

// report notes sr, for a file whose first sample has RTP timestamp zero and
// whose later timestamps are written less shift (a skipped pause).
func (c *senderClock) report(sr conference.SenderReport, zero, shift uint32) {
	if c == nil || c.rate <= 0 {
		return
	}
	k := composition.Mapping{NTP: sr.NTP, RTP: sr.RTPTime, File: float64(int32(sr.RTPTime-shift-zero)) / c.rate}
	sent := sr.NTP.Add(time.Duration(float64(int32(zero-sr.RTPTime)) / c.rate * float64(time.Second)))
	keep := func(k composition.Mapping, sent time.Time) {
		c.mu.Lock()
		c.kept = append(c.kept, k)
		c.mu.Unlock()
		c.last, c.haveCand = sent, false
		if c.onKeep != nil {
			c.onKeep()
		}
	}
	switch {
	case c.last.IsZero():
		keep(k, sent)
	case !composition.ReportMoved(sent.Sub(c.last)):
		c.haveCand = false
	case c.haveCand && !composition.ReportMoved(sent.Sub(c.candSent)):
		keep(c.cand, c.candSent)
	default:
		c.cand, c.candSent, c.haveCand = k, sent, true
	}
}

// mappings returns the reports kept so far.
func (c *senderClock) mappings() []composition.Mapping {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]composition.Mapping(nil), c.kept...)
}
