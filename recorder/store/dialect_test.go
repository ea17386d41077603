package store

import (
	"strings"
	"testing"
)

func TestPostgresDialect_Rebind(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`a = ? AND b = ?`, `a = $1 AND b = $2`},
		{`x = '?' AND y = ? AND "q?" = ?`, `x = '?' AND y = $1 AND "q?" = $2`},
		{`VALUES (?, ?, ?)`, `VALUES ($1, $2, $3)`},
	} {
		if got := (postgresDialect{}).Rebind(c.in); got != c.want {
			t.Errorf("Rebind(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func FuzzPostgresDialect_Rebind(f *testing.F) {
	f.Add(`a = ? AND b = '?'`)
	f.Fuzz(func(t *testing.T, q string) {
		out := (postgresDialect{}).Rebind(q)
		if len(out) < len(q) {
			t.Errorf("Rebind shortened %q to %q", q, out)
		}
	})
}

// TestMigrations_TypesPerDriver: every placeholder of a migration is spelled
// for each driver, as the migrations were first written (BLOB and INTEGER on
// SQLite, BYTEA and BIGINT on PostgreSQL).
func TestMigrations_TypesPerDriver(t *testing.T) {
	for _, d := range []dialect{sqliteDialect{}, postgresDialect{}} {
		for _, m := range migrations {
			if text := m.text(d); strings.Contains(text, "{") {
				t.Errorf("%s, migration %d: a placeholder is left: %s", d.Name(), m.Version, text)
			}
		}
	}
	rec := migrations[0]
	if s, p := rec.text(sqliteDialect{}), rec.text(postgresDialect{}); !strings.Contains(s, "started         INTEGER NOT NULL") ||
		!strings.Contains(s, "data            BLOB NOT NULL") || !strings.Contains(p, "started         BIGINT NOT NULL") ||
		!strings.Contains(p, "data            BYTEA NOT NULL") {
		t.Errorf("recordings table:\nSQLite: %s\nPostgreSQL: %s", s, p)
	}
}
