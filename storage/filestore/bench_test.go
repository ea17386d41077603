package filestore

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/rtcrec/recorder/storage"
)

// BenchmarkUpload100MiB measures Bucket.Upload of a 100 MiB object to a
// directory (temporary file, fsync, rename, sidecar, then the size/MD5 check):
//
//	go test -run '^$' -bench Upload100MiB -benchtime 3x ./storage/filestore
func BenchmarkUpload100MiB(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts Options
	}{{"Fsync", Options{}}, {"NoSync", Options{NoSync: true}}} {
		b.Run(tc.name, func(b *testing.B) {
			opts := tc.opts
			opts.Dir = b.TempDir()
			bk, err := OpenBucket(b.Context(), opts)
			if err != nil {
				b.Fatal(err)
			}
			data := make([]byte, 100<<20)
			rand.Read(data)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bk.Upload(b.Context(), "bench/100MiB", bytes.NewReader(data), &storage.WriterOptions{Size: int64(len(data))}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
