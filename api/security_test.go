package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/config/configfile"
	"github.com/rtcrec/recorder/internal/pgtest"
	"github.com/rtcrec/recorder/recorder"
	"github.com/rtcrec/recorder/recorder/conference/whip"
	"github.com/rtcrec/recorder/recorder/conference/whip/whiptest"
	"github.com/rtcrec/recorder/storage/s3store/s3test"
)

// The findings of the outside audit (issue 12), each reproduced against the
// real service with two organizations: orgA and orgB, each with an
// application of its own, keys with every scope and keys with one scope.

const (
	keyA        = "key-orgA-full-0123456789"
	keyB        = "key-orgB-full-0123456789"
	keyBRead    = "key-orgB-read-0123456789"
	keyAControl = "key-orgA-ctrl-0123456789"
	keyAPublish = "key-orgA-pub-0123456789"
)

// twoOrgConfig is a configuration with two organizations: appA belongs to
// orgA (with a webhook to hookURL when set), appB to orgB. Both keys of
// full rights use "*", as the README shows.
func twoOrgConfig(dir, hookURL string) *config.Config {
	cfg := testConfig(dir)
	cfg.APIKeys = []config.APIKey{
		{Key: keyA, OrganizationID: "orgA", Applications: []string{"*"}},
		{Key: keyB, OrganizationID: "orgB", Applications: []string{"*"}},
		{Key: keyBRead, OrganizationID: "orgB", Applications: []string{"*"}, Scopes: []string{config.ScopeRead}},
		{Key: keyAControl, OrganizationID: "orgA", Applications: []string{"*"}, Scopes: []string{config.ScopeControl}},
		{Key: keyAPublish, OrganizationID: "orgA", Applications: []string{"*"}, Scopes: []string{config.ScopePublish}},
	}
	appA := &config.Application{OrganizationID: "orgA", Conference: config.ConferenceConfig{Kind: "whip"}}
	if hookURL != "" {
		appA.Webhooks = []config.WebhookConfig{{URL: hookURL, Secret: "hook-secret"}}
	}
	cfg.Applications = map[string]*config.Application{
		"appA": appA,
		"appB": {OrganizationID: "orgB", Conference: config.ConferenceConfig{Kind: "whip"}},
	}
	return cfg
}

// Finding 1: a key of organization B with applications ["*"] started
// recordings on A's application (A's bucket, A's webhook got B's events) and
// ran verify on A's storage profile.
func TestSecurity_ApplicationsBelongToOneOrganization(t *testing.T) {
	var hookMu sync.Mutex
	var hooked []string // organizationId of every event A's webhook got
	hook := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			OrganizationID string `json:"organizationId"`
		}
		json.NewDecoder(r.Body).Decode(&ev)
		hookMu.Lock()
		hooked = append(hooked, ev.OrganizationID)
		hookMu.Unlock()
	}), ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hook.Serve(ln)
	t.Cleanup(func() { hook.Close() })

	h := startServiceConfig(t, twoOrgConfig(t.TempDir(), "http://"+ln.Addr().String()+"/hook"), nil)

	var e ErrorMessage
	if st := h.do("POST", "/api/recordings/start", keyB, StartRecording{ApplicationID: "appA", ConferenceID: "f", ConversationID: "c-b"}, &e); st != 404 || e.Reason != "unknown_application" {
		t.Errorf("orgB starts on orgA's application: %d %+v, want 404 unknown_application", st, e)
	}
	if st := h.do("POST", "/api/storageproviders/appA/verify", keyB, nil, &e); st != 404 || e.Reason != "unknown_application" {
		t.Errorf("orgB verifies orgA's storage: %d %+v, want 404 unknown_application", st, e)
	}
	if st := h.do("POST", "/api/commands", keyB, map[string]any{"command": "interaction.request.recording.start",
		"target": "s.voice.c-cmd", "data": map[string]any{"applicationId": "appA", "conferenceId": "f"}}, nil); st == 200 {
		// The command envelope answers 200 with result failure; check no recording exists.
		if st := h.do("GET", "/api/recordings/c-cmd", keyA, nil, nil); st != 404 {
			t.Errorf("orgB's command started a recording on orgA's application: %d", st)
		}
	}
	// Each organization uses its own application.
	evA, st := h.start(keyA, StartRecording{ApplicationID: "appA", ConferenceID: "f", ConversationID: "c-a"})
	if st != 200 {
		t.Fatalf("orgA starts on appA: %d", st)
	}
	evB, st := h.start(keyB, StartRecording{ApplicationID: "appB", ConferenceID: "f", ConversationID: "c-b"})
	if st != 200 {
		t.Fatalf("orgB starts on appB: %d", st)
	}
	for _, p := range []struct{ key, path string }{{keyA, recPath(evA)}, {keyB, recPath(evB)}} {
		if st := h.do("POST", p.path+"/stop", p.key, nil, nil); st != 200 {
			t.Fatalf("stop %s: %d", p.path, st)
		}
	}
	// A's webhook gets A's events (start, stop) and never one of orgB.
	deadline := time.Now().Add(30 * time.Second)
	for {
		hookMu.Lock()
		got := append([]string(nil), hooked...)
		hookMu.Unlock()
		for _, org := range got {
			if org != "orgA" {
				t.Fatalf("orgA's webhook got an event of %q: %v", org, got)
			}
		}
		if len(got) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("orgA's webhook got %v, want orgA's start and stop", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSecurity_ConfigNeedsApplicationOwners(t *testing.T) {
	_, err := configfile.Parse([]byte(`
apiKeys:
  - {key: a, organizationId: orgA, applications: ["*"]}
  - {key: b, organizationId: orgB, applications: ["*"]}
applications:
  app1: {conference: {kind: whip}}
`))
	if err == nil || !strings.Contains(err.Error(), "applications.app1 needs organizationId") {
		t.Errorf("two organizations, an application without owner: %v", err)
	}
	if _, err := configfile.Parse([]byte(`
apiKeys:
  - {key: a, organizationId: orgA, applications: ["*"], scopes: [read, everything]}
`)); err == nil || !strings.Contains(err.Error(), "everything") {
		t.Errorf("unknown scope: %v", err)
	}
	// One organization: the configuration of earlier versions still loads.
	if _, err := configfile.Parse([]byte(`
apiKeys:
  - {key: a, organizationId: orgA, applications: ["*"]}
applications:
  app1: {conference: {kind: whip}}
`)); err != nil {
		t.Errorf("one organization: %v", err)
	}
}

// Scopes: a key carries admin, control, read, publish; a key without scopes
// carries them all.
func TestSecurity_Scopes(t *testing.T) {
	h := startServiceConfig(t, twoOrgConfig(t.TempDir(), ""), nil)
	ev, st := h.start(keyAControl, StartRecording{ApplicationID: "appA", ConferenceID: "f", ConversationID: "c1"})
	if st != 200 {
		t.Fatalf("control key starts: %d", st)
	}
	var e ErrorMessage
	for _, c := range []struct {
		method, path, key string
		status            int
	}{
		{"GET", recPath(ev) + "/state", keyAControl, 403},               // control cannot read
		{"POST", "/api/storageproviders/appA/verify", keyAControl, 403}, // nor verify
		{"GET", recPath(ev) + "/storage/info", keyAControl, 403},        // nor see storage
		{"GET", recPath(ev) + "/state", keyA, 200},                      // a key without scopes can
		{"POST", "/api/recordings/start", keyBRead, 403},                // read cannot start
		{"GET", "/api/recordings/c1", keyBRead, 404},                    // reads only its organization
		{"GET", "/v1/recordings", keyBRead, 200},                        // the telephony view is read too
		{"DELETE", "/v1/recordings/" + ev.InstanceID, keyBRead, 403},    // delete is control
		{"POST", "/api/publishtokens", keyBRead, 403},                   // minting tokens is control
		{"GET", recPath(ev) + "/state", keyAPublish, 403},               // publish cannot read
		{"POST", recPath(ev) + "/stop", keyAPublish, 403},               // nor stop
		{"POST", "/api/recordings/start", "Bearer " + keyAPublish, 403}, // nor start
	} {
		if st := h.do(c.method, c.path, c.key, `{}`, &e); st != c.status || (st == 403 && e.Reason != "missing_scope") {
			t.Errorf("%s %s with %s: %d %+v, want %d", c.method, c.path, c.key, st, e, c.status)
		}
	}
	if st := h.do("POST", recPath(ev)+"/stop", keyAControl, nil, nil); st != 200 {
		t.Errorf("control key stops: %d", st)
	}
}

// Every route goes through the one authentication: a route added to the mux
// without s.auth (as another file might) still needs a key of its scope.
func TestSecurity_EveryRouteAuthenticated(t *testing.T) {
	h := startServiceConfig(t, twoOrgConfig(t.TempDir(), ""), nil)
	h.svc.API.mux.HandleFunc("POST /api/test/unwrapped", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) })
	h.svc.API.mux.HandleFunc("GET /api/test/unwrapped", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) })
	for _, c := range []struct {
		method, key string
		status      int
	}{
		{"POST", "", 401}, {"GET", "", 401}, {"POST", keyBRead, 403}, {"GET", keyAControl, 403},
		{"POST", keyAControl, 299}, {"GET", keyBRead, 299},
	} {
		if st := h.do(c.method, "/api/test/unwrapped", c.key, nil, nil); st != c.status {
			t.Errorf("%s with %q: %d, want %d", c.method, c.key, st, c.status)
		}
	}
}

// offerSDP returns a real audio offer (from a Pion PeerConnection) that the
// WHIP endpoint can answer any number of times.
func offerSDP(t *testing.T) string {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "a", "s")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return offer.SDP
}

// whipPost posts offer to /whip/{conf}?userId=user&type=typ with token; it
// returns the status, the Location and the reply's error reason.
func whipPost(t *testing.T, base, conf, user, typ, token, offer string) (int, string, string) {
	t.Helper()
	u := base + "/whip/" + conf + "?userId=" + user
	if typ != "" {
		u += "&type=" + typ
	}
	req, _ := http.NewRequest("POST", u, strings.NewReader(offer))
	req.Header.Set("Content-Type", "application/sdp")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e ErrorMessage
	if resp.StatusCode != 201 {
		json.NewDecoder(resp.Body).Decode(&e)
	}
	return resp.StatusCode, resp.Header.Get("Location"), e.Reason
}

func whipDelete(t *testing.T, base, location, token string) int {
	t.Helper()
	req, _ := http.NewRequest("DELETE", base+location, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// mint asks for a publish token with key.
func mint(t *testing.T, h *harness, key string, req PublishTokenRequest) PublishTokenMessage {
	t.Helper()
	var m PublishTokenMessage
	if st := h.do("POST", "/api/publishtokens", key, req, &m); st != 200 || m.Token == "" {
		t.Fatalf("mint %+v: %d %+v", req, st, m)
	}
	return m
}

// Finding 6: publishing needed the organization's full API key. A publish
// token for conference A and user alice publishes that and nothing else,
// expires on time, and opens no other route.
func TestSecurity_PublishTokens(t *testing.T) {
	h := startServiceConfig(t, twoOrgConfig(t.TempDir(), ""), nil)
	offer := offerSDP(t)
	tok := mint(t, h, keyAControl, PublishTokenRequest{ConferenceID: "confA", UserID: "alice", StreamTypes: []string{"MIC"}})

	for _, c := range []struct {
		name, conf, user, typ string
		status                int
		reason                string
	}{
		{"other conference", "confB", "alice", "MIC", 403, "token_scope"},
		{"other user", "confA", "bob", "MIC", 403, "token_scope"},
		{"other stream type", "confA", "alice", "SCREEN", 403, "token_scope"},
		{"type inferred from an audio offer", "confA", "alice", "", 201, ""},
		{"what it names", "confA", "alice", "MIC", 201, ""},
	} {
		st, loc, reason := whipPost(t, h.url, c.conf, c.user, c.typ, tok.Token, offer)
		if st != c.status || reason != c.reason {
			t.Errorf("%s: %d %q, want %d %q", c.name, st, reason, c.status, c.reason)
		}
		if st == 201 {
			if st := whipDelete(t, h.url, loc, tok.Token); st != 200 {
				t.Errorf("%s: DELETE with the token: %d", c.name, st)
			}
		}
	}
	// A tampered token, another recorder's token and an API key without the
	// publish scope are refused.
	forged := tok.Token[:len(tok.Token)-2] + "AA"
	if st, _, _ := whipPost(t, h.url, "confA", "alice", "MIC", forged, offer); st != 401 {
		t.Errorf("tampered token: %d, want 401", st)
	}
	other, _, err := NewPublishTokens("another recorder", time.Hour).Mint(PublishClaims{OrganizationID: "orgA", ConferenceID: "confA", UserID: "alice", StreamTypes: []string{"MIC"}}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if st, _, _ := whipPost(t, h.url, "confA", "alice", "MIC", other, offer); st != 401 {
		t.Errorf("another recorder's token: %d, want 401", st)
	}
	if st, _, reason := whipPost(t, h.url, "confA", "alice", "MIC", keyBRead, offer); st != 403 || reason != "missing_scope" {
		t.Errorf("read key on WHIP: %d %s, want 403 missing_scope", st, reason)
	}
	if st, loc, _ := whipPost(t, h.url, "confA", "anyone", "CAM", keyAPublish, offer); st != 201 {
		t.Errorf("publish key on WHIP: %d, want 201", st)
	} else {
		whipDelete(t, h.url, loc, keyAPublish)
	}
	// The token opens no other route.
	for _, p := range []struct{ method, path string }{
		{"POST", "/api/recordings/start"}, {"GET", "/api/recordings/c"}, {"GET", "/api/events"},
		{"POST", "/api/publishtokens"}, {"GET", "/v1/recordings"},
	} {
		var e ErrorMessage
		if st := h.do(p.method, p.path, "Bearer "+tok.Token, `{}`, &e); st != 401 {
			t.Errorf("token on %s %s: %d, want 401", p.method, p.path, st)
		}
	}
	// Bad mint requests.
	for _, body := range []string{
		`{"conferenceId":"confA"}`, `{"userId":"alice"}`, `{"conferenceId":"../x","userId":"alice"}`,
		`{"conferenceId":"confA","userId":"alice","streamTypes":["LOUD"]}`,
		`{"conferenceId":"confA","userId":"alice","ttl":"48h"}`,
	} {
		if st := h.do("POST", "/api/publishtokens", keyA, body, nil); st != 400 {
			t.Errorf("mint %s: %d, want 400", body, st)
		}
	}
	// It expires on time: accepted before validUntil, refused from then on.
	short := mint(t, h, keyA, PublishTokenRequest{ConferenceID: "confA", UserID: "alice", TTL: "2s"})
	until, err := time.Parse(time.RFC3339, short.ValidUntil)
	if err != nil {
		t.Fatal(err)
	}
	if st, loc, _ := whipPost(t, h.url, "confA", "alice", "MIC", short.Token, offer); st != 201 {
		t.Fatalf("fresh short token: %d", st)
	} else {
		whipDelete(t, h.url, loc, short.Token) // DELETE before expiry
	}
	for {
		before := time.Now()
		st, loc, _ := whipPost(t, h.url, "confA", "alice", "MIC", short.Token, offer)
		if st == 401 {
			if before.Before(until.Add(-time.Second)) {
				t.Errorf("refused at %s, before its validity ends at %s", before, until)
			}
			break
		}
		if st != 201 {
			t.Fatalf("short token: %d", st)
		}
		whipDelete(t, h.url, loc, keyA)
		if time.Now().After(until.Add(5 * time.Second)) {
			t.Fatalf("token still accepted at %s, valid until %s", time.Now(), until)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Finding 2: the WHIP limit was global and racy. Concurrent offers past an
// organization's quota get 429, exactly the quota are created, and the other
// organization is not disturbed. Run 20 times.
func TestSecurity_WHIPQuota(t *testing.T) {
	cfg := twoOrgConfig(t.TempDir(), "")
	cfg.Quotas.WHIPSessions = 5
	h := startServiceConfig(t, cfg, nil)
	offer := offerSDP(t)
	for round := range 20 {
		var mu sync.Mutex
		var locs []string
		raceForQuota(t, round, "offer", 40, 5, 201, func(i int) (int, string) {
			st, loc, reason := whipPost(t, h.url, "q", fmt.Sprint("u", i), "MIC", keyA, offer)
			if st == 201 {
				mu.Lock()
				locs = append(locs, loc)
				mu.Unlock()
			}
			return st, reason
		})
		// The other organization still publishes.
		st, loc, _ := whipPost(t, h.url, "q", "b", "MIC", keyB, offer)
		if st != 201 {
			t.Fatalf("round %d: orgB at orgA's quota: %d", round, st)
		}
		whipDelete(t, h.url, loc, keyB)
		for _, l := range locs {
			if st := whipDelete(t, h.url, l, keyA); st != 200 {
				t.Fatalf("round %d: DELETE %s: %d", round, l, st)
			}
		}
	}
}

// raceForQuota makes n attempts at once (try returns the status and the
// error's reason) and fails the test unless exactly quota succeed with
// okStatus and every other is refused with 429 quota_exceeded.
func raceForQuota(t *testing.T, round int, what string, n, quota, okStatus int, try func(i int) (int, string)) {
	t.Helper()
	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			switch st, reason := try(i); {
			case st == okStatus:
				ok.Add(1)
			case st == 429 && reason == "quota_exceeded":
				refused.Add(1)
			default:
				t.Errorf("round %d: %s %d: %d %s", round, what, i, st, reason)
			}
		})
	}
	wg.Wait()
	if int(ok.Load()) != quota || int(refused.Load()) != n-quota {
		t.Fatalf("round %d: %d of %d %ss succeeded, %d refused; want %d and %d", round, ok.Load(), n, what, refused.Load(), quota, n-quota)
	}
}

// Finding 3: no cap on concurrent recordings. Concurrent starts past the
// quota get 429 and the other organization is not disturbed. Run 20 times.
func TestSecurity_RecordingQuota(t *testing.T) {
	cfg := twoOrgConfig(t.TempDir(), "")
	cfg.Quotas.Recordings = 3
	h := startServiceConfig(t, cfg, nil)
	for round := range 20 {
		var mu sync.Mutex
		var started []RecordingDataEvent
		raceForQuota(t, round, "start", 12, 3, 200, func(i int) (int, string) {
			var ev RecordingDataEvent
			var e ErrorMessage
			body := StartRecording{ApplicationID: "appA", ConferenceID: "f", ConversationID: fmt.Sprintf("r%d-%d", round, i)}
			data, _ := json.Marshal(body)
			st := h.do("POST", "/api/recordings/start", keyA, data, &e)
			if st == 200 {
				h.do("GET", fmt.Sprintf("/api/recordings/r%d-%d/active", round, i), keyA, nil, &ev)
				mu.Lock()
				started = append(started, ev)
				mu.Unlock()
			}
			if st == 429 && !strings.Contains(e.Message, "quota of 3 recordings") {
				return st, fmt.Sprintf("%s, message %q", e.Reason, e.Message)
			}
			return st, e.Reason
		})
		if len(started) != 3 {
			t.Fatalf("round %d: %d recordings started, want 3", round, len(started))
		}
		evB, st := h.start(keyB, StartRecording{ApplicationID: "appB", ConferenceID: "f", ConversationID: fmt.Sprint("b", round)})
		if st != 200 {
			t.Fatalf("round %d: orgB at orgA's quota: %d", round, st)
		}
		for i, ev := range append(started, evB) {
			key := keyA
			if i == len(started) {
				key = keyB
			}
			if st := h.do("POST", recPath(ev)+"/stop", key, nil, nil); st != 200 {
				t.Fatalf("round %d: stop %s: %d", round, recPath(ev), st)
			}
		}
	}
	// maxDuration is capped by limits.maxDuration (default 24h).
	var e ErrorMessage
	if st := h.do("POST", "/api/recordings/start", keyA, `{"applicationId":"appA","conferenceId":"f","conversationId":"long","maxDuration":"100000h"}`, &e); st != 400 || !strings.Contains(e.Message, "limit") {
		t.Errorf("maxDuration 100000h: %d %+v, want 400", st, e)
	}
}

// Finding 10 (first half): SSE connections were unlimited. Concurrent
// streams past the quota get 429; closing one frees its place. Run 20 times.
func TestSecurity_SSEQuota(t *testing.T) {
	cfg := twoOrgConfig(t.TempDir(), "")
	cfg.Quotas.SSEConnections = 2
	h := startServiceConfig(t, cfg, nil)
	for round := range 20 {
		ctx, cancel := context.WithCancel(context.Background())
		bodies, refused := openEventStreams(t, ctx, keyA, 10, h.url)
		if len(bodies) != 2 || refused != 8 {
			t.Fatalf("round %d: %d open, %d refused; want 2 and 8", round, len(bodies), refused)
		}
		// orgB is not disturbed.
		reqB, _ := http.NewRequestWithContext(ctx, "GET", h.url+"/api/events", nil)
		reqB.Header.Set("Authorization", keyB)
		resp, err := http.DefaultClient.Do(reqB)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("round %d: orgB: %v %v", round, resp, err)
		}
		resp.Body.Close()
		for _, b := range bodies {
			b.Close()
		}
		cancel()
		// The places come back once the server sees the streams close.
		waitFor(t, 10*time.Second, func() bool { return h.svc.API.sse.Held("orgA") == 0 && h.svc.API.sse.Held("orgB") == 0 })
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Finding 10 (second half): a body could trickle in forever after a valid
// key. It is cut off after limits.bodyTimeout (plus the header allowance).
func TestSecurity_BodyReadDeadline(t *testing.T) {
	cfg := twoOrgConfig(t.TempDir(), "")
	cfg.Limits.BodyTimeout = time.Second
	h := startServiceConfig(t, cfg, nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/recordings/start HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", keyA)
	start := time.Now()
	cut := make(chan time.Duration, 1)
	go func() {
		io.Copy(io.Discard, bufio.NewReader(conn)) // returns when the server closes
		cut <- time.Since(start)
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case d := <-cut:
			t.Logf("trickling body cut after %s", d)
			return
		case <-tick.C:
			if time.Since(start) > 60*time.Second {
				t.Fatal("a body trickling for 60s is still being read")
			}
			conn.Write([]byte(" ")) // one byte at a time: never finishes within the deadline
		}
	}
}

// Errors carry a request id, in the header and the body.
func TestSecurity_RequestID(t *testing.T) {
	h := startServiceConfig(t, twoOrgConfig(t.TempDir(), ""), nil)
	req, _ := http.NewRequest("GET", h.url+"/api/recordings/nothing", nil)
	req.Header.Set("Authorization", keyA)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e ErrorMessage
	json.NewDecoder(resp.Body).Decode(&e)
	if id := resp.Header.Get(RequestIDHeader); id == "" || e.RequestID != id {
		t.Errorf("request id: header %q, body %q", id, e.RequestID)
	}
}

// CORS is answered on /whip/ only.
func TestSecurity_CORSOnlyOnWHIP(t *testing.T) {
	h := startServiceConfig(t, twoOrgConfig(t.TempDir(), ""), nil)
	for _, c := range []struct {
		path string
		cors bool
	}{{"/whip/conf", true}, {"/api/recordings/start", false}, {"/api/events", false}, {"/v1/recordings", false}} {
		req, _ := http.NewRequest("OPTIONS", h.url+c.path, nil)
		req.Header.Set("Origin", "https://evil.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin") != ""; got != c.cors {
			t.Errorf("%s: CORS %v, want %v", c.path, got, c.cors)
		}
	}
}

// A browser publishes with a publish token and the recording has its tone.
func TestSecurity_PublishWithTokenRecords(t *testing.T) {
	h := startServiceConfig(t, twoOrgConfig(t.TempDir(), ""), nil)
	tok := mint(t, h, keyAControl, PublishTokenRequest{ConferenceID: "tconf", UserID: "alice", StreamTypes: []string{"MIC"}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := whiptest.Join(ctx, h.whipClient(tok.Token), whip.Endpoint(h.url, "tconf", "alice", "MIC"), "alice", 440)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Leave(context.Background())
	ev, st := h.start(keyA, StartRecording{ApplicationID: "appA", ConferenceID: "tconf", ConversationID: "tc"})
	if st != 200 {
		t.Fatalf("start: %d", st)
	}
	waitFor(t, 30*time.Second, func() bool {
		var msg RecordingDataMessage
		h.do("GET", recPath(ev), keyA, nil, &msg)
		return len(msg.Streams) > 0
	})
	if st := h.do("POST", recPath(ev)+"/stop", keyA, nil, nil); st != 200 {
		t.Fatalf("stop: %d", st)
	}
	var msg RecordingDataMessage
	h.do("GET", recPath(ev), keyA, nil, &msg)
	if len(msg.Streams) != 1 || msg.Streams[0].UserID != "alice" {
		t.Errorf("streams: %+v", msg.Streams)
	}
}

// Finding 7: blackout times past 2262 overflowed when stored, and nothing
// bounded how far ahead or how many. Times are now within
// limits.blackoutHorizon of now, and blackouts count against a quota:
// concurrent starts past it get 429. Run 20 times.
func TestSecurity_Blackouts(t *testing.T) {
	cfg := twoOrgConfig(t.TempDir(), "")
	cfg.Quotas.Blackouts = 3
	h := startServiceConfig(t, cfg, nil)
	var e ErrorMessage
	for _, body := range []string{
		`{"userId":"u","startTime":"2300-01-01T00:00:00Z"}`,
		`{"userId":"u","stopTime":"2300-01-01T00:00:00Z"}`,
		`{"userId":"u","startTime":"` + time.Now().Add(30*24*time.Hour).UTC().Format(time.RFC3339) + `"}`,
	} {
		if st := h.do("POST", "/api/blackouts/start", keyA, body, &e); st != 400 || e.Reason != "invalid_time" {
			t.Errorf("%s: %d %+v, want 400 invalid_time", body, st, e)
		}
	}
	for round := range 20 {
		raceForQuota(t, round, "blackout", 12, 3, 200, func(i int) (int, string) {
			var e ErrorMessage
			st := h.do("POST", "/api/blackouts/start", keyA, fmt.Sprintf(`{"userId":"u%d"}`, i), &e)
			return st, e.Reason
		})
		if st := h.do("POST", "/api/blackouts/start", keyB, `{"userId":"u0"}`, nil); st != 200 {
			t.Fatalf("round %d: orgB at orgA's quota: %d", round, st)
		}
		h.do("POST", "/api/blackouts/stop", keyB, `{"userId":"u0"}`, nil)
		for i := range 12 {
			h.do("POST", "/api/blackouts/stop", keyA, fmt.Sprintf(`{"userId":"u%d"}`, i), nil)
		}
	}
}

// Finding 9: a WHEP start failure echoed the SFU's internal URL and up to
// 200 bytes of its reply. The caller now sees a generic message naming the
// instanceId; the log has the cause.
func TestSecurity_StartFailureIsGeneric(t *testing.T) {
	sfu := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "internal-sfu-secret: db=10.1.2.3 token=abc", http.StatusInternalServerError)
	}), ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go sfu.Serve(ln)
	t.Cleanup(func() { sfu.Close() })
	cfg := twoOrgConfig(t.TempDir(), "")
	internal := "http://" + ln.Addr().String() + "/internal-sfu/{conferenceId}/whep"
	cfg.Applications["whepA"] = &config.Application{OrganizationID: "orgA",
		Conference: config.ConferenceConfig{Kind: "whep", URLTemplate: internal}}
	var logs strings.Builder
	var logMu sync.Mutex
	h := startServiceConfig(t, cfg, slogTo(&logMu, &logs))
	ev, st := h.start(keyA, StartRecording{ApplicationID: "whepA", ConferenceID: "room", ConversationID: "c"})
	if st != 200 || ev.State != "FAILED" || ev.Error == nil || ev.Error.Code != "start_failed" {
		t.Fatalf("start: %d %+v, want FAILED start_failed", st, ev)
	}
	var msg RecordingDataMessage
	h.do("GET", recPath(ev), keyA, nil, &msg)
	for _, text := range []string{ev.Error.Message, fmt.Sprintf("%+v", msg)} {
		for _, secret := range []string{ln.Addr().String(), "internal-sfu", "10.1.2.3"} {
			if strings.Contains(text, secret) {
				t.Errorf("the caller sees %q: %s", secret, text)
			}
		}
	}
	if !strings.Contains(ev.Error.Message, ev.InstanceID) {
		t.Errorf("message %q does not name the instanceId", ev.Error.Message)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), "internal-sfu") || !strings.Contains(logs.String(), ev.InstanceID) {
		t.Errorf("the log lacks the cause under the instanceId:\n%s", logs.String())
	}
}

// /metrics can require a key, and move to an address of its own.
func TestSecurity_Metrics(t *testing.T) {
	cfg := twoOrgConfig(t.TempDir(), "")
	cfg.MetricsKey = "metrics-key-0123"
	h := startServiceConfig(t, cfg, nil)
	get := func(url, key string) int {
		req, _ := http.NewRequest("GET", url, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		key    string
		status int
	}{{"", 401}, {keyA, 401}, {"metrics-key-0123", 200}} {
		if st := get(h.url+"/metrics", c.key); st != c.status {
			t.Errorf("/metrics with %q: %d, want %d", c.key, st, c.status)
		}
	}
	cfg2 := twoOrgConfig(t.TempDir(), "")
	cfg2.MetricsListen = "127.0.0.1:0"
	h2 := startServiceConfig(t, cfg2, nil)
	if st := get(h2.url+"/metrics", ""); st != 404 {
		t.Errorf("/metrics on the API address with metricsListen: %d, want 404", st)
	}
	if st := get(h2.svc.MetricsURL, ""); st != 200 {
		t.Errorf("/metrics on %s: %d, want 200", h2.svc.MetricsURL, st)
	}
}

// Go's profiles are served on the metricsListen address only: to loopback
// clients without a metrics key, to the key's bearer with one.
func TestSecurity_Pprof(t *testing.T) {
	get := func(url, key string) (int, string) {
		req, _ := http.NewRequest("GET", url, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	cfg := twoOrgConfig(t.TempDir(), "")
	cfg.MetricsListen = "127.0.0.1:0"
	h := startServiceConfig(t, cfg, nil)
	pp := strings.TrimSuffix(h.svc.MetricsURL, "/metrics") + "/debug/pprof/"
	if st, body := get(pp+"heap?debug=1", ""); st != 200 || !strings.Contains(body, "heap profile") {
		t.Errorf("heap profile on the metrics address from loopback: %d %.80q, want 200 and a heap profile", st, body)
	}
	if st, body := get(pp+"goroutine?debug=1", ""); st != 200 || !strings.Contains(body, "goroutine profile") {
		t.Errorf("goroutine profile: %d %.80q", st, body)
	}
	for _, u := range []string{h.url + "/debug/pprof/heap", h.url + "/debug/pprof/profile?seconds=1"} {
		if st, _ := get(u, keyA); st != 404 {
			t.Errorf("%s on the API address: %d, want 404", u, st)
		}
	}
	cfg2 := twoOrgConfig(t.TempDir(), "")
	cfg2.MetricsListen = "127.0.0.1:0"
	cfg2.MetricsKey = "metrics-key-0123"
	h2 := startServiceConfig(t, cfg2, nil)
	pp2 := strings.TrimSuffix(h2.svc.MetricsURL, "/metrics") + "/debug/pprof/heap?debug=1"
	for _, c := range []struct {
		key    string
		status int
	}{{"", 401}, {keyA, 401}, {"metrics-key-0123", 200}} {
		if st, _ := get(pp2, c.key); st != c.status {
			t.Errorf("pprof with key %q: %d, want %d", c.key, st, c.status)
		}
	}
	// Without a key, a client from another host is refused.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/debug/pprof/heap", nil)
	req.RemoteAddr = "10.1.2.3:40000"
	mux := http.NewServeMux()
	pprofHandlers(mux, "")
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Errorf("pprof from 10.1.2.3 without a metrics key: %d, want 403", rec.Code)
	}
}

// slogTo returns a logger writing text lines to b under mu.
func slogTo(mu *sync.Mutex, b *strings.Builder) *slog.Logger {
	return slog.New(slog.NewTextHandler(lockedWriter{mu, b}, nil))
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// Finding 5: start accepted an empty metadata key, which the update route
// refused. Both refuse it now.
func TestSecurity_EmptyMetadataKey(t *testing.T) {
	h := startServiceConfig(t, twoOrgConfig(t.TempDir(), ""), nil)
	var e ErrorMessage
	if st := h.do("POST", "/api/recordings/start", keyA, `{"applicationId":"appA","conferenceId":"f","conversationId":"c","metadata":{"":"x"}}`, &e); st != 400 || e.Reason != "invalid_field" {
		t.Errorf("start with an empty metadata key: %d %+v, want 400", st, e)
	}
	ev, st := h.start(keyA, StartRecording{ApplicationID: "appA", ConferenceID: "f", ConversationID: "c"})
	if st != 200 {
		t.Fatalf("start: %d", st)
	}
	if st := h.do("POST", recPath(ev)+"/metadata", keyA, `{"metadata":{"":"x"}}`, &e); st != 400 {
		t.Errorf("update with an empty metadata key: %d %+v, want 400", st, e)
	}
}

// Finding 3 (second half): an ABORTED recording's local mix.wav and the
// parts it had uploaded were never removed, not even by DELETE. Now a
// recording that ends with no media leaves nothing behind.
func TestSecurity_AbortedLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	cfg := twoOrgConfig(dir, "")
	cfg.Uploads.ChunkInterval = 300 * time.Millisecond
	h := startServiceConfig(t, cfg, nil)
	ev, st := h.start(keyA, StartRecording{ApplicationID: "appA", ConferenceID: "empty", ConversationID: "nobody"})
	if st != 200 {
		t.Fatalf("start: %d", st)
	}
	files := func(root string) []string {
		var out []string
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.Contains(p, ev.InstanceID) {
				out = append(out, p)
			}
			return nil
		})
		return out
	}
	// While it runs, the mix of silence grows and its parts are uploaded.
	waitFor(t, 30*time.Second, func() bool {
		for _, f := range files(filepath.Join(dir, "storage")) {
			if strings.Contains(f, "parts") {
				return true
			}
		}
		return false
	})
	if len(files(filepath.Join(dir, "recordings"))) == 0 {
		t.Fatal("no local files while recording")
	}
	var stopped RecordingDataEvent
	if st := h.do("POST", recPath(ev)+"/stop", keyA, nil, &stopped); st != 200 || stopped.State != "ABORTED" {
		t.Fatalf("stop: %d %+v, want ABORTED", st, stopped)
	}
	waitFor(t, 60*time.Second, func() bool {
		return len(files(filepath.Join(dir, "recordings"))) == 0 && len(files(filepath.Join(dir, "storage"))) == 0
	})
}

// Finding 4: the chat limit counted the text and display name, not userId
// (60 adds of a 60 kB userId made a 3.85 MB chat.json against 256 KiB), and
// cobrowse counted payloads, not events or sessions (400 empty events in
// 400 sessions made 400 objects). Every stored byte and every event and
// session counts now.
func TestSecurity_TranscriptLimits(t *testing.T) {
	h := startServiceConfig(t, twoOrgConfig(t.TempDir(), ""), nil)
	ev, st := h.start(keyA, StartRecording{ApplicationID: "appA", ConferenceID: "f", ConversationID: "tl"})
	if st != 200 {
		t.Fatalf("start: %d", st)
	}
	chat := func(user string, n, from int) int {
		cmd := AddChatTranscriptCmd{ConversationID: ev.ConversationID, RecorderID: ev.RecorderID, InstanceID: ev.InstanceID}
		for i := range n {
			cmd.ChatTranscriptList = append(cmd.ChatTranscriptList, ChatTranscriptEntry{
				TimeStamp: time.Unix(int64(from+i), 0).UTC().Format(time.RFC3339), UserID: user})
		}
		return h.do("POST", "/api/recordings/chat/transcript/add", keyA, cmd, nil)
	}
	if st := chat(strings.Repeat("u", 60_000), 1, 0); st != 400 {
		t.Errorf("a 60 kB userId: %d, want 400", st)
	}
	user := strings.Repeat("u", 250)
	refused := false
	for i := 0; i < 2000 && !refused; i += 100 {
		switch st := chat(user, 100, i); st {
		case 200:
		case 413:
			refused = true
		default:
			t.Fatalf("chat add %d: %d", i, st)
		}
	}
	if !refused {
		t.Fatal("2000 entries of a 250-byte userId were all stored")
	}
	rec, err := h.svc.Manager.ByID(context.Background(), "orgA", ev.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	stored, _, err := h.svc.Manager.Transcript(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(stored); len(b) > recorder.MaxChatBytes || len(stored) == 0 {
		t.Errorf("stored chat is %d bytes, more than %d", len(b), recorder.MaxChatBytes)
	}
	// Cobrowse: empty events in ever new sessions stop at the session limit.
	n := 0
	for ; n < 400; n++ {
		seq, ts := int32(1), int64(1)
		st := h.do("POST", "/api/recordings/cobrowse/event", keyA, AddCobrowseEventCmd{ConversationID: ev.ConversationID, RecorderID: ev.RecorderID,
			InstanceID: ev.InstanceID, Event: &CobrowseEvent{SequenceID: &seq, SessionID: fmt.Sprint("s", n), Timestamp: &ts}}, nil)
		if st == 413 {
			break
		}
		if st != 200 {
			t.Fatalf("cobrowse %d: %d", n, st)
		}
	}
	if n != recorder.MaxCobrowseSessions {
		t.Errorf("%d cobrowse sessions stored, want %d", n, recorder.MaxCobrowseSessions)
	}
}

// Finding 4, under concurrency: chat and cobrowse adds are rows of their
// own, counted and inserted in one transaction, so adds racing for the last
// places never pass a limit. On SQLite, and on PostgreSQL with the adds
// split over two recorders sharing the database (the second forwards to the
// one running the recording). 20 rounds race for the chat's last bytes; the
// first 3 also race 80 new cobrowse sessions for the 64 places (each such
// round's stop uploads 64 files; the store's conformance suite races
// sessions, entries and bytes 20 times on both drivers).
func TestSecurity_TranscriptLimitsUnderConcurrentAdds(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			cfg := twoOrgConfig(t.TempDir(), "")
			hs := []*harness{}
			if driver == "postgres" {
				cfg.Store.Driver, cfg.Store.DSN = "postgres", pgtest.Start(t).NewDatabase(t)
				cfg2 := twoOrgConfig(t.TempDir(), "")
				cfg2.Store = cfg.Store
				hs = append(hs, startServiceConfig(t, cfg, nil), startServiceConfig(t, cfg2, nil))
			} else {
				hs = append(hs, startServiceConfig(t, cfg, nil))
			}
			var convs []string
			for round := range 20 {
				ev, st := hs[0].start(keyA, StartRecording{ApplicationID: "appA", ConferenceID: "f", ConversationID: fmt.Sprint("race", round)})
				if st != 200 {
					t.Fatalf("start: %d", st)
				}
				var wg sync.WaitGroup
				var mu sync.Mutex
				ok, refused := map[string]int{}, map[string]int{}
				add := func(n int, what, path string, body any) {
					wg.Add(1)
					go func() {
						defer wg.Done()
						var e ErrorMessage
						st := hs[n%len(hs)].do("POST", path, keyA, body, &e)
						mu.Lock()
						defer mu.Unlock()
						switch {
						case st == 200:
							ok[what]++
						case st == 413 && e.Reason == "too_large":
							refused[what]++
						default:
							t.Errorf("%s: %d %+v", what, st, e)
						}
					}()
				}
				sessions := round < 3 // each stop uploads one file per session: 64 files
				for i := range recorder.MaxCobrowseSessions + 16 {
					if !sessions {
						break
					}
					seq, ts := int32(1), int64(1)
					add(i, "cobrowse", "/api/recordings/cobrowse/event", AddCobrowseEventCmd{ConversationID: ev.ConversationID, RecorderID: ev.RecorderID,
						InstanceID: ev.InstanceID, Event: &CobrowseEvent{SequenceID: &seq, SessionID: fmt.Sprint("s", i), Timestamp: &ts}})
				}
				for i := range 10 { // 6 entries of 40000 bytes fit in 256 KiB, 7 do not
					add(i, "chat", "/api/recordings/chat/transcript/add", AddChatTranscriptCmd{ConversationID: ev.ConversationID,
						RecorderID: ev.RecorderID, InstanceID: ev.InstanceID, ChatTranscriptList: []ChatTranscriptEntry{{
							TimeStamp: time.Unix(int64(i), 0).UTC().Format(time.RFC3339), UserID: "u", Transcript: strings.Repeat("c", 40_000)}}})
				}
				wg.Wait()
				if ok["chat"] != 6 || refused["chat"] != 4 {
					t.Errorf("round %d: %d chat adds accepted, %d refused; want 6 and 4", round, ok["chat"], refused["chat"])
				}
				var rec RecordingDataMessage
				if st := hs[len(hs)-1].do("GET", recPath(ev), keyA, nil, &rec); st != 200 || rec.ChatTranscript == nil {
					t.Errorf("round %d: recording %d without its chat transcript", round, st)
				}
				if sessions {
					if ok["cobrowse"] != recorder.MaxCobrowseSessions || refused["cobrowse"] != 16 {
						t.Errorf("round %d: %d cobrowse sessions accepted, %d refused; want %d and 16", round, ok["cobrowse"], refused["cobrowse"], recorder.MaxCobrowseSessions)
					}
					var list ConversationCobrowseSessionDataMessage
					if st := hs[len(hs)-1].do("GET", "/api/recordings/"+ev.ConversationID+"/cobrowse", keyA, nil, &list); st != 200 ||
						len(list.CobrowseSessions) != recorder.MaxCobrowseSessions {
						t.Errorf("round %d: cobrowse list %d with %d sessions, want %d", round, st, len(list.CobrowseSessions), recorder.MaxCobrowseSessions)
					}
					convs = append(convs, ev.ConversationID)
				}
				var msg RecordingDataMessage
				if st := hs[0].do("POST", recPath(ev)+"/stop", keyA, nil, &msg); st != 200 {
					t.Fatalf("stop: %d", st)
				}
			}
			// Without media the files are uploaded once the recording is
			// final: every session's file, before the recorders shut down.
			for _, c := range convs {
				deadline := time.Now().Add(3 * time.Minute)
				for {
					var list ConversationCobrowseSessionDataMessage
					hs[0].do("GET", "/api/recordings/"+c+"/cobrowse", keyA, nil, &list)
					uploaded := 0
					for _, s := range list.CobrowseSessions {
						if s.Uploaded != "" {
							uploaded++
						}
					}
					if uploaded == recorder.MaxCobrowseSessions {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s: %d of %d cobrowse files uploaded", c, uploaded, recorder.MaxCobrowseSessions)
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		})
	}
}

// Finding 9 (second half): LOCAL storage exposed server paths (storage
// info's url and every location were file:///abs/path). Now no reply about
// a recording names a path of the server: not its data directory, not the
// LOCAL bucket's root.
func TestSecurity_NoServerPaths(t *testing.T) {
	dir := t.TempDir()
	h := startService(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := whiptest.Join(ctx, h.whipClient(key1), whip.Endpoint(h.url, "pconf", "alice", "MIC"), "alice", 440)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Leave(context.Background())
	ev, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: "pconf", ConversationID: "pconv"})
	if st != 200 {
		t.Fatalf("start: %d", st)
	}
	cmd := AddChatTranscriptCmd{ConversationID: ev.ConversationID, RecorderID: ev.RecorderID, InstanceID: ev.InstanceID,
		ChatTranscriptList: []ChatTranscriptEntry{{TimeStamp: time.Now().UTC().Format(time.RFC3339), UserID: "alice", Transcript: "hi"}}}
	if st := h.do("POST", "/api/recordings/chat/transcript/add", key1, cmd, nil); st != 200 {
		t.Fatalf("chat add: %d", st)
	}
	routes := []string{recPath(ev), recPath(ev) + "/storage/info", recPath(ev) + "/files", "/api/recordings/pconv",
		"/api/compositions/pconv", "/recordings/" + ev.InstanceID, "/api/recordings?conversationId=pconv"}
	check := func(when string) {
		for _, r := range routes {
			req, _ := http.NewRequest("GET", h.url+r, nil)
			req.Header.Set("Authorization", key1)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("%s GET %s: %d %s", when, r, resp.StatusCode, body)
				continue
			}
			if s := string(body); strings.Contains(s, dir) || strings.Contains(s, "file://") {
				t.Errorf("%s GET %s names a server path: %s", when, r, body)
			}
		}
	}
	waitFor(t, 30*time.Second, func() bool {
		var msg RecordingDataMessage
		h.do("GET", recPath(ev), key1, nil, &msg)
		return len(msg.Streams) == 1 && len(msg.Streams[0].Tracks) == 1
	})
	check("while recording:")
	var msg RecordingDataMessage
	h.do("GET", recPath(ev), key1, nil, &msg)
	if loc := msg.Streams[0].Tracks[0].Storage.LocalStorage.Location; !strings.HasPrefix(loc, "local-file:tracks/") {
		t.Errorf("local location %q, want local-file:tracks/…", loc)
	}
	time.Sleep(time.Second)
	var stopped RecordingDataEvent
	if st := h.do("POST", recPath(ev)+"/stop", key1, nil, &stopped); st != 200 || stopped.State != "STOPPED" {
		t.Fatalf("stop: %d %+v", st, stopped)
	}
	check("stopped:")
	h.do("GET", recPath(ev), key1, nil, &msg)
	if o := msg.Streams[0].Tracks[0].Storage.ObjectStorage; o == nil || !strings.HasPrefix(o.Location, "local://org1/pconv/") {
		t.Errorf("object storage %+v, want a local://{key} location", o)
	}
	var info StorageProfileDataMessage
	if h.do("GET", recPath(ev)+"/storage/info", key1, nil, &info); info.URL != "local://" {
		t.Errorf("storage info url %q, want local://", info.URL)
	}
}

// The rest of "callers see stable, generic messages": an upload refused by
// the storage (S3 with a wrong secret, versitygw checking SigV4) shows the
// storage's error code and a fixed message in the recording's state, never
// the storage's reply, its endpoint or a credential; the detail is in the
// server log, without the secret.
func TestSecurity_StorageErrorsAreGeneric(t *testing.T) {
	g := s3test.Start(t)
	bucket := g.NewBucket(t.Context(), t)
	const wrong = "wrong-secret-0123456789abcdef"
	var logs syncBuffer
	cfg := testConfig(t.TempDir())
	cfg.Applications = map[string]*config.Application{"bad": {Conference: config.ConferenceConfig{Kind: "whip"},
		Storage: &config.StorageProfile{Provider: config.ProviderS3, Bucket: bucket, Prefix: "rec", Region: s3test.Region,
			Endpoint: g.Endpoint, PathStyle: true, AccessKeyID: s3test.Access, SecretAccessKey: wrong}}}
	h := startServiceConfig(t, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := whiptest.Join(ctx, h.whipClient(key1), whip.Endpoint(h.url, "econf", "alice", "MIC"), "alice", 440)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Leave(context.Background())
	ev, st := h.start(key1, StartRecording{ApplicationID: "bad", ConferenceID: "econf", ConversationID: "econv"})
	if st != 200 {
		t.Fatalf("start: %d", st)
	}
	time.Sleep(time.Second)
	var stopped RecordingDataEvent
	h.do("POST", recPath(ev)+"/stop", key1, nil, &stopped)
	var raw json.RawMessage
	var msg RecordingDataMessage
	waitFor(t, 60*time.Second, func() bool {
		h.do("GET", recPath(ev), key1, nil, &raw)
		json.Unmarshal(raw, &msg)
		return len(msg.Streams) == 1 && len(msg.Streams[0].Tracks) == 1 && msg.Streams[0].Tracks[0].Storage.ObjectStorage != nil &&
			msg.Streams[0].Tracks[0].Storage.ObjectStorage.Error != nil
	})
	e := msg.Streams[0].Tracks[0].Storage.ObjectStorage.Error
	if e.Code == "" || !strings.HasPrefix(e.Message, "the storage profile refused or failed the upload ("+e.Code+")") {
		t.Errorf("track upload error %+v, want the code and the fixed message", e)
	}
	// (The profile's own endpoint is its storage info url: the customer's bucket, not ours.)
	for _, leak := range []string{"SignatureDoesNotMatch", "InvalidAccessKeyId", "StatusCode", wrong, "operation error"} {
		if strings.Contains(string(raw), leak) {
			t.Errorf("the recording's view holds %q: %s", leak, raw)
		}
	}
	if !strings.Contains(logs.String(), "failure recorded") && !strings.Contains(logs.String(), "attempt failed") {
		t.Error("the storage's error is not in the log")
	}
	if strings.Contains(logs.String(), wrong) {
		t.Error("the log holds the secret")
	}
}

// Finding 11: S3 refuses more than 2 KB of user metadata per object
// (versitygw too: MetadataTooLarge, see s3store's TestGateway_MetadataLimit),
// and start accepted 64 entries of 4 KiB (now the 64 KiB body limit allows
// 15). A recording started with 15 entries of 4 KiB on S3 uploads every
// object: their metadata stays within 2 KB with "user-metadata: partial",
// and the manifest keeps all of it.
func TestSecurity_S3MetadataLimit(t *testing.T) {
	g := s3test.Start(t)
	bucket := g.NewBucket(t.Context(), t)
	cfg := testConfig(t.TempDir())
	profile := &config.StorageProfile{Provider: config.ProviderS3, Bucket: bucket, Prefix: "rec", Region: s3test.Region,
		Endpoint: g.Endpoint, PathStyle: true, AccessKeyID: s3test.Access, SecretAccessKey: s3test.Secret}
	cfg.Applications = map[string]*config.Application{"s3": {Conference: config.ConferenceConfig{Kind: "whip"}, Storage: profile}}
	h := startServiceConfig(t, cfg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := whiptest.Join(ctx, h.whipClient(key1), whip.Endpoint(h.url, "mconf", "alice", "MIC"), "alice", 440)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Leave(context.Background())
	meta := map[string]string{}
	for i := range 15 {
		meta[fmt.Sprintf("k%02d", i)] = strings.Repeat("v", 4096)
	}
	ev, st := h.start(key1, StartRecording{ApplicationID: "s3", ConferenceID: "mconf", ConversationID: "mconv", Metadata: meta})
	if st != 200 {
		t.Fatalf("start with 15 entries of 4 KiB: %d", st)
	}
	time.Sleep(time.Second)
	var stopped RecordingDataEvent
	if st := h.do("POST", recPath(ev)+"/stop", key1, nil, &stopped); st != 200 || stopped.State != "STOPPED" {
		t.Fatalf("stop: %d %+v", st, stopped)
	}
	b, err := h.svc.Manager.Bucket(ctx, "s3")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := h.svc.Manager.Get(ctx, "org1", ev.ConversationID, ev.RecorderID, ev.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := b.List(ctx, rec.Storage.Prefix)
	if err != nil || len(objs) < 3 {
		t.Fatalf("objects %d, %v; want the track, the mix and the manifest", len(objs), err)
	}
	for _, o := range objs {
		a, err := b.Attributes(ctx, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for k, v := range a.Metadata {
			n += len(k) + len(v)
		}
		if n > 2048 || a.Metadata["user-metadata"] != "partial" {
			t.Errorf("%s: %d bytes of metadata, user-metadata %q", o.Key, n, a.Metadata["user-metadata"])
		}
	}
	var comp RecordingDataMessage
	if st := h.do("GET", "/api/compositions/mconv", key1, nil, &comp); st != 200 || comp.Composition == nil || comp.Composition.Manifest == nil {
		t.Fatalf("composition: %d", st)
	}
	var man composition.Manifest
	if err := json.Unmarshal(getSigned(t, comp.Composition.Manifest.URL, ""), &man); err != nil {
		t.Fatal(err)
	}
	if len(man.Metadata) != 15 {
		t.Errorf("manifest metadata: %d entries, want 15", len(man.Metadata))
	}
}

// Finding 5 (first half): user metadata overwrote the recorder's own on
// stored objects (OrganizationId, InstanceId forged through start
// metadata). On S3 (a gateway that checks signatures), every object of a
// recording started with such keys carries the recorder's values, and the
// caller's under user-. And (the "nothing left behind") DELETE
// removes the recording's parts as well as its final objects.
func TestSecurity_UserMetadataCannotReplaceSystemFields(t *testing.T) {
	g := s3test.Start(t)
	bucket := g.NewBucket(t.Context(), t)
	cfg := testConfig(t.TempDir())
	profile := &config.StorageProfile{Provider: config.ProviderS3, Bucket: bucket, Prefix: "rec", Region: s3test.Region,
		Endpoint: g.Endpoint, PathStyle: true, AccessKeyID: s3test.Access, SecretAccessKey: s3test.Secret}
	cfg.Applications = map[string]*config.Application{"s3": {Conference: config.ConferenceConfig{Kind: "whip"}, Storage: profile}}
	h := startServiceConfig(t, cfg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := whiptest.Join(ctx, h.whipClient(key1), whip.Endpoint(h.url, "fconf", "alice", "MIC"), "alice", 440)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Leave(context.Background())
	meta := map[string]string{"OrganizationId": "orgB", "instanceid": "forged", "ApplicationId": "other", "x": "1"}
	ev, st := h.start(key1, StartRecording{ApplicationID: "s3", ConferenceID: "fconf", ConversationID: "fconv", Metadata: meta})
	if st != 200 {
		t.Fatalf("start: %d", st)
	}
	waitFor(t, 30*time.Second, func() bool { // audio in the track's file: the recording has media
		r, err := h.svc.Manager.Get(ctx, "org1", ev.ConversationID, ev.RecorderID, ev.InstanceID)
		if err != nil || len(r.Streams) == 0 || len(r.Streams[0].Tracks) == 0 {
			return false
		}
		fi, err := os.Stat(filepath.Join(r.Dir, filepath.FromSlash(r.Streams[0].Tracks[0].File)))
		return err == nil && fi.Size() > 4096
	})
	var stopped RecordingDataEvent
	if st := h.do("POST", recPath(ev)+"/stop", key1, nil, &stopped); st != 200 || stopped.State != "STOPPED" {
		t.Fatalf("stop: %d %+v", st, stopped)
	}
	b, err := h.svc.Manager.Bucket(ctx, "s3")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := h.svc.Manager.Get(ctx, "org1", ev.ConversationID, ev.RecorderID, ev.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := b.List(ctx, rec.Storage.Prefix)
	if err != nil || len(objs) < 3 {
		t.Fatalf("objects %d, %v; want the track, the mix and the manifest", len(objs), err)
	}
	want := map[string]string{"organizationid": "org1", "instanceid": ev.InstanceID, "applicationid": "s3",
		"user-organizationid": "orgB", "user-instanceid": "forged", "user-applicationid": "other", "user-x": "1"}
	for _, o := range objs {
		a, err := b.Attributes(ctx, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range want {
			if a.Metadata[k] != v {
				t.Errorf("%s: metadata %s = %q, want %q (all: %v)", o.Key, k, a.Metadata[k], v, a.Metadata)
			}
		}
	}
	// A part an interrupted upload left behind goes with the recording.
	part := rec.Storage.Prefix + "parts/tracks/left-behind.0001"
	if _, err := b.Upload(ctx, part, strings.NewReader("part"), nil); err != nil {
		t.Fatal(err)
	}
	var tr TelephonyRecording
	if st := h.do("DELETE", "/v1/recordings/"+ev.InstanceID, key1, nil, &tr); st != 200 {
		t.Fatalf("delete: %d", st)
	}
	if left, err := b.List(ctx, rec.Storage.Prefix); err != nil || len(left) != 0 {
		t.Errorf("after DELETE: %d objects left (%v): %+v", len(left), err, left)
	}
}

// Finding 8 (first half): SSE event ids were global, so one tenant saw the
// other's activity rate from the gaps. Now (the fleet's per-organization
// sequence) org1's ids run 1, 2, 3… however busy org2 is in between.
func TestSecurity_EventIDsPerTenant(t *testing.T) {
	h := startService(t, t.TempDir())
	busy := func(conv string) {
		ev, st := h.start(key2, StartRecording{ApplicationID: "app2", ConferenceID: conv, ConversationID: conv})
		if st != 200 {
			t.Fatalf("org2 start: %d", st)
		}
		h.do("POST", recPath(ev)+"/stop", key2, nil, nil)
	}
	busy("b1")
	ev, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: "a1", ConversationID: "a1"})
	if st != 200 {
		t.Fatalf("org1 start: %d", st)
	}
	busy("b2")
	busy("b3")
	h.do("POST", recPath(ev)+"/stop", key1, nil, nil)
	stored, err := h.svc.Events.Since(context.Background(), "org1", 0, 1000)
	if err != nil || len(stored) < 2 {
		t.Fatalf("org1's events: %d, %v; want its start and stop", len(stored), err)
	}
	// Through the server: the stream resumed after org1's first event.
	evs := append(stored[:1:1], sseEvents(t, h, key1, stored[0].ID, len(stored)-1)...)
	if len(evs) != len(stored) {
		t.Fatalf("the stream gave %d of org1's %d events", len(evs)-1, len(stored)-1)
	}
	for i, e := range evs {
		if e.OrganizationID != "org1" || e.ID != int64(i+1) {
			t.Errorf("org1's event %d: id %d of %s, want id %d (no gaps from org2's events)", i, e.ID, e.OrganizationID, i+1)
		}
	}
}

// openEventStreams opens n event streams at once with key, the i-th on
// urls[i%len(urls)]. It returns the streams that opened (the caller closes
// them) and how many were refused with 429; any other answer is an error.
func openEventStreams(t *testing.T, ctx context.Context, key string, n int, urls ...string) (open []io.Closer, refused int) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range n {
		url := urls[i%len(urls)]
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, "GET", url+"/api/events", nil)
			req.Header.Set("Authorization", key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			switch resp.StatusCode {
			case 200:
				open = append(open, resp.Body)
				return
			case 429:
				refused++
			default:
				t.Errorf("event stream %d on %s: %d", i, url, resp.StatusCode)
			}
			resp.Body.Close()
		})
	}
	wg.Wait()
	return open, refused
}
