package recorder

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/media/wavwriter"
	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/memstore"
)

// TestExtendWAV_KeepsWhatIsWrittenAndAppendsTheRest: the mix a kill left
// keeps every byte it has (its parts may be in storage), and gets the
// frames of the mix made from the tracks beyond its own; a file in another
// format is refused, and one as long or longer is left as it is.
func TestExtendWAV_KeepsWhatIsWrittenAndAppendsTheRest(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, channels int, frames []int16) string {
		t.Helper()
		path := filepath.Join(dir, name)
		w, err := wavwriter.New(path, wavwriter.WithSampleRate(8000), wavwriter.WithChannels(channels))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteFrame(frames); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return path
	}
	ramp := func(from, n int) []int16 {
		s := make([]int16, n)
		for i := range s {
			s[i] = int16(from + i)
		}
		return s
	}
	live := write("live.wav", 2, ramp(1000, 8000))   // 4000 stereo frames: the live mix's own
	tracks := write("tracks.wav", 2, ramp(0, 20000)) // 10000 frames from the tracks
	before, _ := os.ReadFile(live)
	added, err := extendWAV(live, tracks)
	if err != nil || added != 6000 {
		t.Fatalf("added %d frames (%v), want 6000", added, err)
	}
	after, _ := os.ReadFile(live)
	h, err := wavwriter.ParseHeader(after)
	if err != nil || int64(h.DataSize) != int64(len(after))-h.DataOffset || h.DataSize != 10000*4 {
		t.Fatalf("header %+v (%v) for %d bytes, want 40000 bytes of data", h, err, len(after))
	}
	if !bytes.Equal(after[h.DataOffset:len(before)], before[h.DataOffset:]) {
		t.Error("the live mix's own samples changed")
	}
	src, _ := os.ReadFile(tracks)
	if !bytes.Equal(after[len(before):], src[len(before):]) {
		t.Error("the frames appended are not the tracks' mix beyond the live mix's end")
	}
	if added, err := extendWAV(live, tracks); err != nil || added != 0 {
		t.Errorf("as long as the tracks' mix: added %d (%v), want 0", added, err)
	}
	if _, err := extendWAV(live, write("mono.wav", 1, ramp(0, 30000))); err == nil {
		t.Error("a mono mix appended to a stereo one: no error")
	}
}

// TestManager_RecoveryStopsWhereTheFilesEnd: a recording left ACTIVE by a
// recorder killed 3.25 s into it, its files last written then, is
// recovered by the next start an hour later: the recording, its stream and
// its running track stop at the files' last write (about the kill), not at
// the recovery.
func TestManager_RecoveryStopsWhereTheFilesEnd(t *testing.T) {
	m, _, st := newTestManager(t)
	ctx := context.Background()
	if err := m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	started := time.Now().Add(-time.Hour)
	killed := started.Add(3250 * time.Millisecond)
	dir := filepath.Join(t.TempDir(), "rec")
	track := composition.TrackFile("s1", "audio0", "wav")
	if err := os.MkdirAll(filepath.Join(dir, composition.TracksDir), 0o755); err != nil {
		t.Fatal(err)
	}
	tw, err := wavwriter.NewG711(filepath.Join(dir, filepath.FromSlash(track)), wavwriter.MuLaw)
	if err != nil {
		t.Fatal(err)
	}
	silence := bytes.Repeat([]byte{0xFF}, 26000) // 3.25 s of µ-law silence
	if err := tw.Write(1, 0, silence); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	mw, err := wavwriter.New(filepath.Join(dir, composition.MixFile), wavwriter.WithSampleRate(8000), wavwriter.WithChannels(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := mw.WriteFrame(make([]int16, 24000)); err != nil { // 3 s: the mix lags the tracks
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{track, composition.MixFile} {
		if err := os.Chtimes(filepath.Join(dir, filepath.FromSlash(rel)), killed, killed); err != nil {
			t.Fatal(err)
		}
	}
	rec := &Recording{InstanceID: "killed", OrganizationID: "org", ApplicationID: "app", ConversationID: "c", ConferenceID: "f",
		RecorderID: "rec1", Owner: "rec1", Audio: true, State: StateActive, Created: started, Started: started,
		Mix: config.MixSettings{SampleRate: 8000, Channels: 1}, Dir: dir,
		Streams: []*Stream{{ID: "s1", UserID: "u", State: StreamRecording, Started: started, Tracks: []*Track{
			{ID: "audio0", Kind: conference.KindAudio, Codec: "audio/PCMU", File: track, Started: started}}}}}
	if err := m.put(ctx, rec); err != nil {
		t.Fatal(err)
	}

	bucket := storage.NewBucket(memstore.New(memstore.Options{Name: "test"}))
	m2, err := NewManager(ctx, Options{Config: m.cfg, Store: st, RecorderID: "rec1",
		OpenBucket: func(context.Context, string, *config.StorageProfile) (*storage.Bucket, error) { return bucket, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Shutdown(ctx)
	var got *Recording
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		sr, err := st.Get(ctx, "org", rec.InstanceID)
		if err != nil {
			t.Fatal(err)
		}
		if got, err = decode(sr); err != nil {
			t.Fatal(err)
		}
		if got.State == StateStopped || got.State == StateFailed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not recovered in 30 s: %s", got.State)
		}
	}
	if got.State != StateStopped || got.Recovered.IsZero() {
		t.Errorf("recovered: %s (%+v), recovered %s; want STOPPED", got.State, got.Error, got.Recovered)
	}
	tr := got.Streams[0].Tracks[0]
	if !got.Stopped.Equal(killed) || !got.Streams[0].Stopped.Equal(killed) || !tr.Stopped.Equal(killed) {
		t.Errorf("recording, stream, track stopped %s, %s, %s after the start; want %s (the files' last write), not at the recovery (%s)",
			got.Stopped.Sub(started), got.Streams[0].Stopped.Sub(started), tr.Stopped.Sub(started), killed.Sub(started), got.Recovered.Sub(started))
	}
}

// TestManager_RunningTrackStoresItsSendersSteps: while a track runs, the
// sender reports the file is placed by (its timing's mappings: the first
// report at 1.4 s, after its time zero was stored, and a step of the
// sender's clock, 100 ms at 1.6 s, confirmed by the next report) are stored
// as they are kept, at most every timingEvery, not only when the track
// ends: a kill then leaves them to the recovery, which places the track's
// file by them (completeMix).
func TestManager_RunningTrackStoresItsSendersSteps(t *testing.T) {
	m, fa, st := newTestManager(t)
	ctx := context.Background()
	rec, err := m.Start(ctx, "org", StartRequest{ApplicationID: "app", ConferenceID: "f", ConversationID: "c", Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	tr, ft := newTrack("f", "u1")
	var sr atomic.Pointer[conference.SenderReport]
	tr.SenderReport = func() (conference.SenderReport, bool) {
		if p := sr.Load(); p != nil {
			return *p, true
		}
		return conference.SenderReport{}, false
	}
	fa.sink("f").AddTrack(tr)
	done := make(chan struct{})
	sent := make(chan struct{})
	go func() { // 20 ms PCMU packets in real time; reports at 1.4 s, 1.6 s (a step of 100 ms) and 1.8 s
		defer close(sent)
		start := time.Now()
		tone := &synth.Tone{Freq: 440, Amplitude: 8000}
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-time.After(time.Until(start.Add(time.Duration(i) * 20 * time.Millisecond))):
			}
			if i >= 70 && i%10 == 0 && i <= 90 {
				step := time.Duration(0)
				if i >= 80 {
					step = 100 * time.Millisecond
				}
				sr.Store(&conference.SenderReport{SSRC: 1234, NTP: start.Add(time.Duration(i)*20*time.Millisecond + step), RTPTime: uint32(160 * i), Arrived: time.Now()})
			}
			p := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: uint32(160 * i), SSRC: 1234}, Payload: tone.NextPCMU(nil)}
			b, _ := p.Marshal()
			ft.ch <- b
		}
	}()
	var stored *Track
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r, err := st.Get(ctx, "org", rec.InstanceID)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decode(r)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Streams) == 1 && len(got.Streams[0].Tracks) == 1 {
			stored = got.Streams[0].Tracks[0]
			if stored.Timing != nil && len(stored.Timing.Mappings) == 2 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the running track's stored timing after 30 s: %+v", stored)
		}
	}
	close(done)
	<-sent
	if !stored.Stopped.IsZero() {
		t.Errorf("the track stopped (%s): its timing was stored at its end, not while it ran", stored.Stopped)
	}
	t.Logf("stored while running, %.1f s after the start: %+v", time.Since(rec.Started).Seconds(), stored.Timing.Mappings)
	if _, err := m.Stop(ctx, "org", "c", "rec1", rec.InstanceID); err != nil {
		t.Fatal(err)
	}
	close(ft.ch)
}
