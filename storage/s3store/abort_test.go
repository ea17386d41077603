package s3store

import (
	"context"
	"crypto/rand"
	"errors"
	"maps"
	"net"
	"slices"
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

// TestClose_ClosesItsConnections checks that a closed provider leaves none
// of the connections it dialled open (the service makes a provider per
// Verify call; each open connection keeps two net/http goroutines). It looks
// at this provider's own connections only: the process's goroutine count
// also moves with other tests' connections and Verify's default-client ones
// (CI, session 13: "10 before, 11 after").
func TestClose_ClosesItsConnections(t *testing.T) {
	g := sharedGateway(t)
	ctx := t.Context()
	bucket := g.NewBucket(ctx, t)
	for range 5 {
		p := newProvider(t, ctx, g.Endpoint, bucket, rootAccess, rootSecret)
		b := storage.NewBucket(p)
		if res := storage.Verify(ctx, b, "leak", nil); !res.OK() {
			t.Fatalf("Verify: %+v", res)
		}
		p.conns.mu.Lock()
		open := slices.Collect(maps.Keys(p.conns.conns))
		p.conns.mu.Unlock()
		if len(open) == 0 {
			t.Fatal("Verify left no connection of the provider open: nothing for Close to close")
		}
		b.Close()
		for _, c := range open {
			// Any call on a closed connection fails with net.ErrClosed;
			// clearing the deadline changes nothing on an open one.
			if err := c.Conn.SetReadDeadline(time.Time{}); !errors.Is(err, net.ErrClosed) {
				t.Errorf("connection %v -> %v is open after Close (of %d the provider had open)", c.LocalAddr(), c.RemoteAddr(), len(open))
			}
		}
		p.conns.mu.Lock()
		left := len(p.conns.conns)
		p.conns.mu.Unlock()
		if left != 0 {
			t.Errorf("the provider tracks %d connections after Close", left)
		}
	}
}
