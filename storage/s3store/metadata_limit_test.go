package s3store

import (
	"context"
	"strings"
	"testing"

	"github.com/rtcrec/recorder/storage"
)

// TestGateway_MetadataLimit probes the S3 gateway (versitygw, which checks
// SigV4) with user metadata of 1, 2, 3 and 9 KB: AWS refuses more than 2 KB
// of user-defined metadata (keys and values, UTF-8) per object.
func TestGateway_MetadataLimit(t *testing.T) {
	g := sharedGateway(t)
	ctx := context.Background()
	b := storage.NewBucket(newProvider(t, ctx, g.Endpoint, g.NewBucket(ctx, t), rootAccess, rootSecret))
	for _, n := range []int{1, 2, 3, 9} {
		meta := map[string]string{}
		for i := range n {
			meta["k"+string(rune('a'+i))] = strings.Repeat("v", 1024-2)
		}
		_, err := b.Upload(ctx, "obj", strings.NewReader("data"), &storage.WriterOptions{Metadata: meta, Size: 4})
		t.Logf("%d KB of metadata: %v", n, err)
	}
}
