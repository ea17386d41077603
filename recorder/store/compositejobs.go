package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The fleet's composite videos (migration 10): an instance configured to
// send its compositions elsewhere (composite.fleet: send) records the job
// here; an instance dedicated to compositions (composite.fleet: take)
// claims it, runs it in its own persisted queue and removes it when done.
// A claim older than the lease may be taken again (its instance is gone).

// CompositeChannel is the notification channel of the fleet's composite
// jobs: EnqueueComposite notifies it (the payload is the instance id), and
// the composition instances listen to it (Listen) to claim at once.
const CompositeChannel = "recorder_composite_jobs"

// EnqueueComposite records a composite job for the recording instanceID
// and notifies CompositeChannel; a job already there is left as it is.
func (s *Store) EnqueueComposite(ctx context.Context, instanceID string, now time.Time) error {
	if _, err := s.exec(ctx, `INSERT INTO fleet_composite_jobs (instance_id, enqueued, claimed_by, claimed_at)
		VALUES (?, ?, '', 0) ON CONFLICT (instance_id) DO NOTHING`, instanceID, now.UnixNano()); err != nil {
		return fmt.Errorf("store: enqueue composite %s: %w", instanceID, err)
	}
	return s.Notify(ctx, CompositeChannel, instanceID)
}

// ClaimComposite gives the oldest composite job that nobody holds (or
// whose claim is older than lease) to recorderID; "" when there is none.
// Two instances claiming at once never get the same job.
func (s *Store) ClaimComposite(ctx context.Context, recorderID string, now time.Time, lease time.Duration) (string, error) {
	stale := now.Add(-lease).UnixNano()
	for range 5 { // another instance took the one we saw: look again
		var id string
		var claimed int64
		err := s.db.QueryRowContext(ctx, s.d.Rebind(`SELECT instance_id, claimed_at FROM fleet_composite_jobs
			WHERE claimed_at = 0 OR claimed_at < ? ORDER BY enqueued, instance_id LIMIT 1`), stale).Scan(&id, &claimed)
		if errors.Is(err, sql.ErrNoRows) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("store: claim composite: %w", err)
		}
		res, err := s.exec(ctx, `UPDATE fleet_composite_jobs SET claimed_by = ?, claimed_at = ?
			WHERE instance_id = ? AND claimed_at = ?`, recorderID, now.UnixNano(), id, claimed)
		if err != nil {
			return "", fmt.Errorf("store: claim composite %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return id, nil
		}
	}
	return "", nil
}

// FinishComposite removes the composite job of instanceID (done, or failed
// for good); a missing job is no error.
func (s *Store) FinishComposite(ctx context.Context, instanceID string) error {
	if _, err := s.exec(ctx, `DELETE FROM fleet_composite_jobs WHERE instance_id = ?`, instanceID); err != nil {
		return fmt.Errorf("store: finish composite %s: %w", instanceID, err)
	}
	return nil
}
