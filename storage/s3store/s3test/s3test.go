// Package s3test runs the versitygw S3 gateway (internal/s3gateway, its own
// Go module: versitygw v1.8.0 with its posix backend) for tests, as a child
// process on a free 127.0.0.1 port over a fresh directory. The gateway
// verifies SigV4 signatures and presigned URLs. It has two accounts: the root
// account (Access, Secret), which owns every bucket, and a second account
// (ReadOnlyAccess, ReadOnlySecret) that AllowReadOnly grants read and list on
// a bucket.
//
// The gateway binary is built once per test process into the user's cache
// directory (the Go build cache keeps later builds to a link). Processes are
// stopped by their PID when the test ends; Kill and Restart simulate an
// outage of the same server.
package s3test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/rtcrec/recorder/internal/testenv"
)

// The gateway's accounts and region. They exist only in test gateways.
const (
	Access         = "recorderroot"
	Secret         = "recorder-root-secret-0123456789"
	ReadOnlyAccess = "recorderreader"
	ReadOnlySecret = "recorder-reader-secret-0123456789"
	Region         = "us-east-1"
)

// ReadyTimeout bounds a gateway's start.
const ReadyTimeout = 60 * time.Second

// Gateway is one running versitygw process. Its address and directory stay
// the same across Kill and Restart.
type Gateway struct {
	Endpoint string // http://127.0.0.1:PORT
	Addr     string // 127.0.0.1:PORT
	Dir      string // the gateway's data and IAM directories

	bin     string
	removes bool // Stop removes Dir (Launch)
	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	n       atomic.Int64
}

// Start starts a gateway that is stopped (by PID) when the test ends. Without
// Go or with a failed build of the gateway it skips (fails under CI).
func Start(t testing.TB) *Gateway {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		testenv.Missing(t, "versitygw test gateway: "+err.Error())
	}
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	g := &Gateway{Endpoint: "http://" + addr, Addr: addr, Dir: t.TempDir(), bin: bin}
	t.Cleanup(g.Kill)
	if err := g.Restart(); err != nil {
		t.Fatal(err)
	}
	return g
}

// Launch starts a gateway outside any one test, for a gateway shared by a
// whole test binary: call Stop from TestMain (it also removes the gateway's
// directory).
func Launch() (*Gateway, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "recorder-s3gw-")
	if err != nil {
		return nil, err
	}
	g := &Gateway{Endpoint: "http://" + addr, Addr: addr, Dir: dir, bin: bin, removes: true}
	if err := g.Restart(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return g, nil
}

// Restart starts the gateway process (again, after Kill or Stop) on the same
// address and directory and waits until it accepts connections. Objects
// written before survive.
func (g *Gateway) Restart() error {
	cmd := exec.Command(g.bin, "-addr", g.Addr, "-dir", g.Dir, "-region", Region,
		"-access", Access, "-secret", Secret, "-user-access", ReadOnlyAccess, "-user-secret", ReadOnlySecret)
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
		return fmt.Errorf("s3test: s3gateway exited: %s", stderr.String())
	case <-time.After(ReadyTimeout):
		g.Kill()
		return fmt.Errorf("s3test: s3gateway not ready after %v", ReadyTimeout)
	}
}

// Kill ends the gateway process at once (SIGKILL, by PID), as a crash or a
// network outage would, and waits for it. It is safe to call at any time,
// more than once, and from any goroutine.
func (g *Gateway) Kill() { g.signal(syscall.SIGKILL, 0) }

// Stop ends the gateway process gracefully (SIGTERM, then SIGKILL after
// 5 s) and, for a Launch gateway, removes its directory.
func (g *Gateway) Stop() {
	g.signal(syscall.SIGTERM, 5*time.Second)
	if g.removes {
		os.RemoveAll(g.Dir)
	}
}

func (g *Gateway) signal(sig syscall.Signal, grace time.Duration) {
	g.mu.Lock()
	cmd, done := g.cmd, g.done
	g.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	cmd.Process.Signal(sig)
	if grace > 0 {
		select {
		case <-done:
			return
		case <-time.After(grace):
			cmd.Process.Kill()
		}
	}
	<-done
}

// Client returns an S3 client of the gateway with the given credentials
// (path-style addressing, one attempt).
func (g *Gateway) Client(access, secret string) *s3.Client {
	return s3.New(s3.Options{
		Region:           Region,
		BaseEndpoint:     aws.String(g.Endpoint),
		UsePathStyle:     true,
		Credentials:      credentials.NewStaticCredentialsProvider(access, secret, ""),
		RetryMaxAttempts: 1,
	})
}

// CreateBucket creates the bucket name, owned by the root account.
func (g *Gateway) CreateBucket(ctx context.Context, t testing.TB, name string) {
	t.Helper()
	if _, err := g.Client(Access, Secret).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("s3test: CreateBucket %s: %v", name, err)
	}
}

// NewBucket creates a fresh, empty bucket and returns its name.
func (g *Gateway) NewBucket(ctx context.Context, t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("rec-%d-%d", time.Now().UnixNano()%1e9, g.n.Add(1))
	g.CreateBucket(ctx, t, name)
	return name
}

// AllowReadOnly grants the read-only account s3:GetObject and s3:ListBucket
// on bucket, by bucket policy.
func (g *Gateway) AllowReadOnly(ctx context.Context, t testing.TB, bucket string) {
	t.Helper()
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":[%q]},`+
		`"Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::%s","arn:aws:s3:::%s/*"]}]}`,
		ReadOnlyAccess, bucket, bucket)
	_, err := g.Client(Access, Secret).PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(bucket), Policy: aws.String(policy)})
	if err != nil {
		t.Fatalf("s3test: PutBucketPolicy %s: %v", bucket, err)
	}
}

// FreeAddr returns a 127.0.0.1 address with a port nobody listened on a
// moment ago.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// ClosedEndpoint returns the URL of a loopback port nobody listens on: a
// server that is down.
func ClosedEndpoint(t testing.TB) string {
	t.Helper()
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

// Binary builds internal/s3gateway (once per process) and returns the path
// of the binary, in the user's cache directory. Concurrent test processes each
// build to a temporary name and rename it into place, so none ever runs a
// half-written binary.
var Binary = sync.OnceValues(func() (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("s3test: cannot locate the source tree")
	}
	src := filepath.Join(filepath.Dir(file), "..", "..", "..", "internal", "s3gateway")
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "recorder-test")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, "s3gateway-*.tmp")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", tmp.Name(), ".")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build in %s: %v\n%s", src, err, out)
	}
	bin := filepath.Join(dir, "s3gateway")
	if err := os.Rename(tmp.Name(), bin); err != nil {
		return "", err
	}
	return bin, nil
})
