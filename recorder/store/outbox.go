package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// The events outbox (migration 5): package events keeps its events and webhook
// deliveries here, so that every instance of a fleet serves every event and a
// delivery is made once for the whole fleet.

// OutboxChannel is the notification channel on which AppendEvent announces
// each committed event (PostgreSQL); the payload is an OutboxNotice in JSON.
const OutboxChannel = "recorder_events"

// OutboxNotice is the payload of a notification on OutboxChannel.
type OutboxNotice struct {
	OrganizationID string `json:"o"`
	Seq            int64  `json:"s"`
}

// OutboxEvent is one stored event. Seq numbers the events of one
// organization: 1, 2, 3, … in commit order, never reused.
type OutboxEvent struct {
	OrganizationID string
	Seq            int64
	Type           string
	ApplicationID  string
	Occurred       string // RFC 3339 UTC of a fixed width (package events formats it)
	Data           string // JSON
}

// AppendEvent stores ev with the organization's next sequence number and one
// pending delivery per URL of urls, in one transaction, and returns the
// number. Appends of one organization are serialised by its sequence row, so
// numbers commit in order: once n is readable, so is every number below it.
// On PostgreSQL the commit also notifies OutboxChannel.
func (s *Store) AppendEvent(ctx context.Context, ev *OutboxEvent, urls []string) (int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store: append event: %w", err)
	}
	defer tx.Rollback()
	var seq int64
	if err := tx.QueryRowContext(ctx, s.d.Rebind(`INSERT INTO outbox_sequences (organization_id, last) VALUES (?, 1)
		ON CONFLICT (organization_id) DO UPDATE SET last = outbox_sequences.last + 1 RETURNING last`),
		ev.OrganizationID).Scan(&seq); err != nil {
		return 0, fmt.Errorf("store: append event: sequence: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.d.Rebind(`INSERT INTO outbox_events
		(organization_id, seq, type, application_id, occurred, data) VALUES (?, ?, ?, ?, ?, ?)`),
		ev.OrganizationID, seq, ev.Type, ev.ApplicationID, ev.Occurred, ev.Data); err != nil {
		return 0, fmt.Errorf("store: append event: %w", err)
	}
	for _, u := range urls {
		if _, err := tx.ExecContext(ctx, s.d.Rebind(`INSERT INTO outbox_deliveries (url, organization_id, seq) VALUES (?, ?, ?)`),
			u, ev.OrganizationID, seq); err != nil {
			return 0, fmt.Errorf("store: append event: delivery to %s: %w", u, err)
		}
	}
	if s.d.Name() == DriverPostgres {
		p, _ := json.Marshal(OutboxNotice{ev.OrganizationID, seq})
		if _, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, OutboxChannel, string(p)); err != nil {
			return 0, fmt.Errorf("store: append event: notify: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("store: append event: %w", err)
	}
	return seq, nil
}

const outboxColumns = `organization_id, seq, type, application_id, occurred, data`

// EventsSince returns up to limit events of organizationID numbered above
// after, in order.
func (s *Store) EventsSince(ctx context.Context, organizationID string, after int64, limit int) ([]OutboxEvent, error) {
	rows, err := s.query(ctx, `SELECT `+outboxColumns+` FROM outbox_events
		WHERE organization_id = ? AND seq > ? ORDER BY seq LIMIT ?`, organizationID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: events since %d: %w", after, err)
	}
	defer rows.Close()
	var out []OutboxEvent
	for rows.Next() {
		var e OutboxEvent
		if err := rows.Scan(&e.OrganizationID, &e.Seq, &e.Type, &e.ApplicationID, &e.Occurred, &e.Data); err != nil {
			return nil, fmt.Errorf("store: events since %d: %w", after, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: events since %d: %w", after, err)
	}
	return out, nil
}

// LastEventSeq returns the highest sequence number organizationID was given
// (0 for none), pruned events included.
func (s *Store) LastEventSeq(ctx context.Context, organizationID string) (int64, error) {
	var last int64
	err := s.db.QueryRowContext(ctx, s.d.Rebind(`SELECT last FROM outbox_sequences WHERE organization_id = ?`), organizationID).Scan(&last)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: last event of %s: %w", organizationID, err)
	}
	return last, nil
}

// PruneEvents deletes the events that occurred before cut (same format as
// OutboxEvent.Occurred) and have no pending delivery, with their deliveries,
// and returns how many events it deleted.
func (s *Store) PruneEvents(ctx context.Context, cut string) (int64, error) {
	const old = `SELECT e.organization_id, e.seq FROM outbox_events e WHERE e.occurred < ? AND NOT EXISTS
		(SELECT 1 FROM outbox_deliveries d WHERE d.organization_id = e.organization_id AND d.seq = e.seq AND d.state = 'pending')`
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store: prune events: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, s.d.Rebind(`DELETE FROM outbox_deliveries WHERE (organization_id, seq) IN (`+old+`)`), cut); err != nil {
		return 0, fmt.Errorf("store: prune events: %w", err)
	}
	res, err := tx.ExecContext(ctx, s.d.Rebind(`DELETE FROM outbox_events WHERE (organization_id, seq) IN (`+old+`)`), cut)
	if err != nil {
		return 0, fmt.Errorf("store: prune events: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: prune events: %w", err)
	}
	return n, tx.Commit()
}

// Delivery is one event's delivery to one webhook endpoint. A pending
// delivery is sent by the instance holding its lease (LeaseOwner, until
// LeaseUntil); anyone may lease it once the lease lapsed.
type Delivery struct {
	URL            string
	OrganizationID string
	Seq            int64
	State          string // pending, delivered, expired, dropped
	Attempts       int
	NextAttempt    time.Time
	LastStatus     int
	LastError      string
	Done           time.Time
	LeaseOwner     string
	LeaseUntil     time.Time
}

const deliveryColumns = `url, organization_id, seq, state, attempts, next_attempt, last_status, last_error, done_at, lease_owner, lease_until`

func scanDelivery(rows *sql.Rows, extra ...any) (Delivery, error) {
	var d Delivery
	var attempts, next, status, done, until int64
	dest := append([]any{&d.URL, &d.OrganizationID, &d.Seq, &d.State, &attempts, &next, &status, &d.LastError, &done, &d.LeaseOwner, &until}, extra...)
	if err := rows.Scan(dest...); err != nil {
		return Delivery{}, err
	}
	d.Attempts, d.LastStatus = int(attempts), int(status)
	d.NextAttempt, d.Done, d.LeaseUntil = time.Unix(0, next), time.Unix(0, done), time.Unix(0, until)
	return d, nil
}

// EventDeliveries returns the deliveries of event seq of organizationID, by URL.
func (s *Store) EventDeliveries(ctx context.Context, organizationID string, seq int64) ([]Delivery, error) {
	rows, err := s.query(ctx, `SELECT `+deliveryColumns+` FROM outbox_deliveries
		WHERE organization_id = ? AND seq = ? ORDER BY url`, organizationID, seq)
	if err != nil {
		return nil, fmt.Errorf("store: deliveries of %d: %w", seq, err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("store: deliveries of %d: %w", seq, err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// DeliveryHead is the oldest pending delivery of one endpoint URL for one
// organization, with its event: deliveries to an endpoint go in sequence
// order, so only the head may be sent.
type DeliveryHead struct {
	Delivery
	Event OutboxEvent
}

// DeliveryHeads returns the head of every endpoint and organization with a
// pending delivery.
func (s *Store) DeliveryHeads(ctx context.Context) ([]DeliveryHead, error) {
	rows, err := s.query(ctx, `SELECT d.url, d.organization_id, d.seq, d.state, d.attempts, d.next_attempt, d.last_status,
		d.last_error, d.done_at, d.lease_owner, d.lease_until, e.type, e.application_id, e.occurred, e.data
		FROM outbox_deliveries d JOIN outbox_events e ON e.organization_id = d.organization_id AND e.seq = d.seq
		WHERE d.state = 'pending' AND d.seq = (SELECT MIN(x.seq) FROM outbox_deliveries x
			WHERE x.state = 'pending' AND x.url = d.url AND x.organization_id = d.organization_id)`)
	if err != nil {
		return nil, fmt.Errorf("store: delivery heads: %w", err)
	}
	defer rows.Close()
	var out []DeliveryHead
	for rows.Next() {
		var h DeliveryHead
		if h.Delivery, err = scanDelivery(rows, &h.Event.Type, &h.Event.ApplicationID, &h.Event.Occurred, &h.Event.Data); err != nil {
			return nil, fmt.Errorf("store: delivery heads: %w", err)
		}
		h.Event.OrganizationID, h.Event.Seq = h.OrganizationID, h.Seq
		out = append(out, h)
	}
	return out, rows.Err()
}

// LeaseDelivery gives the pending delivery (url, organizationID, seq) to owner
// until the given time, if nobody holds an unexpired lease on it at now. It
// reports whether owner got it; one caller in the fleet does.
func (s *Store) LeaseDelivery(ctx context.Context, url, organizationID string, seq int64, owner string, now, until time.Time) (bool, error) {
	res, err := s.exec(ctx, `UPDATE outbox_deliveries SET lease_owner = ?, lease_until = ?
		WHERE url = ? AND organization_id = ? AND seq = ? AND state = 'pending' AND lease_until <= ?`,
		owner, until.UnixNano(), url, organizationID, seq, now.UnixNano())
	if err != nil {
		return false, fmt.Errorf("store: lease delivery %d to %s: %w", seq, url, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: lease delivery %d to %s: %w", seq, url, err)
	}
	return n == 1, nil
}

// FinishDelivery records the outcome of an attempt made under owner's lease and
// releases the lease: d's State, Attempts, NextAttempt, LastStatus, LastError
// and Done are written. It reports false, writing nothing, when owner no
// longer holds the lease (it lapsed and another instance took the delivery).
func (s *Store) FinishDelivery(ctx context.Context, d Delivery, owner string) (bool, error) {
	res, err := s.exec(ctx, `UPDATE outbox_deliveries SET state = ?, attempts = ?, next_attempt = ?, last_status = ?,
		last_error = ?, done_at = ?, lease_owner = '', lease_until = 0
		WHERE url = ? AND organization_id = ? AND seq = ? AND lease_owner = ?`,
		d.State, int64(d.Attempts), d.NextAttempt.UnixNano(), int64(d.LastStatus), d.LastError, d.Done.UnixNano(),
		d.URL, d.OrganizationID, d.Seq, owner)
	if err != nil {
		return false, fmt.Errorf("store: finish delivery %d to %s: %w", d.Seq, d.URL, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: finish delivery %d to %s: %w", d.Seq, d.URL, err)
	}
	return n == 1, nil
}

// ReleaseDelivery gives up owner's lease without an outcome (a send cut short
// by shutdown), so another instance may send at once.
func (s *Store) ReleaseDelivery(ctx context.Context, url, organizationID string, seq int64, owner string) error {
	if _, err := s.exec(ctx, `UPDATE outbox_deliveries SET lease_owner = '', lease_until = 0
		WHERE url = ? AND organization_id = ? AND seq = ? AND lease_owner = ?`, url, organizationID, seq, owner); err != nil {
		return fmt.Errorf("store: release delivery %d to %s: %w", seq, url, err)
	}
	return nil
}

// PendingDeliveries counts the deliveries not yet made.
func (s *Store) PendingDeliveries(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox_deliveries WHERE state = 'pending'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: pending deliveries: %w", err)
	}
	return n, nil
}
