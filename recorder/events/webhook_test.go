package events

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rtcrec/recorder/recorder/internal/dbtest"
	"github.com/rtcrec/recorder/recorder/store"
)

// receiver is a webhook endpoint that fails the first failFirst requests (or
// every request while down is set), verifies every signature and records the
// event ids it acknowledged.
type receiver struct {
	t         *testing.T
	secret    string
	mu        sync.Mutex
	failFirst int
	down      bool
	requests  int
	acked     []int64
	ackedCh   chan int64
}

func newReceiver(t *testing.T, secret string, failFirst int) (*receiver, *httptest.Server) {
	rc := &receiver{t: t, secret: secret, failFirst: failFirst, ackedCh: make(chan int64, 1000)}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return rc, srv
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id, err := VerifySignature(rc.secret, r.Header, body, time.Now(), time.Minute)
	if err != nil {
		rc.t.Errorf("receiver: %v", err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if r.Header.Get("Content-Type") != "application/json" || r.Method != http.MethodPost {
		rc.t.Errorf("receiver: %s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.requests++
	if rc.down || rc.requests <= rc.failFirst {
		http.Error(w, "not now", http.StatusServiceUnavailable)
		return
	}
	rc.acked = append(rc.acked, id)
	rc.ackedCh <- id
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) setDown(down bool) {
	rc.mu.Lock()
	rc.down = down
	rc.mu.Unlock()
}

// waitAcked waits until the receiver acknowledged event want.
func (rc *receiver) waitAcked(t *testing.T, want int64) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case id := <-rc.ackedCh:
			if id == want {
				return
			}
		case <-timeout:
			rc.mu.Lock()
			defer rc.mu.Unlock()
			t.Fatalf("event %d not acknowledged; acked %v after %d requests", want, rc.acked, rc.requests)
		}
	}
}

func (rc *receiver) ackedIDs() []int64 {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]int64(nil), rc.acked...)
}

func fastRetry(hooks map[string][]Webhook) Options {
	return Options{
		WebhooksFor: func(_, app string) []Webhook { return hooks[app] },
		MinBackoff:  5 * time.Millisecond,
		MaxBackoff:  40 * time.Millisecond,
	}
}

func TestWebhook_RetriedUntilAcknowledgedInOrder(t *testing.T) {
	dbtest.NoLeaks(t)
	rc, srv := newReceiver(t, "s3cret", 3)
	hooks := map[string][]Webhook{"app1": {{URL: srv.URL + "/hook", Secret: "s3cret", Events: []string{"state.updated", "upload.*"}}}}
	b, _ := newBus(t, fastRetry(hooks))
	ctx := context.Background()
	var want []int64
	for _, e := range []Event{
		ev(StateUpdated, "org1", "app1", `{"state":"ACTIVE"}`),
		ev(RecordingPaused, "org1", "app1", ""), // filtered out
		ev(UploadCompleted, "org1", "app1", `{"key":"a/mix.wav"}`),
		ev(StateUpdated, "org1", "app2", ""), // another application: no webhook
		ev(UploadFailed, "org1", "app1", `{"code":"Unavailable"}`),
		ev(StateUpdated, "org1", "app1", `{"state":"STOPPED"}`),
	} {
		got, err := b.Publish(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		if hooks[e.ApplicationID] != nil && hooks[e.ApplicationID][0].Matches(e.Type) {
			want = append(want, got.ID)
		}
	}
	rc.waitAcked(t, want[len(want)-1])
	if got := rc.ackedIDs(); !equalIDs(got, want) {
		t.Fatalf("acknowledged %v, want %v (each once, in order)", got, want)
	}
	ds, err := b.Deliveries(ctx, "org1", want[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].State != Delivered || ds[0].Attempts != 4 || ds[0].LastStatus != http.StatusServiceUnavailable {
		t.Fatalf("first delivery %+v, want delivered on attempt 4 after 503s", ds)
	}
	if ds, _ := b.Deliveries(ctx, "org1", 2); len(ds) != 0 {
		t.Errorf("filtered event has deliveries %+v", ds)
	}
}

func TestWebhook_PendingDeliveriesSurviveRestart(t *testing.T) {
	dbtest.NoLeaks(t)
	rc, srv := newReceiver(t, "k", 0)
	rc.setDown(true)
	hooks := map[string][]Webhook{"app1": {{URL: srv.URL, Secret: "k"}}}
	path := filepath.Join(t.TempDir(), "events.db")
	ctx := context.Background()

	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	opts := fastRetry(hooks)
	opts.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	b, err := New(ctx, db, opts)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := b.Publish(ctx, ev(StateUpdated, "org1", "app1", "")); err != nil {
			t.Fatal(err)
		}
	}
	// Let at least one attempt fail, then stop the process's bus and database.
	for {
		rc.mu.Lock()
		n := rc.requests
		rc.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.Close()
	db.Close()

	rc.setDown(false)
	db2 := openStore(t, path)
	b2, err := New(ctx, db2, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	rc.waitAcked(t, 3)
	if got := rc.ackedIDs(); !equalIDs(got, []int64{1, 2, 3}) {
		t.Fatalf("acknowledged %v after restart, want [1 2 3]", got)
	}
	if _, err := b2.Publish(ctx, ev(StateUpdated, "org1", "app1", "")); err != nil {
		t.Fatal(err)
	}
	rc.waitAcked(t, 4) // ids keep increasing across the restart
}

func TestWebhook_GivesUpAfterMaxAgeAndMovesOn(t *testing.T) {
	dbtest.NoLeaks(t)
	rc, srv := newReceiver(t, "k", 0)
	rc.setDown(true)
	hooks := map[string][]Webhook{"app1": {{URL: srv.URL, Secret: "k"}}}
	opts := fastRetry(hooks)
	opts.MaxAge = time.Hour
	b, _ := newBus(t, opts)
	ctx := context.Background()
	old := ev(StateUpdated, "org1", "app1", "")
	old.Occurred = time.Now().Add(-2 * time.Hour)
	if _, err := b.Publish(ctx, old); err != nil {
		t.Fatal(err)
	}
	rc.setDown(false)
	if _, err := b.Publish(ctx, ev(StateUpdated, "org1", "app1", "")); err != nil {
		t.Fatal(err)
	}
	rc.waitAcked(t, 2)
	ds, _ := b.Deliveries(ctx, "org1", 1)
	if len(ds) != 1 || ds[0].State != Expired || ds[0].LastError == "" {
		t.Fatalf("old event's delivery %+v, want expired with a reason", ds)
	}
	if got := rc.ackedIDs(); !equalIDs(got, []int64{2}) {
		t.Fatalf("acknowledged %v, want [2]", got)
	}
}

func TestWebhook_UnusableURLIsDropped(t *testing.T) {
	for _, u := range []string{"ftp://127.0.0.1/x", "/relative", "http://", "http://[::1"} {
		t.Run(u, func(t *testing.T) {
			b, _ := newBus(t, fastRetry(map[string][]Webhook{"app1": {{URL: u, Secret: "k"}}}))
			if _, err := b.Publish(context.Background(), ev(StateUpdated, "org1", "app1", "")); err != nil {
				t.Fatal(err)
			}
			waitState(t, b, 1, Dropped)
		})
	}
}

// waitState waits until event id's only delivery reaches state.
func waitState(t *testing.T, b *Bus, id int64, state DeliveryState) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds, _ := b.Deliveries(context.Background(), "org1", id)
		if len(ds) == 1 && ds[0].State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries %+v, want one %s", ds, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWebhook_RemovedWebhookIsDropped(t *testing.T) {
	dbtest.NoLeaks(t)
	rc, srv := newReceiver(t, "k", 0)
	rc.setDown(true)
	var mu sync.Mutex
	hooks := []Webhook{{URL: srv.URL, Secret: "k"}}
	opts := fastRetry(nil)
	opts.WebhooksFor = func(string, string) []Webhook { mu.Lock(); defer mu.Unlock(); return hooks }
	b, _ := newBus(t, opts)
	ctx := context.Background()
	if _, err := b.Publish(ctx, ev(StateUpdated, "org1", "app1", "")); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	hooks = nil
	mu.Unlock()
	waitState(t, b, 1, Dropped)
}

func TestWebhook_SlowEndpointDoesNotDelayOthers(t *testing.T) {
	dbtest.NoLeaks(t)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	rc, fast := newReceiver(t, "k", 0)
	hooks := map[string][]Webhook{"app1": {{URL: slow.URL, Secret: "k"}, {URL: fast.URL, Secret: "k"}}}
	b, _ := newBus(t, fastRetry(hooks))
	for range 3 {
		if _, err := b.Publish(context.Background(), ev(StateUpdated, "org1", "app1", "")); err != nil {
			t.Fatal(err)
		}
	}
	rc.waitAcked(t, 3)
}

func TestVerifySignature(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"id":7,"type":"state.updated"}`)
	good := func() http.Header {
		h := http.Header{}
		h.Set(HeaderEventID, "7")
		h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
		h.Set(HeaderSignature, Sign("secret", 7, now.Unix(), body))
		return h
	}
	tests := []struct {
		name   string
		secret string
		edit   func(http.Header)
		body   string
		ok     bool
	}{
		{"valid", "secret", nil, string(body), true},
		{"wrong secret", "other", nil, string(body), false},
		{"tampered body", "secret", nil, `{"id":7,"type":"state.updatee"}`, false},
		{"other event id", "secret", func(h http.Header) { h.Set(HeaderEventID, "8") }, string(body), false},
		{"replayed later", "secret", func(h http.Header) {
			old := now.Add(-10 * time.Minute).Unix()
			h.Set(HeaderTimestamp, strconv.FormatInt(old, 10))
			h.Set(HeaderSignature, Sign("secret", 7, old, body))
		}, string(body), false},
		{"no signature", "secret", func(h http.Header) { h.Del(HeaderSignature) }, string(body), false},
		{"no timestamp", "secret", func(h http.Header) { h.Del(HeaderTimestamp) }, string(body), false},
		{"bad id", "secret", func(h http.Header) { h.Set(HeaderEventID, "x") }, string(body), false},
		{"uppercase hex", "secret", func(h http.Header) {
			h.Set(HeaderSignature, "sha256="+upperHex(h.Get(HeaderSignature)[7:]))
		}, string(body), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := good()
			if tt.edit != nil {
				tt.edit(h)
			}
			id, err := VerifySignature(tt.secret, h, []byte(tt.body), now, 5*time.Minute)
			if tt.ok != (err == nil) {
				t.Fatalf("err %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrBadSignature) {
				t.Fatalf("err %v is not ErrBadSignature", err)
			}
			if tt.ok && id != 7 {
				t.Fatalf("id %d", id)
			}
		})
	}
}

func upperHex(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func FuzzVerifySignature(f *testing.F) {
	f.Add("7", "1800000000", "sha256=00", []byte("{}"))
	f.Add("", "", "", []byte(nil))
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set(HeaderEventID, id)
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignature, sig)
		got, err := VerifySignature("k", h, body, now, time.Minute)
		if err == nil {
			// Only a correct signature verifies.
			n, _ := strconv.ParseInt(ts, 10, 64)
			if sig != Sign("k", got, n, body) {
				t.Fatalf("verified a wrong signature %q", sig)
			}
		}
	})
}

func TestWebhook_Matches(t *testing.T) {
	tests := []struct {
		filter []string
		typ    Type
		want   bool
	}{
		{nil, StateUpdated, true},
		{[]string{"*"}, UploadFailed, true},
		{[]string{"state.updated"}, StateUpdated, true},
		{[]string{"state.updated"}, RecordingPaused, false},
		{[]string{"upload.*"}, UploadFailed, true},
		{[]string{"upload.*"}, "uploads.failed", false},
		{[]string{"upload.*"}, "upload", false},
		{[]string{"recording.paused", "blackout.*"}, BlackoutStopped, true},
	}
	for _, tt := range tests {
		if got := (Webhook{Events: tt.filter}).Matches(tt.typ); got != tt.want {
			t.Errorf("%v matches %s = %v, want %v", tt.filter, tt.typ, got, tt.want)
		}
	}
}
