package upload

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtcrec/recorder/recorder/internal/dbtest"
	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/s3store"
	"github.com/rtcrec/recorder/storage/s3store/s3test"
)

// The S3 tests run the versitygw gateway of storage/s3store/s3test (it
// verifies SigV4) as a subprocess on 127.0.0.1, one per test, stopped by PID.
const (
	gwAccess = s3test.Access
	gwSecret = s3test.Secret
)

// s3Bucket returns a bucket on g with the given credentials.
func s3Bucket(t *testing.T, g *s3test.Gateway, name, access, secret string) *storage.Bucket {
	t.Helper()
	p, err := s3store.New(context.Background(), s3store.Options{
		Bucket: name, Endpoint: g.Endpoint, PathStyle: true,
		AccessKeyID: access, SecretAccessKey: secret, PartSize: 5 << 20, MaxAttempts: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	b := storage.NewBucket(p)
	t.Cleanup(func() { b.Close() })
	return b
}

// createS3Bucket creates the bucket name on g and returns it with the root
// credentials.
func createS3Bucket(t *testing.T, g *s3test.Gateway, name string) *storage.Bucket {
	t.Helper()
	g.CreateBucket(context.Background(), t, name)
	return s3Bucket(t, g, name, gwAccess, gwSecret)
}

// killingProvider kills the gateway once the first upload has written
// killAfter bytes, so the outage starts in the middle of a multipart upload.
type killingProvider struct {
	storage.Provider
	killAfter int64
	once      sync.Once
	kill      func()
}

func (k *killingProvider) NewWriter(ctx context.Context, key string, opts *storage.WriterOptions) (io.WriteCloser, error) {
	w, err := k.Provider.NewWriter(ctx, key, opts)
	if err != nil {
		return nil, err
	}
	return &killingWriter{WriteCloser: w, k: k}, nil
}

type killingWriter struct {
	io.WriteCloser
	k *killingProvider
	n int64
}

func (w *killingWriter) Write(p []byte) (int, error) {
	n, err := w.WriteCloser.Write(p)
	if w.n += int64(n); w.n >= w.k.killAfter {
		w.k.once.Do(w.k.kill)
	}
	return n, err
}

func randomFile(t *testing.T, dir, name string, n int) (string, []byte) {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func TestQueue_S3GatewayKilledDuringUploadLosesNothing(t *testing.T) {
	dbtest.NoLeaks(t)
	g := s3test.Start(t)
	verify := createS3Bucket(t, g, "recordings")

	restarted := make(chan error, 1)
	killed := make(chan struct{})
	t.Cleanup(func() { // never leave a gateway started after the test's own cleanup
		select {
		case <-killed:
			select {
			case <-restarted:
			case <-time.After(70 * time.Second):
			}
		default:
		}
	})
	p, err := s3store.New(context.Background(), s3store.Options{Bucket: "recordings", Endpoint: g.Endpoint, PathStyle: true,
		AccessKeyID: gwAccess, SecretAccessKey: gwSecret, PartSize: 5 << 20, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	kp := &killingProvider{Provider: p, killAfter: 12 << 20, kill: func() {
		g.Kill()
		close(killed)
		go func() { // the outage lasts a second, then the same server is back
			time.Sleep(time.Second)
			restarted <- g.Restart()
		}()
	}}
	b := storage.NewBucket(kp)
	defer b.Close()

	dir := t.TempDir()
	res := newResults()
	q, err := New(context.Background(), dbtest.Open(t, filepath.Join(dir, "recorder.db")), Options{
		Open:       func(string) (*storage.Bucket, error) { return b, nil },
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 400 * time.Millisecond,
		OnResult: res.add, ReportAfter: 1000, Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close(context.Background())
	files := []struct {
		name string
		size int
	}{{"mix.wav", 24 << 20}, {"tracks/a.ogg", 1 << 20}, {"manifest.json", 3000}}
	want := map[string][]byte{}
	for _, f := range files {
		path, data := randomFile(t, dir, strings.ReplaceAll(f.name, "/", "_"), f.size)
		key := "org1/conv1/rec1/" + f.name
		want[key] = data
		if err := q.Enqueue(context.Background(), Job{ID: key, RecordingID: "rec1", ApplicationID: "app1",
			LocalPath: path, Key: key, DeleteLocalAfter: true}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := q.Wait(ctx, "rec1"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-restarted:
		if err != nil {
			t.Fatalf("restarting the gateway: %v", err)
		}
		restarted <- nil // for the cleanup above
	default:
		t.Fatal("uploads finished although the gateway was never restarted")
	}
	retried := false
	for _, r := range res.list() {
		if r.Status != Uploaded {
			t.Errorf("result %+v", r)
			continue
		}
		retried = retried || r.Attempts > 1
		t.Logf("%s: %d bytes uploaded on attempt %d", r.Job.Key, r.Size, r.Attempts)
		if r.Location != verify.Location()+"/"+r.Job.Key {
			t.Errorf("location %q", r.Location)
		}
		if r.SHA256 != sha(want[r.Job.Key]) {
			t.Errorf("%s: sha256 %s, want %s", r.Job.Key, r.SHA256, sha(want[r.Job.Key]))
		}
		if _, err := os.Stat(r.Job.LocalPath); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: local file not deleted after the verified upload: %v", r.Job.Key, err)
		}
	}
	if !retried {
		t.Error("no upload needed a retry: the outage did not hit an upload")
	}
	for key, data := range want {
		checkObject(t, verify, key, data)
	}
}

func TestQueue_S3WrongProfileReportedThenFixed(t *testing.T) {
	dbtest.NoLeaks(t)
	g := s3test.Start(t)
	good := createS3Bucket(t, g, "recordings")
	tests := []struct {
		name     string
		bad      *storage.Bucket
		wantCode storage.ErrorCode
	}{
		{"wrong secret", s3Bucket(t, g, "recordings", gwAccess, "not-the-secret-0123456789"), storage.Unauthenticated},
		{"unknown access key", s3Bucket(t, g, "recordings", "nobody", gwSecret), storage.Unauthenticated},
		{"missing bucket", s3Bucket(t, g, "no-such-bucket", gwAccess, gwSecret), storage.NotFound},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			profile := tt.bad
			dir := t.TempDir()
			res := newResults()
			q, err := New(context.Background(), dbtest.Open(t, filepath.Join(dir, "recorder.db")), Options{
				Open: func(string) (*storage.Bucket, error) {
					mu.Lock()
					defer mu.Unlock()
					return profile, nil
				},
				PermanentRetry: time.Hour, OnResult: res.add, Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close(context.Background())
			path, data := randomFile(t, dir, "mix.wav", 200_000)
			key := fmt.Sprintf("org1/conv1/rec%d/mix.wav", i)
			if err := q.Enqueue(context.Background(), Job{ID: key, RecordingID: "rec", ApplicationID: "app1", LocalPath: path, Key: key}); err != nil {
				t.Fatal(err)
			}
			r := res.next(t)
			if r.Status != Failing || r.Code != tt.wantCode {
				t.Fatalf("result %v %v: %v; want Failing with %v", r.Status, r.Code, r.Err, tt.wantCode)
			}
			t.Logf("reported: %v", r.Err)

			mu.Lock()
			profile = good
			mu.Unlock()
			if err := q.Retry(context.Background(), "app1"); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := q.Wait(ctx, "rec"); err != nil {
				t.Fatal(err)
			}
			if r := res.next(t); r.Status != Uploaded || r.Attempts != 2 {
				t.Fatalf("result %+v, want Uploaded on attempt 2", r)
			}
			checkObject(t, good, key, data)
		})
	}
}
