package main

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtcrec/recorder/media"
)

// TestServe_MixOnDiskLagsAtMostTheBudget: issue 10's "upload while
// recording keeps working: the mix on disk lags by at most the budget",
// through the real binary. A real Pion publisher's network stalls for 7 s,
// 2.5 s into a recording with the default budget (5 s), then delivers the
// held packets at once. The mixer waits for the stalled track up to the
// budget, then writes without it; the recording's mix.wav on the recorder's
// disk, read every 50 ms while it records, holds the recording up to at
// most the budget before now: plus the frame being waited for (20 ms), the
// mixer's tick (20 ms) and the scheduling of a loaded machine (5.08 s seen
// at load 11 under -race); 250 ms in all, a quarter of what the writer's
// one-second buffer can hold. The stall begins when the file first holds
// 2 s: the mixer, half a second behind the clock, has written 2 s and the
// writer holds what it writes next, about half a second when it begins to
// wait. Before, that stayed in the writer's buffer until the first frame
// the budget expired (5.5-5.6 s; with the stall at 2 s, 5.99 s when the
// track's last audio before it came just before the writer's flush at 2 s,
// as under load). The stall must have made it wait (the lag reached 4 s),
// or the test shows nothing.
func TestServe_MixOnDiskLagsAtMostTheBudget(t *testing.T) {
	const freq = 660.0
	opus := realTimeTone(t, freq)
	dir := t.TempDir()
	s := serveProcess(t, dir)
	key := readKey(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const stall = 7 * time.Second
	var from atomic.Int64 // unix ns; 0: not yet
	stop := publishOnSchedule(t, ctx, s, key, "disklag", "o", opus, time.Time{}, 20*time.Millisecond, func(int, time.Duration) (time.Duration, bool, bool) {
		if f := from.Load(); f != 0 {
			return max(time.Duration(f+int64(stall)-time.Now().UnixNano()), 0), false, false
		}
		return 0, false, false
	})
	defer stop()
	ev := startRecording(t, s, key, "disklag", false)
	type sample struct {
		at    time.Time
		bytes int64
	}
	var samples []sample
	var path string
	poll := func(d time.Duration, until func(bytes int64) bool) {
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if path == "" {
				m, _ := filepath.Glob(filepath.Join(dir, "data", "recordings", "*", "*", "*", ev.InstanceID, "mix.wav"))
				if len(m) == 0 {
					continue
				}
				path = m[0]
			}
			if fi, err := os.Stat(path); err == nil {
				samples = append(samples, sample{time.Now(), fi.Size()})
				if until != nil && until(fi.Size()) {
					return
				}
			}
		}
	}
	const twoSeconds = 44 + 2*8000*2 // mix.wav holding 2 s
	poll(10*time.Second, func(bytes int64) bool { return bytes >= twoSeconds })
	if len(samples) == 0 || samples[len(samples)-1].bytes < twoSeconds {
		t.Fatalf("mix.wav did not reach 2 s within 10 s (%d readings)", len(samples))
	}
	from.Store(time.Now().UnixNano())
	stalledAt := time.Now()
	poll(stall+3*time.Second, nil)
	stopRecording(t, s, key, "disklag", ev)
	_, man := recordingFiles(t, dir, ev.InstanceID)
	if len(samples) < 100 {
		t.Fatalf("read the mix file %d times while recording (%q)", len(samples), path)
	}
	// The lag at each reading: the recording's time then, less the audio
	// the file holds (16-bit mono at 8 kHz after a 44-byte header).
	var worst, after time.Duration
	var worstAt time.Time
	for _, x := range samples {
		held := time.Duration(max(x.bytes-44, 0)/2) * time.Second / 8000
		lag := x.at.Sub(man.Started) - held
		if lag > worst {
			worst, worstAt = lag, x.at
		}
		if x.at.After(stalledAt.Add(stall + 2*time.Second)) {
			after = max(after, lag)
		}
	}
	t.Logf("mix.wav read %d times: the largest lag %v, %v after the stall began (%v long, %v into the recording); from 2 s after it ended at most %v",
		len(samples), worst.Round(time.Millisecond), worstAt.Sub(stalledAt).Round(time.Millisecond), stall, stalledAt.Sub(man.Started).Round(time.Millisecond), after.Round(time.Millisecond))
	if worst < 4*time.Second {
		t.Fatalf("the mix lagged at most %v during a %v stall: the mixer did not wait for the stalled track", worst, stall)
	}
	if worst > media.DefaultLatency+250*time.Millisecond {
		t.Errorf("the mix on disk lagged %v behind the recording, more than the budget (%v)", worst, media.DefaultLatency)
	}
}
