package s3store

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/rtcrec/recorder/storage"
)

// BenchmarkUpload100MiB measures Bucket.Upload (multipart, 8 MiB parts, 4 in
// flight, then the size/MD5 check) of a 100 MiB object to the versitygw test
// gateway on loopback:
//
//	go test -run '^$' -bench Upload100MiB -benchtime 3x ./storage/s3store
func BenchmarkUpload100MiB(b *testing.B) {
	g := sharedGateway(b)
	ctx := b.Context()
	bucket := g.NewBucket(ctx, b)
	p, err := New(ctx, Options{Bucket: bucket, Endpoint: g.Endpoint, PathStyle: true, AccessKeyID: rootAccess, SecretAccessKey: rootSecret})
	if err != nil {
		b.Fatal(err)
	}
	bk := storage.NewBucket(p)
	defer bk.Close()
	data := make([]byte, 100<<20)
	rand.Read(data)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bk.Upload(ctx, "bench/100MiB", bytes.NewReader(data), &storage.WriterOptions{Size: int64(len(data))}); err != nil {
			b.Fatal(err)
		}
	}
}
