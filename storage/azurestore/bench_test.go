package azurestore

import (
	"testing"

	"github.com/rtcrec/recorder/storage/internal/verifytest"
)

// go test -run '^$' -bench Upload100MiB -benchtime 3x ./storage/azurestore
func BenchmarkUpload100MiB(b *testing.B) {
	az := sharedAzurite(b)
	bucket, err := OpenBucket(b.Context(), *testOptions(az, az.NewContainer(b.Context(), b)))
	if err != nil {
		b.Fatal(err)
	}
	defer bucket.Close()
	verifytest.BenchmarkUpload(b, bucket, 100<<20)
}
