package verifytest

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/rtcrec/recorder/storage"
)

// BenchmarkUpload measures Bucket.Upload of one size-byte object (written,
// then verified by size and checksum), overwriting the same key each round.
// Run with -benchtime=Nx: each round moves size bytes.
func BenchmarkUpload(b *testing.B, bucket *storage.Bucket, size int) {
	data := make([]byte, size)
	rand.Read(data)
	ctx := b.Context()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := bucket.Upload(ctx, "bench/upload.bin", bytes.NewReader(data), &storage.WriterOptions{Size: int64(size)}); err != nil {
			b.Fatal(err)
		}
	}
}
