package recorder

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/recorder/conference"
)

// senderClock keeps the sender reports of a track whose NTP↔RTP mapping
// moved: the manifest's timing.mappings, by which a sender whose media clock
// slips against its wall clock (a sound card running fast, a capture that
// stalls) is placed piecewise (composition.TrackTiming.Steps).
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
	first    time.Time // when the file's first sample was sent, by the first report kept
	last     time.Time // when the file's first sample was sent, by the last report kept
	cand     composition.Mapping
	candSent time.Time
	haveCand bool

	by atomic.Uint64 // math.Float64bits of the last kept report's step (seconds; by)

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
		if c.first.IsZero() {
			c.first = sent
		}
		c.by.Store(math.Float64bits(sent.Sub(c.first).Seconds()))
		c.last, c.haveCand = sent, false
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

// stepBy returns how far the reports kept so far move the file's latest
// audio from where the first one placed it, in seconds
// (composition.TrackTiming.Steps: the last step's By); 0 without reports.
// Safe from any goroutine.
func (c *senderClock) stepBy() float64 {
	if c == nil {
		return 0
	}
	return math.Float64frombits(c.by.Load())
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
