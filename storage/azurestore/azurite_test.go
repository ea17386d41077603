package azurestore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/rtcrec/recorder/internal/testenv"
)

// The Azurite development account (public, documented by Microsoft).
const (
	azuriteAccount = "devstoreaccount1"
	azuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// azurite is an Azurite blob server started by the test on a loopback port.
type azurite struct {
	Endpoint string // http://127.0.0.1:PORT/devstoreaccount1
	n        atomic.Int64
}

// errNoAzurite says that azurite-blob is not installed.
var errNoAzurite = errors.New("azurite-blob is not installed (npm azurite@3.37.0; scripts/test-deps.sh installs it into .tools)")

// findAzurite looks for azurite-blob on PATH, then in the repository's .tools.
func findAzurite() (string, error) {
	if p, err := exec.LookPath("azurite-blob"); err == nil {
		return p, nil
	}
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", ".tools", "node_modules", ".bin", "azurite-blob")
	if _, err := os.Stat(p); err != nil {
		return "", errNoAzurite
	}
	return p, nil
}

// shared is the one Azurite of this test binary, started by the first test
// that needs it and stopped by TestMain.
var shared struct {
	once sync.Once
	az   *azurite
	err  error
	stop func()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.stop != nil {
		shared.stop()
	}
	os.Exit(code)
}

// sharedAzurite returns the package's Azurite, starting it if needed.
func sharedAzurite(t testing.TB) *azurite {
	t.Helper()
	shared.once.Do(func() { shared.az, shared.stop, shared.err = startAzurite() })
	switch {
	case errors.Is(shared.err, errNoAzurite):
		testenv.Missing(t, shared.err.Error())
	case shared.err != nil:
		t.Fatal(shared.err)
	}
	return shared.az
}

// startAzurite starts azurite-blob on a free loopback port, in memory, and
// waits until it answers.
func startAzurite() (*azurite, func(), error) {
	bin, err := findAzurite()
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir, err := os.MkdirTemp("", "azurite")
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(bin, "--blobHost", "127.0.0.1", "--blobPort", fmt.Sprint(port),
		"--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck", "--silent")
	cmd.Dir = dir // for anything it might write
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("start azurite-blob: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		cmd.Process.Kill()
		<-exited
		os.RemoveAll(dir)
	}
	a := &azurite{Endpoint: fmt.Sprintf("http://127.0.0.1:%d/%s", port, azuriteAccount)}
	// Ready when it answers HTTP (with an auth error: the request is unsigned).
	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-exited:
			stop()
			return nil, nil, fmt.Errorf("azurite-blob exited: %s", out.String())
		default:
		}
		if resp, err := client.Get(a.Endpoint + "?comp=list"); err == nil {
			resp.Body.Close()
			return a, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return nil, nil, fmt.Errorf("azurite-blob not ready after 30s: %s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Options returns driver options for container with the account key.
func (a *azurite) Options(container string) *Options {
	return &Options{AccountName: azuriteAccount, AccountKey: azuriteKey, Endpoint: a.Endpoint, Container: container}
}

// NewContainer creates a fresh container and returns its name.
func (a *azurite) NewContainer(ctx context.Context, t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("c%d-%d", time.Now().UnixNano()%1e9, a.n.Add(1))
	cred, err := container.NewSharedKeyCredential(azuriteAccount, azuriteKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := container.NewClientWithSharedKeyCredential(a.Endpoint+"/"+name, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, nil); err != nil {
		t.Fatalf("create container %s: %v", name, err)
	}
	return name
}

// ContainerSAS returns a container SAS token with the given permissions.
func (a *azurite) ContainerSAS(t testing.TB, name string, perms sas.ContainerPermissions) string {
	t.Helper()
	cred, err := container.NewSharedKeyCredential(azuriteAccount, azuriteKey)
	if err != nil {
		t.Fatal(err)
	}
	q, err := sas.BlobSignatureValues{
		Protocol:      sas.ProtocolHTTPSandHTTP,
		StartTime:     time.Now().Add(-5 * time.Minute).UTC(),
		ExpiryTime:    time.Now().Add(time.Hour).UTC(),
		Permissions:   perms.String(),
		ContainerName: name,
	}.SignWithSharedKey(cred)
	if err != nil {
		t.Fatal(err)
	}
	return q.Encode()
}

// blobTypeTransport adds the header Azure's Put Blob requires to PUT requests
// sent through signed URLs, as any client uploading to a SAS URL must.
type blobTypeTransport struct{}

func (blobTypeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPut {
		r = r.Clone(r.Context())
		r.Header.Set("x-ms-blob-type", "BlockBlob")
	}
	return http.DefaultTransport.RoundTrip(r)
}
