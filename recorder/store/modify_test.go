package store

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/rtcrec/recorder/internal/pgtest"
)

// TestModify_InstancesTakeTurns: two instances (two Stores on one
// PostgreSQL database) change the same recording at once; the second waits
// for the first to write and then reads what it wrote, so both changes are
// kept. (A plain read and write, as Get and Put, loses the first instance's
// change: its write replaces the record the second read before it.)
func TestModify_InstancesTakeTurns(t *testing.T) {
	dsn := pgtest.Start(t).NewDatabase(t)
	open := func() *Store {
		return openT(t, Config{Driver: DriverPostgres, DSN: dsn, LocalPath: filepath.Join(t.TempDir(), "local.db")})
	}
	a, b := open(), open()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rec := &Record{InstanceID: "i1", OrganizationID: "org", ConversationID: "c", RecorderID: "r", State: "STOPPED",
		Started: time.Unix(1, 0), Data: []byte(`{}`)}
	if err := a.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	set := func(key string) func(r *Record) error {
		return func(r *Record) error {
			var m map[string]bool
			if err := json.Unmarshal(r.Data, &m); err != nil {
				return err
			}
			m[key] = true
			r.Data, _ = json.Marshal(m)
			return nil
		}
	}
	read, release := make(chan struct{}), make(chan struct{})
	aDone, bDone := make(chan error, 1), make(chan error, 1)
	go func() {
		aDone <- a.Modify(ctx, "i1", func(r *Record) error {
			close(read) // A read the record; it writes once released
			<-release
			return set("composite")(r)
		})
	}()
	<-read
	go func() { bDone <- b.Modify(ctx, "i1", set("lateUpload")) }()
	// B either waits for A's row lock (seen in pg_stat_activity) or, if
	// nothing makes it wait, finishes first: then A's write loses B's.
	waiting := false
	for !waiting {
		var n int
		if err := a.db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		waiting = n > 0
		select {
		case err := <-bDone:
			bDone <- err
			waiting = true
		case <-ctx.Done():
			t.Fatal("B neither waits nor finishes")
		default:
		}
	}
	close(release)
	if err := <-aDone; err != nil {
		t.Fatal(err)
	}
	if err := <-bDone; err != nil {
		t.Fatal(err)
	}
	got, err := b.Get(ctx, "org", "i1")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]bool
	json.Unmarshal(got.Data, &m)
	if !m["composite"] || !m["lateUpload"] {
		t.Errorf("stored %s: want both instances' changes", got.Data)
	}
}

// TestModify_Errors on both drivers: a missing recording, fn's error (nothing
// written), a fn that uses the store, and a change that is written.
func TestModify_Errors(t *testing.T) {
	t.Run(DriverSQLite, func(t *testing.T) {
		testModifyErrors(t, openT(t, Config{Driver: DriverSQLite, DSN: filepath.Join(t.TempDir(), "db")}))
	})
	t.Run(DriverPostgres, func(t *testing.T) {
		dsn := pgtest.Start(t).NewDatabase(t)
		testModifyErrors(t, openT(t, Config{Driver: DriverPostgres, DSN: dsn, LocalPath: filepath.Join(t.TempDir(), "local.db")}))
	})
}

func testModifyErrors(t *testing.T, s *Store) {
	ctx := context.Background()
	if err := s.Modify(ctx, "none", func(*Record) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("a missing recording: %v, want ErrNotFound", err)
	}
	rec := &Record{InstanceID: "i1", OrganizationID: "org", ConversationID: "c", RecorderID: "r", State: "ACTIVE",
		Started: time.Unix(1, 0), Data: []byte(`{"v":1}`)}
	if err := s.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := s.Modify(ctx, "i1", func(r *Record) error { r.Data = []byte(`{"v":2}`); return boom }); err != boom {
		t.Errorf("fn's error: %v, want it as it is", err)
	}
	// fn may use the store (the recorder queues a composite in it): no
	// deadlock on SQLite's one connection.
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.Modify(tctx, "i1", func(r *Record) error {
		return s.EnqueueComposite(tctx, "i1", time.Unix(2, 0))
	}); err != nil {
		t.Errorf("a Modify whose fn uses the store: %v", err)
	}
	if err := s.Modify(ctx, "i1", func(r *Record) error { r.State, r.Data = "STOPPED", []byte(`{"v":4}`); return nil }); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "org", "i1")
	if err != nil || got.State != "STOPPED" || string(got.Data) != `{"v":4}` {
		t.Errorf("after Modify: %+v %v", got, err)
	}
}
