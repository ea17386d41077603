package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/recorder"
	"github.com/rtcrec/recorder/recorder/events"
)

// webhookReceiver is an endpoint that fails the first deliveries with 503
// and records the verified ones.
type webhookReceiver struct {
	srv      *httptest.Server
	failures atomic.Int32
	mu       sync.Mutex
	got      []events.Event
	bad      int
}

func newReceiver(t *testing.T, secret string, failFirst int32) *webhookReceiver {
	r := &webhookReceiver{}
	r.failures.Store(failFirst)
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if r.failures.Add(-1) >= 0 {
			http.Error(w, "not now", http.StatusServiceUnavailable)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if _, err := events.VerifySignature(secret, req.Header, body, time.Now(), time.Minute); err != nil {
			r.bad++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var ev events.Event
		json.Unmarshal(body, &ev)
		for _, e := range r.got {
			if e.ID == ev.ID {
				return // at least once: deduplicate
			}
		}
		r.got = append(r.got, ev)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *webhookReceiver) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.got {
		out = append(out, string(e.Type))
	}
	return out
}

// TestEvents_SSEWebhooksRestart drives a recording through start, pause,
// resume and stop with the command envelope and checks the event stream
// (tenant-scoped, resumable with Last-Event-ID), a webhook that fails its
// first deliveries, and that the events survive a restart.
func TestEvents_SSEWebhooksRestart(t *testing.T) {
	dir := t.TempDir()
	rcv := newReceiver(t, "s3cret", 2)
	withHooks := func(c *config.Config) {
		c.Applications = map[string]*config.Application{"app1": {
			Conference: config.ConferenceConfig{Kind: "whip"},
			Webhooks:   []config.WebhookConfig{{URL: rcv.srv.URL, Secret: "s3cret", Events: []string{"state.updated", "recording.*"}}},
		}}
	}
	h := startWithConfig(t, dir, withHooks)
	// A live subscriber from the start.
	live := make(chan []events.Event, 1)
	subscribed := make(chan struct{})
	go func() { live <- sseEventsSubscribed(t, h, key1, 0, 5, subscribed) }()
	select {
	case <-subscribed:
	case <-time.After(15 * time.Second):
		t.Fatal("the live subscriber's stream did not open in 15 s")
	}
	target := "s.c.ev-conv"
	for _, cmd := range []string{CommandStart, CommandPause, CommandResume, CommandStop} {
		data := `{}`
		if cmd == CommandStart {
			data = `{"applicationId":"app1"}`
		}
		var r CommandReply
		if st := h.do("POST", "/api/commands", key1, `{"command":"`+cmd+`","target":"`+target+`","data":`+data+`}`, &r); st != 200 || r.Result != "success" {
			t.Fatalf("%s: %d %+v", cmd, st, r)
		}
	}
	// Another tenant's activity must not reach org1's stream.
	h.start(key2, StartRecording{ApplicationID: "app2", ConferenceID: "x", ConversationID: "other"})

	var evs []events.Event
	select {
	case evs = <-live:
	case <-time.After(15 * time.Second):
		t.Fatal("no live events")
	}
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, string(e.Type))
		if e.OrganizationID != "org1" {
			t.Errorf("org1's stream carries %+v", e)
		}
	}
	want := []string{"state.updated", "state.updated", "recording.paused", "state.updated", "recording.resumed"}
	if !slices.Equal(kinds, want) {
		t.Errorf("live events %v, want %v", kinds, want)
	}
	var first recorder.RecordingEvent
	json.Unmarshal(evs[0].Data, &first)
	if first.State != "ACTIVE" || first.ConversationID != "ev-conv" || first.InstanceID == "" {
		t.Errorf("first event data %+v, want ACTIVE of ev-conv", first)
	}

	// Resume after the second event: the rest, in order, then the stop.
	rest := sseEvents(t, h, key1, evs[1].ID, 4)
	if len(rest) != 4 || rest[0].ID != evs[2].ID || rest[3].Type != "state.updated" {
		t.Errorf("resumed stream %+v, want from event %d on", rest, evs[2].ID)
	}

	// The webhook gets every state.updated and recording.* event despite
	// its first failures, each signed, each once.
	deadline := time.Now().Add(20 * time.Second)
	wantHook := []string{"state.updated", "state.updated", "recording.paused", "state.updated", "recording.resumed", "state.updated"}
	for !slices.Equal(rcv.types(), wantHook) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if got := rcv.types(); !slices.Equal(got, wantHook) || rcv.bad != 0 {
		t.Errorf("webhook received %v (bad signatures %d), want %v", got, rcv.bad, wantHook)
	}

	// After a restart the stream replays from the outbox.
	lastID := rest[len(rest)-1].ID
	h.stop()
	h2 := startWithConfig(t, dir, withHooks)
	replay := sseEvents(t, h2, key1, evs[0].ID, 5)
	if len(replay) != 5 || replay[0].ID != evs[1].ID || replay[4].ID != lastID {
		t.Errorf("replay after restart: %d events from %v, want 5 from %d to %d", len(replay), replay, evs[1].ID, lastID)
	}
	var e ErrorMessage
	if st := h2.do("GET", "/api/events", "", nil, &e); st != 401 {
		t.Errorf("events without key: %d", st)
	}
}

func TestEvents_BadWebhookConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		hook config.WebhookConfig
		want string
	}{
		{"no scheme", config.WebhookConfig{URL: "example.com/hook", Secret: "s"}, "webhooks[0].url"},
		{"ftp", config.WebhookConfig{URL: "ftp://example.com/hook", Secret: "s"}, "webhooks[0].url"},
		{"no secret", config.WebhookConfig{URL: "http://127.0.0.1:1/hook"}, "needs a secret"},
	} {
		cfg := testConfig(t.TempDir())
		cfg.Applications = map[string]*config.Application{"app1": {Conference: config.ConferenceConfig{Kind: "whip"},
			Webhooks: []config.WebhookConfig{tc.hook}}, "app2": nil}
		svc, err := NewService(context.Background(), cfg, nil)
		if err == nil {
			svc.Shutdown(context.Background())
			t.Errorf("%s: service started", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "applications.app1") {
			t.Errorf("%s: %v, want it to name applications.app1 and %q", tc.name, err, tc.want)
		}
	}
}
