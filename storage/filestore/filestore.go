// Package filestore is a storage.Provider over a local directory.
//
// An object key maps to the file root/key (a key is validated with
// storage.ValidateKey, and a cleaned path must stay under root). A write goes to
// a temporary file in the object's directory, which is fsynced and renamed over
// the object on Close, so a reader never sees half a file and a cancelled write
// leaves nothing behind. Content type, metadata and the MD5 of the content are
// kept in a JSON sidecar next to the object (".<name>.rec-attrs"), written the
// same way after the object; the MD5 is reported only while the sidecar's
// recorded size matches the file. Names with the reserved ".rec-attrs" suffix
// or ".rec-tmp-" prefix are not valid keys here.
//
// Signed URLs come from Options.SignURL (the recorder's own attachment URLs,
// see storage.URLSigner); without it SignedURL is Unimplemented.
package filestore

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/rtcrec/recorder/storage"
)

const (
	attrsSuffix = ".rec-attrs"
	tmpPrefix   = ".rec-tmp-"
)

// Options configure a Provider. The zero value is ready to use.
type Options struct {
	// Dir is the root directory of the objects (required).
	Dir string
	// SignURL, when set, makes signed URLs for objects; nil means SignedURL
	// returns an Unimplemented error.
	SignURL func(ctx context.Context, key string, opts *storage.SignedURLOptions) (string, error)
	// CreateDir creates the root directory (and its parents) if missing.
	CreateDir bool
	// NoSync skips fsync before rename (faster; a crash may lose recent objects).
	NoSync bool
}

// Provider stores objects as files under one directory. Use New to make one.
type Provider struct {
	root string
	opts Options
}

// New returns a provider storing objects under opts.Dir. The directory must
// exist unless opts.CreateDir is set; CheckBucket reports a missing one as
// NotFound.
func New(ctx context.Context, opts Options) (*Provider, error) {
	if opts.Dir == "" {
		return nil, errors.New("filestore: dir is required")
	}
	abs, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	p := &Provider{root: abs, opts: opts}
	if p.opts.CreateDir {
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return nil, fmt.Errorf("filestore: %w", err)
		}
	}
	return p, nil
}

// OpenBucket returns a *storage.Bucket over New(ctx, opts).
func OpenBucket(ctx context.Context, opts Options) (*storage.Bucket, error) {
	p, err := New(ctx, opts)
	if err != nil {
		return nil, err
	}
	return storage.NewBucket(p), nil
}

// Dir returns the absolute root directory.
func (p *Provider) Dir() string { return p.root }

// path maps a key to its file, refusing keys that could leave the root or
// collide with the driver's own files.
func (p *Provider) path(key string) (string, error) {
	if err := storage.ValidateKey(key); err != nil {
		return "", fmt.Errorf("filestore: %w: %w", storage.InvalidArgument, err)
	}
	for _, seg := range strings.Split(key, "/") {
		if strings.HasSuffix(seg, attrsSuffix) || strings.HasPrefix(seg, tmpPrefix) {
			return "", fmt.Errorf("filestore: key segment %q uses a reserved name: %w", seg, storage.InvalidArgument)
		}
	}
	path := filepath.Join(p.root, filepath.FromSlash(key))
	if !strings.HasPrefix(path, p.root+string(filepath.Separator)) {
		return "", fmt.Errorf("filestore: key %q leaves the root: %w", key, storage.InvalidArgument)
	}
	return path, nil
}

func attrsPath(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+attrsSuffix)
}

// sidecar is what the attributes file holds.
type sidecar struct {
	ContentType string            `json:"contentType,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	Size        int64             `json:"size"`
	MD5         []byte            `json:"md5"`
}

// NewWriter implements storage.Provider.
func (p *Provider) NewWriter(ctx context.Context, key string, opts *storage.WriterOptions) (io.WriteCloser, error) {
	path, err := p.path(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(p.root); err != nil {
		return nil, fmt.Errorf("filestore: root directory: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EEXIST) {
			return nil, fmt.Errorf("filestore: key %q needs a directory where an object is: %w", key, storage.InvalidArgument)
		}
		return nil, fmt.Errorf("filestore: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("filestore: key %q names a directory of other objects: %w", key, storage.InvalidArgument)
	}
	f, err := os.CreateTemp(filepath.Dir(path), tmpPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	w := &writer{ctx: ctx, p: p, path: path, f: f, md5: md5.New()}
	if opts != nil {
		w.side.ContentType = opts.ContentType
		w.side.Metadata = opts.Metadata
		w.wantMD5 = opts.ContentMD5
	}
	return w, nil
}

type writer struct {
	ctx     context.Context
	p       *Provider
	path    string
	f       *os.File
	md5     hash.Hash
	side    sidecar
	wantMD5 []byte
	done    bool
	err     error
}

func (w *writer) Write(b []byte) (int, error) {
	if w.done {
		return 0, errors.New("filestore: write after close")
	}
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := w.f.Write(b)
	w.md5.Write(b[:n])
	w.side.Size += int64(n)
	return n, err
}

// Close commits the object: fsync, rename over the object, then the sidecar.
func (w *writer) Close() error {
	if w.done {
		return w.err
	}
	w.done = true
	w.err = w.commit()
	if w.err != nil {
		w.f.Close()
		os.Remove(w.f.Name())
	}
	return w.err
}

func (w *writer) commit() error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	w.side.MD5 = w.md5.Sum(nil)
	if w.wantMD5 != nil && !bytes.Equal(w.side.MD5, w.wantMD5) {
		return fmt.Errorf("filestore: content MD5 %x, header says %x: %w", w.side.MD5, w.wantMD5, storage.DataLoss)
	}
	if !w.p.opts.NoSync {
		if err := w.f.Sync(); err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	side, err := json.Marshal(&w.side)
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if err := os.Rename(w.f.Name(), w.path); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	if err := writeFileAtomic(attrsPath(w.path), side, !w.p.opts.NoSync); err != nil {
		return fmt.Errorf("filestore: object written, attributes not: %w", err)
	}
	if !w.p.opts.NoSync {
		syncDir(filepath.Dir(w.path))
	}
	return nil
}

// writeFileAtomic writes data to a temporary file beside path and renames it.
func writeFileAtomic(path string, data []byte, sync bool) error {
	f, err := os.CreateTemp(filepath.Dir(path), tmpPrefix+"*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// syncDir makes a rename in dir durable; errors are ignored (some file systems refuse).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// NewRangeReader implements storage.Provider.
func (p *Provider) NewRangeReader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	path, err := p.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("filestore: %q is not an object: %w", key, fs.ErrNotExist)
	}
	if err == nil && offset > fi.Size() {
		err = fmt.Errorf("filestore: offset %d beyond size %d: %w", offset, fi.Size(), storage.InvalidArgument)
	}
	if err == nil {
		_, err = f.Seek(offset, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	if length < 0 {
		return f, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(f, length), f}, nil
}

// Attributes implements storage.Provider.
func (p *Provider) Attributes(ctx context.Context, key string) (*storage.Attributes, error) {
	path, err := p.path(key)
	if err != nil {
		return nil, err
	}
	return p.attributes(key, path)
}

func (p *Provider) attributes(key, path string) (*storage.Attributes, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("filestore: %q is not an object: %w", key, fs.ErrNotExist)
	}
	a := &storage.Attributes{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}
	if data, err := os.ReadFile(attrsPath(path)); err == nil {
		var s sidecar
		if json.Unmarshal(data, &s) == nil {
			a.ContentType = s.ContentType
			a.Metadata = s.Metadata
			if s.Size == fi.Size() && len(s.MD5) == md5.Size {
				a.MD5 = s.MD5
				a.ETag = `"` + hex.EncodeToString(s.MD5) + `"`
			}
		}
	}
	return a, nil
}

// Delete implements storage.Provider. Directories left empty are removed.
func (p *Provider) Delete(ctx context.Context, key string) error {
	path, err := p.path(key)
	if err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("filestore: %q is not an object: %w", key, fs.ErrNotExist)
	}
	if err := os.Remove(path); err != nil {
		return err
	}
	os.Remove(attrsPath(path))
	for dir := filepath.Dir(path); dir != p.root && strings.HasPrefix(dir, p.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil { // not empty
			break
		}
	}
	return nil
}

// ListPage implements storage.Provider; the page token is the last key of the
// previous page. It walks the directory that holds the prefix and sorts.
func (p *Provider) ListPage(ctx context.Context, prefix, pageToken string, pageSize int) ([]*storage.Attributes, string, error) {
	if pageSize <= 0 {
		pageSize = 1000
	}
	if _, err := os.Stat(p.root); err != nil {
		return nil, "", err
	}
	start := p.root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		dir, err := p.path(prefix[:i])
		if err != nil {
			return nil, "", nil // no valid key has this prefix
		}
		start = dir
	}
	var keys []string
	err := filepath.WalkDir(start, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		name := d.Name()
		if !d.Type().IsRegular() || strings.HasPrefix(name, tmpPrefix) || strings.HasSuffix(name, attrsSuffix) {
			return nil
		}
		rel, err := filepath.Rel(p.root, path)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if strings.HasPrefix(key, prefix) && key > pageToken {
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	sort.Strings(keys)
	next := ""
	if len(keys) > pageSize {
		keys = keys[:pageSize]
		next = keys[pageSize-1]
	}
	out := make([]*storage.Attributes, 0, len(keys))
	for _, k := range keys {
		a, err := p.attributes(k, filepath.Join(p.root, filepath.FromSlash(k)))
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, "", err
		}
		out = append(out, a)
	}
	return out, next, nil
}

// SignedURL implements storage.Provider with Options.SignURL.
func (p *Provider) SignedURL(ctx context.Context, key string, opts *storage.SignedURLOptions) (string, error) {
	if p.opts.SignURL == nil {
		return "", fmt.Errorf("filestore: no URL signer configured: %w", storage.Unimplemented)
	}
	return p.opts.SignURL(ctx, key, opts)
}

// CheckBucket implements storage.Provider: the root must be a directory.
func (p *Provider) CheckBucket(ctx context.Context) error {
	fi, err := os.Stat(p.root)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("filestore: %s is not a directory: %w", p.root, storage.NotFound)
	}
	return nil
}

// ErrorCode implements storage.Provider.
func (p *Provider) ErrorCode(err error) storage.ErrorCode {
	if c := storage.Code(err); c != storage.Unknown {
		return c
	}
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		// ENOTDIR: a key under another object's name ("a/b" with "a" an object).
		return storage.NotFound
	case errors.Is(err, fs.ErrPermission):
		return storage.PermissionDenied
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return storage.ResourceExhausted
	case errors.Is(err, syscall.EISDIR), errors.Is(err, syscall.ENAMETOOLONG):
		return storage.InvalidArgument
	case errors.Is(err, syscall.EROFS):
		return storage.PermissionDenied
	}
	return storage.Unknown
}

// Location implements storage.Provider.
func (p *Provider) Location() string { return "file://" + filepath.ToSlash(p.root) }

// Close implements storage.Provider; there is nothing to release.
func (p *Provider) Close() error { return nil }

var _ storage.Provider = (*Provider)(nil)
