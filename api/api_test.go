package api

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/storage"
)

func TestAPI_Auth(t *testing.T) {
	h := startService(t, t.TempDir())
	routes := []struct{ method, path string }{
		{"POST", "/api/recordings/start"},
		{"POST", "/api/recordings/c/r/i/stop"},
		{"GET", "/api/recordings/c/r/i/state"},
		{"GET", "/api/recordings/c/r/i/storage/info"},
		{"GET", "/api/recordings/c/r/i"},
		{"GET", "/api/recordings/c"},
		{"GET", "/api/recordings/c/active"},
		{"GET", "/api/compositions/c"},
		{"POST", "/api/storageproviders/app1/verify"},
	}
	for _, r := range routes {
		for _, tc := range []struct {
			name, key, reason string
		}{
			{"no key", "", "missing_api_key"},
			{"wrong key", "nope", "invalid_api_key"},
			{"wrong bearer", "Bearer nope", "invalid_api_key"},
			{"key prefix", key1[:5], "invalid_api_key"},
		} {
			var e ErrorMessage
			if st := h.do(r.method, r.path, tc.key, nil, &e); st != 401 || e.Reason != tc.reason || e.Code != 401 {
				t.Errorf("%s %s with %s: %d %+v, want 401 %s", r.method, r.path, tc.name, st, e, tc.reason)
			}
		}
	}
	// Both header forms are accepted.
	for _, k := range []string{key1, "Bearer " + key1} {
		var e ErrorMessage
		if st := h.do("GET", "/api/recordings/nothing", k, nil, &e); st != 404 {
			t.Errorf("Authorization %q: %d %+v, want 404 (authenticated)", k, st, e)
		}
	}
}

func TestAPI_StartBadInput(t *testing.T) {
	h := startService(t, t.TempDir())
	good := `{"applicationId":"app1","conferenceId":"f1","conversationId":"c1"}`
	tests := []struct {
		name   string
		key    string
		body   string
		status int
		reason string
	}{
		{"malformed JSON", key1, `{"applicationId":`, 400, "malformed_json"},
		{"not an object", key1, `[1,2]`, 400, "malformed_json"},
		{"unknown field", key1, `{"applicationId":"app1","conferenceId":"f1","conversationId":"c1","bogus":1}`, 400, "malformed_json"},
		{"trailing data", key1, good + `{}`, 400, "malformed_json"},
		{"missing applicationId", key1, `{"conferenceId":"f1","conversationId":"c1"}`, 400, "missing_field"},
		{"missing conferenceId", key1, `{"applicationId":"app1","conversationId":"c1"}`, 400, "missing_field"},
		{"missing conversationId", key1, `{"applicationId":"app1","conferenceId":"f1"}`, 400, "missing_field"},
		{"empty body", key1, ``, 400, "malformed_json"},
		{"traversal in conversationId", key1, `{"applicationId":"app1","conferenceId":"f1","conversationId":"../etc"}`, 400, "invalid_id"},
		{"slash in conferenceId", key1, `{"applicationId":"app1","conferenceId":"a/b","conversationId":"c1"}`, 400, "invalid_id"},
		{"dotdot applicationId", key1, `{"applicationId":"..","conferenceId":"f1","conversationId":"c1"}`, 400, "invalid_id"},
		{"overlong id", key1, `{"applicationId":"app1","conferenceId":"f1","conversationId":"` + strings.Repeat("a", 129) + `"}`, 400, "invalid_id"},
		{"bad pauseBehavior", key1, `{"applicationId":"app1","conferenceId":"f1","conversationId":"c1","pauseBehavior":"loud"}`, 400, "invalid_field"},
		{"bad mix", key1, `{"applicationId":"app1","conferenceId":"f1","conversationId":"c1","mix":{"sampleRate":44100,"channels":1}}`, 400, "invalid_field"},
		{"bad maxDuration", key1, `{"applicationId":"app1","conferenceId":"f1","conversationId":"c1","maxDuration":"soon"}`, 400, "invalid_field"},
		{"wrong type", key1, `{"applicationId":1,"conferenceId":"f1","conversationId":"c1"}`, 400, "malformed_json"},
		{"application not allowed", key2, good, 404, "unknown_application"},
		{"oversized body", key1, `{"applicationId":"app1","conferenceId":"f1","conversationId":"c1","metadata":{"x":"` + strings.Repeat("a", MaxBody) + `"}}`, 413, "body_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e ErrorMessage
			st := h.do("POST", "/api/recordings/start", tt.key, tt.body, &e)
			if st != tt.status || e.Reason != tt.reason || e.Code != tt.status || e.Message == "" {
				t.Errorf("%d %+v, want %d %s", st, e, tt.status, tt.reason)
			}
		})
	}
	if n := h.svc.Manager.ActiveCount(); n != 0 {
		t.Errorf("%d recordings running after bad starts, want 0", n)
	}
}

func TestAPI_Lifecycle(t *testing.T) {
	h := startService(t, t.TempDir())
	cmd := StartRecording{ApplicationID: "app1", ConferenceID: "f1", ConversationID: "c1", Metadata: map[string]string{"agent": "a1"}}
	ev, st := h.start(key1, cmd)
	if st != 200 || ev.State != "ACTIVE" || ev.ConversationID != "c1" || ev.RecorderID != h.svc.RecorderID || ev.InstanceID == "" {
		t.Fatalf("start: %d %+v", st, ev)
	}
	p := recPath(ev)

	var e ErrorMessage
	if st := h.do("POST", "/api/recordings/start", key1, cmd, &e); st != 409 || e.Reason != "already_active" {
		t.Errorf("second start: %d %+v, want 409 already_active", st, e)
	}
	dup := cmd
	dup.Duplicate = true
	ev2, st := h.start(key1, dup)
	if st != 200 || ev2.State != "ACTIVE" || ev2.InstanceID == ev.InstanceID {
		t.Errorf("duplicate start: %d %+v", st, ev2)
	}
	// Another tenant may record the same conversation id: it is theirs.
	other := cmd
	other.ApplicationID = "app2"
	if ev3, st := h.start(key2, other); st != 200 || ev3.State != "ACTIVE" {
		t.Errorf("other tenant's start: %d %+v", st, ev3)
	}

	var state RecordingDataEvent
	if st := h.do("GET", p+"/state", key1, nil, &state); st != 200 || state.State != "ACTIVE" || state.InstanceID != ev.InstanceID {
		t.Errorf("state: %d %+v", st, state)
	}
	var active RecordingDataEvent
	if st := h.do("GET", "/api/recordings/c1/active", key1, nil, &active); st != 200 || active.State != "ACTIVE" {
		t.Errorf("active: %d %+v", st, active)
	}
	var info StorageProfileDataMessage
	if st := h.do("GET", p+"/storage/info", key1, nil, &info); st != 200 || info.Provider != "LOCAL" || info.ApplicationID != "app1" || info.URL != "local://" {
		t.Errorf("storage info: %d %+v", st, info)
	}
	var msg RecordingDataMessage
	if st := h.do("GET", p, key1, nil, &msg); st != 200 || msg.OrganizationID != "org1" || msg.ConferenceID != "f1" || !msg.Audio || msg.Started == "" || msg.Streams == nil {
		t.Errorf("recording: %d %+v", st, msg)
	}

	// Another tenant, unknown ids, bad ids.
	for _, tc := range []struct {
		name, key, path string
		status          int
	}{
		{"other tenant's state", key2, p + "/state", 404},
		{"other tenant's recording", key2, p, 404},
		{"other tenant's stop", key2, p + "/stop", 404},
		{"other tenant's storage info", key2, p + "/storage/info", 404},
		{"unknown instance", key1, "/api/recordings/c1/" + ev.RecorderID + "/00000000-0000-0000-0000-000000000000/state", 404},
		{"wrong recorderId", key1, "/api/recordings/c1/other/" + ev.InstanceID + "/state", 404},
		{"wrong conversationId", key1, "/api/recordings/c2/" + ev.RecorderID + "/" + ev.InstanceID + "/state", 404},
		{"unknown conversation", key1, "/api/recordings/nope", 404},
		{"unknown conversation composition", key1, "/api/compositions/nope", 404},
		{"traversal id", key1, "/api/recordings/c1/" + ev.RecorderID + "/..%2F..%2Fx/state", 400},
		{"dotdot id", key1, "/api/recordings/c1/..%2F/" + ev.InstanceID, 400},
		{"bad char id", key1, "/api/recordings/c%3B1/active", 400},
	} {
		method := "GET"
		if strings.HasSuffix(tc.path, "/stop") {
			method = "POST"
		}
		var e ErrorMessage
		if st := h.do(method, tc.path, tc.key, nil, &e); st != tc.status || e.Code != tc.status {
			t.Errorf("%s: %d %+v, want %d", tc.name, st, e, tc.status)
		}
	}

	var stopped RecordingDataEvent
	if st := h.do("POST", p+"/stop", key1, nil, &stopped); st != 200 || stopped.State != "ABORTED" {
		t.Errorf("stop without media: %d %+v, want 200 ABORTED", st, stopped)
	}
	var again RecordingDataEvent
	if st := h.do("POST", p+"/stop", key1, nil, &again); st != 200 || again.State != stopped.State {
		t.Errorf("stop twice: %d %+v, want 200 %s", st, again, stopped.State)
	}
	if st := h.do("GET", p+"/state", key1, nil, &state); st != 200 || state.State != "ABORTED" {
		t.Errorf("state after stop: %d %+v", st, state)
	}
	// The duplicate is still active.
	if st := h.do("GET", "/api/recordings/c1/active", key1, nil, &active); st != 200 || active.InstanceID != ev2.InstanceID {
		t.Errorf("active after stop: %d %+v, want the duplicate", st, active)
	}
	h.do("POST", recPath(ev2)+"/stop", key1, nil, nil)
	if st := h.do("GET", "/api/recordings/c1/active", key1, nil, &e); st != 404 {
		t.Errorf("active with none: %d %+v, want 404", st, e)
	}
	var conv ConversationMessage
	if st := h.do("GET", "/api/recordings/c1", key1, nil, &conv); st != 200 || len(conv.Recordings) != 2 || conv.ApplicationID != "app1" || conv.Provider != "LOCAL" || !strings.HasPrefix(conv.Duration, "PT") {
		t.Errorf("conversation: %d %+v", st, conv)
	}
	var comp RecordingDataMessage
	if st := h.do("GET", "/api/compositions/c1", key1, nil, &comp); st != 200 || comp.InstanceID != ev2.InstanceID || comp.Composition == nil {
		t.Errorf("composition: %d %+v", st, comp)
	}
	// Unknown route and wrong method.
	if st := h.do("GET", "/api/nothing", key1, nil, &e); st != 404 {
		t.Errorf("unknown route: %d", st)
	}
	if st := h.do("DELETE", "/api/recordings/start", key1, nil, &e); st != 405 || e.Reason != "method_not_allowed" {
		t.Errorf("DELETE start: %d %+v, want 405", st, e)
	}
}

func TestAPI_Verify(t *testing.T) {
	h := startService(t, t.TempDir())
	var res storage.VerifyResult
	if st := h.do("POST", "/api/storageproviders/app1/verify", key1, nil, &res); st != 200 || !res.OK() {
		t.Errorf("verify: %d %+v", st, res)
	}
	var e ErrorMessage
	if st := h.do("POST", "/api/storageproviders/app1/verify", key2, nil, &e); st != 404 || e.Reason != "unknown_application" {
		t.Errorf("verify of an application the key may not use: %d %+v", st, e)
	}
	if st := h.do("POST", "/api/storageproviders/..%2Fx/verify", key1, nil, &e); st != 400 {
		t.Errorf("verify with a bad id: %d %+v", st, e)
	}
}

func TestWHIP_BadInput(t *testing.T) {
	h := startService(t, t.TempDir())
	post := func(path, key, ctype, body string) int {
		req, _ := http.NewRequest("POST", h.url+path, strings.NewReader(body))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	sdp := "application/sdp"
	tests := []struct {
		name, path, key, ctype, body string
		status                       int
	}{
		{"garbage SDP", "/whip/f1?userId=u", key1, sdp, "hello", 400},
		{"SDP without media", "/whip/f1?userId=u", key1, sdp, "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", 400},
		{"broken SDP with media", "/whip/f1?userId=u", key1, sdp, "v=0\r\nm=audio x y z\r\n", 400},
		{"no key", "/whip/f1?userId=u", "", sdp, "v=0", 401},
		{"wrong key", "/whip/f1?userId=u", "nope", sdp, "v=0", 401},
		{"not SDP", "/whip/f1?userId=u", key1, "application/json", "{}", 415},
		{"no userId", "/whip/f1", key1, sdp, "v=0", 400},
		{"bad type", "/whip/f1?userId=u&type=BOGUS", key1, sdp, "v=0", 400},
		{"bad agentId", "/whip/f1?userId=u&agentId=two", key1, sdp, "v=0", 400},
		{"zero agentId", "/whip/f1?userId=u&agentId=0", key1, sdp, "v=0", 400},
		{"bad agentPhone", "/whip/f1?userId=u&agentPhone=5003%2F..", key1, sdp, "v=0", 400},
		{"bad conferenceId", "/whip/.x?userId=u", key1, sdp, "v=0", 400},
		{"bad conferenceId chars", "/whip/a%3Bb?userId=u", key1, sdp, "v=0", 400},
		{"oversized", "/whip/f1?userId=u", key1, sdp, "v=0\r\n" + strings.Repeat("a=x\r\n", 20000), 413},
	}
	for _, tt := range tests {
		if st := post(tt.path, tt.key, tt.ctype, tt.body); st != tt.status {
			t.Errorf("%s: %d, want %d", tt.name, st, tt.status)
		}
	}
	// DELETE of an unknown session, or by another tenant.
	for _, key := range []string{key1, key2} {
		req, _ := http.NewRequest("DELETE", h.url+"/whip/f1/0123456789abcdef", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("DELETE unknown session: %d, want 404", resp.StatusCode)
		}
	}
	if n := h.svc.WHIP.Sessions(); n != 0 {
		t.Errorf("%d WHIP sessions after bad offers, want 0", n)
	}
}

// TestAPI_Attachment checks the recorder's signed URLs for LOCAL storage:
// Range requests work, altered or expired signatures do not.
func TestAPI_Attachment(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	dir := t.TempDir()
	h := startService(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mix := recordTone(t, ctx, h, "att", 440, 1500*time.Millisecond)

	get := func(u string, hdr map[string]string) (int, []byte) {
		req, _ := http.NewRequest("GET", u, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b := make([]byte, 0, 1024)
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			b = append(b, buf[:n]...)
			if err != nil {
				break
			}
		}
		return resp.StatusCode, b
	}
	if st, b := get(mix, map[string]string{"Range": "bytes=0-3"}); st != 206 || string(b) != "RIFF" {
		t.Errorf("Range 0-3: %d %q, want 206 RIFF", st, b)
	}
	u, _ := url.Parse(mix)
	q := u.Query()
	tamper := func(f func(u *url.URL, q url.Values)) string {
		c := *u
		cq := url.Values{}
		for k, v := range q {
			cq[k] = append([]string(nil), v...)
		}
		f(&c, cq)
		c.RawQuery = cq.Encode()
		return c.String()
	}
	sig := q.Get("Signature")
	flip := "A"
	if sig[0] == 'A' {
		flip = "B"
	}
	signingKey, err := os.ReadFile(filepath.Join(dir, "signing.key"))
	if err != nil {
		t.Fatal(err)
	}
	old := storage.NewURLSigner([]byte(strings.TrimSpace(string(signingKey))))
	old.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	expired := *u
	expired.RawQuery = ""
	for _, tc := range []struct{ name, url string }{
		{"altered signature", tamper(func(_ *url.URL, q url.Values) { q.Set("Signature", flip+sig[1:]) })},
		{"altered expiry", tamper(func(_ *url.URL, q url.Values) { q.Set("Expires", "7200") })},
		{"altered date", tamper(func(_ *url.URL, q url.Values) { q.Set("Date", "20300101T000000Z") })},
		{"altered path", tamper(func(u *url.URL, _ url.Values) { u.Path = strings.Replace(u.Path, "mix.wav", "manifest.json", 1) })},
		{"no signature", tamper(func(_ *url.URL, q url.Values) { q.Del("Signature") })},
		{"expired", old.Sign("GET", &expired, time.Hour).String()},
	} {
		if st, _ := get(tc.url, nil); st != 403 {
			t.Errorf("%s: %d, want 403", tc.name, st)
		}
	}
	// A correctly signed URL of something that is not there is a 404.
	missing := *u
	missing.Path = strings.Replace(u.Path, "mix.wav", "nothing.wav", 1)
	missing.RawQuery = ""
	fresh := storage.NewURLSigner([]byte(strings.TrimSpace(string(signingKey))))
	if st, _ := get(fresh.Sign("GET", &missing, time.Hour).String(), nil); st != 404 {
		t.Errorf("signed URL of a missing object: %d, want 404", st)
	}
	traversal := *u
	traversal.Path = strings.Replace(u.Path, "mix.wav", "..%2Fmix.wav", 1)
	traversal.RawQuery = ""
	if st, _ := get(fresh.Sign("GET", &traversal, time.Hour).String(), nil); st != 404 && st != 400 && st != 403 {
		t.Errorf("signed URL with a traversal: %d, want 400/403/404", st)
	}
}

// TestService_DialOutAdapters: applications configured for Janus or WHEP get
// their own adapter; an unreachable platform fails the start with a reason.
func TestService_DialOutAdapters(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Applications = map[string]*config.Application{
		"jan": {Conference: config.ConferenceConfig{Kind: "janus", URL: "http://127.0.0.1:1/janus"}},
		"whp": {Conference: config.ConferenceConfig{Kind: "whep", URLTemplate: "http://127.0.0.1:1/whep/{conferenceId}"}},
	}
	svc, err := NewService(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc.HTTP.Handler = contractCheck(t, svc.HTTP.Handler) // openapi_test.go
	go svc.Serve()
	defer svc.Shutdown(context.Background())
	h := &harness{t: t, svc: svc, url: svc.URL}
	for _, app := range []string{"jan", "whp"} {
		ev, st := h.start(key1, StartRecording{ApplicationID: app, ConferenceID: "room1", ConversationID: "c-" + app})
		if st != 200 || ev.State != "FAILED" || ev.Error == nil || ev.Error.Code != "start_failed" || ev.Error.Message == "" {
			t.Errorf("%s: start against an unreachable platform: %d %+v, want FAILED start_failed", app, st, ev)
		}
	}
}
