// Package gcsstore is the storage driver for Google Cloud Storage (and
// emulators such as fake-gcs-server), over cloud.google.com/go/storage.
//
// A write is buffered in ChunkSize pieces (a smaller buffer for objects
// known to be smaller) and sent as a resumable upload, or in one request when
// it fits in one piece; nothing is sent as final before Close, so a cancelled
// or failed write leaves no object, and an existing object unchanged. The
// SDK's unbuffered mode (ChunkSize 0) is never used: when its source fails it
// ends the multipart body with a well-formed closing boundary, and a server
// may then commit the part written so far. GCS keeps the MD5 and CRC32C of
// every object, and Attributes reports both.
//
// Credentials are a service-account JSON key (CredentialsFile or
// CredentialsJSON) or, when neither is given, Application Default
// Credentials. Signed URLs are V4 (GOOG4-RSA-SHA256) signed with the service
// account's private key; note that cloud.google.com/go/storage v1.70.0 signs
// the host header without the port, so a custom endpoint's signature covers
// only its host name.
package gcsstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"cloud.google.com/go/auth"
	gcs "cloud.google.com/go/storage"
	"github.com/googleapis/gax-go/v2"
	"golang.org/x/oauth2"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/internal/httpcode"
)

// Options configure a Google Cloud Storage bucket.
type Options struct {
	Bucket string // required

	// CredentialsFile names a service-account JSON key file; CredentialsJSON
	// holds one. With neither, Application Default Credentials are used (and
	// signed URLs are signed through the IAM Credentials API).
	CredentialsFile string
	CredentialsJSON []byte

	// Endpoint is the JSON API base URL of an emulator or private endpoint,
	// for example "http://127.0.0.1:4443/storage/v1/"; a URL without a path
	// ("http://127.0.0.1:4443") gets "/storage/v1/". Empty means Google.
	Endpoint string

	// ChunkSize is the size of each piece of a resumable upload, buffered in
	// memory; default 16 MiB (the SDK's default).
	ChunkSize int
	// MaxAttempts bounds the tries of one request (with backoff from 100 ms);
	// default 3.
	MaxAttempts int

	// ClientOptions are passed to storage.NewClient after the ones above
	// (tests use them, for example, for an HTTP client).
	ClientOptions []option.ClientOption
}

// ErrChecksum is returned by Close when the written content does not match
// WriterOptions.ContentMD5; nothing is committed.
var ErrChecksum = errors.New("gcsstore: content does not match the given MD5")

var errInvalidRange = errors.New("gcsstore: invalid range")

// serviceAccount is the part of a service-account key that signs URLs.
type serviceAccount struct {
	Type        string `json:"type"`
	ClientEmail string `json:"client_email"`
	PrivateKey  string `json:"private_key"`
}

type bucket struct {
	client    *gcs.Client
	b         *gcs.BucketHandle
	name      string
	chunkSize int
	sa        serviceAccount // zero with Application Default Credentials
	endpoint  *url.URL       // nil for Google's
}

// New returns the Google Cloud Storage driver for opts. It does not contact
// the service (credentials are exchanged for a token on first use).
func New(ctx context.Context, opts Options) (storage.Provider, error) {
	if opts.Bucket == "" {
		return nil, errors.New("gcsstore: bucket is required")
	}
	o := opts
	if o.ChunkSize <= 0 {
		o.ChunkSize = 16 << 20
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 3
	}
	b := &bucket{name: o.Bucket, chunkSize: o.ChunkSize}
	creds := o.CredentialsJSON
	if len(creds) == 0 && o.CredentialsFile != "" {
		data, err := os.ReadFile(o.CredentialsFile)
		if err != nil {
			return nil, fmt.Errorf("gcsstore: credentialsFile: %w", err)
		}
		creds = data
	}
	var copts []option.ClientOption
	if len(creds) > 0 {
		if err := json.Unmarshal(creds, &b.sa); err != nil {
			return nil, fmt.Errorf("gcsstore: credentials are not JSON: %w", err)
		}
		if b.sa.Type != "service_account" || b.sa.ClientEmail == "" || b.sa.PrivateKey == "" {
			return nil, errors.New("gcsstore: credentials must be a service-account key (type service_account, client_email, private_key)")
		}
		copts = append(copts, option.WithAuthCredentialsJSON(option.ServiceAccount, creds))
	}
	if o.Endpoint != "" {
		u, err := url.Parse(o.Endpoint)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("gcsstore: endpoint %q is not a URL", o.Endpoint)
		}
		if u.Path == "" || u.Path == "/" {
			u.Path = "/storage/v1/"
		}
		b.endpoint = u
		copts = append(copts, option.WithEndpoint(u.String()))
	}
	copts = append(copts, o.ClientOptions...)
	client, err := gcs.NewClient(ctx, copts...)
	if err != nil {
		return nil, fmt.Errorf("gcsstore: %w", err)
	}
	b.client = client
	b.b = client.Bucket(o.Bucket).Retryer(
		gcs.WithMaxAttempts(o.MaxAttempts),
		gcs.WithBackoff(gax.Backoff{Initial: 100 * time.Millisecond, Max: 2 * time.Second, Multiplier: 2}),
	)
	return b, nil
}

// OpenBucket returns a *storage.Bucket over New(ctx, opts).
func OpenBucket(ctx context.Context, opts Options) (*storage.Bucket, error) {
	p, err := New(ctx, opts)
	if err != nil {
		return nil, err
	}
	return storage.NewBucket(p), nil
}

// NewWriter implements storage.Provider.
func (b *bucket) NewWriter(ctx context.Context, key string, opts *storage.WriterOptions) (io.WriteCloser, error) {
	// The upload gets its own context so that a content mismatch found at
	// Close can abandon it.
	uctx, cancel := context.WithCancel(ctx)
	w := b.b.Object(key).NewWriter(uctx)
	w.ChunkSize = b.chunkSize
	gw := &writer{ctx: ctx, cancel: cancel, w: w}
	if opts != nil {
		if opts.Size >= 0 && opts.Size < int64(b.chunkSize) {
			// A buffer just larger than the object, so that it goes in one
			// request once Close ends it (chunk sizes are multiples of 256 KiB).
			const unit = googleapi.MinUploadChunkSize
			w.ChunkSize = int(opts.Size/unit+1) * unit
		}
		w.ContentType = opts.ContentType
		w.Metadata = opts.Metadata
		if len(opts.ContentMD5) > 0 {
			w.MD5 = opts.ContentMD5 // checked by the server too
			gw.want = opts.ContentMD5
			gw.md5 = md5.New()
		}
	}
	return gw, nil
}

type writer struct {
	ctx    context.Context
	cancel context.CancelFunc
	w      *gcs.Writer
	md5    hash.Hash
	want   []byte
}

func (w *writer) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	if w.md5 != nil {
		w.md5.Write(p)
	}
	n, err := w.w.Write(p)
	return n, tokenError(err)
}

// Close finishes the upload, or abandons it if ctx was cancelled or the
// content does not match WriterOptions.ContentMD5. An abandoned upload is
// cancelled through its context and never closed: closing the SDK's writer
// ends the request body cleanly, and a single-request upload cut short that
// way would commit the part written so far.
func (w *writer) Close() error {
	defer w.cancel()
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if w.md5 != nil && !bytes.Equal(w.md5.Sum(nil), w.want) {
		return ErrChecksum
	}
	if err := w.w.Close(); err != nil {
		return tokenError(err)
	}
	return w.ctx.Err()
}

// NewRangeReader implements storage.Provider.
func (b *bucket) NewRangeReader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	o := b.b.Object(key)
	if length == 0 {
		return b.emptyRange(ctx, o, offset)
	}
	r, err := o.NewRangeReader(ctx, offset, length)
	if err != nil {
		if isStatus(err, http.StatusRequestedRangeNotSatisfiable) {
			// GCS refuses a range starting at the end, even of an empty object.
			return b.emptyRange(ctx, o, offset)
		}
		return nil, tokenError(err)
	}
	return r, nil
}

// emptyRange returns an empty reader if offset is within or at the end of the object.
func (b *bucket) emptyRange(ctx context.Context, o *gcs.ObjectHandle, offset int64) (io.ReadCloser, error) {
	a, err := o.Attrs(ctx)
	if err != nil {
		return nil, tokenError(err)
	}
	if offset > a.Size {
		return nil, fmt.Errorf("%w: offset %d is beyond the object's %d bytes", errInvalidRange, offset, a.Size)
	}
	return io.NopCloser(bytes.NewReader(nil)), nil
}

func isStatus(err error, code int) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == code
}

func attributes(a *gcs.ObjectAttrs) *storage.Attributes {
	out := &storage.Attributes{
		Key:         a.Name,
		Size:        a.Size,
		ModTime:     a.Updated,
		ContentType: a.ContentType,
		Metadata:    a.Metadata,
		MD5:         a.MD5,
		ETag:        a.Etag,
	}
	if len(a.MD5) == 0 {
		out.MD5 = nil // objects composed of parts have none
	}
	if a.CRC32C != 0 || a.Size == 0 {
		c := a.CRC32C
		out.CRC32C = &c
	}
	return out
}

// Attributes implements storage.Provider.
func (b *bucket) Attributes(ctx context.Context, key string) (*storage.Attributes, error) {
	a, err := b.b.Object(key).Attrs(ctx)
	if err != nil {
		return nil, tokenError(err)
	}
	return attributes(a), nil
}

// Delete implements storage.Provider.
func (b *bucket) Delete(ctx context.Context, key string) error {
	return tokenError(b.b.Object(key).Delete(ctx))
}

// ListPage implements storage.Provider with one objects.list call.
func (b *bucket) ListPage(ctx context.Context, prefix, pageToken string, pageSize int) ([]*storage.Attributes, string, error) {
	if pageSize <= 0 {
		pageSize = 1000
	}
	it := b.b.Objects(ctx, &gcs.Query{Prefix: prefix})
	var page []*gcs.ObjectAttrs
	next, err := iterator.NewPager(it, pageSize, pageToken).NextPage(&page)
	if err != nil {
		return nil, "", tokenError(err)
	}
	objs := make([]*storage.Attributes, 0, len(page))
	for _, a := range page {
		objs = append(objs, attributes(a))
	}
	return objs, next, nil
}

// SignedURL implements storage.Provider with a V4 signed URL.
func (b *bucket) SignedURL(_ context.Context, key string, opts *storage.SignedURLOptions) (string, error) {
	so := &gcs.SignedURLOptions{
		Scheme:      gcs.SigningSchemeV4,
		Method:      opts.Method,
		Expires:     time.Now().Add(opts.Expiry),
		ContentType: opts.ContentType,
	}
	if b.sa.PrivateKey != "" {
		so.GoogleAccessID, so.PrivateKey = b.sa.ClientEmail, []byte(b.sa.PrivateKey)
	}
	if b.endpoint != nil {
		so.Hostname = b.endpoint.Host
		so.Insecure = b.endpoint.Scheme == "http"
	}
	return b.b.SignedURL(key, so)
}

// CheckBucket implements storage.Provider by listing at most one object,
// which needs only storage.objects.list (a read-only role has it; not every
// one has storage.buckets.get).
func (b *bucket) CheckBucket(ctx context.Context) error {
	var page []*gcs.ObjectAttrs
	_, err := iterator.NewPager(b.b.Objects(ctx, nil), 1, "").NextPage(&page)
	return tokenError(err)
}

// TokenError reports that the OAuth token endpoint refused the service
// account's key (a wrong, deleted or disabled key): the SDK's error, shortened
// to one line.
type TokenError struct {
	StatusCode int
	Body       string // the token endpoint's answer, on one line
	Err        *auth.Error
}

// Error describes the failure; it never contains credentials.
func (e *TokenError) Error() string {
	return fmt.Sprintf("gcsstore: the token endpoint refused the service account key: HTTP %d: %s", e.StatusCode, e.Body)
}

// Unwrap returns the underlying error.
func (e *TokenError) Unwrap() error { return e.Err }

// tokenError turns a refused token exchange into a TokenError.
func tokenError(err error) error {
	var ae *auth.Error
	if !errors.As(err, &ae) || ae.Response == nil {
		return err
	}
	body := strings.Join(strings.Fields(string(ae.Body)), " ")
	if len(body) > 200 {
		body = body[:200] + "…"
	}
	return &TokenError{StatusCode: ae.Response.StatusCode, Body: body, Err: ae}
}

// ErrorCode implements storage.Provider.
func (b *bucket) ErrorCode(err error) storage.ErrorCode {
	var (
		ge *googleapi.Error
		ae *auth.Error
		re *oauth2.RetrieveError
		ne net.Error
	)
	switch {
	case err == nil:
		return storage.Unknown
	case errors.Is(err, context.Canceled):
		return storage.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return storage.DeadlineExceeded
	case errors.Is(err, gcs.ErrObjectNotExist), errors.Is(err, gcs.ErrBucketNotExist):
		return storage.NotFound
	case errors.Is(err, ErrChecksum):
		return storage.DataLoss
	case errors.Is(err, errInvalidRange):
		return storage.InvalidArgument
	case errors.As(err, &ge):
		return httpcode.Code(ge.Code)
	case errors.As(err, &ae):
		// The token exchange failed: with an answer from the token server
		// (a wrong or revoked key), or without one (unreachable).
		if ae.Response == nil && errors.As(ae.Err, &ne) {
			return storage.Unavailable
		}
		return storage.Unauthenticated
	case errors.As(err, &re):
		return storage.Unauthenticated
	case errors.As(err, &ne), errors.Is(err, io.ErrUnexpectedEOF):
		return storage.Unavailable
	case strings.Contains(err.Error(), "connection refused"):
		return storage.Unavailable
	}
	return storage.Unknown
}

// PermissionHint implements storage.PermissionHinter with Cloud Storage IAM permissions.
func (b *bucket) PermissionHint(op string) string {
	switch op {
	case "write":
		return "storage.objects.create (and storage.objects.delete to overwrite)"
	case "read", "attributes":
		return "storage.objects.get"
	case "delete":
		return "storage.objects.delete"
	case "list", "check":
		return "storage.objects.list"
	case storage.HintCredentials:
		return "service account key (credentialsFile or credentialsJSON): the account must exist and the key be active"
	}
	return ""
}

// Location implements storage.Provider: "gs://bucket", or the emulator's
// bucket URL.
func (b *bucket) Location() string {
	if b.endpoint != nil {
		return b.endpoint.Scheme + "://" + b.endpoint.Host + "/" + b.name
	}
	return "gs://" + b.name
}

// Close implements storage.Provider.
func (b *bucket) Close() error { return b.client.Close() }

var (
	_ storage.Provider         = (*bucket)(nil)
	_ storage.PermissionHinter = (*bucket)(nil)
)

// Interface guards.
var (
	_ storage.Provider         = (*bucket)(nil)
	_ storage.PermissionHinter = (*bucket)(nil)
)
