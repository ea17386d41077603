// Package pgtest starts a real PostgreSQL 15 server for tests, in a temporary
// directory, on a loopback port (ENVIRONMENT.md: initdb -A trust, pg_ctl -w
// start, as the unprivileged postgres user when the tests run as root).
//
// Outside CI a missing PostgreSQL skips the test; under CI=true it fails
// (package testenv).
package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/rtcrec/recorder/internal/testenv"
)

// BinDir is where Debian installs the PostgreSQL 15 server programs.
const BinDir = "/usr/lib/postgresql/15/bin"

// Server is one running PostgreSQL server, stopped when its test ends.
type Server struct {
	Dir  string // data directory and socket directory
	Port int
	user string // the OS user running the server: "" for the current one
	n    atomic.Int64
}

// Start initialises and starts a server for the test, or skips (fails under
// CI) when PostgreSQL is not installed. The server is stopped, and its
// directory removed, when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := os.Stat(filepath.Join(BinDir, "pg_ctl")); err != nil {
		testenv.Missing(t, "PostgreSQL 15 is not installed (Debian package postgresql; scripts/test-deps.sh installs it)")
	}
	s := &Server{}
	if os.Geteuid() == 0 {
		// initdb refuses to run as root: run the server as postgres.
		u, err := user.Lookup("postgres")
		if err != nil {
			testenv.Missing(t, "no postgres user to run PostgreSQL as (Debian package postgresql creates it)")
		}
		s.user = u.Username
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		dir, err := os.MkdirTemp("", "pgtest-")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			t.Fatal(err)
		}
		s.Dir = dir
	} else {
		dir, err := os.MkdirTemp("", "pgtest-")
		if err != nil {
			t.Fatal(err)
		}
		s.Dir = dir
	}
	t.Cleanup(func() { os.RemoveAll(s.Dir) })
	data := filepath.Join(s.Dir, "data")
	if out, err := s.run("initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"); err != nil {
		t.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	var lastOut []byte
	for attempt := 0; attempt < 5; attempt++ {
		s.Port = freePort(t)
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", s.Port, s.Dir)
		out, err := s.run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(s.Dir, "log"), "-w", "-t", "60", "start")
		if err == nil {
			t.Cleanup(func() {
				if out, err := s.run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"); err != nil {
					t.Logf("pgtest: pg_ctl stop: %v\n%s", err, out)
				}
			})
			return s
		}
		lastOut = out
		log, _ := os.ReadFile(filepath.Join(s.Dir, "log"))
		lastOut = append(lastOut, log...)
	}
	t.Fatalf("pgtest: pg_ctl start failed:\n%s", lastOut)
	return nil
}

func (s *Server) run(prog string, args ...string) ([]byte, error) {
	path := filepath.Join(BinDir, prog)
	var cmd *exec.Cmd
	if s.user != "" {
		cmd = exec.Command("runuser", append([]string{"-u", s.user, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = s.Dir
	return cmd.CombinedOutput()
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// DSN returns the connection string of database name on the server.
func (s *Server) DSN(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, name)
}

// NewDatabase creates an empty database with a fresh name and returns its DSN.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d", s.n.Add(1))
	db, err := sql.Open("pgx", s.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	return s.DSN(name)
}
