package gcsstore

import (
	"fmt"
	"testing"

	"github.com/rtcrec/recorder/storage/gcsstore/gcstest"
	"github.com/rtcrec/recorder/storage/internal/verifytest"
)

// go test -run '^$' -bench Upload100MiB -benchtime 3x ./storage/gcsstore
func BenchmarkUpload100MiB(b *testing.B) {
	e := gcstest.Start(b)
	for _, chunk := range []int{8 << 20, 16 << 20, 32 << 20} {
		b.Run(fmt.Sprintf("chunk=%dMiB", chunk>>20), func(b *testing.B) {
			bucket, err := OpenBucket(b.Context(), Options{Bucket: e.NewBucket(), CredentialsJSON: e.Account(false).JSON(b, e),
				Endpoint: e.Endpoint(), ChunkSize: chunk})
			if err != nil {
				b.Fatal(err)
			}
			defer bucket.Close()
			verifytest.BenchmarkUpload(b, bucket, 100<<20)
		})
	}
}
