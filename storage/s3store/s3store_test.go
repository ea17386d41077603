package s3store

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/storagetest"
)

var bucketSeq atomic.Int64

// newTestBucket creates an empty bucket on g and returns its name.
func newTestBucket(t testing.TB, ctx context.Context, g *gateway) string {
	t.Helper()
	name := fmt.Sprintf("rec-%d-%d", time.Now().UnixNano()%1e9, bucketSeq.Add(1))
	p := newProvider(t, ctx, g.endpoint, name, rootAccess, rootSecret)
	if _, err := p.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("CreateBucket %s: %v", name, err)
	}
	return name
}

func newProvider(t testing.TB, ctx context.Context, endpoint, bucket, access, secret string) *Provider {
	t.Helper()
	p, err := New(ctx, Options{
		Bucket: bucket, Endpoint: endpoint, PathStyle: true, Region: "us-east-1",
		AccessKeyID: access, SecretAccessKey: secret, PartSize: 5 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// allowReadOnly grants the gateway's second account read and list on bucket.
func allowReadOnly(t testing.TB, ctx context.Context, g *gateway, bucket string) {
	t.Helper()
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":[%q]},`+
		`"Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::%s","arn:aws:s3:::%s/*"]}]}`,
		readOnlyAccess, bucket, bucket)
	p := newProvider(t, ctx, g.endpoint, bucket, rootAccess, rootSecret)
	if _, err := p.Client().PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(bucket), Policy: aws.String(policy)}); err != nil {
		t.Fatalf("PutBucketPolicy: %v", err)
	}
}

// closedEndpoint is the URL of a loopback port nobody listens on.
func closedEndpoint(t testing.TB) string {
	t.Helper()
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

func TestConformance(t *testing.T) {
	g := sharedGateway(t)
	var last string
	storagetest.RunConformanceTests(t, storagetest.Harness{
		NewProvider: func(ctx context.Context, t *testing.T) (storage.Provider, error) {
			last = newTestBucket(t, ctx, g)
			return newProvider(t, ctx, g.endpoint, last, rootAccess, rootSecret), nil
		},
		NewProviderWrongCredentials: func(ctx context.Context, t *testing.T) (storage.Provider, error) {
			return newProvider(t, ctx, g.endpoint, last, rootAccess, "not-the-secret"), nil
		},
		NewProviderReadOnly: func(ctx context.Context, t *testing.T) (storage.Provider, error) {
			allowReadOnly(t, ctx, g, last)
			return newProvider(t, ctx, g.endpoint, last, readOnlyAccess, readOnlySecret), nil
		},
		NewProviderUnreachable: func(ctx context.Context, t *testing.T) (storage.Provider, error) {
			return newProvider(t, ctx, closedEndpoint(t), "recordings", rootAccess, rootSecret), nil
		},
		SignedURLs:       true,
		ChecksSignatures: true,
		ContentType:      true,
		Metadata:         true,
		MD5:              true,
		ContentMD5:       true,
	})
}
