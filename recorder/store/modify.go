package store

import (
	"context"
	"database/sql"
	"fmt"
)

// Modify reads the recording instanceID, lets fn change it (its State and
// Data) and writes it back, so that no change made meanwhile is lost. On
// PostgreSQL it is one transaction that holds the recording's row from the
// read to the write: instances changing the same recording at once (a
// composition instance recording its composite, the instance that made the
// recording recording an upload that came late) take turns, each reading
// what the one before wrote; fn must not change that recording otherwise.
// On SQLite (one instance) the Modify calls of the process take turns. fn
// may use the store. ErrNotFound when there is no such recording; fn's
// error is returned as it is and nothing is written; ErrFenced when the
// recording was taken over (its epoch moved).
func (s *Store) Modify(ctx context.Context, instanceID string, fn func(r *Record) error) error {
	if s.d.Name() != DriverPostgres {
		s.modifyMu.Lock()
		defer s.modifyMu.Unlock()
		return s.modify(ctx, s.db, ``, instanceID, fn)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: modify %s: %w", instanceID, err)
	}
	defer tx.Rollback()
	if err := s.modify(ctx, tx, ` FOR UPDATE`, instanceID, fn); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: modify %s: %w", instanceID, err)
	}
	return nil
}

// querier is a database or a transaction.
type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

func (s *Store) modify(ctx context.Context, db querier, lock, instanceID string, fn func(r *Record) error) error {
	recs, err := scan(db.QueryContext(ctx, s.d.Rebind(`SELECT `+columns+` FROM recordings WHERE instance_id = ?`+lock), instanceID))
	if err != nil {
		return fmt.Errorf("store: modify %s: %w", instanceID, err)
	}
	if len(recs) == 0 {
		return ErrNotFound
	}
	r := recs[0]
	epoch := r.Epoch
	if err := fn(r); err != nil {
		return err
	}
	res, err := db.ExecContext(ctx, s.d.Rebind(`UPDATE recordings SET state = ?, data = ? WHERE instance_id = ? AND epoch = ?`),
		r.State, r.Data, instanceID, epoch)
	if err != nil {
		return fmt.Errorf("store: modify %s: %w", instanceID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: modify %s: %w", instanceID, err)
	} else if n == 0 {
		return fmt.Errorf("store: modify %s at epoch %d: %w", instanceID, epoch, ErrFenced)
	}
	return nil
}
