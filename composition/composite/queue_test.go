package composite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// TestQueue_BoundedPersistedAndResumed: at most Workers jobs run at once,
// Capacity bounds the queue, and a job cut by Close runs again in the next
// queue on the same database.
func TestQueue_BoundedPersistedAndResumed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	db := openDB(t, path)
	var running, most atomic.Int32
	release := make(chan struct{})
	var mu sync.Mutex
	var done []string
	started := make(chan string, 10)
	q, err := NewQueue(context.Background(), db, QueueOptions{Workers: 2, Capacity: 3, Run: func(ctx context.Context, id string) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		started <- id
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		mu.Lock()
		done = append(done, id)
		mu.Unlock()
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		if err := q.Enqueue(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Enqueue(ctx, "a"); err != nil {
		t.Errorf("enqueue of a queued job: %v, want a no-op", err)
	}
	if err := q.Enqueue(ctx, "d"); !errors.Is(err, ErrQueueFull) {
		t.Errorf("a fourth job: %v, want ErrQueueFull", err)
	}
	<-started
	<-started
	select {
	case id := <-started:
		t.Fatalf("job %s started with two running and two workers", id)
	case <-time.After(200 * time.Millisecond):
	}
	release <- struct{}{} // one finishes: the third starts
	third := <-started
	if err := q.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if most.Load() != 2 {
		t.Errorf("%d jobs ran at once, want 2", most.Load())
	}
	mu.Lock()
	if len(done) != 1 {
		t.Fatalf("finished %v, want one", done)
	}
	mu.Unlock()

	// The next start resumes the two cut jobs.
	db.Close()
	db2 := openDB(t, path)
	resumed := make(chan string, 3)
	q2, err := NewQueue(ctx, db2, QueueOptions{Workers: 1, Run: func(ctx context.Context, id string) error {
		resumed <- id
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close(ctx)
	got := map[string]bool{<-resumed: true, <-resumed: true}
	if !got[third] || len(got) != 2 || got[done[0]] {
		t.Errorf("resumed %v, want the two cut jobs (not %s)", got, done[0])
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ids, err := q2.Pending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs %v still queued after they ran", ids)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
