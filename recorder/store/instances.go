package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Instance is one recorder process of a fleet as it last reported itself
// (package cluster writes it every heartbeat).
type Instance struct {
	RecorderID  string
	InternalURL string // where the other instances reach it (forwarded commands)
	PublicURL   string // where clients reach it (WHIP redirects)
	Capacity    int    // streams it takes at most (0: no limit)
	Active      int    // streams it carries now (its load)
	Draining    bool   // shutting down: takes no new recording
	Started     time.Time
	Heartbeat   time.Time // the instance's clock at its last heartbeat
}

// ErrNoInstance is returned by Instance for an unknown recorderId.
var ErrNoInstance = errors.New("store: instance not found")

const instanceColumns = `recorder_id, internal_url, public_url, capacity, active, draining, started, heartbeat`

// PutInstance inserts or replaces the row of in.RecorderID.
func (s *Store) PutInstance(ctx context.Context, in *Instance) error {
	draining := 0
	if in.Draining {
		draining = 1
	}
	_, err := s.exec(ctx, `INSERT INTO instances (`+instanceColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (recorder_id) DO UPDATE SET internal_url = excluded.internal_url, public_url = excluded.public_url,
		capacity = excluded.capacity, active = excluded.active, draining = excluded.draining,
		started = excluded.started, heartbeat = excluded.heartbeat`,
		in.RecorderID, in.InternalURL, in.PublicURL, int64(in.Capacity), int64(in.Active), int64(draining),
		in.Started.UnixNano(), in.Heartbeat.UnixNano())
	if err != nil {
		return fmt.Errorf("store: put instance %s: %w", in.RecorderID, err)
	}
	return nil
}

// DeleteInstance removes the row of recorderID (an instance leaving the
// fleet); a missing row is no error.
func (s *Store) DeleteInstance(ctx context.Context, recorderID string) error {
	if _, err := s.exec(ctx, `DELETE FROM instances WHERE recorder_id = ?`, recorderID); err != nil {
		return fmt.Errorf("store: delete instance %s: %w", recorderID, err)
	}
	return nil
}

// Instances returns every registered instance, by recorderId.
func (s *Store) Instances(ctx context.Context) ([]*Instance, error) {
	rows, err := s.query(ctx, `SELECT `+instanceColumns+` FROM instances ORDER BY recorder_id`)
	if err != nil {
		return nil, fmt.Errorf("store: instances: %w", err)
	}
	defer rows.Close()
	var out []*Instance
	for rows.Next() {
		var in Instance
		var capacity, active, draining, started, heartbeat int64
		if err := rows.Scan(&in.RecorderID, &in.InternalURL, &in.PublicURL, &capacity, &active, &draining, &started, &heartbeat); err != nil {
			return nil, fmt.Errorf("store: instances: %w", err)
		}
		in.Capacity, in.Active, in.Draining = int(capacity), int(active), draining != 0
		in.Started, in.Heartbeat = time.Unix(0, started).UTC(), time.Unix(0, heartbeat).UTC()
		out = append(out, &in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: instances: %w", err)
	}
	return out, nil
}

// Instance returns the row of recorderID, or ErrNoInstance.
func (s *Store) Instance(ctx context.Context, recorderID string) (*Instance, error) {
	all, err := s.Instances(ctx)
	if err != nil {
		return nil, err
	}
	for _, in := range all {
		if in.RecorderID == recorderID {
			return in, nil
		}
	}
	return nil, ErrNoInstance
}

// Setting returns the shared setting name, storing value first when the
// setting does not exist yet: the first instance to ask decides it (the
// cluster secret), every later one reads the same value.
func (s *Store) Setting(ctx context.Context, name, value string) (string, error) {
	if _, err := s.exec(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, value); err != nil {
		return "", fmt.Errorf("store: setting %s: %w", name, err)
	}
	var v string
	if err := s.db.QueryRowContext(ctx, s.d.Rebind(`SELECT value FROM settings WHERE name = ?`), name).Scan(&v); err != nil {
		return "", fmt.Errorf("store: setting %s: %w", name, err)
	}
	return v, nil
}
