// Package retry holds what the recorder's persisted queues (recorder/events
// webhook deliveries, recorder/upload jobs) share: the backoff schedule and
// the loop that starts due work with bounded concurrency.
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is the delay before retry number attempt (1 after the first
// failure): base doubled per earlier failure, capped at limit, then jittered
// to a uniformly random value between half of it and all of it ("equal
// jitter"), so that many failing items do not retry in lockstep.
func Backoff(attempt int, base, limit time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	if d > limit || d <= 0 {
		d = limit
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// Dispatcher starts due work items, at most Workers at once and never two
// with the same key at once, each on its own goroutine.
type Dispatcher[T any] struct {
	// Workers bounds the items running at once.
	Workers int
	// Due returns the items that may start now, skipping those whose key is
	// in busy, and when the next other item becomes due (zero: none known).
	Due func(ctx context.Context, busy map[string]bool) (ready []T, next time.Time, err error)
	// Key identifies an item; items with one key run one at a time.
	Key func(T) string
	// Run does one item. It gets Loop's context and should return soon after
	// that ends.
	Run func(ctx context.Context, item T)
	// Wake, when it receives, makes Loop call Due again at once.
	Wake <-chan struct{}
	// OnError is told when Due fails; Loop then tries again after ErrorDelay.
	OnError    func(error)
	ErrorDelay time.Duration
}

// Loop runs until ctx ends, then waits for the items it started and returns.
func (d *Dispatcher[T]) Loop(ctx context.Context) {
	busy := make(map[string]bool)
	done := make(chan string)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := time.Hour
		if len(busy) < d.Workers {
			ready, next, err := d.Due(ctx, busy)
			if err != nil && ctx.Err() == nil {
				d.OnError(err)
				wait = d.ErrorDelay
			}
			for _, it := range ready {
				k := d.Key(it)
				if busy[k] || len(busy) >= d.Workers {
					continue
				}
				busy[k] = true
				go func() {
					d.Run(ctx, it)
					done <- k
				}()
			}
			if !next.IsZero() {
				wait = min(wait, time.Until(next))
			}
		}
		timer.Reset(max(wait, time.Millisecond))
		select {
		case <-ctx.Done():
			for len(busy) > 0 {
				delete(busy, <-done)
			}
			return
		case k := <-done:
			delete(busy, k)
		case <-d.Wake:
		case <-timer.C:
		}
	}
}
