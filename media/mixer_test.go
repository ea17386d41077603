package media

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/media/pause"
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
	in := m.AddInput(id, opts)
	// The input joins the join wait before now (AddInput); its audio
	// begins now, at a frame's start, as a live track's does.
	f := uint64(m.FrameSamples())
	pos := max(in.Start(), m.Now()/f*f)
	return &feeder{in: in, freq: freq, amp: amp, rate: m.Config().SampleRate, pos: int(pos), frame: make([]int16, m.FrameSamples())}
}

func (f *feeder) feed() {
	mediatest.SineInto(f.frame, f.freq, f.rate, f.pos, f.amp)
	f.in.Ring().WriteAt(uint64(f.pos), f.frame) // the track's own timeline
	f.pos += len(f.frame)
}

// run feeds every feeder one frame, moves the mixer's virtual clock on by a
// frame and steps it, n times. The mixer writes a frame once its end is the
// join wait in the past, so it lags that much behind the feeders.
func run(t testing.TB, m *Mixer, n int, feeders ...*feeder) {
	t.Helper()
	c := clockOf(m)
	for range n {
		for _, f := range feeders {
			f.feed()
		}
		c.t = c.t.Add(m.Config().Frame)
		if err := m.Step(); err != nil {
			t.Fatal(err)
		}
	}
}

// finish writes the rest of the mix up to the virtual clock's now, or where
// the inputs' audio ends, if later (as Run does without SetEnd).
func finish(t testing.TB, m *Mixer) {
	t.Helper()
	if err := m.Finish(max(m.Now(), m.InputsEnd())); err != nil {
		t.Fatal(err)
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
	m, _ := newVirtualMixer(MixConfig{}, sink)
	freqs := []float64{300, 700, 1100, 1900}
	var fs []*feeder
	for i, f := range freqs {
		fs = append(fs, newFeeder(m, fmt.Sprint(i), f, 6000, InputOptions{}))
	}
	run(t, m, 50, fs...)
	if got, want := len(sink.pcm), 50*160-int(m.joinWait); got != want {
		t.Fatalf("%d samples before the end, want %d (the join wait behind)", got, want)
	}
	finish(t, m)
	if got := len(sink.pcm); got != 50*160 {
		t.Fatalf("%d samples, want %d", got, 50*160)
	}
	steady := frames(sink, m, 0, 50)
	for _, f := range freqs {
		if a := mediatest.Goertzel(steady, 8000, f); a < 5700 || a > 6300 {
			t.Errorf("%v Hz amplitude %.0f, want 6000", f, a)
		}
	}
	requireTone(t, steady, 8000, 500, false)
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
			m, c := newVirtualMixer(MixConfig{}, sink)
			a, b := m.AddInput("a", InputOptions{}), m.AddInput("b", InputOptions{})
			c.t = c.t.Add(40 * time.Millisecond)
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

// TestMixer_CutSkipsAnInterval cuts a second out of the mix (a pause with
// skip): while the cut is open the input writes nothing (the recorder's gate
// drops what is said while paused), and the mixer writes nothing from the
// cut's start on until it is settled; the cut is sample-exact, nothing of it
// is written, and nothing on either side is lost.
func TestMixer_CutSkipsAnInterval(t *testing.T) {
	sink := &captureSink{}
	m, _ := newVirtualMixer(MixConfig{PauseBehavior: pause.Skip}, sink)
	f := newFeeder(m, "a", 400, 8000, InputOptions{})
	run(t, m, 50, f)
	if got := m.Cut(50 * 160); got != 50*160 {
		t.Fatalf("cut at %d", got)
	}
	run(t, m, 50) // paused: the input writes nothing
	if w := m.Written(); w > 50*160 {
		t.Fatalf("the mix is written to %d while the cut from %d is open", w, 50*160)
	}
	if from := m.Uncut(100*160 + 70); from != 50*160 { // 70 samples into a frame: the cut is sample-exact
		t.Fatalf("the cut settled at %d, want %d (where the audio before it ends)", from, 50*160)
	}
	f.freq, f.pos = 2100, 100*160+70
	run(t, m, 50, f)
	finish(t, m)
	// The mix ends where the input's audio ends, to the sample (150
	// frames and 70 samples, less the cut's 50 frames and 70 samples).
	if len(sink.pcm) != 100*160 {
		t.Fatalf("%d samples, want %d", len(sink.pcm), 100*160)
	}
	if m.OutputAt(120*160) != m.Duration(70*160-70) {
		t.Errorf("output of 2.4 s at %v", m.OutputAt(120*160))
	}
	// Sample-exact: the 400 Hz tone runs to the cut, the 2100 Hz one on
	// from the end of the cut.
	if i := firstDiff(sink.pcm[:50*160], mediatest.Sine(400, 8000, 50*160, 8000)); i >= 0 {
		t.Errorf("sample %d before the cut differs", i)
	}
	after := make([]int16, 50*160)
	mediatest.SineInto(after, 2100, 8000, 100*160+70, 8000)
	if i := firstDiff(sink.pcm[50*160:100*160], after); i >= 0 {
		t.Errorf("sample %d after the cut differs", 50*160+i)
	}
}

// TestMixer_CutStartMovesToTheAudioBeforeIt: a pause cuts from 1.0 s, and a
// packet whose audio begins before that (0.98–1.01 s) is read only after the
// pause began, as a reader that fell behind reads it: its 30 ms go into the
// mix whole. The mixer holds the open cut's start until the resume, and
// Uncut moves it on to where that audio ends; a cut settled back is where
// the audio before it ends too.
func TestMixer_CutStartMovesToTheAudioBeforeIt(t *testing.T) {
	sink := &captureSink{}
	m, _ := newVirtualMixer(MixConfig{PauseBehavior: pause.Skip}, sink)
	f := newFeeder(m, "a", 400, 8000, InputOptions{})
	run(t, m, 49, f) // to 0.98 s
	m.Cut(50 * 160)
	late := mediatest.Sine(400, 8000, 50*160+80, 8000)[49*160:] // 0.98–1.01 s
	f.in.Ring().WriteAt(49*160, late)
	run(t, m, 50) // paused
	if w := m.Written(); w > 50*160 {
		t.Fatalf("the mix is written to %d while the cut from %d is open", w, 50*160)
	}
	if from := m.Uncut(100 * 160); from != 50*160+80 {
		t.Fatalf("the cut settled at %d, want %d: where the late packet ends", from, 50*160+80)
	}
	f.freq, f.pos = 2100, 100*160
	run(t, m, 10, f)
	finish(t, m)
	want := mediatest.Sine(400, 8000, 50*160+80, 8000)
	if i := firstDiff(sink.pcm[:len(want)], want); i >= 0 {
		t.Errorf("sample %d before the cut differs: the late packet is not whole in the mix", i)
	}
}

// TestMixer_CutAtTheInstantLeavesOutWhatWasWrittenAhead: an input whose
// mapping places its audio 90 ms ahead of the wall clock (a sender report
// stamped late) has written up to 1.09 s when a pause begins at 1.0 s. With
// silence (Silence) the mix is silent from a frame after 1.0 s (the frame
// holds a packet straddling the instant) to the resume, to the sample; with
// skip (Cut, Uncut) the cut begins there too, not where the input's audio
// ends: the rest of what it wrote ahead is left out, and everything before
// the instant is in the mix. A blackout (MuteFrom) silences the input from
// where it is asked to, beside a retroactive mute (MuteSpan).
func TestMixer_CutAtTheInstantLeavesOutWhatWasWrittenAhead(t *testing.T) {
	const at, ahead, to = 50 * 160, 720, 100 * 160 // 1.0 s, 90 ms, 2.0 s
	for _, kind := range []string{"silence", "skip", "blackout"} {
		t.Run(kind, func(t *testing.T) {
			sink := &captureSink{}
			m, _ := newVirtualMixer(MixConfig{PauseBehavior: pause.Skip}, sink)
			f := newFeeder(m, "a", 400, 8000, InputOptions{})
			run(t, m, 50, f) // to 1.0 s, written to 1.0 s
			f.in.Ring().WriteAt(at, mediatest.Sine(400, 8000, at+ahead, 8000)[at:])
			kept := uint64(160) // the frame after the instant
			switch kind {
			case "silence":
				if got := m.Silence(at); got != at+kept {
					t.Fatalf("silence from %d, want %d", got, at+kept)
				}
			case "skip":
				m.Cut(at)
			case "blackout":
				kept = 0
				f.in.MuteSpan(at-800, at-400) // a retroactive blackout before it
				f.in.MuteFrom(at)
			}
			run(t, m, 50) // paused: the input writes nothing
			switch kind {
			case "silence":
				m.Unsilence(to)
			case "skip":
				if from := m.Uncut(to); from != at+kept {
					t.Fatalf("the cut settled at %d, want %d: a frame after the instant, not where the audio written ahead ends", from, at+kept)
				}
			case "blackout":
				f.in.UnmuteFrom(to)
			}
			f.freq, f.pos = 2100, to
			run(t, m, 20, f)
			finish(t, m)
			before := mediatest.Sine(400, 8000, int(at+kept), 8000)
			if kind == "blackout" {
				clear(before[at-800 : at-400])
			}
			if i := firstDiff(sink.pcm[:at+kept], before); i >= 0 {
				t.Errorf("sample %d before the cut differs", i)
			}
			rest := sink.pcm[at+kept:]
			if kind != "skip" {
				if i := slices.IndexFunc(rest[:to-at-kept], func(v int16) bool { return v != 0 }); i >= 0 {
					t.Errorf("sample %d of the pause is %d, want silence: the audio written ahead is in the mix", int(at+kept)+i, rest[i])
				}
				rest = rest[to-at-kept:]
			}
			after := make([]int16, 20*160)
			mediatest.SineInto(after, 2100, 8000, to, 8000)
			if i := firstDiff(rest[:len(after)], after); i >= 0 {
				t.Errorf("sample %d after the cut differs", i)
			}
		})
	}
}

// TestMixer_MuteFromThePast mutes one of two inputs from a position 2 s in
// the past (a blackout decided after the fact, within the budget) and unmutes
// it 1 s later: exactly that interval of the input is silent in the mix.
func TestMixer_MuteFromThePast(t *testing.T) {
	sink := &captureSink{}
	m, _ := newVirtualMixer(MixConfig{}, sink)
	a := newFeeder(m, "a", 500, 8000, InputOptions{})
	b := newFeeder(m, "b", 900, 8000, InputOptions{})
	// b sends one frame, then nothing for 3 s (its packets are held up):
	// the mix waits for it, up to the budget.
	run(t, m, 1, a, b)
	run(t, m, 150, a)
	if m.Written() != 160 {
		t.Fatalf("written %d while an input is undecided", m.Written())
	}
	if got := a.in.MuteFrom(m.Now() - 2*8000); got != 151*160-2*8000 {
		t.Fatalf("mute from %d", got)
	}
	a.in.UnmuteFrom(m.Now() - 8000)
	if a.in.Muted() {
		t.Error("Muted() after unmute")
	}
	run(t, m, 50, a, b)
	finish(t, m)
	muteFrom := 151*160 - 2*8000
	requireTone(t, sink.pcm[:muteFrom], 8000, 500, true)
	for i, s := range sink.pcm[muteFrom : muteFrom+8000] {
		if s != 0 && mediatest.ToneLevel(sink.pcm[muteFrom:muteFrom+8000], 8000, 500) > -60 {
			t.Fatalf("sample %d of the muted interval = %d: 500 Hz leaks", i, s)
		}
	}
	requireTone(t, sink.pcm[muteFrom+8000:], 8000, 500, true)
	requireTone(t, sink.pcm[160:51*160], 8000, 900, true) // b, 3 s late, is kept
}

// TestMixer_LateJoinAndEarlyLeave adds an input after 1 s and removes another
// after 2 s of 3: each tone is present exactly while its input is there.
func TestMixer_LateJoinAndEarlyLeave(t *testing.T) {
	sink := &captureSink{}
	m, _ := newVirtualMixer(MixConfig{}, sink)
	stay := newFeeder(m, "stay", 440, 6000, InputOptions{})
	leave := newFeeder(m, "leave", 1000, 6000, InputOptions{})
	run(t, m, 50, stay, leave)
	late := newFeeder(m, "late", 1700, 6000, InputOptions{})
	run(t, m, 50, stay, leave, late)
	m.RemoveInput(leave.in)
	m.RemoveInput(leave.in) // idempotent
	run(t, m, 50, stay, late)
	finish(t, m)
	if m.Inputs() != 2 {
		t.Errorf("%d inputs after removal, want 2", m.Inputs())
	}
	requireTone(t, frames(sink, m, 0, 50), 8000, 1700, false)
	requireTone(t, frames(sink, m, 50, 100), 8000, 1700, true)
	requireTone(t, frames(sink, m, 50, 100), 8000, 1000, true)
	requireTone(t, frames(sink, m, 100, 150), 8000, 1000, false)
	requireTone(t, frames(sink, m, 100, 150), 8000, 440, true)
}

func TestMixer_Stereo(t *testing.T) {
	sink := &captureSink{}
	m, _ := newVirtualMixer(MixConfig{Channels: 2, SampleRate: 16000}, sink)
	l := newFeeder(m, "l", 600, 8000, InputOptions{Channel: ChannelLeft})
	r := newFeeder(m, "r", 1200, 8000, InputOptions{Channel: ChannelRight})
	c := newFeeder(m, "c", 2000, 8000, InputOptions{Channel: ChannelCenter})
	run(t, m, 50, l, r, c)
	finish(t, m)
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

// TestMixer_WaitsWithinTheBudget: an input that stalls is waited for (a
// frame is written once every input decided it), its audio arriving 2 s late
// is kept; once the budget passes the frame is written without it, and what
// comes later still is dropped and counted.
func TestMixer_WaitsWithinTheBudget(t *testing.T) {
	sink := &captureSink{}
	m, _ := newVirtualMixer(MixConfig{Latency: 3 * time.Second}, sink)
	f := newFeeder(m, "a", 440, 8000, InputOptions{})
	run(t, m, 10, f)
	run(t, m, 100) // nothing for 2 s: the mix waits at frame 10
	if m.Written() != 10*160 {
		t.Fatalf("written %d, want %d", m.Written(), 10*160)
	}
	run(t, m, 100, f) // the 2 s arrive at once: all kept
	if m.Written() != 110*160 || f.in.Ring().Dropped() != 0 {
		t.Fatalf("written %d, dropped %d", m.Written(), f.in.Ring().Dropped())
	}
	run(t, m, 200) // 4 s of nothing: after 3 s the mix goes on without it
	if m.Written() != 260*160 || m.Expired() != 150 {
		t.Fatalf("written %d (want %d), expired %d", m.Written(), 260*160, m.Expired())
	}
	f.feed() // for a position already written: dropped
	if f.in.Ring().Dropped() != 160 {
		t.Errorf("dropped %d, want 160", f.in.Ring().Dropped())
	}
	clockOf(m).t = clockOf(m).t.Add(time.Second)
	finish(t, m)
	if len(sink.pcm) != 460*160 {
		t.Errorf("%d samples, want %d", len(sink.pcm), 460*160)
	}
	act := toneWindows(sink.pcm[:110*160], 8000, 440)
	if count(act) != len(act) {
		t.Errorf("tone in %d of %d windows", count(act), len(act))
	}
	for i, s := range sink.pcm[110*160:] {
		if s != 0 {
			t.Fatalf("sample %d = %d, want silence", 110*160+i, s)
		}
	}
}

// TestMixer_WaitsForAReaderBehindItsSocket: a track's reader behind its
// socket (a recorder short of CPU, a burst after a network stall) reads
// packets that reached the machine within the budget after the budget for
// their frames passed. The mixer waits for them while the input says its
// next unread packet came in time (InputOptions.Unread), up to readerWait
// past the budget, and they land; a reader further behind than that loses
// what it has not read, as a packet later than the budget does.
func TestMixer_WaitsForAReaderBehindItsSocket(t *testing.T) {
	sink := &captureSink{}
	m, c := newVirtualMixer(MixConfig{Latency: time.Second}, sink)
	var unreadAt time.Time // the receive time of the reader's next packet; zero: none to read
	f := newFeeder(m, "a", 440, 8000, InputOptions{Unread: func() (time.Time, bool) { return unreadAt, !unreadAt.IsZero() }})
	run(t, m, 10, f)
	// The reader stops at frame 10, whose packet reached the machine now
	// (and the next ones every 20 ms): 1.4 s of them wait in its socket,
	// the budget for frame 10 passed 0.38 s ago.
	unreadAt = c.t
	run(t, m, 70)
	if m.Written() != 10*160 {
		t.Fatalf("written %d, want %d: the mixer waits for the reader's frame 10", m.Written(), 10*160)
	}
	if allocs := testing.AllocsPerRun(100, func() { m.Step() }); allocs != 0 {
		t.Errorf("Step allocates %.2f times while it waits for the reader, want 0", allocs)
	}
	for range 70 { // it reads them all at once
		f.feed()
	}
	unreadAt = time.Time{}
	run(t, m, 1, f)
	if d := f.in.Ring().Dropped(); d != 0 {
		t.Fatalf("dropped %d samples, want none", d)
	}
	// It stops again for longer than the budget and readerWait: the mix
	// goes on without it 1.5 s after the frame's end.
	at := f.pos
	unreadAt = c.t
	run(t, m, 100)
	if want := uint64(at) + uint64(samples(2*time.Second-time.Second-readerWait, 8000)); m.Written() != want {
		t.Errorf("written %d, want %d: the budget and readerWait after the reader stopped", m.Written(), want)
	}
	unreadAt = time.Time{}
	finish(t, m)
	act := toneWindows(sink.pcm[:at], 8000, 440)
	if count(act) != len(act) {
		t.Errorf("tone in %d of the %d windows before the reader's second stop", count(act), len(act))
	}
}

type failingSink struct{ err error }

func (f failingSink) WriteFrame([]int16) error { return f.err }

// TestMixer_Run steps on its ticker until the context ends, then finishes
// the mix at the instant it saw the context done (no SetEnd): on the
// mixer's clock in a synctest bubble, exactly 200 ms, 10 frames; a sink
// error ends it early. On the wall clock it is checked by what Run
// promises, not by a duration: the mix lasts at least to the context's
// deadline and never past the instant Run returned (rounded up to a whole
// frame, as Finish writes). Before, it wanted 4-11 frames in 200 ms of wall
// time: at load 26 Run saw its context done 400-580 ms late and ended the
// mix there, as it says (20-29 frames; main 3/30 FAIL). A recording ends
// its mix at the stop instant (SetEnd: TestMixer_EndsAtTheStop), not when
// the mixer's goroutine gets to it.
func TestMixer_Run(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := NewMixer(MixConfig{}, &discardSink{})
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		if err := m.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if f := m.Frames(); f != 10 {
			t.Errorf("%d frames in 200 ms of the mixer's clock, want 10", f)
		}
		boom := errors.New("disk full")
		m = NewMixer(MixConfig{}, failingSink{boom})
		ctx, cancel = context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		start := time.Now()
		if err := m.Run(ctx); !errors.Is(err, boom) {
			t.Errorf("Run = %v, want the sink's error", err)
		}
		// The first frame is due once the join wait is past its end.
		if el, want := time.Since(start), mixJoinWait+m.Config().Frame; el != want {
			t.Errorf("Run returned the sink's error after %v on the mixer's clock, want %v (the first frame due)", el, want)
		}
	})
	before := time.Now()
	m := NewMixer(MixConfig{}, &discardSink{})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	el := time.Since(before)
	frame := m.Config().Frame
	most := int64((el + frame - 1) / frame)
	if f := m.Frames(); f < 10 || f > most {
		t.Errorf("%d frames on the wall clock, want 10 (the deadline) to %d (Run returned %v after the start)", f, most, el)
	}
}

// TestMixer_SettleWaitsForTheFrameBeingMixed: a mute that comes while the
// mixer writes a frame whose inputs' mutes it read already begins at that
// frame (MuteSpan returns Written), but the frame is written unmuted; Settle
// waits for it and returns its end, so a retroactive blackout re-mixes it
// from the silenced files too (recorder's silenceSince). Re-mixed only up to
// where the mute began, those 20 ms of the blacked-out participant stayed in
// the mix.
func TestMixer_SettleWaitsForTheFrameBeingMixed(t *testing.T) {
	sink := &holdingSink{hold: 5, entered: make(chan struct{}), release: make(chan struct{})}
	m, c := newVirtualMixer(MixConfig{}, sink)
	f := newFeeder(m, "a", 440, 3000, InputOptions{})
	stepped := make(chan error, 1)
	go func() { // run(t, m, 60, f), off the test's goroutine
		for range 60 {
			f.feed()
			c.t = c.t.Add(m.Config().Frame)
			if err := m.Step(); err != nil {
				stepped <- err
				return
			}
		}
		stepped <- nil
	}()
	<-sink.entered // the frame is mixed: its mutes were read
	h := m.Written()
	if from := f.in.MuteSpan(0, h+100*uint64(m.FrameSamples())); from != h {
		t.Fatalf("MuteSpan began at %d, want %d (the frame being written)", from, h)
	}
	settled := make(chan uint64, 1)
	go func() { settled <- m.Settle() }()
	for range 100 {
		runtime.Gosched() // let Settle find the frame still being written
	}
	close(sink.release)
	if err := <-stepped; err != nil {
		t.Fatal(err)
	}
	want := h + uint64(m.FrameSamples())
	if got := <-settled; got < want {
		t.Errorf("Settle = %d, want %d: the end of the frame being mixed as the mute came", got, want)
	}
	held := sink.pcm[4*m.FrameSamples() : 5*m.FrameSamples()]
	if mediatest.Goertzel(held, 8000, 440) < 1000 {
		t.Errorf("the frame being mixed as the mute came is silent: the mute reached it (this test's premise is wrong)")
	}
}

// holdingSink is a captureSink that holds the mixer in WriteFrame of frame
// number hold (from 1) until release is closed, having closed entered.
type holdingSink struct {
	captureSink
	hold             int
	entered, release chan struct{}
}

func (s *holdingSink) WriteFrame(pcm []int16) error {
	if err := s.captureSink.WriteFrame(pcm); err != nil {
		return err
	}
	if s.hold > 0 && len(s.pcm)/len(pcm) == s.hold {
		close(s.entered)
		<-s.release
	}
	return nil
}

// TestMixer_StepZeroAllocs proves a mixing step allocates nothing, in mono
// and stereo, with muted inputs, cuts and silenced spans.
func TestMixer_StepZeroAllocs(t *testing.T) {
	for _, ch := range []int{1, 2} {
		m, _ := newVirtualMixer(MixConfig{Channels: ch}, &discardSink{})
		var fs []*feeder
		for i := range 10 {
			fs = append(fs, newFeeder(m, fmt.Sprint(i), float64(200+100*i), 3000, InputOptions{Channel: Channel(i % 3)}))
		}
		fs[3].in.MuteFrom(0)
		fs[4].in.MuteSpan(0, 30*160+3)
		m.Cut(40 * 160)
		m.Uncut(45*160 + 7)
		m.Silence(50*160 + 11)
		m.Unsilence(60 * 160)
		run(t, m, 10, fs...)
		allocs := testing.AllocsPerRun(500, func() { run(t, m, 1, fs...) })
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
			m, _ := newVirtualMixer(MixConfig{}, &discardSink{})
			var fs []*feeder
			for i := range n {
				fs = append(fs, newFeeder(m, fmt.Sprint(i), float64(200+37*i), 600, InputOptions{}))
			}
			run(b, m, 5, fs...)
			b.ReportAllocs()
			rt := startRealtime(b, m.Config().Frame)
			for b.Loop() {
				run(b, m, 1, fs...)
			}
			rt.stop()
		})
	}
}

// TestMixer_StepWritesNothingPastTheEnd: once SetEnd is given (a stop whose
// drain still waits for late audio, up to twice the budget), Step writes no
// frame past it however long the drain takes, and Finish ends the mix there.
// Before, the mixer went on writing silence past the stop as the budget
// expired, and the mix outlasted its recording by the drain's wait (case 5:
// mixes 2.5–10.7 s longer than their recordings).
func TestMixer_StepWritesNothingPastTheEnd(t *testing.T) {
	t0 := time.Unix(1000, 0)
	now := t0
	sink := &captureSink{}
	m := NewMixer(MixConfig{SampleRate: 8000, Channels: 1, Latency: time.Second, Start: t0,
		Clock: func() time.Time { return now }}, sink)
	m.AddInput("a", InputOptions{}) // writes nothing: silence once the budget passed
	now = t0.Add(2 * time.Second)
	if err := m.Step(); err != nil {
		t.Fatal(err)
	}
	if got := len(sink.pcm); got == 0 || got >= 12000 {
		t.Fatalf("%d samples after 2 s, want some, fewer than 12000", got)
	}
	m.SetEnd(t0.Add(1500 * time.Millisecond))      // the stop
	for _, at := range []time.Duration{3, 5, 10} { // the drain waits on
		now = t0.Add(at * time.Second)
		if err := m.Step(); err != nil {
			t.Fatal(err)
		}
		if got := len(sink.pcm); got != 12000 {
			t.Errorf("%d samples written by Step with the end at 1.5 s and the clock at %d s, want 12000", got, at)
		}
	}
	if err := m.Finish(m.PosAt(t0.Add(1500 * time.Millisecond))); err != nil {
		t.Fatal(err)
	}
	if got := len(sink.pcm); got != 12000 {
		t.Errorf("the mix lasts %d samples, want 12000 (1.5 s, its end)", got)
	}
}

// TestMixer_EndsAtTheStop: a recording stopped at 1.505 s (SetEnd, mid-frame)
// whose track wrote audio placed up to 2 s (a mapping that put audio read
// before the stop after it): Run ends the mix at the stop, to the sample,
// so that it lasts as long as its recording. Before, it ended with the
// frame holding the inputs' latest audio (case 5: mixes 0.02–0.38 s longer
// than their recordings without a competitor, seconds longer starved).
// Without SetEnd (no stop instant), Run ends it where the audio ends.
func TestMixer_EndsAtTheStop(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop bool
		want int
	}{
		{"stopped", true, 12040},
		{"no stop instant", false, 16000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t0 := time.Unix(1000, 0)
			now := t0.Add(time.Second)
			sink := &captureSink{}
			m := NewMixer(MixConfig{SampleRate: 8000, Latency: time.Second, Start: t0, Clock: func() time.Time { return now }}, sink)
			in := m.AddInput("a", InputOptions{})
			in.Ring().WriteAt(in.Start(), mediatest.Sine(440, 8000, 16000-int(in.Start()), 8000))
			if tc.stop {
				m.SetEnd(t0.Add(1505 * time.Millisecond))
			}
			now = t0.Add(1600 * time.Millisecond)
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // Run finishes at once
			if err := m.Run(ctx); err != nil {
				t.Fatal(err)
			}
			if got := len(sink.pcm); got != tc.want {
				t.Errorf("the mix lasts %d samples, want %d", got, tc.want)
			}
		})
	}
}
