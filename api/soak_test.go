package api

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"github.com/rtcrec/recorder/recorder/conference/whip"
	"github.com/rtcrec/recorder/recorder/conference/whip/whiptest"
)

// soakFigures are the process figures the soak test compares.
type soakFigures struct {
	goroutines int
	fds        int
	heap       uint64 // bytes of live objects after two GCs (HeapAlloc)
	inuse      uint64 // bytes in in-use spans (HeapInuse), for the log
}

// measureSoak collects garbage twice (the second pass frees what sync.Pool
// victim caches still held) and returns the process figures.
func measureSoak(t *testing.T) soakFigures {
	t.Helper()
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return soakFigures{goroutines: runtime.NumGoroutine(), fds: len(fds), heap: ms.HeapAlloc, inuse: ms.HeapInuse}
}

// soakHeapSlack is how much the live heap may differ between the first
// measurement after warm-up and the last, whatever the number of recordings
// in between: a fixed bound, so that any per-recording retention (about
// 140 KiB a recording when the WHIP endpoint's connect timer held closed
// PeerConnections) fails the test.
const soakHeapSlack = 2 << 20

// TestService_Soak starts and stops recordings in churn, several at a time,
// each with its own WHIP tone publisher on loopback, and checks that every
// recording is complete (STOPPED, composition COMPLETED, a mix of the
// recorded length), that goroutines and open files come back to where they
// were, and that the live heap after all recordings is within soakHeapSlack
// of the heap after the first 20, so it does not grow with their number.
// 60 recordings by default; RECORDER_SOAK=1 runs 100, RECORDER_SOAK=N runs N
// (N > 20). RECORDER_SOAK_HEAPPROFILE=PATH writes heap profiles PATH.before
// (after 20 recordings) and PATH.after (after all) for
// go tool pprof -sample_index=inuse_space -base PATH.before PATH.after.
func TestService_Soak(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	const first = 20 // recordings before the heap reference is taken
	n, parallel, length := 60, 4, time.Second
	if v := os.Getenv("RECORDER_SOAK"); v != "" {
		n, parallel, length = 100, 8, 2*time.Second
		if k, err := fmt.Sscan(v, &n); k != 1 || err != nil || n <= first {
			n = 100
		}
	}
	profile := os.Getenv("RECORDER_SOAK_HEAPPROFILE")
	if profile != "" {
		runtime.MemProfileRate = 512
	}
	h := startService(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 170*time.Second)
	defer cancel()
	wc := h.whipClient(key1)

	one := func(i int) error {
		conv := fmt.Sprintf("soak-%03d", i)
		p, err := whiptest.Join(ctx, wc, whip.Endpoint(h.url, conv, "u"+conv, "MIC"), conv, 440)
		if err != nil {
			return fmt.Errorf("%s: join: %w", conv, err)
		}
		defer p.Leave(context.Background())
		ev, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: conv, ConversationID: conv})
		if st != 200 {
			return fmt.Errorf("%s: start: %d", conv, st)
		}
		time.Sleep(length)
		var stopped RecordingDataEvent
		if st := h.do("POST", recPath(ev)+"/stop", key1, nil, &stopped); st != 200 || stopped.State != "STOPPED" {
			return fmt.Errorf("%s: stop: %d %+v", conv, st, stopped)
		}
		var comp RecordingDataMessage
		h.do("GET", "/api/compositions/"+conv, key1, nil, &comp)
		if c := comp.Composition; c == nil || c.State != "COMPLETED" || len(c.Outputs) != 1 || c.Outputs[0].Duration < length.Seconds()*0.8 {
			return fmt.Errorf("%s: composition %+v", conv, c)
		}
		return nil
	}
	// churn runs recordings from to to-1, parallel at a time.
	churn := func(from, to int) {
		var wg sync.WaitGroup
		next := make(chan int)
		for range parallel {
			wg.Go(func() {
				for i := range next {
					if err := one(i); err != nil {
						t.Error(err)
					}
				}
			})
		}
		for i := from; i < to; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
	}
	// settle waits for closed connections and finished uploads to wind down.
	settle := func(base soakFigures) soakFigures {
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			f := measureSoak(t)
			if (f.goroutines <= base.goroutines+5 && f.fds <= base.fds+5) || time.Now().After(deadline) {
				return f
			}
		}
	}
	churn(-parallel, 0) // warm-up: pools, caches, lazily started goroutines
	if t.Failed() {
		t.FailNow()
	}
	before := settle(measureSoak(t))
	start := time.Now()
	churn(0, first)
	mid := settle(before)
	writeHeapProfile(profile, ".before")
	churn(first, n)
	took := time.Since(start)
	after := settle(before)
	writeHeapProfile(profile, ".after")
	mib := func(b uint64) float64 { return float64(b) / (1 << 20) }
	t.Logf("%d recordings, %d at a time, %v each: %v in all, %v per recording", n, parallel, length, took.Round(time.Millisecond),
		(took / time.Duration(n)).Round(time.Millisecond))
	t.Logf("goroutines %d → %d, open fds %d → %d", before.goroutines, after.goroutines, before.fds, after.fds)
	t.Logf("live heap %.2f → %.2f (after %d) → %.2f MiB (after %d); heap in use %.2f → %.2f → %.2f MiB",
		mib(before.heap), mib(mid.heap), first, mib(after.heap), n, mib(before.inuse), mib(mid.inuse), mib(after.inuse))
	if after.goroutines > before.goroutines+5 {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines grew from %d to %d:\n%s", before.goroutines, after.goroutines, buf[:runtime.Stack(buf, true)])
	}
	if after.fds > before.fds+5 {
		t.Errorf("open files grew from %d to %d", before.fds, after.fds)
	}
	if after.heap > mid.heap+soakHeapSlack {
		t.Errorf("live heap grew from %d bytes after %d recordings to %d after %d (%.1f KiB a recording; bound %d bytes in all)",
			mid.heap, first, after.heap, n, float64(after.heap-mid.heap)/1024/float64(n-first), soakHeapSlack)
	}
}

// writeHeapProfile writes a heap profile to path+suffix; nothing when path is empty.
func writeHeapProfile(path, suffix string) {
	if path == "" {
		return
	}
	runtime.GC()
	if f, err := os.Create(path + suffix); err == nil {
		pprof.WriteHeapProfile(f)
		f.Close()
	}
}
