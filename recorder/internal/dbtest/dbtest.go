// Package dbtest opens SQLite databases for the tests of the recorder's
// persisted queues and checks that those tests leave no goroutines behind.
package dbtest

import (
	"database/sql"
	"runtime"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the pure-Go driver the service uses
)

// Pragmas are the DSN parameters the recorder/events and recorder/upload
// documentation asks the service's opener to set.
const Pragmas = "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"

// Open opens (or reopens) the SQLite database file at path, closed at the
// end of the test. Like recorder/store, it allows one connection, so a
// statement run while another's cursor is open would deadlock the test.
func Open(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+Pragmas)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// NoLeaks fails the test if, after its other cleanups ran, more goroutines
// are running than when NoLeaks was called (it waits up to 3 s for them to
// end). Call it first in a test, so that its cleanup runs last.
func NoLeaks(t testing.TB) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("goroutines: %d before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
