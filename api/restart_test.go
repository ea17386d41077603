package api

import (
	"context"
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/recorder/conference/whip"
	"github.com/rtcrec/recorder/recorder/conference/whip/whiptest"
)

// TestService_RestartServesStoppedRecording: everything the API showed about a
// stopped recording is still served after the process restarts, and its
// signed URLs still work.
func TestService_RestartServesStoppedRecording(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	dir := t.TempDir()
	h := startService(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mixURL := recordTone(t, ctx, h, "restart", 550, 1500*time.Millisecond)
	var conv ConversationMessage
	h.do("GET", "/api/recordings/restart", key1, nil, &conv)
	var before RecordingDataMessage
	h.do("GET", "/api/compositions/restart", key1, nil, &before)
	p := "/api/recordings/restart/" + before.RecorderID + "/" + before.InstanceID
	rid := h.svc.RecorderID
	h.stop()

	h2 := startService(t, dir)
	if h2.svc.RecorderID != rid {
		t.Errorf("recorderId %s after restart, was %s", h2.svc.RecorderID, rid)
	}
	var state RecordingDataEvent
	if st := h2.do("GET", p+"/state", key1, nil, &state); st != 200 || state.State != "STOPPED" {
		t.Errorf("state after restart: %d %+v", st, state)
	}
	var after RecordingDataMessage
	if st := h2.do("GET", p, key1, nil, &after); st != 200 {
		t.Fatalf("recording after restart: %d", st)
	}
	// Equal but for the signatures' dates: strip the URLs.
	strip := func(m *RecordingDataMessage) {
		m.Composition = nil
		for i := range m.Streams {
			for j := range m.Streams[i].Tracks {
				u, err := url.Parse(m.Streams[i].Tracks[j].URL)
				if err != nil || u.Path == "" {
					t.Errorf("track URL %q", m.Streams[i].Tracks[j].URL)
					continue
				}
				m.Streams[i].Tracks[j].URL = u.Path // the port differs after the restart
			}
		}
	}
	strip(&before)
	strip(&after)
	if !reflect.DeepEqual(before, after) {
		t.Errorf("recording changed across the restart:\nbefore %+v\nafter  %+v", before, after)
	}
	var conv2 ConversationMessage
	if h2.do("GET", "/api/recordings/restart", key1, nil, &conv2); !reflect.DeepEqual(conv, conv2) {
		t.Errorf("conversation changed across the restart:\nbefore %+v\nafter  %+v", conv, conv2)
	}
	// A URL signed before the restart still works (the signing key persisted),
	// and the mix holds the tone.
	wav := fetch(t, strings.Replace(mixURL, h.url, h2.url, 1))
	if a := mediatest.Goertzel(wavPCM(t, wav), 8000, 550); a < 2000 {
		t.Errorf("mix served after restart: 550 Hz amplitude %.0f", a)
	}
}

// TestAPI_BadRequestsDoNotDisturbRecording fires a stream of bad requests at
// the service while a recording runs; the recording's mix has no gap.
func TestAPI_BadRequestsDoNotDisturbRecording(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	h := startService(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := whiptest.Join(ctx, h.whipClient(key1), whip.Endpoint(h.url, "calm", "u", "MIC"), "u", 440)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Leave(context.Background())
	ev, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: "calm", ConversationID: "calm"})
	if st != 200 {
		t.Fatalf("start: %d", st)
	}
	rp := recPath(ev)
	bad := []struct {
		method, path, key string
		body              any
	}{
		{"POST", "/api/recordings/start", key1, `{"applicationId":`},
		{"POST", "/api/recordings/start", key1, StartRecording{ApplicationID: "app1", ConferenceID: "calm", ConversationID: "calm"}}, // 409
		{"POST", "/api/recordings/start", "", "{}"},
		{"POST", "/api/recordings/start", key1, strings.Repeat("x", MaxBody+10)},
		{"POST", rp + "/stop", key2, nil},
		{"POST", rp + "/stop", "wrong", nil},
		{"GET", "/api/recordings/calm/..%2F/x", key1, nil},
		{"POST", "/whip/calm?userId=x", key1, "garbage"},
		{"DELETE", "/whip/calm/nope", key1, nil},
		{"GET", "/api/recordings/attachment/composition/calm/r/i/mix.wav?Date=x&Expires=1&Signature=y", "", nil},
	}
	var wg sync.WaitGroup
	deadline := time.Now().Add(2500 * time.Millisecond)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; time.Now().Before(deadline); i++ {
				b := bad[i%len(bad)]
				if st := h.do(b.method, b.path, b.key, b.body, nil); st < 400 {
					t.Errorf("%s %s: %d, want an error", b.method, b.path, st)
				}
			}
		}(w)
	}
	wg.Wait()
	var stopped RecordingDataEvent
	if st := h.do("POST", rp+"/stop", key1, nil, &stopped); st != 200 || stopped.State != "STOPPED" {
		t.Fatalf("stop: %d %+v", st, stopped)
	}
	var comp RecordingDataMessage
	if st := h.do("GET", "/api/compositions/calm", key1, nil, &comp); st != 200 || comp.Composition == nil ||
		len(comp.Composition.Outputs) == 0 || comp.Composition.Manifest == nil {
		t.Fatalf("composition: %d %+v", st, comp.Composition)
	}
	if len(comp.Streams) != 1 {
		t.Errorf("%d streams, want 1", len(comp.Streams))
	}
	var man composition.Manifest
	if err := json.Unmarshal(fetch(t, comp.Composition.Manifest.URL), &man); err != nil {
		t.Fatal(err)
	}
	pcm := wavPCM(t, fetch(t, comp.Composition.Outputs[0].URL))
	// Every 100 ms window from 200 ms after the track's start holds the
	// tone: no gap.
	var ws []toneWindow
	for a := int(heardFrom(t, &man, "u", 0.2) * 8000); a+800 <= len(pcm)-800; a += 800 {
		if lvl := mediatest.Goertzel(pcm[a:a+800], 8000, 440); lvl < 4000 {
			t.Errorf("tone drops to %.0f at %.2f s", lvl, float64(a)/8000)
		}
		ws = append(ws, tone(pcm, 440, float64(a)/8000, float64(a+800)/8000))
	}
	if t.Failed() {
		t.Logf("the mix per 100 ms:%s", pitchTrace(ws))
	}
	logResampled(t, "u", 440, ws)
}
