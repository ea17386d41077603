package recorder

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/recorder/store"
	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/memstore"
)

// deniedProvider refuses every write as Unauthenticated (a wrong secret)
// while fixed is false (all the time when fixed is nil).
type deniedProvider struct {
	storage.Provider
	fixed *atomic.Bool
}

func (d deniedProvider) NewWriter(ctx context.Context, key string, opts *storage.WriterOptions) (io.WriteCloser, error) {
	if d.fixed != nil && d.fixed.Load() {
		return d.Provider.NewWriter(ctx, key, opts)
	}
	return nil, &storage.Error{Code: storage.Unauthenticated, Op: "write", Err: errors.New("wrong credentials")}
}

// TestManager_BackupProfileTakesFailedUploads: the primary profile refuses
// every write (Unauthenticated); with backupStorage and backupAfter 1 every
// output goes to the backup bucket, the recording ends STOPPED and each
// object's location names the backup.
func TestManager_BackupProfileTakesFailedUploads(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Uploads = config.UploadConfig{MinBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	cfg.Applications = map[string]*config.Application{"app": {Conference: config.ConferenceConfig{Kind: "fake"},
		Storage:       &config.StorageProfile{Provider: config.ProviderS3, Bucket: "primary"},
		BackupStorage: &config.StorageProfile{Provider: config.ProviderLocal, Bucket: "backup"}, BackupAfter: 1}}
	fa := &fakeAdapter{sinks: map[string]conference.Sink{}}
	primary := storage.NewBucket(deniedProvider{Provider: memstore.New(memstore.Options{Name: "primary"})})
	backup := storage.NewBucket(memstore.New(memstore.Options{Name: "backup"}))
	m, err := NewManager(ctx, Options{Config: cfg, Store: st, RecorderID: "rec1",
		Adapters: map[string]conference.Adapter{"fake": fa},
		OpenBucket: func(_ context.Context, _ string, p *config.StorageProfile) (*storage.Bucket, error) {
			if p.Bucket == "backup" {
				return backup, nil
			}
			return primary, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown(context.Background()) })
	rec, err := m.Start(ctx, "org", StartRequest{ApplicationID: "app", ConferenceID: "f", ConversationID: "c", Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	tr, ft := newTrack("f", "u1")
	fa.sink("f").AddTrack(tr)
	ft.send(&synth.Tone{Freq: 440, Amplitude: 8000}, 500*time.Millisecond)
	defer close(ft.ch)
	got, err := m.Stop(ctx, "org", "c", "rec1", rec.InstanceID)
	if err != nil || got.State != StateStopped || got.Error != nil {
		t.Fatalf("Stop = %+v (error %+v), %v", got.State, got.Error, err)
	}
	var locs []string
	got.objects(func(rel string, o **ObjectFile) {
		if *o == nil {
			return
		}
		locs = append(locs, (*o).Location)
		if (*o).Error != nil || !strings.HasPrefix((*o).Location, "mem://backup/") || (*o).Size == 0 {
			t.Errorf("%s: %+v, want it uploaded to mem://backup", rel, *o)
		}
	})
	if len(locs) != 3 { // track, mix, manifest
		t.Errorf("objects %v, want the track, the mix and the manifest", locs)
	}
	for _, l := range locs {
		key := strings.TrimPrefix(l, "mem://backup/")
		if a, err := backup.Attributes(ctx, key); err != nil || a.Size == 0 {
			t.Errorf("backup object %s: %+v, %v", key, a, err)
		}
	}
}

// refusingRecording starts a recording of a 440 Hz tone on a Manager whose
// storage refuses every write while fixed is false (it starts as given) and
// sends d of the tone; the caller stops it.
func refusingRecording(t *testing.T, works bool, d time.Duration) (*Manager, *Recording, *atomic.Bool, *storage.Bucket) {
	t.Helper()
	m, fa, _ := newTestManager(t)
	fixed := new(atomic.Bool)
	fixed.Store(works)
	bucket := storage.NewBucket(deniedProvider{memstore.New(memstore.Options{Name: "primary"}), fixed})
	m.bucketMu.Lock()
	m.buckets["app"] = bucket
	m.bucketMu.Unlock()
	rec, err := m.Start(context.Background(), "org", StartRequest{ApplicationID: "app", ConferenceID: "f", ConversationID: "c", Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	tr, ft := newTrack("f", "u1")
	fa.sink("f").AddTrack(tr)
	ft.send(&synth.Tone{Freq: 440, Amplitude: 8000}, d)
	t.Cleanup(func() { close(ft.ch) })
	return m, rec, fixed, bucket
}

// TestManager_VerifyRetriesFailedUploads: uploads refused by the profile
// make the recording FAILED upload_failed with the error on each object;
// once the profile works, a successful Verify retries them at once (the
// slow permanent-error timer is 10 minutes) and the recording becomes
// STOPPED with every object uploaded and its local copy removed.
func TestManager_VerifyRetriesFailedUploads(t *testing.T) {
	ctx := context.Background()
	m, rec, fixed, _ := refusingRecording(t, false, 500*time.Millisecond)
	got, err := m.Stop(ctx, "org", "c", "rec1", rec.InstanceID)
	if err != nil || got.State != StateFailed || got.Error == nil || got.Error.Code != "upload_failed" || !got.UploadsPending() {
		t.Fatalf("Stop with a refusing profile = %s %+v (pending %v), %v", got.State, got.Error, got.UploadsPending(), err)
	}
	if o := got.Streams[0].Tracks[0].Object; o == nil || o.Error == nil || o.Error.Code != "Unauthenticated" || o.SHA256 == "" {
		t.Errorf("track object %+v, want the Unauthenticated error and the local checksum", o)
	}
	fixed.Store(true)
	if res, err := m.Verify(ctx, "app"); err != nil || !res.OK() {
		t.Fatalf("Verify = %+v, %v", res, err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got, _ = m.Get(ctx, "org", "c", "rec1", rec.InstanceID); got.State == StateStopped {
			break
		}
	}
	if got.State != StateStopped || got.Error != nil || got.UploadsPending() {
		t.Fatalf("after the fix and Verify: %s %+v, pending %v", got.State, got.Error, got.UploadsPending())
	}
	got.objects(func(rel string, o **ObjectFile) {
		if *o != nil && ((*o).Error != nil || (*o).Uploaded.IsZero()) {
			t.Errorf("%s: %+v", rel, *o)
		}
	})
	if fileExists(got.Dir) {
		t.Errorf("local copy %s kept after every upload was verified", got.Dir)
	}
}

// TestManager_StoppedOnlyWithEveryObjectVerified is the race behind the
// flaky TestManager_VerifyRetriesFailedUploads, made certain: the queue
// records an upload before it delivers the result, so the result of one
// job can arrive after the last job of the recording is recorded. Here the
// first upload result after the fix is held back; the recording may become
// STOPPED meanwhile (every job is verified), but only with no object still
// showing its upload error.
func TestManager_StoppedOnlyWithEveryObjectVerified(t *testing.T) {
	ctx := context.Background()
	m, rec, fixed, _ := refusingRecording(t, false, 500*time.Millisecond)
	release := make(chan struct{})
	var held atomic.Bool
	m.hooks.Upload = func(_, outcome string) { // no upload succeeds before the fix below
		if outcome == "uploaded" && held.CompareAndSwap(false, true) {
			<-release // this job's result reaches the recording last
		}
	}
	if got, err := m.Stop(ctx, "org", "c", "rec1", rec.InstanceID); err != nil || got.State != StateFailed {
		t.Fatalf("Stop with a refusing profile = %s, %v", got.State, err)
	}
	fixed.Store(true)
	if err := m.RetryUploads(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	var got *Recording
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got, _ = m.Get(ctx, "org", "c", "rec1", rec.InstanceID); got.State == StateStopped {
			break
		}
	}
	close(release)
	if got.State != StateStopped {
		t.Fatalf("not STOPPED with every upload verified and one result held back: %s %+v", got.State, got.Error)
	}
	if got.UploadsPending() {
		got.objects(func(rel string, o **ObjectFile) {
			if *o != nil && (*o).Error != nil {
				t.Errorf("STOPPED with %s still showing %+v", rel, (*o).Error)
			}
		})
	}
}

// TestManager_LateChatGoesThroughTheQueue: chat added after the recording
// ended is uploaded through the upload queue: refused by the profile, its
// object shows the error and the queue retries it; once the profile works
// the object is verified and holds the whole transcript.
func TestManager_LateChatGoesThroughTheQueue(t *testing.T) {
	ctx := context.Background()
	m, rec, fixed, bucket := refusingRecording(t, true, 300*time.Millisecond)
	if got, err := m.Stop(ctx, "org", "c", "rec1", rec.InstanceID); err != nil || got.State != StateStopped {
		t.Fatalf("Stop = %s, %v", got.State, err)
	}
	fixed.Store(false)
	entry := func(s string) []ChatEntry {
		return []ChatEntry{{TimeStamp: time.Now().UTC(), Transcript: s, UserID: "u1"}}
	}
	got, err := m.AddChat(ctx, "org", "c", "rec1", rec.InstanceID, entry("late one"))
	if err != nil {
		t.Fatal(err)
	}
	if o := got.Uploads[ChatFile]; o == nil || o.Error == nil || o.Error.Code != "Unauthenticated" {
		t.Fatalf("chat object on a refusing profile: %+v, want its Unauthenticated error", o)
	}
	if got, err = m.AddChat(ctx, "org", "c", "rec1", rec.InstanceID, entry("late two")); err != nil {
		t.Fatal(err)
	}
	fixed.Store(true)
	if err := m.RetryUploads(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	var o *ObjectFile
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		got, _ = m.Get(ctx, "org", "c", "rec1", rec.InstanceID)
		if o = got.Uploads[ChatFile]; o != nil && o.Error == nil && !o.Uploaded.IsZero() {
			break
		}
	}
	if o == nil || o.Error != nil || o.Uploaded.IsZero() {
		t.Fatalf("chat object after the fix: %+v", o)
	}
	data, err := bucket.ReadAll(ctx, o.Key)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "late one") || !strings.Contains(string(data), "late two") || int64(len(data)) != o.Size {
		t.Errorf("chat.json in storage (%d bytes, object says %d): %s", len(data), o.Size, data)
	}
	if fileExists(got.Dir) {
		t.Errorf("local directory %s left behind by the late upload", got.Dir)
	}
}

// heldParts is a storage.Provider over memstore that logs the key of every
// write as it starts and holds the writes of parts until release is closed.
type heldParts struct {
	storage.Provider
	release chan struct{}
	mu      sync.Mutex
	keys    []string
}

func (h *heldParts) NewWriter(ctx context.Context, key string, opts *storage.WriterOptions) (io.WriteCloser, error) {
	h.mu.Lock()
	h.keys = append(h.keys, key)
	h.mu.Unlock()
	if strings.Contains(key, "/"+chunkPrefix) {
		select {
		case <-h.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return h.Provider.NewWriter(ctx, key, opts)
}

func (h *heldParts) started() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.keys...)
}

// TestManager_StopUploadsAheadOfThePartsBacklog: a recorder whose storage
// takes the parts it uploads while recording slower than it cuts them (a
// recorder far past its capacity, issue 10's case 5) has a backlog of parts
// queued when a recording stops. The stop queues its outputs at once (every
// track file and the mix), and they are uploaded ahead of every part queued
// before them: the stop waits for its own files, not for the backlog of
// every recording. Before, the outputs were queued one after another, each
// behind the whole backlog (a stop at N=400 did not answer in 60 s).
func TestManager_StopUploadsAheadOfThePartsBacklog(t *testing.T) {
	held := &heldParts{Provider: memstore.New(memstore.Options{Name: "test"}), release: make(chan struct{})}
	bucket := storage.NewBucket(held)
	const workers = 2 // uploads in flight at once (the default)
	m, fa, _ := newTestManager(t, func(o *Options) {
		o.OpenBucket = func(context.Context, string, *config.StorageProfile) (*storage.Bucket, error) { return bucket, nil }
		o.Config.Uploads.Workers = workers
	})
	released := sync.OnceFunc(func() { close(held.release) })
	t.Cleanup(released) // before the Manager's shutdown, which waits for the uploads
	m.cfg.Uploads.ChunkInterval = 100 * time.Millisecond
	ctx := context.Background()
	rec, err := m.Start(ctx, "org", StartRequest{ApplicationID: "app", ConferenceID: "f", ConversationID: "c", Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	var fts []*fakeTrack
	for _, u := range []string{"u1", "u2"} {
		tr, ft := newTrack("f", u)
		fa.sink("f").AddTrack(tr)
		fts = append(fts, ft)
		defer close(ft.ch)
	}
	// 1 s of a tone on both tracks, until at least 8 parts wait behind the
	// two held ones.
	tone := &synth.Tone{Freq: 440, Amplitude: 8000}
	start := time.Now()
	for sent := 0; ; sent++ {
		time.Sleep(time.Until(start.Add(time.Duration(sent) * 20 * time.Millisecond)))
		for _, ft := range fts {
			ft.send(tone, 20*time.Millisecond) // one packet
		}
		n, _, err := m.up.q.Pending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n >= 10 && sent >= 50 {
			break
		}
		if sent > 50*60 {
			t.Fatalf("after %d packets only %d parts queued", sent, n)
		}
	}
	before, _, _ := m.up.q.Pending(ctx)

	stopped := stopInBackground(ctx, t, m, rec.InstanceID)
	// The stop queues every track file and the mix at once: wait for them.
	var outputs []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		jobs, err := m.up.q.Jobs(ctx, rec.InstanceID)
		if err != nil {
			t.Fatal(err)
		}
		outputs = outputs[:0]
		for _, j := range jobs {
			if !isPart(j.Job) {
				outputs = append(outputs, j.Job.Key)
			}
		}
		if len(outputs) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the stop, with %d parts ahead, the outputs queued are %v: want both track files and the mix", before, outputs)
		}
	}
	inFlight := len(held.started()) // parts, held
	released()
	var r *Recording
	select {
	case r = <-stopped:
	case <-time.After(60 * time.Second):
		t.Fatal("the stop did not answer within 60 s of the parts' release")
	}
	if r == nil || r.State != StateStopped || r.Error != nil {
		t.Fatalf("stopped as %+v", r)
	}
	r.objects(func(rel string, o **ObjectFile) {
		if *o == nil || (*o).Error != nil || (*o).Uploaded.IsZero() {
			t.Errorf("%s: %+v, want it uploaded", rel, *o)
		}
	})
	// The parts in flight when the stop came (held) finish first; then the
	// outputs queued at once start, before any part queued before them. An
	// attempt begins its write a moment after it starts, and attempts that
	// run at once begin theirs in any order: the last output starts before
	// any part, but a part started while it runs (in one of the other
	// workers - 1 slots) may begin its write first (under load, seen: the
	// part 0.1 ms before the mix, started on the worker the track before it
	// freed). So every output begins its write among the first outputs +
	// workers - 1 writes after the release, and at most workers - 1 parts
	// before the last output's.
	keys := held.started()
	after := keys[inFlight:]
	if len(after) < len(outputs) {
		t.Fatalf("writes after the release %v, want at least the outputs %v", after, outputs)
	}
	first := after[:min(len(after), len(outputs)+workers-1)]
	for _, o := range outputs {
		if !slices.Contains(first, o) {
			t.Errorf("the output %s did not begin its write among the first %d after the release %v (outputs %v): parts started before it", o, len(first), after, outputs)
		}
	}
	t.Logf("%d parts pending at the stop, %d in flight; the writes after their release: %v", before, inFlight, after[:min(len(after), len(outputs)+3)])
}
