package sftpstore

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

// testKeys are the keys one test server and its clients use, made per test.
type testKeys struct {
	hostPriv   ed25519.PrivateKey
	host       ssh.Signer
	hostLine   string // the host key as an authorized_keys line
	client     ssh.Signer
	clientPEM  []byte // the client's private key, OpenSSH PEM
	clientLine string
}

func newTestKeys(t testing.TB) *testKeys {
	t.Helper()
	k := &testKeys{}
	var err error
	k.host, k.hostPriv, err = newSigner()
	if err != nil {
		t.Fatal(err)
	}
	k.hostLine = string(ssh.MarshalAuthorizedKey(k.host.PublicKey()))
	var clientPriv ed25519.PrivateKey
	k.client, clientPriv, err = newSigner()
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(clientPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	k.clientPEM = pem.EncodeToMemory(block)
	k.clientLine = string(ssh.MarshalAuthorizedKey(k.client.PublicKey()))
	return k
}

// newSigner makes an Ed25519 key.
func newSigner() (ssh.Signer, ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	s, err := ssh.NewSignerFromKey(priv)
	return s, priv, err
}

const (
	testUser     = "rec"
	testReader   = "reader" // served read-only
	testPassword = "correct horse"
)

// inProcServer is a pkg/sftp server behind an x/crypto/ssh server on
// 127.0.0.1, serving Dir. It accepts testUser and testReader with testPassword
// or the client key.
type inProcServer struct {
	Dir  string
	Addr *net.TCPAddr
	Keys *testKeys

	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func startInProcServer(t testing.TB) *inProcServer {
	t.Helper()
	s := &inProcServer{Dir: t.TempDir(), Keys: newTestKeys(t), conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln, s.Addr = ln, ln.Addr().(*net.TCPAddr)
	cfg := &ssh.ServerConfig{
		PasswordCallback: func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if (c.User() == testUser || c.User() == testReader) && string(pw) == testPassword {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		},
		PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if (c.User() == testUser || c.User() == testReader) &&
				string(k.Marshal()) == string(s.Keys.client.PublicKey().Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	cfg.AddHostKey(s.Keys.host)
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

func (s *inProcServer) serve(nc net.Conn, cfg *ssh.ServerConfig) {
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
				if sc.User() == testReader {
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
func (s *inProcServer) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// Stop closes the listener and every connection and waits for the server's goroutines.
func (s *inProcServer) Stop() {
	s.ln.Close()
	s.DropConnections()
	s.wg.Wait()
}

// Options returns driver options for user with the password, pinning the host key.
func (s *inProcServer) Options(user string) *Options {
	return &Options{
		Host: "127.0.0.1", Port: s.Addr.Port, User: user, Password: testPassword,
		HostKey: s.Keys.hostLine, DialTimeout: 5 * time.Second,
	}
}

// sshdServer is Debian's OpenSSH server on two loopback ports, started by the
// test with its own configuration, keys and a fresh directory for the objects.
// On ReadOnlyPort it serves SFTP read-only (internal-sftp -R).
type sshdServer struct {
	Dir          string
	Port         int
	ReadOnlyPort int
	User         string
	Keys         *testKeys
}

func startSSHD(t testing.TB) *sshdServer {
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
	// sshd insists on its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	conf := t.TempDir()
	s := &sshdServer{Dir: t.TempDir(), User: u.Username, Keys: newTestKeys(t)}
	hostKeyPEM, err := ssh.MarshalPrivateKey(s.Keys.hostPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(conf, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hostKey := write("host_ed25519", pem.EncodeToMemory(hostKeyPEM))
	authKeys := write("authorized_keys", []byte(s.Keys.clientLine))
	s.Port, s.ReadOnlyPort = freePort(t), freePort(t)
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
		if c, err := net.DialTimeout("tcp", s.addr(), time.Second); err == nil {
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

func (s *sshdServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

// Options returns driver options that log in with the client key, pinning the host key.
func (s *sshdServer) Options() *Options {
	return &Options{
		Host: "127.0.0.1", Port: s.Port, User: s.User, PrivateKey: s.Keys.clientPEM,
		HostKey: s.Keys.hostLine, Dir: s.Dir, DialTimeout: 5 * time.Second,
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
