package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Fleet-wide quotas: a place an organization holds in a quota (a WHIP
// session, an event stream, a blackout) is a lease row in the shared store,
// taken with AcquireLease, which counts the organization's unexpired leases
// of that kind and inserts in one transaction, serialised per organization
// and kind (an advisory lock on PostgreSQL; SQLite has one writer). So
// concurrent requests on any instances never hold more than the limit. A
// lease ends with ReleaseLease, or lapses at its expiry: the holder renews
// the leases of live connections with each heartbeat (RenewLeases), so a
// dead instance's lapse a few heartbeats after it died.

// Lease is one place an organization holds in one fleet-wide quota.
type Lease struct {
	OrganizationID string
	Kind           string // whip, sse, blackout, …
	ID             string // unique within the organization and kind
	Holder         string // the recorderId holding it
	Expires        time.Time
}

// AcquireLease takes l if the organization holds fewer than limit unexpired
// leases of its kind, and reports whether it did. A lease with l's id that
// is held already is renewed with l's holder and expiry (true).
func (s *Store) AcquireLease(ctx context.Context, l *Lease, limit int) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("store: lease %s: %w", l.Kind, err)
	}
	defer tx.Rollback()
	if s.d.Name() == DriverPostgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext('quota:' || $1 || ':' || $2))`, l.Kind, l.OrganizationID); err != nil {
			return false, fmt.Errorf("store: lease %s: lock: %w", l.Kind, err)
		}
	}
	if _, err := tx.ExecContext(ctx, s.d.Rebind(`DELETE FROM quota_leases WHERE organization_id = ? AND kind = ? AND expires < ?`),
		l.OrganizationID, l.Kind, time.Now().UnixNano()); err != nil {
		return false, fmt.Errorf("store: lease %s: %w", l.Kind, err)
	}
	res, err := tx.ExecContext(ctx, s.d.Rebind(`UPDATE quota_leases SET holder = ?, expires = ?
		WHERE organization_id = ? AND kind = ? AND lease_id = ?`), l.Holder, l.Expires.UnixNano(), l.OrganizationID, l.Kind, l.ID)
	if err != nil {
		return false, fmt.Errorf("store: lease %s: %w", l.Kind, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return false, fmt.Errorf("store: lease %s: %w", l.Kind, err)
	} else if n == 0 {
		var held int
		if err := tx.QueryRowContext(ctx, s.d.Rebind(`SELECT COUNT(*) FROM quota_leases WHERE organization_id = ? AND kind = ?`),
			l.OrganizationID, l.Kind).Scan(&held); err != nil {
			return false, fmt.Errorf("store: lease %s: %w", l.Kind, err)
		}
		if held >= limit {
			return false, nil
		}
		if _, err := tx.ExecContext(ctx, s.d.Rebind(`INSERT INTO quota_leases (organization_id, kind, lease_id, holder, expires)
			VALUES (?, ?, ?, ?, ?)`), l.OrganizationID, l.Kind, l.ID, l.Holder, l.Expires.UnixNano()); err != nil {
			return false, fmt.Errorf("store: lease %s: %w", l.Kind, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("store: lease %s: %w", l.Kind, err)
	}
	return true, nil
}

// ReleaseLease ends a lease; releasing one that is gone is not an error.
func (s *Store) ReleaseLease(ctx context.Context, organizationID, kind, id string) error {
	if _, err := s.exec(ctx, `DELETE FROM quota_leases WHERE organization_id = ? AND kind = ? AND lease_id = ?`,
		organizationID, kind, id); err != nil {
		return fmt.Errorf("store: release lease %s: %w", kind, err)
	}
	return nil
}

// RenewLeases moves the expiry of every lease of the given kinds that holder
// holds to expires (its heartbeat: the connections are still there).
func (s *Store) RenewLeases(ctx context.Context, holder string, kinds []string, expires time.Time) error {
	if len(kinds) == 0 {
		return nil
	}
	args := []any{expires.UnixNano(), holder}
	for _, k := range kinds {
		args = append(args, k)
	}
	if _, err := s.exec(ctx, `UPDATE quota_leases SET expires = ? WHERE holder = ? AND kind IN (`+
		strings.TrimSuffix(strings.Repeat("?, ", len(kinds)), ", ")+`)`, args...); err != nil {
		return fmt.Errorf("store: renew leases: %w", err)
	}
	return nil
}

// Leases returns how many unexpired leases of kind the organization holds.
func (s *Store) Leases(ctx context.Context, organizationID, kind string) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, s.d.Rebind(`SELECT COUNT(*) FROM quota_leases WHERE organization_id = ? AND kind = ? AND expires >= ?`),
		organizationID, kind, time.Now().UnixNano()).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: leases: %w", err)
	}
	return n, nil
}
