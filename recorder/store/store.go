// Package store persists recordings so that everything the API shows survives a
// restart. One Store type runs on two drivers: SQLite through the pure-Go
// modernc.org/sqlite (the embedded default: no set-up, one file in the data
// directory) and PostgreSQL through pgx (one database shared by a fleet of
// recorders). The code above it does not know which one it runs on.
//
// The schema is a list of versioned migrations (migrate.go), applied at Open.
// The store keeps each recording as an opaque JSON document beside the columns
// the recorder queries by (tenant, conversation, conference, state); the
// document's shape belongs to package recorder.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
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
	// Owner is the recorderId of the instance that runs the recording now
	// (empty: RecorderID, the one that started it); Epoch counts the
	// ownership changes. Put writes only with the stored Epoch.
	Owner string
	Epoch int64
}

// ErrFenced is returned by Put when the recording's stored epoch is not the
// writer's: another instance took the recording over, and the writer must
// stop writing.
var ErrFenced = errors.New("store: the recording was taken over by another instance")

// Config chooses the driver and the database.
type Config struct {
	// Driver is DriverSQLite (the default when empty) or DriverPostgres.
	Driver string
	// DSN is the SQLite file path (":memory:" for a private in-memory
	// database) or the PostgreSQL connection string
	// (postgres://user:pass@host:5432/db?sslmode=…).
	DSN string
	// LocalPath is, on PostgreSQL, the SQLite file that holds what belongs to
	// this instance alone (see DB). Ignored on SQLite. Empty: in memory.
	LocalPath string
}

// Store is the recorder's database. It is safe for concurrent use.
type Store struct {
	db    *sql.DB // the shared database: recordings, blackouts, …
	d     dialect
	local *sql.DB // this instance's own SQLite database (== db on SQLite)
	// modifyMu serialises Modify on SQLite (one instance: its connection
	// is not held across fn, which may use the store).
	modifyMu sync.Mutex
}

// Open opens (creating if needed) the SQLite database file at path. The path
// ":memory:" gives a private in-memory database, for tests.
func Open(ctx context.Context, path string) (*Store, error) {
	return OpenConfig(ctx, Config{Driver: DriverSQLite, DSN: path})
}

// OpenConfig opens the database cfg names and applies the migrations it has
// not seen yet. On PostgreSQL it also opens the instance's local SQLite file.
func OpenConfig(ctx context.Context, cfg Config) (*Store, error) {
	switch cfg.Driver {
	case "", DriverSQLite:
		db, err := openSQLite(ctx, cfg.DSN)
		if err != nil {
			return nil, err
		}
		s := &Store{db: db, d: sqliteDialect{}, local: db}
		if err := migrate(ctx, db, s.d, migrations); err != nil {
			db.Close()
			return nil, fmt.Errorf("store: migrate %s: %w", cfg.DSN, err)
		}
		return s, nil
	case DriverPostgres:
		if cfg.DSN == "" {
			return nil, errors.New("store: postgres needs a dsn")
		}
		db, err := sql.Open("pgx", cfg.DSN)
		if err != nil {
			return nil, fmt.Errorf("store: open postgres: %w", err)
		}
		db.SetMaxOpenConns(16)
		db.SetMaxIdleConns(4)
		db.SetConnMaxIdleTime(time.Minute)
		s := &Store{db: db, d: postgresDialect{}}
		if err := migrate(ctx, db, s.d, migrations); err != nil {
			db.Close()
			return nil, fmt.Errorf("store: migrate postgres: %w", err)
		}
		local := cfg.LocalPath
		if local == "" {
			local = ":memory:"
		}
		if s.local, err = openSQLite(ctx, local); err != nil {
			db.Close()
			return nil, err
		}
		return s, nil
	default:
		return nil, fmt.Errorf("store: driver %q is not sqlite or postgres", cfg.Driver)
	}
}

func openSQLite(ctx context.Context, path string) (*sql.DB, error) {
	dsn := "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	if path == ":memory:" || path == "" {
		dsn = ":memory:"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	// One connection: SQLite serialises writers anyway, and an in-memory
	// database exists per connection.
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return db, nil
}

// Driver returns DriverSQLite or DriverPostgres: for logs and health output,
// never to branch on (that is the Store's job).
func (s *Store) Driver() string { return s.d.Name() }

func (s *Store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return s.db.ExecContext(ctx, s.d.Rebind(q), args...)
}

func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return s.db.QueryContext(ctx, s.d.Rebind(q), args...)
}

// Put inserts or replaces the recording r; it returns once the write is durable
// enough to survive a process crash (WAL, synchronous=NORMAL). A replacement
// is made only when the stored epoch is r.Epoch: otherwise the recording was
// taken over and Put returns ErrFenced, writing nothing (the fencing of a
// zombie owner).
func (s *Store) Put(ctx context.Context, r *Record) error {
	owner := r.Owner
	if owner == "" {
		owner = r.RecorderID
	}
	res, err := s.exec(ctx, `INSERT INTO recordings
		(instance_id, organization_id, application_id, conversation_id, conference_id, recorder_id, state, started, data, owner, epoch)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (instance_id) DO UPDATE SET state = excluded.state, data = excluded.data
		WHERE recordings.epoch = excluded.epoch`,
		r.InstanceID, r.OrganizationID, r.ApplicationID, r.ConversationID, r.ConferenceID,
		r.RecorderID, r.State, r.Started.UnixNano(), r.Data, owner, r.Epoch)
	if err != nil {
		return fmt.Errorf("store: put %s: %w", r.InstanceID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: put %s: %w", r.InstanceID, err)
	} else if n == 0 {
		return fmt.Errorf("store: put %s at epoch %d: %w", r.InstanceID, r.Epoch, ErrFenced)
	}
	return nil
}

// Claim makes owner the owner of recording instanceID with the next epoch,
// if its epoch is still epoch: of instances claiming at once, one wins. It
// reports whether owner did; from then on, writes with the old epoch fail.
func (s *Store) Claim(ctx context.Context, instanceID string, epoch int64, owner string) (bool, error) {
	res, err := s.exec(ctx, `UPDATE recordings SET owner = ?, epoch = epoch + 1 WHERE instance_id = ? AND epoch = ?`,
		owner, instanceID, epoch)
	if err != nil {
		return false, fmt.Errorf("store: claim %s: %w", instanceID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: claim %s: %w", instanceID, err)
	}
	return n == 1, nil
}

// Epoch returns the owner and the epoch of recording instanceID now.
func (s *Store) Epoch(ctx context.Context, instanceID string) (string, int64, error) {
	var owner, rid string
	var epoch int64
	err := s.db.QueryRowContext(ctx, s.d.Rebind(`SELECT owner, recorder_id, epoch FROM recordings WHERE instance_id = ?`), instanceID).Scan(&owner, &rid, &epoch)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, ErrNotFound
	}
	if err != nil {
		return "", 0, fmt.Errorf("store: epoch of %s: %w", instanceID, err)
	}
	if owner == "" {
		owner = rid
	}
	return owner, epoch, nil
}

const columns = `instance_id, organization_id, application_id, conversation_id, conference_id, recorder_id, state, started, data, owner, epoch`

// Get returns the recording instanceID of organizationID, or ErrNotFound.
func (s *Store) Get(ctx context.Context, organizationID, instanceID string) (*Record, error) {
	rows, err := s.query(ctx, `SELECT `+columns+` FROM recordings
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
	rows, err := s.query(ctx, `SELECT `+columns+` FROM recordings WHERE instance_id = ?`, instanceID)
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
	rows, err := s.query(ctx, `SELECT `+columns+` FROM recordings
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
		rows, err := s.query(ctx, `SELECT `+columns+` FROM recordings WHERE state = ? ORDER BY started`, st)
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
			&r.ConferenceID, &r.RecorderID, &r.State, &started, &r.Data, &r.Owner, &r.Epoch); err != nil {
			return nil, err
		}
		if r.Owner == "" {
			r.Owner = r.RecorderID
		}
		r.Started = time.Unix(0, started).UTC()
		out = append(out, &r)
	}
	return out, rows.Err()
}

// DB returns this instance's own SQLite database, for the tables that belong
// to one instance (the upload queue: its jobs name local files) and that their
// packages keep themselves. On SQLite it is the store's database; on
// PostgreSQL a local file beside it. A table every instance must see is a
// Migration instead.
func (s *Store) DB() *sql.DB { return s.local }

// Close closes the database (and the local one).
func (s *Store) Close() error {
	err := s.db.Close()
	if s.local != s.db {
		if lerr := s.local.Close(); err == nil {
			err = lerr
		}
	}
	return err
}

// ErrQuota is returned by Insert when the organization holds its limit of
// unfinished recordings already.
var ErrQuota = errors.New("store: the organization is at its quota of recordings")

// unfinished are the states of a recording that counts against the quota.
const unfinished = `('INITIALISED', 'ACTIVE', 'PENDING_RECOVERY')`

// Insert stores the new recording r if its organization holds fewer than
// limit unfinished recordings (INITIALISED, ACTIVE, PENDING_RECOVERY) across
// every instance sharing the store; otherwise it returns ErrQuota. The count
// and the insert are one transaction, serialised per organization (an
// advisory lock on PostgreSQL; SQLite has one writer), so concurrent starts
// on any instances never exceed the limit.
func (s *Store) Insert(ctx context.Context, r *Record, limit int) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: insert %s: %w", r.InstanceID, err)
	}
	defer tx.Rollback()
	if s.d.Name() == DriverPostgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext('recordings:' || $1))`, r.OrganizationID); err != nil {
			return fmt.Errorf("store: insert %s: lock: %w", r.InstanceID, err)
		}
	}
	var n int
	if err := tx.QueryRowContext(ctx, s.d.Rebind(`SELECT COUNT(*) FROM recordings WHERE organization_id = ? AND state IN `+unfinished),
		r.OrganizationID).Scan(&n); err != nil {
		return fmt.Errorf("store: insert %s: %w", r.InstanceID, err)
	}
	if n >= limit {
		return ErrQuota
	}
	owner := r.Owner
	if owner == "" {
		owner = r.RecorderID
	}
	if _, err := tx.ExecContext(ctx, s.d.Rebind(`INSERT INTO recordings
		(instance_id, organization_id, application_id, conversation_id, conference_id, recorder_id, state, started, data, owner, epoch)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		r.InstanceID, r.OrganizationID, r.ApplicationID, r.ConversationID, r.ConferenceID,
		r.RecorderID, r.State, r.Started.UnixNano(), r.Data, owner, r.Epoch); err != nil {
		return fmt.Errorf("store: insert %s: %w", r.InstanceID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: insert %s: %w", r.InstanceID, err)
	}
	return nil
}
