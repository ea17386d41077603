package storage

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Bucket is the portable handle on one storage profile's bucket. It is safe for
// concurrent use. Every error it returns is an *Error carrying an ErrorCode.
type Bucket struct {
	p       Provider
	closed  atomic.Bool
	observe atomic.Pointer[Observer]
}

// Observer is told how long each storage operation took: op is "upload"
// (write and verification), "read" (opening a reader), "attributes",
// "delete", "list" or "check"; err is the operation's error, nil on success.
// It must return quickly; it runs on the caller's goroutine.
type Observer func(op string, d time.Duration, err error)

// SetObserver sets (nil: removes) the bucket's Observer. Safe at any time.
func (b *Bucket) SetObserver(o Observer) {
	if o == nil {
		b.observe.Store(nil)
		return
	}
	b.observe.Store(&o)
}

// observed reports an operation begun at start to the Observer, if any.
func (b *Bucket) observed(op string, start time.Time, err error) {
	if o := b.observe.Load(); o != nil {
		(*o)(op, time.Since(start), err)
	}
}

// NewBucket wraps a driver. The Bucket owns it: Bucket.Close closes it.
func NewBucket(p Provider) *Bucket { return &Bucket{p: p} }

// ErrClosed is returned (as an *Error with code InvalidArgument) by a closed Bucket.
var ErrClosed = errors.New("bucket is closed")

func (b *Bucket) check(op, key string) error {
	if b.closed.Load() {
		return &Error{Code: InvalidArgument, Op: op, Key: key, Err: ErrClosed}
	}
	if op != "list" && op != "check" {
		if err := ValidateKey(key); err != nil {
			return &Error{Code: InvalidArgument, Op: op, Key: key, Err: err}
		}
	}
	return nil
}

// ValidateKey checks that key is a usable object key: non-empty, at most 1024
// bytes of valid UTF-8, no control characters, no leading "/", and no "." or ".."
// segment (so that no driver can be led outside its bucket or directory).
func ValidateKey(key string) error {
	switch {
	case key == "":
		return errors.New("empty key")
	case len(key) > 1024:
		return fmt.Errorf("key is %d bytes, more than 1024", len(key))
	case !utf8.ValidString(key):
		return errors.New("key is not valid UTF-8")
	case strings.HasPrefix(key, "/"):
		return errors.New("key starts with /")
	case strings.ContainsRune(key, '\\'):
		return errors.New("key contains a backslash")
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return errors.New("key contains a control character")
		}
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("key has an empty, . or .. segment")
		}
	}
	return nil
}

// Writer writes one object and computes its SHA-256 and MD5 as it goes.
// Close commits the object; a write whose context is cancelled creates nothing.
type Writer struct {
	b      *Bucket
	key    string
	w      io.WriteCloser
	sha    hash.Hash
	md5    hash.Hash
	n      int64
	closed bool
}

// NewWriter starts writing the object at key; see Provider.NewWriter for what
// happens on cancellation. opts may be nil.
func (b *Bucket) NewWriter(ctx context.Context, key string, opts *WriterOptions) (*Writer, error) {
	if err := b.check("write", key); err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &WriterOptions{Size: -1}
	}
	w, err := b.p.NewWriter(ctx, key, opts)
	if err != nil {
		return nil, wrap(b.p, "write", key, err)
	}
	return &Writer{b: b, key: key, w: w, sha: sha256.New(), md5: md5.New()}, nil
}

// Write writes p to the object.
func (w *Writer) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.sha.Write(p[:n])
	w.md5.Write(p[:n])
	w.n += int64(n)
	return n, wrap(w.b.p, "write", w.key, err)
}

// Close commits the object. It is safe to call more than once.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	return wrap(w.b.p, "write", w.key, w.w.Close())
}

// Result returns what was written: valid after Close returned nil.
func (w *Writer) Result() UploadResult {
	return UploadResult{Key: w.key, Size: w.n, SHA256: w.sha.Sum(nil), MD5: w.md5.Sum(nil)}
}

// UploadResult is what an upload wrote and verified.
type UploadResult struct {
	Key    string
	Size   int64
	SHA256 []byte
	MD5    []byte
}

// Upload writes everything from r to key and then verifies the stored object:
// its size must equal the bytes written and, where the provider keeps an MD5, the
// MD5 must match. A mismatch is a DataLoss error. The returned result holds the
// SHA-256 of the content (kept in the manifest; providers do not compute it).
func (b *Bucket) Upload(ctx context.Context, key string, r io.Reader, opts *WriterOptions) (res UploadResult, err error) {
	start := time.Now()
	defer func() { b.observed("upload", start, err) }()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := b.NewWriter(ctx, key, opts)
	if err != nil {
		return UploadResult{}, err
	}
	if _, err := io.Copy(w, r); err != nil {
		cancel() // abandon: no partial object
		w.Close()
		return UploadResult{}, wrap(b.p, "write", key, err)
	}
	if err := w.Close(); err != nil {
		return UploadResult{}, err
	}
	res = w.Result()
	return res, b.verify(ctx, res)
}

// UploadFile uploads the file at path to key, verified as Upload does.
func (b *Bucket) UploadFile(ctx context.Context, key, path string, opts *WriterOptions) (UploadResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return UploadResult{}, &Error{Code: InvalidArgument, Op: "write", Key: key, Err: err}
	}
	defer f.Close()
	o := WriterOptions{Size: -1}
	if opts != nil {
		o = *opts
	}
	if fi, err := f.Stat(); err == nil && o.Size < 0 {
		o.Size = fi.Size()
	}
	return b.Upload(ctx, key, f, &o)
}

// verify checks the stored object against what was written.
func (b *Bucket) verify(ctx context.Context, res UploadResult) error {
	a, err := b.Attributes(ctx, res.Key)
	if err != nil {
		return err
	}
	if a.Size != res.Size {
		return &Error{Code: DataLoss, Op: "verify", Key: res.Key,
			Err: fmt.Errorf("stored size %d, wrote %d bytes", a.Size, res.Size)}
	}
	if a.MD5 != nil && !bytes.Equal(a.MD5, res.MD5) {
		return &Error{Code: DataLoss, Op: "verify", Key: res.Key,
			Err: fmt.Errorf("stored MD5 %x, wrote %x", a.MD5, res.MD5)}
	}
	return nil
}

// NewReader reads the whole object.
func (b *Bucket) NewReader(ctx context.Context, key string) (io.ReadCloser, error) {
	return b.NewRangeReader(ctx, key, 0, -1)
}

// NewRangeReader reads length bytes from offset (length < 0: to the end).
func (b *Bucket) NewRangeReader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := b.check("read", key); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, &Error{Code: InvalidArgument, Op: "read", Key: key, Err: fmt.Errorf("negative offset %d", offset)}
	}
	start := time.Now()
	r, err := b.p.NewRangeReader(ctx, key, offset, length)
	b.observed("read", start, err)
	if err != nil {
		return nil, wrap(b.p, "read", key, err)
	}
	return &reader{p: b.p, key: key, r: r}, nil
}

type reader struct {
	p   Provider
	key string
	r   io.ReadCloser
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err == io.EOF {
		return n, err
	}
	return n, wrap(r.p, "read", r.key, err)
}

func (r *reader) Close() error { return wrap(r.p, "read", r.key, r.r.Close()) }

// ReadAll reads the whole object into memory; for small objects.
func (b *Bucket) ReadAll(ctx context.Context, key string) ([]byte, error) {
	r, err := b.NewReader(ctx, key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// Attributes returns the object's attributes.
func (b *Bucket) Attributes(ctx context.Context, key string) (*Attributes, error) {
	if err := b.check("attributes", key); err != nil {
		return nil, err
	}
	start := time.Now()
	a, err := b.p.Attributes(ctx, key)
	b.observed("attributes", start, err)
	return a, wrap(b.p, "attributes", key, err)
}

// Delete removes the object; a missing object is a NotFound error.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	if err := b.check("delete", key); err != nil {
		return err
	}
	start := time.Now()
	err := b.p.Delete(ctx, key)
	b.observed("delete", start, err)
	return wrap(b.p, "delete", key, err)
}

// List returns every object whose key starts with prefix, in key order.
func (b *Bucket) List(ctx context.Context, prefix string) ([]*Attributes, error) {
	if err := b.check("list", prefix); err != nil {
		return nil, err
	}
	var all []*Attributes
	token := ""
	for {
		start := time.Now()
		page, next, err := b.p.ListPage(ctx, prefix, token, 1000)
		b.observed("list", start, err)
		if err != nil {
			return nil, wrap(b.p, "list", prefix, err)
		}
		all = append(all, page...)
		if next == "" {
			return all, nil
		}
		token = next
	}
}

// SignedURL returns a URL for opts.Method on key valid for opts.Expiry (defaults:
// GET, one hour). Drivers without native signed URLs give an Unimplemented error.
func (b *Bucket) SignedURL(ctx context.Context, key string, opts *SignedURLOptions) (string, error) {
	if err := b.check("signedurl", key); err != nil {
		return "", err
	}
	o := opts.withDefaults()
	if o.Method != http.MethodGet && o.Method != http.MethodPut {
		return "", &Error{Code: InvalidArgument, Op: "signedurl", Key: key, Err: fmt.Errorf("cannot sign method %q: GET or PUT only", o.Method)}
	}
	u, err := b.p.SignedURL(ctx, key, o)
	return u, wrap(b.p, "signedurl", key, err)
}

// CheckBucket reports whether the bucket exists and is reachable.
func (b *Bucket) CheckBucket(ctx context.Context) error {
	if err := b.check("check", ""); err != nil {
		return err
	}
	start := time.Now()
	err := b.p.CheckBucket(ctx)
	b.observed("check", start, err)
	return wrap(b.p, "check", "", err)
}

// Location describes where the bucket is; it never contains credentials.
func (b *Bucket) Location() string { return b.p.Location() }

// Close closes the driver. Later calls return an error; Close itself is idempotent.
func (b *Bucket) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	return b.p.Close()
}
