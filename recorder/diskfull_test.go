package recorder

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/internal/testenv"
)

// mountTmpfs mounts a tmpfs of size bytes on dir (created) until the test ends.
func mountTmpfs(t *testing.T, dir string, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		testenv.Missing(t, "cannot mount a tmpfs (needs root): "+string(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
}

// TestManager_DiskFullFailsOnlyThatRecording: one recording's directory is
// on a 64 KiB tmpfs the test mounts. It fails within a few seconds with
// error code disk_full and a message naming the cause, while a recording of
// another conversation beside it keeps recording and stops normally; the
// failed recording's bytes are not deleted (its files stay on disk or are
// uploaded).
func TestManager_DiskFullFailsOnlyThatRecording(t *testing.T) {
	m, fa, _ := newTestManager(t)
	ctx := context.Background()
	mountTmpfs(t, filepath.Join(m.cfg.DataDir, "recordings", "org", "full"), "64k")

	full, err := m.Start(ctx, "org", StartRequest{ApplicationID: "app", ConferenceID: "f1", ConversationID: "full", Audio: true})
	if err != nil || full.State != StateActive {
		t.Fatalf("Start on the small disk = %+v, %v", full, err)
	}
	ok, err := m.Start(ctx, "org", StartRequest{ApplicationID: "app", ConferenceID: "f2", ConversationID: "ok", Audio: true})
	if err != nil || ok.State != StateActive {
		t.Fatalf("Start = %+v, %v", ok, err)
	}
	tr1, ft1 := newTrack("f1", "u1")
	fa.sink("f1").AddTrack(tr1)
	tr2, ft2 := newTrack("f2", "u2")
	fa.sink("f2").AddTrack(tr2)
	defer close(ft1.ch)
	defer close(ft2.ch)

	// 64 KiB hold about 2.7 s of mix (16 kB/s) plus the track (8 kB/s).
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		ft1.sendUntilDone(&synth.Tone{Freq: 440, Amplitude: 8000}, 8*time.Second, m, full.InstanceID)
	}()
	go func() { defer wg.Done(); ft2.send(&synth.Tone{Freq: 660, Amplitude: 8000}, 6*time.Second) }()

	var failed *Recording
	for deadline := time.Now().Add(8 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if failed, _ = m.Get(ctx, "org", "full", "rec1", full.InstanceID); failed.State.Final() {
			break
		}
	}
	if failed.State != StateFailed || failed.Error == nil || failed.Error.Code != "disk_full" {
		t.Fatalf("recording on the full disk: state %s, error %+v; want FAILED disk_full", failed.State, failed.Error)
	}
	t.Logf("failed after %v: %s: %s", failed.Stopped.Sub(failed.Started).Round(time.Millisecond), failed.Error.Code, failed.Error.Message)
	if other, _ := m.Get(ctx, "org", "ok", "rec1", ok.InstanceID); other.State != StateActive {
		t.Errorf("the other recording is %s while the first failed", other.State)
	}
	// Nothing written is deleted: each track is uploaded or still on disk.
	for _, st := range failed.Streams {
		for _, tr := range st.Tracks {
			_, statErr := os.Stat(filepath.Join(failed.Dir, filepath.FromSlash(tr.File)))
			if (tr.Object == nil || tr.Object.Size == 0) && statErr != nil {
				t.Errorf("track %s is neither uploaded (%+v) nor on disk (%v)", tr.File, tr.Object, statErr)
			}
		}
	}
	// The partial mix too. Whether the manifest still fits on the full disk
	// depends on which write met the full disk last (whole 4 KiB pages):
	// when it fits, every file is uploaded and the local copies go, as for
	// any recording.
	var mixUploaded int64
	if c := failed.Composition; c != nil && len(c.Outputs) > 0 && c.Outputs[0].Object != nil {
		mixUploaded = c.Outputs[0].Object.Size
	}
	if fi, err := os.Stat(filepath.Join(failed.Dir, "mix.wav")); (err != nil || fi.Size() < 16000) && mixUploaded < 16000 {
		t.Errorf("the partial mix is neither on disk (%v) nor uploaded (%d bytes)", err, mixUploaded)
	}
	wg.Wait()
	got, err := m.Stop(ctx, "org", "ok", "rec1", ok.InstanceID)
	if err != nil || got.State != StateStopped || got.Composition == nil || got.Composition.State != "COMPLETED" {
		t.Fatalf("the other recording after the disk-full one: %+v, %v", got, err)
	}
	if got.MixFrames < 5*8000 {
		t.Errorf("the other recording's mix has %d frames, want ≥ 5 s", got.MixFrames)
	}
}

// sendUntilDone sends a tone like send until d passes or the recording is final.
func (f *fakeTrack) sendUntilDone(tone *synth.Tone, d time.Duration, m *Manager, id string) {
	for end := time.Now().Add(d); time.Now().Before(end); {
		f.send(tone, 200*time.Millisecond)
		if m.session(id) == nil {
			return
		}
	}
}
