package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rtcrec/recorder/internal/pgtest"
)

// TestOpen_LegacySQLiteFile opens a database written before versioned
// migrations (tables created on the fly, no schema_migrations): its rows stay.
func TestOpen_LegacySQLiteFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "recorder.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE recordings (instance_id TEXT PRIMARY KEY, organization_id TEXT NOT NULL, application_id TEXT NOT NULL,
			conversation_id TEXT NOT NULL, conference_id TEXT NOT NULL, recorder_id TEXT NOT NULL, state TEXT NOT NULL,
			started INTEGER NOT NULL, data BLOB NOT NULL)`,
		`INSERT INTO recordings VALUES ('i1', 'o', 'a', 'c', 'f', 'r', 'STOPPED', 1, x'7b7d')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if r, err := s.Get(ctx, "o", "i1"); err != nil || r.State != "STOPPED" || string(r.Data) != "{}" {
		t.Fatalf("Get after migrating a legacy file = %+v, %v", r, err)
	}
	if got, err := s.Blackouts(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Blackouts = %v, %v", got, err)
	}
}

// TestOpen_PostgresConcurrentStarts opens one PostgreSQL database from four
// stores at once, as a fleet starting together does: each migration is
// applied once (the advisory lock), and every open succeeds.
func TestOpen_PostgresConcurrentStarts(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t).NewDatabase(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := OpenConfig(ctx, Config{Driver: DriverPostgres, DSN: dsn})
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	s, err := OpenConfig(ctx, Config{Driver: DriverPostgres, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(migrations) {
		t.Errorf("schema_migrations rows = %d, %v; want %d", n, err, len(migrations))
	}
}

func TestOpenConfig_BadDriver(t *testing.T) {
	if _, err := OpenConfig(context.Background(), Config{Driver: "mysql"}); err == nil {
		t.Error("driver mysql opened")
	}
	if _, err := OpenConfig(context.Background(), Config{Driver: DriverPostgres}); err == nil {
		t.Error("postgres without a dsn opened")
	}
}

// TestOpen_LegacyEventsOutbox: the outbox package events kept in the SQLite
// file itself (events_outbox, events_deliveries) moves into migration 5's
// tables: an event keeps its id as its organization's sequence number (clients
// resume where they were), the next number continues above it, and pending
// deliveries stay pending.
func TestOpen_LegacyEventsOutbox(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "recorder.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE events_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, organization_id TEXT NOT NULL,
			application_id TEXT NOT NULL, occurred TEXT NOT NULL, data TEXT NOT NULL)`,
		`CREATE TABLE events_deliveries (url TEXT NOT NULL, event_id INTEGER NOT NULL REFERENCES events_outbox(id),
			state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0, next_attempt INTEGER NOT NULL DEFAULT 0,
			last_status INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '', done_at INTEGER NOT NULL DEFAULT 0,
			PRIMARY KEY (url, event_id))`,
		`INSERT INTO events_outbox (type, organization_id, application_id, occurred, data) VALUES
			('state.updated', 'o1', 'a', '2026-11-01T00:00:00.000000000Z', '{}'),
			('state.updated', 'o2', 'a', '2026-11-01T00:00:01.000000000Z', '{}'),
			('state.updated', 'o1', 'a', '2026-11-01T00:00:02.000000000Z', '{"x":1}')`,
		`INSERT INTO events_deliveries (url, event_id, attempts) VALUES ('http://h/', 3, 2)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evs, err := s.EventsSince(ctx, "o1", 0, 10)
	if err != nil || len(evs) != 2 || evs[0].Seq != 1 || evs[1].Seq != 3 || evs[1].Data != `{"x":1}` {
		t.Fatalf("o1 events after the move: %+v, %v", evs, err)
	}
	if seq, err := s.AppendEvent(ctx, &OutboxEvent{OrganizationID: "o1", Type: "t", Occurred: "x", Data: "{}"}, nil); err != nil || seq != 4 {
		t.Fatalf("next o1 seq = %d, %v; want 4", seq, err)
	}
	if last, err := s.LastEventSeq(ctx, "o2"); err != nil || last != 2 {
		t.Fatalf("o2 last = %d, %v; want 2", last, err)
	}
	heads, err := s.DeliveryHeads(ctx)
	if err != nil || len(heads) != 1 || heads[0].Seq != 3 || heads[0].OrganizationID != "o1" || heads[0].Attempts != 2 {
		t.Fatalf("pending deliveries after the move: %+v, %v", heads, err)
	}
}
