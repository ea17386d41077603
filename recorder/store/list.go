package store

import (
	"context"
	"fmt"
)

// List returns up to limit recordings of organizationID, newest first,
// starting after the recording (beforeStarted, beforeID) of a previous page;
// beforeStarted 0 starts at the newest. Pages are stable while recordings are
// added: a new recording sorts before every page already read.
func (s *Store) List(ctx context.Context, organizationID string, beforeStarted int64, beforeID string, limit int) ([]*Record, error) {
	q := `SELECT ` + columns + ` FROM recordings WHERE organization_id = ?`
	args := []any{organizationID}
	if beforeStarted != 0 {
		q += ` AND (started < ? OR (started = ? AND instance_id < ?))`
		args = append(args, beforeStarted, beforeStarted, beforeID)
	}
	q += ` ORDER BY started DESC, instance_id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.query(ctx, q, args...)
	recs, err := scan(rows, err)
	if err != nil {
		return nil, fmt.Errorf("store: list %s: %w", organizationID, err)
	}
	return recs, nil
}
