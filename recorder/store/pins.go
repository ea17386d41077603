package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Pin is the instance a conference of an organization is pinned to: every
// WHIP publisher of the conference is sent there. Epoch counts the re-pins
// (a takeover from a dead instance).
type Pin struct {
	OrganizationID string
	ConferenceID   string
	RecorderID     string
	Epoch          int64
	Pinned         time.Time
}

// PinConference pins the conference to recorderID unless it is pinned
// already, and returns the pin in force (this one or the earlier one): of
// instances pinning at once, one wins and all see it.
func (s *Store) PinConference(ctx context.Context, organizationID, conferenceID, recorderID string) (*Pin, error) {
	if _, err := s.exec(ctx, `INSERT INTO conference_pins (organization_id, conference_id, recorder_id, epoch, pinned)
		VALUES (?, ?, ?, 1, ?) ON CONFLICT (organization_id, conference_id) DO NOTHING`,
		organizationID, conferenceID, recorderID, time.Now().UnixNano()); err != nil {
		return nil, fmt.Errorf("store: pin conference %s: %w", conferenceID, err)
	}
	p := &Pin{OrganizationID: organizationID, ConferenceID: conferenceID}
	var pinned int64
	if err := s.db.QueryRowContext(ctx, s.d.Rebind(`SELECT recorder_id, epoch, pinned FROM conference_pins
		WHERE organization_id = ? AND conference_id = ?`), organizationID, conferenceID).Scan(&p.RecorderID, &p.Epoch, &pinned); err != nil {
		return nil, fmt.Errorf("store: pin conference %s: %w", conferenceID, err)
	}
	p.Pinned = time.Unix(0, pinned)
	return p, nil
}

// RepinConference moves the conference's pin from the instance from to the
// instance to, with the next epoch, if it is still pinned to from; it reports
// whether it moved it.
func (s *Store) RepinConference(ctx context.Context, organizationID, conferenceID, from, to string) (bool, error) {
	res, err := s.exec(ctx, `UPDATE conference_pins SET recorder_id = ?, epoch = epoch + 1, pinned = ?
		WHERE organization_id = ? AND conference_id = ? AND recorder_id = ?`,
		to, time.Now().UnixNano(), organizationID, conferenceID, from)
	if err != nil {
		return false, fmt.Errorf("store: re-pin conference %s: %w", conferenceID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: re-pin conference %s: %w", conferenceID, err)
	}
	return n == 1, nil
}

// UnpinConference deletes the conference's pin if it is held by recorderID
// and no recording of the conference is unfinished (in one statement, so a
// start that raced the check keeps its pin); it reports whether it did. The
// states are the unfinished ones (the recorder's INITIALISED, ACTIVE,
// PENDING_RECOVERY).
func (s *Store) UnpinConference(ctx context.Context, organizationID, conferenceID, recorderID string, unfinished ...string) (bool, error) {
	q := `DELETE FROM conference_pins WHERE organization_id = ? AND conference_id = ? AND recorder_id = ?
		AND NOT EXISTS (SELECT 1 FROM recordings WHERE organization_id = ? AND conference_id = ? AND state IN (` +
		strings.TrimSuffix(strings.Repeat("?, ", len(unfinished)), ", ") + `))`
	args := []any{organizationID, conferenceID, recorderID, organizationID, conferenceID}
	for _, st := range unfinished {
		args = append(args, st)
	}
	if len(unfinished) == 0 {
		return false, fmt.Errorf("store: unpin conference %s: no unfinished states given", conferenceID)
	}
	res, err := s.exec(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("store: unpin conference %s: %w", conferenceID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: unpin conference %s: %w", conferenceID, err)
	}
	return n == 1, nil
}
