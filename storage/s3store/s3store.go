// Package s3store is the storage.Provider for Amazon S3 and S3-compatible
// servers (MinIO, Ceph RGW, versitygw, …), over aws-sdk-go-v2.
//
// Objects smaller than Options.PartSize go up in one PutObject with a
// Content-MD5 (so S3 rejects corrupted bodies and the ETag is the MD5); larger or
// unknown-size objects go up as a multipart upload whose parts are sent in
// parallel while the caller writes. A write cancelled before Close aborts the
// multipart upload (or never sends the PutObject), so no object appears.
// Signed URLs are S3 presigned URLs (SigV4, query-string auth).
package s3store

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/rtcrec/recorder/storage"
)

// Server-side encryption modes for Options.SSE.
const (
	SSEAES256 = "AES256"  // S3-managed keys (SSE-S3)
	SSEKMS    = "aws:kms" // KMS keys (SSE-KMS); ETags are then not MD5s
)

// Options configure a Provider.
type Options struct {
	// Bucket is the bucket name. Required.
	Bucket string
	// Region is the signing region; default the SDK's (AWS_REGION, shared
	// config), else "us-east-1".
	Region string
	// Endpoint is the base URL of an S3-compatible server
	// ("http://127.0.0.1:9000"); empty means AWS.
	Endpoint string
	// PathStyle addresses buckets as endpoint/bucket/key instead of bucket.endpoint/key.
	PathStyle bool
	// AccessKeyID and SecretAccessKey (and SessionToken) are static
	// credentials; when AccessKeyID is empty the SDK's default chain is used
	// (environment, shared config, web identity, ECS/EC2 roles).
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// SSE is the server-side encryption: "", SSEAES256 or SSEKMS.
	SSE string
	// SSEKMSKeyID is the KMS key for SSEKMS; empty means the account's default key.
	SSEKMSKeyID string
	// PartSize is the multipart part size and the single-request threshold;
	// default 8 MiB, minimum 5 MiB.
	PartSize int64
	// Concurrency is the number of parts uploaded at once per writer; default 4.
	Concurrency int
	// HTTPClient sends the requests (an *http.Client or the SDK's
	// BuildableClient); nil means a client with dial and response-header
	// timeouts, so an unreachable server fails fast. With AWS_CA_BUNDLE set
	// in the environment it must be a *awshttp.BuildableClient.
	HTTPClient aws.HTTPClient
	// MaxAttempts bounds retries of one request; default 3.
	MaxAttempts int
}

// Provider is an S3 bucket. Use New to make one.
type Provider struct {
	opts    Options
	client  *s3.Client
	presign *s3.PresignClient
	parts   sync.Pool // of *[]byte with capacity PartSize
	conns   *connSet  // connections of the default HTTP client
}

const minPartSize = 5 << 20

// New returns a provider for opts.Bucket. It does not contact the server; use
// CheckBucket (or storage.Verify) for that.
func New(ctx context.Context, opts Options) (*Provider, error) {
	if opts.Bucket == "" {
		return nil, errors.New("s3store: no bucket name")
	}
	switch opts.SSE {
	case "", SSEAES256, SSEKMS:
	default:
		return nil, fmt.Errorf("s3store: unknown server-side encryption %q (want %q or %q)", opts.SSE, SSEAES256, SSEKMS)
	}
	if opts.PartSize == 0 {
		opts.PartSize = 8 << 20
	}
	opts.PartSize = max(opts.PartSize, minPartSize)
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 3
	}
	conns := &connSet{}
	if opts.HTTPClient == nil {
		opts.HTTPClient = defaultHTTPClient(conns)
	}
	loadOpts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(opts.HTTPClient),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = opts.MaxAttempts
				// A short backoff: a dead server must fail in seconds
				// (Verify, uploads falling back to a backup), and no
				// retry quota, whose exhaustion hides the real error.
				o.MaxBackoff = time.Second
				o.RateLimiter = ratelimit.None
			})
		}),
	}
	if opts.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(opts.Region))
	}
	if opts.AccessKeyID != "" {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(opts.AccessKeyID, opts.SecretAccessKey, opts.SessionToken)))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("s3store: loading AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = opts.PathStyle
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		// We send Content-MD5 ourselves; no trailing CRC checksums, which
		// not every S3-compatible server accepts, and none on ranged reads.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	return &Provider{opts: opts, client: client, presign: s3.NewPresignClient(client), conns: conns}, nil
}

// OpenBucket returns a *storage.Bucket over New(ctx, opts).
func OpenBucket(ctx context.Context, opts Options) (*storage.Bucket, error) {
	p, err := New(ctx, opts)
	if err != nil {
		return nil, err
	}
	return storage.NewBucket(p), nil
}

// defaultHTTPClient is the SDK's client (which honours AWS_CA_BUNDLE) with
// shorter timeouts, dialling through conns so that Close can end its
// connections (the SDK's client copies its transport and offers no way to
// close idle connections).
func defaultHTTPClient(conns *connSet) aws.HTTPClient {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return awshttp.NewBuildableClient().
		WithTransportOptions(func(tr *http.Transport) {
			tr.DialContext = conns.dialer(d)
			tr.ResponseHeaderTimeout = 60 * time.Second
			tr.TLSHandshakeTimeout = 10 * time.Second
			tr.MaxIdleConnsPerHost = 16
		})
}

// connSet tracks the open connections of a provider's default HTTP client.
type connSet struct {
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

func (s *connSet) dialer(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: c, set: s}
		s.mu.Lock()
		if s.conns == nil {
			s.conns = make(map[*trackedConn]struct{})
		}
		s.conns[tc] = struct{}{}
		s.mu.Unlock()
		return tc, nil
	}
}

// closeAll closes every tracked connection.
func (s *connSet) closeAll() {
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for c := range conns {
		c.Conn.Close()
	}
}

type trackedConn struct {
	net.Conn
	set *connSet
}

func (c *trackedConn) Close() error {
	c.set.mu.Lock()
	delete(c.set.conns, c)
	c.set.mu.Unlock()
	return c.Conn.Close()
}

// Client returns the underlying S3 client, for what the Provider does not cover.
func (p *Provider) Client() *s3.Client { return p.client }

func (p *Provider) sse() (types.ServerSideEncryption, *string) {
	switch p.opts.SSE {
	case SSEAES256:
		return types.ServerSideEncryptionAes256, nil
	case SSEKMS:
		var id *string
		if p.opts.SSEKMSKeyID != "" {
			id = aws.String(p.opts.SSEKMSKeyID)
		}
		return types.ServerSideEncryptionAwsKms, id
	}
	return "", nil
}

// NewWriter implements storage.Provider.
func (p *Provider) NewWriter(ctx context.Context, key string, opts *storage.WriterOptions) (io.WriteCloser, error) {
	w := &writer{ctx: ctx, p: p, key: key, buf: make([]byte, 0, p.firstBufSize(opts))}
	if opts != nil {
		w.contentType = opts.ContentType
		w.metadata = opts.Metadata
		w.contentMD5 = opts.ContentMD5
	}
	if w.contentMD5 != nil {
		w.whole = md5.New()
	}
	return w, nil
}

// getPart returns an empty buffer with room for one part.
func (p *Provider) getPart() []byte {
	if b, ok := p.parts.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, p.opts.PartSize)
}

// putPart recycles a part buffer once its upload has returned.
func (p *Provider) putPart(b []byte) {
	if int64(cap(b)) == p.opts.PartSize {
		p.parts.Put(&b)
	}
}

// firstBufSize avoids allocating a whole part for a small object of known size.
func (p *Provider) firstBufSize(opts *storage.WriterOptions) int64 {
	if opts != nil && opts.Size >= 0 && opts.Size < p.opts.PartSize {
		return opts.Size
	}
	return p.opts.PartSize
}

// writer buffers up to one part; the first full part starts a multipart
// upload, and parts are then uploaded by up to Concurrency goroutines.
type writer struct {
	ctx         context.Context
	p           *Provider
	key         string
	contentType string
	metadata    map[string]string
	contentMD5  []byte

	whole     hash.Hash // MD5 of everything written, when contentMD5 is set
	buf       []byte
	uploadID  *string
	stopAbort func() bool // cancels the abort-on-cancel hook
	wg        sync.WaitGroup
	sem       chan struct{}
	mu        sync.Mutex // guards parts and err
	parts     []types.CompletedPart
	err       error
	closed    bool
	closeErr  error
}

func (w *writer) Write(b []byte) (int, error) {
	if w.closed {
		return 0, errors.New("s3store: write after close")
	}
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	if err := w.firstErr(); err != nil {
		return 0, err
	}
	if w.whole != nil {
		w.whole.Write(b)
	}
	n := 0
	for len(b) > 0 {
		room := int(w.p.opts.PartSize) - len(w.buf)
		if room == 0 {
			if err := w.flushPart(); err != nil {
				return n, err
			}
			continue
		}
		c := min(room, len(b))
		w.buf = append(w.buf, b[:c]...)
		b = b[c:]
		n += c
	}
	return n, nil
}

func (w *writer) firstErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *writer) setErr(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

// flushPart sends the buffer as the next part, starting the upload if needed.
func (w *writer) flushPart() error {
	if w.uploadID == nil {
		sse, kms := w.p.sse()
		out, err := w.p.client.CreateMultipartUpload(w.ctx, &s3.CreateMultipartUploadInput{
			Bucket:               aws.String(w.p.opts.Bucket),
			Key:                  aws.String(w.key),
			ContentType:          optString(w.contentType),
			Metadata:             w.metadata,
			ServerSideEncryption: sse,
			SSEKMSKeyId:          kms,
		})
		if err != nil {
			return err
		}
		w.uploadID = out.UploadId
		w.sem = make(chan struct{}, w.p.opts.Concurrency)
		// A cancelled write aborts the upload even if Close is never called.
		w.stopAbort = context.AfterFunc(w.ctx, w.abort)
	}
	part := w.buf
	w.buf = w.p.getPart()
	w.mu.Lock()
	num := int32(len(w.parts) + 1)
	w.parts = append(w.parts, types.CompletedPart{PartNumber: aws.Int32(num)})
	w.mu.Unlock()
	select {
	case w.sem <- struct{}{}:
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
	w.wg.Add(1)
	go func() {
		defer func() { w.p.putPart(part); <-w.sem; w.wg.Done() }()
		sum := md5.Sum(part)
		out, err := w.p.client.UploadPart(w.ctx, &s3.UploadPartInput{
			Bucket:     aws.String(w.p.opts.Bucket),
			Key:        aws.String(w.key),
			UploadId:   w.uploadID,
			PartNumber: aws.Int32(num),
			Body:       bytes.NewReader(part),
			ContentMD5: aws.String(base64.StdEncoding.EncodeToString(sum[:])),
		})
		if err != nil {
			w.setErr(fmt.Errorf("part %d: %w", num, err))
			return
		}
		w.mu.Lock()
		w.parts[num-1].ETag = out.ETag
		w.mu.Unlock()
	}()
	return w.firstErr()
}

// Close implements io.Closer: it sends the object or completes the upload.
func (w *writer) Close() error {
	if w.closed {
		return w.closeErr
	}
	w.closed = true
	w.closeErr = w.commit()
	return w.closeErr
}

func (w *writer) commit() error {
	if w.uploadID == nil {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		return w.putObject()
	}
	w.stopAbort()
	err := w.ctx.Err()
	if err == nil && len(w.buf) > 0 {
		err = w.flushPart()
	}
	w.wg.Wait()
	if err == nil {
		err = w.firstErr()
	}
	if err == nil {
		err = w.ctx.Err()
	}
	if err == nil && w.whole != nil {
		if sum := w.whole.Sum(nil); !bytes.Equal(sum, w.contentMD5) {
			err = fmt.Errorf("s3store: content MD5 %x, caller says %x: %w", sum, w.contentMD5, storage.DataLoss)
		}
	}
	if err == nil {
		_, err = w.p.client.CompleteMultipartUpload(w.ctx, &s3.CompleteMultipartUploadInput{
			Bucket:          aws.String(w.p.opts.Bucket),
			Key:             aws.String(w.key),
			UploadId:        w.uploadID,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: w.parts},
		})
	}
	if err != nil {
		w.abort()
	}
	return err
}

// abort abandons the multipart upload, even when the writer's context is gone.
// Parts still in flight on the server may re-create it after an abort (S3
// documents this), so abort checks with ListParts and repeats a few times.
func (w *writer) abort() {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), 30*time.Second)
	defer cancel()
	for i := range 5 {
		w.p.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
			Bucket:   aws.String(w.p.opts.Bucket),
			Key:      aws.String(w.key),
			UploadId: w.uploadID,
		})
		select {
		case <-time.After(time.Duration(100<<i) * time.Millisecond):
		case <-ctx.Done():
			return
		}
		_, err := w.p.client.ListParts(ctx, &s3.ListPartsInput{
			Bucket: aws.String(w.p.opts.Bucket), Key: aws.String(w.key), UploadId: w.uploadID, MaxParts: aws.Int32(1),
		})
		if w.p.ErrorCode(err) == storage.NotFound {
			return
		}
	}
}

func (w *writer) putObject() error {
	sum := md5.Sum(w.buf)
	if w.contentMD5 != nil && !bytes.Equal(w.contentMD5, sum[:]) {
		return fmt.Errorf("s3store: content MD5 %x, caller says %x: %w", sum, w.contentMD5, storage.DataLoss)
	}
	sse, kms := w.p.sse()
	_, err := w.p.client.PutObject(w.ctx, &s3.PutObjectInput{
		Bucket:               aws.String(w.p.opts.Bucket),
		Key:                  aws.String(w.key),
		Body:                 bytes.NewReader(w.buf),
		ContentLength:        aws.Int64(int64(len(w.buf))),
		ContentMD5:           aws.String(base64.StdEncoding.EncodeToString(sum[:])),
		ContentType:          optString(w.contentType),
		Metadata:             w.metadata,
		ServerSideEncryption: sse,
		SSEKMSKeyId:          kms,
	})
	return err
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

// NewRangeReader implements storage.Provider.
func (p *Provider) NewRangeReader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if length == 0 {
		return p.emptyRead(ctx, key, offset)
	}
	in := &s3.GetObjectInput{Bucket: aws.String(p.opts.Bucket), Key: aws.String(key)}
	switch {
	case length > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	case offset > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	out, err := p.client.GetObject(ctx, in)
	if err != nil {
		if p.ErrorCode(err) == storage.InvalidArgument {
			// S3 refuses a range starting at the end; that is an empty read.
			return p.emptyRead(ctx, key, offset)
		}
		return nil, err
	}
	return out.Body, nil
}

// emptyRead checks that key exists and offset is within it, and reads nothing.
func (p *Provider) emptyRead(ctx context.Context, key string, offset int64) (io.ReadCloser, error) {
	a, err := p.Attributes(ctx, key)
	if err != nil {
		return nil, err
	}
	if offset > a.Size {
		return nil, fmt.Errorf("s3store: offset %d beyond size %d: %w", offset, a.Size, storage.InvalidArgument)
	}
	return io.NopCloser(bytes.NewReader(nil)), nil
}

// Attributes implements storage.Provider. MD5 is the ETag when that is an MD5
// (single-part uploads without SSE-KMS).
func (p *Provider) Attributes(ctx context.Context, key string) (*storage.Attributes, error) {
	out, err := p.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(p.opts.Bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	a := &storage.Attributes{
		Key:         key,
		Size:        aws.ToInt64(out.ContentLength),
		ModTime:     aws.ToTime(out.LastModified),
		ContentType: aws.ToString(out.ContentType),
		Metadata:    out.Metadata,
		ETag:        aws.ToString(out.ETag),
	}
	if out.ServerSideEncryption != types.ServerSideEncryptionAwsKms && out.ServerSideEncryption != types.ServerSideEncryptionAwsKmsDsse {
		a.MD5 = etagMD5(a.ETag)
	}
	return a, nil
}

// etagMD5 returns the MD5 an ETag holds, or nil for multipart ETags ("…-N").
func etagMD5(etag string) []byte {
	b, err := hex.DecodeString(strings.Trim(etag, `"`))
	if err != nil || len(b) != md5.Size {
		return nil
	}
	return b
}

// Delete implements storage.Provider. S3 deletes missing keys silently, so a
// HeadObject first reports NotFound.
func (p *Provider) Delete(ctx context.Context, key string) error {
	if _, err := p.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(p.opts.Bucket), Key: aws.String(key)}); err != nil {
		return err
	}
	_, err := p.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(p.opts.Bucket), Key: aws.String(key)})
	return err
}

// ListPage implements storage.Provider with ListObjectsV2; the page token is
// S3's continuation token.
func (p *Provider) ListPage(ctx context.Context, prefix, pageToken string, pageSize int) ([]*storage.Attributes, string, error) {
	if pageSize <= 0 || pageSize > 1000 {
		pageSize = 1000
	}
	in := &s3.ListObjectsV2Input{
		Bucket:  aws.String(p.opts.Bucket),
		Prefix:  optString(prefix),
		MaxKeys: aws.Int32(int32(pageSize)),
	}
	if pageToken != "" {
		in.ContinuationToken = aws.String(pageToken)
	}
	out, err := p.client.ListObjectsV2(ctx, in)
	if err != nil {
		return nil, "", err
	}
	objs := make([]*storage.Attributes, 0, len(out.Contents))
	for _, o := range out.Contents {
		etag := aws.ToString(o.ETag)
		objs = append(objs, &storage.Attributes{
			Key:     aws.ToString(o.Key),
			Size:    aws.ToInt64(o.Size),
			ModTime: aws.ToTime(o.LastModified),
			ETag:    etag,
		})
	}
	next := ""
	if aws.ToBool(out.IsTruncated) {
		next = aws.ToString(out.NextContinuationToken)
	}
	return objs, next, nil
}

// SignedURL implements storage.Provider with SigV4 presigned URLs. A PUT URL
// with opts.ContentType requires the uploader to send that Content-Type.
func (p *Provider) SignedURL(ctx context.Context, key string, opts *storage.SignedURLOptions) (string, error) {
	expires := s3.WithPresignExpires(opts.Expiry)
	var (
		req *v4.PresignedHTTPRequest
		err error
	)
	switch opts.Method {
	case http.MethodGet:
		req, err = p.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(p.opts.Bucket), Key: aws.String(key)}, expires)
	case http.MethodPut:
		req, err = p.presign.PresignPutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(p.opts.Bucket), Key: aws.String(key), ContentType: optString(opts.ContentType),
		}, expires)
	default:
		return "", fmt.Errorf("s3store: cannot sign method %q: %w", opts.Method, storage.Unimplemented)
	}
	if err != nil {
		return "", err
	}
	return req.URL, nil
}

// CheckBucket implements storage.Provider with a one-key ListObjectsV2 (unlike
// HeadBucket, its error replies say why access was refused).
func (p *Provider) CheckBucket(ctx context.Context) error {
	_, err := p.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(p.opts.Bucket), MaxKeys: aws.Int32(1)})
	return err
}

// ErrorCode implements storage.Provider.
func (p *Provider) ErrorCode(err error) storage.ErrorCode {
	if c := storage.Code(err); c != storage.Unknown && c != storage.Canceled && c != storage.DeadlineExceeded {
		return c
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound", "NoSuchBucket", "NoSuchUpload":
			return storage.NotFound
		case "AccessDenied", "Forbidden", "AllAccessDisabled", "AccountProblem", "InvalidObjectState":
			return storage.PermissionDenied
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired",
			"MissingSecurityHeader", "AuthorizationHeaderMalformed", "RequestTimeTooSkewed", "Unauthorized":
			return storage.Unauthenticated
		case "InvalidRange", "InvalidArgument", "InvalidBucketName", "KeyTooLongError", "EntityTooLarge",
			"EntityTooSmall", "InvalidPart", "InvalidPartOrder", "MalformedXML", "InvalidRequest":
			return storage.InvalidArgument
		case "BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "IncompleteBody":
			return storage.DataLoss
		case "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "OperationAborted":
			return storage.Unavailable
		case "QuotaExceeded", "TooManyBuckets":
			return storage.ResourceExhausted
		case "BucketAlreadyExists", "BucketAlreadyOwnedByYou", "PreconditionFailed":
			return storage.AlreadyExists
		}
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		switch s := re.HTTPStatusCode(); {
		case s == http.StatusNotFound:
			return storage.NotFound
		case s == http.StatusForbidden:
			return storage.PermissionDenied
		case s == http.StatusUnauthorized:
			return storage.Unauthenticated
		case s == http.StatusRequestedRangeNotSatisfiable, s == http.StatusBadRequest:
			return storage.InvalidArgument
		case s >= 500:
			return storage.Unavailable
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return storage.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return storage.DeadlineExceeded
	}
	var ne net.Error
	var oe *net.OpError
	var de *net.DNSError
	switch {
	case errors.As(err, &oe), errors.As(err, &de), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF):
		return storage.Unavailable
	case errors.As(err, &ne) && ne.Timeout():
		return storage.Unavailable
	}
	return storage.Unknown
}

// PermissionHint implements storage.PermissionHinter with IAM action names.
func (p *Provider) PermissionHint(op string) string {
	switch op {
	case "write":
		return "s3:PutObject"
	case "read":
		return "s3:GetObject"
	case "attributes":
		return "s3:GetObject"
	case "delete":
		return "s3:DeleteObject"
	case "list", "check":
		return "s3:ListBucket"
	case storage.HintCredentials:
		return "access key ID and secret access key (accessKeyId, secretAccessKey, or the default credential chain)"
	}
	return ""
}

// Location implements storage.Provider: "s3://bucket" on AWS, the endpoint and
// bucket elsewhere. It never includes credentials.
func (p *Provider) Location() string {
	if p.opts.Endpoint == "" {
		return "s3://" + p.opts.Bucket
	}
	u, err := url.Parse(p.opts.Endpoint)
	if err != nil {
		return "s3://" + p.opts.Bucket
	}
	u.User = nil
	u.RawQuery, u.Fragment = "", ""
	return strings.TrimSuffix(u.String(), "/") + "/" + p.opts.Bucket
}

// Close implements storage.Provider: the default client's connections are
// closed (a caller's HTTPClient only has its idle connections closed, if it can).
func (p *Provider) Close() error {
	if c, ok := p.opts.HTTPClient.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
	p.conns.closeAll()
	return nil
}

var (
	_ storage.Provider         = (*Provider)(nil)
	_ storage.PermissionHinter = (*Provider)(nil)
)

// Interface guards.
var (
	_ storage.Provider         = (*Provider)(nil)
	_ storage.PermissionHinter = (*Provider)(nil)
)
