package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// A recording's chat lines and cobrowse events (seed 004) are rows of their
// own in recording_entries, not fields of the recording's document: an add
// inserts its rows and never rewrites the recording. AppendEntries counts and
// inserts in one transaction, serialised per recording and kind (an advisory
// lock on PostgreSQL; SQLite has one writer), so concurrent adds on any
// instances never take a recording past its limits.

// Entry is one stored chat line or cobrowse event of a recording.
type Entry struct {
	// SessionID groups the entries of a kind (a cobrowse session); "" for chat.
	SessionID string
	// Key identifies the entry within its recording, kind and session: an
	// entry whose key is stored already is a duplicate and is not added.
	Key string
	// SortKey orders the entries of a session (a time, a sequence number);
	// entries with the same SortKey keep the order they were added in.
	SortKey int64
	// Data is the entry as JSON, owned by package recorder.
	Data []byte
	// Added is when the entry was added (kept to the nanosecond).
	Added time.Time
}

// Size is what the entry stores: every byte of its data, session id and key.
// The limits count it.
func (e *Entry) Size() int64 { return int64(len(e.Data) + len(e.SessionID) + len(e.Key)) }

// EntryLimits bound the entries of one kind of one recording; 0 is no bound.
type EntryLimits struct {
	Bytes    int64 // the sum of the entries' Size
	Entries  int
	Sessions int // distinct session ids
}

// ErrEntryLimit is returned by AppendEntries when the entries would take the
// recording past a limit; nothing of the append is stored then.
var ErrEntryLimit = errors.New("store: the recording's entries are at their limit")

// appendRows is how many entries one INSERT carries (9 values each: well
// below PostgreSQL's 65535 parameters).
const appendRows = 256

// AppendEntries adds entries of kind to recording instanceID, all or none,
// and returns how many were new (duplicates of stored keys, or of keys earlier
// in entries, are skipped). When the new entries would take the recording's
// entries of kind past lim it stores nothing and returns ErrEntryLimit; an
// append that adds nothing is never refused.
func (s *Store) AppendEntries(ctx context.Context, instanceID, kind string, entries []Entry, lim EntryLimits) (int, error) {
	fail := func(err error) (int, error) {
		return 0, fmt.Errorf("store: append %s to %s: %w", kind, instanceID, err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	if s.d.Name() == DriverPostgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext('entries:' || $1 || ':' || $2))`, kind, instanceID); err != nil {
			return fail(fmt.Errorf("lock: %w", err))
		}
	}
	var seq int64
	if err := tx.QueryRowContext(ctx, s.d.Rebind(`SELECT COALESCE(MAX(seq), 0) FROM recording_entries WHERE instance_id = ? AND kind = ?`),
		instanceID, kind).Scan(&seq); err != nil {
		return fail(err)
	}
	added := 0
	for len(entries) > 0 {
		batch := entries[:min(len(entries), appendRows)]
		entries = entries[len(batch):]
		args := make([]any, 0, 9*len(batch))
		for _, e := range batch {
			seq++
			args = append(args, instanceID, kind, e.SessionID, e.Key, e.SortKey, seq, e.Size(), e.Data, e.Added.UnixNano())
		}
		res, err := tx.ExecContext(ctx, s.d.Rebind(`INSERT INTO recording_entries
			(instance_id, kind, session_id, entry_key, sort_key, seq, size, data, added) VALUES `+
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?, ?), ", len(batch)), ", ")+`
			ON CONFLICT (instance_id, kind, session_id, entry_key) DO NOTHING`), args...)
		if err != nil {
			return fail(err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fail(err)
		}
		added += int(n)
	}
	if added == 0 {
		return 0, nil // nothing new: the rollback leaves the table as it was
	}
	var count, sessions int
	var bytes int64
	if err := tx.QueryRowContext(ctx, s.d.Rebind(`SELECT COUNT(*), COALESCE(SUM(size), 0), COUNT(DISTINCT session_id)
		FROM recording_entries WHERE instance_id = ? AND kind = ?`), instanceID, kind).Scan(&count, &bytes, &sessions); err != nil {
		return fail(err)
	}
	if lim.Bytes > 0 && bytes > lim.Bytes || lim.Entries > 0 && count > lim.Entries || lim.Sessions > 0 && sessions > lim.Sessions {
		return 0, ErrEntryLimit
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return added, nil
}

// Entries returns the entries of kind of recording instanceID, ordered by
// session id, then SortKey, then the order they were added in.
func (s *Store) Entries(ctx context.Context, instanceID, kind string) ([]Entry, error) {
	rows, err := s.query(ctx, `SELECT session_id, entry_key, sort_key, data, added FROM recording_entries
		WHERE instance_id = ? AND kind = ? ORDER BY session_id, sort_key, seq`, instanceID, kind)
	if err != nil {
		return nil, fmt.Errorf("store: entries of %s: %w", instanceID, err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var added int64
		if err := rows.Scan(&e.SessionID, &e.Key, &e.SortKey, &e.Data, &added); err != nil {
			return nil, fmt.Errorf("store: entries of %s: %w", instanceID, err)
		}
		e.Added = time.Unix(0, added).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: entries of %s: %w", instanceID, err)
	}
	return out, nil
}

// EntryGroup summarises the entries of one session of one kind of one
// recording.
type EntryGroup struct {
	InstanceID, Kind, SessionID string
	Count                       int
	Bytes                       int64     // the sum of the entries' Size
	FirstSortKey                int64     // the smallest SortKey
	LastAdded                   time.Time // when the latest entry was added
}

// EntryGroups returns the groups of the entries of the given recordings,
// ordered by instance id, kind and session id.
func (s *Store) EntryGroups(ctx context.Context, instanceIDs ...string) ([]EntryGroup, error) {
	var out []EntryGroup
	for len(instanceIDs) > 0 {
		ids := instanceIDs[:min(len(instanceIDs), 500)]
		instanceIDs = instanceIDs[len(ids):]
		args := make([]any, len(ids))
		for i, id := range ids {
			args[i] = id
		}
		rows, err := s.query(ctx, `SELECT instance_id, kind, session_id, COUNT(*), COALESCE(SUM(size), 0), MIN(sort_key), MAX(added)
			FROM recording_entries WHERE instance_id IN (`+strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")+`)
			GROUP BY instance_id, kind, session_id ORDER BY instance_id, kind, session_id`, args...)
		if err != nil {
			return nil, fmt.Errorf("store: entry groups: %w", err)
		}
		for rows.Next() {
			var g EntryGroup
			var added int64
			if err := rows.Scan(&g.InstanceID, &g.Kind, &g.SessionID, &g.Count, &g.Bytes, &g.FirstSortKey, &added); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: entry groups: %w", err)
			}
			g.LastAdded = time.Unix(0, added).UTC()
			out = append(out, g)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("store: entry groups: %w", err)
		}
	}
	return out, nil
}
