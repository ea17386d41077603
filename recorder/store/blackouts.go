package store

import (
	"context"
	"fmt"
	"time"
)

// Blackout is a participant's blackout as stored, so that it outlives a
// restart until its stop time.
type Blackout struct {
	OrganizationID string
	UserID         string
	ConferenceID   string // empty: every conference
	Start, Stop    time.Time
	Recordings     []byte // JSON list of instanceIds, owned by package recorder
}

// PutBlackout inserts or replaces the blackout of (b.OrganizationID, b.UserID).
func (s *Store) PutBlackout(ctx context.Context, b *Blackout) error {
	_, err := s.exec(ctx, `INSERT INTO blackouts (organization_id, user_id, conference_id, start, stop, recordings)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (organization_id, user_id) DO UPDATE SET
		conference_id = excluded.conference_id, start = excluded.start, stop = excluded.stop, recordings = excluded.recordings`,
		b.OrganizationID, b.UserID, b.ConferenceID, b.Start.UnixNano(), b.Stop.UnixNano(), b.Recordings)
	if err != nil {
		return fmt.Errorf("store: put blackout of %s: %w", b.UserID, err)
	}
	return nil
}

// DeleteBlackout removes the blackout of userID; a missing one is no error.
func (s *Store) DeleteBlackout(ctx context.Context, organizationID, userID string) error {
	if _, err := s.exec(ctx, `DELETE FROM blackouts WHERE organization_id = ? AND user_id = ?`, organizationID, userID); err != nil {
		return fmt.Errorf("store: delete blackout of %s: %w", userID, err)
	}
	return nil
}

// Blackouts returns every stored blackout.
func (s *Store) Blackouts(ctx context.Context) ([]*Blackout, error) {
	rows, err := s.query(ctx, `SELECT organization_id, user_id, conference_id, start, stop, recordings FROM blackouts ORDER BY start`)
	if err != nil {
		return nil, fmt.Errorf("store: blackouts: %w", err)
	}
	defer rows.Close()
	var out []*Blackout
	for rows.Next() {
		var b Blackout
		var start, stop int64
		if err := rows.Scan(&b.OrganizationID, &b.UserID, &b.ConferenceID, &start, &stop, &b.Recordings); err != nil {
			return nil, fmt.Errorf("store: blackouts: %w", err)
		}
		b.Start, b.Stop = time.Unix(0, start).UTC(), time.Unix(0, stop).UTC()
		out = append(out, &b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: blackouts: %w", err)
	}
	return out, nil
}
