package retry

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestBackoff_BoundsAndGrowth(t *testing.T) {
	base, limit := 100*time.Millisecond, 2*time.Second
	tests := []struct {
		attempt int
		lo, hi  time.Duration
	}{
		{0, 50 * time.Millisecond, 100 * time.Millisecond},
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 100 * time.Millisecond, 200 * time.Millisecond},
		{4, 400 * time.Millisecond, 800 * time.Millisecond},
		{6, time.Second, 2 * time.Second}, // capped
		{1000, time.Second, 2 * time.Second},
	}
	for _, tt := range tests {
		for range 100 {
			if d := Backoff(tt.attempt, base, limit); d < tt.lo || d > tt.hi {
				t.Fatalf("Backoff(%d) = %v, want in [%v, %v]", tt.attempt, d, tt.lo, tt.hi)
			}
		}
	}
	if d := Backoff(80, time.Hour, 24*time.Hour); d < 12*time.Hour || d > 24*time.Hour {
		t.Fatalf("no overflow expected, got %v", d)
	}
}

func TestDispatcher_BoundsConcurrencyAndSerialisesKeys(t *testing.T) {
	// 20 items over 4 keys, 3 workers: never more than 3 running, never two
	// of one key at once, every item run once.
	type item struct {
		key string
		n   int
	}
	var mu sync.Mutex
	pending := map[int]item{}
	for i := range 20 {
		pending[i] = item{fmt.Sprintf("k%d", i%4), i}
	}
	running, maxRunning := 0, 0
	runningKey := map[string]bool{}
	ran := map[int]int{}
	allDone := make(chan struct{})
	wake := make(chan struct{}, 1)
	d := &Dispatcher[item]{
		Workers: 3,
		Due: func(ctx context.Context, busy map[string]bool) ([]item, time.Time, error) {
			mu.Lock()
			defer mu.Unlock()
			var ready []item
			for _, it := range pending {
				if !busy[it.key] {
					ready = append(ready, it)
				}
			}
			return ready, time.Time{}, nil
		},
		Key: func(it item) string { return it.key },
		Run: func(ctx context.Context, it item) {
			mu.Lock()
			if runningKey[it.key] {
				t.Errorf("two items of key %s at once", it.key)
			}
			runningKey[it.key] = true
			running++
			maxRunning = max(maxRunning, running)
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			running--
			runningKey[it.key] = false
			ran[it.n]++
			delete(pending, it.n)
			if len(pending) == 0 && running == 0 {
				close(allDone)
			}
		},
		Wake:       wake,
		OnError:    func(err error) { t.Error(err) },
		ErrorDelay: time.Millisecond,
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { d.Loop(ctx); close(stopped) }()
	select {
	case <-allDone:
	case <-time.After(10 * time.Second):
		t.Fatal("items not all run")
	}
	cancel()
	<-stopped
	if maxRunning > 3 || maxRunning < 2 {
		t.Errorf("at most %d ran at once, want 2..3", maxRunning)
	}
	for i := range 20 {
		if ran[i] != 1 {
			t.Errorf("item %d ran %d times", i, ran[i])
		}
	}
}

func TestDispatcher_WaitsUntilNextIsDue(t *testing.T) {
	start := time.Now()
	at := start.Add(50 * time.Millisecond)
	ran := make(chan time.Time, 1)
	var once sync.Once
	d := &Dispatcher[int]{
		Workers: 1,
		Due: func(ctx context.Context, busy map[string]bool) ([]int, time.Time, error) {
			if time.Now().Before(at) {
				return nil, at, nil
			}
			var r []int
			once.Do(func() { r = []int{1} })
			return r, time.Time{}, nil
		},
		Key: func(int) string { return "k" },
		Run: func(ctx context.Context, _ int) { ran <- time.Now() },
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Loop(ctx)
	select {
	case when := <-ran:
		if when.Before(at) || when.Sub(at) > 3*time.Second {
			t.Fatalf("ran %v after start, due at 50ms", when.Sub(start))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("never ran")
	}
}
