package store

import (
	"context"
	"fmt"
)

// Modify reads the recording instanceID, lets fn change it (its State and
// Data) and writes it back, as one transaction that holds the recording's
// row from the read to the write: on PostgreSQL, instances changing the same
// recording at once (a composition instance recording its composite, the
// instance that made the recording recording an upload that came late) take
// turns, each reading what the one before wrote, so that no change is lost.
// (SQLite serves one instance, whose writers the recorder serialises; its
// transactions are serialised by the database too.) ErrNotFound when there
// is no such recording; fn's error is returned as it is and nothing is
// written; ErrFenced when the recording was taken over (its epoch moved).
func (s *Store) Modify(ctx context.Context, instanceID string, fn func(r *Record) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: modify %s: %w", instanceID, err)
	}
	defer tx.Rollback()
	q := `SELECT ` + columns + ` FROM recordings WHERE instance_id = ?`
	if s.d.Name() == DriverPostgres {
		q += ` FOR UPDATE`
	}
	recs, err := scan(tx.QueryContext(ctx, s.d.Rebind(q), instanceID))
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
	res, err := tx.ExecContext(ctx, s.d.Rebind(`UPDATE recordings SET state = ?, data = ? WHERE instance_id = ? AND epoch = ?`),
		r.State, r.Data, instanceID, epoch)
	if err != nil {
		return fmt.Errorf("store: modify %s: %w", instanceID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: modify %s: %w", instanceID, err)
	} else if n == 0 {
		return fmt.Errorf("store: modify %s at epoch %d: %w", instanceID, epoch, ErrFenced)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: modify %s: %w", instanceID, err)
	}
	return nil
}
