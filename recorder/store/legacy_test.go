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
