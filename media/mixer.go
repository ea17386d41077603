package media

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/rtcrec/recorder/media/pause"
)

// Channel assigns a mixer input to the channels of a stereo mix.
type Channel int

// The channel assignments; a mono mix ignores them.
const (
	ChannelCenter Channel = iota // both channels
	ChannelLeft
	ChannelRight
)

// String returns "center", "left" or "right".
func (c Channel) String() string {
	switch c {
	case ChannelCenter:
		return "center"
	case ChannelLeft:
		return "left"
	case ChannelRight:
		return "right"
	}
	return fmt.Sprintf("Channel(%d)", int(c))
}

// MixConfig configures a Mixer. Zero values mean the defaults.
type MixConfig struct {
	SampleRate int           // mix rate in Hz; default 8000
	Channels   int           // 1 (default) or 2
	Frame      time.Duration // one mixing step; default 20 ms
	// Latency is the latency budget: how long the mixer waits for an input
	// that has not decided a frame yet (late, reordered or lost packets)
	// before it writes the frame without the missing audio. Default 5 s.
	Latency       time.Duration
	PauseBehavior pause.Behavior // default pause.Silence
	// Start is the instant of timeline position 0; default the mixer's
	// creation.
	Start time.Time
	// Clock tells the time; default time.Now. Tests give a virtual clock.
	Clock func() time.Time
}

// DefaultLatency is the default latency budget.
const DefaultLatency = 5 * time.Second

// withDefaults returns c with zero and invalid values replaced by defaults.
func (c MixConfig) withDefaults() MixConfig {
	if c.SampleRate <= 0 {
		c.SampleRate = 8000
	}
	if c.Channels != 2 {
		c.Channels = 1
	}
	if c.Frame <= 0 {
		c.Frame = 20 * time.Millisecond
	}
	if c.Latency <= 0 {
		c.Latency = DefaultLatency
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Start.IsZero() {
		c.Start = c.Clock()
	}
	return c
}

// samples converts a duration to samples at rate, at least 1.
func samples(d time.Duration, rate int) int {
	return max(1, int(d*time.Duration(rate)/time.Second))
}

// FrameSink receives the mixed audio. WriteFrame gets interleaved samples:
// a frame, or the part of a frame a skipped pause leaves; pcm is reused after
// it returns, so a sink that keeps the samples must copy them. It is called
// from the mixer's goroutine only. The WAV writer in media/wavwriter
// implements it.
type FrameSink interface {
	WriteFrame(pcm []int16) error
}

// BufferedSink is a FrameSink that holds the last samples it was given
// before it writes them out (the WAV writer: a second of audio). The mixer
// flushes it at a step after which the oldest audio it holds would be the
// latency budget old (by its timeline position) before the next step: while
// the mixer waits for an input (a track late, a reader behind), what it
// wrote before the wait does not stay held for the whole wait, so the mix
// the sink writes out lags the recording by at most the budget and the
// frame being waited for (issue 10: upload while recording). Otherwise the
// sink flushes by itself.
type BufferedSink interface {
	FrameSink
	// Buffered returns the number of samples per channel held, not written
	// out; Flush writes them out. Mixer goroutine.
	Buffered() int
	Flush() error
}

// InputOptions configures one mixer input.
type InputOptions struct {
	// Channel places the input in a stereo mix; default ChannelCenter.
	Channel Channel
	// RingCapacity is the most the input's ring holds, in samples; default
	// the latency budget plus ringSlack at the mix rate. The ring starts at
	// a second of it and grows when needed.
	RingCapacity int
	// Unread, if set, says when the first packet of the input's track that
	// its reader has not read yet reached the machine (the kernel's receive
	// time; false: none, or not known). A reader behind its socket (a
	// recorder short of CPU, a burst after a network stall) still has audio
	// to read that came within the budget: the mixer waits for it up to
	// readerWait past the budget (see frame). Called on the mixer goroutine,
	// only for a frame whose budget passed while the input had not decided
	// it: it must not block or allocate.
	Unread func() (time.Time, bool)
}

// span is a half-open interval [from, to) of timeline positions.
type span struct{ from, to uint64 }

// open is the end of a span that has not ended yet.
const open = ^uint64(0)

// MixInput is one input of a Mixer: an audio track's ring and its settings.
// The track's pipeline (the ring's producer) writes to Ring; the mixer is the
// ring's consumer.
type MixInput struct {
	id      string
	m       *Mixer
	ring    *Ring
	channel Channel
	rate    int    // the mix rate
	start   uint64 // the timeline position the input joined at

	leaving atomic.Bool            // removed: nothing more will be written
	mutes   atomic.Pointer[[]span] // muted spans (one open at most), immutable
	// The producer's gate (see Gate): gated while it writes nothing on
	// purpose; gatedAt, where the gate closed; gateEnd, the latest end of a
	// gated span (GateEnds), 0 if none was given.
	gated   atomic.Bool
	gatedAt atomic.Uint64
	gateEnd atomic.Uint64
	// deferEnd is where the audio of the packets its pipeline queued
	// undecoded ends (deferred.go), 0 while none is queued: InputsEnd
	// counts it as written.
	deferEnd atomic.Uint64
	joined   bool                     // mixer goroutine: the mixer reached start
	unread   func() (time.Time, bool) // InputOptions.Unread; nil: not known
	_        [0]func()                // not comparable
}

// Deferred reports whether the input's pipeline holds packets undecoded
// (AudioPipeline.Deferred). Safe from any goroutine.
func (in *MixInput) Deferred() bool { return in.deferEnd.Load() != 0 }

// End returns the end of the audio its producer wrote (Ring.End), or holds
// undecoded to write (Deferred), if later. Safe from any goroutine.
func (in *MixInput) End() uint64 { return max(in.ring.End(), in.deferEnd.Load()) }

// Gate tells the mixer that the input's producer writes nothing from now on,
// on purpose, until Ungate: its track's gate (a pause with pause.Silence, a
// blackout) dropped a packet whose audio begins at timeline position at,
// and the producer wrote and decided everything before the cut
// (AudioPipeline.Pause; the gate keeps out what comes later for a place
// before it). The mixer then stops waiting for the input: it claims its
// frames as silence as soon as the other inputs (or the join wait) allow,
// instead of after the latency budget, so the mix on disk does not lag the
// budget while a participant is blacked out and the other tracks' rings do
// not fill up with it. Once GateEnds gives where the gated span ends, frames
// from there on are waited for again as usual: audio after a resume or a
// blackout's end, read however late within the budget, loses nothing.
// Producer goroutine; never blocks the mixer.
//
// Not for a pause with pause.Skip: a track resumes into the cut's span there
// (AudioPipeline.ResyncAt), and the mixer holds the cut's frames back itself.
func (in *MixInput) Gate(at uint64) {
	in.gatedAt.Store(at)
	in.gated.Store(true)
}

// Ungate tells the mixer that the input's producer writes again (its gate
// let a packet through): the mixer waits for its frames as usual. Call it
// before the producer writes. Producer goroutine.
func (in *MixInput) Ungate() { in.gated.Store(false) }

// GateEnds tells the mixer that the span the input's gate drops ends at
// timeline position pos (a resume, a blackout's end): the gate lets audio
// from pos on through, so the mixer claims no frame of the input beyond pos
// without waiting for it. Call it before the gate lets such audio through;
// a later span's end replaces an earlier one's. Safe from any goroutine.
func (in *MixInput) GateEnds(pos uint64) {
	for {
		old := in.gateEnd.Load()
		if pos <= old || in.gateEnd.CompareAndSwap(old, pos) {
			return
		}
	}
}

// gatedUpTo reports whether the mixer may claim the input's positions below
// end without waiting: its gate is closed, and end is not past where the
// gated span ends (an end given before the gate closed at gatedAt belongs to
// an earlier span). Mixer goroutine.
func (in *MixInput) gatedUpTo(end uint64) bool {
	if !in.gated.Load() {
		return false
	}
	e := in.gateEnd.Load()
	return e <= in.gatedAt.Load() || end <= e
}

// ID returns the id given to AddInput.
func (in *MixInput) ID() string { return in.id }

// Ring returns the input's ring; its producer is the track's pipeline.
func (in *MixInput) Ring() *Ring { return in.ring }

// Mixer returns the mixer the input belongs to.
func (in *MixInput) Mixer() *Mixer { return in.m }

// Start returns the timeline position the input joined at.
func (in *MixInput) Start() uint64 { return in.start }

// MuteFrom mutes the input in the mix from timeline position pos on (see
// Mixer.PosAt), until UnmuteFrom: a blackout. A position the mixer has
// already written is moved to the first one it has not: the result says
// where the mute begins. The mute reaches into what the input's producer
// wrote already: audio its mapping placed at pos or later before the
// blackout began is silent in the mix too. Muting a muted input does
// nothing. Safe from any goroutine.
func (in *MixInput) MuteFrom(pos uint64) uint64 {
	return openSpan(&in.mutes, max(pos, in.m.Written()))
}

// UnmuteFrom ends the input's mute at timeline position pos (at least where
// it began). Unmuting an input that is not muted does nothing. Safe from any
// goroutine.
func (in *MixInput) UnmuteFrom(pos uint64) { closeSpan(&in.mutes, pos) }

// MuteSpan mutes the input in the mix over the timeline positions [from,
// to), beside an open mute (MuteFrom): a blackout decided after the fact,
// from a start in the past that is still within the latency budget, mutes
// the audio already received for it. A position the mixer has already
// written is moved to the first one it has not: the result says where the
// mute begins. Safe from any goroutine.
func (in *MixInput) MuteSpan(from, to uint64) uint64 {
	from = max(from, in.m.Written())
	addSpan(&in.mutes, span{from, max(from, to)})
	return from
}

// Muted reports whether the input is muted from some position on.
func (in *MixInput) Muted() bool { return openIndex(*in.mutes.Load()) >= 0 }

// openIndex returns the index of the open span of list (-1: none). A list
// holds one at most.
func openIndex(list []span) int {
	for i, s := range list {
		if s.to == open {
			return i
		}
	}
	return -1
}

// openSpan opens a span at pos in the list *p (copy-on-write) unless one is
// open, and returns where the open span begins.
func openSpan(p *atomic.Pointer[[]span], pos uint64) uint64 {
	for {
		old := p.Load()
		list := *old
		if i := openIndex(list); i >= 0 {
			return list[i].from
		}
		next := append(list[:len(list):len(list)], span{pos, open})
		if p.CompareAndSwap(old, &next) {
			return pos
		}
	}
}

// closeSpan ends the open span of the list *p at pos (at least where it
// began); without one it does nothing.
func closeSpan(p *atomic.Pointer[[]span], pos uint64) {
	for {
		old := p.Load()
		list := *old
		i := openIndex(list)
		if i < 0 {
			return
		}
		next := append([]span(nil), list...)
		next[i].to = max(pos, next[i].from)
		if p.CompareAndSwap(old, &next) {
			return
		}
	}
}

// addSpan adds s to the list *p (copy-on-write).
func addSpan(p *atomic.Pointer[[]span], s span) {
	for {
		old := p.Load()
		next := append((*old)[:len(*old):len(*old)], s)
		if p.CompareAndSwap(old, &next) {
			return
		}
	}
}

// Mixer mixes its inputs into one stream for a FrameSink on the recording's
// timeline (see the package documentation): frame by frame, once every
// input has decided the frame or the latency budget has passed, summed in
// int32 and clamped to int16. Positions within a skipped pause are left out
// of the output.
//
// Step and Run belong to one goroutine (the recording's mixer goroutine);
// AddInput, RemoveInput, Cut, Uncut and the MixInput methods may be called
// from any goroutine and never block a step: the input and cut lists are
// immutable slices behind atomic.Pointers, replaced copy-on-write.
type Mixer struct {
	cfg          MixConfig
	sink         FrameSink
	buffered     BufferedSink // sink, if it is one (flushHeld); else nil
	frameSamples int          // per channel
	budget       uint64       // latency budget in samples
	// joinWait is how far the mixer stays behind wall time, in samples
	// (mixJoinWait, at most half the budget): a new input starts that far
	// back (AddInput), so a track's first packets that were captured before
	// it was added (a backlog sent in a burst, a reader that read them late)
	// still land where they belong; and how long an input that has sent
	// nothing yet may hold a frame back.
	joinWait uint64

	inputs  atomic.Pointer[[]*MixInput] // immutable list, replaced by compare-and-swap
	cuts    atomic.Pointer[[]span]      // skipped spans, sorted, immutable
	silent  atomic.Pointer[[]span]      // silenced spans (pauses with silence), sorted, immutable
	written atomic.Uint64               // timeline position: frames below it are written
	writing atomic.Uint64               // the end of the frame being mixed (its mutes read); 0 between frames
	out     atomic.Uint64               // samples per channel written to the sink
	expired atomic.Uint64               // frames written because the budget passed
	end     atomic.Uint64               // SetEnd's position; 0: not set

	// Step's state and buffers (mixer goroutine only). until is where
	// Finish ends the mix (0 before), within the last frame it writes.
	pos     uint64
	until   uint64
	acc     []int32
	pcm     []int16
	scratch []int16
}

// NewMixer returns a mixer writing to sink.
func NewMixer(cfg MixConfig, sink FrameSink) *Mixer {
	cfg = cfg.withDefaults()
	n := samples(cfg.Frame, cfg.SampleRate)
	m := &Mixer{
		cfg:          cfg,
		sink:         sink,
		frameSamples: n,
		budget:       uint64(samples(cfg.Latency, cfg.SampleRate)),
		joinWait:     uint64(samples(min(mixJoinWait, cfg.Latency/2), cfg.SampleRate)),
		acc:          make([]int32, n*cfg.Channels),
		pcm:          make([]int16, n*cfg.Channels),
		scratch:      make([]int16, n),
	}
	m.buffered, _ = sink.(BufferedSink)
	m.inputs.Store(new([]*MixInput))
	m.cuts.Store(new([]span))
	m.silent.Store(new([]span))
	return m
}

// Config returns the mixer's configuration with defaults filled in.
func (m *Mixer) Config() MixConfig { return m.cfg }

// PosAt returns the timeline position of instant t, in samples (0 before the
// start).
func (m *Mixer) PosAt(t time.Time) uint64 {
	d := t.Sub(m.cfg.Start)
	if d <= 0 {
		return 0
	}
	return uint64(d/time.Microsecond) * uint64(m.cfg.SampleRate) / 1e6
}

// TimeAt returns the instant of timeline position pos (see PosAt); a
// negative one is before the start.
func (m *Mixer) TimeAt(pos int64) time.Time {
	return m.cfg.Start.Add(time.Duration(pos) * time.Second / time.Duration(m.cfg.SampleRate))
}

// Now returns the timeline position of the current instant.
func (m *Mixer) Now() uint64 { return m.PosAt(m.cfg.Clock()) }

// Duration converts a number of samples at the mix rate to a duration.
func (m *Mixer) Duration(n uint64) time.Duration {
	return time.Duration(n) * time.Second / time.Duration(m.cfg.SampleRate)
}

// ringSlack is what an input's ring holds beyond the latency budget. While
// the mixer waits the whole budget for another input (one that lags, or
// writes nothing: a participant blacked out), a track in step keeps
// writing at its arrival, up to a packet (120 ms of Opus) or a sender
// report's 100 ms ahead; and the mixer's goroutine, stepping every frame,
// runs late on a loaded machine. With 100 ms of slack a track in step lost
// 20–40 ms at a time for want of room at load 8–10 (the mixer 100–150 ms
// late: TestEndToEnd_RetroactiveBlackout); a second covers that many times
// over, and costs 16 KB per track at 8 kHz only while the ring holds the
// budget (it shrinks back after).
const ringSlack = time.Second

// readerWait is how long past the latency budget the mixer waits at most
// for a frame an input has not decided while the input's reader has
// packets to read that reached the machine within the budget for it
// (InputOptions.Unread): a reader behind its socket is not a late packet.
// Half the rings' slack: the other inputs, in step, write that much
// further ahead of what the mixer read, and a track written ahead of its
// arrival (a sender report's 100 ms, a 120 ms packet) still fits.
const readerWait = ringSlack / 2

// mixJoinWait is how far the mixer stays behind wall time (joinWait): a
// track's first packets that reach the recorder up to that late after
// their capture (GStreamer's 0.3-0.7 s backlog sent at connect, a starved
// publisher's or reader's first packet 540-720 ms late) land in the mix
// where they were captured, as in the track's file; later than that, what
// lies before the track's start in the mix is left out (counted:
// BeforeStart). At half a second, a first packet 607 or 722 ms late lost
// its first 80-200 ms in the mix while the file kept them (cmd/recorder's
// TestServe_TwoParticipantsKeepTheirOffset under load, and CI T1a of
// session 18). It delays the mix on disk by as much, far within the budget
// the upload may lag by. It is not settleTime: how long a track's first
// packets are placed provisionally. Longer costs ring memory on every
// track (initialRingSeconds).
const mixJoinWait = 760 * time.Millisecond

// initialRingSeconds is how much audio an input's ring holds before it
// first has to hold more: a track in step with the mixer keeps the join wait
// and a frame or two, plus what its sender report places ahead (up to
// 100 ms): 0.88 s; a track ahead of the mixer (it waits for another) decodes
// up to the join wait and deferLead (1.01 s) and a packet (up to 120 ms of
// Opus) ahead, and defers the rest. A grown ring shrinks back once a track
// spans three quarters of this (Ring.shrinks): 1.25 s holds both (20 KB at
// 8 kHz; a join wait of a second needed 1.5 s, 24 KB: a grown ring did not
// shrink back at 1.25 s).
const initialRingSeconds = 1.25

// AddInput adds an input and returns it. The input joins the timeline the
// mixer's join wait (760 ms, at most half the budget) before now, at
// a frame's start, or where the mix is written up to, if that is later: its
// first audio may begin that far back (a backlog that reached the recorder
// late or in a burst); audio placed before it is dropped (and counted by its
// pipeline).
func (m *Mixer) AddInput(id string, opts InputOptions) *MixInput {
	capacity := opts.RingCapacity
	if capacity <= 0 {
		capacity = int(m.budget) + int(ringSlack.Seconds()*float64(m.cfg.SampleRate))
	}
	f := uint64(m.frameSamples)
	now := m.Now()
	start := max((now-min(now, m.joinWait))/f*f, m.Written())
	// The ring holds the budget once the track (or another the mixer waits
	// for) lags; until then a second (ring.go: it grows when needed).
	ring := NewGrowingRing(min(capacity, int(float64(m.cfg.SampleRate)*initialRingSeconds)), capacity)
	in := &MixInput{id: id, m: m, ring: ring, channel: opts.Channel, rate: m.cfg.SampleRate, start: start, unread: opts.Unread}
	in.ring.head.Store(start)
	in.ring.tail.Store(start)
	in.ring.end.Store(start)
	in.mutes.Store(new([]span))
	m.update(func(old []*MixInput) []*MixInput { return append(old[:len(old):len(old)], in) })
	return in
}

// RemoveInput removes an input whose producer is done: the mixer stops
// waiting for it, mixes what it wrote, and then drops it. Calling it again,
// or for an input of another mixer, does nothing.
func (m *Mixer) RemoveInput(in *MixInput) {
	if in != nil {
		in.leaving.Store(true)
	}
}

// drop removes in from the input list.
func (m *Mixer) drop(in *MixInput) {
	m.update(func(old []*MixInput) []*MixInput {
		list := make([]*MixInput, 0, len(old))
		for _, x := range old {
			if x != in {
				list = append(list, x)
			}
		}
		return list
	})
}

// update replaces the input list with change(old) by compare-and-swap,
// retrying if another update won the race. change must not modify old.
func (m *Mixer) update(change func(old []*MixInput) []*MixInput) {
	for {
		old := m.inputs.Load()
		list := change(*old)
		if m.inputs.CompareAndSwap(old, &list) {
			return
		}
	}
}

// Inputs returns the number of inputs, leaving ones included.
func (m *Mixer) Inputs() int { return len(*m.inputs.Load()) }

// InputsEnd returns the end of what the inputs have written: the latest
// timeline position holding audio (or Written, if that is later).
func (m *Mixer) InputsEnd() uint64 {
	end := m.Written()
	for _, in := range *m.inputs.Load() {
		end = max(end, in.End())
	}
	return end
}

// Cut starts a skipped span at timeline position pos (a pause with
// pause.Skip, at its instant): the mix leaves out every position from there
// (or a frame after it, see Uncut) until Uncut, whatever the inputs hold
// there. A position already written is moved to the first one that is not;
// the result is where the cut begins. Cutting while a cut is open does
// nothing. Safe from any goroutine.
func (m *Mixer) Cut(pos uint64) uint64 {
	return openSpan(&m.cuts, max(pos, m.Written()))
}

// Uncut ends the open cut at timeline position pos (at least where it
// began) and returns where the cut begins. The start Cut chose (the pause
// instant) moves to the end of the audio the inputs hold now (InputsEnd),
// when nothing from the cut's start was written yet: back, when the audio
// before the pause ended earlier, and on by a frame at most, when a packet
// whose audio begins before the instant ends after it (the recorder's gate
// keeps a packet by where its audio begins, and drops what begins within
// the cut): it stays whole in the mix, as in its track's file. Never
// further: what lies beyond was placed there before the pause began, by a
// mapping ahead of the wall clock (a track placed by its arrival and
// caught up by its sender's reports may run a few ms ahead), and is left out
// with the pause. So the cut begins where the tracks' audio before the instant
// ends, within a frame of it, and every track resumes seamlessly
// (AudioPipeline.ResyncAt). Safe from any goroutine.
//
// The mixer writes nothing from an open cut's start on until the budget has
// passed since (a pause longer than the budget): then the start stays. If it
// is writing such a frame right now, the start moved can be off by up to
// that frame in OutputAt.
func (m *Mixer) Uncut(pos uint64) uint64 {
	for {
		old := m.cuts.Load()
		list := *old
		n := len(list)
		if n == 0 || list[n-1].to != open {
			return pos
		}
		from := list[n-1].from
		if m.Written() <= from { // nothing of the cut written yet (frame waits); InputsEnd is at least Written
			from = min(m.InputsEnd(), from+uint64(m.frameSamples))
		}
		next := append(list[:n-1:n-1], span{from, max(pos, from)})
		if m.cuts.CompareAndSwap(old, &next) {
			return from
		}
	}
}

// Silence starts a silenced span a frame after timeline position at (a
// pause with pause.Silence, at its instant): the mix is silent from there
// until Unsilence, whatever the inputs hold there. The frame after the
// instant keeps the packet whose audio begins before it and ends after it
// (the recorder's gate keeps it whole in its track's file); what lies
// beyond was placed there before the pause began, by a mapping ahead of the
// wall clock (see Uncut), and is silenced with the pause. A position already
// written is moved to the first one that is not; the result is where the
// silence begins. Silencing while silenced does nothing. Safe from any
// goroutine.
func (m *Mixer) Silence(at uint64) uint64 {
	return openSpan(&m.silent, max(at+uint64(m.frameSamples), m.Written()))
}

// Unsilence ends the open silenced span at timeline position pos (at least
// where it began). Safe from any goroutine.
func (m *Mixer) Unsilence(pos uint64) { closeSpan(&m.silent, pos) }

// LastCut returns the last skipped span (to is open, the maximum uint64,
// while it lasts); ok is false when there is none. Safe from any goroutine.
func (m *Mixer) LastCut() (from, to uint64, ok bool) {
	list := *m.cuts.Load()
	if len(list) == 0 {
		return 0, 0, false
	}
	c := list[len(list)-1]
	return c.from, c.to, true
}

// OutputAt returns the position in the mix file of timeline position pos:
// pos less the cuts before it.
func (m *Mixer) OutputAt(pos uint64) time.Duration {
	out := pos
	for _, c := range *m.cuts.Load() {
		if c.from < pos {
			out -= min(c.to, pos) - c.from
		}
	}
	return m.Duration(out)
}

// Frames returns the number of whole frames' worth of samples written to the
// sink.
func (m *Mixer) Frames() int64 { return int64(m.out.Load()) / int64(m.frameSamples) }

// Position returns the duration of the audio written to the sink.
func (m *Mixer) Position() time.Duration { return m.Duration(m.out.Load()) }

// Written returns the timeline position up to which the mix is written.
func (m *Mixer) Written() uint64 { return m.written.Load() }

// Expired returns the number of frames written because the latency budget
// passed while an input had not decided them yet.
func (m *Mixer) Expired() uint64 { return m.expired.Load() }

// FrameSamples returns the number of samples per channel in one frame.
func (m *Mixer) FrameSamples() int { return m.frameSamples }

// Step writes every frame that is due: a frame is written once every input
// has decided it, or once the latency budget has passed since its end, and
// never before its end is the join wait (at least a frame) in the past, so
// that an input added now can still begin there. Then it flushes a
// BufferedSink whose oldest audio held would be the budget old before the
// next step. It returns the sink's error. Mixer goroutine only; it does not
// allocate or lock.
func (m *Mixer) Step() error {
	now := m.Now()
	for {
		ok, err := m.frame(now, false)
		if err != nil {
			return err
		}
		if !ok {
			return m.flushHeld(now)
		}
	}
}

// flushHeld flushes the sink, if it is a BufferedSink holding audio whose
// oldest sample's timeline position will be the budget behind now by the
// next step (a frame on). In step with the inputs the mixer writes the join
// wait behind now and a 1 s buffer holds audio 1.5 s old at most: this
// flushes only while the mixer waits for an input, or when the budget is
// short.
func (m *Mixer) flushHeld(now uint64) error {
	if m.buffered == nil {
		return nil
	}
	held := uint64(m.buffered.Buffered())
	if held == 0 {
		return nil
	}
	if m.posOfOutput(m.out.Load()-min(held, m.out.Load()))+m.budget > now+uint64(m.frameSamples) {
		return nil
	}
	return m.buffered.Flush()
}

// posOfOutput returns the timeline position of the mix's sample o (samples
// per channel written to the sink before it): o plus the cuts before it.
func (m *Mixer) posOfOutput(o uint64) uint64 {
	p := o
	for _, c := range *m.cuts.Load() { // sorted
		if c.from > p || c.to == open {
			break
		}
		p += c.to - c.from
	}
	return p
}

// frame writes the next frame if it is due (or, with final, if nothing more
// can come for it) and reports whether it did.
func (m *Mixer) frame(now uint64, final bool) (bool, error) {
	f := uint64(m.frameSamples)
	h := m.pos
	if !final && h+f+max(m.joinWait, f) > now {
		return false, nil
	}
	if e := m.end.Load(); !final && e != 0 && h+f > e {
		return false, nil // the recording stopped there: Finish writes the rest
	}
	expired := final || h+f+m.budget <= now
	if expired && !final && m.readerBehind(h, now) {
		return false, nil // an input's reader has audio for it still to read
	}
	if !expired {
		// An open cut (a skipped pause) waits to be settled before any of
		// it is written: audio from before the pause read late may still
		// move its start on (Uncut).
		if cuts := *m.cuts.Load(); len(cuts) > 0 && cuts[len(cuts)-1].to == open && h+f > cuts[len(cuts)-1].from {
			return false, nil
		}
	}
	clear(m.acc)
	m.writing.Store(h + f) // from here its inputs' mutes are read (Settle)
	list := *m.inputs.Load()
	for _, in := range list {
		if in.start > h {
			continue // joins later
		}
		r := in.ring
		if !in.joined { // the mixer passed the input's start before it was added
			in.joined = true
			if r.Head() < h {
				if _, _, ok := r.take(h-r.Head(), true); !ok {
					in.joined = false
					m.writing.Store(0)
					return false, nil
				}
				r.release(h - r.Head())
			}
		}
		// An input that has written nothing yet is waited for as any
		// other, up to the budget: its reader may be behind its socket when
		// the track begins (a starved recorder: 0.4-1 s at 400 streams),
		// and its first packets, placed where they were sent, would come
		// after the mixer claimed their place as silence, be dropped as
		// late, and leave the input with nothing written: claimed again,
		// for as long as the reader stayed that far behind (case 5, session
		// 16: whole mixes silent). Before, it was silence once it had
		// joinWait since it was added.
		// A gated input (a participant paused or blacked out) is not waited
		// for within its gated span (Gate).
		claim := expired || in.leaving.Load() || in.gatedUpTo(h+f)
		a, b, ok := r.take(f, claim)
		if !ok {
			m.writing.Store(0)
			return false, nil // wait: the input has not decided the frame yet
		}
		if mutes := *in.mutes.Load(); len(mutes) > 0 && overlaps(mutes, h, h+f) {
			a, b = m.muted(mutes, h, a, b)
		}
		m.accumulate(m.acc, a, in.channel)
		m.accumulate(m.acc[len(a)*m.cfg.Channels:], b, in.channel)
	}
	if sil := *m.silent.Load(); len(sil) > 0 && overlaps(sil, h, h+f) {
		m.silence(sil, h)
	}
	if expired && !final {
		m.expired.Add(1)
	}
	for _, in := range list {
		if in.start > h {
			continue
		}
		in.ring.release(f)
		if in.leaving.Load() && in.ring.End() <= h+f {
			m.drop(in) // once per track: allocates the new list, never locks
		}
	}
	m.pos = h + f
	for i, s := range m.acc {
		m.pcm[i] = int16(min(max(s, -32768), 32767))
	}
	err := m.emit(h, m.pcm)
	m.written.Store(h + f)
	m.writing.Store(0)
	return true, err
}

// Settle waits until the frame the mixer is mixing now, if any, is written,
// and returns the end of what it had begun to write: Written, or that
// frame's end. A mute added just before (MuteSpan, MuteFrom: they begin at
// Written) may have come after the frame read its inputs' mutes, so that
// frame holds the muted input's audio: a retroactive blackout re-mixes up
// to where Settle says, not where the mute began. Safe from any goroutine;
// it spins (yielding) for at most the one frame's mixing.
func (m *Mixer) Settle() uint64 {
	w := m.writing.Load()
	for w != 0 && m.written.Load() < w && m.writing.Load() == w {
		runtime.Gosched()
	}
	if w != 0 && m.written.Load() >= w {
		return w
	}
	return m.written.Load() // no frame was being mixed, or it waits for an input
}

// readerBehind reports whether the frame at h, its budget passed at now,
// waits on for an input that has not decided it: its reader has a packet
// to read that reached the machine within the budget for the frame, and
// the mixer has waited less than readerWait past the budget.
func (m *Mixer) readerBehind(h, now uint64) bool {
	e := h + uint64(m.frameSamples)
	if e+m.budget+uint64(samples(readerWait, m.cfg.SampleRate)) <= now {
		return false
	}
	for _, in := range *m.inputs.Load() {
		if in.unread == nil || in.start > h || in.leaving.Load() || in.gatedUpTo(e) || in.ring.Tail() >= e {
			continue
		}
		if at, ok := in.unread(); ok && m.PosAt(at) <= e+m.budget {
			return true
		}
	}
	return false
}

// emit writes the frame at timeline position h to the sink, leaving out the
// parts within a cut.
func (m *Mixer) emit(h uint64, pcm []int16) error {
	ch := uint64(m.cfg.Channels)
	from, to := h, h+uint64(m.frameSamples)
	if m.until != 0 {
		to = min(to, m.until) // the mix ends there (Finish)
	}
	for _, c := range *m.cuts.Load() {
		if c.to <= from || c.from >= to {
			continue
		}
		if c.from > from { // audio before the cut
			if err := m.write(pcm[:(c.from-h)*ch]); err != nil {
				return err
			}
		}
		from = min(max(from, c.to), to)
	}
	if from < to {
		return m.write(pcm[(from-h)*ch : (to-h)*ch])
	}
	return nil
}

func (m *Mixer) write(pcm []int16) error {
	m.out.Add(uint64(len(pcm) / m.cfg.Channels))
	return m.sink.WriteFrame(pcm)
}

// overlaps reports whether a span of list overlaps [from, to).
func overlaps(list []span, from, to uint64) bool {
	for _, s := range list {
		if s.from < to && s.to > from {
			return true
		}
	}
	return false
}

// muted copies the frame at h (slices a, b) into the scratch buffer with the
// muted positions silenced.
func (m *Mixer) muted(list []span, h uint64, a, b []int16) ([]int16, []int16) {
	n := copy(m.scratch, a)
	n += copy(m.scratch[n:], b)
	p := m.scratch[:n]
	for _, s := range list {
		lo, hi := max(s.from, h), min(s.to, h+uint64(n))
		if lo < hi {
			clear(p[lo-h : hi-h])
		}
	}
	return p, nil
}

// silence clears the positions of the frame at h (in m.acc) within the
// silenced spans of list.
func (m *Mixer) silence(list []span, h uint64) {
	ch := uint64(m.cfg.Channels)
	for _, s := range list {
		lo, hi := max(s.from, h), min(s.to, h+uint64(m.frameSamples))
		if lo < hi {
			clear(m.acc[(lo-h)*ch : (hi-h)*ch])
		}
	}
}

// accumulate adds the mono samples p to acc (interleaved in the mix's
// channel layout) for an input assigned to ch.
func (m *Mixer) accumulate(acc []int32, p []int16, ch Channel) {
	if m.cfg.Channels == 1 {
		acc = acc[:len(p)]
		// Eight at a time: fixed-size subslices let the compiler drop the
		// bounds checks.
		i := 0
		for ; i+8 <= len(p); i += 8 {
			a, s := acc[i:i+8:i+8], p[i:i+8:i+8]
			a[0] += int32(s[0])
			a[1] += int32(s[1])
			a[2] += int32(s[2])
			a[3] += int32(s[3])
			a[4] += int32(s[4])
			a[5] += int32(s[5])
			a[6] += int32(s[6])
			a[7] += int32(s[7])
		}
		for ; i < len(p); i++ {
			acc[i] += int32(p[i])
		}
		return
	}
	switch ch {
	case ChannelLeft:
		for i, s := range p {
			acc[2*i] += int32(s)
		}
	case ChannelRight:
		for i, s := range p {
			acc[2*i+1] += int32(s)
		}
	default:
		for i, s := range p {
			acc[2*i] += int32(s)
			acc[2*i+1] += int32(s)
		}
	}
}

// SetEnd sets the instant the mix ends at when Run finishes it (the stop
// request), instead of the instant Run sees its context done; from then on
// Step writes no frame past it, however long the stop waits for late audio
// before it finishes the mix, and the mix ends there to the sample, whatever
// an input wrote beyond it (audio placed after the stop is not the
// recording's). Safe from any goroutine.
func (m *Mixer) SetEnd(t time.Time) { m.end.Store(max(m.PosAt(t), 1)) }

// Run steps the mixer once per frame duration until ctx is done; it returns
// early with the sink's error if a write fails. When ctx is done it
// finishes the mix (see Finish) at SetEnd's instant, or, without one, now
// or where the inputs' audio ends, if later, and returns nil or the sink's
// error.
func (m *Mixer) Run(ctx context.Context) error {
	ticker := time.NewTicker(m.cfg.Frame)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			end := m.end.Load()
			if end == 0 {
				end = max(m.Now(), m.InputsEnd())
			}
			if err := m.Finish(end); err != nil {
				return fmt.Errorf("media: mixer: %w", err)
			}
			return nil
		case <-ticker.C:
			if err := m.Step(); err != nil {
				return fmt.Errorf("media: mixer: %w", err)
			}
		}
	}
}

// Finish writes the rest of the mix without waiting for anything more, and
// ends it at timeline position end, to the sample. Call it once the inputs'
// producers are done (the recording stopped). Mixer goroutine only.
func (m *Mixer) Finish(end uint64) error {
	m.until = max(end, 1)
	for m.pos < end {
		if _, err := m.frame(0, true); err != nil {
			return err
		}
	}
	return nil
}
