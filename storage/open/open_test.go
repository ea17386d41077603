package open

import (
	"context"
	"strings"
	"testing"

	"github.com/rtcrec/recorder/storage"
)

func TestBucket_Providers(t *testing.T) {
	signed := map[string]bool{}
	opts := Options{LocalDir: t.TempDir(), SignURL: func(prefix string) SignFunc {
		signed[prefix] = true
		return func(context.Context, string, *storage.SignedURLOptions) (string, error) { return "", nil }
	}}
	tests := []struct {
		p    storage.Profile
		want string // in Location()
	}{
		{storage.Profile{Provider: storage.ProviderLocal}, "file://"},
		{storage.Profile{Provider: storage.ProviderS3, Bucket: "b1", Region: "us-east-1", Endpoint: "http://127.0.0.1:9", PathStyle: true, AccessKeyID: "a", SecretAccessKey: "s3cret"}, "b1"},
		{storage.Profile{Provider: storage.ProviderAzure, AccountName: "devstoreaccount1", AccountKey: "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==", Container: "c1", Endpoint: "http://127.0.0.1:9/devstoreaccount1"}, "c1"},
		{storage.Profile{Provider: storage.ProviderSFTP, Host: "127.0.0.1", Port: 9, User: "u", Password: "p", HostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl", Dir: "rec", Prefix: "sftp-prefix"}, "sftp://"},
	}
	open := For(opts)
	for _, tt := range tests {
		b, err := open(context.Background(), "app", &tt.p)
		if err != nil {
			t.Errorf("%s: %v", tt.p.Provider, err)
			continue
		}
		if loc := b.Location(); !strings.Contains(loc, tt.want) || strings.Contains(loc, "s3cret") {
			t.Errorf("%s: Location %q", tt.p.Provider, loc)
		}
		b.Close()
	}
	if !signed["sftp-prefix"] {
		t.Error("the SFTP profile's prefix was not given to SignURL")
	}
	_, err := open(context.Background(), "app", &storage.Profile{Provider: "FTP"})
	if err == nil || !strings.Contains(err.Error(), "app") || !strings.Contains(err.Error(), "FTP") {
		t.Errorf("unknown provider: %v, want an error naming the application and the provider", err)
	}
}
