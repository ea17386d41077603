package s3store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rtcrec/recorder/internal/testenv"
)

// The test gateway: versitygw (internal/s3gateway, its own Go module) built
// once and run as a subprocess on 127.0.0.1, stopped by PID in TestMain.
const (
	rootAccess     = "recorderroot"
	rootSecret     = "recorder-root-secret-0123456789"
	readOnlyAccess = "recorderreader"
	readOnlySecret = "recorder-reader-secret-0123456789"
)

// gateway is one running s3gateway process.
type gateway struct {
	cmd      *exec.Cmd
	endpoint string
	dir      string
	done     chan struct{}
}

var (
	gwOnce sync.Once
	gw     *gateway
	gwErr  error
	gwTmp  string // holds the built binary and the data directories
	gwMu   sync.Mutex
	gwAll  []*gateway
)

func TestMain(m *testing.M) {
	code := m.Run()
	gwMu.Lock()
	for _, g := range gwAll {
		g.stop()
	}
	gwMu.Unlock()
	if gwTmp != "" {
		os.RemoveAll(gwTmp)
	}
	os.Exit(code)
}

// sharedGateway returns the gateway shared by the tests of this process,
// starting it on first use. Without Go or with a failed build the test is
// skipped outside CI and fails under CI.
func sharedGateway(t testing.TB) *gateway {
	t.Helper()
	gwOnce.Do(func() { gw, gwErr = startGateway() })
	if gwErr != nil {
		testenv.Missing(t, "versitygw test gateway: "+gwErr.Error())
	}
	return gw
}

// gatewayBinary builds internal/s3gateway once per process (the Go build
// cache makes later builds take seconds).
var gatewayBinary = sync.OnceValues(func() (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp("", "recorder-s3gw-")
	if err != nil {
		return "", err
	}
	gwTmp = tmp
	bin := filepath.Join(tmp, "s3gateway")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, ".")
	cmd.Dir = filepath.Join("..", "..", "internal", "s3gateway")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build in %s: %v\n%s", cmd.Dir, err, out)
	}
	return bin, nil
})

// freeAddr returns a 127.0.0.1 address with a port nobody listens on now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	l.Close()
	return addr, nil
}

// startGateway runs a new gateway process and waits until it accepts connections.
func startGateway() (*gateway, error) {
	bin, err := gatewayBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(gwTmp, "data-")
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-addr", addr, "-dir", dir, "-access", rootAccess, "-secret", rootSecret,
		"-user-access", readOnlyAccess, "-user-secret", readOnlySecret)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	g := &gateway{cmd: cmd, endpoint: "http://" + addr, dir: dir, done: make(chan struct{})}
	gwMu.Lock()
	gwAll = append(gwAll, g)
	gwMu.Unlock()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "ready ") {
				close(ready)
			}
		}
	}()
	go func() { cmd.Wait(); close(g.done) }()
	select {
	case <-ready:
		return g, nil
	case <-g.done:
		return nil, fmt.Errorf("s3gateway exited: %s", stderr.String())
	case <-time.After(60 * time.Second):
		g.stop()
		return nil, errors.New("s3gateway not ready after 60 s")
	}
}

// stop ends the gateway process (SIGTERM, then SIGKILL after 5 s) by its PID.
func (g *gateway) stop() {
	select {
	case <-g.done:
		return
	default:
	}
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(5 * time.Second):
		g.cmd.Process.Kill()
		<-g.done
	}
}
