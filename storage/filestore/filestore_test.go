package filestore

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/storagetest"
)

// signedServer serves dir through storage.SignedURLHandler on 127.0.0.1 and
// returns a SignURL function that makes URLs for it.
func signedServer(t *testing.T, dir string) func(context.Context, string, *storage.SignedURLOptions) (string, error) {
	t.Helper()
	signer := storage.NewURLSigner([]byte("test-signing-key-0123456789abcdef"))
	served, err := OpenBucket(t.Context(), Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	h := storage.SignedURLHandler(served, signer, func(p string) (string, error) {
		key, ok := strings.CutPrefix(p, "/files/")
		if !ok {
			return "", fmt.Errorf("not under /files/: %q", p)
		}
		return key, nil
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	base, _ := url.Parse(srv.URL)
	return func(ctx context.Context, key string, opts *storage.SignedURLOptions) (string, error) {
		u := *base
		u.Path = "/files/" + key
		return signer.Sign(opts.Method, &u, opts.Expiry).String(), nil
	}
}

func TestConformance(t *testing.T) {
	storagetest.RunConformanceTests(t, storagetest.Harness{
		NewProvider: func(ctx context.Context, t *testing.T) (storage.Provider, error) {
			dir := t.TempDir()
			return New(ctx, Options{Dir: dir, SignURL: signedServer(t, dir)})
		},
		SignedURLs:       true,
		ChecksSignatures: true,
		ContentType:      true,
		Metadata:         true,
		MD5:              true,
		ContentMD5:       true,
	})
}

func TestConformance_NoSigner(t *testing.T) {
	storagetest.RunConformanceTests(t, storagetest.Harness{
		NewProvider: func(ctx context.Context, t *testing.T) (storage.Provider, error) {
			return New(ctx, Options{Dir: t.TempDir(), NoSync: true})
		},
		ContentType: true,
		Metadata:    true,
		MD5:         true,
		ContentMD5:  true,
	})
}

func TestFilestore_KeysStayUnderRoot(t *testing.T) {
	p, err := New(t.Context(), Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"../x", "a/../../x", "/etc/passwd", "a/.rec-tmp-1", "b/.x.rec-attrs", "a\\..\\x", ""} {
		if _, err := p.path(key); storage.Code(err) != storage.InvalidArgument {
			t.Errorf("path(%q) = %v, want InvalidArgument", key, err)
		}
	}
}

func TestFilestore_MissingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "absent")
	b, err := OpenBucket(t.Context(), Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CheckBucket(t.Context()); storage.Code(err) != storage.NotFound {
		t.Errorf("CheckBucket of a missing directory: %v, want NotFound", err)
	}
	if _, err := b.Upload(t.Context(), "x", strings.NewReader("x"), nil); storage.Code(err) != storage.NotFound {
		t.Errorf("Upload into a missing directory: %v, want NotFound", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Upload created the missing root: %v", err)
	}
	if _, err := OpenBucket(t.Context(), Options{Dir: dir, CreateDir: true}); err != nil {
		t.Fatal(err)
	}
	if err := b.CheckBucket(t.Context()); err != nil {
		t.Errorf("CheckBucket after CreateDir: %v", err)
	}
}

func TestFilestore_NoTempFilesLeft(t *testing.T) {
	dir := t.TempDir()
	b, _ := OpenBucket(t.Context(), Options{Dir: dir})
	ctx, cancel := context.WithCancel(t.Context())
	w, err := b.NewWriter(ctx, "a/b/c", nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("half"))
	cancel()
	if w.Close() == nil {
		t.Fatal("Close after cancel succeeded")
	}
	if _, err := b.Upload(t.Context(), "a/d", strings.NewReader("whole"), nil); err != nil {
		t.Fatal(err)
	}
	var names []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if d != nil && !d.IsDir() {
			names = append(names, d.Name())
		}
		return nil
	})
	if strings.Join(names, ",") != ".d.rec-attrs,d" {
		t.Errorf("files under root = %q, want only d and its sidecar", names)
	}
}

// TestFilestore_FileDirectoryClash covers keys that a file system cannot hold
// together: "x" and "x/y".
func TestFilestore_FileDirectoryClash(t *testing.T) {
	b, _ := OpenBucket(t.Context(), Options{Dir: t.TempDir()})
	ctx := t.Context()
	if _, err := b.Upload(ctx, "x", strings.NewReader("file"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Upload(ctx, "x/y", strings.NewReader("under a file"), nil); storage.Code(err) != storage.InvalidArgument {
		t.Errorf("Upload x/y over object x: %v, want InvalidArgument", err)
	}
	if _, err := b.Attributes(ctx, "x/y"); storage.Code(err) != storage.NotFound {
		t.Errorf("Attributes x/y with x an object: %v, want NotFound", err)
	}
	if err := b.Delete(ctx, "x/y"); storage.Code(err) != storage.NotFound {
		t.Errorf("Delete x/y with x an object: %v, want NotFound", err)
	}
	if _, err := b.Upload(ctx, "d/e", strings.NewReader("e"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Upload(ctx, "d", strings.NewReader("over a directory"), nil); storage.Code(err) != storage.InvalidArgument {
		t.Errorf("Upload d over directory d/: %v, want InvalidArgument", err)
	}
	if _, err := b.Attributes(ctx, "d"); storage.Code(err) != storage.NotFound {
		t.Errorf("Attributes of directory d: %v, want NotFound", err)
	}
	if got, err := b.ReadAll(ctx, "x"); err != nil || string(got) != "file" {
		t.Errorf("x = %q, %v", got, err)
	}
}

// FuzzPath checks that every key the driver accepts maps to a file strictly
// under the root, in a directory that is also under the root.
func FuzzPath(f *testing.F) {
	for _, k := range append([]string{"a", "a/b", "../x", "a/../../x", "a/./b", "..", "./a", "a/..", "\u2215etc"}, storagetest.OddKeys...) {
		f.Add(k)
	}
	root := f.TempDir()
	p, err := New(context.Background(), Options{Dir: root})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, key string) {
		path, err := p.path(key)
		if err != nil {
			return
		}
		rel, err := filepath.Rel(p.root, path)
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
			t.Fatalf("key %q maps to %q, outside root %q", key, path, p.root)
		}
		if filepath.ToSlash(rel) != key {
			t.Fatalf("key %q maps to %q, not the same name", key, rel)
		}
	})
}
