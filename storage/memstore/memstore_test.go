package memstore

import (
	"context"
	"testing"

	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.RunConformanceTests(t, storagetest.Harness{
		NewProvider: func(ctx context.Context, t *testing.T) (storage.Provider, error) {
			return New(Options{Name: t.Name()}), nil
		},
		ContentType: true,
		Metadata:    true,
		MD5:         true,
		ContentMD5:  true,
	})
}
