package events

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/recorder/internal/dbtest"
)

// newBus opens a fresh database in t.TempDir and a Bus on it, closed at cleanup.
func newBus(t testing.TB, opts Options) (*Bus, *sql.DB) {
	t.Helper()
	db := dbtest.Open(t, filepath.Join(t.TempDir(), "events.db"))
	b, err := New(context.Background(), db, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, db
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
