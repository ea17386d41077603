package api

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/composition/composite"
)

// TestAPI_CompositeRequests: a composite asked for with bad settings, for a
// recording still running, by another tenant or with a bad body gets a clear
// error; asked for after the end it is made and listed with its signed URL,
// size and checksum.
func TestAPI_CompositeRequests(t *testing.T) {
	h := startService(t, t.TempDir())
	bad := StartRecording{ApplicationID: "app1", ConferenceID: "f1", ConversationID: "c1",
		Composite: &composite.Settings{Layout: "single"}}
	var e ErrorMessage
	if st := h.do("POST", "/api/recordings/start", key1, bad, &e); st != 400 || e.Reason != "invalid_field" || !strings.Contains(e.Message, "userId") {
		t.Errorf("start with single and no userId: %d %+v, want 400 invalid_field", st, e)
	}
	bad.Composite = &composite.Settings{Width: 1279}
	if st := h.do("POST", "/api/recordings/start", key1, bad, &e); st != 400 || e.Reason != "invalid_field" || !strings.Contains(e.Message, "1279x720") {
		t.Errorf("start with an odd width: %d %+v, want 400 invalid_field", st, e)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ev, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: "conf-late", ConversationID: "late"})
	if st != 200 {
		t.Fatalf("start: %d", st)
	}
	p := "/api/compositions/late/" + ev.RecorderID + "/" + ev.InstanceID
	for _, tc := range []struct {
		name, key, path, body string
		status                int
		reason                string
	}{
		{"still recording", key1, p, "", 409, "not_ended"},
		{"unknown field", key1, p, `{"layout":"grid","depth":3}`, 400, "malformed_json"},
		{"not JSON", key1, p, `grid`, 400, "malformed_json"},
		{"two values", key1, p, `{}{}`, 400, "malformed_json"},
		{"bad layout", key1, p, `{"layout":"mosaic"}`, 400, "invalid_field"},
		{"bad fps", key1, p, `{"fps":500}`, 400, "invalid_field"},
		{"bad userId", key1, p, `{"layout":"single","userId":"../x"}`, 400, "invalid_id"},
		{"other tenant", key2, p, "", 404, "not_found"},
		{"bad instance id", key1, "/api/compositions/late/" + ev.RecorderID + "/..%2Fx", "", 400, "invalid_id"},
		{"no key", "", p, "", 401, "missing_api_key"},
	} {
		var e ErrorMessage
		var body any
		if tc.body != "" {
			body = tc.body
		}
		if st := h.do("POST", tc.path, tc.key, body, &e); st != tc.status || e.Reason != tc.reason {
			t.Errorf("%s: %d %+v, want %d %s", tc.name, st, e, tc.status, tc.reason)
		}
	}

	// After the end: asked for, made, listed.
	recordTone(t, ctx, h, "after", 440, 2*time.Second)
	var comp RecordingDataMessage
	h.do("GET", "/api/compositions/after", key1, nil, &comp)
	var req RecordingDataMessage
	if st := h.do("POST", "/api/compositions/after/"+comp.RecorderID+"/"+comp.InstanceID, key1, `{"layout":"grid","width":320,"height":180,"fps":5}`, &req); st != 202 ||
		req.Composition == nil || req.Composition.State != "PENDING" {
		t.Fatalf("request: %d %+v", st, req.Composition)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		h.do("GET", "/api/compositions/after", key1, nil, &comp)
		if c := comp.Composition; c != nil && c.State == "COMPLETED" && len(c.Outputs) == 2 {
			break
		}
		if time.Now().After(deadline) || (comp.Composition != nil && comp.Composition.State == "FAILED") {
			t.Fatalf("composition %+v", comp.Composition)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var video *CompositionOutput
	for i, o := range comp.Composition.Outputs {
		if o.Type == "VIDEO" {
			video = &comp.Composition.Outputs[i]
		}
	}
	if video == nil || video.Format != "mp4" || video.URL == "" || video.Size == "" || len(video.SHA256) != 64 || video.Width != 320 || video.Layout != "grid" {
		t.Fatalf("composite output %+v", video)
	}
	data := fetch(t, video.URL)
	if size(int64(len(data))) != video.Size || string(data[4:8]) != "ftyp" {
		t.Errorf("fetched %d bytes, listed %s", len(data), video.Size)
	}
}
