package recorder

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
	cfg := DefaultConfig()
	cfg.DataDir = dir
	cfg.Uploads = UploadConfig{MinBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	cfg.Applications = map[string]*Application{"app": {Conference: ConferenceConfig{Kind: "fake"},
		Storage:       &StorageProfile{Provider: ProviderS3, Bucket: "primary"},
		BackupStorage: &StorageProfile{Provider: ProviderLocal, Bucket: "backup"}, BackupAfter: 1}}
	fa := &fakeAdapter{sinks: map[string]conference.Sink{}}
	primary := storage.NewBucket(deniedProvider{Provider: memstore.New(memstore.Options{Name: "primary"})})
	backup := storage.NewBucket(memstore.New(memstore.Options{Name: "backup"}))
	m, err := NewManager(ctx, Options{Config: cfg, Store: st, RecorderID: "rec1",
		Adapters: map[string]conference.Adapter{"fake": fa},
		OpenBucket: func(_ context.Context, _ string, p *StorageProfile) (*storage.Bucket, error) {
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

// TestManager_VerifyRetriesFailedUploads: uploads refused by the profile
// make the recording FAILED upload_failed with the error on each object;
// once the profile works, a successful Verify retries them at once (the
// slow permanent-error timer is 10 minutes) and the recording becomes
// STOPPED with every object uploaded and its local copy removed.
func TestManager_VerifyRetriesFailedUploads(t *testing.T) {
	m, fa, _ := newTestManager(t)
	ctx := context.Background()
	var fixed atomic.Bool
	m.bucketMu.Lock()
	m.buckets["app"] = storage.NewBucket(deniedProvider{memstore.New(memstore.Options{Name: "primary"}), &fixed})
	m.bucketMu.Unlock()
	rec, err := m.Start(ctx, "org", StartRequest{ApplicationID: "app", ConferenceID: "f", ConversationID: "c", Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	tr, ft := newTrack("f", "u1")
	fa.sink("f").AddTrack(tr)
	ft.send(&synth.Tone{Freq: 440, Amplitude: 8000}, 500*time.Millisecond)
	defer close(ft.ch)
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
