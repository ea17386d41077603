package upload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtcrec/recorder/recorder/internal/dbtest"
	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/azurestore"
	"github.com/rtcrec/recorder/storage/memstore"
)

// faulty is a storage.Provider over memstore whose writes can be made to fail:
// the first failFirst writes with failCode, or every write while failAll is
// set, or block until their context ends while block is set.
type faulty struct {
	*memstore.Provider
	mu        sync.Mutex
	failFirst int
	failCode  storage.ErrorCode
	failAll   bool
	block     bool
	started   chan struct{} // gets a value when a write starts
	writes    int
}

func newFaulty(name string) *faulty {
	return &faulty{Provider: memstore.New(memstore.Options{Name: name}), failCode: storage.Unavailable, started: make(chan struct{}, 100)}
}

func (f *faulty) set(fn func(f *faulty)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *faulty) NewWriter(ctx context.Context, key string, opts *storage.WriterOptions) (io.WriteCloser, error) {
	f.mu.Lock()
	f.writes++
	n, fail, block, code := f.writes, f.failAll, f.block, f.failCode
	f.mu.Unlock()
	select {
	case f.started <- struct{}{}:
	default:
	}
	if block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if fail || n <= f.failFirst {
		return nil, fmt.Errorf("injected failure of write %d: %w", n, code)
	}
	return f.Provider.NewWriter(ctx, key, opts)
}

func (f *faulty) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes
}

// results collects Results.
type results struct {
	mu  sync.Mutex
	all []Result
	ch  chan Result
}

func newResults() *results { return &results{ch: make(chan Result, 100)} }

func (r *results) add(res Result) {
	r.mu.Lock()
	r.all = append(r.all, res)
	r.mu.Unlock()
	r.ch <- res
}

// next waits for the next Result.
func (r *results) next(t *testing.T) Result {
	t.Helper()
	select {
	case res := <-r.ch:
		return res
	case <-time.After(10 * time.Second):
		t.Fatal("no result")
		return Result{}
	}
}

func (r *results) list() []Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Result(nil), r.all...)
}

// fixture is a queue on a fresh database with a switchable primary profile.
type fixture struct {
	t       *testing.T
	dir     string
	dbPath  string
	mu      sync.Mutex
	primary *storage.Bucket
	res     *results
	q       *Queue
}

func fast(o Options) Options {
	if o.MinBackoff == 0 {
		o.MinBackoff = 2 * time.Millisecond
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 20 * time.Millisecond
	}
	return o
}

func newFixture(t *testing.T, primary storage.Provider, opts Options) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir(), res: newResults()}
	f.dbPath = filepath.Join(f.dir, "recorder.db")
	f.setPrimary(primary)
	f.start(opts)
	return f
}

func (f *fixture) setPrimary(p storage.Provider) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.primary = storage.NewBucket(p)
}

func (f *fixture) open(string) (*storage.Bucket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.primary, nil
}

// start opens the database and a Queue on it (again, after a restart).
func (f *fixture) start(opts Options) {
	f.t.Helper()
	opts = fast(opts)
	opts.Logger = slog.New(slog.NewTextHandler(f.t.Output(), nil))
	opts.Open = f.open
	opts.OnResult = f.res.add
	q, err := New(context.Background(), dbtest.Open(f.t, f.dbPath), opts)
	if err != nil {
		f.t.Fatal(err)
	}
	f.q = q
	f.t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		q.Close(ctx)
	})
}

// file writes a local file of n bytes of a pattern named by name.
func (f *fixture) file(name string, n int) (string, []byte) {
	f.t.Helper()
	data := bytes.Repeat([]byte(name+"-0123456789abcdef\n"), n/(len(name)+18)+1)[:n]
	path := filepath.Join(f.dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		f.t.Fatal(err)
	}
	return path, data
}

func (f *fixture) job(id, rec string, size int, del bool) (Job, []byte) {
	path, data := f.file(id, size)
	return Job{ID: id, RecordingID: rec, ApplicationID: "app1", LocalPath: path,
		Key: "org1/conv/" + rec + "/" + id, ContentType: "audio/wav",
		Metadata: map[string]string{"instanceId": rec}, DeleteLocalAfter: del}, data
}

func (f *fixture) enqueue(j Job) {
	f.t.Helper()
	if err := f.q.Enqueue(context.Background(), j); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) wait(rec string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return f.q.Wait(ctx, rec)
}

// checkObject reads key from b and compares it with want.
func checkObject(t *testing.T, b *storage.Bucket, key string, want []byte) {
	t.Helper()
	got, err := b.ReadAll(context.Background(), key)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("object %s: %d bytes differ from the %d of the local file", key, len(got), len(want))
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestQueue_UploadsVerifiesAndDeletesOnlyWhenAsked(t *testing.T) {
	dbtest.NoLeaks(t)
	mem := memstore.New(memstore.Options{Name: "primary"})
	f := newFixture(t, mem, Options{})
	tests := []struct {
		id   string
		size int
		del  bool
	}{
		{"mix.wav", 96_044, true},
		{"track-1.ogg", 10_000, false},
		{"empty.json", 0, true},
	}
	want := map[string][]byte{}
	jobs := map[string]Job{}
	for _, tt := range tests {
		j, data := f.job(tt.id, "rec1", tt.size, tt.del)
		want[tt.id], jobs[tt.id] = data, j
		f.enqueue(j)
	}
	if err := f.wait("rec1"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			j := jobs[tt.id]
			checkObject(t, f.primary, j.Key, want[tt.id])
			a, err := f.primary.Attributes(context.Background(), j.Key)
			if err != nil || a.ContentType != "audio/wav" || a.Metadata["instanceId"] != "rec1" {
				t.Errorf("attributes %+v, %v", a, err)
			}
			_, err = os.Stat(j.LocalPath)
			if deleted := errors.Is(err, os.ErrNotExist); deleted != tt.del {
				t.Errorf("local file deleted=%v, want %v", deleted, tt.del)
			}
		})
	}
	rs := f.res.list()
	if len(rs) != len(tests) {
		t.Fatalf("%d results, want %d", len(rs), len(tests))
	}
	for _, r := range rs {
		if r.Status != Uploaded || r.Err != nil || r.Backup || r.Attempts != 1 {
			t.Errorf("result %+v", r)
		}
		if r.Size != int64(len(want[r.Job.ID])) || r.SHA256 != sha(want[r.Job.ID]) {
			t.Errorf("%s: size %d sha %s, want %d %s", r.Job.ID, r.Size, r.SHA256, len(want[r.Job.ID]), sha(want[r.Job.ID]))
		}
		if r.Location != "mem://primary/"+r.Job.Key || r.Uploaded.IsZero() {
			t.Errorf("%s: location %q uploaded %v", r.Job.ID, r.Location, r.Uploaded)
		}
	}
	stored, err := f.q.Jobs(context.Background(), "rec1")
	if err != nil || len(stored) != 3 || stored[0].Status != Uploaded || stored[0].SHA256 != sha(want["mix.wav"]) {
		t.Fatalf("Jobs = %+v, %v", stored, err)
	}
}

func TestQueue_RetriesRetryableFailures(t *testing.T) {
	tests := []struct {
		name        string
		code        storage.ErrorCode
		failures    int
		reportAfter int
		wantFailing int // Failing results before the upload
	}{
		{"unavailable, quiet", storage.Unavailable, 3, 5, 0},
		{"unavailable, reported once", storage.Unavailable, 4, 2, 1},
		{"deadline exceeded", storage.DeadlineExceeded, 2, 5, 0},
		{"disk full at the provider", storage.ResourceExhausted, 2, 5, 0},
		{"size mismatch", storage.DataLoss, 2, 5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dbtest.NoLeaks(t)
			p := newFaulty("p")
			p.set(func(p *faulty) { p.failFirst, p.failCode = tt.failures, tt.code })
			f := newFixture(t, p, Options{ReportAfter: tt.reportAfter})
			j, data := f.job("mix.wav", "rec1", 5000, true)
			f.enqueue(j)
			if err := f.wait("rec1"); err != nil {
				t.Fatal(err)
			}
			checkObject(t, f.primary, j.Key, data)
			rs := f.res.list()
			if len(rs) != tt.wantFailing+1 {
				t.Fatalf("results %+v, want %d Failing then Uploaded", rs, tt.wantFailing)
			}
			for _, r := range rs[:tt.wantFailing] {
				if r.Status != Failing || r.Code != tt.code || storage.Code(r.Err) != tt.code {
					t.Errorf("failing result %+v", r)
				}
			}
			if last := rs[len(rs)-1]; last.Status != Uploaded || last.Attempts != tt.failures+1 {
				t.Errorf("final result %+v, want Uploaded on attempt %d", last, tt.failures+1)
			}
		})
	}
}

func TestQueue_PermanentFailureReportedAndRetriedAfterFix(t *testing.T) {
	dbtest.NoLeaks(t)
	bad := newFaulty("bad")
	bad.set(func(p *faulty) { p.failAll, p.failCode = true, storage.Unauthenticated })
	f := newFixture(t, bad, Options{PermanentRetry: time.Hour})
	j, data := f.job("mix.wav", "rec1", 3000, true)
	f.enqueue(j)

	r := f.res.next(t)
	if r.Status != Failing || r.Code != storage.Unauthenticated || !errors.Is(r.Err, storage.Unauthenticated) {
		t.Fatalf("result %+v, want Failing with Unauthenticated", r)
	}
	if !strings.Contains(r.Err.Error(), "injected failure") {
		t.Errorf("error %q lost the provider's message", r.Err)
	}
	stored, _ := f.q.Jobs(context.Background(), "rec1")
	if len(stored) != 1 || stored[0].Status != Failing || storage.Code(stored[0].Err) != storage.Unauthenticated {
		t.Fatalf("stored %+v, want Failing Unauthenticated", stored)
	}
	// Not retried at the fast pace: a permanent error waits PermanentRetry.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := f.q.Wait(ctx, "rec1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v, want the job still pending", err)
	}
	if n := bad.count(); n != 1 {
		t.Fatalf("%d attempts within 100 ms, want 1", n)
	}
	if _, err := os.Stat(j.LocalPath); err != nil {
		t.Fatalf("local file gone while failing: %v", err)
	}

	good := memstore.New(memstore.Options{Name: "good"})
	f.setPrimary(good)
	if err := f.q.Retry(context.Background(), "app1"); err != nil {
		t.Fatal(err)
	}
	if err := f.wait("rec1"); err != nil {
		t.Fatal(err)
	}
	checkObject(t, f.primary, j.Key, data)
	if r := f.res.next(t); r.Status != Uploaded || r.Attempts != 2 {
		t.Fatalf("result %+v, want Uploaded on attempt 2", r)
	}
}

func TestQueue_BackupTakesOverAfterFailures(t *testing.T) {
	dbtest.NoLeaks(t)
	down := newFaulty("primary")
	down.set(func(p *faulty) { p.failAll = true })
	backup := storage.NewBucket(memstore.New(memstore.Options{Name: "backup"}))
	f := newFixture(t, down, Options{
		BackupAfter: 3, ReportAfter: 100,
		Backup: func(string) (*storage.Bucket, error) { return backup, nil },
	})
	j, data := f.job("mix.wav", "rec1", 4000, true)
	f.enqueue(j)
	if err := f.wait("rec1"); err != nil {
		t.Fatal(err)
	}
	checkObject(t, backup, j.Key, data)
	r := f.res.next(t)
	if r.Status != Uploaded || !r.Backup || r.Location != "mem://backup/"+j.Key || r.Attempts != 3 {
		t.Fatalf("result %+v, want Uploaded to the backup on attempt 3", r)
	}
	if n := down.count(); n != 3 {
		t.Errorf("primary tried %d times, want 3", n)
	}
}

func TestQueue_AbandonsAfterDeadlineKeepingTheFile(t *testing.T) {
	dbtest.NoLeaks(t)
	down := newFaulty("primary")
	down.set(func(p *faulty) { p.failAll = true })
	f := newFixture(t, down, Options{Deadline: 30 * time.Millisecond, ReportAfter: 1000})
	j, _ := f.job("mix.wav", "rec1", 100, true)
	f.enqueue(j)
	err := f.wait("rec1")
	if err == nil || !strings.Contains(err.Error(), "abandoned") || !strings.Contains(err.Error(), j.Key) {
		t.Fatalf("Wait = %v, want an error naming the abandoned upload", err)
	}
	r := f.res.next(t)
	if r.Status != Abandoned || r.Code != storage.Unavailable || !strings.Contains(r.Err.Error(), "gave up") {
		t.Fatalf("result %+v", r)
	}
	if _, err := os.Stat(j.LocalPath); err != nil {
		t.Fatalf("abandoned upload's local file: %v", err)
	}
}

func TestQueue_MissingLocalFileIsAbandoned(t *testing.T) {
	dbtest.NoLeaks(t)
	f := newFixture(t, memstore.New(memstore.Options{Name: "p"}), Options{})
	j, _ := f.job("gone.wav", "rec1", 10, false)
	os.Remove(j.LocalPath)
	f.enqueue(j)
	if err := f.wait("rec1"); err == nil {
		t.Fatal("Wait = nil for a job whose file is missing")
	}
	if r := f.res.next(t); r.Status != Abandoned || r.Code != storage.NotFound {
		t.Fatalf("result %+v", r)
	}
}

func TestQueue_RestartResumesPendingJobs(t *testing.T) {
	dbtest.NoLeaks(t)
	stuck := newFaulty("primary")
	stuck.set(func(p *faulty) { p.block = true })
	f := newFixture(t, stuck, Options{})
	j, data := f.job("mix.wav", "rec1", 20_000, true)
	f.enqueue(j)
	<-stuck.started // the upload is in flight

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := f.q.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "1 jobs pending") {
		t.Fatalf("Close = %v, want 1 job left pending", err)
	}
	if err := f.q.Enqueue(context.Background(), j); !errors.Is(err, ErrClosed) {
		t.Fatalf("Enqueue after Close = %v", err)
	}
	if _, err := os.Stat(j.LocalPath); err != nil {
		t.Fatalf("local file after an interrupted upload: %v", err)
	}

	// The next process: same database, a working profile.
	f.setPrimary(memstore.New(memstore.Options{Name: "primary"}))
	f.start(Options{})
	if err := f.wait("rec1"); err != nil {
		t.Fatal(err)
	}
	checkObject(t, f.primary, j.Key, data)
	if _, err := os.Stat(j.LocalPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("local file after the verified upload: %v", err)
	}
	if r := f.res.next(t); r.Status != Uploaded || r.Attempts != 1 {
		t.Fatalf("result %+v, want Uploaded; the interrupted attempt does not count", r)
	}
}

func TestQueue_CloseDrains(t *testing.T) {
	dbtest.NoLeaks(t)
	p := newFaulty("p")
	p.set(func(p *faulty) { p.failFirst = 3 })
	f := newFixture(t, p, Options{})
	var want [][]byte
	for i := range 5 {
		j, data := f.job(fmt.Sprintf("t%d", i), "rec1", 1000, false)
		f.enqueue(j)
		want = append(want, data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.q.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		checkObject(t, f.primary, fmt.Sprintf("org1/conv/rec1/t%d", i), want[i])
	}
}

func TestQueue_EnqueueIsIdempotent(t *testing.T) {
	dbtest.NoLeaks(t)
	p := newFaulty("p")
	f := newFixture(t, p, Options{})
	j, _ := f.job("mix.wav", "rec1", 100, false)
	f.enqueue(j)
	if err := f.wait("rec1"); err != nil {
		t.Fatal(err)
	}
	f.enqueue(j) // again, after it is done
	f.enqueue(j)
	if err := f.wait("rec1"); err != nil {
		t.Fatal(err)
	}
	if n := p.count(); n != 1 {
		t.Fatalf("%d uploads of one job ID, want 1", n)
	}
}

func TestQueue_EnqueueRejectsBadJobs(t *testing.T) {
	f := newFixture(t, memstore.New(memstore.Options{Name: "p"}), Options{})
	ok := Job{ID: "a", RecordingID: "r", ApplicationID: "app1", LocalPath: "/tmp/x", Key: "k/x"}
	tests := []struct {
		name string
		edit func(*Job)
	}{
		{"no ID", func(j *Job) { j.ID = "" }},
		{"no application", func(j *Job) { j.ApplicationID = "" }},
		{"no local path", func(j *Job) { j.LocalPath = "" }},
		{"empty key", func(j *Job) { j.Key = "" }},
		{"dot-dot key", func(j *Job) { j.Key = "a/../b" }},
		{"absolute key", func(j *Job) { j.Key = "/a" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := ok
			tt.edit(&j)
			if err := f.q.Enqueue(context.Background(), j); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestNew_RequiresOpener(t *testing.T) {
	if _, err := New(context.Background(), dbtest.Open(t, filepath.Join(t.TempDir(), "x.db")), Options{}); err == nil {
		t.Fatal("New without Open succeeded")
	}
}

func TestStatus_String(t *testing.T) {
	for s, want := range map[Status]string{Pending: "Pending", Uploaded: "Uploaded", Failing: "Failing", Abandoned: "Abandoned", 9: "Status(9)"} {
		if s.String() != want {
			t.Errorf("%d: %q", int(s), s.String())
		}
	}
}

func TestParseCode_RoundTrips(t *testing.T) {
	for c := storage.Unknown; c <= storage.ResourceExhausted; c++ {
		if got := parseCode(c.String()); got != c {
			t.Errorf("parseCode(%q) = %v", c.String(), got)
		}
	}
}

func TestNew_RemovesLocalCopiesUploadedBeforeACrash(t *testing.T) {
	dbtest.NoLeaks(t)
	f := newFixture(t, memstore.New(memstore.Options{Name: "p"}), Options{})
	j, _ := f.job("mix.wav", "rec1", 100, true)
	keep, _ := f.job("track.ogg", "rec1", 100, false)
	f.enqueue(j)
	f.enqueue(keep)
	if err := f.wait("rec1"); err != nil {
		t.Fatal(err)
	}
	f.q.Close(context.Background())
	// The process died after recording the verified upload, before deleting.
	if err := os.WriteFile(j.LocalPath, []byte("still here"), 0o644); err != nil {
		t.Fatal(err)
	}
	db := dbtest.Open(t, f.dbPath)
	if _, err := db.Exec(`UPDATE upload_jobs SET local_deleted = 0 WHERE id = ?`, j.ID); err != nil {
		t.Fatal(err)
	}
	f.start(Options{})
	if _, err := os.Stat(j.LocalPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("uploaded local copy after restart: %v", err)
	}
	if _, err := os.Stat(keep.LocalPath); err != nil {
		t.Fatalf("local copy without DeleteLocalAfter: %v", err)
	}
}

func TestPrune_KeepsPendingJobs(t *testing.T) {
	dbtest.NoLeaks(t)
	p := newFaulty("p")
	f := newFixture(t, p, Options{PermanentRetry: time.Hour})
	done, _ := f.job("done.wav", "rec1", 100, false)
	f.enqueue(done)
	if err := f.wait("rec1"); err != nil {
		t.Fatal(err)
	}
	p.set(func(p *faulty) { p.failAll, p.failCode = true, storage.PermissionDenied })
	stuck, _ := f.job("stuck.wav", "rec2", 100, false)
	f.enqueue(stuck)
	f.res.next(t) // Uploaded
	f.res.next(t) // Failing

	n, err := f.q.Prune(context.Background(), time.Now().Add(time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1", n, err)
	}
	if rs, _ := f.q.Jobs(context.Background(), "rec1"); len(rs) != 0 {
		t.Errorf("pruned job still listed: %+v", rs)
	}
	if rs, _ := f.q.Jobs(context.Background(), "rec2"); len(rs) != 1 || rs[0].Status != Failing {
		t.Errorf("pending job: %+v", rs)
	}
}

// TestQueue_ReplaceUploadsTheNewContent: a job replaced after it was
// uploaded is uploaded again with the new content; a replaced job that
// failed starts again from its first attempt.
func TestQueue_ReplaceUploadsTheNewContent(t *testing.T) {
	dbtest.NoLeaks(t)
	p := newFaulty("p")
	f := newFixture(t, p, Options{})
	j, _ := f.job("chat.json", "rec1", 100, true)
	f.enqueue(j)
	if r := f.res.next(t); r.Status != Uploaded {
		t.Fatalf("first content: %v", r.Status)
	}
	for round, fail := range []bool{false, true} {
		p.set(func(p *faulty) { p.failAll, p.failCode = fail, storage.PermissionDenied })
		path, data := f.file(fmt.Sprintf("chat-%d.json", round), 200+round)
		if err := os.Rename(path, j.LocalPath); err != nil {
			t.Fatal(err)
		}
		if err := f.q.Replace(context.Background(), j); err != nil {
			t.Fatal(err)
		}
		r := f.res.next(t)
		if fail {
			if r.Status != Failing || r.Attempts != 1 {
				t.Fatalf("replaced job on failing storage: %v after %d attempts, want Failing after 1", r.Status, r.Attempts)
			}
			p.set(func(p *faulty) { p.failAll = false })
			if err := f.q.Retry(context.Background(), j.ApplicationID); err != nil {
				t.Fatal(err)
			}
			r = f.res.next(t)
		}
		if r.Status != Uploaded || r.Size != int64(len(data)) || r.SHA256 != sha(data) {
			t.Fatalf("round %d: %v, %d bytes, want Uploaded, %d bytes of the new content", round, r.Status, r.Size, len(data))
		}
		checkObject(t, f.primary, j.Key, data)
		if _, err := os.Stat(j.LocalPath); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("round %d: local copy kept (%v), DeleteLocalAfter is set", round, err)
		}
	}
	if jobs, err := f.q.Jobs(context.Background(), "rec1"); err != nil || len(jobs) != 1 {
		t.Fatalf("jobs %v, %v; want the one job", jobs, err)
	}
}

// TestQueue_RetryAllAndExpected: Expected counts pending jobs not reported
// as failing; RetryAll makes every pending job due at once.
func TestQueue_RetryAllAndExpected(t *testing.T) {
	dbtest.NoLeaks(t)
	p := newFaulty("p")
	p.set(func(p *faulty) { p.failAll, p.failCode = true, storage.PermissionDenied })
	f := newFixture(t, p, Options{PermanentRetry: time.Hour})
	j, data := f.job("mix.wav", "rec1", 100, false)
	f.enqueue(j)
	if r := f.res.next(t); r.Status != Failing {
		t.Fatalf("%v, want Failing", r.Status)
	}
	if n, err := f.q.Expected(context.Background()); err != nil || n != 0 {
		t.Fatalf("Expected = %d, %v; want 0 (the one pending job is failing)", n, err)
	}
	p.set(func(p *faulty) { p.failAll = false })
	if err := f.q.RetryAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := f.res.next(t); r.Status != Uploaded {
		t.Fatalf("after RetryAll: %v, want Uploaded (not an hour later)", r.Status)
	}
	checkObject(t, f.primary, j.Key, data)
}

// TestQueue_FailureLogHoldsNoCredentials: the Azure SDK's transport error
// quotes the blob's URL with the profile's SAS token (a *url.Error). The
// queue's log line and its stored error must not carry the token.
func TestQueue_FailureLogHoldsNoCredentials(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + ln.Addr().String() + "/devstoreaccount1"
	ln.Close() // nothing listens there: every request fails in the transport
	const secret = "sig=TOPSECRETSIGNATURE0123456789"
	p, err := azurestore.New(context.Background(), azurestore.Options{Endpoint: endpoint, Container: "recordings",
		SASToken: "sv=2021-08-06&ss=b&srt=co&sp=rwdlc&se=2099-01-01T00:00:00Z&" + secret, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var logs bytes.Buffer
	f := &fixture{t: t, dir: t.TempDir(), res: newResults()}
	f.dbPath = filepath.Join(f.dir, "recorder.db")
	f.setPrimary(p)
	opts := fast(Options{})
	opts.Logger = slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	opts.Open, opts.OnResult = f.open, f.res.add
	q, err := New(context.Background(), dbtest.Open(t, f.dbPath), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		q.Close(ctx)
	})
	f.q = q
	j, _ := f.job("mix.wav", "rec1", 1000, false)
	f.enqueue(j)
	res := f.res.next(t)
	if res.Err == nil || !strings.Contains(res.Err.Error(), secret) {
		// The premise: the driver's error does quote the token.
		t.Fatalf("the driver's error does not quote the SAS token (%v): the test shows nothing", res.Err)
	}
	mu.Lock()
	text := logs.String()
	mu.Unlock()
	if !strings.Contains(text, "upload: attempt failed") || !strings.Contains(text, ln.Addr().String()) {
		t.Fatalf("the failure is not logged with its URL:\n%s", text)
	}
	if strings.Contains(text, "TOPSECRET") {
		t.Errorf("the log holds the SAS token:\n%s", text)
	}
	var stored string
	if err := dbtest.Open(t, f.dbPath).QueryRow(`SELECT last_error FROM upload_jobs WHERE id = ?`, j.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored == "" || strings.Contains(stored, "TOPSECRET") {
		t.Errorf("stored error %q: want the error without the SAS token", stored)
	}
}

// lockedWriter serializes writes to a buffer shared with the test.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// ordered is a storage.Provider over memstore that logs the key of every
// write as it starts and holds the first one until release is closed.
type ordered struct {
	*memstore.Provider
	release chan struct{}
	mu      sync.Mutex
	keys    []string
}

func (o *ordered) NewWriter(ctx context.Context, key string, opts *storage.WriterOptions) (io.WriteCloser, error) {
	o.mu.Lock()
	o.keys = append(o.keys, key)
	first := len(o.keys) == 1
	o.mu.Unlock()
	if first {
		select {
		case <-o.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return o.Provider.NewWriter(ctx, key, opts)
}

func (o *ordered) started() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.keys...)
}

// TestQueue_ForegroundJobsGoAheadOfBackgroundOnes: one worker, busy with a
// background job (a part uploaded while recording) while four more and then
// two foreground jobs (a stopped recording's outputs) are queued: the
// foreground jobs start next, in their order, then the background ones.
func TestQueue_ForegroundJobsGoAheadOfBackgroundOnes(t *testing.T) {
	dbtest.NoLeaks(t)
	p := &ordered{Provider: memstore.New(memstore.Options{Name: "p"}), release: make(chan struct{})}
	f := newFixture(t, p, Options{Workers: 1})
	var want []string
	queue := func(id string, background bool) {
		j, _ := f.job(id, "rec1", 100, true)
		j.Background = background
		f.enqueue(j)
	}
	queue("part-1", true)
	for deadline := time.Now().Add(10 * time.Second); len(p.started()) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first part's upload did not start")
		}
	}
	for i := 2; i <= 5; i++ {
		queue(fmt.Sprintf("part-%d", i), true)
	}
	queue("mix.wav", false)
	queue("manifest.json", false)
	close(p.release)
	if err := f.wait("rec1"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"part-1", "mix.wav", "manifest.json", "part-2", "part-3", "part-4", "part-5"} {
		want = append(want, "org1/conv/rec1/"+id)
	}
	if got := p.started(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("uploads started in the order\n%v\nwant\n%v", got, want)
	}
	if jobs, err := f.q.Jobs(context.Background(), "rec1"); err != nil || len(jobs) != 7 || !jobs[0].Job.Background || jobs[5].Job.Background {
		t.Errorf("Jobs = %+v, %v: want Background read back", jobs, err)
	}
}

// TestNew_AddsTheBackgroundColumn: a queue made before jobs had a
// background flag gets the column, and the job it left is uploaded.
func TestNew_AddsTheBackgroundColumn(t *testing.T) {
	dbtest.NoLeaks(t)
	dir := t.TempDir()
	db := dbtest.Open(t, filepath.Join(dir, "old.db"))
	old := strings.Replace(schema, ",\n\tbackground     INTEGER NOT NULL DEFAULT 0", "", 1)
	if old == schema {
		t.Fatal("the schema no longer has the background column as this test expects")
	}
	if _, err := db.Exec(old); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "mix.wav")
	if err := os.WriteFile(path, []byte("RIFF"), 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixNano()
	if _, err := db.Exec(`INSERT INTO upload_jobs (id, recording_id, application_id, local_path, key, content_type, metadata, delete_local, enqueued, next_attempt)
		VALUES ('rec1/mix.wav', 'rec1', 'app1', ?, 'org1/rec1/mix.wav', 'audio/wav', '{}', 0, ?, ?)`, path, now, now); err != nil {
		t.Fatal(err)
	}
	mem := storage.NewBucket(memstore.New(memstore.Options{Name: "p"}))
	q, err := New(context.Background(), db, Options{Open: func(string) (*storage.Bucket, error) { return mem, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := q.Wait(ctx, "rec1"); err != nil {
		t.Fatal(err)
	}
	checkObject(t, mem, "org1/rec1/mix.wav", []byte("RIFF"))
}
