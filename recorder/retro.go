package recorder

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/media/wavwriter"
)

// Retroactive blackouts (seed 003: client-side times are applied as given).
//
// A blackout whose start lies in the past silences the participant from
// that instant in everything a running recording already holds, then the
// gate keeps them silent from now on:
//
//   - Track files: every audio track of the participant is silenced from
//     the RTP timestamp of the start instant, in place (oggwriter.SilenceFrom,
//     wavwriter.G711Writer.SilenceFrom): packets become silent packets of the
//     same length and duration, samples become the codec's silence, so no
//     byte, granule position or timestamp after them moves. The timestamp of
//     an instant comes from the track's clock relation: the least difference
//     between a packet's arrival and its timestamp over the last 5–10 s of
//     packets (network delay only adds to it), so the start is placed within
//     a packet of where the mix places it.
//   - The mix: the participant's inputs are muted from the start's timeline
//     position (media.MixInput.MuteFrom) as far as the mixer has not written
//     yet (the latency budget); the part mix.wav already holds is silenced in
//     place (wavwriter.Writer.Silence). That part is silenced whole: the mix
//     cannot take one participant out of samples it already summed, so the
//     other participants are silent there too (at most the time between the
//     start and the request; the manifest's blackout interval says where).
//   - Parts already uploaded: each part whose bytes changed is
//     cut again from the edited file and uploaded under the same key, once
//     the earlier upload of that key has ended, so the stored part never
//     keeps the audio after the re-upload is verified.
//
// Limits: the silence begins no earlier than the recording's start and the
// track's first packet (there is nothing before), and a blackout whose
// maxBlackout from its start ends before now is refused (400 invalid_time),
// as is any time further than limits.blackoutHorizon from now. Only running
// recordings and live tracks are edited: a track that ended before the
// request, and a recording that stopped before it, keep what they hold.
// Video is not edited: seed 003's blackout is of "the current call", whose
// recording is audio (its screen recordings are separate); the gate still
// drops a blacked-out participant's video from the request on.

// editGuard lets one goroutine (an edit) take a writer from its owner
// goroutine (the track's reader, the mixer) for a moment, without a lock on
// the owner's path: the owner marks itself busy around each write with an
// atomic counter and only waits when an edit is running.
type editGuard struct {
	busy    atomic.Int32
	editing atomic.Bool
	mu      sync.Mutex // held by the edit; an owner waits on it
}

// enter marks the owner busy, waiting while an edit runs.
func (g *editGuard) enter() {
	for {
		g.busy.Add(1)
		if !g.editing.Load() {
			return
		}
		g.busy.Add(-1)
		g.mu.Lock()
		g.mu.Unlock() //nolint:staticcheck // waits for the edit
	}
}

// leave ends the owner's write.
func (g *editGuard) leave() { g.busy.Add(-1) }

// edit runs fn while the owner is not writing (and waits for it to finish
// its write in progress).
func (g *editGuard) edit(fn func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.editing.Store(true)
	defer g.editing.Store(false)
	for g.busy.Load() != 0 {
		runtime.Gosched()
	}
	fn()
}

// guardedMix is the mixer's sink: mix.wav behind an editGuard, so that a
// retroactive blackout can silence samples already written.
type guardedMix struct {
	w     *wavwriter.Writer
	guard editGuard
}

func (g *guardedMix) WriteFrame(pcm []int16) error {
	g.guard.enter()
	defer g.guard.leave()
	return g.w.WriteFrame(pcm)
}

// clockRelation estimates, on a track's reader goroutine, the wall-clock
// instant of RTP timestamp 0 of the timestamps written (unwrapped to 64 bits
// from the first packet on): the least arrival-minus-timestamp over the
// current and the previous 5 s window, since network delay only adds to it.
// It is restarted when the gate reopens or the relation jumps by more than
// a second (a new timeline).
type clockRelation struct {
	clock    int64 // RTP clock rate
	have     bool
	last     uint32
	ext      int64 // last, unwrapped
	window   int64 // arrival (unix ns) the current window began
	cur, old int64 // least offsets of the current and the previous window
	est      atomic.Int64
	valid    atomic.Bool
}

// ticksNs converts RTP ticks to nanoseconds without overflow.
func (c *clockRelation) ticksNs(t int64) int64 {
	return t/c.clock*int64(time.Second) + t%c.clock*int64(time.Second)/c.clock
}

// observe takes one written packet: its timestamp and arrival (unix ns).
func (c *clockRelation) observe(ts uint32, arrival int64) {
	if c.have {
		c.ext += int64(int32(ts - c.last))
	} else {
		c.ext = int64(ts)
	}
	c.last = ts
	off := arrival - c.ticksNs(c.ext)
	switch {
	case !c.have, off < c.cur-int64(time.Second), off > c.cur+int64(time.Second):
		c.have, c.window, c.cur, c.old = true, arrival, off, off
	case arrival-c.window >= int64(5*time.Second):
		c.window, c.old, c.cur = arrival, c.cur, off
	default:
		c.cur = min(c.cur, off)
	}
	c.est.Store(min(c.cur, c.old))
	c.valid.Store(true)
}

// reset starts a new relation at the next packet.
func (c *clockRelation) reset() { c.have = false }

// timestampAt returns the RTP timestamp written at wall-clock instant t.
func (c *clockRelation) timestampAt(t time.Time) (uint32, bool) {
	if !c.valid.Load() {
		return 0, false
	}
	d := t.UnixNano() - c.est.Load()
	s := int64(time.Second)
	return uint32(d/s*c.clock + d%s*c.clock/s), true
}

// silencer is a track file writer that can silence what it wrote from an
// RTP timestamp on (oggwriter.Writer, wavwriter.G711Writer).
type silencer interface {
	SilenceFrom(ts uint32) (int64, error)
}

// silenceFrom silences the track's file from wall-clock instant t; it
// returns the offset of the first byte changed and whether the track is
// audio that could be silenced.
func (m *mediaSink) silenceFrom(t time.Time) (off int64, ok bool, err error) {
	w, isAudio := m.file.(silencer)
	if !isAudio || m.clk == nil {
		return 0, false, nil
	}
	m.guard.edit(func() {
		ts, valid := m.clk.timestampAt(t)
		if !valid {
			return // nothing written yet
		}
		off, err = w.SilenceFrom(ts)
		ok = err == nil
	})
	return off, ok, err
}

// recutRequest asks the chunker to cut again the parts of files whose
// bytes changed from the given offsets on.
type recutRequest struct {
	from map[string]int64 // relative path → first changed byte
	done chan struct{}    // closed once the re-uploads are scheduled
}

// silenceSince silences userID in s from instant from on (see above) and
// has the parts already uploaded cut again. The caller has blacked the
// participant out in s already (the gate drops their packets).
func (s *Session) silenceSince(userID string, from time.Time) {
	s.mu.Lock()
	sm, started, stopping := s.media, s.rec.Started, s.stopping
	s.mu.Unlock()
	if sm == nil || stopping {
		return
	}
	from = maxTime(from, started)
	changed := map[string]int64{}
	muted := false
	for _, g := range s.gatesOf(userID) {
		if g.sink == nil || g.in == nil {
			continue // video, or no file
		}
		if off, ok, err := g.sink.silenceFrom(from); err != nil {
			s.log.Error("cannot silence a track from the blackout's start", "userId", userID, "err", err)
		} else if ok {
			changed[g.sink.relPath] = off
		}
		// The mix: mute what is not written yet, then silence what is.
		mx := sm.mixer
		pos := mx.PosAt(from)
		end := max(g.in.Ring().End(), mx.Now()) + uint64(mx.FrameSamples())
		if at := g.in.MuteFrom(pos); at > pos && !muted {
			muted = true
			var off int64
			var err error
			rate := int64(mx.Config().SampleRate)
			frame := func(p uint64) int64 { return (int64(mx.OutputAt(p))*rate + int64(time.Second)/2) / int64(time.Second) }
			sm.sink.guard.edit(func() { off, err = sm.mix.Silence(frame(pos), frame(at)) })
			if err != nil {
				s.log.Error("cannot silence the mix from the blackout's start", "userId", userID, "err", err)
			} else {
				changed[composition.MixFile] = off
			}
		}
		g.in.UnmuteFrom(end) // the gate keeps the participant out from here on
	}
	// The recording's blackout interval begins at the start too.
	s.mu.Lock()
	for i, b := range s.rec.Blackouts {
		if b.UserID == userID && b.End.IsZero() && from.Before(b.Start) {
			if err := s.commitLocked(context.Background(), func(r *Recording) { r.Blackouts[i].Start = from }); err != nil {
				s.log.Error("cannot persist the blackout's start", "userId", userID, "err", err)
			}
		}
	}
	s.mu.Unlock()
	s.log.Info("retroactive blackout: silenced what was recorded since its start", "userId", userID, "from", from, "files", len(changed))
	if len(changed) == 0 || s.recut == nil || s.m.cfg.Uploads.ChunkInterval <= 0 {
		return // no parts (chunks.go: streamParts does not run)
	}
	req := recutRequest{from: changed, done: make(chan struct{})}
	select {
	case s.recut <- req:
		select {
		case <-req.done:
		case <-s.done:
		}
	case <-s.done:
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}
