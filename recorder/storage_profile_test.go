package recorder

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/rtcrec/recorder/config/configfile"
	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/azurestore"
	"github.com/rtcrec/recorder/storage/azurestore/azuritetest"
	"github.com/rtcrec/recorder/storage/open"
)

// TestOpenBucket_AzureSASToken configures an Azure profile by its sasToken
// key alone and records through it on Azurite: the token reaches the
// driver, uploads and Verify work, a read-only token is refused writes, and
// signing URLs (which needs the account key) says so.
func TestOpenBucket_AzureSASToken(t *testing.T) {
	az := azuritetest.Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	container := az.NewContainer(ctx, t)
	full := az.ContainerSAS(t, container, sas.ContainerPermissions{Read: true, Add: true, Create: true, Write: true, Delete: true, List: true})
	readOnly := az.ContainerSAS(t, container, sas.ContainerPermissions{Read: true, List: true})

	cfg, err := configfile.Parse([]byte(`
applications:
  app1:
    storage:
      provider: AZURE_BLOB
      container: ` + container + `
      endpoint: ` + az.Endpoint + `
      prefix: rec
      sasToken: "` + full + `"
`))
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Profile("app1")
	if p.SASToken != full {
		t.Fatalf("sasToken parsed as %q", p.SASToken)
	}
	if !slices.Contains(p.Secrets(), full) {
		t.Errorf("Secrets() = %d strings, without the SAS token", len(p.Secrets()))
	}
	base, _ := url.Parse("http://127.0.0.1:8080")
	openBucket := open.For(open.Options{LocalDir: t.TempDir(), SignURL: (&Attachments{Base: base, Signer: storage.NewURLSigner([]byte("k"))}).SignKeyFunc})
	b, err := openBucket(ctx, "app1", p)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	sig := url.Values{}
	if q, err := url.ParseQuery(full); err == nil {
		sig = q
	}
	if loc := b.Location(); strings.Contains(loc, "sig=") || sig.Get("sig") != "" && strings.Contains(loc, sig.Get("sig")) {
		t.Errorf("Location %q shows the SAS", loc)
	}

	data := bytes.Repeat([]byte("recording "), 1000)
	if _, err := b.Upload(ctx, "rec/a/mix.wav", bytes.NewReader(data), &storage.WriterOptions{Size: int64(len(data))}); err != nil {
		t.Fatalf("upload with the SAS token: %v", err)
	}
	if got, err := b.ReadAll(ctx, "rec/a/mix.wav"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %d bytes, %v", len(got), err)
	}
	res := storage.Verify(ctx, b, p.Prefix, &storage.VerifyOptions{Secrets: p.Secrets()})
	if !res.OK() {
		t.Errorf("Verify with the SAS token: %+v", res)
	}
	_, err = b.SignedURL(ctx, "rec/a/mix.wav", &storage.SignedURLOptions{Method: http.MethodGet, Expiry: time.Minute})
	if !errors.Is(err, azurestore.ErrNoAccountKey) {
		t.Errorf("SignedURL with a SAS-only profile: %v, want ErrNoAccountKey", err)
	}

	ro := *p
	ro.SASToken = readOnly
	rb, err := openBucket(ctx, "app1", &ro)
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	res = storage.Verify(ctx, rb, p.Prefix, &storage.VerifyOptions{Secrets: ro.Secrets()})
	if !res.Bucket.Passed || res.Write.Passed || !strings.Contains(res.Write.Message, "SAS c and w") {
		t.Errorf("Verify with a read-only SAS: bucket %+v, write %+v", res.Bucket, res.Write)
	}
	for _, m := range []string{res.Bucket.Message, res.Write.Message} {
		if strings.Contains(m, readOnly) || strings.Contains(m, "sig=") {
			t.Errorf("message shows the SAS: %s", m)
		}
	}
	t.Logf("read-only SAS: %s", res.Write.Message)
}
