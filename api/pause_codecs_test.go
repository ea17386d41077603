package api

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/recorder/conference/whip"
)

// TestEndToEnd_PauseSkipOpusVP8: with pauseBehavior skip the per-track Ogg/Opus
// and WebM/VP8 files are as much shorter as the pause (the writers get
// timestamps shifted back by the paused time), and the VP8 sender is asked
// for a keyframe after the resume. The pause is the one the recorder cut
// (the manifest's instants, checked to lie within the pause and resume
// calls), and the senders keep their media on the wall clock (sendLoop), so
// under load the files must still hold all that was sent outside the pause.
func TestEndToEnd_PauseSkipOpusVP8(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	opus := opusFrames(t, 500, 2)
	vp8 := vp8Frames(t, 2)
	h := startService(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sendCtx, stopSending := context.WithCancel(ctx)
	defer stopSending()
	opusTrack, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "a", "u")
	vp8Track, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "v", "u")
	p, err := h.whipClient(key1).Publish(ctx, whip.Endpoint(h.url, "skipconf", "u", "CAM"), opusTrack, vp8Track)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	if err := p.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	var plis atomic.Int32
	for _, s := range p.PC.GetSenders() {
		if s.Track() != nil && s.Track().Kind() == webrtc.RTPCodecTypeVideo {
			go countPLI(s, &plis)
		}
	}
	go sendLoop(sendCtx, opusTrack, opus, 20*time.Millisecond)
	go sendLoop(sendCtx, vp8Track, vp8, time.Second/30)

	ev, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: "skipconf", ConversationID: "skipconv", Video: true, PauseBehavior: "skip"})
	if st != 200 {
		t.Fatalf("start: %d", st)
	}
	time.Sleep(1500 * time.Millisecond)
	var r RecordingDataEvent
	pauseCall := time.Now()
	if st := h.do("POST", recPath(ev)+"/pause", key1, nil, &r); st != 200 {
		t.Fatalf("pause: %d", st)
	}
	pauseReturned := time.Now()
	time.Sleep(1500 * time.Millisecond)
	plisBefore := plis.Load()
	resumeCall := time.Now()
	if st := h.do("POST", recPath(ev)+"/resume", key1, nil, &r); st != 200 {
		t.Fatalf("resume: %d", st)
	}
	resumeReturned := time.Now()
	time.Sleep(1500 * time.Millisecond)
	if st := h.do("POST", recPath(ev)+"/stop", key1, nil, &r); st != 200 || r.State != "STOPPED" {
		t.Fatalf("stop: %d %+v", st, r)
	}
	stopSending()
	if plis.Load() <= plisBefore {
		t.Error("no keyframe request after the resume")
	}
	// The pause as the recorder cut it (the manifest's instants), which
	// must lie within the calls that asked for it: the calls themselves
	// take up to half a second under load.
	var comp RecordingDataMessage
	if st := h.do("GET", "/api/compositions/skipconv", key1, nil, &comp); st != 200 || comp.Composition == nil || comp.Composition.Manifest == nil {
		t.Fatalf("composition: %d %+v", st, comp.Composition)
	}
	var man composition.Manifest
	if err := json.Unmarshal(fetch(t, comp.Composition.Manifest.URL), &man); err != nil {
		t.Fatal(err)
	}
	if len(man.Pauses) != 1 {
		t.Fatalf("manifest pauses %+v, want one", man.Pauses)
	}
	pz := man.Pauses[0]
	if pz.StartTime.Before(pauseCall) || pz.StartTime.After(pauseReturned) || pz.EndTime.Before(resumeCall) || pz.EndTime.After(resumeReturned) {
		t.Errorf("pause %s–%s, want within the pause call %s–%s and the resume call %s–%s", pz.StartTime.Format(time.StampMicro), pz.EndTime.Format(time.StampMicro),
			pauseCall.Format(time.StampMicro), pauseReturned.Format(time.StampMicro), resumeCall.Format(time.StampMicro), resumeReturned.Format(time.StampMicro))
	}
	paused := pz.EndTime.Sub(pz.StartTime).Seconds()
	t.Logf("pause call %v, resume call %v", pauseReturned.Sub(pauseCall).Round(time.Millisecond), resumeReturned.Sub(resumeCall).Round(time.Millisecond))
	n := 0
	for _, s := range comp.Streams {
		for _, tr := range s.Tracks {
			n++
			a, _ := time.Parse(time.RFC3339Nano, tr.Started)
			b, _ := time.Parse(time.RFC3339Nano, tr.Stopped)
			want := b.Sub(a).Seconds() - paused
			codec, got := probe(t, fetch(t, tr.URL), "skip-"+strings.ToLower(tr.Type))
			if math.Abs(got-want) > 0.4 {
				t.Errorf("%s track (%s): %.2f s, want %.2f s (%.2f s recorded less %.2f s paused)", tr.Type, codec, got, want, b.Sub(a).Seconds(), paused)
			}
			t.Logf("%s track (%s): %.2f s for %.2f s recorded, %.2f s paused", tr.Type, codec, got, b.Sub(a).Seconds(), paused)
		}
	}
	if n != 2 {
		t.Errorf("%d tracks, want Opus and VP8", n)
	}
}
