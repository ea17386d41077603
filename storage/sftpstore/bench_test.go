package sftpstore

import (
	"testing"

	"github.com/rtcrec/recorder/storage/internal/verifytest"
	"github.com/rtcrec/recorder/storage/sftpstore/sftptest"
)

// go test -run '^$' -bench Upload100MiB -benchtime 3x ./storage/sftpstore
func BenchmarkUpload100MiB(b *testing.B) {
	b.Run("InProcess", func(b *testing.B) {
		srv := sftptest.Start(b)
		bucket, err := OpenBucket(b.Context(), *inProcOptions(srv, sftptest.User))
		if err != nil {
			b.Fatal(err)
		}
		defer bucket.Close()
		verifytest.BenchmarkUpload(b, bucket, 100<<20)
	})
	b.Run("OpenSSH", func(b *testing.B) {
		srv := sftptest.StartOpenSSH(b)
		bucket, err := OpenBucket(b.Context(), *openSSHOptions(srv))
		if err != nil {
			b.Fatal(err)
		}
		defer bucket.Close()
		verifytest.BenchmarkUpload(b, bucket, 100<<20)
	})
}
