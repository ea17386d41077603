package recorder

import (
	"context"
	"encoding/json"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/media"
	"github.com/rtcrec/recorder/media/pause"
	"github.com/rtcrec/recorder/recorder/store"
)

// Pause and resume (seeds 000 and 002).
//
// Paused audio never reaches any file. Each track's packets pass a gate on
// the track's reader goroutine before its per-track writer and its decoding
// pipeline: an audio packet whose audio begins within a pause (or the track's
// participant's blackout) on the recording's timeline is dropped, however
// early or late it is read (see gate), so nothing of the interval is written
// to the per-track file, decoded into the mixer's ring, or kept anywhere. The
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
// A track's mapping may place its audio after its arrival (a sender report
// stamped late: up to 100 ms), so its ring may hold audio at and after the
// pause instant, written before the pause began. The mix leaves that out
// with the pause (media.Mixer.Silence, media.Mixer.Cut; a blackout mutes the
// participant's inputs from its instant, media.MixInput.MuteFrom), all but
// the frame after the instant, which holds the packet straddling it: the
// cut is within 20 ms of the pause instant in the mix whatever a track wrote
// ahead. The
// track's file keeps those packets (they came before the pause; a file is
// never edited for a pause), so its cut is that much later on the timeline.
//
// With "silence" the mix keeps the paused interval as silence (nothing was
// decoded for it, and what was written ahead is silenced) and the per-track
// writers fill the gap with the codec's silence when packets resume (the
// file keeps wall-clock length). With
// "skip" the cut is seamless: the mixer leaves out (media.Mixer.Cut) the
// span from the end of the audio received before the pause (settled at the
// resume, media.Mixer.Uncut) to the resume instant; each track resumes in
// the mix exactly where its own audio before the cut ended (media.
// AudioPipeline.ResyncAt: at the cut's end for the track whose audio ended
// last; a track whose audio ended earlier puts its first samples just before
// the cut), and in the track file directly after the last packet before the
// pause (the gate shifts the RTP timestamps of every later packet back by
// as much). So every track resumes without a gap in the mix and in its file
// alike. Sequence numbers are not shifted, so a video writer sees the gap as
// loss and asks for a keyframe.
//
// The pause's mix positions in the manifest are positions in mix.wav: the
// cut's start and end with silence, the cut's start twice with skip.

// pauseState is a running session's pause state and the gates of its tracks.
type pauseState struct {
	paused  atomic.Bool
	cut     atomic.Pointer[cutSpan] // the latest pause on the mix's timeline (nil: none, or no mix)
	skipped atomic.Int64            // total time cut out of the mix so far (ns), with skip
	skips   atomic.Int64            // skipped pauses ended so far

	mu    sync.Mutex // guards gates and ended
	gates map[*gate]string
	// ended are the latest audio tracks that ended (their sinks closed):
	// their files still feed the re-mix of a retroactive blackout.
	ended []endedTrack
}

// maxEnded is how many ended audio tracks a recording keeps for re-mixes.
const maxEnded = 32

// cutSpan is a pause or a blackout on the recording's timeline: mix
// positions [from, to), to open (math.MaxUint64) while it lasts.
type cutSpan struct{ from, to uint64 }

const openSpan = math.MaxUint64

// resume ends the pause at c.to (c is the pause, closed): the mixer waits
// for every track's audio from there on again (media.MixInput.GateEnds),
// and then the gates let it through.
func (lc *pauseState) resume(c *cutSpan) {
	lc.mu.Lock()
	for g := range lc.gates {
		if g.in != nil {
			g.in.GateEnds(c.to)
		}
	}
	lc.mu.Unlock()
	lc.cut.Store(c)
}

// holds reports whether position pos is within the span (false for nil).
func (c *cutSpan) holds(pos uint64) bool { return c != nil && pos >= c.from && pos < c.to }

// gate decides, on a track's reader goroutine, whether a packet reaches the
// track's files, and shifts timestamps after a skipped pause.
//
// An audio packet is kept or dropped by where its audio begins on the
// recording's timeline (media.AudioPipeline.PlaceOf, the mix's own mapping),
// not by when the reader got it: a reader that fell behind on a busy machine
// (or a sender that did) reads audio spoken before a pause after the pause
// began, and audio spoken during the pause after it ended. So the cut is at
// the pause's instant in the file and the mix alike, however late the
// packets are read. A packet no mapping places (video, a track's first
// packet, a new source, timestamps that lost touch with time) is kept or
// dropped by the switches as it is read.
type gate struct {
	lc       *pauseState
	black    atomic.Bool             // the participant is blacked out
	blackCut atomic.Pointer[cutSpan] // the participant's latest blackout on the timeline (audio)
	in       *media.MixInput         // the track's mixer input; nil for video
	sink     *mediaSink              // the track's sink (its file), for retroactive blackouts
	clock    int64                   // RTP clock rate

	// Reader goroutine only.
	skipSeen  int64  // lc.skips when the reader last looked (skipEnded)
	join      bool   // the next packet written follows the last one (closeGap)
	video     bool   // shifted by the time the mix cut out (base), not joined
	base      int64  // lc.skipped the video shift was computed for
	shift     uint32 // subtracted from timestamps
	last      uint32 // last timestamp written (after the shift)
	lastDelta uint32 // the step before it
	have      bool
	gatedAt   uint64 // timeline position of the packet the gate dropped first (0: unknown)
	// gatedBelow: the gate closed on a packet no mapping placed, by the
	// switch, within cuts that begin here (0: none known; see straggler).
	gatedBelow uint64
	// The spans the gate reopened after: the packets after them are placed
	// anew (after a skipped pause a track may resume into the cut's span,
	// media.AudioPipeline.ResyncAt), not by the mapping the span cut by.
	pastPause, pastBlack *cutSpan
}

// drop reports whether p must be dropped: the recording is paused or the
// participant is blacked out.
func (g *gate) drop() bool {
	return g.lc.paused.Load() || g.black.Load()
}

// dropAt reports whether a packet whose audio begins at timeline position
// pos must be dropped: pos is within a pause or the participant's blackout.
// known is false when no mapping places the packet: then drop decides.
// gated says the gate dropped the packet before this one: a packet from
// before the first one it dropped is a straggler whose place in the file is
// given up (the reorder stage was flushed at the cut), and stays out.
func (g *gate) dropAt(pos uint64, known, gated bool) bool {
	if !known {
		return g.drop()
	}
	if gated && pos < g.gatedAt {
		return true
	}
	pc, bc := g.lc.cut.Load(), g.blackCut.Load()
	if pc == g.pastPause {
		pc = nil
	}
	if bc == g.pastBlack {
		bc = nil
	}
	return pc.holds(pos) || bc.holds(pos)
}

// closed notes that the gate closed (dropped a packet after passing the
// one before) on a packet whose audio begins at pos (known), or that no
// mapping placed (then within the pause and blackout in force).
func (g *gate) closed(pos uint64, known bool) {
	g.gatedAt, g.gatedBelow = 0, 0
	if known {
		g.gatedAt = pos
		return
	}
	if c := g.lc.cut.Load(); c != nil && c != g.pastPause && c.to == openSpan && g.lc.paused.Load() {
		g.gatedBelow = c.from
	}
	if c := g.blackCut.Load(); c != nil && c != g.pastBlack && c.to == openSpan && g.black.Load() {
		if g.gatedBelow == 0 || c.from < g.gatedBelow {
			g.gatedBelow = c.from // the earlier of the two
		}
	}
}

// straggler reports whether a packet that passes the gate, its audio
// beginning at pos (known: a mapping places it), is a straggler from
// before a cut, read after the cut began: a reader behind its socket (a
// busy machine), whose packets from before a pause come past the budget
// late (the switch dropped them) and then within it. It is kept where it
// is, and it is no resume: the gate still waits for the cut (gated: it
// closed on a packet no mapping placed, and this one begins before the cuts
// in force then), or for the first packet after a skipped pause that ended
// (not gated: it begins before the pause).
func (g *gate) straggler(pos uint64, known, gated bool) bool {
	if !known {
		return false
	}
	if gated {
		return pos < g.gatedBelow
	}
	c := g.lc.cut.Load()
	return c != nil && c != g.pastPause && c.to != openSpan && pos < c.from
}

// quietAt reports whether the mixer may stop waiting for the track's mix
// input once the gate dropped a packet whose audio begins at pos
// (media.MixInput.Gate): pos is within the participant's blackout or a
// pause with silence. Not within a pause with skip: a track resumes into the
// cut's span there (media.AudioPipeline.ResyncAt).
func (g *gate) quietAt(pos uint64) bool {
	bc := g.blackCut.Load()
	if bc != g.pastBlack && bc.holds(pos) {
		return true
	}
	pc := g.lc.cut.Load()
	return pc != g.pastPause && pc.holds(pos) && g.in != nil && g.in.Mixer().Config().PauseBehavior != pause.Skip
}

// reopened tells the gate that a packet passed after it dropped: the spans
// that ended are past.
func (g *gate) reopened() {
	if c := g.lc.cut.Load(); c != nil && c.to != openSpan {
		g.pastPause = c
	}
	if c := g.blackCut.Load(); c != nil && c.to != openSpan {
		g.pastBlack = c
	}
}

// skipEnded reports whether a skipped pause ended since the last call.
func (g *gate) skipEnded() bool {
	sk := g.lc.skips.Load()
	if sk == g.skipSeen {
		return false
	}
	g.skipSeen = sk
	return true
}

// closeGap makes the next packet written follow the last one directly: the
// interval a skipped pause left out is gone from the file (the timestamps
// of every later packet are shifted back by as much). Audio only: a video
// track is shifted back by the time the mix's cuts left out instead (from
// the end of the audio before the pause to the resume), which keeps it
// where it was against the mix's audio.
func (g *gate) closeGap() { g.join = true }

// timestamp returns the timestamp to write for p (see the shifting rule above).
func (g *gate) timestamp(p *rtp.Packet) uint32 {
	if g.video {
		g.join = false
		if sk := g.lc.skipped.Load(); sk != g.base {
			// Video: back by the time the mix's cuts left out, unless
			// that lands at or before the last frame written (jitter):
			// then one frame interval after it.
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

// setBlack blacks the track's participant out or in at instant at. The
// gate's cut is the mix's too: the mix holds what the track file holds. The
// track's mixer input is muted a frame after the same instant (the packet
// straddling it stays whole, as in the file), whatever its mapping placed
// later before the blackout began (see Manager.setPaused).
func (g *gate) setBlack(on bool, at time.Time) {
	if g.in != nil {
		pos := g.in.Mixer().PosAt(at)
		if on {
			g.in.MuteFrom(pos + uint64(g.in.Mixer().FrameSamples()))
			g.blackCut.Store(&cutSpan{pos, openSpan})
		} else if c := g.blackCut.Load(); c != nil && c.to == openSpan {
			to := max(pos, c.from)
			g.in.GateEnds(to) // before the gate lets audio from there through
			g.in.UnmuteFrom(to)
			g.blackCut.Store(&cutSpan{c.from, to})
		}
	}
	g.black.Store(on)
}

// blackSince moves the start of the participant's open blackout back to
// timeline position pos (a retroactive blackout): audio from there that is
// read only now stays out too.
func (g *gate) blackSince(pos uint64) {
	if c := g.blackCut.Load(); c != nil && c.to == openSpan && pos < c.from {
		g.blackCut.Store(&cutSpan{pos, openSpan})
	}
}

// newGate registers the gate of a new track of userID; the caller holds s.mu.
// A participant blacked out now is blacked out in the new track too.
func (s *Session) newGate(userID string, sink *mediaSink, clockRate uint32, video bool) *gate {
	g := &gate{lc: &s.lc, in: sink.in, sink: sink, clock: int64(clockRate), skipSeen: s.lc.skips.Load(), base: s.lc.skipped.Load(), video: video}
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
		g.setBlack(true, at)
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

func (m *Manager) setPaused(ctx context.Context, org, conv, rid, iid string, paused bool) (*Recording, error) {
	op := map[bool]string{true: OpPause, false: OpResume}[paused]
	if r, ok, err := m.forward(ctx, &Command{Op: op, OrganizationID: org, ConversationID: conv, RecorderID: rid, InstanceID: iid}); ok {
		return r, err
	}
	r, err := m.Get(ctx, org, conv, rid, iid)
	if err != nil {
		return nil, err
	}
	s := m.session(iid)
	verb := map[bool]string{true: "pause", false: "resume"}[paused]
	if s == nil || r.State != StateActive {
		return nil, errorf(KindConflict, "not_active", "cannot %s recording %s: it is %s", verb, iid, r.State)
	}
	s.mu.Lock()
	if s.stopping || s.rec.State != StateActive {
		st := s.rec.State
		s.mu.Unlock()
		return nil, errorf(KindConflict, "not_active", "cannot %s recording %s: it is stopping (%s)", verb, iid, st)
	}
	if s.rec.Paused == paused {
		snap := s.rec.clone()
		s.mu.Unlock()
		return snap, nil
	}
	now := m.now()
	if paused {
		s.lc.paused.Store(true) // before the commit: nothing from now on is kept
	}
	// The cut on the mix's timeline (see above): its position in mix.wav.
	var pos time.Duration
	var cutLog []any            // where the cut is on the timeline, for the log line
	cutLen := time.Duration(-1) // what a skipped pause cut out of the mix (-1: no mix)
	oldCut := s.lc.cut.Load()
	var newCut *cutSpan // the pause on the timeline, for the gates
	if sm := s.media; sm != nil && sm.mixer != nil {
		mx := sm.mixer
		at := mx.PosAt(now)
		if paused {
			newCut = &cutSpan{at, openSpan}
			s.lc.cut.Store(newCut) // with paused: nothing from now on is kept
		} else if oldCut != nil && oldCut.to == openSpan {
			newCut = &cutSpan{oldCut.from, max(at, oldCut.from)}
		}
		ms := func(x uint64) float64 { return float64(mx.Duration(x)) / 1e6 }
		cutLog = []any{"atMs", ms(at), "inputsEndMs", ms(mx.InputsEnd()), "writtenMs", ms(mx.Written())}
		skip := s.rec.PauseBehavior == pause.Skip
		// The cut is at the pause instant, whatever a track's mapping
		// placed after it before the pause began (a report stamped late
		// places a track up to 100 ms ahead of its arrival): the mix
		// leaves that out (Cut) or silences it (Silence) with the pause,
		// all but a packet straddling the instant.
		switch {
		case paused && skip:
			pos = mx.OutputAt(mx.Cut(at))
		case paused:
			mx.Silence(at)
			pos = mx.OutputAt(at)
		case skip:
			from := mx.Uncut(at) // the cut's start settles
			cutLen = mx.Duration(max(at, from) - from)
			cutLog = append(cutLog, "cutFromMs", ms(from))
			pos = mx.OutputAt(at)
		default:
			if newCut != nil {
				mx.Unsilence(newCut.to)
			}
			pos = mx.OutputAt(at)
		}
	}
	skipAdded := time.Duration(-1) // what a resume added to skipped (-1: nothing)
	if !paused {
		// The gates let audio from the resume on through now, not once the
		// commit is done: a commit takes tens of milliseconds (100 ms seen
		// at load 12), and the audio read meanwhile is after the resume.
		if n := len(s.rec.Pauses); n > 0 && s.rec.Pauses[n-1].End.IsZero() && s.rec.PauseBehavior == pause.Skip {
			if cutLen < 0 { // no mix: the paused time
				cutLen = now.Sub(s.rec.Pauses[n-1].Start)
			}
			s.lc.skipped.Add(int64(cutLen))
			s.lc.skips.Add(1)
			skipAdded = cutLen
		}
		if newCut != nil {
			s.lc.resume(newCut) // audio from the resume on passes
		}
		s.lc.paused.Store(false)
	}
	err = s.commitLocked(ctx, func(r *Recording) {
		r.Paused = paused
		if paused {
			r.Pauses = append(r.Pauses, PauseInterval{Start: now, MixStart: pos, MixEnd: pos})
			return
		}
		if n := len(r.Pauses); n > 0 && r.Pauses[n-1].End.IsZero() {
			p := &r.Pauses[n-1]
			p.End, p.MixEnd = now, pos
			if r.PauseBehavior == pause.Skip {
				p.MixStart = pos // where the cut settled: the end of the audio before it
			}
		}
	})
	if err != nil {
		if paused { // not persisted: not paused
			s.lc.cut.Store(oldCut)
			s.lc.paused.Store(false)
			if sm := s.media; sm != nil && sm.mixer != nil {
				sm.mixer.Uncut(0)     // an empty cut (with skip)
				sm.mixer.Unsilence(0) // an empty silence (with silence)
			}
		} else { // not persisted: still paused
			s.lc.paused.Store(true)
			s.lc.cut.Store(oldCut)
			if skipAdded >= 0 {
				s.lc.skipped.Add(-int64(skipAdded))
				s.lc.skips.Add(-1)
			}
		}
		s.mu.Unlock()
		return nil, err
	}
	snap := s.rec.clone()
	s.mu.Unlock()
	s.log.Info("recording "+verb+"d", append([]any{"mixPosition", pos}, cutLog...)...)
	typ := "recording.paused"
	if !paused {
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
		if r.PauseBehavior == pause.Skip {
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

// Blackouts (seed 003): one participant (userId) is silenced in every
// recording that includes them, recordings that start during the blackout
// included, until the blackout is stopped or MaxBlackout passes. While a
// participant is blacked out, the gate of each of their tracks drops its
// packets before any file and their mixer inputs are muted; the rest of the
// recording goes on.

// Blackout is a participant's blackout as the Manager keeps it.
type Blackout struct {
	OrganizationID string    `json:"organizationId"`
	UserID         string    `json:"userId"`
	ConferenceID   string    `json:"conferenceId,omitempty"` // empty: every conference
	Start          time.Time `json:"start"`                  // when it began (or will)
	Stop           time.Time `json:"stop"`                   // when it ends (or ended) at the latest
	Active         bool      `json:"active"`                 // in force now
	Recordings     []string  `json:"recordings"`             // instanceIds it silenced
}

// BlackoutRequest starts or stops a blackout. Zero times mean now; the API
// applies seed 003's rules (explicit times, TimeOffset, receipt time).
type BlackoutRequest struct {
	UserID       string
	ConferenceID string
	Start        time.Time
	Stop         time.Time
}

type blackoutKey struct{ org, user string }

// blackout is a registered blackout and its timers.
type blackout struct {
	b            Blackout
	begin, end   *time.Timer
	instanceSeen map[string]bool
	// fromFleet: registered at another instance's word, which publishes
	// the blackout's events; this one publishes only for its own recordings.
	fromFleet bool
	// leased: this instance holds the blackout's place in the fleet-wide
	// quota, and gives it back when the blackout ends.
	leased bool
}

// managerState is the Manager's state beyond recordings: blackouts and
// the event publisher.
type managerState struct {
	mu        sync.Mutex
	blackouts map[blackoutKey]*blackout
	events    Publisher
	loadOnce  sync.Once  // loads the stored blackouts at first use
	storedMu  sync.Mutex // serialises changes to stored (not running) recordings
}

// StartBlackout starts (or schedules) a blackout of req.UserID. A blackout of
// the same participant that is already registered is replaced by the new
// times. Times are applied as given (seed 003: they are the client's): a
// start in the past is kept as the blackout's start, and what the running
// recordings hold of the participant since then is silenced. A
// stop time not after the start, or a blackout that ended before it was
// asked for, is invalid; a blackout never lasts longer than the configured
// maxBlackout from its start.
func (m *Manager) StartBlackout(ctx context.Context, organizationID string, req BlackoutRequest) (*Blackout, error) {
	if err := validUser(req.UserID); err != nil {
		return nil, err
	}
	if req.ConferenceID != "" {
		if err := ValidateID("conferenceId", req.ConferenceID); err != nil {
			return nil, err
		}
	}
	now := m.now()
	if err := m.blackoutWindow(now, "start", req.Start); err != nil {
		return nil, err
	}
	if err := m.blackoutWindow(now, "stop", req.Stop); err != nil {
		return nil, err
	}
	if req.Start.IsZero() {
		req.Start = now
	}
	limit := req.Start.Add(m.cfg.Defaults.MaxBlackout)
	if !req.Stop.IsZero() && !req.Stop.After(req.Start) {
		return nil, errorf(KindInvalid, "invalid_time", "the blackout's stop time %s is not after its start %s",
			req.Stop.Format(time.RFC3339Nano), req.Start.Format(time.RFC3339Nano))
	}
	if req.Stop.IsZero() || req.Stop.After(limit) {
		req.Stop = limit
	}
	if !req.Stop.After(now) {
		return nil, errorf(KindInvalid, "invalid_time", "the blackout from %s ends at %s, before now: nothing to black out (maxBlackout is %s)",
			req.Start.Format(time.RFC3339Nano), req.Stop.Format(time.RFC3339Nano), m.cfg.Defaults.MaxBlackout)
	}
	m.loadBlackouts()
	// In a fleet the quota counts the blackouts of every instance: a lease
	// per participant in the shared store until the blackout's stop (the
	// same participant's lease is renewed, not counted twice). The
	// instances the blackout is broadcast to take none.
	leased := false
	if m.remote != nil && !fromFleet(ctx) {
		quota := m.cfg.Quotas.For(organizationID).Blackouts
		ok, err := m.remote.AcquireQuota(ctx, organizationID, QuotaBlackout, req.UserID, quota, req.Stop)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, QuotaError("blackouts", quota)
		}
		leased = true
	}
	key := blackoutKey{organizationID, req.UserID}
	m.lc.mu.Lock()
	bo := m.lc.blackouts[key]
	if bo == nil {
		quota, held := m.cfg.Quotas.For(organizationID).Blackouts, 0
		for k := range m.lc.blackouts {
			if k.org == organizationID {
				held++
			}
		}
		if held >= quota {
			m.lc.mu.Unlock()
			if leased {
				m.remote.ReleaseQuota(ctx, organizationID, QuotaBlackout, req.UserID)
			}
			return nil, QuotaError("blackouts", quota)
		}
		bo = &blackout{instanceSeen: map[string]bool{}}
		bo.b = Blackout{OrganizationID: organizationID, UserID: req.UserID, Recordings: []string{}}
		m.lc.blackouts[key] = bo
	}
	if !bo.b.Active {
		bo.b.Start = req.Start
	}
	bo.fromFleet = fromFleet(ctx)
	bo.leased = bo.leased || leased
	bo.b.ConferenceID, bo.b.Stop = req.ConferenceID, req.Stop
	if bo.begin != nil {
		bo.begin.Stop()
		bo.begin = nil
	}
	if bo.end != nil {
		bo.end.Stop()
	}
	bo.end = time.AfterFunc(time.Until(req.Stop), func() { m.endBlackout(key, bo) })
	begin := !bo.b.Active && !req.Start.After(now)
	if !bo.b.Active && req.Start.After(now) {
		bo.begin = time.AfterFunc(time.Until(req.Start), func() { m.beginBlackout(key, bo) })
	}
	m.lc.mu.Unlock()
	// The other instances of a fleet before this one's store and recordings:
	// the request is valid and registered, nothing can fail from here on.
	m.broadcast(ctx, &Command{Op: OpBlackoutStart, OrganizationID: organizationID,
		Blackout: &BlackoutRequest{UserID: req.UserID, ConferenceID: req.ConferenceID, Start: req.Start, Stop: req.Stop}})
	if !fromFleet(ctx) { // the sender stored it
		m.persistBlackout(ctx, bo)
	}
	if begin {
		m.beginBlackout(key, bo)
		if req.Start.Before(now) { // retroactive: silence what was recorded since
			for _, s := range m.sessions(organizationID, req.ConferenceID) {
				s.silenceSince(req.UserID, req.Start)
			}
		}
	}
	return m.blackoutSnapshot(bo), nil
}

// blackoutWindow refuses a blackout time (zero: none) further than
// limits.blackoutHorizon from now either way; times are stored as Unix
// nanoseconds, which a time past 2262 would overflow.
func (m *Manager) blackoutWindow(now time.Time, name string, t time.Time) error {
	h := m.cfg.Limits.BlackoutHorizon
	if !t.IsZero() && (t.After(now.Add(h)) || t.Before(now.Add(-h))) {
		return errorf(KindInvalid, "invalid_time", "the blackout's %s time must be within %s of now", name, h)
	}
	return nil
}

// StopBlackout ends the blackout of userID at req.Stop (now when zero or
// past). A blackout that has not begun is cancelled when the stop is not
// after its start. A participant without a blackout is not found.
func (m *Manager) StopBlackout(ctx context.Context, organizationID string, req BlackoutRequest) (*Blackout, error) {
	if err := validUser(req.UserID); err != nil {
		return nil, err
	}
	m.loadBlackouts()
	m.broadcast(ctx, &Command{Op: OpBlackoutStop, OrganizationID: organizationID, Blackout: &req})
	key := blackoutKey{organizationID, req.UserID}
	now := m.now()
	if err := m.blackoutWindow(now, "stop", req.Stop); err != nil {
		return nil, err
	}
	m.lc.mu.Lock()
	bo := m.lc.blackouts[key]
	if bo == nil {
		m.lc.mu.Unlock()
		return nil, errorf(KindNotFound, "no_blackout", "participant %s has no blackout", req.UserID)
	}
	if !req.Start.IsZero() && !req.Stop.IsZero() && !req.Stop.After(req.Start) {
		m.lc.mu.Unlock()
		return nil, errorf(KindInvalid, "invalid_time", "the blackout's stop time is not after its start")
	}
	if !bo.b.Active && (req.Stop.IsZero() || !req.Stop.After(bo.b.Start)) { // not begun: cancelled
		m.lc.mu.Unlock()
		m.endBlackout(key, bo)
		return m.blackoutSnapshot(bo), nil
	}
	if !req.Stop.IsZero() && !req.Stop.After(bo.b.Start) {
		m.lc.mu.Unlock()
		return nil, errorf(KindInvalid, "invalid_time", "the blackout's stop time %s is not after its start %s",
			req.Stop.Format(time.RFC3339Nano), bo.b.Start.Format(time.RFC3339Nano))
	}
	if req.Stop.After(now) {
		bo.b.Stop = req.Stop
		if bo.end != nil {
			bo.end.Stop()
		}
		bo.end = time.AfterFunc(time.Until(req.Stop), func() { m.endBlackout(key, bo) })
		m.lc.mu.Unlock()
		if !fromFleet(ctx) {
			m.persistBlackout(ctx, bo)
		}
		return m.blackoutSnapshot(bo), nil
	}
	m.lc.mu.Unlock()
	m.endBlackout(key, bo)
	return m.blackoutSnapshot(bo), nil
}

// Blackouts returns the registered blackouts of organizationID (for the
// participants view).
func (m *Manager) Blackouts(organizationID string) map[string]*Blackout {
	m.loadBlackouts()
	m.lc.mu.Lock()
	var list []*blackout
	for k, bo := range m.lc.blackouts {
		if k.org == organizationID {
			list = append(list, bo)
		}
	}
	m.lc.mu.Unlock()
	out := map[string]*Blackout{}
	for _, bo := range list {
		b := m.blackoutSnapshot(bo)
		out[b.UserID] = b
	}
	return out
}

func (m *Manager) blackoutSnapshot(bo *blackout) *Blackout {
	m.lc.mu.Lock()
	defer m.lc.mu.Unlock()
	b := bo.b
	b.Recordings = append([]string{}, bo.b.Recordings...)
	return &b
}

// blackedOut reports whether userID of organizationID is blacked out in
// conference conf now.
func (m *Manager) blackedOut(org, conf, userID string) bool {
	m.loadBlackouts()
	m.lc.mu.Lock()
	defer m.lc.mu.Unlock()
	bo := m.lc.blackouts[blackoutKey{org, userID}]
	return bo != nil && bo.b.Active && (bo.b.ConferenceID == "" || bo.b.ConferenceID == conf)
}

// beginBlackout puts a registered blackout in force in every running recording.
func (m *Manager) beginBlackout(key blackoutKey, bo *blackout) {
	m.lc.mu.Lock()
	if m.lc.blackouts[key] != bo || bo.b.Active {
		m.lc.mu.Unlock()
		return
	}
	bo.b.Active = true
	if now := m.now(); bo.b.Start.After(now) { // a timer fired a little early
		bo.b.Start = now
	}
	conf := bo.b.ConferenceID
	m.lc.mu.Unlock()
	for _, s := range m.sessions(key.org, conf) {
		s.applyBlackout(key.user, true)
	}
	m.log.Info("blackout started", "organizationId", key.org, "userId", key.user)
	m.publishBlackout(bo, "blackout.started")
}

// endBlackout ends a blackout in every recording and forgets it.
func (m *Manager) endBlackout(key blackoutKey, bo *blackout) {
	m.lc.mu.Lock()
	if m.lc.blackouts[key] != bo {
		m.lc.mu.Unlock()
		return
	}
	delete(m.lc.blackouts, key)
	if err := m.store.DeleteBlackout(context.Background(), key.org, key.user); err != nil {
		m.log.Error("cannot delete stored blackout", "userId", key.user, "err", err)
	}
	if bo.begin != nil {
		bo.begin.Stop()
	}
	if bo.end != nil {
		bo.end.Stop()
	}
	if bo.leased {
		bo.leased = false
		go m.remote.ReleaseQuota(context.Background(), key.org, QuotaBlackout, key.user)
	}
	was := bo.b.Active
	bo.b.Active = false
	if now := m.now(); now.Before(bo.b.Stop) || !was {
		bo.b.Stop = now
	}
	m.lc.mu.Unlock()
	if !was {
		return
	}
	for _, s := range m.sessions(key.org, "") {
		s.applyBlackout(key.user, false)
	}
	m.log.Info("blackout stopped", "organizationId", key.org, "userId", key.user)
	m.publishBlackout(bo, "blackout.stopped")
}

// applyBlackout blacks userID out (on) or in, in s: its gates and the
// recording's blackout intervals.
func (s *Session) applyBlackout(userID string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping || s.rec.State != StateActive {
		return
	}
	at := s.m.now() // the instant the gates switch: the cut in the files and the mix
	for _, g := range s.gatesOf(userID) {
		g.setBlack(on, at)
	}
	s.recordBlackoutLocked(userID, on, at)
}

// recordBlackoutLocked opens (on) or closes the blackout interval of userID in
// the recording at at, the instant its gates switched, when the participant
// is part of it. The caller holds s.mu.
func (s *Session) recordBlackoutLocked(userID string, on bool, at time.Time) {
	open := -1
	for i, b := range s.rec.Blackouts {
		if b.UserID == userID && b.End.IsZero() {
			open = i
		}
	}
	has := false
	for _, st := range s.rec.Streams {
		has = has || st.UserID == userID
	}
	if on && (open >= 0 || (!has && len(s.gatesOf(userID)) == 0)) || !on && open < 0 {
		return
	}
	err := s.commitLocked(context.Background(), func(r *Recording) {
		if on {
			r.Blackouts = append(r.Blackouts, BlackoutInterval{UserID: userID, Start: at})
		} else {
			r.Blackouts[open].End = at
		}
	})
	if err != nil {
		s.log.Error("cannot persist blackout", "userId", userID, "err", err)
		return
	}
	if on {
		s.m.lc.mu.Lock()
		if bo := s.m.lc.blackouts[blackoutKey{s.rec.OrganizationID, userID}]; bo != nil && !bo.instanceSeen[s.rec.InstanceID] {
			bo.instanceSeen[s.rec.InstanceID] = true
			bo.b.Recordings = append(bo.b.Recordings, s.rec.InstanceID)
		}
		s.m.lc.mu.Unlock()
	}
}

// validUser checks a blackout's userId: required, and a valid ValidateUserID.
func validUser(id string) error {
	if id == "" {
		return errorf(KindInvalid, "missing_field", "userId is required")
	}
	return ValidateUserID(id)
}

// persistBlackout stores bo, so that it outlives a restart.
func (m *Manager) persistBlackout(ctx context.Context, bo *blackout) {
	b := m.blackoutSnapshot(bo)
	recs, _ := json.Marshal(b.Recordings)
	if err := m.store.PutBlackout(context.WithoutCancel(ctx), &store.Blackout{OrganizationID: b.OrganizationID, UserID: b.UserID,
		ConferenceID: b.ConferenceID, Start: b.Start, Stop: b.Stop, Recordings: recs}); err != nil {
		m.log.Error("cannot store blackout", "userId", b.UserID, "err", err)
	}
}

// loadBlackouts registers the blackouts stored by an earlier run, once: those
// whose stop passed are dropped, the others are in force (or scheduled) again
// until their stop. It may run with a session's lock held (a new track asks
// whether its participant is blacked out), so the running recordings are
// blacked out on another goroutine.
func (m *Manager) loadBlackouts() {
	m.lc.loadOnce.Do(func() {
		ctx := context.Background()
		stored, err := m.store.Blackouts(ctx)
		if err != nil {
			m.log.Error("cannot load blackouts", "err", err)
		}
		now := m.now()
		m.lc.mu.Lock()
		defer m.lc.mu.Unlock()
		if m.lc.blackouts == nil {
			m.lc.blackouts = map[blackoutKey]*blackout{}
		}
		for _, sb := range stored {
			key := blackoutKey{sb.OrganizationID, sb.UserID}
			if !sb.Stop.After(now) {
				if err := m.store.DeleteBlackout(ctx, key.org, key.user); err != nil {
					m.log.Error("cannot delete stored blackout", "userId", key.user, "err", err)
				}
				continue
			}
			bo := &blackout{instanceSeen: map[string]bool{}}
			bo.b = Blackout{OrganizationID: sb.OrganizationID, UserID: sb.UserID, ConferenceID: sb.ConferenceID,
				Start: sb.Start, Stop: sb.Stop, Recordings: []string{}}
			json.Unmarshal(sb.Recordings, &bo.b.Recordings)
			for _, id := range bo.b.Recordings {
				bo.instanceSeen[id] = true
			}
			m.lc.blackouts[key] = bo
			bo.end = time.AfterFunc(sb.Stop.Sub(now), func() { m.endBlackout(key, bo) })
			if sb.Start.After(now) {
				bo.begin = time.AfterFunc(sb.Start.Sub(now), func() { m.beginBlackout(key, bo) })
				continue
			}
			bo.b.Active = true
			conf := bo.b.ConferenceID
			go func() {
				for _, s := range m.sessions(key.org, conf) {
					s.applyBlackout(key.user, true)
				}
			}()
		}
	})
}
