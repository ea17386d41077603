package store

import "testing"

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
