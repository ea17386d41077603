// Package storage is the recorder's portable object storage: a concrete *Bucket
// holding the shared logic (checksums, verification after upload, error wrapping,
// closed state) over small Provider drivers, one per storage product
// (s3store, azurestore, gcsstore, sftpstore, filestore, memstore).
//
// The split follows gocloud.dev/blob: drivers only translate between the Provider
// contract and their SDK; everything a caller relies on beyond that lives in Bucket,
// and storagetest checks that every driver keeps the contract.
//
// Besides Bucket the package has the recorder's own signed URLs for drivers
// without native ones (URLSigner, served by SignedURLHandler) and Verify, the
// bucket/write/read/modify/delete check of a storage profile.
package storage

import (
	"context"
	"io"
	"net/http"
	"time"
)

// Provider is the driver contract. Callers use *Bucket, never a Provider directly.
//
// Every method may be called from several goroutines at once. Errors are
// returned as the provider produced them; Bucket classifies them with ErrorCode
// and wraps them with the operation and key.
type Provider interface {
	// NewWriter starts writing the object at key. The object becomes visible
	// only when the returned writer's Close returns nil, and then all at once
	// (a reader never sees half an object). If ctx is cancelled before Close
	// returns, the write is abandoned, Close returns an error, and no object is
	// created (an existing object at key is left as it was).
	NewWriter(ctx context.Context, key string, opts *WriterOptions) (io.WriteCloser, error)

	// NewRangeReader reads length bytes of the object from offset; a negative
	// length reads to the end. A missing object must give an error for which
	// ErrorCode returns NotFound. An offset beyond the end is InvalidArgument.
	NewRangeReader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)

	// Attributes returns the object's size, time and checksums. A missing
	// object must give an error for which ErrorCode returns NotFound.
	Attributes(ctx context.Context, key string) (*Attributes, error)

	// Delete removes the object. A missing object must give an error for which
	// ErrorCode returns NotFound.
	Delete(ctx context.Context, key string) error

	// ListPage lists objects whose keys start with prefix, in key order, at
	// most pageSize of them, starting after pageToken (empty: from the start).
	// It returns the token of the next page, empty after the last one.
	ListPage(ctx context.Context, prefix, pageToken string, pageSize int) (objs []*Attributes, next string, err error)

	// SignedURL returns a URL that lets anyone holding it perform opts.Method
	// (GET or PUT) on key until opts.Expiry passes. A driver without signed
	// URLs of its own returns an error for which ErrorCode is Unimplemented.
	SignedURL(ctx context.Context, key string, opts *SignedURLOptions) (string, error)

	// CheckBucket reports whether the bucket (container, directory) exists and
	// can be reached with the configured credentials.
	CheckBucket(ctx context.Context) error

	// ErrorCode classifies an error this driver returned. It returns Unknown
	// for errors it does not recognise.
	ErrorCode(err error) ErrorCode

	// Location describes where the bucket is, for people and for the API's
	// storage/info: "s3://bucket/prefix", "https://host/container", "sftp://host/dir".
	// It never contains credentials.
	Location() string

	// Close releases the driver's resources. It is called once, by Bucket.Close.
	Close() error
}

// WriterOptions control a write. Drivers ignore fields they cannot express.
type WriterOptions struct {
	ContentType string
	// Metadata is stored as object metadata where the provider supports it
	// (S3 x-amz-meta-*, Azure metadata, GCS metadata, a sidecar elsewhere or nothing).
	Metadata map[string]string
	// Size is the number of bytes that will be written, or -1 when unknown.
	// Drivers may use it to choose single-request or multipart uploads.
	Size int64
	// ContentMD5, when set, is sent so that the provider rejects a corrupted upload.
	ContentMD5 []byte
}

// Attributes describe a stored object.
type Attributes struct {
	Key         string
	Size        int64
	ModTime     time.Time
	ContentType string
	Metadata    map[string]string
	// MD5 is the provider's MD5 of the content, when it keeps one (S3 single-part
	// ETag, Azure Content-MD5, GCS md5Hash). Nil when unknown.
	MD5 []byte
	// CRC32C is the provider's CRC32C (Castagnoli) of the content, when it keeps one (GCS).
	CRC32C *uint32
	// ETag identifies this version of the object, when the provider has one.
	ETag string
}

// SignedURLOptions say what a signed URL allows.
type SignedURLOptions struct {
	Method      string        // http.MethodGet (default) or http.MethodPut
	Expiry      time.Duration // how long the URL stays valid; default one hour
	ContentType string        // for PUT: the Content-Type the uploader must send, if any
}

func (o *SignedURLOptions) withDefaults() *SignedURLOptions {
	out := SignedURLOptions{Method: http.MethodGet, Expiry: time.Hour}
	if o != nil {
		if o.Method != "" {
			out.Method = o.Method
		}
		if o.Expiry > 0 {
			out.Expiry = o.Expiry
		}
		out.ContentType = o.ContentType
	}
	return &out
}

// PermissionHinter is an optional Provider ability: it names the permission an
// operation ("write", "read", "attributes", "delete", "list", "check") needs,
// the provider's way ("s3:PutObject"), so that Verify's messages tell a storage
// admin what to grant; for HintCredentials it names the credentials to check
// when the provider rejects them ("access key ID and secret access key"). It
// returns "" when it has nothing to say.
type PermissionHinter interface {
	PermissionHint(op string) string
}

// HintCredentials is the PermissionHint operation naming a provider's
// credentials, for the message of an Unauthenticated error.
const HintCredentials = "credentials"
