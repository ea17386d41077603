// Package azuritetest starts Azurite's blob service (npm azurite@3.37.0) for
// tests, on a free 127.0.0.1 port with in-memory storage. Azurite checks
// shared-key signatures and SAS tokens (tampered, expired, other-blob and
// wrong-permission SAS are refused with 403).
package azuritetest

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
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/rtcrec/recorder/internal/testenv"
)

// The Azurite development account (public, documented by Microsoft).
const (
	Account = "devstoreaccount1"
	Key     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// ErrNotInstalled says that azurite-blob was found neither on PATH nor in the
// repository's .tools.
var ErrNotInstalled = errors.New("azurite-blob is not installed (npm azurite@3.37.0; scripts/test-deps.sh installs it into .tools)")

// Azurite is a running Azurite blob service.
type Azurite struct {
	Endpoint string // http://127.0.0.1:PORT/devstoreaccount1
	n        atomic.Int64
}

// Find returns the path of azurite-blob: on PATH, else in .tools/node_modules/.bin.
func Find() (string, error) {
	if p, err := exec.LookPath("azurite-blob"); err == nil {
		return p, nil
	}
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "..", ".tools", "node_modules", ".bin", "azurite-blob")
	if _, err := os.Stat(p); err != nil {
		return "", ErrNotInstalled
	}
	return p, nil
}

// Start starts Azurite for one test and stops it when the test ends. It
// skips (fails under CI) when Azurite is not installed.
func Start(t testing.TB) *Azurite {
	t.Helper()
	a, stop, err := Launch()
	switch {
	case errors.Is(err, ErrNotInstalled):
		testenv.Missing(t, err.Error())
	case err != nil:
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return a
}

// Launch starts Azurite and waits until it answers; stop kills it (by PID)
// and removes its working directory. For a server shared by a whole test
// binary (call stop from TestMain).
func Launch() (a *Azurite, stop func(), err error) {
	bin, err := Find()
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
	stop = func() {
		cmd.Process.Kill()
		<-exited
		os.RemoveAll(dir)
	}
	a = &Azurite{Endpoint: fmt.Sprintf("http://127.0.0.1:%d/%s", port, Account)}
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

// ConnectionString returns an Azure storage connection string for the account.
func (a *Azurite) ConnectionString() string {
	return "DefaultEndpointsProtocol=http;AccountName=" + Account + ";AccountKey=" + Key + ";BlobEndpoint=" + a.Endpoint + ";"
}

// NewContainer creates a fresh container and returns its name.
func (a *Azurite) NewContainer(ctx context.Context, t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("c%d-%d", time.Now().UnixNano()%1e9, a.n.Add(1))
	cred, err := container.NewSharedKeyCredential(Account, Key)
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

// ContainerSAS returns a container SAS token (valid for an hour) with the given permissions.
func (a *Azurite) ContainerSAS(t testing.TB, name string, perms sas.ContainerPermissions) string {
	t.Helper()
	cred, err := container.NewSharedKeyCredential(Account, Key)
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

// BlobTypeTransport adds the header Azure's Put Blob requires to PUT
// requests, as any client uploading to a SAS URL must
// ("x-ms-blob-type: BlockBlob").
type BlobTypeTransport struct{}

// RoundTrip implements http.RoundTripper over http.DefaultTransport.
func (BlobTypeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPut && r.Header.Get("x-ms-blob-type") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("x-ms-blob-type", "BlockBlob")
	}
	return http.DefaultTransport.RoundTrip(r)
}
