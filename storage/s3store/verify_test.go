package s3store

import (
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/s3store/s3test"
)

func TestVerify(t *testing.T) {
	g := sharedGateway(t)
	ctx := t.Context()
	healthy := g.NewBucket(ctx, t)
	readOnly := g.NewBucket(ctx, t)
	g.AllowReadOnly(ctx, t, readOnly)
	// A second gateway, stopped before the check: a server that went away.
	stopped, err := s3test.Launch()
	if err != nil {
		t.Fatal(err)
	}
	stoppedBucket := stopped.NewBucket(ctx, t)
	stopped.Stop()

	tests := []struct {
		name             string
		endpoint, bucket string
		access, secret   string
		want             [5]bool
		words            [5]string
	}{
		{"Healthy", g.Endpoint, healthy, rootAccess, rootSecret, [5]bool{true, true, true, true, true},
			[5]string{"exists and is reachable", "wrote", "content equal", "new", "gone"}},
		{"WrongSecret", g.Endpoint, healthy, rootAccess, "wrong-secret-value", [5]bool{},
			[5]string{"credentials rejected by " + g.Endpoint + "/" + healthy + " while checking the bucket: check the access key ID and secret access key", "skipped: bucket check failed", "skipped", "skipped", "skipped"}},
		{"MissingBucket", g.Endpoint, "no-such-bucket", rootAccess, rootSecret, [5]bool{},
			[5]string{"bucket does not exist: " + g.Endpoint + "/no-such-bucket", "skipped: bucket check failed", "skipped", "skipped", "skipped"}},
		{"ReadOnly", g.Endpoint, readOnly, readOnlyAccess, readOnlySecret, [5]bool{true},
			[5]string{"reachable", "access denied writing rec/app1/verify-", "skipped: write failed", "skipped: write failed", "skipped: write failed"}},
		{"StoppedServer", stopped.Endpoint, stoppedBucket, rootAccess, rootSecret, [5]bool{},
			[5]string{"cannot reach " + stopped.Endpoint + "/" + stoppedBucket + ": dial tcp " + strings.TrimPrefix(stopped.Endpoint, "http://") + ": connect: connection refused", "skipped", "skipped", "skipped", "skipped"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := storage.NewBucket(newProvider(t, ctx, tc.endpoint, tc.bucket, tc.access, tc.secret))
			defer b.Close()
			start := time.Now()
			res := storage.Verify(ctx, b, "rec/app1", &storage.VerifyOptions{Secrets: []string{tc.secret}})
			took := time.Since(start)
			if took > 10*time.Second {
				t.Errorf("Verify took %v", took)
			}
			got := []storage.CheckResult{res.Bucket, res.Write, res.Read, res.Modify, res.Delete}
			for i, name := range []string{"bucket", "write", "read", "modify", "delete"} {
				t.Logf("%-6s passed=%-5v %s", name, got[i].Passed, got[i].Message)
				if got[i].Passed != tc.want[i] {
					t.Errorf("%s: passed = %v, want %v", name, got[i].Passed, tc.want[i])
				}
				if !strings.Contains(got[i].Message, tc.words[i]) {
					t.Errorf("%s: message %q does not contain %q", name, got[i].Message, tc.words[i])
				}
				if strings.Contains(got[i].Message, tc.secret) {
					t.Errorf("%s: message echoes the secret", name)
				}
			}
			t.Logf("took %v", took.Round(time.Millisecond))
		})
	}
	// The healthy run left nothing behind.
	b := storage.NewBucket(newProvider(t, ctx, g.Endpoint, healthy, rootAccess, rootSecret))
	if objs, err := b.List(ctx, ""); err != nil || len(objs) != 0 {
		t.Errorf("objects left in %s: %d, %v", healthy, len(objs), err)
	}
}
