package store

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rtcrec/recorder/internal/pgtest"
)

// TestCompositeJobs on both drivers: jobs are claimed oldest first, each by
// one claimer even when many claim at once; a claim older than the lease is
// taken again; a finished job is gone; enqueueing twice keeps one job.
func TestCompositeJobs(t *testing.T) {
	t.Run(DriverSQLite, func(t *testing.T) {
		testCompositeJobs(t, openT(t, Config{Driver: DriverSQLite, DSN: filepath.Join(t.TempDir(), "db")}))
	})
	t.Run(DriverPostgres, func(t *testing.T) {
		dsn := pgtest.Start(t).NewDatabase(t)
		testCompositeJobs(t, openT(t, Config{Driver: DriverPostgres, DSN: dsn, LocalPath: filepath.Join(t.TempDir(), "local.db")}))
	})
}

func testCompositeJobs(t *testing.T, s *Store) {
	ctx := context.Background()
	t0 := time.Unix(1_000_000, 0)
	const n = 12
	for i := range n {
		id := string(rune('a'+i)) + "-job"
		if err := s.EnqueueComposite(ctx, id, t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.EnqueueComposite(ctx, "a-job", t0.Add(time.Hour)); err != nil { // again: still the oldest
		t.Fatal(err)
	}
	first, err := s.ClaimComposite(ctx, "r0", t0.Add(time.Minute), time.Hour)
	if err != nil || first != "a-job" {
		t.Fatalf("first claim %q %v, want the oldest, a-job", first, err)
	}
	// Many claimers at once: every remaining job exactly once.
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				id, err := s.ClaimComposite(ctx, string(rune('A'+w)), t0.Add(time.Minute), time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				if id == "" {
					return
				}
				mu.Lock()
				got[id]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(got) != n-1 {
		t.Errorf("claimed %d distinct jobs, want %d: %v", len(got), n-1, got)
	}
	for id, c := range got {
		if c != 1 || id == "a-job" {
			t.Errorf("job %s claimed %d times", id, c)
		}
	}
	// Within the lease nothing is left; after it, every job again.
	if id, err := s.ClaimComposite(ctx, "r9", t0.Add(30*time.Minute), time.Hour); err != nil || id != "" {
		t.Errorf("claim within the lease: %q %v", id, err)
	}
	if err := s.FinishComposite(ctx, "a-job"); err != nil {
		t.Fatal(err)
	}
	if id, err := s.ClaimComposite(ctx, "r9", t0.Add(3*time.Hour), time.Hour); err != nil || id != "b-job" {
		t.Errorf("claim after the lease: %q %v, want b-job (a-job finished)", id, err)
	}
	if err := s.FinishComposite(ctx, "no-such-job"); err != nil {
		t.Errorf("finishing a missing job: %v", err)
	}
}
