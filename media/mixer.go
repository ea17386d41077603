package media

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// PauseBehavior says what a paused mix writes.
type PauseBehavior int

const (
	// PauseSilence writes silent frames while paused: the mix keeps its
	// wall-clock timeline.
	PauseSilence PauseBehavior = iota
	// PauseSkip writes nothing while paused: the paused interval is cut out
	// of the mix.
	PauseSkip
)

// String returns "silence" or "skip".
func (b PauseBehavior) String() string {
	switch b {
	case PauseSilence:
		return "silence"
	case PauseSkip:
		return "skip"
	}
	return fmt.Sprintf("PauseBehavior(%d)", int(b))
}

// ParsePauseBehavior parses "silence" or "skip" (case-insensitive); an empty
// string is PauseSilence.
func ParsePauseBehavior(s string) (PauseBehavior, error) {
	switch strings.ToLower(s) {
	case "", "silence":
		return PauseSilence, nil
	case "skip":
		return PauseSkip, nil
	}
	return PauseSilence, fmt.Errorf("media: unknown pause behavior %q (want silence or skip)", s)
}

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
	SampleRate    int           // mix rate in Hz; default 8000
	Channels      int           // 1 (default) or 2
	Frame         time.Duration // one mixing step; default 20 ms
	Cushion       time.Duration // buffered before a new input plays; default 60 ms
	MaxCatchUp    int           // most steps run in one tick when ticks are late; default 10
	PauseBehavior PauseBehavior // default PauseSilence
}

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
	if c.Cushion <= 0 {
		c.Cushion = 60 * time.Millisecond
	}
	if c.MaxCatchUp <= 0 {
		c.MaxCatchUp = 10
	}
	return c
}

// samples converts a duration to samples at rate, at least 1.
func samples(d time.Duration, rate int) int {
	return max(1, int(d*time.Duration(rate)/time.Second))
}

// FrameSink receives the mixed frames. WriteFrame gets one frame of
// interleaved samples; pcm is reused after it returns, so a sink that keeps
// the samples must copy them. It is called from the mixer's goroutine only.
// The WAV writer in media/wavwriter implements it.
type FrameSink interface {
	WriteFrame(pcm []int16) error
}

// InputOptions configures one mixer input.
type InputOptions struct {
	// Channel places the input in a stereo mix; default ChannelCenter.
	Channel Channel
	// RingCapacity is the input ring's size in samples; default 2 s of audio
	// at the mix rate (rounded up to a power of two).
	RingCapacity int
}

// MixInput is one input of a Mixer: an audio track's ring and its settings.
// The track's pipeline (the ring's producer) writes to Ring; the mixer is the
// ring's consumer.
type MixInput struct {
	id      string
	ring    *Ring
	channel Channel
	rate    int // the mix rate
	cushion int // samples buffered before the input starts playing

	muted   atomic.Bool
	leaving atomic.Bool   // removed: play out what is buffered, then drop
	trimmed atomic.Uint64 // samples discarded to bound the latency

	// started is set by the mixer (consumer only) once the cushion was
	// buffered; from then on the input is played every step.
	started bool
}

// ID returns the id given to AddInput.
func (in *MixInput) ID() string { return in.id }

// Ring returns the input's ring; its producer is the track's pipeline.
func (in *MixInput) Ring() *Ring { return in.ring }

// Cushion returns the number of samples buffered before the input plays.
func (in *MixInput) Cushion() int { return in.cushion }

// SetMuted mutes or unmutes the input (a blackout): while muted its samples
// are consumed and discarded, so nothing of the muted interval is heard
// later. Safe from any goroutine.
func (in *MixInput) SetMuted(muted bool) { in.muted.Store(muted) }

// Trimmed returns the number of samples the mixer discarded because more
// than half the ring was buffered (a sender clock faster than ours): the
// input's latency stays bounded at the cost of a 20 ms cut now and then.
func (in *MixInput) Trimmed() uint64 { return in.trimmed.Load() }

// Muted reports whether the input is muted.
func (in *MixInput) Muted() bool { return in.muted.Load() }

// Mixer mixes its inputs into one stream of frames for a FrameSink, one
// frame per step: every started input is played at the mixer's pace (silence
// where its ring is short), summed in int32 and clamped to int16.
//
// Step and Run belong to one goroutine (the recording's mixer goroutine);
// AddInput, RemoveInput, SetPaused and the MixInput setters may be called
// from any goroutine and never block a step: the input list is an immutable
// slice behind an atomic.Pointer, replaced copy-on-write.
type Mixer struct {
	cfg          MixConfig
	sink         FrameSink
	frameSamples int // per channel

	inputs atomic.Pointer[[]*MixInput] // immutable list, replaced by compare-and-swap
	paused atomic.Bool
	frames atomic.Int64 // frames written to the sink
	steps  atomic.Int64 // steps run, paused or not

	// Step's buffers (mixer goroutine only).
	acc []int32
	out []int16
}

// NewMixer returns a mixer writing to sink.
func NewMixer(cfg MixConfig, sink FrameSink) *Mixer {
	cfg = cfg.withDefaults()
	n := samples(cfg.Frame, cfg.SampleRate)
	m := &Mixer{
		cfg:          cfg,
		sink:         sink,
		frameSamples: n,
		acc:          make([]int32, n*cfg.Channels),
		out:          make([]int16, n*cfg.Channels),
	}
	m.inputs.Store(new([]*MixInput))
	return m
}

// Config returns the mixer's configuration with defaults filled in.
func (m *Mixer) Config() MixConfig { return m.cfg }

// AddInput adds an input and returns it. It starts playing once a cushion is
// buffered in its ring; until then it contributes nothing.
func (m *Mixer) AddInput(id string, opts InputOptions) *MixInput {
	capacity := opts.RingCapacity
	if capacity <= 0 {
		capacity = 2 * m.cfg.SampleRate
	}
	in := &MixInput{
		id:      id,
		ring:    NewRing(capacity),
		channel: opts.Channel,
		rate:    m.cfg.SampleRate,
		cushion: min(samples(m.cfg.Cushion, m.cfg.SampleRate), capacity/2),
	}
	m.update(func(old []*MixInput) []*MixInput { return append(old[:len(old):len(old)], in) })
	return in
}

// RemoveInput removes an input: the mixer plays what is still buffered in
// its ring (the last cushion of a track that ended) and then drops it. Calling
// it again, or for an input of another mixer, does nothing.
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

// SetPaused pauses or resumes the whole mix. While paused, inputs are still
// consumed and discarded (nothing paused is heard after resume) and the mix
// gets silent frames (PauseSilence) or nothing (PauseSkip). Safe from any
// goroutine.
func (m *Mixer) SetPaused(paused bool) { m.paused.Store(paused) }

// Paused reports whether the mix is paused.
func (m *Mixer) Paused() bool { return m.paused.Load() }

// Frames returns the number of frames written to the sink.
func (m *Mixer) Frames() int64 { return m.frames.Load() }

// Position returns the mix's timeline position: the duration of the frames
// written to the sink.
func (m *Mixer) Position() time.Duration {
	return time.Duration(m.frames.Load()) * m.cfg.Frame
}

// FrameSamples returns the number of samples per channel in one frame.
func (m *Mixer) FrameSamples() int { return m.frameSamples }

// Step runs one mixing step: it plays one frame of every input and writes the
// mixed frame to the sink (unless paused with PauseSkip). It returns the
// sink's error. Mixer goroutine only; it does not allocate or lock.
func (m *Mixer) Step() error {
	m.steps.Add(1)
	paused := m.paused.Load()
	clear(m.acc)
	list := *m.inputs.Load()
	for _, in := range list {
		r := in.ring
		if !in.started {
			if r.Len() < in.cushion && !in.leaving.Load() {
				continue
			}
			in.started = true
		}
		if in.leaving.Load() && r.Len() == 0 {
			m.drop(in) // once per track: allocates the new list, never locks
			continue
		}
		if excess := r.Len() - r.Cap()/2; excess > 0 {
			// Playing at our clock, a faster sender fills the ring: cut
			// the oldest frame instead of overflowing later.
			in.trimmed.Add(uint64(r.Skip(min(excess, m.frameSamples))))
		}
		if paused || in.muted.Load() {
			r.Skip(m.frameSamples)
			continue
		}
		// Sum straight from the ring's slots: no copy.
		a, b := r.acquire(uint64(m.frameSamples))
		m.accumulate(m.acc, a, in.channel)
		m.accumulate(m.acc[len(a)*m.cfg.Channels:], b, in.channel)
		r.release(uint64(m.frameSamples))
	}
	if paused && m.cfg.PauseBehavior == PauseSkip {
		return nil
	}
	if paused {
		clear(m.out)
	} else {
		for i, s := range m.acc {
			m.out[i] = int16(min(max(s, -32768), 32767))
		}
	}
	m.frames.Add(1)
	return m.sink.WriteFrame(m.out)
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

// Run steps the mixer once per frame duration until ctx is done, then returns
// nil; it returns early with the sink's error if a write fails. When ticks
// come late it catches up with at most MaxCatchUp steps per tick, so the
// number of steps follows wall-clock time.
func (m *Mixer) Run(ctx context.Context) error {
	start := time.Now()
	ticker := time.NewTicker(m.cfg.Frame)
	defer ticker.Stop()
	var done int64
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-ticker.C:
			due := int64(now.Sub(start) / m.cfg.Frame)
			for i := 0; done < due && i < m.cfg.MaxCatchUp; i++ {
				if err := m.Step(); err != nil {
					return fmt.Errorf("media: mixer: %w", err)
				}
				done++
			}
		}
	}
}
