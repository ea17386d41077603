package recorder

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/recorder/store"
	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/memstore"
)

// deniedProvider refuses every write as Unauthenticated (a wrong secret).
type deniedProvider struct{ storage.Provider }

func (deniedProvider) NewWriter(context.Context, string, *storage.WriterOptions) (io.WriteCloser, error) {
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
	primary := storage.NewBucket(deniedProvider{memstore.New("primary", nil)})
	backup := memstore.NewBucket("backup")
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
