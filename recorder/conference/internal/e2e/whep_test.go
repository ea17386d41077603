package e2e_test

import (
	"math"
	"testing"
	"time"

	"github.com/rtcrec/recorder/api"
	"github.com/rtcrec/recorder/recorder/conference/internal/rtctest"
	"github.com/rtcrec/recorder/recorder/conference/whep"
	"github.com/rtcrec/recorder/recorder/conference/whep/wheptest"
)

// TestEndToEnd_WHEP records a conference pulled from a WHEP endpoint through
// the recorder's API: the mix holds the endpoint's tone, the track file
// decodes to the track's duration, the session is DELETEd on stop, and a
// conference the endpoint does not know fails the start.
func TestEndToEnd_WHEP(t *testing.T) {
	rtctest.NoLeaks(t, "conference/whep.(*")
	ep := wheptest.New(t, map[string]float64{"room9": 523.25})
	template := ep.URL + "/c/{conferenceId}/whep"
	a := whep.New(whep.Options{URLTemplate: template, API: rtctest.API(t), RequestTimeout: 5 * time.Second})
	svc := startRecorder(t, a, "whep", template)

	var ev api.RecordingDataEvent
	if st := svc.do("POST", "/api/recordings/start", api.StartRecording{ApplicationID: "app1", ConferenceID: "room9", ConversationID: "convw"}, &ev); st != 200 || ev.State != "ACTIVE" {
		t.Fatalf("start: %d %+v", st, ev)
	}
	time.Sleep(3 * time.Second)
	var stopped api.RecordingDataEvent
	if st := svc.do("POST", recPath(ev)+"/stop", nil, &stopped); st != 200 || stopped.State != "STOPPED" {
		t.Fatalf("stop: %d %+v", st, stopped)
	}
	if live, deleted := ep.State(); live != 0 || len(deleted) != 1 {
		t.Errorf("after stop: %d WHEP sessions live, deleted %v; want 0 and one DELETE", live, deleted)
	}
	var msg api.RecordingDataMessage
	if st := svc.do("GET", recPath(ev), nil, &msg); st != 200 {
		t.Fatalf("recording: %d", st)
	}
	if len(msg.Streams) != 1 || msg.Streams[0].UserID != "room9" || msg.Streams[0].Type != "MIC" || len(msg.Streams[0].Tracks) != 1 {
		t.Fatalf("streams %+v, want one MIC stream of room9", msg.Streams)
	}
	pcm := svc.mix("convw")
	end := float64(len(pcm)) / 8000
	if a := toneAmplitude(pcm, 523.25, 0.3, end-0.3); a < 2000 {
		t.Errorf("523.25 Hz amplitude %.0f in the mix, want the endpoint's tone", a)
	}
	if a := toneAmplitude(pcm, 440, 0.3, end-0.3); a > 200 {
		t.Errorf("440 Hz amplitude %.0f in the mix, want none", a)
	}
	tr := msg.Streams[0].Tracks[0]
	a0, _ := time.Parse(time.RFC3339Nano, tr.Started)
	a1, _ := time.Parse(time.RFC3339Nano, tr.Stopped)
	if got, want := probeDuration(t, fetch(t, tr.URL)), a1.Sub(a0).Seconds(); math.Abs(got-want) > 0.3 {
		t.Errorf("track: ffprobe says %.2f s, the track ran %.2f s", got, want)
	}

	st := svc.do("POST", "/api/recordings/start", api.StartRecording{ApplicationID: "app1", ConferenceID: "nobody", ConversationID: "convw2"}, &ev)
	if st == 200 && (ev.State == "ACTIVE" || ev.Error == nil) {
		t.Errorf("start on a conference the endpoint does not know: %d %+v", st, ev)
	}
}
