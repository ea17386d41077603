package recorder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtcrec/recorder/composition/composite"
	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/recorder/events"
	"github.com/rtcrec/recorder/recorder/store"
	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/filestore"
)

// eventLog is a Publisher that keeps the events' types in order.
type eventLog struct {
	mu    sync.Mutex
	types []string
}

func (l *eventLog) Publish(_ context.Context, ev events.Event) (events.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.types = append(l.types, string(ev.Type))
	return ev, nil
}

func (l *eventLog) compositions() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, t := range l.types {
		if strings.HasPrefix(t, "composition.") {
			out = append(out, t)
		}
	}
	return out
}

// compositeManager is a Manager on dir (its database and data) and the
// LOCAL storage in dir/storage (a bucket of its own: Shutdown closes it).
func compositeManager(t *testing.T, dir string, ffmpeg string, log *eventLog) (*Manager, *fakeAdapter) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := os.MkdirAll(filepath.Join(dir, "storage"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Applications = map[string]*config.Application{"app": {Conference: config.ConferenceConfig{Kind: "fake"}}}
	cfg.Composite.FFmpeg = ffmpeg
	fa := &fakeAdapter{sinks: map[string]conference.Sink{}}
	m, err := NewManager(ctx, Options{Config: cfg, Store: st, RecorderID: "rec1", Events: log,
		Adapters: map[string]conference.Adapter{"fake": fa},
		OpenBucket: func(context.Context, string, *config.StorageProfile) (*storage.Bucket, error) {
			return filestore.OpenBucket(context.Background(), filestore.Options{Dir: filepath.Join(dir, "storage"), CreateDir: true})
		}})
	if err != nil {
		t.Fatal(err)
	}
	return m, fa
}

// storeOf is the test's view of the storage of compositeManager(dir).
func storeOf(t *testing.T, dir string) *storage.Bucket {
	os.MkdirAll(filepath.Join(dir, "storage"), 0o755)
	b, err := filestore.OpenBucket(context.Background(), filestore.Options{Dir: filepath.Join(dir, "storage"), CreateDir: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// recordTone records 1.5 s of a participant's tone with settings s and stops.
func recordTone(t *testing.T, m *Manager, fa *fakeAdapter, s *composite.Settings) *Recording {
	t.Helper()
	ctx := context.Background()
	rec, err := m.Start(ctx, "org", StartRequest{ApplicationID: "app", ConferenceID: "f", ConversationID: "c", Audio: true, Composite: s})
	if err != nil {
		t.Fatal(err)
	}
	tr, ft := newTrack("f", "alice")
	fa.sink("f").AddTrack(tr)
	ft.send(&synth.Tone{Freq: 440, Amplitude: 8000}, 1500*time.Millisecond)
	got, err := m.Stop(ctx, "org", "c", "rec1", rec.InstanceID)
	close(ft.ch)
	if err != nil || got.State != StateStopped {
		t.Fatalf("Stop = %+v, %v", got, err)
	}
	return got
}

// waitComposition waits for the composition of id to reach state.
func waitComposition(t *testing.T, m *Manager, id string, state CompositionState) *Recording {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute) // ffmpeg at nice 10 on a loaded machine
	for {
		r, err := m.Get(context.Background(), "org", "c", "rec1", id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Composition != nil && r.Composition.State == state {
			return r
		}
		if r.Composition != nil && r.Composition.State == CompositionFailed {
			t.Fatalf("composition FAILED: %+v", r.Composition.Error)
		}
		if time.Now().After(deadline) {
			t.Fatalf("composition %+v, want %s", r.Composition, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkComposite checks that the composite output is uploaded with its
// size and checksum, and is an MP4 of the layout.
func checkComposite(t *testing.T, bucket *storage.Bucket, r *Recording, layout string) {
	t.Helper()
	var out *Output
	for i, o := range r.Composition.Outputs {
		if o.File == composite.File {
			out = &r.Composition.Outputs[i]
		}
	}
	if out == nil || out.Object == nil || out.Object.Error != nil || out.Type != "VIDEO" || out.Format != "mp4" || out.Layout != layout {
		t.Fatalf("composite output %+v", out)
	}
	data, err := bucket.ReadAll(context.Background(), out.Object.Key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if int64(len(data)) != out.Object.Size || hex.EncodeToString(sum[:]) != out.Object.SHA256 || out.Object.Key != r.Storage.Prefix+composite.File {
		t.Errorf("stored %d bytes %x under %s; output says %d bytes %s under %s", len(data), sum, r.Storage.Prefix+composite.File,
			out.Object.Size, out.Object.SHA256, out.Object.Key)
	}
	if len(data) < 8 || string(data[4:8]) != "ftyp" {
		t.Errorf("composite.mp4 is not an MP4")
	}
	if out.Duration < 1.2 || out.Duration > 2.5 || out.Width != 320 || out.Height != 180 {
		t.Errorf("composite %+v: want about 1.5 s at 320x180", out)
	}
}

// TestManager_Composite: asked for at start, the composite goes PENDING,
// PROCESSING, COMPLETED (each an event), is uploaded with size and
// checksum; asked for again afterwards (its local files gone: downloaded
// from storage) with another layout, it is made again.
func TestManager_Composite(t *testing.T) {
	testenv.LookPath(t, "ffmpeg")
	dir := t.TempDir()
	bucket := storeOf(t, dir)
	log := &eventLog{}
	m, fa := compositeManager(t, dir, "", log)
	defer m.Shutdown(context.Background())
	ctx := context.Background()

	if _, err := m.Start(ctx, "org", StartRequest{ApplicationID: "app", ConferenceID: "f", ConversationID: "c",
		Composite: &composite.Settings{Layout: "diagonal"}}); KindOf(err) != KindInvalid || !strings.Contains(err.Error(), `layout "diagonal"`) {
		t.Fatalf("start with a bad layout: %v", err)
	}
	rec := recordTone(t, m, fa, &composite.Settings{Layout: "grid", Width: 320, Height: 180, FPS: 5})
	if st := rec.Composition.State; st != CompositionPending && st != CompositionProcessing && st != CompositionCompleted {
		t.Errorf("composition %s right after stop", st)
	}
	done := waitComposition(t, m, rec.InstanceID, CompositionCompleted)
	checkComposite(t, bucket, done, "grid")
	// The event follows the stored state (Manager.modify publishes what it
	// stored): seen COMPLETED, the event may still be on its way.
	for deadline := time.Now().Add(10 * time.Second); len(log.compositions()) < 3 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got, want := log.compositions(), []string{"composition.pending", "composition.processing", "composition.completed"}; !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	if _, err := os.Stat(m.compositeDir(rec.InstanceID)); !os.IsNotExist(err) {
		t.Errorf("composite working directory left behind: %v", err)
	}
	if _, err := os.Stat(rec.Dir); !os.IsNotExist(err) {
		t.Fatalf("the recording's local files are still there (%v): the next composite would not download", err)
	}

	// Again, afterwards, as the speaker layout: from the stored files.
	again, err := m.RequestComposite(ctx, "org", "c", "rec1", rec.InstanceID, &composite.Settings{Layout: "speaker", Width: 320, Height: 180, FPS: 5})
	if err != nil {
		t.Fatal(err)
	}
	if again.Composition.State != CompositionPending {
		t.Errorf("requested: composition %s, want PENDING", again.Composition.State)
	}
	if _, err := m.RequestComposite(ctx, "org", "c", "rec1", rec.InstanceID, nil); err != nil && KindOf(err) != KindConflict {
		t.Errorf("a second request while pending: %v, want a conflict or nothing (if it completed already)", err)
	}
	done = waitComposition(t, m, rec.InstanceID, CompositionCompleted)
	checkComposite(t, bucket, done, "speaker")
	if n := len(done.Composition.Outputs); n != 2 {
		t.Errorf("%d outputs, want the mix and one composite", n)
	}
	if _, err := m.RequestComposite(ctx, "org", "c", "rec1", rec.InstanceID, &composite.Settings{Layout: "single"}); KindOf(err) != KindInvalid {
		t.Errorf("single without userId: %v, want invalid", err)
	}
	if _, err := m.RequestComposite(ctx, "org2", "c", "rec1", rec.InstanceID, nil); KindOf(err) != KindNotFound {
		t.Errorf("another tenant's request: %v, want not found", err)
	}
}

// TestManager_CompositeSurvivesRestart: a composite cut by a shutdown while
// ffmpeg runs is made by the next process.
func TestManager_CompositeSurvivesRestart(t *testing.T) {
	testenv.LookPath(t, "ffmpeg")
	dir := t.TempDir()
	bucket := storeOf(t, dir)
	stuck := filepath.Join(t.TempDir(), "ffmpeg")
	if err := os.WriteFile(stuck, []byte("#!/bin/sh\nexec sleep 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	log := &eventLog{}
	m, fa := compositeManager(t, dir, stuck, log)
	rec := recordTone(t, m, fa, &composite.Settings{Width: 320, Height: 180, FPS: 5})
	waitComposition(t, m, rec.InstanceID, CompositionProcessing)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	m2, _ := compositeManager(t, dir, "", log)
	defer m2.Shutdown(context.Background())
	done := waitComposition(t, m2, rec.InstanceID, CompositionCompleted)
	checkComposite(t, bucket, done, "grid")
}

// TestManager_CompositeApplicationDefaultAndFailure: a recording of an
// application whose configuration asks for a composite gets one without
// asking; when ffmpeg fails the composition goes PENDING, PROCESSING,
// FAILED (each an event) with the reason's code and message, and the
// recording itself is not failed.
func TestManager_CompositeApplicationDefaultAndFailure(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(t.TempDir(), "ffmpeg")
	if err := os.WriteFile(broken, []byte("#!/bin/sh\necho 'Invalid data found when processing input' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	log := &eventLog{}
	m, fa := compositeManager(t, dir, broken, log)
	defer m.Shutdown(context.Background())
	m.cfg.Applications["app"].Composite = &composite.Settings{Layout: "speaker", Width: 320, Height: 180, FPS: 5} // before any recording

	rec := recordTone(t, m, fa, nil)
	if rec.Composite == nil || rec.Composite.Layout != "speaker" || rec.Composite.Width != 320 || rec.Composition == nil {
		t.Fatalf("composite %+v, composition %+v: want the application's default", rec.Composite, rec.Composition)
	}
	failed := waitComposition(t, m, rec.InstanceID, CompositionFailed)
	if e := failed.Composition.Error; e == nil || e.Code != CodeCompositeFailed || !strings.Contains(e.Message, "composite") || e.Occurred.IsZero() {
		t.Errorf("composition error %+v, want %s with a message", e, CodeCompositeFailed)
	}
	if failed.State != StateStopped || failed.Error != nil {
		t.Errorf("recording %s %+v: a failed composite fails no recording", failed.State, failed.Error)
	}
	if got, want := log.compositions(), []string{"composition.pending", "composition.processing", "composition.failed"}; !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
}
