package s3test_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/rtcrec/recorder/storage/s3store/s3test"
)

// TestGateway_KillRestartKeepsObjectsAndAccounts kills the gateway, checks
// that it is down, restarts it on the same address and directory, and reads
// back what was written before, with both accounts; the read-only account
// may not write.
func TestGateway_KillRestartKeepsObjectsAndAccounts(t *testing.T) {
	g := s3test.Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	bucket := g.NewBucket(ctx, t)
	g.AllowReadOnly(ctx, t, bucket)
	root, reader := g.Client(s3test.Access, s3test.Secret), g.Client(s3test.ReadOnlyAccess, s3test.ReadOnlySecret)
	put := func(c *s3.Client, key, body string) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)})
		return err
	}
	get := func(c *s3.Client, key string) (string, error) {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			return "", err
		}
		defer out.Body.Close()
		b, err := io.ReadAll(out.Body)
		return string(b), err
	}
	if err := put(root, "a/b.txt", "before the outage"); err != nil {
		t.Fatal(err)
	}

	g.Kill()
	if _, err := get(root, "a/b.txt"); err == nil {
		t.Fatal("GET succeeded on a killed gateway")
	}
	if err := g.Restart(); err != nil {
		t.Fatalf("restart on the same directory: %v", err)
	}
	for name, c := range map[string]*s3.Client{"root": root, "read-only": reader} {
		if got, err := get(c, "a/b.txt"); err != nil || got != "before the outage" {
			t.Errorf("%s after the restart: %q, %v", name, got, err)
		}
	}
	var apiErr smithy.APIError
	if err := put(reader, "a/c.txt", "x"); !errors.As(err, &apiErr) || apiErr.ErrorCode() != "AccessDenied" {
		t.Errorf("read-only account PUT: %v, want AccessDenied", err)
	}
	wrong := g.Client(s3test.Access, "not-the-secret-0123456789")
	if _, err := get(wrong, "a/b.txt"); !errors.As(err, &apiErr) || apiErr.ErrorCode() != "SignatureDoesNotMatch" {
		t.Errorf("wrong secret: %v, want SignatureDoesNotMatch", err)
	}
}
