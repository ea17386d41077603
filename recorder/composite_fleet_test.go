package recorder

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/composition/composite"
	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/internal/pgtest"
	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/recorder/store"
	"github.com/rtcrec/recorder/recorder/upload"
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
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Store.Driver, cfg.Store.DSN = "postgres", dsn
	cfg.Applications = map[string]*config.Application{"app": {Conference: config.ConferenceConfig{Kind: "fake"}}}
	cfg.Composite.Fleet = fleet
	fa := &fakeAdapter{sinks: map[string]conference.Sink{}}
	m, err := NewManager(ctx, Options{Config: cfg, Store: st, RecorderID: recorderID, Events: log,
		Adapters: map[string]conference.Adapter{"fake": fa},
		// No polling within a test: a composition instance takes a job
		// because the fleet's notification told it to.
		FleetPoll: time.Hour,
		OpenBucket: func(context.Context, string, *config.StorageProfile) (*storage.Bucket, error) {
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
	a, fa, dirA := fleetManager(t, dsn, "rec1", config.CompositeFleetSend, storageDir, &logA)
	b, _, dirB := fleetManager(t, dsn, "rec2", config.CompositeFleetTake, storageDir, &logB)

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

// TestManager_FleetInstancesTakeTurnsOnARecording: the composition instance
// changes a stored recording (as it does to record its composite) while the
// instance that made it applies an upload result that came late to the
// same recording: the second waits for the first (the row is held) and both
// changes are kept. Without the store's row lock the composition instance's
// write, made from what it read before, loses the upload result.
func TestManager_FleetInstancesTakeTurnsOnARecording(t *testing.T) {
	dsn := pgtest.Start(t).NewDatabase(t)
	storageDir := filepath.Join(t.TempDir(), "storage")
	var logA, logB eventLog
	a, fa, _ := fleetManager(t, dsn, "rec1", config.CompositeFleetSend, storageDir, &logA)
	b, _, _ := fleetManager(t, dsn, "rec2", config.CompositeFleetTake, storageDir, &logB)
	rec := recordTone(t, a, fa, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var late upload.Result
	jobs, err := a.up.q.Jobs(ctx, rec.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		if strings.HasSuffix(j.Job.ID, "/"+composition.MixFile) && j.Status == upload.Uploaded {
			late = j
		}
	}
	if late.Job.ID == "" {
		t.Fatalf("no uploaded mix among %d jobs", len(jobs))
	}
	late.Uploaded = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC) // the late result, recognisable

	read, release := make(chan struct{}), make(chan struct{})
	bDone, aDone := make(chan error, 1), make(chan error, 1)
	go func() {
		_, _, err := b.modifyStored(ctx, "org", rec.InstanceID, func(r *Recording) error {
			close(read) // B read the recording; it writes once released
			<-release
			r.Metadata = map[string]string{"composedBy": "rec2"}
			return nil
		})
		bDone <- err
	}()
	<-read
	go func() { aDone <- a.applyLateResult(ctx, late) }()
	// A waits for B's row lock (seen in pg_stat_activity), or, with nothing
	// to wait for, finishes first: then B's write loses A's change.
	pg, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	for waiting := false; !waiting; {
		var n int
		if err := pg.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		waiting = n > 0
		select {
		case err := <-aDone:
			aDone <- err
			waiting = true
		case <-ctx.Done():
			t.Fatal("A neither waits nor finishes")
		default:
		}
	}
	close(release)
	if err := <-bDone; err != nil {
		t.Fatal(err)
	}
	if err := <-aDone; err != nil {
		t.Fatal(err)
	}
	got, err := a.Get(ctx, "org", "c", "rec1", rec.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Metadata["composedBy"] != "rec2" {
		t.Errorf("the composition instance's change is lost: metadata %v", got.Metadata)
	}
	var mix *ObjectFile
	got.objects(func(rel string, o **ObjectFile) {
		if rel == composition.MixFile {
			mix = *o
		}
	})
	if mix == nil || !mix.Uploaded.Equal(late.Uploaded) {
		t.Errorf("the late upload result is lost: mix %+v", mix)
	}
}
