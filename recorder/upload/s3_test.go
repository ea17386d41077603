package upload

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/recorder/internal/dbtest"
	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/s3store"
)

// The S3 tests run the versitygw gateway of internal/s3gateway (it verifies
// SigV4) as a subprocess on 127.0.0.1, one per test, stopped by PID.
const (
	gwAccess = "uploadroot"
	gwSecret = "upload-root-secret-0123456789"
)

// gwTmp holds the gateway binary; TestMain removes it.
var gwTmp string

func TestMain(m *testing.M) {
	code := m.Run()
	if gwTmp != "" {
		os.RemoveAll(gwTmp)
	}
	os.Exit(code)
}

// gatewayBinary builds internal/s3gateway once per test process.
var gatewayBinary = sync.OnceValues(func() (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "upload-s3gw-")
	if err != nil {
		return "", err
	}
	gwTmp = dir
	bin := filepath.Join(dir, "s3gateway")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, ".")
	cmd.Dir = filepath.Join("..", "..", "internal", "s3gateway")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build in %s: %v\n%s", cmd.Dir, err, out)
	}
	return bin, nil
})

// s3gw is one gateway that a test can kill and start again on the same
// address and data directory.
type s3gw struct {
	t    *testing.T
	bin  string
	addr string
	dir  string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func startGateway(t *testing.T) *s3gw {
	t.Helper()
	bin, err := gatewayBinary()
	if err != nil {
		testenv.Missing(t, "versitygw test gateway: "+err.Error())
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	g := &s3gw{t: t, bin: bin, addr: addr, dir: t.TempDir()}
	t.Cleanup(g.kill)
	if err := g.start(); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *s3gw) endpoint() string { return "http://" + g.addr }

// start runs the gateway process and waits until it accepts connections.
func (g *s3gw) start() error {
	cmd := exec.Command(g.bin, "-addr", g.addr, "-dir", g.dir, "-access", gwAccess, "-secret", gwSecret)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	done, ready := make(chan struct{}), make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "ready ") {
				close(ready)
			}
		}
	}()
	go func() { cmd.Wait(); close(done) }()
	g.mu.Lock()
	g.cmd, g.done = cmd, done
	g.mu.Unlock()
	select {
	case <-ready:
		return nil
	case <-done:
		return fmt.Errorf("s3gateway exited: %s", stderr.String())
	case <-time.After(60 * time.Second):
		g.kill()
		return errors.New("s3gateway not ready after 60 s")
	}
}

// kill ends the gateway process at once (SIGKILL, by PID), as a crash or a
// network outage would, and waits for it.
func (g *s3gw) kill() {
	g.mu.Lock()
	cmd, done := g.cmd, g.done
	g.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// bucket returns a bucket on the gateway with the given credentials.
func (g *s3gw) bucket(t *testing.T, name, access, secret string) *storage.Bucket {
	t.Helper()
	p, err := s3store.New(context.Background(), s3store.Options{
		Bucket: name, Endpoint: g.endpoint(), PathStyle: true,
		AccessKeyID: access, SecretAccessKey: secret, PartSize: 5 << 20, MaxAttempts: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	b := storage.NewBucket(p)
	t.Cleanup(func() { b.Close() })
	return b
}

func (g *s3gw) createBucket(t *testing.T, name string) *storage.Bucket {
	t.Helper()
	b := g.bucket(t, name, gwAccess, gwSecret)
	p, _ := s3store.New(context.Background(), s3store.Options{Bucket: name, Endpoint: g.endpoint(), PathStyle: true,
		AccessKeyID: gwAccess, SecretAccessKey: gwSecret})
	if _, err := p.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("CreateBucket %s: %v", name, err)
	}
	p.Close()
	return b
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
	g := startGateway(t)
	verify := g.createBucket(t, "recordings")

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
	p, err := s3store.New(context.Background(), s3store.Options{Bucket: "recordings", Endpoint: g.endpoint(), PathStyle: true,
		AccessKeyID: gwAccess, SecretAccessKey: gwSecret, PartSize: 5 << 20, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	kp := &killingProvider{Provider: p, killAfter: 12 << 20, kill: func() {
		g.kill()
		close(killed)
		go func() { // the outage lasts a second, then the same server is back
			time.Sleep(time.Second)
			restarted <- g.start()
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
	g := startGateway(t)
	good := g.createBucket(t, "recordings")
	tests := []struct {
		name     string
		bad      *storage.Bucket
		wantCode storage.ErrorCode
	}{
		{"wrong secret", g.bucket(t, "recordings", gwAccess, "not-the-secret-0123456789"), storage.Unauthenticated},
		{"unknown access key", g.bucket(t, "recordings", "nobody", gwSecret), storage.Unauthenticated},
		{"missing bucket", g.bucket(t, "no-such-bucket", gwAccess, gwSecret), storage.NotFound},
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
