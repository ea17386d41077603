// Package sftpstore is the storage driver for SFTP servers (OpenSSH's
// internal-sftp, pkg/sftp and others), over github.com/pkg/sftp and
// golang.org/x/crypto/ssh.
//
// Object keys are paths below Options.Dir. A write goes to a temporary file in
// the key's directory (created with its parents as needed) and is renamed over
// the key only when Close succeeds, with the posix-rename@openssh.com extension
// where the server has it, so a reader never sees half an object; a cancelled
// or failed write removes its temporary file. Temporary files are named
// ".sftpstore-tmp-" and 16 hex digits; List never shows files so named.
//
// The server's host key must be pinned, by an authorized_keys-format line
// (Options.HostKey) or a known_hosts file (Options.KnownHostsFile): unknown and
// mismatched host keys are refused.
//
// SFTP keeps no checksums, content types or metadata: Attributes has the size
// and modification time only (MD5 is nil, so storage.Bucket verifies uploads by
// size), and WriterOptions.ContentType and Metadata are ignored.
// WriterOptions.ContentMD5 is honoured: a write whose content does not match it
// is not committed. SFTP has no signed URLs of its own: SignedURL uses
// Options.SignURL (the recorder's HMAC attachment URLs) or is Unimplemented.
//
// The driver connects on first use and reconnects when the SSH connection was
// lost; an operation that fails because an established connection dropped is
// tried once more on a new connection. A write in progress when the
// connection drops fails, and its temporary file may stay behind on the
// server (List never shows temporary files).
package sftpstore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/rtcrec/recorder/storage"
)

// Options configure an SFTP bucket.
type Options struct {
	Host string // host name or IP address
	Port int    // default 22
	User string

	// Password and/or a private key authenticate the user. PrivateKey is a PEM
	// block (OpenSSH, PKCS#1 or PKCS#8); PrivateKeyFile names a file holding
	// one. PrivateKeyPassphrase decrypts an encrypted key.
	Password             string
	PrivateKey           []byte
	PrivateKeyFile       string
	PrivateKeyPassphrase string

	// HostKey pins the server's host key with one authorized_keys-format line
	// ("ssh-ed25519 AAAA…"). KnownHostsFile names an OpenSSH known_hosts file
	// instead. One of them is required.
	HostKey        string
	KnownHostsFile string

	// Dir is the directory holding the objects: absolute, or relative to the
	// user's login directory. Empty means the login directory.
	Dir string

	// DialTimeout bounds the TCP connection and the SSH handshake; default 10s.
	DialTimeout time.Duration

	// SignURL, when set, makes signed URLs for objects (the recorder's HMAC
	// attachment URLs, served by storage.SignedURLHandler). When nil, SignedURL
	// returns an Unimplemented error.
	SignURL func(ctx context.Context, key string, opts *storage.SignedURLOptions) (string, error)
}

// tmpMarker starts every temporary file name (followed by 16 random hex
// digits, so that the name is short whatever the key); List skips such files.
const tmpMarker = ".sftpstore-tmp-"

// ErrUnimplemented is returned by SignedURL when Options.SignURL is nil.
var ErrUnimplemented = errors.New("sftpstore: SFTP has no signed URLs and no SignURL function is configured")

// ErrChecksum is returned by Close when the written content does not match
// WriterOptions.ContentMD5; nothing is committed.
var ErrChecksum = errors.New("sftpstore: content does not match the given MD5")

// HostKeyError reports that the server's host key is not the pinned one.
type HostKeyError struct {
	Addr string
	Err  error
}

// Error describes the failure; it never contains credentials.
func (e *HostKeyError) Error() string {
	return "sftpstore: host key of " + e.Addr + " refused: " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *HostKeyError) Unwrap() error { return e.Err }

// AuthError reports that the server rejected the user's credentials.
type AuthError struct {
	User string
	Err  error
}

// Error describes the failure; it never contains credentials.
func (e *AuthError) Error() string {
	return "sftpstore: authentication of user " + e.User + " failed: " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *AuthError) Unwrap() error { return e.Err }

// DialError reports that the server could not be reached.
type DialError struct {
	Addr string
	Err  error
}

// Error describes the failure; it never contains credentials.
func (e *DialError) Error() string { return "sftpstore: connect to " + e.Addr + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *DialError) Unwrap() error { return e.Err }

// connection is one SSH connection with its SFTP session.
type connection struct {
	ssh  *ssh.Client
	sftp *sftp.Client
	dead chan struct{} // closed when the SSH connection ends
	// posixRename is whether the server has posix-rename@openssh.com.
	posixRename bool
}

func (c *connection) alive() bool {
	select {
	case <-c.dead:
		return false
	default:
		return true
	}
}

func (c *connection) close() {
	c.sftp.Close()
	c.ssh.Close()
}

type bucket struct {
	opts   Options
	addr   string
	config *ssh.ClientConfig

	mu     sync.Mutex
	cur    *connection
	closed bool
}

// New returns the SFTP driver for opts. It checks the options and parses the
// keys but does not connect: the first operation does.
func New(ctx context.Context, opts Options) (storage.Provider, error) {
	if opts.Host == "" || opts.User == "" {
		return nil, errors.New("sftpstore: host and user are required")
	}
	o := opts
	if o.Port == 0 {
		o.Port = 22
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 10 * time.Second
	}
	addr := net.JoinHostPort(o.Host, strconv.Itoa(o.Port))
	hostKeys, err := hostKeyCallback(&o, addr)
	if err != nil {
		return nil, err
	}
	auth, err := authMethods(&o)
	if err != nil {
		return nil, err
	}
	return &bucket{
		opts: o,
		addr: addr,
		config: &ssh.ClientConfig{
			User:            o.User,
			Auth:            auth,
			HostKeyCallback: hostKeys,
			Timeout:         o.DialTimeout,
		},
	}, nil
}

// OpenBucket returns a *storage.Bucket over New(ctx, opts).
func OpenBucket(ctx context.Context, opts Options) (*storage.Bucket, error) {
	p, err := New(ctx, opts)
	if err != nil {
		return nil, err
	}
	return storage.NewBucket(p), nil
}

func hostKeyCallback(o *Options, addr string) (ssh.HostKeyCallback, error) {
	var cb ssh.HostKeyCallback
	switch {
	case o.HostKey != "":
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(o.HostKey))
		if err != nil {
			return nil, fmt.Errorf("sftpstore: hostKey is not an authorized_keys line: %w", err)
		}
		cb = ssh.FixedHostKey(k)
	case o.KnownHostsFile != "":
		kh, err := knownhosts.New(o.KnownHostsFile)
		if err != nil {
			return nil, fmt.Errorf("sftpstore: knownHostsFile: %w", err)
		}
		cb = kh
	default:
		return nil, errors.New("sftpstore: hostKey or knownHostsFile is required: unknown host keys are refused")
	}
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		if err := cb(hostname, remote, key); err != nil {
			return &HostKeyError{Addr: addr, Err: fmt.Errorf("%w (server offered %s %s)", err, key.Type(), ssh.FingerprintSHA256(key))}
		}
		return nil
	}, nil
}

func authMethods(o *Options) ([]ssh.AuthMethod, error) {
	var methods []ssh.AuthMethod
	pem := o.PrivateKey
	if len(pem) == 0 && o.PrivateKeyFile != "" {
		b, err := os.ReadFile(o.PrivateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("sftpstore: privateKeyFile: %w", err)
		}
		pem = b
	}
	if len(pem) > 0 {
		var signer ssh.Signer
		var err error
		if o.PrivateKeyPassphrase != "" {
			signer, err = ssh.ParsePrivateKeyWithPassphrase(pem, []byte(o.PrivateKeyPassphrase))
		} else {
			signer, err = ssh.ParsePrivateKey(pem)
		}
		if err != nil {
			return nil, fmt.Errorf("sftpstore: private key: %w", err)
		}
		methods = append(methods, ssh.PublicKeys(signer))
	}
	if o.Password != "" {
		pw := o.Password
		methods = append(methods, ssh.Password(pw),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = pw
				}
				return answers, nil
			}))
	}
	if len(methods) == 0 {
		return nil, errors.New("sftpstore: a password or a private key is required")
	}
	return methods, nil
}

// dial opens a new SSH connection and SFTP session, bounded by ctx and
// DialTimeout. Running out of DialTimeout is a DialError (Unavailable); the
// end of ctx itself is returned as ctx's error.
func (b *bucket) dial(parent context.Context) (*connection, error) {
	ctx, cancel := context.WithTimeout(parent, b.opts.DialTimeout)
	defer cancel()
	fail := func(err error) error {
		switch {
		case parent.Err() != nil:
			return parent.Err()
		case ctx.Err() != nil:
			return &DialError{Addr: b.addr, Err: fmt.Errorf("no SSH session within %v", b.opts.DialTimeout)}
		}
		return &DialError{Addr: b.addr, Err: err}
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", b.addr)
	if err != nil {
		return nil, fail(err)
	}
	// The handshake and the SFTP start obey ctx: closing the socket ends them.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(nc, b.addr, b.config)
	if err != nil {
		stop()
		nc.Close()
		var hk *HostKeyError
		switch {
		case errors.As(err, &hk):
			return nil, hk
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, &AuthError{User: b.opts.User, Err: err}
		}
		return nil, fail(err)
	}
	client := ssh.NewClient(sc, chans, reqs)
	sc2, err := sftp.NewClient(client,
		sftp.UseConcurrentWrites(true),
		sftp.UseConcurrentReads(true),
		sftp.MaxConcurrentRequestsPerFile(64))
	if !stop() {
		err = errors.New("timed out") // the socket was closed under the handshake
	}
	if err != nil {
		client.Close()
		return nil, fail(fmt.Errorf("start sftp subsystem: %w", err))
	}
	c := &connection{ssh: client, sftp: sc2, dead: make(chan struct{})}
	_, c.posixRename = sc2.HasExtension("posix-rename@openssh.com")
	go func() {
		client.Wait()
		close(c.dead)
	}()
	return c, nil
}

// conn returns the live connection, dialling a new one if there is none.
// fresh reports whether it was dialled by this call.
func (b *bucket) conn(ctx context.Context) (c *connection, fresh bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, false, errors.New("sftpstore: driver is closed")
	}
	if b.cur != nil && b.cur.alive() {
		return b.cur, false, nil
	}
	if b.cur != nil {
		b.cur.close()
		b.cur = nil
	}
	c, err = b.dial(ctx)
	if err != nil {
		return nil, false, err
	}
	b.cur = c
	return c, true, nil
}

// do runs op on a live connection. If op fails because a connection that was
// already open had dropped, op runs once more on a new connection.
func (b *bucket) do(ctx context.Context, op func(c *connection) error) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, fresh, err := b.conn(ctx)
		if err != nil {
			return err
		}
		err = op(c)
		if err == nil || fresh || attempt > 0 || !connectionLost(c, err) {
			return err
		}
		b.drop(c)
	}
}

// drop closes c and forgets it if it is the current connection, so that the
// next operation dials again.
func (b *bucket) drop(c *connection) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur == c {
		b.cur = nil
	}
	c.close()
}

// connectionLost reports whether err came from c's connection ending rather
// than from the server's answer.
func connectionLost(c *connection, err error) bool {
	var se *sftp.StatusError
	switch {
	case errors.As(err, &se), errors.Is(err, os.ErrNotExist), errors.Is(err, os.ErrPermission):
		return false
	case errors.Is(err, sftp.ErrSSHFxConnectionLost), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed), errors.Is(err, io.EOF):
		return true
	}
	return !c.alive()
}

func (b *bucket) path(key string) string {
	if b.opts.Dir == "" {
		return key
	}
	return path.Join(b.opts.Dir, key)
}

// NewWriter implements storage.Provider.
func (b *bucket) NewWriter(ctx context.Context, key string, opts *storage.WriterOptions) (io.WriteCloser, error) {
	final := b.path(key)
	dir, _ := path.Split(final)
	tmp := dir + tmpMarker + randomHex()
	var (
		c *connection
		f *sftp.File
	)
	err := b.do(ctx, func(cc *connection) error {
		if dir != "" {
			if err := cc.sftp.MkdirAll(strings.TrimSuffix(dir, "/")); err != nil {
				return err
			}
		}
		ff, err := cc.sftp.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
		if err != nil {
			return err
		}
		c, f = cc, ff
		return nil
	})
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	w := &writer{ctx: ctx, c: c, f: f, pw: pw, tmp: tmp, final: final, done: make(chan struct{})}
	if opts != nil && len(opts.ContentMD5) > 0 {
		w.wantMD5 = opts.ContentMD5
		w.md5 = md5.New()
	}
	// ReadFrom sends the content as concurrent writes, far faster than one
	// round trip per Write call.
	go func() {
		_, err := f.ReadFromWithConcurrency(pr, 0)
		pr.CloseWithError(err) // unblocks Write if ReadFrom stopped early
		w.err = err
		close(w.done)
	}()
	w.stop = context.AfterFunc(ctx, func() { pw.CloseWithError(ctx.Err()) })
	return w, nil
}

func randomHex() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type writer struct {
	ctx        context.Context
	c          *connection
	f          *sftp.File
	pw         *io.PipeWriter
	tmp, final string
	stop       func() bool
	done       chan struct{}
	err        error // ReadFrom's result; valid after done is closed
	md5        hash.Hash
	wantMD5    []byte
	closed     bool
}

func (w *writer) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := w.pw.Write(p)
	if w.md5 != nil {
		w.md5.Write(p[:n])
	}
	return n, err
}

// Close commits the object by renaming the temporary file over the key, or
// removes the temporary file if the write failed or ctx was cancelled.
func (w *writer) Close() error {
	if w.closed {
		return errors.New("sftpstore: writer already closed")
	}
	w.closed = true
	w.stop()
	w.pw.Close()
	<-w.done
	err := w.err
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = w.ctx.Err()
	}
	if err == nil && w.md5 != nil && !bytes.Equal(w.md5.Sum(nil), w.wantMD5) {
		err = ErrChecksum
	}
	if err == nil {
		err = w.rename()
	}
	if err != nil {
		w.c.sftp.Remove(w.tmp) // best effort: the connection may be gone
	}
	return err
}

func (w *writer) rename() error {
	s := w.c.sftp
	if w.c.posixRename {
		return s.PosixRename(w.tmp, w.final)
	}
	// SFTP v3 rename refuses to replace a file: remove the old one first. A
	// reader may then briefly find no object, but never half of one.
	err := s.Rename(w.tmp, w.final)
	if err != nil {
		if _, serr := s.Stat(w.final); serr == nil {
			if rerr := s.Remove(w.final); rerr != nil {
				return rerr
			}
			err = s.Rename(w.tmp, w.final)
		}
	}
	return err
}

// NewRangeReader implements storage.Provider.
func (b *bucket) NewRangeReader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	var f *sftp.File
	var size int64
	err := b.do(ctx, func(c *connection) error {
		ff, err := c.sftp.Open(b.path(key))
		if err != nil {
			return err
		}
		fi, err := ff.Stat()
		if err == nil && fi.IsDir() {
			err = os.ErrNotExist
		}
		if err != nil {
			ff.Close()
			return err
		}
		f, size = ff, fi.Size()
		return nil
	})
	if err != nil {
		return nil, err
	}
	if offset > size {
		f.Close()
		return nil, fmt.Errorf("%w: offset %d is beyond the object's %d bytes", errInvalidRange, offset, size)
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
	}
	if length < 0 || offset+length > size {
		length = size - offset
	}
	// A large buffer lets each Read ask for many packets at once.
	buf := int(min(length, 1<<20))
	return &reader{ctx: ctx, f: f, r: bufio.NewReaderSize(io.LimitReader(f, length), max(buf, 16))}, nil
}

var errInvalidRange = errors.New("sftpstore: invalid range")

type reader struct {
	ctx context.Context
	f   *sftp.File
	r   *bufio.Reader
}

func (r *reader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

func (r *reader) Close() error { return r.f.Close() }

// Attributes implements storage.Provider.
func (b *bucket) Attributes(ctx context.Context, key string) (*storage.Attributes, error) {
	var fi os.FileInfo
	err := b.do(ctx, func(c *connection) error {
		var err error
		fi, err = c.sftp.Stat(b.path(key))
		return err
	})
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", os.ErrNotExist, key)
	}
	return &storage.Attributes{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Delete implements storage.Provider. Emptied directories are left in place.
func (b *bucket) Delete(ctx context.Context, key string) error {
	return b.do(ctx, func(c *connection) error {
		p := b.path(key)
		fi, err := c.sftp.Stat(p)
		if err != nil {
			return err
		}
		if fi.IsDir() {
			return fmt.Errorf("%w: %s is a directory", os.ErrNotExist, key)
		}
		return c.sftp.Remove(p)
	})
}

// ListPage implements storage.Provider. It walks the deepest directory that the
// prefix names, so its cost grows with the number of files below it; the page
// token is the last key of the previous page.
func (b *bucket) ListPage(ctx context.Context, prefix, pageToken string, pageSize int) ([]*storage.Attributes, string, error) {
	if pageSize <= 0 {
		pageSize = 1000
	}
	base := b.path("")
	if base == "" {
		base = "."
	}
	// The walk starts in the directory part of the prefix ("a/b/c" → "a/b").
	sub := ""
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		sub = prefix[:i]
	}
	var all []*storage.Attributes
	err := b.do(ctx, func(c *connection) error {
		all = all[:0]
		root := base
		if sub != "" {
			root = path.Join(base, sub)
		}
		walker := c.sftp.Walk(root)
		for walker.Step() {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := walker.Err(); err != nil {
				if walker.Path() == root && errors.Is(err, os.ErrNotExist) {
					return nil // nothing under this prefix
				}
				return err
			}
			fi := walker.Stat()
			if !fi.Mode().IsRegular() || strings.HasPrefix(fi.Name(), tmpMarker) {
				continue
			}
			rel := strings.TrimPrefix(walker.Path(), base)
			rel = strings.TrimPrefix(rel, "/")
			if base == "." {
				rel = strings.TrimPrefix(walker.Path(), "./")
			}
			if !strings.HasPrefix(rel, prefix) || rel <= pageToken {
				continue
			}
			all = append(all, &storage.Attributes{Key: rel, Size: fi.Size(), ModTime: fi.ModTime()})
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Key < all[j].Key })
	if len(all) > pageSize {
		all = all[:pageSize]
		return all, all[pageSize-1].Key, nil
	}
	return all, "", nil
}

// SignedURL implements storage.Provider with Options.SignURL.
func (b *bucket) SignedURL(ctx context.Context, key string, opts *storage.SignedURLOptions) (string, error) {
	if b.opts.SignURL == nil {
		return "", ErrUnimplemented
	}
	return b.opts.SignURL(ctx, key, opts)
}

// CheckBucket implements storage.Provider: it connects and checks that Dir is
// a directory.
func (b *bucket) CheckBucket(ctx context.Context) error {
	return b.do(ctx, func(c *connection) error {
		dir := b.path("")
		if dir == "" {
			dir = "."
		}
		fi, err := c.sftp.Stat(dir)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%w: %s is not a directory", os.ErrNotExist, dir)
		}
		return nil
	})
}

// ErrorCode implements storage.Provider.
func (b *bucket) ErrorCode(err error) storage.ErrorCode {
	var (
		hk *HostKeyError
		ae *AuthError
		de *DialError
		se *sftp.StatusError
	)
	switch {
	case errors.Is(err, context.Canceled):
		return storage.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return storage.DeadlineExceeded
	case errors.As(err, &hk), errors.As(err, &ae):
		return storage.Unauthenticated
	case errors.As(err, &de):
		return storage.Unavailable
	case errors.Is(err, ErrUnimplemented):
		return storage.Unimplemented
	case errors.Is(err, ErrChecksum):
		return storage.DataLoss
	case errors.Is(err, errInvalidRange):
		return storage.InvalidArgument
	case errors.Is(err, os.ErrNotExist):
		return storage.NotFound
	case errors.Is(err, os.ErrPermission):
		return storage.PermissionDenied
	case errors.Is(err, sftp.ErrSSHFxConnectionLost), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed), errors.Is(err, io.EOF):
		// io.EOF outside a read (Bucket passes a read's io.EOF through
		// unclassified) is a session the server closed.
		return storage.Unavailable
	case errors.As(err, &se):
		switch se.FxCode() {
		case sftp.ErrSSHFxNoSuchFile:
			return storage.NotFound
		case sftp.ErrSSHFxPermissionDenied:
			return storage.PermissionDenied
		case sftp.ErrSSHFxOpUnsupported:
			return storage.Unimplemented
		}
	}
	return storage.Unknown
}

// PermissionHint implements storage.PermissionHinter in file-system terms.
func (b *bucket) PermissionHint(op string) string {
	switch op {
	case "write", "delete":
		return "directory write" // files are created, renamed and removed in the key's directory
	case "read", "attributes":
		return "file read"
	case "list", "check":
		return "directory read and execute"
	case storage.HintCredentials:
		return "user and its password or private key (the server's authorized keys for that user)"
	}
	return ""
}

// Location implements storage.Provider: "sftp://host:port/dir".
func (b *bucket) Location() string {
	return "sftp://" + b.addr + "/" + strings.TrimPrefix(b.opts.Dir, "/")
}

// Close implements storage.Provider.
func (b *bucket) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.cur != nil {
		b.cur.close()
		b.cur = nil
	}
	return nil
}

var (
	_ storage.Provider         = (*bucket)(nil)
	_ storage.PermissionHinter = (*bucket)(nil)
)

// Interface guards.
var (
	_ storage.Provider         = (*bucket)(nil)
	_ storage.PermissionHinter = (*bucket)(nil)
)
