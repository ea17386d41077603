package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/rtcrec/recorder/storage"
)

func TestErrorCode(t *testing.T) {
	api := func(code string) error {
		return fmt.Errorf("operation error S3: X: %w", &smithy.GenericAPIError{Code: code, Message: "m"})
	}
	status := func(s int) error {
		return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: s}}, Err: errors.New("x")}}
	}
	tests := []struct {
		err  error
		want storage.ErrorCode
	}{
		{api("NoSuchKey"), storage.NotFound},
		{api("NoSuchBucket"), storage.NotFound},
		{api("NotFound"), storage.NotFound},
		{api("AccessDenied"), storage.PermissionDenied},
		{api("InvalidAccessKeyId"), storage.Unauthenticated},
		{api("SignatureDoesNotMatch"), storage.Unauthenticated},
		{api("ExpiredToken"), storage.Unauthenticated},
		{api("InvalidRange"), storage.InvalidArgument},
		{api("BadDigest"), storage.DataLoss},
		{api("SlowDown"), storage.Unavailable},
		{api("QuotaExceeded"), storage.ResourceExhausted},
		{api("SomethingNew"), storage.Unknown},
		{status(404), storage.NotFound},
		{status(403), storage.PermissionDenied},
		{status(503), storage.Unavailable},
		{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, storage.Unavailable},
		{fmt.Errorf("send: %w", syscall.ECONNRESET), storage.Unavailable},
		{&net.DNSError{Err: "no such host", Name: "s3.invalid"}, storage.Unavailable},
		{fmt.Errorf("op: %w", context.Canceled), storage.Canceled},
		{fmt.Errorf("op: %w", context.DeadlineExceeded), storage.DeadlineExceeded},
		{fmt.Errorf("mismatch: %w", storage.DataLoss), storage.DataLoss},
		{errors.New("mystery"), storage.Unknown},
	}
	p := &Provider{}
	for _, tc := range tests {
		if got := p.ErrorCode(tc.err); got != tc.want {
			t.Errorf("ErrorCode(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestNew_Options(t *testing.T) {
	ctx := t.Context()
	if _, err := New(ctx, Options{}); err == nil {
		t.Error("New without a bucket succeeded")
	}
	if _, err := New(ctx, Options{Bucket: "b", SSE: "rot13"}); err == nil {
		t.Error("New with an unknown SSE mode succeeded")
	}
	p, err := New(ctx, Options{Bucket: "b", Endpoint: "http://user:pw@127.0.0.1:9000/?x=1", PartSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Location(); got != "http://127.0.0.1:9000/b" {
		t.Errorf("Location = %q (it must never carry credentials)", got)
	}
	if p.opts.PartSize != minPartSize {
		t.Errorf("PartSize = %d, want the S3 minimum %d", p.opts.PartSize, minPartSize)
	}
	p, _ = New(ctx, Options{Bucket: "b"})
	if got := p.Location(); got != "s3://b" {
		t.Errorf("Location = %q, want s3://b", got)
	}
}

// headerRecorder records the server-side-encryption headers of write requests.
type headerRecorder struct {
	mu   sync.Mutex
	seen []string // "METHOD sse kms-key-id"
}

func (h *headerRecorder) Do(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut || req.Method == http.MethodPost {
		h.mu.Lock()
		h.seen = append(h.seen, req.Method+" "+req.Header.Get("X-Amz-Server-Side-Encryption")+" "+
			req.Header.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"))
		h.mu.Unlock()
	}
	return http.DefaultClient.Do(req)
}

// TestSSE checks that writes ask for server-side encryption: PutObject and
// CreateMultipartUpload carry the headers (UploadPart and Complete must not).
// versitygw accepts and ignores them (it neither stores nor reports SSE), so the
// headers are checked on the wire; the round trip shows the server takes them.
func TestSSE(t *testing.T) {
	g := sharedGateway(t)
	ctx := t.Context()
	bucket := g.NewBucket(ctx, t)
	t.Setenv("AWS_CA_BUNDLE", "") // a custom client cannot take a CA bundle
	for _, tc := range []struct {
		sse, kmsKey string
		roundTrip   bool
	}{{SSEAES256, "", true}, {SSEKMS, "alias/recordings", false}} {
		t.Run(tc.sse, func(t *testing.T) {
			rec := &headerRecorder{}
			p, err := New(ctx, Options{Bucket: bucket, Endpoint: g.Endpoint, PathStyle: true, HTTPClient: rec,
				AccessKeyID: rootAccess, SecretAccessKey: rootSecret, SSE: tc.sse, SSEKMSKeyID: tc.kmsKey, PartSize: minPartSize})
			if err != nil {
				t.Fatal(err)
			}
			b := storage.NewBucket(p)
			defer b.Close()
			for _, size := range []int{100, 6 << 20} {
				key := fmt.Sprintf("sse/%s/%d", tc.sse, size)
				data := bytes.Repeat([]byte{7}, size)
				_, err := b.Upload(ctx, key, bytes.NewReader(data), nil)
				if !tc.roundTrip {
					continue
				}
				if err != nil {
					t.Fatalf("Upload %d bytes: %v", size, err)
				}
				if got, err := b.ReadAll(ctx, key); err != nil || !bytes.Equal(got, data) {
					t.Fatalf("ReadAll: %d bytes, %v", len(got), err)
				}
			}
			want := tc.sse + " " + tc.kmsKey
			// PutObject; CreateMultipartUpload (POST), parts (PUT), Complete (POST).
			if len(rec.seen) < 4 || rec.seen[0] != "PUT "+want || rec.seen[1] != "POST "+want {
				t.Fatalf("write requests = %q, want the first PUT and POST with %q", rec.seen, want)
			}
			for _, s := range rec.seen[2:] {
				if strings.TrimSpace(s) != "PUT" && strings.TrimSpace(s) != "POST" {
					t.Errorf("part or completion request carries SSE headers: %q", s)
				}
			}
		})
	}
}

// TestDefaultCredentialChain uses credentials from the environment, as the
// SDK's default chain finds them when Options has no static keys.
func TestDefaultCredentialChain(t *testing.T) {
	g := sharedGateway(t)
	ctx := t.Context()
	bucket := g.NewBucket(ctx, t)
	t.Setenv("AWS_ACCESS_KEY_ID", rootAccess)
	t.Setenv("AWS_SECRET_ACCESS_KEY", rootSecret)
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	p, err := New(ctx, Options{Bucket: bucket, Endpoint: g.Endpoint, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	b := storage.NewBucket(p)
	defer b.Close()
	if res := storage.Verify(ctx, b, "rec", nil); !res.OK() {
		t.Fatalf("Verify with environment credentials: %+v", res)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	p2, _ := New(ctx, Options{Bucket: bucket, Endpoint: g.Endpoint, PathStyle: true})
	if err := storage.NewBucket(p2).CheckBucket(ctx); storage.Code(err) != storage.Unauthenticated {
		t.Errorf("CheckBucket with a wrong secret from the environment: %v, want Unauthenticated", err)
	}
}
