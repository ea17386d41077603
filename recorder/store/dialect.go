package store

import (
	"strconv"
	"strings"
)

// The drivers a Store runs on.
const (
	DriverSQLite   = "sqlite"   // modernc.org/sqlite, embedded, one file
	DriverPostgres = "postgres" // PostgreSQL through pgx: one database for a fleet
)

// dialect holds what differs between the drivers. Queries are written once,
// with ? placeholders and types both databases accept; the dialect rewrites
// what it must.
type dialect interface {
	// Name is DriverSQLite or DriverPostgres.
	Name() string
	// Rebind rewrites the ? placeholders of q into the driver's syntax.
	Rebind(q string) string
}

type sqliteDialect struct{}

func (sqliteDialect) Name() string           { return DriverSQLite }
func (sqliteDialect) Rebind(q string) string { return q }

type postgresDialect struct{}

func (postgresDialect) Name() string { return DriverPostgres }

// Rebind numbers the placeholders: ? becomes $1, $2, …; a ? inside a quoted
// string or identifier is left alone.
func (postgresDialect) Rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	var quote byte
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
