package recorder

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/recorder/upload"
	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/memstore"
)

// TestTranscript_DiscardSparesTheFilesBeingUploaded: a recording that ends
// without media uploads its chat and cobrowse files before it is final
// (attachFinal), and discard then removes its local directory; a chat line
// added once it is final makes chat.json again while discard runs. The
// interleaving CI met is forced: discard reaches its removal just after
// chat.json's new content was written beside it, and the write goes on only
// once the directory is gone or the removal waits for it. Every file is
// uploaded with every entry, and the directory is gone in the end.
func TestTranscript_DiscardSparesTheFilesBeingUploaded(t *testing.T) {
	m, _, _ := newTestManager(t)
	ctx := context.Background()
	rec := startRecording(t, m, "c")
	t0 := time.Date(2026, 12, 6, 1, 0, 0, 0, time.UTC)
	var want []string
	chat := func(i int) {
		e := ChatEntry{TimeStamp: t0.Add(time.Duration(i) * time.Second), Transcript: fmt.Sprint("line ", i), UserID: "u1"}
		if _, err := m.AddChat(ctx, "org", "c", rec.RecorderID, rec.InstanceID, []ChatEntry{e}); err != nil {
			t.Fatal(err)
		}
		want = append(want, e.Transcript)
	}
	for i := range 3 {
		chat(i)
	}
	for i := range 4 {
		ev := CobrowseEvent{SessionID: fmt.Sprint("s", i%2), SequenceID: int32(i / 2), Payload: "p", Timestamp: int64(i)}
		if _, err := m.AddCobrowse(ctx, "org", "c", rec.RecorderID, rec.InstanceID, ev); err != nil {
			t.Fatal(err)
		}
	}
	written := make(chan struct{})
	var armed atomic.Bool // the stop's own uploads pass; the add after it is held
	m.testPoints.lateWritten = func(r *Recording, rel string) {
		if !armed.CompareAndSwap(true, false) {
			return
		}
		if rel != ChatFile {
			t.Errorf("late file %s, want %s", rel, ChatFile)
		}
		close(written)
		tmp := filepath.Join(r.Dir, filepath.FromSlash(rel)+".tmp")
		for deadline := time.Now().Add(time.Minute); fileExists(tmp) && !m.dirLocks.contended(r.InstanceID); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Error("discard neither removed the directory nor waited for the write")
				return
			}
		}
	}
	m.testPoints.discarding = func(id string) {
		select {
		case <-written:
		case <-time.After(time.Minute):
			t.Error("no chat.json written while discard waited")
		}
	}
	stopped, err := m.Stop(ctx, "org", "c", rec.RecorderID, rec.InstanceID)
	if err != nil || stopped.State != StateAborted {
		t.Fatalf("Stop: %+v, %v", stopped, err)
	}
	armed.Store(true)
	chat(3) // final now: its chat.json is written while discard waits to remove the directory
	waitUploads(t, m, rec, ChatFile, CobrowseFile("s0"), CobrowseFile("s1"))
	final, err := m.Get(ctx, "org", "c", rec.RecorderID, rec.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	if got := transcripts(chatFile(t, m, final)); !slices.Equal(got, want) {
		t.Errorf("chat.json holds %v, want %v", got, want)
	}
	b, err := m.Bucket(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"s0", "s1"} {
		data, err := b.ReadAll(ctx, final.Uploads[CobrowseFile(s)].Key)
		var f struct{ Events []CobrowseEvent }
		if err == nil {
			err = json.Unmarshal(data, &f)
		}
		if err != nil || len(f.Events) != 2 || f.Events[0].SessionID != s || f.Events[1].SequenceID != 1 {
			t.Errorf("cobrowse file of %s: %v: %s", s, err, data)
		}
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(rec.Dir); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is still there", rec.Dir)
		}
	}
}

// holdingProvider holds every write of a key ending in suffix until
// release is closed.
type holdingProvider struct {
	storage.Provider
	suffix  string
	release chan struct{}
}

func (h holdingProvider) NewWriter(ctx context.Context, key string, opts *storage.WriterOptions) (io.WriteCloser, error) {
	if strings.HasSuffix(key, h.suffix) {
		select {
		case <-h.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return h.Provider.NewWriter(ctx, key, opts)
}

// TestTranscript_LateAddRacesTheLastLateUpload: chat added to a recording
// whose uploads failed (FAILED upload_failed, its directory kept) while
// its last failed upload succeeds. The interleaving is forced: the storage
// is fixed just after chat.json's new content was written beside it, and
// the write goes on only once the directory is gone or the result's
// handler waits for it; chat.json's upload is held until every other
// upload is done, so its result is the recording's last. The add
// succeeds, chat.json holds it, the recording ends STOPPED with every
// object verified, and its directory is removed.
func TestTranscript_LateAddRacesTheLastLateUpload(t *testing.T) {
	ctx := context.Background()
	m, rec, fixed, _ := refusingRecording(t, false, 500*time.Millisecond)
	release := make(chan struct{})
	bucket := storage.NewBucket(holdingProvider{deniedProvider{memstore.New(memstore.Options{Name: "primary"}), fixed}, "/" + ChatFile, release})
	m.bucketMu.Lock()
	m.buckets["app"] = bucket
	m.bucketMu.Unlock()
	if got, err := m.Stop(ctx, "org", "c", "rec1", rec.InstanceID); err != nil || got.State != StateFailed {
		t.Fatalf("Stop with a refusing profile = %s, %v", got.State, err)
	}
	var once sync.Once
	m.testPoints.lateWritten = func(r *Recording, rel string) {
		first := false
		once.Do(func() { first = true })
		if !first {
			return
		}
		fixed.Store(true)
		if err := m.RetryUploads(ctx, "app"); err != nil {
			t.Error(err)
		}
		tmp := filepath.Join(r.Dir, filepath.FromSlash(rel)+".tmp")
		for deadline := time.Now().Add(time.Minute); fileExists(tmp) && !m.dirLocks.contended(r.InstanceID); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Error("the late results neither removed the directory nor waited for the write")
				return
			}
		}
	}
	go func() { // chat.json's upload waits for every other upload
		defer close(release)
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			jobs, err := m.up.q.Jobs(ctx, rec.InstanceID)
			if err != nil {
				return
			}
			others := 0
			for _, j := range jobs {
				if !strings.HasSuffix(j.Job.ID, "/"+ChatFile) && !isPart(j.Job) {
					if j.Status != upload.Uploaded {
						others = -1
						break
					}
					others++
				}
			}
			if others > 0 {
				return
			}
		}
	}()
	got, err := m.AddChat(ctx, "org", "c", "rec1", rec.InstanceID, []ChatEntry{{TimeStamp: time.Now().UTC(), Transcript: "late", UserID: "u1"}})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != StateStopped || got.Error != nil || got.UploadsPending() {
		t.Errorf("after the add: %s %+v, pending %v; want STOPPED with every object verified", got.State, got.Error, got.UploadsPending())
	}
	got.objects(func(rel string, o **ObjectFile) {
		if *o != nil && ((*o).Error != nil || (*o).Uploaded.IsZero()) {
			t.Errorf("%s: %+v", rel, *o)
		}
	})
	if got := transcripts(chatFile(t, m, got)); !slices.Equal(got, []string{"late"}) {
		t.Errorf("chat.json holds %v, want [late]", got)
	}
	if fileExists(got.Dir) {
		t.Errorf("local directory %s kept after every upload was verified", got.Dir)
	}
}

// contended reports whether another goroutine holds or waits for key.
func (k *keyedLocks) contended(key string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.m[key] != nil && k.m[key].users > 1
}

// TestTranscript_FinalStateOnlyWithTheAttachmentsQueued: a recording without
// media holding chat and cobrowse entries is stopped (ABORTED, no
// composition). At the instant its final state is stored, the stored
// recording already records an object for every chat and cobrowse file and
// the persisted upload queue holds their jobs: a crash (kill -9) right after
// that commit loses nothing, since the queue resumes the jobs at the next
// start and settle records their outcome. Before, the uploads started only
// after the final commit, on a goroutine, and nothing at start-up looks at a
// final recording: a crash in between lost them.
func TestTranscript_FinalStateOnlyWithTheAttachmentsQueued(t *testing.T) {
	m, _, st := newTestManager(t)
	ctx := context.Background()
	rec := startRecording(t, m, "c")
	t0 := time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)
	for i := range 2 {
		e := ChatEntry{TimeStamp: t0.Add(time.Duration(i) * time.Second), Transcript: fmt.Sprint("line ", i), UserID: "u1"}
		if _, err := m.AddChat(ctx, "org", "c", rec.RecorderID, rec.InstanceID, []ChatEntry{e}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.AddCobrowse(ctx, "org", "c", rec.RecorderID, rec.InstanceID, CobrowseEvent{SessionID: "s0", Payload: "p"}); err != nil {
		t.Fatal(err)
	}
	want := []string{ChatFile, CobrowseFile("s0")}
	checked := make(chan struct{})
	m.testPoints.finalCommitted = func(id string) {
		defer close(checked)
		sr, err := st.Lookup(ctx, id)
		if err != nil {
			t.Error(err)
			return
		}
		stored, err := decode(sr)
		if err != nil {
			t.Error(err)
			return
		}
		jobs, err := m.up.q.Jobs(ctx, id)
		if err != nil {
			t.Error(err)
			return
		}
		queued := map[string]bool{}
		for _, j := range jobs {
			queued[j.Job.ID] = true
		}
		for _, rel := range want {
			if stored.Uploads[rel] == nil || !queued[id+"/"+rel] {
				t.Errorf("when the final state %s was stored, %s had object %+v and queued %v: a crash then loses it",
					stored.State, rel, stored.Uploads[rel], queued[id+"/"+rel])
			}
		}
	}
	stopped, err := m.Stop(ctx, "org", "c", rec.RecorderID, rec.InstanceID)
	if err != nil || stopped.State != StateAborted {
		t.Fatalf("Stop: %+v, %v", stopped, err)
	}
	select {
	case <-checked:
	case <-time.After(time.Minute):
		t.Fatal("no final state stored")
	}
	waitUploads(t, m, rec, want...)
	final, err := m.Get(ctx, "org", "c", rec.RecorderID, rec.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	if got := transcripts(chatFile(t, m, final)); !slices.Equal(got, []string{"line 0", "line 1"}) {
		t.Errorf("chat.json holds %v", got)
	}
}

// TestTranscript_AttachmentsSurviveACrashAfterTheStop: kill -9 right after
// a recording without media stored its final state, with its chat and
// cobrowse uploads refused so far (the storage's credentials are wrong).
// The crash is played in the process: at that instant the Manager's upload
// queue stops and its stop goes no further (no discard, no retry), and a
// new Manager starts on the same database and data directory with the
// storage fixed. It uploads both files from its persisted queue and records
// them in the recording, with every entry.
func TestTranscript_AttachmentsSurviveACrashAfterTheStop(t *testing.T) {
	ctx := context.Background()
	fixed := new(atomic.Bool)
	bucket := storage.NewBucket(deniedProvider{memstore.New(memstore.Options{Name: "primary"}), fixed})
	openBucket := func(o *Options) {
		o.OpenBucket = func(context.Context, string, *config.StorageProfile) (*storage.Bucket, error) { return bucket, nil }
	}
	m, fa, st := newTestManager(t, openBucket)
	rec := startRecording(t, m, "c")
	e := ChatEntry{TimeStamp: time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC), Transcript: "line 0", UserID: "u1"}
	if _, err := m.AddChat(ctx, "org", "c", rec.RecorderID, rec.InstanceID, []ChatEntry{e}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AddCobrowse(ctx, "org", "c", rec.RecorderID, rec.InstanceID, CobrowseEvent{SessionID: "s0", Payload: "p"}); err != nil {
		t.Fatal(err)
	}
	dead := make(chan struct{}) // the first Manager's stop stays at the crash until the test ends
	t.Cleanup(func() { close(dead) })
	crashed := make(chan struct{})
	m.testPoints.finalCommitted = func(string) {
		m.stopUploads()
		close(crashed)
		<-dead
	}
	go m.Stop(ctx, "org", "c", rec.RecorderID, rec.InstanceID)
	select {
	case <-crashed:
	case <-time.After(time.Minute):
		t.Fatal("no final state stored")
	}

	fixed.Store(true)
	m2, err := NewManager(ctx, Options{Config: m.cfg, Store: st, RecorderID: "rec1",
		Adapters: map[string]conference.Adapter{"fake": fa}, OpenBucket: func(context.Context, string, *config.StorageProfile) (*storage.Bucket, error) { return bucket, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Shutdown(context.Background())
	waitUploads(t, m2, rec, ChatFile, CobrowseFile("s0"))
	final, err := m2.Get(ctx, "org", "c", rec.RecorderID, rec.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	if final.State != StateAborted {
		t.Errorf("state %s, want %s (no media)", final.State, StateAborted)
	}
	if got := transcripts(chatFile(t, m2, final)); !slices.Equal(got, []string{"line 0"}) {
		t.Errorf("chat.json holds %v", got)
	}
}
