package recorder

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/media/wavwriter"
	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/memstore"
)

// TestManager_TakeoverEndsTheFirstSegmentWhereItsTracksEnd: a recording
// whose owner died (its record ACTIVE, owned by "dead") left in the storage
// what session 21's kill -9 left under load: parts of its PCMU track with
// 3.2 s of a tone, and parts of its mix with only 2 s of it (the live mix
// lags the tracks by the mixer's place behind the clock and its one-second
// buffer: mix parts 2.00 s, track 3.52 s in k9's run). This instance takes
// it over. The first segment's mix, completed from its track, holds the
// tone to 3.2 s, and that is where the first segment ends for every
// reader: its Takeover (the first segment's end, and the gap to the second
// segment's start), its manifest, and the continuation's record and
// manifest. A client that plays the first segment to its end and the
// second from its offset plays the whole recording.
func TestManager_TakeoverEndsTheFirstSegmentWhereItsTracksEnd(t *testing.T) {
	bucket := storage.NewBucket(memstore.New(memstore.Options{Name: "test"}))
	m, fa, _ := newTestManager(t, func(o *Options) {
		o.OpenBucket = func(context.Context, string, *config.StorageProfile) (*storage.Bucket, error) { return bucket, nil }
	})
	ctx := context.Background()
	const trackFrames, mixFrames = 25600, 16000 // 3.2 s and 2 s at 8 kHz
	started := time.Now().Add(-5 * time.Second)
	want := started.Add(trackFrames * time.Second / 8000) // where the first segment's audio ends
	prefix := composition.Prefix(m.Profile("app").Prefix, "org", "c", "dead", "killed")
	track := composition.TrackFile("s1", "audio0", "wav")

	// The dead owner's cuts: the track in two parts, the mix in one.
	dir := t.TempDir()
	tw, err := wavwriter.NewG711(filepath.Join(dir, "track.wav"), wavwriter.MuLaw)
	if err != nil {
		t.Fatal(err)
	}
	tone := &synth.Tone{Freq: 440, Amplitude: 8000}
	for i := range trackFrames / 160 {
		if err := tw.Write(1, uint32(160*i), tone.NextPCMU(nil)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	mw, err := wavwriter.New(filepath.Join(dir, "mix.wav"), wavwriter.WithSampleRate(8000), wavwriter.WithChannels(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := mw.WriteFrame(mediatest.Sine(440, 8000, mixFrames, 8000)); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	trackData, err := os.ReadFile(filepath.Join(dir, "track.wav"))
	if err != nil {
		t.Fatal(err)
	}
	mixData, err := os.ReadFile(filepath.Join(dir, "mix.wav"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := wavwriter.ParseHeader(trackData)
	if err != nil {
		t.Fatal(err)
	}
	first := h.DataOffset + 8000 // the header and the first second
	for key, data := range map[string][]byte{
		partKey(track, 1): trackData[:first], partKey(track, 2): trackData[first:], partKey(composition.MixFile, 1): mixData,
	} {
		if _, err := bucket.Upload(ctx, prefix+key, bytes.NewReader(data), nil); err != nil {
			t.Fatal(err)
		}
	}
	rec := &Recording{InstanceID: "killed", OrganizationID: "org", ApplicationID: "app", ConversationID: "c", ConferenceID: "f",
		RecorderID: "dead", Owner: "dead", Audio: true, State: StateActive, Created: started, Started: started, MaxDuration: time.Hour,
		Mix: config.MixSettings{SampleRate: 8000, Channels: 1}, Storage: StorageInfo{ApplicationID: "app", Prefix: prefix},
		Streams: []*Stream{{ID: "s1", UserID: "u", Type: conference.StreamMIC, State: StreamRecording, Started: started,
			Tracks: []*Track{{ID: "audio0", Kind: conference.KindAudio, Codec: "audio/PCMU", File: track, Started: started}}}}}
	if err := m.put(ctx, rec); err != nil {
		t.Fatal(err)
	}

	if took, err := m.TakeOverOrphans(ctx, func(string) bool { return false }); err != nil || len(took) != 1 {
		t.Fatalf("took over %v (%v), want the dead owner's recording", took, err)
	}
	var got *Recording
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if got, err = m.Get(ctx, "org", "c", "dead", "killed"); err != nil {
			t.Fatal(err)
		}
		if got.State.Final() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first segment is %s 30 s after the takeover", got.State)
		}
	}
	tk := got.Takeover
	if got.State != StateStopped || tk == nil || len(tk.Segments) != 2 || tk.Parts != 3 {
		t.Fatalf("the first segment after the takeover: %s, takeover %+v; want STOPPED, two segments, 3 parts", got.State, tk)
	}
	// Its mix, completed from the track: the tone to 3.2 s.
	pcm := readPCM(t, bucket, prefix+composition.MixFile)
	if len(pcm) != trackFrames {
		t.Fatalf("the first segment's mix: %d samples, want %d (where its track ends)", len(pcm), trackFrames)
	}
	for i := 0; i+800 <= len(pcm); i += 800 {
		if lv := mediatest.Goertzel(pcm[i:i+800], 8000, 440); lv < 1000 {
			t.Fatalf("the first segment's mix: no tone at %.1f s (%.0f)", float64(i)/8000, lv)
		}
	}

	// Where the first segment ends, for every reader.
	at := func(ts time.Time) time.Duration { return ts.Sub(started).Round(time.Millisecond) }
	seg2 := tk.Segments[1]
	if e := tk.Segments[0].Ended; !e.Equal(want) {
		t.Errorf("takeover: the first segment ends %v into the recording; its audio ends %v", at(e), at(want))
	}
	if g := seg2.Started.Sub(want); tk.Gap != g {
		t.Errorf("takeover: gap %v; from the end of the first segment's audio to the second's start: %v", tk.Gap, g)
	}
	var man composition.Manifest
	if b, err := bucket.ReadAll(ctx, prefix+composition.ManifestFile); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &man); err != nil {
		t.Fatal(err)
	}
	if len(man.Segments) != 2 || man.Segments[0].Ended == nil || !man.Segments[0].Ended.Equal(want) {
		t.Errorf("the first segment's manifest: segments %+v; the first should end %v into the recording", man.Segments, at(want))
	}
	cont, err := m.Get(ctx, "org", "c", "rec1", seg2.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	if cont.State != StateActive || cont.Continues == nil || !cont.Continues.Ended.Equal(want) {
		t.Errorf("the continuation: %s, continues %+v; want ACTIVE, continuing the first, which ends %v into the recording", cont.State, cont.Continues, at(want))
	}

	// The continuation records and stops: its manifest says the same.
	tr, ft := newTrack("f", "u")
	fa.sink("f").AddTrack(tr)
	ft.send(&synth.Tone{Freq: 440, Amplitude: 8000}, 500*time.Millisecond)
	stopped, err := m.Stop(ctx, "org", "c", "rec1", seg2.InstanceID)
	close(ft.ch)
	if err != nil || stopped.State != StateStopped {
		t.Fatalf("the continuation's stop: %+v, %v", stopped, err)
	}
	man = composition.Manifest{}
	if b, err := bucket.ReadAll(ctx, stopped.Storage.Prefix+composition.ManifestFile); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &man); err != nil {
		t.Fatal(err)
	}
	if len(man.Segments) != 2 || man.Segments[0].InstanceID != "killed" || man.Segments[0].Ended == nil || !man.Segments[0].Ended.Equal(want) {
		t.Errorf("the continuation's manifest: segments %+v; the first should end %v into the recording", man.Segments, at(want))
	}
}
