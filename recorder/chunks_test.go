package recorder

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/media/wavwriter"
	"github.com/rtcrec/recorder/storage"
)

// TestManager_UploadsMixWhileRecording: with chunkInterval 1s, parts of the
// mix are in storage while the recording runs, each a complete WAV holding
// the tone, together covering all but the last interval; after the stop
// the final mix.wav is there and the parts are gone.
func TestManager_UploadsMixWhileRecording(t *testing.T) {
	m, fa, _ := newTestManager(t)
	m.cfg.Uploads.ChunkInterval = time.Second
	ctx := context.Background()
	rec, err := m.Start(ctx, "org", StartRequest{ApplicationID: "app", ConferenceID: "f", ConversationID: "c", Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Bucket(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	tr, ft := newTrack("f", "u1")
	fa.sink("f").AddTrack(tr)
	defer close(ft.ch)
	ft.send(&synth.Tone{Freq: 440, Amplitude: 8000}, 4500*time.Millisecond)

	// Still recording: the parts are in storage.
	var parts []*storage.Attributes
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if parts, err = b.List(ctx, rec.Storage.Prefix+chunkPrefix); err == nil && len(parts) >= 3 {
			break
		}
	}
	if got, _ := m.Get(ctx, "org", "c", "rec1", rec.InstanceID); got.State != StateActive {
		t.Fatalf("state %s while checking the parts", got.State)
	}
	var frames int
	for i, p := range parts {
		if want := rec.Storage.Prefix + chunkPrefix + "mix.part-000" + string(rune('1'+i)) + ".wav"; p.Key != want {
			t.Errorf("part %d is %s, want %s", i, p.Key, want)
		}
		data, err := b.ReadAll(ctx, p.Key)
		if err != nil {
			t.Fatal(err)
		}
		h, err := wavwriter.ParseHeader(data)
		if err != nil || int64(h.DataSize) != int64(len(data))-h.DataOffset || h.SampleRate != 8000 {
			t.Fatalf("part %s: header %+v (%v), %d bytes", p.Key, h, err, len(data))
		}
		pcm := make([]int16, h.DataSize/2)
		for j := range pcm {
			pcm[j] = int16(binary.LittleEndian.Uint16(data[h.DataOffset+int64(2*j):]))
		}
		frames += len(pcm)
		if i > 0 { // the first part starts before the track arrived
			if a := mediatest.Goertzel(pcm, 8000, 440); a < 2000 {
				t.Errorf("part %s: tone amplitude %.0f", p.Key, a)
			}
		}
	}
	if len(parts) < 3 || frames < 3*8000 {
		t.Fatalf("%d parts with %.2f s of mix while recording 4.5 s with 1 s parts", len(parts), float64(frames)/8000)
	}
	t.Logf("while recording: %d parts, %.2f s of mix in storage", len(parts), float64(frames)/8000)

	got, err := m.Stop(ctx, "org", "c", "rec1", rec.InstanceID)
	if err != nil || got.State != StateStopped {
		t.Fatalf("Stop = %+v, %v", got, err)
	}
	if _, err := b.Attributes(ctx, rec.Storage.Prefix+"mix.wav"); err != nil {
		t.Errorf("final mix.wav: %v", err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if parts, _ = b.List(ctx, rec.Storage.Prefix+chunkPrefix); len(parts) == 0 {
			return
		}
	}
	var keys []string
	for _, p := range parts {
		keys = append(keys, p.Key)
	}
	t.Errorf("parts left after the final mix was uploaded: %s", strings.Join(keys, ", "))
}
