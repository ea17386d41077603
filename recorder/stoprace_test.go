package recorder

import (
	"bytes"
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtcrec/recorder/internal/synth"
)

// TestManager_StopRacingTrackEOFKeepsMedia: a track that ends (EOF) just as
// the recording is stopped is finalised by its reader goroutine, not by the
// stop. The stop must wait for that track's end to be recorded: the
// recording has media (STOPPED, the track's packets counted, its file
// composed), never ABORTED for want of a Packets count not yet committed.
//
// The test holds the reader goroutine's track end (in Options.Now, which
// trackEnded calls before it commits) while the stop runs; it lets it go
// once the stop has waited 2 s, or at once if the stop finished without it.
func TestManager_StopRacingTrackEOFKeepsMedia(t *testing.T) {
	var hold atomic.Bool
	held := make(chan struct{})
	release := make(chan struct{})
	now := func() time.Time {
		if hold.Load() {
			buf := make([]byte, 16<<10)
			buf = buf[:runtime.Stack(buf, false)]
			if bytes.Contains(buf, []byte("recorder.(*trackSub).end(")) && hold.CompareAndSwap(true, false) {
				close(held)
				<-release
			}
		}
		return time.Now()
	}
	m, fa, _ := newTestManager(t, func(o *Options) { o.Now = now })
	ctx := context.Background()
	rec, err := m.Start(ctx, "org", StartRequest{ApplicationID: "app", ConferenceID: "f", ConversationID: "c", Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	tr, ft := newTrack("f", "u1")
	fa.sink("f").AddTrack(tr)
	ft.send(&synth.Tone{Freq: 440, Amplitude: 8000}, 400*time.Millisecond)
	hold.Store(true)
	close(ft.ch) // EOF: the reader goroutine ends the track ...
	select {
	case <-held: // ... and is held before it commits the track's end
	case <-time.After(30 * time.Second):
		t.Fatal("the track's end never came")
	}

	type result struct {
		rec *Recording
		err error
	}
	stopped := make(chan result, 1)
	go func() {
		r, err := m.Stop(ctx, "org", "c", "rec1", rec.InstanceID)
		stopped <- result{r, err}
	}()
	var res result
	select {
	case res = <-stopped:
		close(release)
		t.Errorf("the stop finished while the track's end was not recorded yet")
	case <-time.After(2 * time.Second):
		close(release)
		res = <-stopped
	}
	if res.err != nil {
		t.Fatal(res.err)
	}
	got := res.rec
	if got.State != StateStopped {
		t.Fatalf("state %s (error %+v), want STOPPED: the recording has media", got.State, got.Error)
	}
	if len(got.Streams) != 1 || len(got.Streams[0].Tracks) != 1 {
		t.Fatalf("streams %+v", got.Streams)
	}
	if trk := got.Streams[0].Tracks[0]; trk.Packets < 10 || trk.Stopped.IsZero() || trk.Object == nil || trk.Object.Size == 0 {
		t.Errorf("track %+v: want its packets counted and its file uploaded", trk)
	}
	if got.Composition == nil || got.Composition.State != "COMPLETED" {
		t.Errorf("composition %+v", got.Composition)
	}
}
