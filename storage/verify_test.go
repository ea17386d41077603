package storage_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/filestore"
	"github.com/rtcrec/recorder/storage/memstore"
)

func TestVerify_Healthy(t *testing.T) {
	dir := t.TempDir()
	fb, err := filestore.OpenBucket(t.Context(), filestore.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string]*storage.Bucket{"memstore": storage.NewBucket(memstore.New(memstore.Options{Name: "m"})), "filestore": fb} {
		t.Run(name, func(t *testing.T) {
			res := storage.Verify(t.Context(), b, "rec/app1", nil)
			if !res.OK() {
				t.Fatalf("Verify on a healthy %s: %+v", name, res)
			}
			if !strings.HasPrefix(res.Key, "rec/app1/verify-") {
				t.Errorf("Key = %q, want it under rec/app1/verify-", res.Key)
			}
			for _, c := range []storage.CheckResult{res.Bucket, res.Write, res.Read, res.Modify, res.Delete} {
				if c.Message == "" {
					t.Errorf("a passed check has no message: %+v", res)
				}
			}
			left, err := b.List(t.Context(), "")
			if err != nil || len(left) != 0 {
				t.Errorf("objects left after Verify: %d, %v", len(left), err)
			}
		})
	}
}

func TestVerify_JSONShape(t *testing.T) {
	res := storage.Verify(t.Context(), storage.NewBucket(memstore.New(memstore.Options{Name: "m"})), "", nil)
	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]map[string]any
	if err := json.Unmarshal(data, &generic); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	want := []string{"bucketTestResult", "deleteTestResult", "modifyTestResult", "readTestResult", "writeTestResult"}
	if len(generic) != len(want) {
		t.Errorf("JSON has %d fields, want %d: %s", len(generic), len(want), data)
	}
	for _, k := range want {
		r, ok := generic[k]
		if !ok {
			t.Errorf("JSON lacks %q: %s", k, data)
			continue
		}
		if _, ok := r["passed"].(bool); !ok || len(r) != 2 {
			t.Errorf("%s = %v, want {message, passed}", k, r)
		}
		if _, ok := r["message"].(string); !ok {
			t.Errorf("%s.message is not a string: %v", k, r)
		}
	}
}

// faultyProvider makes chosen operations fail with a chosen error, or hang
// until their context ends.
type faultyProvider struct {
	storage.Provider
	fail map[string]error // by op: "check", "write", "read", "delete", "attributes"
	hang map[string]bool
}

func (p *faultyProvider) fault(ctx context.Context, op string) error {
	if p.hang[op] {
		<-ctx.Done()
		return ctx.Err()
	}
	return p.fail[op]
}

func (p *faultyProvider) CheckBucket(ctx context.Context) error {
	if err := p.fault(ctx, "check"); err != nil {
		return err
	}
	return p.Provider.CheckBucket(ctx)
}

func (p *faultyProvider) NewWriter(ctx context.Context, key string, o *storage.WriterOptions) (io.WriteCloser, error) {
	if err := p.fault(ctx, "write"); err != nil {
		return nil, err
	}
	return p.Provider.NewWriter(ctx, key, o)
}

func (p *faultyProvider) NewRangeReader(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := p.fault(ctx, "read"); err != nil {
		return nil, err
	}
	return p.Provider.NewRangeReader(ctx, key, off, n)
}

func (p *faultyProvider) Delete(ctx context.Context, key string) error {
	if err := p.fault(ctx, "delete"); err != nil {
		return err
	}
	return p.Provider.Delete(ctx, key)
}

func (p *faultyProvider) PermissionHint(op string) string { return "test:" + op }

// noDelete pretends to delete but keeps the object.
type noDelete struct{ storage.Provider }

func (noDelete) Delete(context.Context, string) error { return nil }

func TestVerify_Failures(t *testing.T) {
	const secret = "s3cr3t-value"
	tests := []struct {
		name  string
		fail  map[string]error
		hang  map[string]bool
		wrap  func(storage.Provider) storage.Provider
		want  [5]bool   // bucket, write, read, modify, delete passed
		words [5]string // a substring each message must contain
	}{
		{
			name:  "MissingBucket",
			fail:  map[string]error{"check": fmt.Errorf("no such bucket: %w", storage.NotFound)},
			words: [5]string{"bucket does not exist: mem://m", "skipped: bucket check failed", "skipped", "skipped", "skipped"},
		},
		{
			name:  "Unreachable",
			fail:  map[string]error{"check": fmt.Errorf("dial tcp 127.0.0.1:9: connect: connection refused: %w", storage.Unavailable)},
			words: [5]string{"cannot reach mem://m: dial tcp 127.0.0.1:9: connect: connection refused", "skipped", "skipped", "skipped", "skipped"},
		},
		{
			name:  "WrongSecret",
			fail:  map[string]error{"check": fmt.Errorf("signature for key with secret %s does not match: %w", secret, storage.Unauthenticated)},
			words: [5]string{"credentials rejected by mem://m while checking the bucket: check the test:credentials (", "skipped", "skipped", "skipped", "skipped"},
		},
		{
			name:  "ReadOnly",
			fail:  map[string]error{"write": fmt.Errorf("AccessDenied: %w", storage.PermissionDenied)},
			want:  [5]bool{true, false, false, false, false},
			words: [5]string{"reachable", "access denied writing rec/verify-", "skipped: write failed", "skipped: write failed", "skipped: write failed"},
		},
		{
			name:  "NoListButWrite",
			fail:  map[string]error{"check": fmt.Errorf("AccessDenied: %w", storage.PermissionDenied)},
			want:  [5]bool{false, true, true, true, true},
			words: [5]string{"check the credential's test:check permission", "wrote", "content equal", "new", "gone"},
		},
		{
			name:  "NoDeletePermission",
			fail:  map[string]error{"delete": fmt.Errorf("AccessDenied: %w", storage.PermissionDenied)},
			want:  [5]bool{true, true, true, true, false},
			words: [5]string{"", "", "", "", "test:delete"},
		},
		{
			name:  "ReadHangs",
			hang:  map[string]bool{"read": true},
			want:  [5]bool{true, true, false, false, true},
			words: [5]string{"", "", "timed out at mem://m", "300ms per check", "gone"},
		},
		{
			name:  "DeleteIgnored",
			wrap:  func(p storage.Provider) storage.Provider { return noDelete{p} },
			want:  [5]bool{true, true, true, true, false},
			words: [5]string{"", "", "", "", "still exists"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inner := memstore.New(memstore.Options{Name: "m"})
			var p storage.Provider = &faultyProvider{Provider: inner, fail: tc.fail, hang: tc.hang}
			if tc.wrap != nil {
				p = tc.wrap(p)
			}
			b := storage.NewBucket(p)
			start := time.Now()
			res := storage.Verify(t.Context(), b, "rec", &storage.VerifyOptions{CheckTimeout: 300 * time.Millisecond, Secrets: []string{secret}})
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Verify took %v", d)
			}
			got := []storage.CheckResult{res.Bucket, res.Write, res.Read, res.Modify, res.Delete}
			names := []string{"bucket", "write", "read", "modify", "delete"}
			for i, c := range got {
				if c.Passed != tc.want[i] {
					t.Errorf("%s: passed = %v, want %v (%q)", names[i], c.Passed, tc.want[i], c.Message)
				}
				if !strings.Contains(c.Message, tc.words[i]) {
					t.Errorf("%s: message %q does not contain %q", names[i], c.Message, tc.words[i])
				}
				if strings.Contains(c.Message, secret) {
					t.Errorf("%s: message echoes the secret: %q", names[i], c.Message)
				}
			}
			if res.OK() {
				t.Error("OK() = true with a failed check")
			}
			// Cleanup removed the object unless deleting is what fails.
			if tc.name != "NoDeletePermission" && tc.name != "DeleteIgnored" {
				if _, err := inner.Attributes(t.Context(), res.Key); !errors.Is(err, storage.NotFound) {
					t.Errorf("test object %s left behind: %v", res.Key, err)
				}
			}
		})
	}
}

func TestVerify_MissingDirectory(t *testing.T) {
	b, err := filestore.OpenBucket(t.Context(), filestore.Options{Dir: filepath.Join(t.TempDir(), "nope")})
	if err != nil {
		t.Fatal(err)
	}
	res := storage.Verify(t.Context(), b, "rec", nil)
	if res.Bucket.Passed || !strings.Contains(res.Bucket.Message, "bucket does not exist") {
		t.Errorf("bucket check = %+v", res.Bucket)
	}
	if res.Write.Message != "skipped: bucket check failed" {
		t.Errorf("write check = %+v", res.Write)
	}
}

func TestVerify_OverallTimeout(t *testing.T) {
	p := &faultyProvider{Provider: memstore.New(memstore.Options{Name: "m"}), hang: map[string]bool{"write": true}}
	start := time.Now()
	res := storage.Verify(t.Context(), storage.NewBucket(p), "rec", &storage.VerifyOptions{CheckTimeout: time.Minute, Timeout: 300 * time.Millisecond})
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Verify took %v with a 300ms overall timeout", d)
	}
	if !res.Bucket.Passed || res.Write.Passed || res.Read.Message != "skipped: write failed" {
		t.Errorf("result = %+v", res)
	}
	if !strings.Contains(res.Write.Message, "writing rec/verify-") || !strings.Contains(res.Write.Message, "timed out") {
		t.Errorf("write message %q does not name the key", res.Write.Message)
	}
}
