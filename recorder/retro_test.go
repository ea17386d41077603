package recorder

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestClockRelation: packets every 20 ms whose arrivals lag by 0–40 ms of
// jitter (at least one on time per window), timestamps wrapping around:
// the timestamp of an instant is found to within a tick, and a new timeline
// (a jump of minutes) is followed at once.
func TestClockRelation(t *testing.T) {
	c := &clockRelation{clock: 8000}
	base := time.Unix(1_700_000_000, 0)
	ts0 := uint32(1<<32 - 8000*3) // wraps after 3 s
	for i := range 500 {
		jitter := time.Duration(rand.IntN(40)) * time.Millisecond
		if i%25 == 0 {
			jitter = 0
		}
		c.observe(ts0+uint32(i*160), base.Add(time.Duration(i)*20*time.Millisecond+jitter).UnixNano())
	}
	for _, at := range []time.Duration{0, 2500 * time.Millisecond, 9*time.Second + 5*time.Millisecond} {
		got, ok := c.timestampAt(base.Add(at))
		want := ts0 + uint32(at*8000/time.Second)
		if d := int32(got - want); !ok || d < -1 || d > 1 {
			t.Errorf("timestampAt(+%v) = %d, want %d (%v)", at, got, want, ok)
		}
	}
	// The sender's timestamps jump (a new timeline): the relation follows.
	later := base.Add(20 * time.Second)
	for i := range 10 {
		c.observe(uint32(i*160), later.Add(time.Duration(i)*20*time.Millisecond).UnixNano())
	}
	if got, _ := c.timestampAt(later.Add(100 * time.Millisecond)); got != 800 {
		t.Errorf("after a jump: timestampAt = %d, want 800", got)
	}
}

// TestEditGuard: an edit never overlaps an owner's write, and owners never
// lose a write while edits come and go.
func TestEditGuard(t *testing.T) {
	var g editGuard
	var inWrite, inEdit atomic.Bool
	var writes atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			g.enter()
			inWrite.Store(true)
			if inEdit.Load() {
				t.Error("write during an edit")
			}
			writes.Add(1)
			inWrite.Store(false)
			g.leave()
		}
	}()
	for range 200 {
		g.edit(func() {
			inEdit.Store(true)
			if inWrite.Load() {
				t.Error("edit during a write")
			}
			time.Sleep(10 * time.Microsecond)
			inEdit.Store(false)
		})
	}
	close(stop)
	wg.Wait()
	if writes.Load() == 0 {
		t.Error("no write went through")
	}
}
