package gcsstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"cloud.google.com/go/auth"
	gcs "cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"

	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/gcsstore/gcstest"
	"github.com/rtcrec/recorder/storage/internal/verifytest"
)

// openTest opens a bucket on the emulator with the read-write account.
func openTest(t *testing.T, e *gcstest.Emulator, name string, chunkSize int) *storage.Bucket {
	t.Helper()
	b, err := OpenBucket(t.Context(), Options{Bucket: name, CredentialsJSON: e.Account(false).JSON(t, e),
		Endpoint: e.Endpoint(), ChunkSize: chunkSize})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestNew_RefusesOtherCredentials(t *testing.T) {
	tests := []struct {
		name  string
		creds string
		want  string
	}{
		{"NotJSON", "not json", "not JSON"},
		{"User", `{"type":"authorized_user","client_id":"x","client_secret":"y","refresh_token":"z"}`, "service-account key"},
		{"NoKey", `{"type":"service_account","client_email":"a@b"}`, "service-account key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(t.Context(), Options{Bucket: "b", CredentialsJSON: []byte(tc.creds)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error about %q", err, tc.want)
			}
			if strings.Contains(fmt.Sprint(err), "refresh_token") {
				t.Errorf("error echoes the credentials: %v", err)
			}
		})
	}
}

func TestChecksums(t *testing.T) {
	e := gcstest.Start(t)
	// 256 KiB chunks: a 1 MiB object goes up in four pieces of a resumable upload.
	b := openTest(t, e, e.NewBucket(), 256<<10)
	ctx := t.Context()
	for _, size := range []int{0, 1000, 1 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			data := bytes.Repeat([]byte{byte(size), 'g', 'c', 's'}, size/4)
			key := fmt.Sprintf("sum/%d", size)
			if _, err := b.Upload(ctx, key, bytes.NewReader(data), &storage.WriterOptions{Size: -1}); err != nil {
				t.Fatal(err)
			}
			a, err := b.Attributes(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if want := md5.Sum(data); !bytes.Equal(a.MD5, want[:]) {
				t.Errorf("MD5 = %x, want %x", a.MD5, want)
			}
			want := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))
			if a.CRC32C == nil || *a.CRC32C != want {
				t.Errorf("CRC32C = %v, want %08x", a.CRC32C, want)
			}
		})
	}
	wrong := md5.Sum([]byte("other"))
	for _, size := range []int{100, 1 << 20} {
		data := bytes.Repeat([]byte("x"), size)
		_, err := b.Upload(ctx, "sum/corrupt", bytes.NewReader(data), &storage.WriterOptions{Size: int64(size), ContentMD5: wrong[:]})
		if storage.Code(err) != storage.DataLoss {
			t.Errorf("Upload of %d bytes with a wrong ContentMD5: %v, want DataLoss", size, err)
		}
		if _, err := b.Attributes(ctx, "sum/corrupt"); storage.Code(err) != storage.NotFound {
			t.Errorf("object after a rejected upload: %v, want NotFound", err)
		}
	}
}

func TestErrorCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want storage.ErrorCode
	}{
		{"ObjectNotExist", gcs.ErrObjectNotExist, storage.NotFound},
		{"BucketNotExist", gcs.ErrBucketNotExist, storage.NotFound},
		{"403", &googleapi.Error{Code: 403}, storage.PermissionDenied},
		{"401", &googleapi.Error{Code: 401}, storage.Unauthenticated},
		{"416", &googleapi.Error{Code: 416}, storage.InvalidArgument},
		{"503", fmt.Errorf("retry failed: %w", &googleapi.Error{Code: 503}), storage.Unavailable},
		{"TokenRefused", &url.Error{Op: "Get", URL: "u", Err: &auth.Error{Response: &http.Response{StatusCode: 400}}}, storage.Unauthenticated},
		{"Refused", &url.Error{Op: "Get", URL: "u", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}, storage.Unavailable},
		{"Checksum", ErrChecksum, storage.DataLoss},
		{"Deadline", context.DeadlineExceeded, storage.DeadlineExceeded},
		{"Other", errors.New("x"), storage.Unknown},
	}
	var b bucket
	for _, tc := range tests {
		if got := b.ErrorCode(tc.err); got != tc.want {
			t.Errorf("%s: ErrorCode(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestVerify(t *testing.T) {
	e := gcstest.Start(t)
	name := e.NewBucket()
	open := func(acct *gcstest.Account, bucket, endpoint string) *storage.Bucket {
		b, err := OpenBucket(t.Context(), Options{Bucket: bucket, CredentialsJSON: acct.JSON(t, e), Endpoint: endpoint + "/storage/v1/"})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	impostor := gcstest.NewAccount(t, e.Account(false).Email, false)
	verifytest.Run(t, []verifytest.Case{
		{Name: "Healthy", Bucket: open(e.Account(false), name, e.URL),
			Want: verifytest.AllPass, Words: verifytest.HealthyWords},
		{Name: "WrongKey", Bucket: open(impostor, name, e.URL),
			Words: verifytest.BucketFails("credentials rejected by " + e.URL + "/" + name + " while checking the bucket: check the service account key")},
		{Name: "MissingBucket", Bucket: open(e.Account(false), "no-such-bucket", e.URL),
			Words: verifytest.BucketFails("bucket does not exist: " + e.URL + "/no-such-bucket")},
		{Name: "ReadOnly", Bucket: open(e.Account(true), name, e.URL),
			Want: [5]bool{true}, Words: verifytest.WriteFails("access denied writing rec/app1/verify-")},
		{Name: "StoppedServer", Bucket: open(e.Account(false), name, "http://127.0.0.1:1"),
			Words: verifytest.BucketFails("cannot reach http://127.0.0.1:1/" + name)},
	})
}

func TestCredentialsFile(t *testing.T) {
	e := gcstest.Start(t)
	f := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(f, e.Account(false).JSON(t, e), 0o600); err != nil {
		t.Fatal(err)
	}
	// The endpoint without its API path, as people write it.
	b, err := OpenBucket(t.Context(), Options{Bucket: e.NewBucket(), CredentialsFile: f, Endpoint: e.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.CheckBucket(t.Context()); err != nil {
		t.Fatalf("CheckBucket with a credentials file: %v", err)
	}
	if _, err := OpenBucket(t.Context(), Options{Bucket: "b", CredentialsFile: f + ".missing"}); err == nil {
		t.Error("OpenBucket with a missing credentials file succeeded")
	}
}

// TestCancelledWriteNeverCommits repeats a cancelled single-request upload
// over an existing object: closing the SDK's writer after the cancel used to
// end the request body cleanly now and then, committing the half written.
func TestCancelledWriteNeverCommits(t *testing.T) {
	e := gcstest.Start(t)
	b := openTest(t, e, e.NewBucket(), 0)
	ctx := t.Context()
	old := []byte("the old content")
	if _, err := b.Upload(ctx, "obj", bytes.NewReader(old), nil); err != nil {
		t.Fatal(err)
	}
	half := bytes.Repeat([]byte("h"), 1<<20)
	for i := range 30 {
		wctx, cancel := context.WithCancel(ctx)
		w, err := b.NewWriter(wctx, "obj", &storage.WriterOptions{Size: 2 << 20}) // one request: under a chunk
		if err != nil {
			t.Fatal(err)
		}
		w.Write(half)
		cancel()
		if err := w.Close(); err == nil {
			t.Fatalf("round %d: Close after cancel returned nil", i)
		}
		if got, err := b.ReadAll(ctx, "obj"); err != nil || !bytes.Equal(got, old) {
			t.Fatalf("round %d: object after a cancelled overwrite: %d bytes, %v; want the old %d bytes", i, len(got), err, len(old))
		}
	}
}
