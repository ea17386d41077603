package recorder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/composition/composite"
	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/media/wavwriter"
)

// captureUploader is the upload queue as composeOutputs sees it: it records
// the order in which files are handed to it and answers each with the
// file's real size and SHA-256; the files named in fail are refused (the
// object then carries the error, as the queue's Failing outcome does).
type captureUploader struct {
	order []string
	fail  map[string]bool
}

func (u *captureUploader) enqueueOutput(_ context.Context, rec *Recording, rel string, _ map[string]string) func() (*ObjectFile, error) {
	u.order = append(u.order, rel)
	b, err := os.ReadFile(filepath.Join(rec.Dir, filepath.FromSlash(rel)))
	return func() (*ObjectFile, error) {
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		o := &ObjectFile{Key: rel, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}
		if u.fail[rel] {
			o.Error = &ErrorInfo{Code: CodeUploadFailed}
			return o, errors.New("refused")
		}
		return o, nil
	}
}

// stoppedRecording writes the files of a stopped recording into a new
// directory (a 2 s G.711 track of u1, 1 s of mix.wav at 8 kHz) and returns
// it with one chat entry and a track that got no media (no file).
func stoppedRecording(t *testing.T) *Recording {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, composition.TracksDir), 0o750); err != nil {
		t.Fatal(err)
	}
	w, err := wavwriter.NewG711(filepath.Join(dir, "tracks", "s1-a.wav"), wavwriter.MuLaw)
	if err != nil {
		t.Fatal(err)
	}
	tone := &synth.Tone{Freq: 440, Amplitude: 8000}
	for i := range 100 {
		if err := w.Write(1, uint32(160*i), tone.NextPCMU(nil)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	mix, err := wavwriter.New(filepath.Join(dir, composition.MixFile), wavwriter.WithSampleRate(8000), wavwriter.WithChannels(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := mix.WriteFrame(make([]int16, 8000)); err != nil {
		t.Fatal(err)
	}
	if err := mix.Close(); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	return &Recording{
		OrganizationID: "org", ConversationID: "c1", RecorderID: "r1", InstanceID: "i1",
		State: StateActive, Dir: dir, Started: t0, Stopped: t0.Add(2 * time.Second),
		Streams: []*Stream{{ID: "s1", UserID: "u1", Tracks: []*Track{
			{ID: "a", Codec: "audio/PCMU", File: "tracks/s1-a.wav", Packets: 100, Started: t0, Stopped: t0.Add(2 * time.Second)},
			{ID: "b", Codec: "audio/PCMU", File: "tracks/s1-b.wav", Local: LocalFile{Error: &ErrorInfo{Code: CodeNoMedia}}},
		}}},
	}
}

// chatHello is a transcript of one chat entry for rec.
func chatHello(rec *Recording) *transcript {
	return &transcript{chat: []ChatEntry{{TimeStamp: rec.Started.Add(time.Second), Transcript: "hello", UserID: "u1"}}}
}

// TestComposeOutputs_SnapshotInOutputsOut calls the stop's compose step
// directly: every file with media is handed to the queue, the manifest last
// (it lists the others' sizes and checksums and the final state), the
// recording given is not changed, and what was made comes back as data that
// record writes into a recording.
func TestComposeOutputs_SnapshotInOutputsOut(t *testing.T) {
	rec := stoppedRecording(t)
	before, _ := json.Marshal(rec)
	up := &captureUploader{}
	out := composeOutputs(context.Background(), up, rec, chatHello(rec), StateStopped)
	if out.err != nil {
		t.Fatal(out.err)
	}
	want := []string{"tracks/s1-a.wav", ChatFile, composition.MixFile, composition.ManifestFile}
	if !slices.Equal(up.order, want) {
		t.Fatalf("uploaded %v, want %v (no file for the track without media; the manifest last)", up.order, want)
	}
	if after, _ := json.Marshal(rec); string(after) != string(before) {
		t.Errorf("composeOutputs changed the recording it was given")
	}
	f, err := os.Open(filepath.Join(rec.Dir, composition.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	man, err := composition.ReadManifest(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	track := out.objects["tracks/s1-a.wav"]
	if man.State != string(StateStopped) || len(man.Tracks) != 2 || man.Tracks[0].Size != track.Size || man.Tracks[0].SHA256 != track.SHA256 {
		t.Errorf("manifest: state %s, tracks %+v; want STOPPED and the uploaded track's size %d and checksum", man.State, man.Tracks, track.Size)
	}
	if man.Mix == nil || man.Mix.Frames != 8000 || man.Mix.SHA256 != out.objects[composition.MixFile].SHA256 || man.Chat == nil || man.Chat.Entries != 1 {
		t.Errorf("manifest mix %+v, chat %+v; want 8000 frames with the uploaded checksum, and the chat", man.Mix, man.Chat)
	}

	r := rec.clone()
	deleted := rec.Stopped.Add(time.Minute)
	out.record(r, deleted)
	tr := r.Streams[0].Tracks[0]
	if tr.Object != track || !tr.Local.Deleted.Equal(deleted) || r.Streams[0].Tracks[1].Object != nil {
		t.Errorf("tracks after record: %+v, %+v", tr, r.Streams[0].Tracks[1])
	}
	c := r.Composition
	if c == nil || c.State != CompositionCompleted || c.Manifest != out.objects[composition.ManifestFile] ||
		len(c.Outputs) != 1 || c.Outputs[0].Object != out.objects[composition.MixFile] || r.MixFrames != 8000 {
		t.Errorf("composition after record: %+v (mix frames %d)", c, r.MixFrames)
	}
	if r.Uploads[ChatFile] != out.objects[ChatFile] {
		t.Errorf("chat object not recorded: %+v", r.Uploads)
	}
}

// TestComposeOutputs_AFailedUploadIsData: a refused upload does not stop the
// step (the manifest is still written and uploaded); the error comes back
// in the outputs, and record makes the composition FAILED, or PENDING when
// a composite video is asked for (it is made once the files are there).
func TestComposeOutputs_AFailedUploadIsData(t *testing.T) {
	rec := stoppedRecording(t)
	up := &captureUploader{fail: map[string]bool{composition.MixFile: true}}
	out := composeOutputs(context.Background(), up, rec, chatHello(rec), StateStopped)
	if out.err == nil || len(up.order) != 4 || up.order[3] != composition.ManifestFile {
		t.Fatalf("err %v, uploaded %v; want the refusal and every file handed over, the manifest last", out.err, up.order)
	}
	r := rec.clone()
	out.record(r, time.Time{})
	if r.Composition.State != CompositionFailed || r.Composition.Outputs[0].Object.Error == nil {
		t.Errorf("composition %+v, want FAILED with the mix's error on its object", r.Composition)
	}
	r = rec.clone()
	r.Composite = &composite.Settings{}
	out.record(r, time.Time{})
	if r.Composition.State != CompositionPending {
		t.Errorf("with a composite asked for: composition %s, want PENDING", r.Composition.State)
	}
}
