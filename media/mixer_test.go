package media

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rtcrec/recorder/media/mediatest"
)

// feeder writes a continuous tone into a mixer input one frame at a time,
// like a track's pipeline in real time.
type feeder struct {
	in    *MixInput
	freq  float64
	amp   int16
	rate  int
	pos   int
	frame []int16
}

func newFeeder(m *Mixer, id string, freq float64, amp int16, opts InputOptions) *feeder {
	return &feeder{in: m.AddInput(id, opts), freq: freq, amp: amp, rate: m.Config().SampleRate, frame: make([]int16, m.FrameSamples())}
}

func (f *feeder) feed() {
	mediatest.SineInto(f.frame, f.freq, f.rate, f.pos, f.amp)
	f.in.Ring().WriteAt(uint64(f.pos), f.frame) // the track's own timeline
	f.pos += len(f.frame)
}

// run feeds every feeder one frame and steps the mixer, n times.
func run(t testing.TB, m *Mixer, n int, feeders ...*feeder) {
	t.Helper()
	for range n {
		for _, f := range feeders {
			f.feed()
		}
		if err := m.Step(); err != nil {
			t.Fatal(err)
		}
	}
}

// frames returns frames [from, to) of a capture (mono or interleaved).
func frames(c *captureSink, m *Mixer, from, to int) []int16 {
	n := m.FrameSamples() * m.Config().Channels
	return c.pcm[from*n : to*n]
}

func requireTone(t *testing.T, pcm []int16, rate int, freq float64, present bool) {
	t.Helper()
	lvl := mediatest.ToneLevel(pcm, rate, freq)
	if present && lvl < -20 {
		t.Errorf("%v Hz at %.1f dBFS, want it present", freq, lvl)
	}
	if !present && lvl > -40 { // an input leaking would be near -20 dBFS

		t.Errorf("%v Hz at %.1f dBFS, want it absent", freq, lvl)
	}
}

func TestMixer_SumsDistinctTones(t *testing.T) {
	sink := &captureSink{}
	m := NewMixer(MixConfig{}, sink)
	freqs := []float64{300, 700, 1100, 1900}
	var fs []*feeder
	for i, f := range freqs {
		fs = append(fs, newFeeder(m, fmt.Sprint(i), f, 6000, InputOptions{}))
	}
	run(t, m, 50, fs...)
	if got := len(sink.pcm); got != 50*160 {
		t.Fatalf("%d samples, want %d", got, 50*160)
	}
	steady := frames(sink, m, 10, 50)
	for _, f := range freqs {
		if a := mediatest.Goertzel(steady, 8000, f); a < 5700 || a > 6300 {
			t.Errorf("%v Hz amplitude %.0f, want 6000", f, a)
		}
	}
	requireTone(t, steady, 8000, 500, false)
	// The first frames wait for the 60 ms cushion: silence.
	for i, s := range frames(sink, m, 0, 2) {
		if s != 0 {
			t.Fatalf("sample %d = %d before the cushion was buffered", i, s)
		}
	}
}

func TestMixer_ClampsOverflow(t *testing.T) {
	tests := []struct {
		name string
		a, b int16
		want int16
	}{
		{"positive", 30000, 10000, 32767},
		{"negative", -30000, -10000, -32768},
		{"in range", 20000, -5000, 15000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &captureSink{}
			m := NewMixer(MixConfig{Cushion: time.Millisecond}, sink)
			a, b := m.AddInput("a", InputOptions{}), m.AddInput("b", InputOptions{})
			fill := func(v int16) []int16 {
				p := make([]int16, 160)
				for i := range p {
					p[i] = v
				}
				return p
			}
			a.Ring().Write(fill(tt.a))
			b.Ring().Write(fill(tt.b))
			if err := m.Step(); err != nil {
				t.Fatal(err)
			}
			for i, s := range sink.pcm {
				if s != tt.want {
					t.Fatalf("sample %d = %d, want %d", i, s, tt.want)
				}
			}
		})
	}
}

// TestMixer_Pause pauses the mix while the inputs play a different tone: in
// both behaviours nothing of the paused tone leaks, before or after resume.
func TestMixer_Pause(t *testing.T) {
	tests := []struct {
		behavior   PauseBehavior
		wantFrames int
	}{
		{PauseSilence, 150},
		{PauseSkip, 100},
	}
	for _, tt := range tests {
		t.Run(tt.behavior.String(), func(t *testing.T) {
			sink := &captureSink{}
			m := NewMixer(MixConfig{PauseBehavior: tt.behavior}, sink)
			f := newFeeder(m, "a", 400, 8000, InputOptions{})
			run(t, m, 50, f)
			f.freq = 1300 // what is said while paused
			m.SetPaused(true)
			run(t, m, 50, f)
			m.SetPaused(false)
			f.freq = 2100
			run(t, m, 50, f)
			if got := int(m.Frames()); got != tt.wantFrames || len(sink.pcm) != got*160 {
				t.Fatalf("frames %d (%d samples), want %d", got, len(sink.pcm), tt.wantFrames)
			}
			if m.Position() != time.Duration(tt.wantFrames)*20*time.Millisecond {
				t.Errorf("position %v", m.Position())
			}
			requireTone(t, sink.pcm, 8000, 1300, false)
			requireTone(t, frames(sink, m, 5, 50), 8000, 400, true)
			after := frames(sink, m, tt.wantFrames-45, tt.wantFrames)
			requireTone(t, after, 8000, 2100, true)
			requireTone(t, after, 8000, 1300, false)
			if tt.behavior == PauseSilence {
				for i, s := range frames(sink, m, 51, 100) {
					if s != 0 {
						t.Fatalf("paused sample %d = %d, want silence", i, s)
					}
				}
			}
		})
	}
}

// TestMixer_MuteBlackout mutes one of two inputs: its audio of the muted
// interval is discarded, the other input is unaffected.
func TestMixer_MuteBlackout(t *testing.T) {
	sink := &captureSink{}
	m := NewMixer(MixConfig{}, sink)
	a := newFeeder(m, "a", 500, 8000, InputOptions{})
	b := newFeeder(m, "b", 900, 8000, InputOptions{})
	run(t, m, 40, a, b)
	a.in.SetMuted(true)
	a.freq = 1500
	run(t, m, 40, a, b)
	a.in.SetMuted(false)
	a.freq = 2500
	run(t, m, 40, a, b)
	requireTone(t, sink.pcm, 8000, 1500, false)
	requireTone(t, frames(sink, m, 45, 80), 8000, 900, true)
	requireTone(t, frames(sink, m, 45, 80), 8000, 500, false)
	requireTone(t, frames(sink, m, 85, 120), 8000, 2500, true)
	if a.in.Muted() {
		t.Error("Muted() after unmute")
	}
}

// TestMixer_LateJoinAndEarlyLeave adds an input after 1 s and removes another
// after 2 s of 3: each tone is present exactly while its input is there.
func TestMixer_LateJoinAndEarlyLeave(t *testing.T) {
	sink := &captureSink{}
	m := NewMixer(MixConfig{}, sink)
	stay := newFeeder(m, "stay", 440, 6000, InputOptions{})
	leave := newFeeder(m, "leave", 1000, 6000, InputOptions{})
	run(t, m, 50, stay, leave)
	late := newFeeder(m, "late", 1700, 6000, InputOptions{})
	run(t, m, 50, stay, leave, late)
	m.RemoveInput(leave.in)
	m.RemoveInput(leave.in) // idempotent
	run(t, m, 50, stay, late)
	if m.Inputs() != 2 {
		t.Errorf("%d inputs after removal, want 2", m.Inputs())
	}
	// "late" starts after its 60 ms cushion: 3 frames after it joined.
	// It joins before step 50 and has its 60 ms cushion after three feeds:
	// it plays from step 52 on.
	requireTone(t, frames(sink, m, 0, 52), 8000, 1700, false)
	requireTone(t, frames(sink, m, 50, 52), 8000, 1700, false)
	requireTone(t, frames(sink, m, 52, 100), 8000, 1700, true)
	// "leave" plays out its buffered cushion (3 frames) and then is gone.
	requireTone(t, frames(sink, m, 50, 100), 8000, 1000, true)
	requireTone(t, frames(sink, m, 104, 150), 8000, 1000, false)
	requireTone(t, frames(sink, m, 104, 150), 8000, 440, true)
}

func TestMixer_Stereo(t *testing.T) {
	sink := &captureSink{}
	m := NewMixer(MixConfig{Channels: 2, SampleRate: 16000}, sink)
	l := newFeeder(m, "l", 600, 8000, InputOptions{Channel: ChannelLeft})
	r := newFeeder(m, "r", 1200, 8000, InputOptions{Channel: ChannelRight})
	c := newFeeder(m, "c", 2000, 8000, InputOptions{Channel: ChannelCenter})
	run(t, m, 50, l, r, c)
	if len(sink.pcm) != 50*320*2 {
		t.Fatalf("%d samples", len(sink.pcm))
	}
	steady := frames(sink, m, 5, 50)
	left, right := mediatest.Channel(steady, 2, 0), mediatest.Channel(steady, 2, 1)
	requireTone(t, left, 16000, 600, true)
	requireTone(t, left, 16000, 1200, false)
	requireTone(t, right, 16000, 1200, true)
	requireTone(t, right, 16000, 600, false)
	requireTone(t, left, 16000, 2000, true)
	requireTone(t, right, 16000, 2000, true)
}

// TestMixer_ShortInputPlaysSilence: an input that runs dry contributes
// silence and does not hold the mix back; data that comes later for positions
// already played is dropped.
func TestMixer_ShortInputPlaysSilence(t *testing.T) {
	sink := &captureSink{}
	m := NewMixer(MixConfig{}, sink)
	f := newFeeder(m, "a", 440, 8000, InputOptions{})
	run(t, m, 10, f)
	run(t, m, 20)   // the input sends nothing for 400 ms,
	run(t, m, 1, f) // then its next frame: that position was played as silence
	if m.Frames() != 31 {
		t.Fatalf("frames %d", m.Frames())
	}
	requireTone(t, frames(sink, m, 14, 31), 8000, 440, false)
	if f.in.Ring().Dropped() != 160 {
		t.Errorf("dropped %d, want 160", f.in.Ring().Dropped())
	}
}

type failingSink struct{ err error }

func (f failingSink) WriteFrame([]int16) error { return f.err }

// TestMixer_Run ticks in real time: about 10 frames in 200 ms, then stops
// when the context ends; a sink error ends it early.
func TestMixer_Run(t *testing.T) {
	m := NewMixer(MixConfig{}, &discardSink{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("Run returned after %v", el)
	}
	if f := m.Frames(); f < 4 || f > 11 { // loose: the machine may be busy; synctest checks exactly
		t.Errorf("%d frames in 200 ms, want about 10", f)
	}
	boom := errors.New("disk full")
	m = NewMixer(MixConfig{}, failingSink{boom})
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Run(ctx); !errors.Is(err, boom) {
		t.Errorf("Run = %v, want the sink's error", err)
	}
}

func TestParsePauseBehavior(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want PauseBehavior
		ok   bool
	}{{"", PauseSilence, true}, {"silence", PauseSilence, true}, {"SKIP", PauseSkip, true}, {"drop", PauseSilence, false}} {
		got, err := ParsePauseBehavior(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParsePauseBehavior(%q) = %v, %v", tt.in, got, err)
		}
		if tt.ok && tt.in != "" {
			if back, _ := ParsePauseBehavior(got.String()); back != got {
				t.Errorf("String round trip of %v", got)
			}
		}
	}
}

// TestMixer_StepZeroAllocs proves a mixing step allocates nothing, in mono
// and stereo, with muted and paused inputs.
func TestMixer_StepZeroAllocs(t *testing.T) {
	for _, ch := range []int{1, 2} {
		m := NewMixer(MixConfig{Channels: ch}, &discardSink{})
		var fs []*feeder
		for i := range 10 {
			fs = append(fs, newFeeder(m, fmt.Sprint(i), float64(200+100*i), 3000, InputOptions{Channel: Channel(i % 3)}))
		}
		fs[3].in.SetMuted(true)
		run(t, m, 10, fs...)
		i := 0
		allocs := testing.AllocsPerRun(500, func() {
			for _, f := range fs {
				f.feed()
			}
			m.SetPaused(i%50 > 40)
			i++
			if err := m.Step(); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%d channels: Step allocates %.2f times, want 0", ch, allocs)
		}
	}
}

// BenchmarkMixer_Step measures one 20 ms mixing step at 8 kHz (each input
// also gets its frame written to its ring, as its pipeline would) and reports
// how many times faster than real time that is.
func BenchmarkMixer_Step(b *testing.B) {
	for _, n := range []int{2, 10, 50} {
		b.Run(fmt.Sprintf("inputs=%d", n), func(b *testing.B) {
			m := NewMixer(MixConfig{}, &discardSink{})
			var fs []*feeder
			for i := range n {
				fs = append(fs, newFeeder(m, fmt.Sprint(i), float64(200+37*i), 600, InputOptions{}))
			}
			run(b, m, 5, fs...)
			b.ReportAllocs()
			rt := startRealtime(b, m.Config().Frame)
			for b.Loop() {
				for _, f := range fs {
					f.in.Ring().Write(f.frame)
				}
				if err := m.Step(); err != nil {
					b.Fatal(err)
				}
			}
			rt.stop()
		})
	}
}

// stallSink sleeps once, at frame stallAt, as a slow disk would.
type stallSink struct {
	frames  int
	stallAt int
	stall   time.Duration
}

func (s *stallSink) WriteFrame([]int16) error {
	s.frames++
	if s.frames == s.stallAt {
		time.Sleep(s.stall)
	}
	return nil
}

// TestMixer_RunCatchesUp stalls the sink for 300 ms in fake time
// (testing/synctest): Run catches up at most MaxCatchUp steps per tick, so
// the frame count follows the clock again, and with MaxCatchUp 1 it cannot.
func TestMixer_RunCatchesUp(t *testing.T) {
	tests := []struct {
		maxCatchUp int
		want       int64
	}{
		{4, 100}, // 2 s of 20 ms frames
		{1, 86},  // the 300 ms stall (less the one tick the ticker buffered) is never made up
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.maxCatchUp), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sink := &stallSink{stallAt: 10, stall: 300 * time.Millisecond}
				m := NewMixer(MixConfig{MaxCatchUp: tt.maxCatchUp}, sink)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second+time.Millisecond)
				defer cancel()
				if err := m.Run(ctx); err != nil {
					t.Fatal(err)
				}
				if got := m.Frames(); got < tt.want-1 || got > tt.want {
					t.Errorf("%d frames after 2 s, want %d", got, tt.want)
				}
			})
		})
	}
}
