// Package sftptest starts SFTP servers for tests, on 127.0.0.1: pkg/sftp in
// process behind an x/crypto/ssh server, and Debian's OpenSSH sshd as a child
// process. Every key is generated per server; nothing secret is committed.
// Servers stop when the test ends.
package sftptest

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/rtcrec/recorder/internal/testenv"
)

// Key is an Ed25519 key pair made for a test.
type Key struct {
	Signer        ssh.Signer
	Private       ed25519.PrivateKey
	PEM           []byte // the private key, OpenSSH PEM (what a privateKeyFile holds)
	AuthorizedKey string // the public key as an authorized_keys line
}

// NewKey makes a fresh key.
func NewKey(t testing.TB) *Key {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return &Key{Signer: s, Private: priv, PEM: pem.EncodeToMemory(block),
		AuthorizedKey: string(ssh.MarshalAuthorizedKey(s.PublicKey()))}
}

// The users of the in-process server.
const (
	User         = "rec"
	ReadOnlyUser = "reader" // served read-only
	Password     = "correct horse"
)

// Server is a pkg/sftp server behind an x/crypto/ssh server on 127.0.0.1,
// serving Dir. It accepts User and ReadOnlyUser with Password or ClientKey.
type Server struct {
	Dir       string
	Addr      *net.TCPAddr
	HostKey   *Key
	ClientKey *Key

	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// Start starts an in-process server on a fresh directory.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{Dir: t.TempDir(), HostKey: NewKey(t), ClientKey: NewKey(t), conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln, s.Addr = ln, ln.Addr().(*net.TCPAddr)
	known := func(u string) bool { return u == User || u == ReadOnlyUser }
	cfg := &ssh.ServerConfig{
		PasswordCallback: func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if known(c.User()) && string(pw) == Password {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		},
		PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if known(c.User()) && string(k.Marshal()) == string(s.ClientKey.Signer.PublicKey().Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	cfg.AddHostKey(s.HostKey.Signer)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[nc] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(nc, cfg)
				s.mu.Lock()
				delete(s.conns, nc)
				s.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) serve(nc net.Conn, cfg *ssh.ServerConfig) {
	defer nc.Close()
	sc, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	for nch := range chans {
		if nch.ChannelType() != "session" {
			nch.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			return
		}
		go func() {
			defer ch.Close()
			for req := range creqs {
				// The payload of a subsystem request is an SSH string: uint32 length, name.
				ok := req.Type == "subsystem" && len(req.Payload) > 4 && string(req.Payload[4:]) == "sftp"
				req.Reply(ok, nil)
				if !ok {
					continue
				}
				opts := []sftp.ServerOption{sftp.WithServerWorkingDirectory(s.Dir)}
				if sc.User() == ReadOnlyUser {
					opts = append(opts, sftp.ReadOnly())
				}
				srv, err := sftp.NewServer(ch, opts...)
				if err != nil {
					return
				}
				srv.Serve()
				srv.Close()
				return
			}
		}()
	}
}

// DropConnections cuts every open connection, as a network failure would.
func (s *Server) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// Stop closes the listener and every connection and waits for the server's
// goroutines. It is safe to call more than once.
func (s *Server) Stop() {
	s.ln.Close()
	s.DropConnections()
	s.wg.Wait()
}

// OpenSSH is Debian's OpenSSH server on two loopback ports, started by the
// test with its own configuration, keys and a fresh directory for the
// objects. It accepts User (the user running the test) with ClientKey. On
// ReadOnlyPort it serves SFTP read-only (internal-sftp -R).
type OpenSSH struct {
	Dir          string
	Port         int
	ReadOnlyPort int
	User         string
	HostKey      *Key
	ClientKey    *Key
}

// StartOpenSSH starts sshd, or skips (fails under CI) when it is not installed
// or the test does not run as root (sshd needs its privilege separation).
func StartOpenSSH(t testing.TB) *OpenSSH {
	t.Helper()
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		sshd = "/usr/sbin/sshd"
		if _, err := os.Stat(sshd); err != nil {
			testenv.Missing(t, "sshd is not installed (Debian openssh-server; scripts/test-deps.sh installs it)")
		}
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if u.Uid != "0" {
		testenv.Missing(t, "the OpenSSH run needs root: sshd needs its privilege separation directory and user")
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	conf := t.TempDir()
	s := &OpenSSH{Dir: t.TempDir(), User: u.Username, HostKey: NewKey(t), ClientKey: NewKey(t)}
	write := func(name string, data []byte) string {
		p := filepath.Join(conf, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hostKey := write("host_ed25519", s.HostKey.PEM)
	authKeys := write("authorized_keys", []byte(s.ClientKey.AuthorizedKey))
	s.Port, s.ReadOnlyPort = FreePort(t), FreePort(t)
	cfg := write("sshd_config", fmt.Appendf(nil, `Port %d
Port %d
ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PidFile %s
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
LogLevel ERROR
Match LocalPort %d
	ForceCommand internal-sftp -R
`, s.Port, s.ReadOnlyPort, hostKey, authKeys, filepath.Join(conf, "sshd.pid"), s.ReadOnlyPort))
	cmd := exec.Command(sshd, "-D", "-e", "-f", cfg)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		testenv.Missing(t, "cannot start sshd: "+err.Error())
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	// Ready when it greets with its SSH banner.
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("sshd exited: %s", stderr.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.Port), time.Second); err == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "SSH-") {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd not ready after 10s: %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FreePort returns a loopback TCP port that nothing listened on a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
