package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Migration is one versioned change of the schema. Migrations are applied in
// Version order, each once per database, in a transaction, and recorded in
// schema_migrations; an applied migration is never edited: a change is a new
// migration with the next version.
//
// SQL is run on both drivers; where they need different text, SQLite and
// Postgres replace it for their driver. Statements are separated by ";" at the
// end of a line. Write types both accept: TEXT, BIGINT (times are Unix
// nanoseconds), BOOLEAN; for bytes write {bytes} (BLOB on SQLite, BYTEA on
// PostgreSQL). {int64} is INTEGER on SQLite and BIGINT on PostgreSQL, as the
// first migrations were written.
type Migration struct {
	Version  int
	Name     string
	SQL      string
	SQLite   string // overrides SQL on SQLite
	Postgres string // overrides SQL on PostgreSQL
}

func (m Migration) text(d dialect) string {
	switch {
	case d.Name() == DriverSQLite && m.SQLite != "":
		return m.SQLite
	case d.Name() == DriverPostgres && m.Postgres != "":
		return m.Postgres
	}
	return typeNames[d.Name()].Replace(m.SQL)
}

// typeNames spells the type placeholders of Migration.SQL per driver.
var typeNames = map[string]*strings.Replacer{
	DriverSQLite:   strings.NewReplacer("{bytes}", "BLOB", "{int64}", "INTEGER"),
	DriverPostgres: strings.NewReplacer("{bytes}", "BYTEA", "{int64}", "BIGINT"),
}

// migrations is the schema, oldest first. To add a table, append a Migration
// with the next Version (see the note in /work/notes/fleet.md).
var migrations = []Migration{
	{
		Version: 1, Name: "recordings",
		// IF NOT EXISTS: databases created before versioned migrations
		// already have the table.
		SQL: `CREATE TABLE IF NOT EXISTS recordings (
	instance_id     TEXT PRIMARY KEY,
	organization_id TEXT NOT NULL,
	application_id  TEXT NOT NULL,
	conversation_id TEXT NOT NULL,
	conference_id   TEXT NOT NULL,
	recorder_id     TEXT NOT NULL,
	state           TEXT NOT NULL,
	started         {int64} NOT NULL,
	data            {bytes} NOT NULL
);
CREATE INDEX IF NOT EXISTS recordings_conversation ON recordings (organization_id, conversation_id, started);
CREATE INDEX IF NOT EXISTS recordings_state ON recordings (state);`,
	},
	{
		Version: 2, Name: "blackouts",
		SQL: `CREATE TABLE IF NOT EXISTS blackouts (
	organization_id TEXT NOT NULL,
	user_id         TEXT NOT NULL,
	conference_id   TEXT NOT NULL,
	start           {int64} NOT NULL,
	stop            {int64} NOT NULL,
	recordings      {bytes} NOT NULL,
	PRIMARY KEY (organization_id, user_id)
);`,
	},
	{
		Version: 3, Name: "instances",
		// The instances of a fleet (package cluster), and settings every
		// instance shares (the cluster secret). draining is 0 or 1.
		SQL: `CREATE TABLE IF NOT EXISTS instances (
	recorder_id  TEXT PRIMARY KEY,
	internal_url TEXT NOT NULL,
	public_url   TEXT NOT NULL,
	capacity     BIGINT NOT NULL,
	active       BIGINT NOT NULL,
	draining     BIGINT NOT NULL,
	started      BIGINT NOT NULL,
	heartbeat    BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
	name  TEXT PRIMARY KEY,
	value TEXT NOT NULL
);`,
	},
	{
		Version: 4, Name: "agents",
		// Seed 003's agents (agents.go): the rest of an agent is JSON owned
		// by package recorder.
		SQL: `CREATE TABLE IF NOT EXISTS agents (
	organization_id TEXT NOT NULL,
	agent_id        BIGINT NOT NULL,
	data            {bytes} NOT NULL,
	PRIMARY KEY (organization_id, agent_id)
);`,
	},
	{
		Version: 5, Name: "outbox",
		// The events outbox (package events, outbox.go): every event with
		// its per-organization sequence number (the SSE id and webhook event
		// id), the last number given per organization (never reused after
		// pruning), and one delivery row per event and webhook endpoint,
		// leased by the instance sending it. On SQLite the tables package
		// events kept itself before are moved in: an event keeps its id as
		// its sequence number, so clients resume where they were.
		SQLite: `CREATE TABLE IF NOT EXISTS events_outbox (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	type            TEXT NOT NULL,
	organization_id TEXT NOT NULL,
	application_id  TEXT NOT NULL,
	occurred        TEXT NOT NULL,
	data            TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events_deliveries (
	url          TEXT NOT NULL,
	event_id     INTEGER NOT NULL,
	state        TEXT NOT NULL DEFAULT 'pending',
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_attempt INTEGER NOT NULL DEFAULT 0,
	last_status  INTEGER NOT NULL DEFAULT 0,
	last_error   TEXT NOT NULL DEFAULT '',
	done_at      INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (url, event_id)
);
` + outboxTables + `
INSERT INTO outbox_events (organization_id, seq, type, application_id, occurred, data)
	SELECT organization_id, id, type, application_id, occurred, data FROM events_outbox;
INSERT INTO outbox_sequences (organization_id, last)
	SELECT organization_id, MAX(id) FROM events_outbox GROUP BY organization_id;
INSERT INTO outbox_deliveries (url, organization_id, seq, state, attempts, next_attempt, last_status, last_error, done_at)
	SELECT d.url, e.organization_id, d.event_id, d.state, d.attempts, d.next_attempt, d.last_status, d.last_error, d.done_at
	FROM events_deliveries d JOIN events_outbox e ON e.id = d.event_id;
DROP TABLE events_deliveries;
DROP TABLE events_outbox;`,
		Postgres: outboxTables,
	},
	{
		Version: 6, Name: "conference_pins",
		// The instance each conference is pinned to (WHIP ingest lands on
		// one instance: cluster.Node.Pin); epoch counts the re-pins.
		SQL: `CREATE TABLE conference_pins (
	organization_id TEXT NOT NULL,
	conference_id   TEXT NOT NULL,
	recorder_id     TEXT NOT NULL,
	epoch           BIGINT NOT NULL,
	pinned          BIGINT NOT NULL,
	PRIMARY KEY (organization_id, conference_id)
);`,
	},
	{
		Version: 7, Name: "recording_owner",
		// Who runs each recording now (its recorderId stays the one that
		// started it: it is part of the recording's id) and the fencing epoch
		// of that ownership: a write carries the writer's epoch and fails once
		// another instance took the recording over (store.ErrFenced).
		SQL: `ALTER TABLE recordings ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE recordings ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;`,
	},
	{
		Version: 8, Name: "quota_leases",
		// The places organizations hold in the fleet-wide quotas (WHIP
		// sessions, event streams, blackouts: leases.go). expires is Unix
		// nanoseconds; a holder that dies lets its leases lapse.
		SQL: `CREATE TABLE quota_leases (
	organization_id TEXT NOT NULL,
	kind            TEXT NOT NULL,
	lease_id        TEXT NOT NULL,
	holder          TEXT NOT NULL,
	expires         BIGINT NOT NULL,
	PRIMARY KEY (organization_id, kind, lease_id)
);
CREATE INDEX quota_leases_holder ON quota_leases (holder);`,
	},
	{
		// 10, not 7: 7 to 9 are left to the fleet's migrations under way
		// (versions need not be contiguous, only ascending).
		Version: 10, Name: "composite_jobs",
		// Composite videos handed to the fleet's composition instances
		// (compositejobs.go). claimed_at is 0 until an instance takes the
		// job, Unix nanoseconds after.
		SQL: `CREATE TABLE IF NOT EXISTS fleet_composite_jobs (
	instance_id TEXT PRIMARY KEY,
	enqueued    BIGINT NOT NULL,
	claimed_by  TEXT NOT NULL,
	claimed_at  BIGINT NOT NULL
);`,
	},
	{
		Version: 11, Name: "recording_entries",
		// A recording's chat lines and cobrowse events (entries.go), one row
		// each, so that an add never rewrites the recording's document.
		// entry_key makes duplicates a no-op; sort_key orders a session's
		// entries and seq keeps the order of arrival among equal sort keys;
		// size is what the row stores (data, session id and key), which the
		// limits count; added is when it was added (Unix nanoseconds).
		SQL: `CREATE TABLE recording_entries (
	instance_id TEXT NOT NULL,
	kind        TEXT NOT NULL,
	session_id  TEXT NOT NULL,
	entry_key   TEXT NOT NULL,
	sort_key    BIGINT NOT NULL,
	seq         BIGINT NOT NULL,
	size        BIGINT NOT NULL,
	data        {bytes} NOT NULL,
	added       BIGINT NOT NULL,
	PRIMARY KEY (instance_id, kind, session_id, entry_key)
);`,
	},
}

// outboxTables is migration 5's schema on both drivers. occurred is RFC 3339
// UTC text of a fixed width (it sorts in time order); next_attempt, done_at
// and lease_until are Unix nanoseconds.
const outboxTables = `CREATE TABLE outbox_sequences (
	organization_id TEXT PRIMARY KEY,
	last            BIGINT NOT NULL
);
CREATE TABLE outbox_events (
	organization_id TEXT NOT NULL,
	seq             BIGINT NOT NULL,
	type            TEXT NOT NULL,
	application_id  TEXT NOT NULL,
	occurred        TEXT NOT NULL,
	data            TEXT NOT NULL,
	PRIMARY KEY (organization_id, seq)
);
CREATE INDEX outbox_events_occurred ON outbox_events (occurred);
CREATE TABLE outbox_deliveries (
	url             TEXT NOT NULL,
	organization_id TEXT NOT NULL,
	seq             BIGINT NOT NULL,
	state           TEXT NOT NULL DEFAULT 'pending',
	attempts        BIGINT NOT NULL DEFAULT 0,
	next_attempt    BIGINT NOT NULL DEFAULT 0,
	last_status     BIGINT NOT NULL DEFAULT 0,
	last_error      TEXT NOT NULL DEFAULT '',
	done_at         BIGINT NOT NULL DEFAULT 0,
	lease_owner     TEXT NOT NULL DEFAULT '',
	lease_until     BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (url, organization_id, seq)
);
CREATE INDEX outbox_deliveries_pending ON outbox_deliveries (state, url, organization_id, seq);
CREATE INDEX outbox_deliveries_event ON outbox_deliveries (organization_id, seq);
`

// migrationLock is the PostgreSQL advisory lock key held while migrating, so
// that instances starting together apply each migration once.
const migrationLock = 0x7265636f72646572 // "recorder"

// migrate applies the migrations of list that db has not seen yet.
func migrate(ctx context.Context, db *sql.DB, d dialect, list []Migration) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if d.Name() == DriverPostgres {
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLock)); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrationLock))
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version BIGINT PRIMARY KEY,
	name    TEXT NOT NULL,
	applied BIGINT NOT NULL
)`); err != nil {
		return fmt.Errorf("schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	rows, err := conn.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	last := 0
	for _, m := range list {
		if m.Version <= last {
			return fmt.Errorf("migration %d (%s) is out of order", m.Version, m.Name)
		}
		last = m.Version
		if applied[m.Version] {
			continue
		}
		if err := apply(ctx, conn, d, m); err != nil {
			return fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
		}
	}
	return nil
}

func apply(ctx context.Context, conn *sql.Conn, d dialect, m Migration) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, stmt := range strings.Split(m.text(d), ";\n") {
		if stmt = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(stmt), ";")); stmt == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, d.Rebind(`INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)`),
		m.Version, m.Name, time.Now().UnixNano()); err != nil {
		return err
	}
	return tx.Commit()
}
