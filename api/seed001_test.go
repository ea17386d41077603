package api

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/rtcrec/recorder/media/wavwriter"
)

// TestSeed001_LiteralPaths creates, lists, reads, stops, downloads and
// deletes recordings at seed 001's own paths (the ones the seed names:
// POST /calls/{id}/recording_start, GET /recordings, GET /recordingfiles/{id}),
// and the /conferences and /v1 forms; replies have the seed's shape, the
// customer_id is the organization's UUID, and an ended recording in which
// nothing was heard has a valid (empty) WAV.
func TestSeed001_LiteralPaths(t *testing.T) {
	h := startService(t, t.TempDir())
	s001 := seedFile(t, "001")
	for _, p := range []string{"POST /calls/{id}/recording_start", "GET /recordings", "GET /recordingfiles/{id}"} {
		if !strings.Contains(s001, p) {
			t.Errorf("seed 001 no longer names %s", p)
		}
	}
	seed := seedObject(t, s001, "Recording")
	customer := h.svc.Config.CustomerID("org1")
	if _, err := uuid.Parse(customer); err != nil {
		t.Fatalf("customer id %q: %v", customer, err)
	}
	for _, tc := range []struct{ start, stop string }{
		{"/calls/call001/recording_start", "/calls/call001/recording_stop"},
		{"/conferences/conf001/recording_start", "/conferences/conf001/recording_stop"},
		{"/v1/calls/call002/recording_start", "/v1/calls/call002/recording_stop"},
	} {
		var raw json.RawMessage
		if st := h.do("POST", tc.start, key1, nil, &raw); st != 200 {
			t.Fatalf("%s: %d %s", tc.start, st, raw)
		}
		sameShape(t, tc.start, seed, raw, nil)
		var rec TelephonyRecording
		json.Unmarshal(raw, &rec)
		ref := strings.Split(tc.start, "/")[len(strings.Split(tc.start, "/"))-2]
		if rec.Status != StatusRecording || rec.ReferenceID != ref || rec.CustomerID != customer || rec.Format != "wav" || rec.TMDelete != NotYet {
			t.Errorf("%s: %+v", tc.start, rec)
		}
		if _, err := uuid.Parse(rec.ID); err != nil {
			t.Errorf("id %q is not a UUID", rec.ID)
		}
		var e ErrorMessage
		if st := h.do("POST", tc.start, key1, nil, &e); st != 409 {
			t.Errorf("second %s: %d %+v, want 409", tc.start, st, e)
		}
		var list TelephonyList
		if st := h.do("GET", "/recordings?status=recording&reference_id="+ref, key1, nil, &list); st != 200 || len(list.Result) != 1 || list.Result[0].ID != rec.ID {
			t.Errorf("GET /recordings: %d %+v", st, list)
		}
		var stopped TelephonyRecording
		if st := h.do("POST", tc.stop, key1, nil, &stopped); st != 200 || stopped.Status != StatusEnded || stopped.ID != rec.ID || stopped.TMEnd == NotYet {
			t.Errorf("%s: %d %+v", tc.stop, st, stopped)
		}
		if st := h.do("POST", tc.stop, key1, nil, &e); st != 409 || e.Reason != "not_recording" {
			t.Errorf("second %s: %d %+v", tc.stop, st, e)
		}
		var got TelephonyRecording
		if st := h.do("GET", "/recordings/"+rec.ID, key1, nil, &got); st != 200 || got.Status != StatusEnded || got.CustomerID != customer {
			t.Errorf("GET /recordings/{id}: %d %+v", st, got)
		}
		// Nothing was heard: the file is a valid WAV without samples.
		wav := getFile(t, h, "/recordingfiles/"+rec.ID, key1)
		hdr, err := wavwriter.ParseHeader(wav)
		if err != nil || hdr.SampleRate != 8000 || hdr.Channels != 1 || hdr.BitsPerSample != 16 {
			t.Errorf("recordingfiles of a silent recording: %+v %v (%d bytes)", hdr, err, len(wav))
		}
	}
	// Other tenants and bad ids.
	var e ErrorMessage
	if st := h.do("POST", "/calls/a..b%2Fc/recording_start", key1, nil, &e); st != 400 && st != 404 {
		t.Errorf("bad call id: %d %+v", st, e)
	}
	if st := h.do("POST", "/calls/call003/recording_start", key1, `{"format":"mp3"}`, &e); st != 400 || e.Reason != "invalid_field" {
		t.Errorf("format mp3: %d %+v", st, e)
	}
	if st := h.do("POST", "/calls/call003/recording_start", key2, `{"application_id":"app1"}`, &e); st != 404 || e.Reason != "unknown_application" {
		t.Errorf("another tenant's application: %d %+v", st, e)
	}
	var list TelephonyList
	h.do("GET", "/recordings", key1, nil, &list)
	if len(list.Result) != 3 {
		t.Fatalf("GET /recordings: %+v", list)
	}
	id := list.Result[0].ID
	if st := h.do("GET", "/recordings/"+id, key2, nil, &e); st != 404 {
		t.Errorf("another tenant's recording: %d", st)
	}
	var del TelephonyRecording
	if st := h.do("DELETE", "/recordings/"+id, key1, nil, &del); st != 200 || del.TMDelete == NotYet {
		t.Errorf("DELETE /recordings/{id}: %d %+v", st, del)
	}
	if st := h.do("GET", "/recordingfiles/"+id, key1, nil, &e); st != 404 {
		t.Errorf("file of a deleted recording: %d %+v", st, e)
	}
}

// getFile GETs path with key, following the redirect to the signed URL.
func getFile(t *testing.T, h *harness, path, key string) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", h.url+path, nil)
	req.Header.Set("Authorization", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return b
}
