package sftpstore

import (
	"testing"

	"github.com/rtcrec/recorder/storage/internal/verifytest"
)

// go test -run '^$' -bench Upload100MiB -benchtime 3x ./storage/sftpstore
func BenchmarkUpload100MiB(b *testing.B) {
	b.Run("InProcess", func(b *testing.B) {
		srv := startInProcServer(b)
		bucket, err := OpenBucket(srv.Options(testUser))
		if err != nil {
			b.Fatal(err)
		}
		defer bucket.Close()
		verifytest.BenchmarkUpload(b, bucket, 100<<20)
	})
	b.Run("OpenSSH", func(b *testing.B) {
		srv := startSSHD(b)
		bucket, err := OpenBucket(srv.Options())
		if err != nil {
			b.Fatal(err)
		}
		defer bucket.Close()
		verifytest.BenchmarkUpload(b, bucket, 100<<20)
	})
}
