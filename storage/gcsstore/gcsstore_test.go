package gcsstore

import (
	"context"
	"testing"

	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/gcsstore/gcstest"
	"github.com/rtcrec/recorder/storage/storagetest"
)

func TestConformance_FakeGCS(t *testing.T) {
	e := gcstest.Start(t)
	var last string
	with := func(ctx context.Context, creds []byte, endpoint string) (storage.Provider, error) {
		return New(ctx, Options{Bucket: last, CredentialsJSON: creds, Endpoint: endpoint + "/storage/v1/"})
	}
	storagetest.RunConformanceTests(t, storagetest.Harness{
		NewProvider: func(ctx context.Context, t *testing.T) (storage.Provider, error) {
			last = e.NewBucket()
			return with(ctx, e.Account(false).JSON(t, e), e.URL)
		},
		NewProviderWrongCredentials: func(ctx context.Context, t *testing.T) (storage.Provider, error) {
			impostor := gcstest.NewAccount(t, e.Account(false).Email, false) // right name, wrong key
			return with(ctx, impostor.JSON(t, e), e.URL)
		},
		NewProviderReadOnly: func(ctx context.Context, t *testing.T) (storage.Provider, error) {
			return with(ctx, e.Account(true).JSON(t, e), e.URL)
		},
		NewProviderUnreachable: func(ctx context.Context, t *testing.T) (storage.Provider, error) {
			return with(ctx, e.Account(false).JSON(t, e), "http://127.0.0.1:1")
		},
		SignedURLs:       true,
		ChecksSignatures: true,
		Metadata:         true,
		ContentType:      true,
		MD5:              true,
		ContentMD5:       true,
	})
}
