package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/recorder/conference/whip"
	"github.com/rtcrec/recorder/recorder/conference/whip/whiptest"
)

// Test API keys: two tenants.
const (
	key1 = "key-org1-0123456789"
	key2 = "key-org2-0123456789"
)

// harness is a recorder service on a loopback port with two tenants.
type harness struct {
	t      testing.TB
	svc    *Service
	url    string
	stop   func()       // shuts the service down (also at the test's end)
	client *http.Client // of do; nil: http.DefaultClient
}

func testConfig(dir string) *config.Config {
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = dir
	cfg.WebRTC.IncludeLoopback = true
	cfg.WebRTC.Interfaces = []string{"lo"}
	cfg.APIKeys = []config.APIKey{
		{Key: key1, OrganizationID: "org1", Applications: []string{"*"}},
		{Key: key2, OrganizationID: "org2", Applications: []string{"app2"}},
	}
	return cfg
}

// startService runs a service on dir until the test ends.
func startService(t testing.TB, dir string) *harness {
	t.Helper()
	return startServiceConfig(t, testConfig(dir), nil)
}

// startServiceConfig runs a service with cfg, logging to log (nil: slog's
// default), until the test ends.
func startServiceConfig(t testing.TB, cfg *config.Config, log *slog.Logger) *harness {
	t.Helper()
	svc, err := NewService(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	svc.HTTP.Handler = contractCheck(t, svc.HTTP.Handler) // openapi_test.go
	done := make(chan error, 1)
	go func() { done <- svc.Serve() }()
	h := &harness{t: t, svc: svc, url: svc.URL}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		// Connections the client dialled for concurrent requests but never
		// used look new to the server, and Shutdown waits up to 5 s for a
		// new connection's first request: close them first.
		http.DefaultClient.CloseIdleConnections()
		if h.client != nil {
			h.client.CloseIdleConnections()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := svc.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	t.Cleanup(stop)
	h.stop = stop
	return h
}

// do sends a request and decodes a JSON reply into out (if not nil); it
// returns the status.
func (h *harness) do(method, path, key string, body any, out any) int {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := h.client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req.WithContext(ctx))
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			h.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}

// whipClient returns a WHIP client for tenant key on loopback.
func (h *harness) whipClient(key string) *whip.Client {
	h.t.Helper()
	api, closeFn, err := whip.NewAPI(whip.Settings{LoopbackOnly: true, UDP4Only: true})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { closeFn() })
	return &whip.Client{API: api, Token: key}
}

func (h *harness) start(key string, cmd StartRecording) (RecordingDataEvent, int) {
	h.t.Helper()
	var ev RecordingDataEvent
	st := h.do("POST", "/api/recordings/start", key, cmd, &ev)
	return ev, st
}

// waitWritten waits until h's recorder has written n packets to track
// files: a recording stopped after that had media, and ends STOPPED, not
// ABORTED. On a loaded machine a publisher's first packets can come later
// than a test's next commands.
func (h *harness) waitWritten(n uint64) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for h.svc.Manager.MediaStats().Written < n {
		if time.Now().After(deadline) {
			h.t.Fatalf("the recorder wrote %d packets in 20 s, want %d", h.svc.Manager.MediaStats().Written, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func recPath(ev RecordingDataEvent) string {
	return "/api/recordings/" + ev.ConversationID + "/" + ev.RecorderID + "/" + ev.InstanceID
}

// recordTone records one participant sending a tone for d on a new
// conversation and returns the signed URL of its mix.
func recordTone(t *testing.T, ctx context.Context, h *harness, conv string, freq float64, d time.Duration) string {
	t.Helper()
	p, err := whiptest.Join(ctx, h.whipClient(key1), whip.Endpoint(h.url, conv+"-conf", "u-"+conv, "MIC"), conv, freq)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Leave(context.Background())
	ev, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: conv + "-conf", ConversationID: conv})
	if st != 200 {
		t.Fatalf("start: %d", st)
	}
	time.Sleep(d)
	var stopped RecordingDataEvent
	if st := h.do("POST", recPath(ev)+"/stop", key1, nil, &stopped); st != 200 || stopped.State != "STOPPED" {
		t.Fatalf("stop: %d %+v", st, stopped)
	}
	var comp RecordingDataMessage
	if st := h.do("GET", "/api/compositions/"+conv, key1, nil, &comp); st != 200 || comp.Composition == nil || len(comp.Composition.Outputs) == 0 {
		t.Fatalf("composition: %d %+v", st, comp)
	}
	return comp.Composition.Outputs[0].URL
}

func TestService_Metrics(t *testing.T) {
	h := startService(t, t.TempDir())
	if _, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: "m", ConversationID: "m"}); st != 200 {
		t.Fatalf("start: %d", st)
	}
	resp, err := http.Get(h.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"recorder_recordings_active 1", "recorder_whip_sessions 0", "go_goroutines"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The API's routes are still served beside it.
	if st := h.do("GET", "/healthz", "", nil, nil); st != 200 {
		t.Errorf("/healthz: %d", st)
	}
}
