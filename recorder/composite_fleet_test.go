package recorder

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rtcrec/recorder/composition/composite"
	"github.com/rtcrec/recorder/internal/pgtest"
	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/recorder/store"
	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/filestore"
)

// fleetManager is an instance of a fleet on the PostgreSQL dsn, with its own
// data directory and the fleet's LOCAL storage in storageDir.
func fleetManager(t *testing.T, dsn, recorderID, fleet, storageDir string, log *eventLog) (*Manager, *fakeAdapter, string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.OpenConfig(ctx, store.Config{Driver: store.DriverPostgres, DSN: dsn, LocalPath: filepath.Join(dir, "local.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := DefaultConfig()
	cfg.DataDir = dir
	cfg.Store.Driver, cfg.Store.DSN = "postgres", dsn
	cfg.Applications = map[string]*Application{"app": {Conference: ConferenceConfig{Kind: "fake"}}}
	cfg.Composite.Fleet = fleet
	fa := &fakeAdapter{sinks: map[string]conference.Sink{}}
	m, err := NewManager(ctx, Options{Config: cfg, Store: st, RecorderID: recorderID, Events: log,
		Adapters: map[string]conference.Adapter{"fake": fa},
		// No polling within a test: a composition instance takes a job
		// because the fleet's notification told it to.
		FleetPoll: time.Hour,
		OpenBucket: func(context.Context, string, *StorageProfile) (*storage.Bucket, error) {
			return filestore.OpenBucket(context.Background(), filestore.Options{Dir: storageDir, CreateDir: true})
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown(context.Background()) })
	return m, fa, dir
}

// TestManager_CompositeOnTheFleetsCompositionInstance: an instance
// configured with composite.fleet: send records and hands its composite to
// the fleet; the instance configured with take (which records nothing)
// makes it from the stored files: PENDING from the first, PROCESSING and
// COMPLETED from the second, composite.mp4 uploaded with size and checksum,
// nothing composed or kept by the first, the job gone afterwards. The
// composition instance does not poll (FleetPoll is an hour): it takes the
// job on the fleet's notification (LISTEN/NOTIFY).
func TestManager_CompositeOnTheFleetsCompositionInstance(t *testing.T) {
	testenv.LookPath(t, "ffmpeg")
	dsn := pgtest.Start(t).NewDatabase(t)
	storageDir := filepath.Join(t.TempDir(), "storage")
	bucket := storeOf(t, filepath.Dir(storageDir))
	var logA, logB eventLog
	a, fa, dirA := fleetManager(t, dsn, "rec1", CompositeFleetSend, storageDir, &logA)
	b, _, dirB := fleetManager(t, dsn, "rec2", CompositeFleetTake, storageDir, &logB)

	rec := recordTone(t, a, fa, &composite.Settings{Layout: "grid", Width: 320, Height: 180, FPS: 5})
	done := waitComposition(t, b, rec.InstanceID, CompositionCompleted)
	checkComposite(t, bucket, done, "grid")
	if got := logA.compositions(); !slices.Equal(got, []string{"composition.pending"}) {
		t.Errorf("events of the recording instance %v, want only composition.pending", got)
	}
	if got := logB.compositions(); !slices.Equal(got, []string{"composition.processing", "composition.completed"}) {
		t.Errorf("events of the composition instance %v, want processing, completed", got)
	}
	if _, err := os.Stat(filepath.Join(dirA, "compositions", rec.InstanceID)); !os.IsNotExist(err) {
		t.Errorf("the recording instance kept files for a composite it does not make: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dirB, "compositions", rec.InstanceID)); !os.IsNotExist(err) {
		t.Errorf("the composition instance left its working directory: %v", err)
	}
	// Seen from the recording instance too (the shared store).
	if r, err := a.Get(context.Background(), "org", "c", "rec1", rec.InstanceID); err != nil || r.Composition.State != CompositionCompleted {
		t.Errorf("from the recording instance: %+v %v", r, err)
	}
	// The job is gone: nothing left to claim.
	if id, err := b.store.ClaimComposite(context.Background(), "rec3", b.now(), fleetLease); err != nil || id != "" {
		t.Errorf("a job is left: %q %v", id, err)
	}
	if pending, err := a.composites.Pending(context.Background()); err != nil || len(pending) != 0 {
		t.Errorf("the recording instance's own queue: %v %v", pending, err)
	}
}
