package s3store

import (
	"context"
	"crypto/rand"
	"runtime"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/rtcrec/recorder/storage"
)

// TestCancelAbortsMultipartUpload checks that a cancelled multipart write
// leaves no pending upload on the server, with or without Close.
func TestCancelAbortsMultipartUpload(t *testing.T) {
	g := sharedGateway(t)
	ctx := t.Context()
	bucket := g.NewBucket(ctx, t)
	p := newProvider(t, ctx, g.Endpoint, bucket, rootAccess, rootSecret)
	b := storage.NewBucket(p)
	defer b.Close()
	pending := func() int {
		out, err := p.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Uploads)
	}
	part := make([]byte, minPartSize)
	rand.Read(part)
	for _, closeIt := range []bool{true, false} {
		wctx, cancel := context.WithCancel(ctx)
		w, err := b.NewWriter(wctx, "abort/obj", &storage.WriterOptions{Size: -1})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 { // two parts sent, the third buffered
			if _, err := w.Write(part); err != nil {
				t.Fatal(err)
			}
		}
		if n := pending(); n != 1 {
			t.Fatalf("pending uploads while writing = %d, want 1", n)
		}
		cancel()
		if closeIt && w.Close() == nil {
			t.Fatal("Close after cancel succeeded")
		}
		deadline := time.Now().Add(5 * time.Second)
		for pending() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("close=%v: the multipart upload was not aborted", closeIt)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := b.Attributes(ctx, "abort/obj"); storage.Code(err) != storage.NotFound {
			t.Fatalf("close=%v: object after a cancelled write: %v", closeIt, err)
		}
	}
}

// TestClose_NoLeakedGoroutines checks that a closed provider leaves no
// connection goroutines behind (the service makes one per Verify call).
func TestClose_NoLeakedGoroutines(t *testing.T) {
	g := sharedGateway(t)
	ctx := t.Context()
	bucket := g.NewBucket(ctx, t)
	time.Sleep(100 * time.Millisecond)
	before := runtime.NumGoroutine()
	for range 5 {
		b := storage.NewBucket(newProvider(t, ctx, g.Endpoint, bucket, rootAccess, rootSecret))
		if res := storage.Verify(ctx, b, "leak", nil); !res.OK() {
			t.Fatalf("Verify: %+v", res)
		}
		b.Close()
	}
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: %d before, %d after closing 5 providers", before, runtime.NumGoroutine())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
