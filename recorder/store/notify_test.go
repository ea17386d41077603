package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/rtcrec/recorder/internal/pgtest"
)

// TestNotify_Postgres: a notification sent through one store reaches a
// Listen on another store of the same database, in order; Listen returns
// when its context ends.
func TestNotify_Postgres(t *testing.T) {
	dsn := pgtest.Start(t).NewDatabase(t)
	a := openT(t, Config{Driver: DriverPostgres, DSN: dsn})
	b := openT(t, Config{Driver: DriverPostgres, DSN: dsn})
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan string, 10)
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- b.Listen(ctx, "chan_x", func() { close(ready) }, func(p string) { got <- p }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	for _, p := range []string{"one", "two"} {
		if err := a.Notify(context.Background(), "chan_x", p); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"one", "two"} {
		select {
		case p := <-got:
			if p != want {
				t.Errorf("got %q, want %q", p, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no notification %q", want)
		}
	}
	cancel()
	if err := <-done; err == nil {
		t.Error("Listen returned nil after its context ended")
	}
	// The store still works: the listening connection was not reused.
	if _, err := b.Instances(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestNotify_SQLiteHasNone(t *testing.T) {
	s := openT(t, Config{Driver: DriverSQLite, DSN: filepath.Join(t.TempDir(), "db")})
	if err := s.Notify(context.Background(), "c", "p"); err != nil {
		t.Errorf("Notify on SQLite: %v", err)
	}
	if err := s.Listen(context.Background(), "c", nil, func(string) {}); !errors.Is(err, ErrNoNotify) {
		t.Errorf("Listen on SQLite: %v, want ErrNoNotify", err)
	}
}
