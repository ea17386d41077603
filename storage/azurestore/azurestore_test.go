package azurestore

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/azurestore/azuritetest"
	"github.com/rtcrec/recorder/storage/storagetest"
)

func TestConformance_Azurite(t *testing.T) {
	az := sharedAzurite(t)
	var last string
	storagetest.RunConformanceTests(t, storagetest.Harness{
		NewProvider: func(ctx context.Context, t *testing.T) (storage.Provider, error) {
			last = az.NewContainer(ctx, t)
			return New(ctx, *testOptions(az, last))
		},
		NewProviderWrongCredentials: func(context.Context, *testing.T) (storage.Provider, error) {
			o := testOptions(az, last)
			o.AccountKey = "d3Jvbmcga2V5IHdyb25nIGtleSB3cm9uZyBrZXkgd3Jvbmcga2V5IQ=="
			return New(context.Background(), *o)
		},
		NewProviderReadOnly: func(_ context.Context, t *testing.T) (storage.Provider, error) {
			return New(t.Context(), Options{Endpoint: az.Endpoint, Container: last,
				SASToken: az.ContainerSAS(t, last, sas.ContainerPermissions{Read: true, List: true})})
		},
		NewProviderUnreachable: func(context.Context, *testing.T) (storage.Provider, error) {
			o := testOptions(az, last)
			o.Endpoint = "http://127.0.0.1:1/" + azuritetest.Account
			return New(context.Background(), *o)
		},
		SignedURLs:       true,
		ChecksSignatures: true,
		HTTPClient:       &http.Client{Timeout: 30 * time.Second, Transport: azuritetest.BlobTypeTransport{}},
		Metadata:         true,
		ContentType:      true,
		MD5:              true,
		ContentMD5:       true,
	})
}
