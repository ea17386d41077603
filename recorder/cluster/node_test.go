package cluster

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtcrec/recorder/internal/pgtest"
	"github.com/rtcrec/recorder/recorder/store"
)

func openPG(t *testing.T, dsn string) *store.Store {
	t.Helper()
	st, err := store.OpenConfig(context.Background(), store.Config{Driver: store.DriverPostgres, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestNode_MembershipAndHeartbeat: two instances on one PostgreSQL see each
// other with their URLs, capacity and load; the load follows heartbeats; an
// instance that stops heart-beating drops out of Members after DeadAfter;
// a graceful Close removes it at once.
func TestNode_MembershipAndHeartbeat(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t).NewDatabase(t)
	var loadA atomic.Int64
	loadA.Store(2)
	a, err := New(ctx, Options{Store: openPG(t, dsn), RecorderID: "rec-a", InternalURL: "http://127.0.0.1:1", Capacity: 7,
		Load: func() int { return int(loadA.Load()) }, Heartbeat: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	a.Start()
	defer a.Close(ctx)
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	clockB := func() time.Time { return time.Unix(0, now.Load()) }
	b, err := New(ctx, Options{Store: openPG(t, dsn), RecorderID: "rec-b", InternalURL: "http://127.0.0.1:2", PublicURL: "https://b.example",
		Heartbeat: time.Hour, DeadAfter: 5 * time.Second, Now: clockB})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	if string(a.secret) != string(b.secret) || len(a.secret) != 32 {
		t.Fatalf("the two instances have different secrets")
	}
	ms, err := b.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].RecorderID != "rec-a" || ms[0].Capacity != 7 || ms[0].Active != 2 ||
		ms[1].PublicURL != "https://b.example" || ms[1].Capacity != 0 {
		t.Fatalf("members %+v", ms)
	}
	// A's load reaches the store with its next heartbeat.
	loadA.Store(5)
	deadline := time.Now().Add(10 * time.Second)
	for {
		in, err := b.opts.Store.Instance(ctx, "rec-a")
		if err == nil && in.Active == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rec-a's load never became 5: %+v %v", in, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// B stops beating (its interval is an hour): from A's view it is dead
	// once B's last heartbeat is older than A's DeadAfter (150 ms).
	deadline = time.Now().Add(10 * time.Second)
	for {
		ms, err := a.Members(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 1 && ms[0].RecorderID == "rec-a" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rec-b is still a member: %+v", ms)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	all, _ := b.opts.Store.Instances(ctx)
	if len(all) != 1 || all[0].RecorderID != "rec-b" {
		t.Errorf("after rec-a's Close the registry holds %+v", all)
	}
}

// TestNode_Place: a start goes to the least-loaded live instance with room,
// by share of capacity; a full, draining or dead instance takes none; a tie
// goes to the placing instance itself.
func TestNode_Place(t *testing.T) {
	ctx := context.Background()
	st := openPG(t, pgtest.Start(t).NewDatabase(t))
	now := time.Now()
	for _, in := range []*store.Instance{
		{RecorderID: "rec-b", Capacity: 10, Active: 5},                                   // 50 %
		{RecorderID: "rec-c", Capacity: 4, Active: 1},                                    // 25 %
		{RecorderID: "rec-d", Capacity: 2, Active: 2},                                    // full
		{RecorderID: "rec-e", Capacity: 10, Active: 0, Draining: true},                   // draining
		{RecorderID: "rec-f", Capacity: 10, Active: 0, Heartbeat: now.Add(-time.Minute)}, // dead
		{RecorderID: "rec-g", Capacity: 100, Active: 25},                                 // 25 %, after c by id
		{RecorderID: "rec-h", Capacity: 10, Active: 9},                                   // 90 %
	} {
		in.InternalURL = "http://127.0.0.1:1"
		if in.Heartbeat.IsZero() {
			in.Heartbeat = now.Add(time.Hour) // alive for the whole test
		}
		if err := st.PutInstance(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	var load atomic.Int64
	var draining atomic.Bool
	a, err := New(ctx, Options{Store: st, RecorderID: "rec-a", InternalURL: "http://127.0.0.1:1", Capacity: 4,
		Load: func() int { return int(load.Load()) }, Draining: draining.Load, Heartbeat: time.Hour, DeadAfter: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	for _, tc := range []struct {
		load     int64
		draining bool
		want     string
	}{
		{0, false, "rec-a rec-c rec-g rec-b rec-h"},
		{1, false, "rec-a rec-c rec-g rec-b rec-h"}, // 25 %: ties with c and g, goes first
		{3, false, "rec-c rec-g rec-b rec-a rec-h"}, // 75 %
		{4, false, "rec-c rec-g rec-b rec-h"},       // full
		{0, true, "rec-c rec-g rec-b rec-h"},        // draining
	} {
		load.Store(tc.load)
		draining.Store(tc.draining)
		ids, err := a.Place(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(ids, " "); got != tc.want {
			t.Errorf("load %d draining %v: placed on %q, want %q", tc.load, tc.draining, got, tc.want)
		}
	}
}

// TestNode_PlaceWithoutCapacity: instances without a capacity (capacity.streams
// 0) always have room and are placed by the streams they carry, fewest
// first; beside instances with one they count as unbounded (the least share).
func TestNode_PlaceWithoutCapacity(t *testing.T) {
	ctx := context.Background()
	st := openPG(t, pgtest.Start(t).NewDatabase(t))
	for _, in := range []*store.Instance{
		{RecorderID: "rec-b", Active: 5000},
		{RecorderID: "rec-c", Active: 1},
		{RecorderID: "rec-d", Active: 0, Draining: true},
	} {
		in.InternalURL, in.Heartbeat = "http://127.0.0.1:1", time.Now().Add(time.Hour)
		if err := st.PutInstance(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	var load atomic.Int64
	a, err := New(ctx, Options{Store: st, RecorderID: "rec-a", InternalURL: "http://127.0.0.1:1",
		Load: func() int { return int(load.Load()) }, Heartbeat: time.Hour, DeadAfter: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	place := func() string {
		t.Helper()
		ids, err := a.Place(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(ids, " ")
	}
	for _, tc := range []struct {
		load int64
		want string
	}{
		{1, "rec-a rec-c rec-b"}, // a tie stays here
		{2, "rec-c rec-a rec-b"},
		{6000, "rec-c rec-b rec-a"},
	} {
		load.Store(tc.load)
		if got := place(); got != tc.want {
			t.Errorf("load %d: placed on %q, want %q", tc.load, got, tc.want)
		}
	}
	// Beside an instance with a capacity: 5000 streams of an unbounded
	// capacity are a smaller share than 1 of 1000.
	if err := st.PutInstance(ctx, &store.Instance{RecorderID: "rec-e", Capacity: 1000, Active: 1,
		InternalURL: "http://127.0.0.1:1", Heartbeat: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	load.Store(2)
	if got, want := place(), "rec-c rec-a rec-b rec-e"; got != want {
		t.Errorf("with rec-e (1 of 1000): placed on %q, want %q", got, want)
	}
}
