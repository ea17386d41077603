package s3store

import (
	"context"
	"testing"

	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/s3store/s3test"
	"github.com/rtcrec/recorder/storage/storagetest"
)

func newProvider(t testing.TB, ctx context.Context, endpoint, bucket, access, secret string) *Provider {
	t.Helper()
	p, err := New(ctx, Options{
		Bucket: bucket, Endpoint: endpoint, PathStyle: true, Region: "us-east-1",
		AccessKeyID: access, SecretAccessKey: secret, PartSize: 5 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConformance(t *testing.T) {
	g := sharedGateway(t)
	var last string
	storagetest.RunConformanceTests(t, storagetest.Harness{
		NewProvider: func(ctx context.Context, t *testing.T) (storage.Provider, error) {
			last = g.NewBucket(ctx, t)
			return newProvider(t, ctx, g.Endpoint, last, rootAccess, rootSecret), nil
		},
		NewProviderWrongCredentials: func(ctx context.Context, t *testing.T) (storage.Provider, error) {
			return newProvider(t, ctx, g.Endpoint, last, rootAccess, "not-the-secret"), nil
		},
		NewProviderReadOnly: func(ctx context.Context, t *testing.T) (storage.Provider, error) {
			g.AllowReadOnly(ctx, t, last)
			return newProvider(t, ctx, g.Endpoint, last, readOnlyAccess, readOnlySecret), nil
		},
		NewProviderUnreachable: func(ctx context.Context, t *testing.T) (storage.Provider, error) {
			return newProvider(t, ctx, s3test.ClosedEndpoint(t), "recordings", rootAccess, rootSecret), nil
		},
		SignedURLs:       true,
		ChecksSignatures: true,
		ContentType:      true,
		Metadata:         true,
		MD5:              true,
		ContentMD5:       true,
	})
}
