package events

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/recorder/internal/dbtest"
	"github.com/rtcrec/recorder/recorder/store"
)

// newBus opens a fresh database in t.TempDir and a Bus on it, closed at cleanup.
func newBus(t testing.TB, opts Options) (*Bus, *store.Store) {
	t.Helper()
	st := openStore(t, filepath.Join(t.TempDir(), "events.db"))
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	b, err := New(context.Background(), st, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, st
}

// openStore opens (or reopens) the SQLite store at path, closed at the end of
// the test.
func openStore(t testing.TB, path string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func ev(typ Type, org, app string, data string) Event {
	return Event{Type: typ, OrganizationID: org, ApplicationID: app, Data: json.RawMessage(data)}
}

func TestPublish_AssignsIncreasingIDsAndPersists(t *testing.T) {
	dbtest.NoLeaks(t)
	b, _ := newBus(t, Options{})
	ctx := context.Background()
	occurred := time.Date(2026, 11, 21, 12, 0, 0, 123456789, time.FixedZone("X", 3600))
	var last int64
	for i := range 5 {
		e := ev(StateUpdated, "org1", "app1", `{ "state" : "ACTIVE" }`)
		if i == 0 {
			e.Occurred = occurred
		}
		got, err := b.Publish(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID <= last {
			t.Fatalf("id %d after %d", got.ID, last)
		}
		last = got.ID
		if string(got.Data) != `{"state":"ACTIVE"}` {
			t.Errorf("data %s, want compacted", got.Data)
		}
		if got.Occurred.Location() != time.UTC {
			t.Errorf("occurred %v not UTC", got.Occurred)
		}
	}
	stored, err := b.Since(ctx, "org1", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 5 {
		t.Fatalf("stored %d events, want 5", len(stored))
	}
	if !stored[0].Occurred.Equal(occurred) {
		t.Errorf("occurred %v, want %v", stored[0].Occurred, occurred)
	}
	j, _ := json.Marshal(stored[0])
	want := `{"id":1,"type":"state.updated","organizationId":"org1","applicationId":"app1","occurred":"2026-11-21T11:00:00.123456789Z","data":{"state":"ACTIVE"}}`
	if string(j) != want {
		t.Errorf("JSON\n got %s\nwant %s", j, want)
	}
}

func TestPublish_RejectsBadEvents(t *testing.T) {
	b, _ := newBus(t, Options{})
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{"no type", ev("", "org1", "app1", ""), "required"},
		{"no organization", ev(StateUpdated, "", "app1", ""), "required"},
		{"line break in type", ev("state\nevil", "org1", "app1", ""), "line break"},
		{"invalid JSON", ev(StateUpdated, "org1", "app1", `{"a":`), "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.Publish(context.Background(), tt.ev)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want one containing %q", err, tt.want)
			}
		})
	}
	if evs, _ := b.Since(context.Background(), "org1", 0, 10); len(evs) != 0 {
		t.Errorf("a rejected event was stored: %v", evs)
	}
}

func TestPublish_EmptyDataIsObject(t *testing.T) {
	b, _ := newBus(t, Options{})
	got, err := b.Publish(context.Background(), ev(RecordingPaused, "org1", "app1", ""))
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Data) != "{}" {
		t.Errorf("data %q, want {}", got.Data)
	}
}

func TestClose_IdempotentAndRejectsPublish(t *testing.T) {
	dbtest.NoLeaks(t)
	b, _ := newBus(t, Options{})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(context.Background(), ev(StateUpdated, "org1", "app1", "")); err != ErrClosed {
		t.Fatalf("publish after close: %v, want ErrClosed", err)
	}
}

func TestPrune_DeletesOldEventsButKeepsPendingDeliveries(t *testing.T) {
	dbtest.NoLeaks(t)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	opts := fastRetry(map[string][]Webhook{"hooked": {{URL: down.URL, Secret: "k"}}})
	opts.MinBackoff, opts.MaxBackoff = time.Hour, time.Hour // one failed attempt, then quiet
	opts.MaxAge = 10 * 365 * 24 * time.Hour
	b, _ := newBus(t, opts)
	ctx := context.Background()
	cut := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, e := range []struct {
		app      string
		occurred time.Time
	}{
		{"app1", cut.Add(-time.Hour)},             // 1: old: pruned
		{"app1", cut.Add(-time.Nanosecond)},       // 2: old by a nanosecond: pruned
		{"hooked", cut.Add(-2 * time.Hour)},       // 3: old, delivery pending: kept
		{"app1", cut},                             // 4: not before the cut: kept
		{"app1", cut.Add(500 * time.Millisecond)}, // 5: kept
	} {
		x := ev(StateUpdated, "org1", e.app, "")
		x.Occurred = e.occurred
		if _, err := b.Publish(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	n, err := b.Prune(ctx, cut)
	if err != nil {
		t.Fatal(err)
	}
	left, _ := b.Since(ctx, "org1", 0, 100)
	var ids []int64
	for _, e := range left {
		ids = append(ids, e.ID)
	}
	if n != 2 || !equalIDs(ids, []int64{3, 4, 5}) {
		t.Fatalf("pruned %d, left %v; want 2 pruned, [3 4 5] left", n, ids)
	}
	got, err := b.Publish(ctx, ev(StateUpdated, "org1", "app1", ""))
	if err != nil || got.ID != 6 {
		t.Fatalf("next id %d, %v; want 6 (ids are never reused)", got.ID, err)
	}
}
