package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// ErrNoNotify is returned by Listen on a driver without notifications
// (SQLite: a lone recorder has nobody to notify).
var ErrNoNotify = errors.New("store: this driver has no notifications")

// Notify sends payload (at most 8000 bytes) to every Listen on channel, on
// every instance sharing the database, once the current transaction commits
// (PostgreSQL NOTIFY). On SQLite it does nothing.
func (s *Store) Notify(ctx context.Context, channel, payload string) error {
	if s.d.Name() != DriverPostgres {
		return nil
	}
	if _, err := s.db.ExecContext(ctx, `SELECT pg_notify($1, $2)`, channel, payload); err != nil {
		return fmt.Errorf("store: notify %s: %w", channel, err)
	}
	return nil
}

// Listen holds one connection listening on channel and calls fn with the
// payload of every notification, in order, from its own goroutine; listening
// is called once the LISTEN is in force. It returns when ctx ends or the
// connection fails (the caller listens again), or ErrNoNotify on SQLite.
func (s *Store) Listen(ctx context.Context, channel string, listening func(), fn func(payload string)) error {
	if s.d.Name() != DriverPostgres {
		return ErrNoNotify
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: listen %s: %w", channel, err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		if _, err := pc.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
			return err
		}
		if listening != nil {
			listening()
		}
		for {
			n, err := pc.WaitForNotification(ctx)
			if err != nil {
				// The connection still listens (or is broken): never
				// hand it back to the pool.
				return errors.Join(err, driver.ErrBadConn)
			}
			fn(n.Payload)
		}
	})
	return fmt.Errorf("store: listen %s: %w", channel, err)
}
