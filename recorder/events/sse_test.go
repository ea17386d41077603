package events

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtcrec/recorder/recorder/internal/dbtest"
)

func TestParseLastEventID(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"", 0, false},
		{"0", 0, false},
		{"42", 42, false},
		{"0007", 7, false},
		{"9223372036854775807", 1<<63 - 1, false},
		{"9223372036854775808", 0, true},
		{"99999999999999999999", 0, true},
		{"-1", 0, true},
		{"+1", 0, true},
		{" 1", 0, true},
		{"1 ", 0, true},
		{"1e3", 0, true},
		{"0x10", 0, true},
		{"１", 0, true}, // full-width digit
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLastEventID(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ParseLastEventID(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func FuzzParseLastEventID(f *testing.F) {
	for _, s := range []string{"", "0", "17", "9223372036854775807", "-5", "abc", "1\n2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseLastEventID(s)
		if err != nil {
			if id != 0 {
				t.Fatalf("error with id %d", id)
			}
			return
		}
		if id < 0 {
			t.Fatalf("negative id %d from %q", id, s)
		}
		if s != "" && strings.TrimLeft(s, "0") != strings.TrimLeft(strconv.FormatInt(id, 10), "0") {
			t.Fatalf("%q parsed as %d", s, id)
		}
	})
}

// orgHeader is the test's stand-in for the service's authentication.
func orgHeader(r *http.Request) (string, bool) {
	org := r.Header.Get("X-Test-Org")
	return org, org != ""
}

// sseEvent is one event as a client reads it.
type sseEvent struct {
	id   int64
	typ  string
	data Event
}

// sseClient connects to url as org, resuming after lastID when it is not "".
func sseClient(t *testing.T, url, org, lastID string) (*bufio.Reader, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("X-Test-Org", org)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	return bufio.NewReader(resp.Body), resp
}

// readEvent reads the next event, skipping comments and retry fields. It
// checks that the id and event lines agree with the JSON data.
func readEvent(r *bufio.Reader) (sseEvent, error) {
	var e sseEvent
	var gotData bool
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return e, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if gotData {
				if e.data.ID != e.id || string(e.data.Type) != e.typ {
					return e, fmt.Errorf("id/event lines %d/%s disagree with data %+v", e.id, e.typ, e.data)
				}
				return e, nil
			}
		case strings.HasPrefix(line, ":"), strings.HasPrefix(line, "retry: "):
		case strings.HasPrefix(line, "id: "):
			e.id, err = strconv.ParseInt(line[4:], 10, 64)
			if err != nil {
				return e, err
			}
		case strings.HasPrefix(line, "event: "):
			e.typ = line[7:]
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(line[6:]), &e.data); err != nil {
				return e, err
			}
			gotData = true
		default:
			return e, fmt.Errorf("unexpected line %q", line)
		}
	}
}

// readIDs reads events until one with id want arrives (or 10 s pass) and
// returns every id read.
func readIDs(t *testing.T, r *bufio.Reader, want int64) []int64 {
	t.Helper()
	var ids []int64
	done := make(chan error, 1)
	go func() {
		for {
			e, err := readEvent(r)
			if err != nil {
				done <- err
				return
			}
			ids = append(ids, e.id)
			if e.id >= want {
				done <- nil
				return
			}
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after ids %v: %v", ids, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for event %d", want)
	}
	return ids
}

func seq(from, to int64) []int64 {
	var s []int64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func publishN(t *testing.T, b *Bus, org string, n int) {
	t.Helper()
	for range n {
		if _, err := b.Publish(context.Background(), ev(StateUpdated, org, "app1", `{"state":"ACTIVE"}`)); err != nil {
			t.Error(err)
			return
		}
	}
}

func TestHandler_ResumesFromLastEventIDWithoutGapsOrDuplicates(t *testing.T) {
	dbtest.NoLeaks(t)
	b, _ := newBus(t, Options{SubscriberBuffer: 1024})
	srv := httptest.NewServer(b.Handler(orgHeader))
	t.Cleanup(srv.Close)

	publishN(t, b, "org1", 100)
	// Publish 200 more while the client connects and replays: the switch from
	// replay to live must lose and repeat nothing.
	var wg sync.WaitGroup
	for range 4 { // concurrent publishers
		wg.Add(1)
		go func() {
			defer wg.Done()
			publishN(t, b, "org1", 50)
		}()
	}
	r, _ := sseClient(t, srv.URL, "org1", "50")
	ids := readIDs(t, r, 300)
	wg.Wait()
	if want := seq(51, 300); !equalIDs(ids, want) {
		t.Fatalf("got %d ids %v…, want 51..300 in order", len(ids), ids[:min(len(ids), 10)])
	}
}

func TestHandler_LiveOnlyWithoutLastEventID(t *testing.T) {
	dbtest.NoLeaks(t)
	b, _ := newBus(t, Options{})
	srv := httptest.NewServer(b.Handler(orgHeader))
	t.Cleanup(srv.Close)
	publishN(t, b, "org1", 3)
	r, _ := sseClient(t, srv.URL, "org1", "")
	publishN(t, b, "org1", 2)
	if ids := readIDs(t, r, 5); !equalIDs(ids, []int64{4, 5}) {
		t.Fatalf("ids %v, want [4 5]", ids)
	}
}

func TestHandler_TenantScoped(t *testing.T) {
	dbtest.NoLeaks(t)
	b, _ := newBus(t, Options{})
	srv := httptest.NewServer(b.Handler(orgHeader))
	t.Cleanup(srv.Close)

	// Six events alternate org1, org2: each organization numbers its own,
	// 1..3, so the ids reveal nothing of the other's activity (issue 12,
	// finding 8).
	for i := range 6 {
		publishN(t, b, []string{"org1", "org2"}[i%2], 1)
	}
	live1, _ := sseClient(t, srv.URL, "org1", "")
	replay2, _ := sseClient(t, srv.URL, "org2", "0")
	for i := range 4 { // org1 4, 5; org2 4, 5
		publishN(t, b, []string{"org1", "org2"}[i%2], 1)
	}
	publishN(t, b, "org2", 20) // much activity in org2: org1's ids stay consecutive
	publishN(t, b, "org1", 1)  // org1 6 ends the first read below

	if ids := readIDs(t, live1, 6); !equalIDs(ids, []int64{4, 5, 6}) {
		t.Errorf("org1 live got %v, want [4 5 6]", ids)
	}
	if ids := readIDs(t, replay2, 25); !equalIDs(ids, seq(1, 25)) {
		t.Errorf("org2 replay got %v, want 1..25", ids)
	}
}

func TestHandler_RejectsBadRequests(t *testing.T) {
	b, _ := newBus(t, Options{})
	srv := httptest.NewServer(b.Handler(orgHeader))
	t.Cleanup(srv.Close)
	tests := []struct {
		name, method, org, last string
		want                    int
		reason                  string
	}{
		{"no organization", http.MethodGet, "", "", http.StatusUnauthorized, "unauthenticated"},
		{"bad Last-Event-ID", http.MethodGet, "org1", "abc", http.StatusBadRequest, "invalid_last_event_id"},
		{"negative Last-Event-ID", http.MethodGet, "org1", "-3", http.StatusBadRequest, "invalid_last_event_id"},
		{"POST", http.MethodPost, "org1", "", http.StatusMethodNotAllowed, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL, nil)
			if tt.org != "" {
				req.Header.Set("X-Test-Org", tt.org)
			}
			if tt.last != "" {
				req.Header.Set("Last-Event-ID", tt.last)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Code   int    `json:"code"`
				Reason string `json:"reason"`
			}
			json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tt.want || body.Code != tt.want || body.Reason != tt.reason {
				t.Fatalf("got %d %+v, want %d %s", resp.StatusCode, body, tt.want, tt.reason)
			}
		})
	}
}

func TestHandler_Heartbeat(t *testing.T) {
	dbtest.NoLeaks(t)
	b, _ := newBus(t, Options{Heartbeat: 20 * time.Millisecond})
	srv := httptest.NewServer(b.Handler(orgHeader))
	t.Cleanup(srv.Close)
	r, _ := sseClient(t, srv.URL, "org1", "")
	got := make(chan string, 1)
	go func() {
		for {
			line, err := r.ReadString('\n')
			if err != nil || strings.HasPrefix(line, ": heartbeat") {
				got <- line
				return
			}
		}
	}()
	select {
	case line := <-got:
		if !strings.HasPrefix(line, ": heartbeat") {
			t.Fatalf("stream ended before a heartbeat: %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no heartbeat")
	}
}

// stuckWriter is an SSE client whose connection accepts nothing: every Write
// blocks until release is closed.
type stuckWriter struct {
	h       http.Header
	release chan struct{}
}

func (w *stuckWriter) Header() http.Header { return w.h }
func (w *stuckWriter) WriteHeader(int)     {}
func (w *stuckWriter) Flush()              {}
func (w *stuckWriter) Write(p []byte) (int, error) {
	<-w.release
	return len(p), nil
}

func (b *Bus) subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

func TestPublish_SlowSubscriberIsDisconnectedNotWaitedFor(t *testing.T) {
	dbtest.NoLeaks(t)
	b, _ := newBus(t, Options{SubscriberBuffer: 4})
	w := &stuckWriter{h: http.Header{}, release: make(chan struct{})}
	req := httptest.NewRequest(http.MethodGet, "/api/events", nil)
	req.Header.Set("X-Test-Org", "org1")
	returned := make(chan struct{})
	go func() {
		b.Handler(orgHeader).ServeHTTP(w, req)
		close(returned)
	}()
	for b.subscribers() == 0 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	publishN(t, b, "org1", 200) // 50 times the buffer, to a client that reads nothing
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("200 publishes took %v with a stuck subscriber", d)
	}
	if n := b.subscribers(); n != 0 {
		t.Fatalf("%d subscribers left, want the stuck one dropped", n)
	}
	close(w.release)
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("handler of a dropped subscriber did not return")
	}
}

func TestClose_EndsStreams(t *testing.T) {
	dbtest.NoLeaks(t)
	b, _ := newBus(t, Options{})
	srv := httptest.NewServer(b.Handler(orgHeader))
	t.Cleanup(srv.Close)
	r, _ := sseClient(t, srv.URL, "org1", "")
	b.Close()
	done := make(chan error, 1)
	go func() { _, err := readEvent(r); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("read an event after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open after Close")
	}
}

func TestHandler_LastEventIDBeyondTheEndResumesFromTheEnd(t *testing.T) {
	dbtest.NoLeaks(t)
	b, _ := newBus(t, Options{})
	srv := httptest.NewServer(b.Handler(orgHeader))
	t.Cleanup(srv.Close)
	publishN(t, b, "org1", 3)
	r, _ := sseClient(t, srv.URL, "org1", "1000") // from a database that was reset
	publishN(t, b, "org1", 2)
	if ids := readIDs(t, r, 5); !equalIDs(ids, []int64{4, 5}) {
		t.Fatalf("ids %v, want [4 5]", ids)
	}
}
