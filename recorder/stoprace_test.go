package recorder

import (
	"bytes"
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/recorder/conference"
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

// TestTrackSub_TimeZeroIsTheLeastLateArrival: a track's time zero (the
// video's place in the composite) is its first packet's arrival moved back
// by the most any packet of the first second shows it was late, never
// before the subscription for video, and not refined after the first
// second.
func TestTrackSub_TimeZeroIsTheLeastLateArrival(t *testing.T) {
	base := time.Unix(1000, 0)
	var clock time.Time
	newSub := func(joined time.Time) *trackSub {
		return &trackSub{s: &Session{m: &Manager{now: func() time.Time { return clock }}}, sink: &nopSink{},
			quiet: make(chan struct{}), joined: joined.UnixNano(),
			t: &conference.Track{Kind: conference.KindVideo, Codec: conference.Codec{MimeType: "video/VP8", ClockRate: 90000}}}
	}
	send := func(ts *trackSub, at time.Duration, rtpTS uint32) {
		clock = base.Add(at)
		ts.write(&rtp.Packet{Header: rtp.Header{Version: 2, Timestamp: rtpTS}})
	}
	const frame = 3000 // 33.3 ms at 90 kHz
	ms := func(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

	// The first packet is held up 80 ms; the others come on time (from
	// 20 ms on, a frame apart, with jitter).
	ts := newSub(base)
	send(ts, ms(100), 5000)
	for i, jitter := range []int64{0, 3, 1, 7, 2, 0, 4} {
		send(ts, ms(20)+time.Duration(i+1)*frame*time.Second/90000+ms(jitter), 5000+uint32(i+1)*frame)
	}
	if got := time.Duration(ts.first.Load() - base.UnixNano()); got != ms(20) {
		t.Errorf("time zero at %v, want 20ms", got)
	}
	// After the first second a packet that seems early moves nothing.
	send(ts, ms(1500), 5000+30*frame) // 30 frames = 1 s: 480 ms "early"
	if got := time.Duration(ts.first.Load() - base.UnixNano()); got != ms(20) {
		t.Errorf("time zero moved to %v after the first second", got)
	}
	// Not before the subscription.
	ts = newSub(base.Add(ms(60)))
	send(ts, ms(100), 0)
	send(ts, ms(120), 3*frame) // shows a zero at 20 ms
	if got := time.Duration(ts.first.Load() - base.UnixNano()); got != ms(60) {
		t.Errorf("time zero at %v, want the subscription's 60ms", got)
	}
	// An audio track's is: its file holds what was sent before it joined.
	ts = newSub(base.Add(ms(60)))
	ts.t = &conference.Track{Kind: conference.KindAudio, Codec: conference.Codec{MimeType: "audio/opus", ClockRate: 48000}}
	send(ts, ms(100), 0)
	send(ts, ms(120), 2*48000/10) // 200 ms: shows a zero at -80 ms
	if got := time.Duration(ts.first.Load() - base.UnixNano()); got != ms(-80) {
		t.Errorf("an audio track's time zero at %v, want -80ms", got)
	}
}

// TestTrackSub_TimeZeroIsTheFilesFirstPacket: a track live before the
// recording whose reader reads, after the subscription, packets that
// reached the machine before the recording's start drops them (notBefore:
// in no file); the track's time zero (Track.FirstPacket, the manifest's
// mediaOffset: where a track without a mix is placed) is when the file's
// first packet arrived, not the first dropped one's. CI (session 19, A,
// mix none): 4 packets before the start, the file placed 78 ms early, its
// tone ending 79 ms before the stop.
func TestTrackSub_TimeZeroIsTheFilesFirstPacket(t *testing.T) {
	base := time.Now().Add(-time.Minute) // receive times in the past: the sink takes those before now
	at := map[uint16]int{}
	for seq := uint16(1); seq <= 60; seq++ {
		at[seq] = int(seq-1) * 20 // on time, 20 ms apart
	}
	const start = 80 // ms: packets 1-4 reached the machine before the recording's start
	ms := &mediaSink{file: &nopSink{}, receipts: receiveTimes{at: at, stop: base}, notBefore: base.Add(start * time.Millisecond).UnixNano()}
	var clock time.Time
	ts := &trackSub{s: &Session{m: &Manager{now: func() time.Time { return clock }}}, sink: ms, quiet: make(chan struct{}),
		joined: base.Add(start * time.Millisecond).UnixNano(),
		t:      &conference.Track{Kind: conference.KindAudio, Codec: conference.Codec{MimeType: "audio/opus", ClockRate: 48000}}}
	for seq := uint16(1); seq <= 60; seq++ {
		clock = base.Add(time.Duration(at[seq]+150) * time.Millisecond) // the reader 150 ms behind its socket
		ts.write(&rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1234, SequenceNumber: seq, Timestamp: 9000 + uint32(seq)*960}})
	}
	if n := ms.beforeStart.Load(); n != 4 {
		t.Fatalf("%d packets dropped as sent before the start, want 4", n)
	}
	if got := time.Duration(ts.first.Load() - base.UnixNano()); got != start*time.Millisecond {
		t.Errorf("time zero at %v, want the file's first packet's arrival, %v", got, start*time.Millisecond)
	}
}
