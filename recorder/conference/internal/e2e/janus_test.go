package e2e_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtcrec/recorder/api"
	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/recorder/conference/internal/rtctest"
	"github.com/rtcrec/recorder/recorder/conference/janus"
	"github.com/rtcrec/recorder/recorder/conference/janus/janustest"
)

// TestEndToEnd_JanusRoom records a Janus room through the recorder's API:
// alice (440 Hz) and bob (660 Hz) publish before the start, carol (880 Hz)
// joins 2 s into the recording, bob leaves 4.5 s into it. The mix must hold
// each tone where it was sent and every per-track file must decode to its
// track's duration.
func TestEndToEnd_JanusRoom(t *testing.T) {
	rtctest.NoLeaks(t, "conference/janus.(*")
	srv := janustest.Start(t)
	srv.CreateRoom(t, "3001")
	svc := startRecorder(t, janusAdapter(t, srv), "janus", srv.URL)
	srv.Publish(t, "3001", "alice", 440, "MIC")
	bob := srv.Publish(t, "3001", "bob", 660, "")

	t0 := time.Now()
	var ev api.RecordingDataEvent
	if st := svc.do("POST", "/api/recordings/start", api.StartRecording{ApplicationID: "app1", ConferenceID: "3001", ConversationID: "conv1"}, &ev); st != 200 || ev.State != "ACTIVE" {
		t.Fatalf("start: %d %+v", st, ev)
	}
	t.Logf("start request → ACTIVE: %v", time.Since(t0))

	time.Sleep(2 * time.Second)
	carolJoin := time.Since(t0)
	srv.Publish(t, "3001", "carol", 880, "MIC")
	time.Sleep(2500 * time.Millisecond)
	bobLeave := time.Since(t0)
	bob.Leave()
	time.Sleep(2 * time.Second)

	var stopped api.RecordingDataEvent
	if st := svc.do("POST", recPath(ev)+"/stop", nil, &stopped); st != 200 || stopped.State != "STOPPED" {
		t.Fatalf("stop: %d %+v", st, stopped)
	}
	var msg api.RecordingDataMessage
	if st := svc.do("GET", recPath(ev), nil, &msg); st != 200 {
		t.Fatalf("recording: %d", st)
	}
	users := map[string]api.StreamDataMessage{}
	for _, s := range msg.Streams {
		users[s.UserID] = s
		if s.Type != "MIC" || len(s.Tracks) != 1 || s.Tracks[0].Type != "AUDIO" || s.Tracks[0].URL == "" {
			t.Errorf("stream of %s: %+v", s.UserID, s)
		}
	}
	if len(users) != 3 || users["alice"].ID == "" || users["bob"].ID == "" || users["carol"].ID == "" {
		t.Fatalf("streams %+v, want alice, bob and carol", msg.Streams)
	}
	started, _ := time.Parse(time.RFC3339Nano, msg.Started)
	offStart := started.Sub(t0)

	// Track times: carol started, bob stopped where they did.
	trackTime := func(user string, stop bool) float64 {
		tr := users[user].Tracks[0]
		v := tr.Started
		if stop {
			v = tr.Stopped
		}
		at, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			t.Fatalf("%s: track time %q: %v", user, v, err)
		}
		return at.Sub(started).Seconds()
	}
	carolAt, bobGone := (carolJoin - offStart).Seconds(), (bobLeave - offStart).Seconds()
	t.Logf("start request → alice's track started: %.0f ms", 1000*(trackTime("alice", false)+offStart.Seconds()))
	if got := trackTime("carol", false); got < carolAt || got > carolAt+1 {
		t.Errorf("carol's track started at %.2f s, she published at %.2f s", got, carolAt)
	}
	if got := trackTime("bob", true); got < bobGone || got > bobGone+0.5 {
		t.Errorf("bob's track stopped at %.2f s, he left at %.2f s", got, bobGone)
	}

	// The mix.
	pcm := svc.mix("conv1")
	end := float64(len(pcm)) / 8000
	level := func(freq, from, to float64) float64 { return toneAmplitude(pcm, freq, from, to) }
	for _, c := range []struct {
		who      string
		freq     float64
		from, to float64
		present  bool
	}{
		{"alice", 440, 0.3, end - 0.3, true},
		{"bob before leaving", 660, 0.3, bobGone - 0.3, true},
		{"bob after leaving", 660, bobGone + 0.4, end - 0.1, false},
		{"carol before joining", 880, 0.1, carolAt - 0.1, false},
		{"carol after joining", 880, carolAt + 0.6, end - 0.3, true},
	} {
		a := level(c.freq, c.from, c.to)
		if c.present && a < 2000 || !c.present && a > 200 {
			// Say where the tone was: which 100 ms windows hold it.
			var where strings.Builder
			for w := c.from; w+0.1 <= c.to; w += 0.1 {
				if level(c.freq, w, w+0.1) > 2000 {
					where.WriteByte('#')
				} else {
					where.WriteByte('.')
				}
			}
			t.Errorf("%s: %g Hz amplitude %.0f in [%.2f s, %.2f s] of the mix, want present=%v; by 100 ms: %s",
				c.who, c.freq, a, c.from, c.to, c.present, where.String())
		}
	}
	onset := -1.0
	for w := 0.0; w+0.05 < end; w += 0.05 {
		if level(880, w, w+0.05) > 2000 {
			onset = w
			break
		}
	}
	if onset < carolAt || onset > carolAt+0.6 {
		t.Errorf("carol's tone starts at %.2f s in the mix, she published at %.2f s", onset, carolAt)
	}
	t.Logf("mix %.2f s; carol published at %.2f s, her tone starts at %.2f s; bob left at %.2f s", end, carolAt, onset, bobGone)

	// Per-track files decode (ffprobe) to their tracks' durations.
	for name, s := range users {
		got := probeDuration(t, fetch(t, s.Tracks[0].URL))
		want := trackTime(name, true) - trackTime(name, false)
		if math.Abs(got-want) > 0.3 {
			t.Errorf("track of %s: ffprobe says %.2f s, the track ran %.2f s", name, got, want)
		}
	}
}

// TestEndToEnd_JanusErrors: a start on a room that does not exist fails
// with a clear error; Janus killed mid-recording ends the recording within
// seconds instead of leaving it ACTIVE: ABORTED, conference_ended, with the
// lost session's fixed message.
func TestEndToEnd_JanusErrors(t *testing.T) {
	srv := janustest.Start(t)
	srv.CreateRoom(t, "3002")
	svc := startRecorder(t, janusAdapter(t, srv), "janus", srv.URL)

	var ev api.RecordingDataEvent
	st := svc.do("POST", "/api/recordings/start", api.StartRecording{ApplicationID: "app1", ConferenceID: "999999", ConversationID: "conv-none"}, &ev)
	if st == 200 && (ev.State == "ACTIVE" || ev.Error == nil) {
		t.Errorf("start on a room that does not exist: %d %+v", st, ev)
	}
	t.Logf("start on a missing room: %d %+v", st, ev)

	srv.Publish(t, "3002", "dora", 440, "")
	if st := svc.do("POST", "/api/recordings/start", api.StartRecording{ApplicationID: "app1", ConferenceID: "3002", ConversationID: "conv2"}, &ev); st != 200 || ev.State != "ACTIVE" {
		t.Fatalf("start: %d %+v", st, ev)
	}
	time.Sleep(1500 * time.Millisecond)
	killed := time.Now()
	srv.Kill()
	var state api.RecordingDataEvent
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if st := svc.do("GET", recPath(ev)+"/state", nil, &state); st != 200 {
			t.Fatalf("state: %d", st)
		}
		if state.State != "ACTIVE" && state.State != "INITIALISED" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %s 10 s after Janus was killed", state.State)
		}
	}
	t.Logf("Janus killed → %s after %v: %+v", state.State, time.Since(killed), state.Error)
	// DESIGN.md: ABORTED when the conference vanished, with the reason's
	// code and its fixed message (the platform dropped the session); the
	// adapter's own text ("janus: session gone: …", its URL) is only logged.
	if state.State != "ABORTED" || state.Error == nil || state.Error.Code != "conference_ended" ||
		!strings.Contains(state.Error.Message, "dropped the recorder's session") || strings.Contains(state.Error.Message, "janus") {
		t.Errorf("state %s, error %+v after Janus died; want ABORTED, conference_ended and the lost session's fixed message", state.State, state.Error)
	}
}

// janusAdapter returns an adapter of srv whose peers gather in the namespace
// and answer as DTLS servers (as janus.Options.API recommends).
func janusAdapter(t testing.TB, srv *janustest.Server) *janus.Adapter {
	se := rtctest.SettingEngine()
	if err := se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer); err != nil {
		t.Fatal(err)
	}
	var me webrtc.MediaEngine
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(&me), webrtc.WithSettingEngine(se))
	return janus.New(janus.Options{URL: srv.URL, API: api, RequestTimeout: 3 * time.Second})
}

// TestEndToEnd_JanusConfig records a Janus room with the recorder wired from
// its configuration (conference: {kind: janus, url: …}), as `recorder serve`
// runs it: both publishers' tones are in the mix.
func TestEndToEnd_JanusConfig(t *testing.T) {
	srv := janustest.Start(t)
	srv.CreateRoom(t, "3003")
	svc := startService(t, config.ConferenceConfig{Kind: "janus", URL: srv.URL})
	srv.Publish(t, "3003", "erin", 440, "MIC")
	srv.Publish(t, "3003", "finn", 660, "")
	var ev api.RecordingDataEvent
	if st := svc.do("POST", "/api/recordings/start", api.StartRecording{ApplicationID: "app1", ConferenceID: "3003", ConversationID: "conv3"}, &ev); st != 200 || ev.State != "ACTIVE" {
		t.Fatalf("start: %d %+v", st, ev)
	}
	time.Sleep(2500 * time.Millisecond)
	var stopped api.RecordingDataEvent
	if st := svc.do("POST", recPath(ev)+"/stop", nil, &stopped); st != 200 || stopped.State != "STOPPED" {
		t.Fatalf("stop: %d %+v", st, stopped)
	}
	var msg api.RecordingDataMessage
	if st := svc.do("GET", recPath(ev), nil, &msg); st != 200 {
		t.Fatalf("recording: %d", st)
	}
	users := map[string]bool{}
	for _, s := range msg.Streams {
		users[s.UserID] = true
	}
	if len(msg.Streams) != 2 || !users["erin"] || !users["finn"] {
		t.Fatalf("streams %+v, want erin and finn", msg.Streams)
	}
	pcm := svc.mix("conv3")
	end := float64(len(pcm)) / 8000
	for _, f := range []float64{440, 660} {
		if a := toneAmplitude(pcm, f, 0.3, end-0.3); a < 2000 {
			t.Errorf("%g Hz amplitude %.0f in the mix, want the publisher's tone", f, a)
		}
	}
}
