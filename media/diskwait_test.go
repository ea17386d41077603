package media

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rtcrec/recorder/media/wavwriter"
)

// countingWriter is the WAV writer as the mixer's sink, counting the
// flushes the mixer asks for (the writer's own, a second of audio each, are
// not counted).
type countingWriter struct {
	*wavwriter.Writer
	flushes int
}

func (c *countingWriter) Flush() error { c.flushes++; return c.Writer.Flush() }

// TestMixer_FlushesWhatTheWriterHeldBeforeAWait: issue 10's "upload while
// recording keeps working: the mix on disk lags by at most the budget". A
// track stops 2.5 s into a recording (a network stall; default budget, 5 s)
// and the mixer waits for it. The WAV writer (the recorder's mix.wav) holds
// a second of audio before it writes it to its file: it had written up to
// 1 s, and held the 0.74 s the mixer wrote after (it stays its join wait
// behind). The mixer flushes it once
// that is the budget old, so the file on disk, read after every step, lags
// the clock by at most the budget (and the frame the mixer waits for).
// Before, the writer was flushed at the first frame the budget expired
// (5.52 s after 2.5 s; recorder's guardedMix): the file lagged the budget
// and the 0.5 s held, 5.5 s. The mixer in step with its track before and after (the file lags the
// join wait and the writer's second at most) asks for no flush. With a
// skipped pause (a cut) among the held audio, the held audio begins where
// the file ends on the recording's timeline, not a cut's length later.
func TestMixer_FlushesWhatTheWriterHeldBeforeAWait(t *testing.T) {
	for _, cut := range []bool{false, true} {
		name := "no cut"
		if cut {
			name = "a cut in the held audio"
		}
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "mix.wav")
			w, err := wavwriter.New(path)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			sink := &countingWriter{Writer: w}
			m, c := newVirtualMixer(MixConfig{}, sink)
			f := newFeeder(m, "a", 440, 8000, InputOptions{})
			var from, to uint64 // the cut, if any, on the recording's timeline
			worst, worstAt := time.Duration(0), time.Duration(0)
			onDisk := func() { // the file's end on the recording's timeline, behind the clock
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				end := uint64(fi.Size()-44) / 2 // samples in the file
				if cut && end > from {
					end += to - from
				}
				if lag := c.t.Sub(m.Config().Start) - m.Duration(end); lag > worst {
					worst, worstAt = lag, c.t.Sub(m.Config().Start)
				}
			}
			step := func(n int, feed bool) {
				for range n {
					if feed {
						f.feed()
					}
					c.t = c.t.Add(m.Config().Frame)
					if err := m.Step(); err != nil {
						t.Fatal(err)
					}
					onDisk()
				}
			}
			step(111, true) // 2.22 s of the track
			if cut {        // a skipped pause from 2.1 s (moved on to the next frame: Uncut) to 2.2 s
				m.Cut(2100 * 8)
				from, to = m.Uncut(2200*8), 2200*8
			}
			step(14, true) // 2.5 s
			if limit := m.Duration(m.joinWait) + time.Second + 20*time.Millisecond; sink.flushes != 0 || worst > limit {
				t.Fatalf("in step: the mixer flushed the writer %d times, the file lagged up to %v; want none, at most %v", sink.flushes, worst, limit)
			}
			step(300, false) // it stalls 8 s
			// The mixer writes a frame at every step now (the budget passed)
			// and flushes the writer: allocation-free.
			n := sink.flushes
			allocs := testing.AllocsPerRun(49, func() {
				c.t = c.t.Add(m.Config().Frame)
				if err := m.Step(); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 || sink.flushes-n != 50 {
				t.Errorf("a step with the budget passed allocates %.2f times and flushed %d times in 50, want 0 and 50", allocs, sink.flushes-n)
			}
			step(50, false)
			if m.Expired() == 0 {
				t.Fatal("the mixer did not wait the budget")
			}
			if want := DefaultLatency + m.Config().Frame; worst > want {
				t.Errorf("the file lagged %v behind the clock at %v, want at most %v (the budget and a frame)", worst, worstAt, want)
			}
			for range 400 { // the held audio comes, too late; the track goes on
				f.pos += m.FrameSamples()
			}
			n = sink.flushes
			step(50, true) // the mixer catches up
			worst = 0
			step(200, true) // in step
			if limit := m.Duration(m.joinWait) + time.Second + 20*time.Millisecond; sink.flushes != n || worst > limit {
				t.Errorf("in step after the stall: the mixer flushed the writer %d times, the file lagged up to %v; want none, at most %v", sink.flushes-n, worst, limit)
			}
		})
	}
}
