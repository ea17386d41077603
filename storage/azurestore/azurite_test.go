package azurestore

import (
	"context"
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
	azuriteAccount = "devstoreaccount1"
	azuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// azurite is an Azurite blob server started by the test on a loopback port.
type azurite struct {
	Endpoint string // http://127.0.0.1:PORT/devstoreaccount1
	n        atomic.Int64
}

// findAzurite looks for azurite-blob on PATH, then in the repository's .tools.
func findAzurite(t testing.TB) string {
	if p, err := exec.LookPath("azurite-blob"); err == nil {
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", ".tools", "node_modules", ".bin", "azurite-blob")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	testenv.Missing(t, "azurite-blob is not installed (npm azurite@3.37.0; scripts/test-deps.sh installs it into .tools)")
	return ""
}

func startAzurite(t testing.TB) *azurite {
	t.Helper()
	bin := findAzurite(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "--blobHost", "127.0.0.1", "--blobPort", fmt.Sprint(port),
		"--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck", "--silent")
	cmd.Dir = t.TempDir() // for anything it might write
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		testenv.Missing(t, "cannot start azurite-blob: "+err.Error())
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	a := &azurite{Endpoint: fmt.Sprintf("http://127.0.0.1:%d/%s", port, azuriteAccount)}
	// Ready when it answers HTTP (with an auth error: the request is unsigned).
	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-exited:
			t.Fatalf("azurite-blob exited: %s", out.String())
		default:
		}
		if resp, err := client.Get(a.Endpoint + "?comp=list"); err == nil {
			resp.Body.Close()
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("azurite-blob not ready after 30s: %s", out.String())
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
