// Package memstore is an in-memory storage.Provider for tests.
//
// Objects live in a map guarded by a mutex. A write is buffered and committed
// all at once by Close; a write whose context is cancelled before Close commits
// nothing. It keeps content type, metadata and the MD5 of every object. Signed
// URLs are Unimplemented unless Options.SignURL is set.
package memstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rtcrec/recorder/storage"
)

// Options configure a Provider. The zero value is ready to use.
type Options struct {
	// Name only appears in Location.
	Name string
	// SignURL, when set, makes signed URLs (for example the recorder's own
	// attachment URLs served by storage.SignedURLHandler). When nil, SignedURL
	// returns an Unimplemented error.
	SignURL func(ctx context.Context, key string, opts *storage.SignedURLOptions) (string, error)
}

// Provider is an in-memory bucket. Use New to make one.
type Provider struct {
	opts Options
	name string

	mu      sync.Mutex
	objects map[string]*object
	closed  bool
}

type object struct {
	data        []byte
	modTime     time.Time
	contentType string
	metadata    map[string]string
	md5         []byte
}

// New returns an empty in-memory bucket.
func New(opts Options) *Provider {
	return &Provider{opts: opts, name: opts.Name, objects: make(map[string]*object)}
}

// OpenBucket returns a *storage.Bucket over a new empty in-memory bucket. It
// never fails; the signature is every driver's.
func OpenBucket(ctx context.Context, opts Options) (*storage.Bucket, error) {
	return storage.NewBucket(New(opts)), nil
}

func notFound(key string) error {
	return fmt.Errorf("memstore: object %q: %w", key, storage.NotFound)
}

func (p *Provider) get(key string) (*object, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errClosed
	}
	o, ok := p.objects[key]
	if !ok {
		return nil, notFound(key)
	}
	return o, nil
}

var errClosed = fmt.Errorf("memstore: closed: %w", storage.InvalidArgument)

// NewWriter implements storage.Provider.
func (p *Provider) NewWriter(ctx context.Context, key string, opts *storage.WriterOptions) (io.WriteCloser, error) {
	if err := storage.ValidateKey(key); err != nil {
		return nil, fmt.Errorf("memstore: %w: %w", storage.InvalidArgument, err)
	}
	w := &writer{ctx: ctx, p: p, key: key}
	if opts != nil {
		w.contentType = opts.ContentType
		w.metadata = maps.Clone(opts.Metadata)
		w.wantMD5 = opts.ContentMD5
	}
	return w, nil
}

type writer struct {
	ctx         context.Context
	p           *Provider
	key         string
	buf         bytes.Buffer
	contentType string
	metadata    map[string]string
	wantMD5     []byte
	done        bool
}

func (w *writer) Write(b []byte) (int, error) {
	if w.done {
		return 0, errors.New("memstore: write after close")
	}
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	return w.buf.Write(b)
}

func (w *writer) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	if err := w.ctx.Err(); err != nil {
		return err
	}
	sum := md5.Sum(w.buf.Bytes())
	if w.wantMD5 != nil && !bytes.Equal(sum[:], w.wantMD5) {
		return fmt.Errorf("memstore: content MD5 %x, header says %x: %w", sum, w.wantMD5, storage.DataLoss)
	}
	o := &object{
		data:        bytes.Clone(w.buf.Bytes()),
		modTime:     time.Now(),
		contentType: w.contentType,
		metadata:    w.metadata,
		md5:         sum[:],
	}
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	if w.p.closed {
		return errClosed
	}
	w.p.objects[w.key] = o
	return nil
}

// NewRangeReader implements storage.Provider.
func (p *Provider) NewRangeReader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	o, err := p.get(key)
	if err != nil {
		return nil, err
	}
	size := int64(len(o.data))
	if offset > size {
		return nil, fmt.Errorf("memstore: offset %d beyond size %d: %w", offset, size, storage.InvalidArgument)
	}
	end := size
	if length >= 0 && offset+length < size {
		end = offset + length
	}
	return io.NopCloser(bytes.NewReader(o.data[offset:end])), nil
}

func (o *object) attributes(key string) *storage.Attributes {
	return &storage.Attributes{
		Key:         key,
		Size:        int64(len(o.data)),
		ModTime:     o.modTime,
		ContentType: o.contentType,
		Metadata:    maps.Clone(o.metadata),
		MD5:         bytes.Clone(o.md5),
		ETag:        `"` + hex.EncodeToString(o.md5) + `"`,
	}
}

// Attributes implements storage.Provider.
func (p *Provider) Attributes(ctx context.Context, key string) (*storage.Attributes, error) {
	o, err := p.get(key)
	if err != nil {
		return nil, err
	}
	return o.attributes(key), nil
}

// Delete implements storage.Provider.
func (p *Provider) Delete(ctx context.Context, key string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errClosed
	}
	if _, ok := p.objects[key]; !ok {
		return notFound(key)
	}
	delete(p.objects, key)
	return nil
}

// ListPage implements storage.Provider; the page token is the last key of the previous page.
func (p *Provider) ListPage(ctx context.Context, prefix, pageToken string, pageSize int) ([]*storage.Attributes, string, error) {
	if pageSize <= 0 {
		pageSize = 1000
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, "", errClosed
	}
	var keys []string
	for k := range p.objects {
		if strings.HasPrefix(k, prefix) && k > pageToken {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	next := ""
	if len(keys) > pageSize {
		keys = keys[:pageSize]
		next = keys[pageSize-1]
	}
	out := make([]*storage.Attributes, len(keys))
	for i, k := range keys {
		out[i] = p.objects[k].attributes(k)
	}
	return out, next, nil
}

// SignedURL implements storage.Provider with Options.SignURL.
func (p *Provider) SignedURL(ctx context.Context, key string, opts *storage.SignedURLOptions) (string, error) {
	if p.opts.SignURL == nil {
		return "", fmt.Errorf("memstore: no URL signer configured: %w", storage.Unimplemented)
	}
	return p.opts.SignURL(ctx, key, opts)
}

// CheckBucket implements storage.Provider.
func (p *Provider) CheckBucket(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errClosed
	}
	return nil
}

// ErrorCode implements storage.Provider.
func (p *Provider) ErrorCode(err error) storage.ErrorCode { return storage.Code(err) }

// Location implements storage.Provider.
func (p *Provider) Location() string { return "mem://" + p.name }

// Close implements storage.Provider; the objects are dropped.
func (p *Provider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.objects = nil
	return nil
}

var _ storage.Provider = (*Provider)(nil)
