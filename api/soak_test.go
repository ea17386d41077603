package api

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/recorder/conference/whip"
)

// soakFigures are the process figures the soak test compares.
type soakFigures struct {
	goroutines int
	fds        int
	heap       uint64 // bytes in use after a GC
}

func measureSoak(t *testing.T) soakFigures {
	t.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return soakFigures{goroutines: runtime.NumGoroutine(), fds: len(fds), heap: ms.HeapInuse}
}

// TestService_Soak starts and stops recordings in churn, several at a time,
// each with its own WHIP tone publisher on loopback, and checks that every
// recording is complete (STOPPED, composition COMPLETED, a mix of the
// recorded length) and that goroutines, open files and heap come back to
// where they were. 20 recordings by default; RECORDER_SOAK=1 runs 100,
// RECORDER_SOAK=N runs N.
func TestService_Soak(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	n, parallel, length := 20, 4, time.Second
	if v := os.Getenv("RECORDER_SOAK"); v != "" {
		n, parallel, length = 100, 8, 2*time.Second
		if k, err := fmt.Sscan(v, &n); k != 1 || err != nil || n < 2 {
			n = 100
		}
	}
	profile := os.Getenv("RECORDER_SOAK_HEAPPROFILE") // PATH: heap profiles PATH.before and PATH.after
	if profile != "" {
		runtime.MemProfileRate = 512
	}
	h := startService(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 170*time.Second)
	defer cancel()
	wc := h.whipClient(key1)

	one := func(i int) error {
		conv := fmt.Sprintf("soak-%03d", i)
		p, err := synth.Join(ctx, wc, whip.Endpoint(h.url, conv, "u"+conv, "MIC"), conv, 440)
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
	if err := one(-1); err != nil { // warm-up: pools, caches, lazily started goroutines
		t.Fatal(err)
	}
	before := measureSoak(t)
	writeHeapProfile(profile, ".before")
	start := time.Now()
	var wg sync.WaitGroup
	next := make(chan int)
	errs := make(chan error, n)
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := one(i); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	took := time.Since(start)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Let closed connections and finished uploads wind down.
	var after soakFigures
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		after = measureSoak(t)
		if (after.goroutines <= before.goroutines+5 && after.fds <= before.fds+5) || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("%d recordings, %d at a time, %v each: %v in all, %v per recording", n, parallel, length, took.Round(time.Millisecond),
		(took / time.Duration(n)).Round(time.Millisecond))
	t.Logf("goroutines %d → %d, open fds %d → %d, heap in use %.1f → %.1f MiB", before.goroutines, after.goroutines,
		before.fds, after.fds, float64(before.heap)/(1<<20), float64(after.heap)/(1<<20))
	writeHeapProfile(profile, ".after")
	if after.goroutines > before.goroutines+5 {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines grew from %d to %d:\n%s", before.goroutines, after.goroutines, buf[:runtime.Stack(buf, true)])
	}
	if after.fds > before.fds+5 {
		t.Errorf("open files grew from %d to %d", before.fds, after.fds)
	}
	// Known: about 140 KiB per recording stays in the heap, all of it Pion
	// objects allocated under the WHIP adapter's NewPeerConnection (ICE
	// agent, DTLS, SRTP contexts, packetio buffers) although the recorder's
	// rooms, sessions and WHIP sessions are all gone (heap profile diff:
	// RECORDER_SOAK_HEAPPROFILE). The bound catches anything worse.
	if limit := before.heap + 8<<20 + uint64(n)*200<<10; after.heap > limit {
		t.Errorf("heap in use grew from %d to %d bytes (limit %d)", before.heap, after.heap, limit)
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
