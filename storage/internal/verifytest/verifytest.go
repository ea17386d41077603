// Package verifytest runs storage.Verify against a driver on a real server in
// the situations a storage admin meets (healthy, wrong secret, missing
// bucket, read-only credential, stopped server) and checks each of the five
// results and its message.
package verifytest

import (
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/storage"
)

// Case is one Verify run: a bucket in some state and what each check must say.
type Case struct {
	Name string
	// Bucket is opened by the test; Run closes it.
	Bucket *storage.Bucket
	// Secret must not appear in any message.
	Secret string
	// Want is whether bucket, write, read, modify and delete pass.
	Want [5]bool
	// Words must appear in the message of each check, in the same order.
	Words [5]string
}

// AllPass and HealthyWords are the Want and Words of a run where everything passes.
var (
	AllPass      = [5]bool{true, true, true, true, true}
	HealthyWords = [5]string{"exists and is reachable", "wrote", "content equal", "read back the new", "it is gone"}
)

// BucketFails returns the Words of a run whose bucket check fails with a
// message containing first: every later check is skipped.
func BucketFails(first string) [5]string {
	return [5]string{first, "skipped: bucket check failed", "skipped: bucket check failed", "skipped: bucket check failed", "skipped: bucket check failed"}
}

// WriteFails returns the Words of a run whose bucket check passes and whose
// write fails with a message containing write (a read-only credential).
func WriteFails(write string) [5]string {
	return [5]string{"exists and is reachable", write, "skipped: write failed", "skipped: write failed", "skipped: write failed"}
}

// MaxDuration bounds one Verify run: failures must come quickly.
const MaxDuration = 15 * time.Second

// Run runs Verify for each case under prefix "rec/app1" and checks the results.
func Run(t *testing.T, cases []Case) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			defer tc.Bucket.Close()
			start := time.Now()
			res := storage.Verify(t.Context(), tc.Bucket, "rec/app1", &storage.VerifyOptions{Secrets: []string{tc.Secret}})
			if took := time.Since(start); took > MaxDuration {
				t.Errorf("Verify took %v, want under %v", took, MaxDuration)
			}
			got := []storage.CheckResult{res.Bucket, res.Write, res.Read, res.Modify, res.Delete}
			for i, name := range []string{"bucket", "write", "read", "modify", "delete"} {
				t.Logf("%-6s passed=%-5v %s", name, got[i].Passed, got[i].Message)
				if got[i].Passed != tc.Want[i] {
					t.Errorf("%s: passed = %v, want %v", name, got[i].Passed, tc.Want[i])
				}
				if !strings.Contains(got[i].Message, tc.Words[i]) {
					t.Errorf("%s: message %q does not contain %q", name, got[i].Message, tc.Words[i])
				}
				if tc.Secret != "" && strings.Contains(got[i].Message, tc.Secret) {
					t.Errorf("%s: message echoes the secret", name)
				}
			}
			if res.OK() {
				left, err := tc.Bucket.List(t.Context(), "rec/")
				if err != nil || len(left) != 0 {
					t.Errorf("objects left after Verify: %d, %v", len(left), err)
				}
			}
		})
	}
}
