// Package store persists recordings so that everything the API shows survives a
// restart. The embedded implementation is SQLite through the pure-Go
// modernc.org/sqlite driver: no set-up, one file in the data directory.
//
// The store keeps each recording as an opaque JSON document beside the columns
// the recorder queries by (tenant, conversation, conference, state); the
// document's shape belongs to package recorder.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// ErrNotFound is returned when no recording matches; another tenant's recording
// is not found either.
var ErrNotFound = errors.New("store: recording not found")

// Record is one stored recording.
type Record struct {
	InstanceID     string
	OrganizationID string
	ApplicationID  string
	ConversationID string
	ConferenceID   string
	RecorderID     string
	State          string
	Started        time.Time
	Data           []byte // the recording as JSON, owned by package recorder
}

// Store is a SQLite database of recordings. It is safe for concurrent use.
type Store struct {
	db *sql.DB
}

const schema = `
CREATE TABLE IF NOT EXISTS recordings (
	instance_id     TEXT PRIMARY KEY,
	organization_id TEXT NOT NULL,
	application_id  TEXT NOT NULL,
	conversation_id TEXT NOT NULL,
	conference_id   TEXT NOT NULL,
	recorder_id     TEXT NOT NULL,
	state           TEXT NOT NULL,
	started         INTEGER NOT NULL,
	data            BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS recordings_conversation ON recordings (organization_id, conversation_id, started);
CREATE INDEX IF NOT EXISTS recordings_state ON recordings (state);
`

// Open opens (creating if needed) the database file at path. The path
// ":memory:" gives a private in-memory database, for tests.
func Open(ctx context.Context, path string) (*Store, error) {
	dsn := "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	if path == ":memory:" {
		dsn = ":memory:"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	// One connection: SQLite serialises writers anyway, and an in-memory
	// database exists per connection.
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: create schema in %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Put inserts or replaces the recording r; it returns once the write is durable
// enough to survive a process crash (WAL, synchronous=NORMAL).
func (s *Store) Put(ctx context.Context, r *Record) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO recordings
		(instance_id, organization_id, application_id, conversation_id, conference_id, recorder_id, state, started, data)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (instance_id) DO UPDATE SET state = excluded.state, data = excluded.data`,
		r.InstanceID, r.OrganizationID, r.ApplicationID, r.ConversationID, r.ConferenceID,
		r.RecorderID, r.State, r.Started.UnixNano(), r.Data)
	if err != nil {
		return fmt.Errorf("store: put %s: %w", r.InstanceID, err)
	}
	return nil
}

const columns = `instance_id, organization_id, application_id, conversation_id, conference_id, recorder_id, state, started, data`

// Get returns the recording instanceID of organizationID, or ErrNotFound.
func (s *Store) Get(ctx context.Context, organizationID, instanceID string) (*Record, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+columns+` FROM recordings
		WHERE organization_id = ? AND instance_id = ?`, organizationID, instanceID)
	recs, err := scan(rows, err)
	if err != nil {
		return nil, fmt.Errorf("store: get %s: %w", instanceID, err)
	}
	if len(recs) == 0 {
		return nil, ErrNotFound
	}
	return recs[0], nil
}

// Lookup returns the recording instanceID of any organization, or ErrNotFound:
// for requests whose signature, not an API key, proves the right to read.
func (s *Store) Lookup(ctx context.Context, instanceID string) (*Record, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+columns+` FROM recordings WHERE instance_id = ?`, instanceID)
	recs, err := scan(rows, err)
	if err != nil {
		return nil, fmt.Errorf("store: lookup %s: %w", instanceID, err)
	}
	if len(recs) == 0 {
		return nil, ErrNotFound
	}
	return recs[0], nil
}

// Conversation returns the recordings of one conversation of organizationID,
// oldest first; none is an empty slice, not an error.
func (s *Store) Conversation(ctx context.Context, organizationID, conversationID string) ([]*Record, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+columns+` FROM recordings
		WHERE organization_id = ? AND conversation_id = ? ORDER BY started, instance_id`, organizationID, conversationID)
	recs, err := scan(rows, err)
	if err != nil {
		return nil, fmt.Errorf("store: conversation %s: %w", conversationID, err)
	}
	return recs, nil
}

// InStates returns every recording (of any tenant) whose state is one of
// states, oldest first: start-up recovery uses it.
func (s *Store) InStates(ctx context.Context, states ...string) ([]*Record, error) {
	var out []*Record
	for _, st := range states {
		rows, err := s.db.QueryContext(ctx, `SELECT `+columns+` FROM recordings WHERE state = ? ORDER BY started`, st)
		recs, err := scan(rows, err)
		if err != nil {
			return nil, fmt.Errorf("store: recordings in state %s: %w", st, err)
		}
		out = append(out, recs...)
	}
	return out, nil
}

func scan(rows *sql.Rows, err error) ([]*Record, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Record
	for rows.Next() {
		var r Record
		var started int64
		if err := rows.Scan(&r.InstanceID, &r.OrganizationID, &r.ApplicationID, &r.ConversationID,
			&r.ConferenceID, &r.RecorderID, &r.State, &started, &r.Data); err != nil {
			return nil, err
		}
		r.Started = time.Unix(0, started).UTC()
		out = append(out, &r)
	}
	return out, rows.Err()
}

// DB returns the database handle, shared with other parts of the service that
// keep their own tables in the same file (the event outbox).
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }
