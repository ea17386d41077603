// Package azurestore is the storage driver for Azure Blob Storage (and Azurite),
// over github.com/Azure/azure-sdk-for-go/sdk/storage/azblob.
//
// Objects are block blobs in one container. A write buffers BlockSize bytes at
// a time; an object that fits in one block is sent with a single Put Blob, a
// larger one as staged blocks (Concurrency at a time) committed by Put Block
// List when the writer is closed. Uncommitted blocks are invisible and Azure
// discards them, so a cancelled or failed write leaves no blob and an existing
// blob unchanged. Every blob gets its Content-MD5, which Attributes reports.
//
// Azure metadata names must be C# identifiers and are case-insensitive: keys
// that are lowercase identifiers are stored as they are, every other key as
// "rcx_" followed by the hex of its bytes; values that are not plain printable
// ASCII (or contain '%') are stored percent-encoded. Attributes and ListPage
// decode both, so metadata round-trips unchanged.
//
// Signed URLs are service SAS URLs signed with the account key (Read for GET,
// Create and Write for PUT). A PUT through one must carry the header
// "x-ms-blob-type: BlockBlob", as Azure's Put Blob requires; a SAS cannot
// bind SignedURLOptions.ContentType, which is ignored. A bucket opened
// with a SAS token and no key cannot sign: SignedURL is Unimplemented.
package azurestore

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/internal/httpcode"
)

// Options configure an Azure Blob bucket. Give AccountName and AccountKey, or
// ConnectionString, or SASToken (with AccountName or Endpoint).
type Options struct {
	AccountName string
	AccountKey  string // base64, as the portal shows it
	// ConnectionString is an Azure storage connection string
	// ("DefaultEndpointsProtocol=…;AccountName=…;AccountKey=…;BlobEndpoint=…").
	ConnectionString string
	// SASToken is a container or account SAS query string ("sv=…&sig=…"),
	// with or without a leading "?".
	SASToken string

	Container string // required

	// Endpoint is the blob service URL; default https://<AccountName>.blob.core.windows.net.
	// For Azurite: http://127.0.0.1:10000/devstoreaccount1.
	Endpoint string

	// BlockSize is the size of each staged block and the largest object sent
	// in a single request; default 4 MiB.
	BlockSize int
	// Concurrency is how many blocks of one object are sent at once; default 4.
	Concurrency int
	// MaxRetries is how often a failed request is retried (with backoff from
	// 200 ms); default 3. Negative means never.
	MaxRetries int
}

// ErrChecksum is returned by Close when the written content does not match
// WriterOptions.ContentMD5; nothing is committed.
var ErrChecksum = errors.New("azurestore: content does not match the given MD5")

// ErrNoAccountKey is returned by SignedURL when the bucket has no account key to sign with.
var ErrNoAccountKey = errors.New("azurestore: signed URLs need the account key (this bucket was opened with a SAS token)")

var errInvalidRange = errors.New("azurestore: invalid range")

type bucket struct {
	c          *container.Client
	blockSize  int
	concurrent int
}

// New returns the Azure Blob driver for opts. It does not contact the service.
func New(ctx context.Context, opts Options) (storage.Provider, error) {
	if opts.Container == "" {
		return nil, errors.New("azurestore: container is required")
	}
	o := opts
	if o.BlockSize <= 0 {
		o.BlockSize = 4 << 20
	}
	if o.BlockSize > blockblob.MaxStageBlockBytes {
		return nil, fmt.Errorf("azurestore: block size %d is over Azure's %d", o.BlockSize, int64(blockblob.MaxStageBlockBytes))
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	retries := o.MaxRetries
	switch {
	case retries == 0:
		retries = 3
	case retries < 0:
		retries = -1 // azcore: -1 disables retries
	}
	co := &container.ClientOptions{ClientOptions: azcore.ClientOptions{
		Retry: policy.RetryOptions{
			MaxRetries:    int32(retries),
			RetryDelay:    200 * time.Millisecond,
			MaxRetryDelay: 2 * time.Second,
		},
	}}
	endpoint := strings.TrimSuffix(o.Endpoint, "/")
	if endpoint == "" && o.AccountName != "" {
		endpoint = "https://" + o.AccountName + ".blob.core.windows.net"
	}
	var (
		c   *container.Client
		err error
	)
	switch {
	case o.ConnectionString != "":
		c, err = container.NewClientFromConnectionString(o.ConnectionString, o.Container, co)
	case o.AccountKey != "":
		if o.AccountName == "" || endpoint == "" {
			return nil, errors.New("azurestore: accountName is required with accountKey")
		}
		var cred *container.SharedKeyCredential
		cred, err = container.NewSharedKeyCredential(o.AccountName, o.AccountKey)
		if err == nil {
			c, err = container.NewClientWithSharedKeyCredential(endpoint+"/"+url.PathEscape(o.Container), cred, co)
		}
	case o.SASToken != "":
		if endpoint == "" {
			return nil, errors.New("azurestore: accountName or endpoint is required with a SAS token")
		}
		c, err = container.NewClientWithNoCredential(endpoint+"/"+url.PathEscape(o.Container)+"?"+strings.TrimPrefix(o.SASToken, "?"), co)
	default:
		return nil, errors.New("azurestore: accountKey, connectionString or sasToken is required")
	}
	if err != nil {
		// Never echo the options: they hold the key.
		return nil, fmt.Errorf("azurestore: %w", err)
	}
	return &bucket{c: c, blockSize: o.BlockSize, concurrent: o.Concurrency}, nil
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
	w := &writer{
		ctx:  ctx,
		b:    b,
		bb:   b.c.NewBlockBlobClient(key),
		md5:  md5.New(),
		sem:  make(chan struct{}, b.concurrent),
		free: make(chan []byte, b.concurrent),
		opts: storage.WriterOptions{Size: -1},
	}
	if opts != nil {
		w.opts = *opts
	}
	rand.Read(w.idPrefix[:])
	w.buf = make([]byte, 0, b.bufferSize(w.opts.Size))
	return w, nil
}

// bufferSize is the first buffer of a write: small for small known sizes.
func (b *bucket) bufferSize(size int64) int {
	if size >= 0 && size < int64(b.blockSize) {
		return int(size)
	}
	return b.blockSize
}

type writer struct {
	ctx      context.Context
	b        *bucket
	bb       *blockblob.Client
	opts     storage.WriterOptions
	md5      hash.Hash
	buf      []byte
	idPrefix [8]byte
	ids      []string // staged blocks, in order

	sem    chan struct{} // limits blocks in flight
	free   chan []byte   // block buffers whose staging has finished, for reuse
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error // first staging error
	closed bool
}

func (w *writer) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	if err := w.stageErr(); err != nil {
		return 0, serviceError(err)
	}
	w.md5.Write(p)
	n := len(p)
	for len(p) > 0 {
		if len(w.buf) == w.b.blockSize {
			w.stage()
		}
		if cap(w.buf) < w.b.blockSize && len(w.buf)+len(p) > cap(w.buf) {
			// The size was understated: grow to a full block.
			nb := make([]byte, len(w.buf), w.b.blockSize)
			copy(nb, w.buf)
			w.buf = nb
		}
		k := min(len(p), w.b.blockSize-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
	}
	return n, nil
}

func (w *writer) stageErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// stage sends the buffered block in the background and starts a new buffer.
func (w *writer) stage() {
	var raw [16]byte
	copy(raw[:], w.idPrefix[:])
	binary.BigEndian.PutUint64(raw[8:], uint64(len(w.ids)))
	id := base64.StdEncoding.EncodeToString(raw[:]) // every ID of a blob has the same length
	w.ids = append(w.ids, id)
	block := w.buf
	// Waiting for a place first lets the finished block's buffer be reused.
	w.sem <- struct{}{}
	select {
	case w.buf = <-w.free:
	default:
		w.buf = make([]byte, 0, w.b.blockSize)
	}
	w.wg.Add(1)
	go func() {
		defer func() {
			if cap(block) == w.b.blockSize {
				select {
				case w.free <- block[:0]:
				default:
				}
			}
			<-w.sem
			w.wg.Done()
		}()
		sum := md5.Sum(block)
		_, err := w.bb.StageBlock(w.ctx, id, streaming.NopCloser(bytes.NewReader(block)),
			&blockblob.StageBlockOptions{TransactionalValidation: blob.TransferValidationTypeMD5(sum[:])})
		if err != nil {
			w.mu.Lock()
			if w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
		}
	}()
}

// Close commits the blob: one Put Blob for a single block, else the last block
// and Put Block List. It commits nothing if ctx was cancelled or a block failed.
func (w *writer) Close() error {
	if w.closed {
		return errors.New("azurestore: writer already closed")
	}
	w.closed = true
	sum := w.md5.Sum(nil)
	if len(w.ids) > 0 && len(w.buf) > 0 {
		w.stage()
	}
	w.wg.Wait()
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if err := w.stageErr(); err != nil {
		return serviceError(err)
	}
	if len(w.opts.ContentMD5) > 0 && !bytes.Equal(sum, w.opts.ContentMD5) {
		return ErrChecksum
	}
	headers := &blob.HTTPHeaders{BlobContentMD5: sum}
	if w.opts.ContentType != "" {
		headers.BlobContentType = &w.opts.ContentType
	}
	meta := encodeMetadata(w.opts.Metadata)
	if len(w.ids) == 0 {
		_, err := w.bb.Upload(w.ctx, streaming.NopCloser(bytes.NewReader(w.buf)), &blockblob.UploadOptions{
			HTTPHeaders:             headers,
			Metadata:                meta,
			TransactionalValidation: blob.TransferValidationTypeMD5(sum),
		})
		return serviceError(err)
	}
	_, err := w.bb.CommitBlockList(w.ctx, w.ids, &blockblob.CommitBlockListOptions{
		HTTPHeaders: headers,
		Metadata:    meta,
	})
	return serviceError(err)
}

// NewRangeReader implements storage.Provider.
func (b *bucket) NewRangeReader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	bc := b.c.NewBlobClient(key)
	if length == 0 {
		return b.emptyRange(ctx, bc, offset)
	}
	count := length
	if count < 0 {
		count = 0 // the SDK's "to the end"
	}
	resp, err := bc.DownloadStream(ctx, &blob.DownloadStreamOptions{Range: blob.HTTPRange{Offset: offset, Count: count}})
	if bloberror.HasCode(err, bloberror.InvalidRange) {
		// Azure refuses any range starting at the end, even of an empty blob.
		return b.emptyRange(ctx, bc, offset)
	}
	if err != nil {
		return nil, serviceError(err)
	}
	return resp.Body, nil
}

// emptyRange returns an empty reader if offset is within or at the end of the blob.
func (b *bucket) emptyRange(ctx context.Context, bc *blob.Client, offset int64) (io.ReadCloser, error) {
	p, err := bc.GetProperties(ctx, nil)
	if err != nil {
		return nil, serviceError(err)
	}
	if size := deref(p.ContentLength); offset > size {
		return nil, fmt.Errorf("%w: offset %d is beyond the object's %d bytes", errInvalidRange, offset, size)
	}
	return io.NopCloser(bytes.NewReader(nil)), nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// Attributes implements storage.Provider.
func (b *bucket) Attributes(ctx context.Context, key string) (*storage.Attributes, error) {
	p, err := b.c.NewBlobClient(key).GetProperties(ctx, nil)
	if err != nil {
		return nil, serviceError(err)
	}
	return &storage.Attributes{
		Key:         key,
		Size:        deref(p.ContentLength),
		ModTime:     deref(p.LastModified),
		ContentType: deref(p.ContentType),
		Metadata:    decodeMetadata(p.Metadata),
		MD5:         p.ContentMD5,
		ETag:        string(deref(p.ETag)),
	}, nil
}

// Delete implements storage.Provider; it deletes the blob's snapshots too.
func (b *bucket) Delete(ctx context.Context, key string) error {
	include := blob.DeleteSnapshotsOptionTypeInclude
	_, err := b.c.NewBlobClient(key).Delete(ctx, &blob.DeleteOptions{DeleteSnapshots: &include})
	return serviceError(err)
}

// ListPage implements storage.Provider with one List Blobs call; the page
// token is Azure's continuation marker.
func (b *bucket) ListPage(ctx context.Context, prefix, pageToken string, pageSize int) ([]*storage.Attributes, string, error) {
	opts := &container.ListBlobsFlatOptions{Include: container.ListBlobsInclude{Metadata: true}}
	if prefix != "" {
		opts.Prefix = &prefix
	}
	if pageToken != "" {
		opts.Marker = &pageToken
	}
	if pageSize > 0 {
		n := int32(min(pageSize, 5000))
		opts.MaxResults = &n
	}
	resp, err := b.c.NewListBlobsFlatPager(opts).NextPage(ctx)
	if err != nil {
		return nil, "", serviceError(err)
	}
	var objs []*storage.Attributes
	for _, it := range resp.Segment.BlobItems {
		a := &storage.Attributes{Key: deref(it.Name), Metadata: decodeMetadata(it.Metadata)}
		if p := it.Properties; p != nil {
			a.Size = deref(p.ContentLength)
			a.ModTime = deref(p.LastModified)
			a.ContentType = deref(p.ContentType)
			a.MD5 = p.ContentMD5
			a.ETag = string(deref(p.ETag))
		}
		objs = append(objs, a)
	}
	return objs, deref(resp.NextMarker), nil
}

// SignedURL implements storage.Provider with a service SAS for the blob.
func (b *bucket) SignedURL(_ context.Context, key string, opts *storage.SignedURLOptions) (string, error) {
	var perms sas.BlobPermissions
	switch opts.Method {
	case http.MethodGet, http.MethodHead:
		perms.Read = true
	case http.MethodPut:
		perms.Create, perms.Write = true, true
	default:
		return "", fmt.Errorf("%w: method %s", errors.ErrUnsupported, opts.Method)
	}
	now := time.Now()
	// Started a little in the past, so that a server whose clock is slightly
	// behind accepts it at once.
	start := now.Add(-5 * time.Minute)
	u, err := b.c.NewBlobClient(key).GetSASURL(perms, now.Add(opts.Expiry), &blob.GetSASURLOptions{StartTime: &start})
	if errors.Is(err, bloberror.MissingSharedKeyCredential) {
		return "", ErrNoAccountKey
	}
	return u, err
}

// CheckBucket implements storage.Provider by listing at most one blob, which
// needs only the List permission (a read-only SAS can do it).
func (b *bucket) CheckBucket(ctx context.Context) error {
	one := int32(1)
	_, err := b.c.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{MaxResults: &one}).NextPage(ctx)
	return serviceError(err)
}

// ErrorCode implements storage.Provider.
func (b *bucket) ErrorCode(err error) storage.ErrorCode {
	var se *ServiceError
	switch {
	case err == nil:
		return storage.Unknown
	case errors.Is(err, context.Canceled):
		return storage.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return storage.DeadlineExceeded
	case errors.Is(err, ErrChecksum), bloberror.HasCode(err, bloberror.MD5Mismatch):
		return storage.DataLoss
	case errors.Is(err, ErrNoAccountKey), errors.Is(err, errors.ErrUnsupported):
		return storage.Unimplemented
	case errors.Is(err, errInvalidRange), bloberror.HasCode(err, bloberror.InvalidRange):
		return storage.InvalidArgument
	case bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound, bloberror.ResourceNotFound):
		return storage.NotFound
	case bloberror.HasCode(err, bloberror.AuthenticationFailed, bloberror.NoAuthenticationInformation):
		return storage.Unauthenticated
	case errors.As(err, &se) && se.authenticationFailed():
		return storage.Unauthenticated
	case bloberror.HasCode(err, bloberror.AuthorizationFailure, bloberror.AuthorizationPermissionMismatch,
		bloberror.AuthorizationResourceTypeMismatch, bloberror.AuthorizationServiceMismatch,
		bloberror.AuthorizationSourceIPMismatch, bloberror.AuthorizationProtocolMismatch,
		bloberror.InsufficientAccountPermissions):
		return storage.PermissionDenied
	case bloberror.HasCode(err, bloberror.BlobAlreadyExists, bloberror.ContainerAlreadyExists):
		return storage.AlreadyExists
	case bloberror.HasCode(err, bloberror.ServerBusy, bloberror.InternalError, bloberror.OperationTimedOut):
		return storage.Unavailable
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return httpcode.Code(re.StatusCode)
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) {
		return storage.Unavailable
	}
	return storage.Unknown
}

// PermissionHint implements storage.PermissionHinter: the blob data action
// and the SAS permission letters an operation needs.
func (b *bucket) PermissionHint(op string) string {
	switch op {
	case "write":
		return "blob write (SAS c and w)"
	case "read", "attributes":
		return "blob read (SAS r)"
	case "delete":
		return "blob delete (SAS d)"
	case "list", "check":
		return "blob list (SAS l)"
	case storage.HintCredentials:
		return "account name and account key, connection string or SAS token (a SAS must be unexpired and signed by a current key)"
	}
	return ""
}

// Location implements storage.Provider: the container URL without any SAS.
func (b *bucket) Location() string {
	u, err := url.Parse(b.c.URL())
	if err != nil {
		return "azure:<unparsable container URL>"
	}
	u.RawQuery, u.User = "", nil
	return u.String()
}

// Close implements storage.Provider; the SDK holds nothing to release.
func (b *bucket) Close() error { return nil }

// ServiceError is an error reply of the Blob service, shortened to its
// status, error code and message; Unwrap gives the SDK's full error.
type ServiceError struct {
	StatusCode int
	Code       string // Azure's error code, for example "AuthorizationPermissionMismatch"
	Message    string // the reason phrase of the reply, for example "Server failed to authenticate the request. …"
	Err        *azcore.ResponseError
}

// Error describes the failure; it never contains credentials.
func (e *ServiceError) Error() string {
	return fmt.Sprintf("azurestore: %d %s: %s", e.StatusCode, e.ErrorCode(), e.ErrorMessage())
}

// Unwrap returns the underlying error.
func (e *ServiceError) Unwrap() error { return e.Err }

// ErrorCode returns Azure's error code, or the HTTP status text when the
// reply had none.
func (e *ServiceError) ErrorCode() string {
	if e.Code != "" {
		return e.Code
	}
	return http.StatusText(e.StatusCode)
}

// ErrorMessage returns the service's explanation.
func (e *ServiceError) ErrorMessage() string {
	if e.Message != "" {
		return e.Message
	}
	return http.StatusText(e.StatusCode)
}

// authenticationFailed reports whether the service said it could not
// authenticate the request. Azure says so with the code AuthenticationFailed,
// Azurite with AuthorizationFailure and the same message.
func (e *ServiceError) authenticationFailed() bool {
	return e.Code == string(bloberror.AuthenticationFailed) ||
		strings.Contains(e.Message, "failed to authenticate")
}

// serviceError shortens the SDK's multi-line response errors to a ServiceError.
func serviceError(err error) error {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return err
	}
	se := &ServiceError{StatusCode: re.StatusCode, Code: re.ErrorCode, Err: re}
	if re.RawResponse != nil {
		// The status line carries Azure's message as its reason phrase.
		se.Message = strings.TrimSpace(strings.TrimPrefix(re.RawResponse.Status, strconv.Itoa(re.StatusCode)))
	}
	return se
}

// metaPrefix marks a metadata key stored as the hex of its bytes.
const metaPrefix = "rcx_"

// encodeMetadata turns arbitrary string metadata into names and values Azure
// accepts (see the package documentation).
func encodeMetadata(m map[string]string) map[string]*string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]*string, len(m))
	for k, v := range m {
		if !plainName(k) {
			k = metaPrefix + hex.EncodeToString([]byte(k))
		}
		if !plainValue(v) {
			v = url.PathEscape(v)
		}
		out[k] = &v
	}
	return out
}

// decodeMetadata reverses encodeMetadata. Names are compared in lower case:
// HTTP may have changed their case on the way back.
func decodeMetadata(m map[string]*string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		k = strings.ToLower(k)
		if h, ok := strings.CutPrefix(k, metaPrefix); ok {
			if b, err := hex.DecodeString(h); err == nil {
				k = string(b)
			}
		}
		val := deref(v)
		if strings.Contains(val, "%") {
			if u, err := url.PathUnescape(val); err == nil {
				val = u
			}
		}
		out[k] = val
	}
	return out
}

// plainName reports whether k can be an Azure metadata name as it is: a
// lowercase C# identifier that does not start with metaPrefix.
func plainName(k string) bool {
	if k == "" || strings.HasPrefix(k, metaPrefix) || (k[0] >= '0' && k[0] <= '9') {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// plainValue reports whether v can be sent as a header value unchanged.
func plainValue(v string) bool {
	if strings.HasPrefix(v, " ") || strings.HasSuffix(v, " ") {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c > 0x7e || c == '%' {
			return false
		}
	}
	return true
}

var (
	_ storage.Provider         = (*bucket)(nil)
	_ storage.PermissionHinter = (*bucket)(nil)
)

// Interface guards.
var (
	_ storage.Provider         = (*bucket)(nil)
	_ storage.PermissionHinter = (*bucket)(nil)
)
