package recorder

import (
	"math"
	"sync"
	"time"

	"github.com/rtcrec/recorder/composition"
)

// maxMoves bounds a track's moves: a sender clock 0.5 % off, resampled,
// moves 10 ms every 2 s, 3600 times in a 2-hour recording. Later
// moves are not kept (the offline mix then places the rest of the file as
// the last one kept does).
const maxMoves = 4096

// mixMoves keeps where the live mix placed a track's file on its timeline
// (composition.TrackTiming.Moves, with MixPlaced): each time the placement
// moved composition.MappingMoved or more from the move kept before, off the
// line of the file's first sample (mediaOffset) at the nominal rate. It is
// what the mix did, whatever moved it: a step of the sender's reports that
// the mix took (not one it left out: a report stamped late, one that does
// not fit the arrivals), the resampling of a drifting sender's clock, a
// track first placed late (its first packets came late: a loaded reader, a
// queue at connect) pulled back on time. The offline mix and the composite
// place the file by these moves alone: where the live mix placed it (up to
// a move, 10 ms). observe is called by the track's reader goroutine after
// each packet placed (it allocates only when it keeps a move); steps at the
// track's end.
type mixMoves struct {
	rate  float64 // mix samples per second
	clock float64 // the track's RTP ticks per second

	// reader goroutine only: the move kept last, in mix samples; what the
	// skipped pauses so far (the file's timestamp shift) moved the
	// placement by (base: not a move).
	last    float64
	base    float64
	shift   uint32
	started bool

	mu   sync.Mutex
	kept []composition.Step
}

// observe takes where the live mix placed a packet: off samples of the mix
// from where the file's first sample and the nominal rate put it; the
// packet is file ticks of its clock into the file (where the file writer
// put it), after a shift of shift ticks (skipped pauses). A skipped pause is
// no move: the file closes its gap as the mix closes its cut (the offline
// mix does the same from the manifest's pauses), so what it changes in off
// is taken as the new base. A re-anchor of the mix (a new source, a jump of
// the timestamps, a packet later than the budget or far ahead of its
// arrival, or the first after a pause that does not fit its arrival) is a
// move like any other: the packet's place in the file is where the writer
// put it, whatever its timestamp, and the offline mix places the file where
// the live mix placed it from there on.
func (a *mixMoves) observe(off, file float64, shift uint32) {
	if a == nil {
		return
	}
	if !a.started {
		a.started, a.shift = true, shift
	}
	by := off - a.base
	if shift != a.shift {
		a.shift = shift
		a.base += by - a.last
		by = a.last
	}
	if !composition.ReportMoved(time.Duration((by - a.last) / a.rate * float64(time.Second))) {
		return
	}
	a.last = by
	a.mu.Lock()
	if len(a.kept) < maxMoves {
		a.kept = append(a.kept, composition.Step{File: file / a.clock, By: math.Round(by/a.rate*1e6) / 1e6})
	}
	a.mu.Unlock()
}

// rewind forgets the moves kept from file ticks into the file on: the
// pipeline moved the audio from there (mediaSink.placedAgain), and observe
// records it anew. Reader goroutine.
func (a *mixMoves) rewind(file float64) {
	if a == nil {
		return
	}
	from := file / a.clock
	a.mu.Lock()
	for len(a.kept) > 0 && a.kept[len(a.kept)-1].File >= from {
		a.kept = a.kept[:len(a.kept)-1]
	}
	a.last = 0
	if len(a.kept) > 0 {
		a.last = a.kept[len(a.kept)-1].By * a.rate
	}
	a.mu.Unlock()
}

// steps returns the moves kept so far, in file order.
func (a *mixMoves) steps() []composition.Step {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]composition.Step(nil), a.kept...)
}
