package recorder

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/rtcrec/recorder/media"
)

// Pause and resume (seeds 000 and 002).
//
// Paused audio never reaches any file. Each track's packets pass a gate on
// the track's reader goroutine before its per-track writer and its decoding
// pipeline: while the recording is paused (or the track's participant is
// blacked out) the gate drops them, so nothing of the interval is written to
// the per-track file, decoded into the mixer's ring, or kept anywhere. The
// gate is the one cut for the track file and the mix alike: the mix holds
// exactly the packets the track file holds, each at its place on the
// recording's timeline (media/doc.go), so a cut is at the same instant in
// both. Behind the gate, the track file's reorder stage (media/reorder) is
// flushed when the gate closes, and the pipeline places what it held
// (media.AudioPipeline.Pause): everything that passed before the cut is in
// both before the cut. The first packet after the gate reopens is placed in
// the mix by its timestamp, as in the file, when that fits its arrival, and
// at its arrival otherwise (media.AudioPipeline.Resync); the gap is not
// counted as loss.
//
// With "silence" the mix keeps the paused interval as silence (nothing was
// decoded for it) and the per-track writers fill the gap with the codec's
// silence when packets resume (the file keeps wall-clock length). With
// "skip" the cut is seamless: the mixer leaves out (media.Mixer.Cut) the
// span from the end of the audio received before the pause (settled at the
// resume, media.Mixer.Uncut) to the resume instant; each track's first
// packet after it goes exactly at the cut's end (media.AudioPipeline.
// ResyncAt), and in the track file directly after the last packet before
// the pause (the gate shifts the RTP timestamps of every later packet back
// by as much). So the track whose audio ended last before the pause resumes
// without a gap in the mix and in its file alike; another track's audio may
// have ended up to a packet earlier, which stays a gap of that length in the
// mix (one cut for all tracks) but not in its file. Sequence numbers are not
// shifted, so a video writer sees the gap as loss and asks for a keyframe.
//
// The pause's mix positions in the manifest are positions in mix.wav: the
// cut's start and end with silence, the cut's start twice with skip.

// pauseState is a running session's pause state and the gates of its tracks.
type pauseState struct {
	paused  atomic.Bool
	skipped atomic.Int64 // total paused wall-clock time so far (ns), with skip

	mu    sync.Mutex // guards gates and ended
	gates map[*gate]string
	// ended are the latest audio tracks that ended (their sinks closed):
	// their files still feed the re-mix of a retroactive blackout.
	ended []endedTrack
}

// maxEnded is how many ended audio tracks a recording keeps for re-mixes.
const maxEnded = 32

// gate decides, on a track's reader goroutine, whether a packet reaches the
// track's files, and shifts timestamps after a skipped pause.
type gate struct {
	lc    *pauseState
	black atomic.Bool     // the participant is blacked out
	in    *media.MixInput // the track's mixer input; nil for video
	sink  *mediaSink      // the track's sink (its file), for retroactive blackouts
	clock int64           // RTP clock rate

	// Reader goroutine only.
	skipSeen  int64  // lc.skipped when the reader last looked (skipEnded)
	join      bool   // the next packet written follows the last one (closeGap)
	video     bool   // shifted by the paused time (base), not joined
	base      int64  // lc.skipped the video shift was computed for
	shift     uint32 // subtracted from timestamps
	last      uint32 // last timestamp written (after the shift)
	lastDelta uint32 // the step before it
	have      bool
}

// drop reports whether p must be dropped: the recording is paused or the
// participant is blacked out.
func (g *gate) drop() bool {
	return g.lc.paused.Load() || g.black.Load()
}

// skipEnded reports whether a skipped pause ended since the last call.
func (g *gate) skipEnded() bool {
	sk := g.lc.skipped.Load()
	if sk == g.skipSeen {
		return false
	}
	g.skipSeen = sk
	return true
}

// closeGap makes the next packet written follow the last one directly: the
// interval a skipped pause left out is gone from the file (the timestamps
// of every later packet are shifted back by as much). Audio only: a video
// track is shifted back by the paused wall-clock time instead, which keeps
// it where it was against the audio (within one audio packet: the mix's
// cut begins where the audio before it ended).
func (g *gate) closeGap() { g.join = true }

// timestamp returns the timestamp to write for p (see the shifting rule above).
func (g *gate) timestamp(p *rtp.Packet) uint32 {
	if g.video {
		g.join = false
		if sk := g.lc.skipped.Load(); sk != g.base {
			// Video: back by the paused wall-clock time, as the mix's cut
			// is long, unless that lands at or before the last frame
			// written (jitter): then one frame interval after it.
			g.base = sk
			g.shift = uint32(sk * g.clock / int64(time.Second))
			if ts := p.Timestamp - g.shift; g.have && int32(ts-g.last) <= 0 {
				step := g.lastDelta
				if step == 0 || step > uint32(g.clock) {
					step = uint32(g.clock / 30)
				}
				g.shift = p.Timestamp - (g.last + step)
			}
		}
	}
	if g.join {
		g.join = false
		if g.have {
			step := g.lastDelta // the last packet's duration, as far as timestamps tell
			if step == 0 || step > uint32(g.clock*int64(maxPacket)/int64(time.Second)) {
				step = uint32(g.clock / 50)
			}
			g.shift = p.Timestamp - (g.last + step)
		}
	}
	ts := p.Timestamp - g.shift
	if g.have && ts != g.last {
		g.lastDelta = ts - g.last
	}
	g.last, g.have = ts, true
	return ts
}

// maxPacket is the longest packet (Opus: 120 ms); a longer timestamp step
// before the cut was a gap (DTX, loss), and the packet after a cut follows
// 20 ms after the last one instead.
const maxPacket = 120 * time.Millisecond

// setBlack blacks the track's participant out or in. The gate's cut is the
// mix's too: the mix holds what the track file holds.
func (g *gate) setBlack(on bool) {
	g.black.Store(on)
}

// newGate registers the gate of a new track of userID; the caller holds s.mu.
// A participant blacked out now is blacked out in the new track too.
func (s *Session) newGate(userID string, sink *mediaSink, clockRate uint32, video bool) *gate {
	sk := s.lc.skipped.Load()
	g := &gate{lc: &s.lc, in: sink.in, sink: sink, clock: int64(clockRate), skipSeen: sk, base: sk, video: video}
	if g.clock == 0 {
		g.clock = 8000
	}
	s.lc.mu.Lock()
	if s.lc.gates == nil {
		s.lc.gates = map[*gate]string{}
	}
	s.lc.gates[g] = userID
	s.lc.mu.Unlock()
	if s.m.blackedOut(s.rec.OrganizationID, s.rec.ConferenceID, userID) {
		at := s.m.now()
		g.setBlack(true)
		s.recordBlackoutLocked(userID, true, at)
	}
	return g
}

// dropGate forgets the gate of an ended track.
func (s *Session) dropGate(g *gate) {
	if g == nil {
		return
	}
	var e *endedTrack
	if g.sink != nil && g.sink.plog != nil {
		x := g.sink.ended()
		e = &x
	}
	s.lc.mu.Lock()
	delete(s.lc.gates, g)
	if e != nil {
		s.lc.ended = append(s.lc.ended[max(len(s.lc.ended)+1-maxEnded, 0):], *e)
	}
	s.lc.mu.Unlock()
}

// gatesOf returns the gates of userID's tracks.
func (s *Session) gatesOf(userID string) []*gate {
	s.lc.mu.Lock()
	defer s.lc.mu.Unlock()
	var out []*gate
	for g, u := range s.lc.gates {
		if u == userID {
			out = append(out, g)
		}
	}
	return out
}

// position returns the mix's position; 0 for a nil sessionMedia.
func (sm *sessionMedia) position() time.Duration {
	if sm == nil || sm.mixer == nil {
		return 0
	}
	return sm.mixer.Position()
}

// Pause pauses a recording: from now on none of its audio or video reaches a
// file until Resume. Pausing a paused recording returns it unchanged; a
// recording that is not ACTIVE (stopped, failed, still starting) is a
// conflict. It publishes recording.paused.
func (m *Manager) Pause(ctx context.Context, organizationID, conversationID, recorderID, instanceID string) (*Recording, error) {
	return m.setPaused(ctx, organizationID, conversationID, recorderID, instanceID, true)
}

// Resume resumes a paused recording. Resuming an active, unpaused recording
// returns it unchanged; a recording that is not ACTIVE is a conflict. It
// publishes recording.resumed.
func (m *Manager) Resume(ctx context.Context, organizationID, conversationID, recorderID, instanceID string) (*Recording, error) {
	return m.setPaused(ctx, organizationID, conversationID, recorderID, instanceID, false)
}

func (m *Manager) setPaused(ctx context.Context, org, conv, rid, iid string, pause bool) (*Recording, error) {
	op := map[bool]string{true: OpPause, false: OpResume}[pause]
	if r, ok, err := m.forward(ctx, &Command{Op: op, OrganizationID: org, ConversationID: conv, RecorderID: rid, InstanceID: iid}); ok {
		return r, err
	}
	r, err := m.Get(ctx, org, conv, rid, iid)
	if err != nil {
		return nil, err
	}
	s := m.session(iid)
	verb := map[bool]string{true: "pause", false: "resume"}[pause]
	if s == nil || r.State != StateActive {
		return nil, errorf(KindConflict, "not_active", "cannot %s recording %s: it is %s", verb, iid, r.State)
	}
	s.mu.Lock()
	if s.stopping || s.rec.State != StateActive {
		st := s.rec.State
		s.mu.Unlock()
		return nil, errorf(KindConflict, "not_active", "cannot %s recording %s: it is stopping (%s)", verb, iid, st)
	}
	if s.rec.Paused == pause {
		snap := s.rec.clone()
		s.mu.Unlock()
		return snap, nil
	}
	now := m.now()
	if pause {
		s.lc.paused.Store(true) // before the commit: nothing from now on is kept
	}
	// The cut on the mix's timeline (see above): its position in mix.wav.
	var pos time.Duration
	var cutLog []any // where the cut is on the timeline, for the log line
	if sm := s.media; sm != nil && sm.mixer != nil {
		mx := sm.mixer
		at := mx.PosAt(now)
		ms := func(x uint64) float64 { return float64(mx.Duration(x)) / 1e6 }
		cutLog = []any{"atMs", ms(at), "inputsEndMs", ms(mx.InputsEnd()), "writtenMs", ms(mx.Written())}
		skip := s.rec.PauseBehavior == media.PauseSkip
		switch {
		case pause && skip:
			pos = mx.OutputAt(mx.Cut(max(at, mx.InputsEnd())))
		case pause:
			pos = mx.OutputAt(max(at, mx.InputsEnd()))
		case skip:
			cutLog = append(cutLog, "cutFromMs", ms(mx.Uncut(at))) // the cut's start settles (Mixer.Uncut)
			pos = mx.OutputAt(at)
		default:
			pos = mx.OutputAt(at)
		}
	}
	err = s.commitLocked(ctx, func(r *Recording) {
		r.Paused = pause
		if pause {
			r.Pauses = append(r.Pauses, PauseInterval{Start: now, MixStart: pos, MixEnd: pos})
			return
		}
		if n := len(r.Pauses); n > 0 && r.Pauses[n-1].End.IsZero() {
			p := &r.Pauses[n-1]
			p.End, p.MixEnd = now, pos
			if r.PauseBehavior == media.PauseSkip {
				p.MixStart = pos // where the cut settled: the end of the audio before it
			}
		}
	})
	if err != nil {
		if pause { // not persisted: not paused
			s.lc.paused.Store(false)
			if sm := s.media; sm != nil && sm.mixer != nil && s.rec.PauseBehavior == media.PauseSkip {
				sm.mixer.Uncut(0) // an empty cut
			}
		}
		s.mu.Unlock()
		return nil, err
	}
	if !pause {
		if n := len(s.rec.Pauses); n > 0 && s.rec.PauseBehavior == media.PauseSkip {
			p := s.rec.Pauses[n-1]
			s.lc.skipped.Add(int64(p.End.Sub(p.Start)))
		}
		s.lc.paused.Store(false)
	}
	snap := s.rec.clone()
	s.mu.Unlock()
	s.log.Info("recording "+verb+"d", append([]any{"mixPosition", pos}, cutLog...)...)
	typ := "recording.paused"
	if !pause {
		typ = "recording.resumed"
	}
	// Seed 002: pause and resume emit state.updated (the state stays
	// ACTIVE; paused changes), then the specific event.
	m.publish(ctx, snap, "state.updated", recordingEventData(snap))
	m.publish(ctx, snap, typ, recordingEventData(snap))
	return snap, nil
}

// closeOpenIntervals ends a pause or blackout interval still open when the
// recording stops. The caller holds s.mu (it runs inside a commit).
func closeOpenIntervals(r *Recording, at time.Time, pos time.Duration) {
	if n := len(r.Pauses); n > 0 && r.Pauses[n-1].End.IsZero() {
		r.Pauses[n-1].End, r.Pauses[n-1].MixEnd, r.Pauses[n-1].Stopped = at, pos, true
		if r.PauseBehavior == media.PauseSkip {
			r.Pauses[n-1].MixEnd = r.Pauses[n-1].MixStart
		}
	}
	for i := range r.Blackouts {
		if r.Blackouts[i].End.IsZero() {
			r.Blackouts[i].End = at
		}
	}
	r.Paused = false
}
