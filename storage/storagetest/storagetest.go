// Package storagetest is the conformance suite every storage.Provider passes.
//
// A driver's test builds a Harness (how to make a provider on a fresh, empty
// bucket, plus what the driver and its server can do) and calls
// RunConformanceTests. The suite drives the provider through *storage.Bucket,
// the way the recorder does, and sends signed URLs through plain net/http, so a
// server that checks signatures really checks them.
package storagetest

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/storage"
)

// Harness describes a driver under test. Only NewProvider is required; every
// other field turns on the tests of one ability.
type Harness struct {
	// NewProvider returns a provider on a fresh, empty bucket (container,
	// directory, or a unique prefix of one). It is called once per subtest;
	// the suite closes what it returns. Use t.Cleanup for server-side cleanup.
	NewProvider func(ctx context.Context, t *testing.T) (storage.Provider, error)

	// NewProviderWrongCredentials, when set, returns a provider on the same
	// bucket as the last NewProvider call but with wrong credentials (a wrong
	// secret). Every operation must fail with Unauthenticated or PermissionDenied.
	NewProviderWrongCredentials func(ctx context.Context, t *testing.T) (storage.Provider, error)

	// NewProviderReadOnly, when set, returns a provider on the same bucket as
	// the last NewProvider call with credentials that may read and list but not
	// write or delete (PermissionDenied).
	NewProviderReadOnly func(ctx context.Context, t *testing.T) (storage.Provider, error)

	// NewProviderUnreachable, when set, returns a provider whose server does not
	// answer (a closed port). Operations must fail with Unavailable, quickly.
	NewProviderUnreachable func(ctx context.Context, t *testing.T) (storage.Provider, error)

	// SignedURLs says that SignedURL works for GET and PUT. When false the
	// suite checks that SignedURL returns Unimplemented.
	SignedURLs bool

	// ChecksSignatures says that the server behind signed URLs rejects tampered,
	// expired and other-object URLs.
	ChecksSignatures bool

	// HTTPClient sends signed-URL requests; nil means a client with a 30 s timeout.
	HTTPClient *http.Client

	// Metadata says that the provider keeps user metadata (WriterOptions.Metadata).
	Metadata bool

	// ContentType says that the provider keeps WriterOptions.ContentType.
	ContentType bool

	// MD5 says that Attributes reports the MD5 of objects written in one
	// piece (smaller than the multipart threshold).
	MD5 bool

	// ContentMD5 says that a write whose content does not match
	// WriterOptions.ContentMD5 fails (DataLoss or InvalidArgument) and commits nothing.
	ContentMD5 bool

	// ListPageSize is the page size of the paging test; 0 means 2.
	ListPageSize int

	// LargeSize is the size of the "multipart" round trip; 0 means 12 MiB + 1 B.
	LargeSize int

	// Timeout bounds each subtest; 0 means 2 minutes.
	Timeout time.Duration
}

// RunConformanceTests runs the suite against the driver described by h.
func RunConformanceTests(t *testing.T, h Harness) {
	t.Helper()
	if h.NewProvider == nil {
		t.Fatal("storagetest: Harness.NewProvider is required")
	}
	s := &suite{h: h}
	tests := []struct {
		name string
		fn   func(t *testing.T, ctx context.Context, b *storage.Bucket)
	}{
		{"RoundTrip", s.testRoundTrip},
		{"Overwrite", s.testOverwrite},
		{"RangeRead", s.testRangeRead},
		{"Attributes", s.testAttributes},
		{"NotFound", s.testNotFound},
		{"Delete", s.testDelete},
		{"List", s.testList},
		{"ListPaging", s.testListPaging},
		{"OddKeys", s.testOddKeys},
		{"InvalidKeys", s.testInvalidKeys},
		{"CancelledWrite", s.testCancelledWrite},
		{"InvisibleUntilClose", s.testInvisibleUntilClose},
		{"ChecksumMismatch", s.testChecksumMismatch},
		{"ContentMD5", s.testContentMD5},
		{"SignedURL", s.testSignedURL},
		{"WrongCredentials", s.testWrongCredentials},
		{"ReadOnly", s.testReadOnly},
		{"Unreachable", s.testUnreachable},
		{"Closed", s.testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), s.timeout())
			defer cancel()
			b := s.bucket(t, ctx)
			tc.fn(t, ctx, b)
		})
	}
}

type suite struct{ h Harness }

func (s *suite) timeout() time.Duration {
	if s.h.Timeout > 0 {
		return s.h.Timeout
	}
	return 2 * time.Minute
}

func (s *suite) bucket(t *testing.T, ctx context.Context) *storage.Bucket {
	t.Helper()
	p, err := s.h.NewProvider(ctx, t)
	if err != nil {
		t.Fatalf("NewProvider: %v", err)
	}
	b := storage.NewBucket(p)
	t.Cleanup(func() { b.Close() })
	return b
}

func (s *suite) client() *http.Client {
	if s.h.HTTPClient != nil {
		return s.h.HTTPClient
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// randomBytes returns n random bytes.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func mustUpload(t *testing.T, ctx context.Context, b *storage.Bucket, key string, data []byte, opts *storage.WriterOptions) storage.UploadResult {
	t.Helper()
	if opts == nil {
		opts = &storage.WriterOptions{Size: int64(len(data))}
	}
	res, err := b.Upload(ctx, key, bytes.NewReader(data), opts)
	if err != nil {
		t.Fatalf("Upload %q (%d bytes): %v", key, len(data), err)
	}
	return res
}

func mustRead(t *testing.T, ctx context.Context, b *storage.Bucket, key string, want []byte) {
	t.Helper()
	got, err := b.ReadAll(ctx, key)
	if err != nil {
		t.Fatalf("ReadAll %q: %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("ReadAll %q: got %d bytes (md5 %x), want %d bytes (md5 %x)", key, len(got), md5.Sum(got), len(want), md5.Sum(want))
	}
}

// wantCode fails unless err carries one of the codes.
func wantCode(t *testing.T, what string, err error, codes ...storage.ErrorCode) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: got nil error, want %v", what, codes)
	}
	if !slices.Contains(codes, storage.Code(err)) {
		t.Fatalf("%s: got code %v (%v), want %v", what, storage.Code(err), err, codes)
	}
	var se *storage.Error
	if !errors.As(err, &se) {
		t.Fatalf("%s: error %v is not a *storage.Error", what, err)
	}
}

func (s *suite) testRoundTrip(t *testing.T, ctx context.Context, b *storage.Bucket) {
	large := s.h.LargeSize
	if large == 0 {
		large = 12<<20 + 1
	}
	tests := []struct {
		name      string
		size      int
		knownSize bool
	}{
		{"0B", 0, true},
		{"0BUnknownSize", 0, false},
		{"1B", 1, true},
		{"64KiB", 64 << 10, true},
		{"Large", large, true},
		{"LargeUnknownSize", large, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := randomBytes(tc.size)
			key := "roundtrip/" + tc.name
			size := int64(-1)
			if tc.knownSize {
				size = int64(tc.size)
			}
			res := mustUpload(t, ctx, b, key, data, &storage.WriterOptions{Size: size})
			if res.Size != int64(tc.size) {
				t.Errorf("UploadResult.Size = %d, want %d", res.Size, tc.size)
			}
			if want := md5.Sum(data); !bytes.Equal(res.MD5, want[:]) {
				t.Errorf("UploadResult.MD5 = %x, want %x", res.MD5, want)
			}
			mustRead(t, ctx, b, key, data)
			a, err := b.Attributes(ctx, key)
			if err != nil {
				t.Fatalf("Attributes: %v", err)
			}
			if a.Size != int64(tc.size) {
				t.Errorf("Attributes.Size = %d, want %d", a.Size, tc.size)
			}
		})
	}
}

func (s *suite) testOverwrite(t *testing.T, ctx context.Context, b *storage.Bucket) {
	first, second := randomBytes(3000), randomBytes(1200)
	mustUpload(t, ctx, b, "overwrite", first, nil)
	mustUpload(t, ctx, b, "overwrite", second, nil)
	mustRead(t, ctx, b, "overwrite", second)
	a, err := b.Attributes(ctx, "overwrite")
	if err != nil {
		t.Fatal(err)
	}
	if a.Size != int64(len(second)) {
		t.Errorf("size after overwrite = %d, want %d", a.Size, len(second))
	}
	if s.h.MD5 {
		if want := md5.Sum(second); !bytes.Equal(a.MD5, want[:]) {
			t.Errorf("MD5 after overwrite = %x, want %x", a.MD5, want)
		}
	}
}

func (s *suite) testRangeRead(t *testing.T, ctx context.Context, b *storage.Bucket) {
	data := randomBytes(1000)
	mustUpload(t, ctx, b, "range", data, nil)
	tests := []struct {
		name           string
		offset, length int64
		want           []byte
	}{
		{"Start", 0, 10, data[:10]},
		{"Middle", 500, 100, data[500:600]},
		{"ToEnd", 990, -1, data[990:]},
		{"PastEndTruncated", 990, 100, data[990:]},
		{"Whole", 0, -1, data},
		{"LastByte", 999, 1, data[999:]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := b.NewRangeReader(ctx, "range", tc.offset, tc.length)
			if err != nil {
				t.Fatalf("NewRangeReader(%d, %d): %v", tc.offset, tc.length, err)
			}
			defer r.Close()
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("NewRangeReader(%d, %d): got %d bytes, want %d (content differs: %v)",
					tc.offset, tc.length, len(got), len(tc.want), len(got) == len(tc.want))
			}
		})
	}
	t.Run("BeyondEnd", func(t *testing.T) {
		r, err := b.NewRangeReader(ctx, "range", 1100, 10)
		if err == nil {
			r.Close()
		}
		wantCode(t, "NewRangeReader(1100, 10) of a 1000-byte object", err, storage.InvalidArgument)
	})
	t.Run("NegativeOffset", func(t *testing.T) {
		_, err := b.NewRangeReader(ctx, "range", -1, 10)
		wantCode(t, "NewRangeReader(-1, 10)", err, storage.InvalidArgument)
	})
}

func (s *suite) testAttributes(t *testing.T, ctx context.Context, b *storage.Bucket) {
	data := randomBytes(777)
	opts := &storage.WriterOptions{
		Size:        int64(len(data)),
		ContentType: "audio/ogg",
		Metadata:    map[string]string{"conversationid": "c-1", "userid": "u 2"},
	}
	start := time.Now()
	mustUpload(t, ctx, b, "attrs/obj.ogg", data, opts)
	a, err := b.Attributes(ctx, "attrs/obj.ogg")
	if err != nil {
		t.Fatal(err)
	}
	if a.Size != 777 {
		t.Errorf("Size = %d, want 777", a.Size)
	}
	// Servers keep whole seconds and their clocks may drift a little.
	if a.ModTime.Before(start.Add(-2*time.Minute)) || a.ModTime.After(time.Now().Add(2*time.Minute)) {
		t.Errorf("ModTime = %v, want about %v", a.ModTime, start)
	}
	if s.h.ContentType && a.ContentType != "audio/ogg" {
		t.Errorf("ContentType = %q, want audio/ogg", a.ContentType)
	}
	if s.h.Metadata {
		for k, v := range opts.Metadata {
			if a.Metadata[k] != v {
				t.Errorf("Metadata[%q] = %q, want %q (all: %v)", k, a.Metadata[k], v, a.Metadata)
			}
		}
	}
	if s.h.MD5 {
		if want := md5.Sum(data); !bytes.Equal(a.MD5, want[:]) {
			t.Errorf("MD5 = %x, want %x", a.MD5, want)
		}
	}
	if a.Key != "" && a.Key != "attrs/obj.ogg" {
		t.Errorf("Key = %q, want attrs/obj.ogg", a.Key)
	}
}

func (s *suite) testNotFound(t *testing.T, ctx context.Context, b *storage.Bucket) {
	mustUpload(t, ctx, b, "present", []byte("x"), nil)
	const key = "missing/object"
	_, err := b.Attributes(ctx, key)
	wantCode(t, "Attributes of a missing object", err, storage.NotFound)
	_, err = b.NewReader(ctx, key)
	wantCode(t, "NewReader of a missing object", err, storage.NotFound)
	_, err = b.NewRangeReader(ctx, key, 5, 10)
	wantCode(t, "NewRangeReader of a missing object", err, storage.NotFound)
	err = b.Delete(ctx, key)
	wantCode(t, "Delete of a missing object", err, storage.NotFound)
	if !errors.Is(err, storage.NotFound) {
		t.Errorf("errors.Is(%v, NotFound) = false", err)
	}
}

func (s *suite) testDelete(t *testing.T, ctx context.Context, b *storage.Bucket) {
	mustUpload(t, ctx, b, "del/a", []byte("hello"), nil)
	mustUpload(t, ctx, b, "del/b", []byte("stays"), nil)
	if err := b.Delete(ctx, "del/a"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := b.Attributes(ctx, "del/a")
	wantCode(t, "Attributes after Delete", err, storage.NotFound)
	_, err = b.ReadAll(ctx, "del/a")
	wantCode(t, "ReadAll after Delete", err, storage.NotFound)
	wantCode(t, "second Delete", b.Delete(ctx, "del/a"), storage.NotFound)
	mustRead(t, ctx, b, "del/b", []byte("stays"))
}

func keysOf(objs []*storage.Attributes) []string {
	keys := make([]string, len(objs))
	for i, o := range objs {
		keys[i] = o.Key
	}
	return keys
}

func (s *suite) testList(t *testing.T, ctx context.Context, b *storage.Bucket) {
	// Written out of order; "list-x" and "lis" share a prefix with "list/"
	// but are not under it; "list/c/d" sorts after "list/c-e" in key order.
	for _, k := range []string{"list/c/d", "list/b", "lis", "list-x", "list/a", "list/c-e", "list/c/e/f"} {
		mustUpload(t, ctx, b, k, []byte(k), nil)
	}
	got, err := b.List(ctx, "list/")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	want := []string{"list/a", "list/b", "list/c-e", "list/c/d", "list/c/e/f"}
	if !slices.Equal(keysOf(got), want) {
		t.Fatalf("List(list/) = %q, want %q", keysOf(got), want)
	}
	for _, a := range got {
		if a.Size != int64(len(a.Key)) {
			t.Errorf("List: %q has size %d, want %d", a.Key, a.Size, len(a.Key))
		}
	}
	got, err = b.List(ctx, "list/c/")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"list/c/d", "list/c/e/f"}; !slices.Equal(keysOf(got), want) {
		t.Errorf("List(list/c/) = %q, want %q", keysOf(got), want)
	}
	got, err = b.List(ctx, "nothing/")
	if err != nil || len(got) != 0 {
		t.Errorf("List(nothing/) = %q, %v; want nothing", keysOf(got), err)
	}
}

// pageLister is the Provider's ListPage, reached through the harness (the
// Bucket pages internally with a large page size).
func (s *suite) testListPaging(t *testing.T, ctx context.Context, _ *storage.Bucket) {
	p, err := s.h.NewProvider(ctx, t)
	if err != nil {
		t.Fatal(err)
	}
	b := storage.NewBucket(p)
	defer b.Close()
	pageSize := s.h.ListPageSize
	if pageSize == 0 {
		pageSize = 2
	}
	var want []string
	for i := range 2*pageSize + 1 {
		k := fmt.Sprintf("page/%03d", i)
		want = append(want, k)
		mustUpload(t, ctx, b, k, []byte{byte(i)}, nil)
	}
	mustUpload(t, ctx, b, "pagf", []byte("outside"), nil)
	var got []string
	token, pages := "", 0
	for {
		objs, next, err := p.ListPage(ctx, "page/", token, pageSize)
		if err != nil {
			t.Fatalf("ListPage(page %d): %v", pages, err)
		}
		pages++
		if len(objs) > pageSize {
			t.Fatalf("ListPage returned %d objects, page size %d", len(objs), pageSize)
		}
		got = append(got, keysOf(objs)...)
		if next == "" {
			break
		}
		if pages > 2*len(want) {
			t.Fatalf("ListPage never ends: %d pages", pages)
		}
		token = next
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged list = %q, want %q", got, want)
	}
	if pages < 3 {
		t.Errorf("%d objects in %d pages of %d", len(want), pages, pageSize)
	}
}

// OddKeys are keys that every driver must store and list unchanged.
var OddKeys = []string{
	"with space/and more spaces.txt",
	"unicode/ünïcödé-日本語-🎙.ogg",
	"deep/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/object",
	"plus+sign/a+b",
	"percent%20/100%",
	"question?mark=1&x",
	"hash#fragment",
	"semi;colon,comma:colon@at",
	"quotes'and\"double",
	"brackets[1]{2}(3)<4>",
	"tilde~/dollar$/star*/bang!",
	".leadingdot/.hidden",
	"trailing.dot.",
	"a..b/c...d",
}

func (s *suite) testOddKeys(t *testing.T, ctx context.Context, b *storage.Bucket) {
	for _, key := range OddKeys {
		t.Run(key, func(t *testing.T) {
			data := []byte("content of " + key)
			mustUpload(t, ctx, b, key, data, nil)
			mustRead(t, ctx, b, key, data)
			a, err := b.Attributes(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if a.Size != int64(len(data)) {
				t.Errorf("Size = %d, want %d", a.Size, len(data))
			}
		})
	}
	all, err := b.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(OddKeys)
	slices.Sort(want)
	if got := keysOf(all); !slices.Equal(got, want) {
		t.Errorf("List(\"\") = %q, want %q", got, want)
	}
	for _, key := range OddKeys {
		if err := b.Delete(ctx, key); err != nil {
			t.Errorf("Delete %q: %v", key, err)
		}
	}
}

func (s *suite) testInvalidKeys(t *testing.T, ctx context.Context, b *storage.Bucket) {
	for _, key := range []string{"", "/abs", "a//b", "../up", "a/../../up", "a/./b", "back\\slash", "nul\x00", "new\nline", "bad\xffutf8"} {
		_, err := b.Upload(ctx, key, strings.NewReader("x"), nil)
		wantCode(t, fmt.Sprintf("Upload(%q)", key), err, storage.InvalidArgument)
	}
}

func (s *suite) testCancelledWrite(t *testing.T, ctx context.Context, b *storage.Bucket) {
	old := randomBytes(100)
	mustUpload(t, ctx, b, "cancel/existing", old, nil)
	for _, tc := range []struct {
		key     string
		size    int
		sizeOpt int64
	}{
		{"cancel/new-small", 1000, 1000},
		{"cancel/new-large", 6 << 20, -1},
		{"cancel/existing", 6 << 20, 6 << 20},
	} {
		t.Run(tc.key, func(t *testing.T) {
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			w, err := b.NewWriter(wctx, tc.key, &storage.WriterOptions{Size: tc.sizeOpt})
			if err != nil {
				t.Fatal(err)
			}
			data := randomBytes(tc.size)
			if _, err := w.Write(data[:tc.size/2]); err != nil {
				t.Fatalf("Write: %v", err)
			}
			cancel()
			w.Write(data[tc.size/2:]) // may fail: the context is gone
			if err := w.Close(); err == nil {
				t.Fatal("Close after cancel returned nil; want an error")
			}
			if tc.key == "cancel/existing" {
				mustRead(t, ctx, b, tc.key, old)
				return
			}
			_, err = b.Attributes(ctx, tc.key)
			wantCode(t, "Attributes after a cancelled write", err, storage.NotFound)
		})
	}
	objs, err := b.List(ctx, "cancel/")
	if err != nil {
		t.Fatal(err)
	}
	if got := keysOf(objs); !slices.Equal(got, []string{"cancel/existing"}) {
		t.Errorf("after cancelled writes List = %q, want only cancel/existing", got)
	}
}

func (s *suite) testInvisibleUntilClose(t *testing.T, ctx context.Context, b *storage.Bucket) {
	w, err := b.NewWriter(ctx, "partial", &storage.WriterOptions{Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(64 << 10)
	if _, err := w.Write(data[:32<<10]); err != nil {
		t.Fatal(err)
	}
	if a, err := b.Attributes(ctx, "partial"); err == nil {
		t.Errorf("a half-written object is visible: %d bytes", a.Size)
	}
	if _, err := w.Write(data[32<<10:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	mustRead(t, ctx, b, "partial", data)
}

// lossyProvider stores something other than what it is given, so that the
// Bucket's check after upload must notice.
type lossyProvider struct {
	storage.Provider
	mutate func([]byte) []byte
}

func (p *lossyProvider) NewWriter(ctx context.Context, key string, opts *storage.WriterOptions) (io.WriteCloser, error) {
	o := *opts
	o.Size = -1 // the size is about to be wrong
	w, err := p.Provider.NewWriter(ctx, key, &o)
	if err != nil {
		return nil, err
	}
	return &lossyWriter{w: w, mutate: p.mutate}, nil
}

type lossyWriter struct {
	w      io.WriteCloser
	buf    bytes.Buffer
	mutate func([]byte) []byte
}

func (w *lossyWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }

func (w *lossyWriter) Close() error {
	if _, err := w.w.Write(w.mutate(w.buf.Bytes())); err != nil {
		w.w.Close()
		return err
	}
	return w.w.Close()
}

func (s *suite) testChecksumMismatch(t *testing.T, ctx context.Context, _ *storage.Bucket) {
	tests := []struct {
		name   string
		mutate func([]byte) []byte
		run    bool
	}{
		{"DroppedByte", func(b []byte) []byte { return b[:len(b)-1] }, true},
		{"FlippedBit", func(b []byte) []byte { c := bytes.Clone(b); c[len(c)/2] ^= 1; return c }, s.h.MD5},
	}
	for _, tc := range tests {
		if !tc.run {
			t.Logf("%s: skipped: the provider keeps no MD5 (Harness.MD5 false), so a same-size corruption is undetectable", tc.name)
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			p, err := s.h.NewProvider(ctx, t)
			if err != nil {
				t.Fatal(err)
			}
			b := storage.NewBucket(&lossyProvider{Provider: p, mutate: tc.mutate})
			defer b.Close()
			_, err = b.Upload(ctx, "lossy", bytes.NewReader(randomBytes(5000)), nil)
			wantCode(t, "Upload through a lossy provider", err, storage.DataLoss)
		})
	}
}

func (s *suite) testContentMD5(t *testing.T, ctx context.Context, b *storage.Bucket) {
	if !s.h.ContentMD5 {
		t.Log("the driver does not check WriterOptions.ContentMD5 (Harness.ContentMD5 false)")
		return
	}
	large := s.h.LargeSize
	if large == 0 {
		large = 12<<20 + 1
	}
	for _, size := range []int{0, 1000, large} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			data := randomBytes(size)
			good := md5.Sum(data)
			key := fmt.Sprintf("md5/%d", size)
			mustUpload(t, ctx, b, key, data, &storage.WriterOptions{Size: int64(size), ContentMD5: good[:]})
			mustRead(t, ctx, b, key, data)
			bad := md5.Sum(append(data, 0))
			_, err := b.Upload(ctx, key+"-bad", bytes.NewReader(data), &storage.WriterOptions{Size: int64(size), ContentMD5: bad[:]})
			wantCode(t, "Upload with a wrong ContentMD5", err, storage.DataLoss, storage.InvalidArgument)
			_, err = b.Attributes(ctx, key+"-bad")
			wantCode(t, "Attributes after a rejected ContentMD5", err, storage.NotFound)
		})
	}
}

// signatureParams and expiryParams are the query parameters that carry the
// signature and the expiry in the signed URLs of the known providers.
var (
	signatureParams = []string{"Signature", "X-Amz-Signature", "sig", "X-Goog-Signature"}
	expiryParams    = []string{"Expires", "X-Amz-Expires", "se", "X-Goog-Expires"}
)

// tamperParam changes the first of names present in u's query.
func tamperParam(t *testing.T, u string, names []string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := pu.Query()
	for _, n := range names {
		v := q.Get(n)
		if v == "" {
			continue
		}
		switch {
		case isInt(v):
			i, _ := strconv.ParseInt(v, 10, 64)
			v = strconv.FormatInt(i+3600, 10)
		case isTime(v):
			tm, _ := time.Parse(time.RFC3339, v)
			v = tm.Add(time.Hour).UTC().Format(time.RFC3339)
		default:
			// '0' and '1' are digits of hex and of base64 alike: swapping
			// one for the other changes the signature's value, where a
			// change of case would not for a hex signature (X-Amz-Signature,
			// X-Goog-Signature) that a server decodes case-insensitively.
			r := []byte(v)
			i := len(r) / 2
			if r[i] == '0' {
				r[i] = '1'
			} else {
				r[i] = '0'
			}
			v = string(r)
		}
		q.Set(n, v)
		pu.RawQuery = q.Encode()
		return pu.String()
	}
	t.Fatalf("signed URL %s has none of the query parameters %q", redact(u), names)
	return ""
}

func isInt(s string) bool { _, err := strconv.ParseInt(s, 10, 64); return err == nil }

func isTime(s string) bool { _, err := time.Parse(time.RFC3339, s); return err == nil }

// redact hides signatures in URLs printed by failing tests.
func redact(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return "<unparsable URL>"
	}
	q := pu.Query()
	for _, n := range signatureParams {
		if q.Has(n) {
			q.Set(n, "REDACTED")
		}
	}
	pu.RawQuery = q.Encode()
	return pu.String()
}

// swapKey replaces the object key in a signed URL's path with other.
func swapKey(t *testing.T, u, key, other string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	esc := pu.EscapedPath()
	for _, form := range []string{key, url.PathEscape(key), strings.ReplaceAll(url.PathEscape(key), "%2F", "/")} {
		if i := strings.LastIndex(esc, form); i >= 0 {
			newEsc := esc[:i] + strings.ReplaceAll(url.PathEscape(other), "%2F", "/") + esc[i+len(form):]
			np, err := url.PathUnescape(newEsc)
			if err != nil {
				t.Fatal(err)
			}
			pu.Path, pu.RawPath = np, newEsc
			return pu.String()
		}
	}
	t.Fatalf("signed URL path %q does not contain key %q", esc, key)
	return ""
}

func (s *suite) do(t *testing.T, ctx context.Context, method, u string, body []byte, header http.Header) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.ContentLength = int64(len(body))
	}
	resp, err := s.client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, redact(u), err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, redact(u), err)
	}
	return resp.StatusCode, got
}

func rejected(code int) bool { return code == 400 || code == 401 || code == 403 }

func (s *suite) testSignedURL(t *testing.T, ctx context.Context, b *storage.Bucket) {
	data := randomBytes(4000)
	mustUpload(t, ctx, b, "signed/obj.bin", data, nil)
	if !s.h.SignedURLs {
		_, err := b.SignedURL(ctx, "signed/obj.bin", nil)
		wantCode(t, "SignedURL of a driver without signed URLs", err, storage.Unimplemented)
		return
	}
	other := randomBytes(300)
	mustUpload(t, ctx, b, "signed/other.bin", other, nil)
	sign := func(t *testing.T, key, method string, expiry time.Duration) string {
		t.Helper()
		u, err := b.SignedURL(ctx, key, &storage.SignedURLOptions{Method: method, Expiry: expiry})
		if err != nil {
			t.Fatalf("SignedURL(%s %s): %v", method, key, err)
		}
		return u
	}
	t.Run("GET", func(t *testing.T) {
		code, got := s.do(t, ctx, http.MethodGet, sign(t, "signed/obj.bin", http.MethodGet, time.Minute), nil, nil)
		if code != http.StatusOK || !bytes.Equal(got, data) {
			t.Fatalf("GET signed URL: status %d, %d bytes (want 200, %d bytes)", code, len(got), len(data))
		}
	})
	t.Run("GETRange", func(t *testing.T) {
		u := sign(t, "signed/obj.bin", http.MethodGet, time.Minute)
		code, got := s.do(t, ctx, http.MethodGet, u, nil, http.Header{"Range": {"bytes=1000-1999"}})
		if code != http.StatusPartialContent || !bytes.Equal(got, data[1000:2000]) {
			t.Fatalf("GET signed URL with Range: status %d, %d bytes (want 206, 1000 bytes)", code, len(got))
		}
		code, got = s.do(t, ctx, http.MethodGet, u, nil, http.Header{"Range": {"bytes=3990-"}})
		if code != http.StatusPartialContent || !bytes.Equal(got, data[3990:]) {
			t.Fatalf("GET signed URL with open Range: status %d, %d bytes (want 206, 10 bytes)", code, len(got))
		}
	})
	t.Run("PUT", func(t *testing.T) {
		body := randomBytes(2500)
		code, resp := s.do(t, ctx, http.MethodPut, sign(t, "signed/put.bin", http.MethodPut, time.Minute), body, nil)
		if code/100 != 2 {
			t.Fatalf("PUT signed URL: status %d: %s", code, resp)
		}
		mustRead(t, ctx, b, "signed/put.bin", body)
	})
	if !s.h.ChecksSignatures {
		t.Log("the server does not check signatures: tampering tests skipped")
		return
	}
	t.Run("Rejected", func(t *testing.T) {
		getURL := sign(t, "signed/obj.bin", http.MethodGet, time.Minute)
		putURL := sign(t, "signed/obj.bin", http.MethodPut, time.Minute)
		tests := []struct {
			name, method, url string
		}{
			{"ChangedSignature", http.MethodGet, tamperParam(t, getURL, signatureParams)},
			{"ChangedExpiry", http.MethodGet, tamperParam(t, getURL, expiryParams)},
			{"OtherObject", http.MethodGet, swapKey(t, getURL, "signed/obj.bin", "signed/other.bin")},
			{"MissingSignature", http.MethodGet, strings.SplitN(getURL, "?", 2)[0]},
			{"PutWithGetURL", http.MethodPut, getURL},
			{"PutOtherObject", http.MethodPut, swapKey(t, putURL, "signed/obj.bin", "signed/other.bin")},
			{"PutChangedSignature", http.MethodPut, tamperParam(t, putURL, signatureParams)},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				var body []byte
				if tc.method == http.MethodPut {
					body = []byte("attacker")
				}
				code, got := s.do(t, ctx, tc.method, tc.url, body, nil)
				if !rejected(code) {
					t.Errorf("%s %s: status %d (%d bytes), want 400, 401 or 403", tc.method, redact(tc.url), code, len(got))
				}
			})
		}
		mustRead(t, ctx, b, "signed/obj.bin", data)
		mustRead(t, ctx, b, "signed/other.bin", other)
	})
	t.Run("Expired", func(t *testing.T) {
		u := sign(t, "signed/obj.bin", http.MethodGet, time.Second)
		pu := sign(t, "signed/expired-put.bin", http.MethodPut, time.Second)
		time.Sleep(2100 * time.Millisecond)
		if code, _ := s.do(t, ctx, http.MethodGet, u, nil, nil); !rejected(code) {
			t.Errorf("GET with an expired URL: status %d, want 400, 401 or 403", code)
		}
		if code, _ := s.do(t, ctx, http.MethodPut, pu, []byte("late"), nil); !rejected(code) {
			t.Errorf("PUT with an expired URL: status %d, want 400, 401 or 403", code)
		}
		_, err := b.Attributes(ctx, "signed/expired-put.bin")
		wantCode(t, "object PUT through an expired URL", err, storage.NotFound)
	})
}

func (s *suite) otherBucket(t *testing.T, ctx context.Context, mk func(context.Context, *testing.T) (storage.Provider, error)) *storage.Bucket {
	t.Helper()
	p, err := mk(ctx, t)
	if err != nil {
		t.Fatal(err)
	}
	b := storage.NewBucket(p)
	t.Cleanup(func() { b.Close() })
	return b
}

func (s *suite) testWrongCredentials(t *testing.T, ctx context.Context, good *storage.Bucket) {
	if s.h.NewProviderWrongCredentials == nil {
		t.Log("no credentials to get wrong (Harness.NewProviderWrongCredentials is nil)")
		return
	}
	mustUpload(t, ctx, good, "creds/existing", []byte("secret content"), nil)
	b := s.otherBucket(t, ctx, s.h.NewProviderWrongCredentials)
	denied := []storage.ErrorCode{storage.Unauthenticated, storage.PermissionDenied}
	wantCode(t, "CheckBucket with wrong credentials", b.CheckBucket(ctx), denied...)
	_, err := b.Attributes(ctx, "creds/existing")
	wantCode(t, "Attributes with wrong credentials", err, denied...)
	_, err = b.ReadAll(ctx, "creds/existing")
	wantCode(t, "ReadAll with wrong credentials", err, denied...)
	_, err = b.Upload(ctx, "creds/new", strings.NewReader("x"), nil)
	wantCode(t, "Upload with wrong credentials", err, denied...)
	wantCode(t, "Delete with wrong credentials", b.Delete(ctx, "creds/existing"), denied...)
	_, err = b.List(ctx, "creds/")
	wantCode(t, "List with wrong credentials", err, denied...)
	mustRead(t, ctx, good, "creds/existing", []byte("secret content"))
}

func (s *suite) testReadOnly(t *testing.T, ctx context.Context, good *storage.Bucket) {
	if s.h.NewProviderReadOnly == nil {
		t.Log("no read-only credential (Harness.NewProviderReadOnly is nil)")
		return
	}
	mustUpload(t, ctx, good, "ro/existing", []byte("read me"), nil)
	b := s.otherBucket(t, ctx, s.h.NewProviderReadOnly)
	if err := b.CheckBucket(ctx); err != nil {
		t.Errorf("CheckBucket with a read-only credential: %v", err)
	}
	mustRead(t, ctx, b, "ro/existing", []byte("read me"))
	if objs, err := b.List(ctx, "ro/"); err != nil || len(objs) != 1 {
		t.Errorf("List with a read-only credential: %q, %v", keysOf(objs), err)
	}
	_, err := b.Upload(ctx, "ro/new", strings.NewReader("x"), nil)
	wantCode(t, "Upload with a read-only credential", err, storage.PermissionDenied)
	_, err = b.Upload(ctx, "ro/existing", strings.NewReader("overwritten"), nil)
	wantCode(t, "overwrite with a read-only credential", err, storage.PermissionDenied)
	wantCode(t, "Delete with a read-only credential", b.Delete(ctx, "ro/existing"), storage.PermissionDenied)
	mustRead(t, ctx, good, "ro/existing", []byte("read me"))
}

func (s *suite) testUnreachable(t *testing.T, ctx context.Context, _ *storage.Bucket) {
	if s.h.NewProviderUnreachable == nil {
		t.Log("no server to be unreachable (Harness.NewProviderUnreachable is nil)")
		return
	}
	b := s.otherBucket(t, ctx, s.h.NewProviderUnreachable)
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	wantCode(t, "CheckBucket of an unreachable server", b.CheckBucket(ctx), storage.Unavailable)
	_, err := b.Attributes(ctx, "x")
	wantCode(t, "Attributes on an unreachable server", err, storage.Unavailable)
	_, err = b.Upload(ctx, "x", strings.NewReader("x"), nil)
	wantCode(t, "Upload to an unreachable server", err, storage.Unavailable)
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("three operations on an unreachable server took %v; want fast failures", d)
	}
}

func (s *suite) testClosed(t *testing.T, ctx context.Context, b *storage.Bucket) {
	mustUpload(t, ctx, b, "closed", []byte("x"), nil)
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, err := b.Attributes(ctx, "closed")
	if !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Attributes after Close: %v, want ErrClosed", err)
	}
}
