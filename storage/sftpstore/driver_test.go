package sftpstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"

	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/internal/verifytest"
	"github.com/rtcrec/recorder/storage/sftpstore/sftptest"
)

func TestNew_RefusesIncompleteOptions(t *testing.T) {
	keys := sftptest.NewKey(t)
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"NoHost", Options{User: "u", Password: "p", HostKey: keys.AuthorizedKey}, "host and user"},
		{"NoHostKey", Options{Host: "h", User: "u", Password: "p"}, "unknown host keys are refused"},
		{"BadHostKey", Options{Host: "h", User: "u", Password: "p", HostKey: "ssh-ed25519 nonsense"}, "authorized_keys"},
		{"MissingKnownHosts", Options{Host: "h", User: "u", Password: "p", KnownHostsFile: "/nonexistent"}, "knownHostsFile"},
		{"NoCredentials", Options{Host: "h", User: "u", HostKey: keys.AuthorizedKey}, "password or a private key"},
		{"BadPrivateKey", Options{Host: "h", User: "u", HostKey: keys.AuthorizedKey, PrivateKey: []byte("not a key")}, "private key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(t.Context(), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error about %q", err, tc.want)
			}
		})
	}
}

// openTest opens a bucket with o and closes it when the test ends.
func openTest(t *testing.T, o *Options) *storage.Bucket {
	t.Helper()
	b, err := OpenBucket(t.Context(), *o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestHostKey_MismatchRefused(t *testing.T) {
	srv := sftptest.Start(t)
	o := inProcOptions(srv, sftptest.User)
	o.HostKey = sftptest.NewKey(t).AuthorizedKey // some other server's key
	err := openTest(t, o).CheckBucket(t.Context())
	var hk *HostKeyError
	if !errors.As(err, &hk) || storage.Code(err) != storage.Unauthenticated {
		t.Fatalf("CheckBucket against a server with another host key: %v (code %v), want a HostKeyError, Unauthenticated", err, storage.Code(err))
	}
	if !strings.Contains(err.Error(), "SHA256:") {
		t.Errorf("error %q does not show the offered key's fingerprint", err)
	}
}

func TestKnownHostsFile(t *testing.T) {
	srv := sftptest.Start(t)
	line := func(host string) string {
		return host + " " + strings.TrimSpace(srv.HostKey.AuthorizedKey) + "\n"
	}
	tests := []struct {
		name, knownHosts string
		want             storage.ErrorCode // Unknown: no error
	}{
		{"Listed", line("[127.0.0.1]:" + strconv.Itoa(srv.Addr.Port)), storage.Unknown},
		{"OtherPort", line("[127.0.0.1]:1"), storage.Unauthenticated},
		{"OtherKey", "[127.0.0.1]:" + strconv.Itoa(srv.Addr.Port) + " " + sftptest.NewKey(t).AuthorizedKey, storage.Unauthenticated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "known_hosts")
			if err := os.WriteFile(f, []byte(tc.knownHosts), 0o600); err != nil {
				t.Fatal(err)
			}
			o := inProcOptions(srv, sftptest.User)
			o.HostKey, o.KnownHostsFile = "", f
			err := openTest(t, o).CheckBucket(t.Context())
			if (err == nil) != (tc.want == storage.Unknown) || (err != nil && storage.Code(err) != tc.want) {
				t.Fatalf("CheckBucket: %v, want code %v", err, tc.want)
			}
		})
	}
}

func TestPrivateKeyLogin(t *testing.T) {
	srv := sftptest.Start(t)
	o := inProcOptions(srv, sftptest.User)
	o.Password, o.PrivateKey = "", srv.ClientKey.PEM
	b := openTest(t, o)
	if _, err := b.Upload(t.Context(), "k", strings.NewReader("key login"), nil); err != nil {
		t.Fatalf("Upload with a private key: %v", err)
	}
}

func TestReconnectAfterDrop(t *testing.T) {
	srv := sftptest.Start(t)
	b := openTest(t, inProcOptions(srv, sftptest.User))
	ctx := t.Context()
	if _, err := b.Upload(ctx, "a/b", strings.NewReader("before"), nil); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		srv.DropConnections() // as a NAT timeout or server restart would
		got, err := b.ReadAll(ctx, "a/b")
		if err != nil || string(got) != "before" {
			t.Fatalf("read after dropped connection %d: %q, %v", i, got, err)
		}
	}
	if _, err := b.Upload(ctx, "a/c", strings.NewReader("after"), nil); err != nil {
		t.Fatalf("write after dropped connections: %v", err)
	}

	// A write whose connection drops half way fails as Unavailable and
	// commits nothing; the next one reconnects.
	w, err := b.NewWriter(ctx, "a/d", nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bytes.Repeat([]byte("x"), 1<<20))
	srv.DropConnections()
	w.Write(bytes.Repeat([]byte("y"), 1<<20))
	if err := w.Close(); storage.Code(err) != storage.Unavailable {
		t.Errorf("Close of a write whose connection dropped: %v, want Unavailable", err)
	}
	if _, err := b.Attributes(ctx, "a/d"); storage.Code(err) != storage.NotFound {
		t.Errorf("object of the interrupted write: %v, want NotFound", err)
	}
	if _, err := b.Upload(ctx, "a/d", strings.NewReader("again"), nil); err != nil {
		t.Fatalf("write after an interrupted write: %v", err)
	}
}

// filesUnder lists every file below dir, relative to it.
func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, rel)
		}
		return err
	})
	return files
}

func TestFailedWritesLeaveNoTemporaryFile(t *testing.T) {
	srv := sftptest.Start(t)
	b := openTest(t, inProcOptions(srv, sftptest.User))
	ctx := t.Context()
	data := bytes.Repeat([]byte("x"), 3<<20)

	// Cancelled half way.
	wctx, cancel := context.WithCancel(ctx)
	w, err := b.NewWriter(wctx, "dir/cancelled", nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data[:1<<20])
	cancel()
	if err := w.Close(); storage.Code(err) != storage.Canceled {
		t.Errorf("Close after cancel: %v, want Canceled", err)
	}

	// Content that does not match the MD5 the caller gave.
	wrong := md5.Sum([]byte("something else"))
	_, err = b.Upload(ctx, "dir/corrupt", bytes.NewReader(data), &storage.WriterOptions{Size: -1, ContentMD5: wrong[:]})
	if storage.Code(err) != storage.DataLoss {
		t.Errorf("Upload with a wrong ContentMD5: %v, want DataLoss", err)
	}
	right := md5.Sum(data)
	if _, err := b.Upload(ctx, "dir/good", bytes.NewReader(data), &storage.WriterOptions{Size: -1, ContentMD5: right[:]}); err != nil {
		t.Errorf("Upload with the right ContentMD5: %v", err)
	}
	if got := filesUnder(t, srv.Dir); len(got) != 1 || got[0] != filepath.Join("dir", "good") {
		t.Errorf("files on the server: %q, want only dir/good", got)
	}
}

func TestSignedURL_UsesSignURL(t *testing.T) {
	srv := sftptest.Start(t)
	o := inProcOptions(srv, sftptest.User)
	var gotKey string
	var gotOpts *storage.SignedURLOptions
	o.SignURL = func(_ context.Context, key string, opts *storage.SignedURLOptions) (string, error) {
		gotKey, gotOpts = key, opts
		return "https://recorder.example/attachment/" + key + "?Signature=x", nil
	}
	b := openTest(t, o)
	u, err := b.SignedURL(t.Context(), "tracks/a.ogg", &storage.SignedURLOptions{Method: "PUT", Expiry: time.Minute})
	if err != nil || u != "https://recorder.example/attachment/tracks/a.ogg?Signature=x" {
		t.Fatalf("SignedURL = %q, %v", u, err)
	}
	if gotKey != "tracks/a.ogg" || gotOpts.Method != "PUT" || gotOpts.Expiry != time.Minute {
		t.Errorf("SignURL got key %q, opts %+v", gotKey, gotOpts)
	}
}

func TestVerify(t *testing.T) {
	srv := sftptest.Start(t)
	stopped := sftptest.Start(t)
	stopped.Stop()
	open := func(s *sftptest.Server, user, password, dir string) *storage.Bucket {
		o := inProcOptions(s, user)
		o.Password, o.Dir = password, dir
		b, err := OpenBucket(t.Context(), *o)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	loc := "sftp://" + srv.Addr.String() + "/"
	const wrong = "wrong-password-value"
	verifytest.Run(t, []verifytest.Case{
		{Name: "Healthy", Bucket: open(srv, sftptest.User, sftptest.Password, srv.Dir), Secret: sftptest.Password,
			Want: verifytest.AllPass, Words: verifytest.HealthyWords},
		{Name: "WrongPassword", Bucket: open(srv, sftptest.User, wrong, srv.Dir), Secret: wrong,
			Words: verifytest.BucketFails("credentials rejected by " + loc + strings.TrimPrefix(srv.Dir, "/") + " while checking the bucket: check the user and its password or private key")},
		{Name: "MissingDirectory", Bucket: open(srv, sftptest.User, sftptest.Password, srv.Dir+"/missing"), Secret: sftptest.Password,
			Words: verifytest.BucketFails("bucket does not exist: " + loc)},
		{Name: "ReadOnly", Bucket: open(srv, sftptest.ReadOnlyUser, sftptest.Password, srv.Dir), Secret: sftptest.Password,
			Want: [5]bool{true}, Words: verifytest.WriteFails("access denied writing rec/app1/verify-")},
		{Name: "StoppedServer", Bucket: open(stopped, sftptest.User, sftptest.Password, stopped.Dir), Secret: sftptest.Password,
			Words: verifytest.BucketFails("cannot reach sftp://" + stopped.Addr.String() + "/")},
	})
}

// TestWithoutPosixRename runs writes against a server that does not offer
// posix-rename@openssh.com, so the driver falls back to SFTP v3 rename.
func TestWithoutPosixRename(t *testing.T) {
	if err := sftp.SetSFTPExtensions("hardlink@openssh.com", "statvfs@openssh.com"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sftp.SetSFTPExtensions("hardlink@openssh.com", "posix-rename@openssh.com", "statvfs@openssh.com")
	})
	srv := sftptest.Start(t)
	p, err := New(t.Context(), *inProcOptions(srv, sftptest.User))
	if err != nil {
		t.Fatal(err)
	}
	b := storage.NewBucket(p)
	defer b.Close()
	ctx := t.Context()
	for _, content := range []string{"first version", "second"} {
		if _, err := b.Upload(ctx, "v3/obj", strings.NewReader(content), nil); err != nil {
			t.Fatalf("Upload %q: %v", content, err)
		}
	}
	if got, err := b.ReadAll(ctx, "v3/obj"); err != nil || string(got) != "second" {
		t.Fatalf("after overwrite: %q, %v", got, err)
	}
	if c, _, _ := p.(*bucket).conn(ctx); c.posixRename {
		t.Error("the driver thinks the server has posix-rename")
	}
}

// TestSilentServer: a server that accepts connections but never speaks must
// fail within DialTimeout, as Unavailable, not hang.
func TestSilentServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, silent, until the test ends
		}
	}()
	o := &Options{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, User: "u", Password: "p",
		HostKey: sftptest.NewKey(t).AuthorizedKey, DialTimeout: 300 * time.Millisecond}
	start := time.Now()
	err = openTest(t, o).CheckBucket(t.Context())
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("CheckBucket took %v with a 300ms dial timeout", took)
	}
	if storage.Code(err) != storage.Unavailable {
		t.Errorf("CheckBucket against a silent server: %v, want Unavailable", err)
	}
}
