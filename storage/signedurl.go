package storage

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"time"

	"github.com/rtcrec/recorder/internal/httperr"
)

// Query parameters of the recorder's own signed URLs.
const (
	ParamDate      = "Date"      // signing time, UTC, "20060102T150405Z"
	ParamExpires   = "Expires"   // validity in seconds from Date
	ParamSignature = "Signature" // base64url HMAC-SHA256, unpadded
)

// signedDateFormat is the layout of the Date parameter (ISO 8601 basic, as in SigV4).
const signedDateFormat = "20060102T150405Z"

// URLSigner makes and checks the recorder's own signed URLs, used for drivers
// without native ones (local and SFTP storage): an HMAC-SHA256 with a server
// secret over the method, the URL path, Date and Expires. Other query
// parameters are not signed. It is safe for concurrent use.
type URLSigner struct {
	key []byte
	// MaxExpiry is the longest validity Sign issues and Check accepts; default 7 days.
	MaxExpiry time.Duration
	// Skew is how far in the future a Date may be (clock drift between the
	// signing and the checking server); default one minute.
	Skew time.Duration
	// Now returns the current time; nil means time.Now (tests replace it).
	Now func() time.Time
}

// NewURLSigner returns a signer with the secret key, which should be at least
// 32 random bytes. The signer keeps a copy of key.
func NewURLSigner(key []byte) *URLSigner {
	return &URLSigner{key: append([]byte(nil), key...), MaxExpiry: 7 * 24 * time.Hour, Skew: time.Minute}
}

func (s *URLSigner) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// mac computes the signature of a request for method on urlPath.
func (s *URLSigner) mac(method, urlPath, date, expires string) string {
	m := hmac.New(sha256.New, s.key)
	io.WriteString(m, method+"\n"+urlPath+"\n"+date+"\n"+expires)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Sign returns a copy of u that allows method on u's path for expiry (rounded
// up to whole seconds, clamped to 1 s .. MaxExpiry). Existing Date, Expires and
// Signature parameters are replaced; other parameters are kept, unsigned.
func (s *URLSigner) Sign(method string, u *url.URL, expiry time.Duration) *url.URL {
	secs := int64((expiry + time.Second - 1) / time.Second)
	secs = max(1, min(secs, int64(s.MaxExpiry/time.Second)))
	out := *u
	q := out.Query()
	date := s.now().UTC().Format(signedDateFormat)
	exp := strconv.FormatInt(secs, 10)
	q.Set(ParamDate, date)
	q.Set(ParamExpires, exp)
	q.Set(ParamSignature, s.mac(method, u.Path, date, exp))
	out.RawQuery = q.Encode()
	return &out
}

// ErrBadSignature is wrapped by every error Check returns.
var ErrBadSignature = errors.New("invalid signed URL")

// Check verifies that u is a URL signed by this signer for method and that it is
// valid now. It returns an *Error with code PermissionDenied (wrapping
// ErrBadSignature) when a parameter is missing, repeated or malformed, when the
// signature does not match (altered method, path, Date or Expires), when the
// URL has expired, when Expires exceeds MaxExpiry, or when Date lies in the
// future by more than Skew. The comparison takes constant time.
func (s *URLSigner) Check(method string, u *url.URL) error {
	deny := func(format string, args ...any) error {
		return &Error{Code: PermissionDenied, Op: "signedurl", Err: fmt.Errorf("%w: "+format, append([]any{ErrBadSignature}, args...)...)}
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return deny("unparsable query")
	}
	var vals [3]string
	for i, name := range []string{ParamDate, ParamExpires, ParamSignature} {
		v := q[name]
		if len(v) != 1 || v[0] == "" {
			return deny("need exactly one %s parameter", name)
		}
		vals[i] = v[0]
	}
	date, expires, sig := vals[0], vals[1], vals[2]
	signed, err := time.Parse(signedDateFormat, date)
	if err != nil {
		return deny("malformed Date")
	}
	secs, err := strconv.ParseInt(expires, 10, 64)
	if err != nil || secs <= 0 || strconv.FormatInt(secs, 10) != expires {
		return deny("malformed Expires")
	}
	if secs > int64(s.MaxExpiry/time.Second) {
		return deny("Expires longer than %v", s.MaxExpiry)
	}
	want := s.mac(method, u.Path, date, expires)
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return deny("signature does not match")
	}
	now := s.now()
	if signed.After(now.Add(s.Skew)) {
		return deny("Date is in the future")
	}
	if !now.Before(signed.Add(time.Duration(secs) * time.Second)) {
		return deny("expired at %s", signed.Add(time.Duration(secs)*time.Second).Format(time.RFC3339))
	}
	return nil
}

// SignedURLHandler serves objects of b to holders of URLs signed by s: GET and
// HEAD (with Range; a GET signature also allows HEAD) and PUT (the body is
// written with Bucket.Upload, so it is verified after upload). keyFromPath maps
// the request's URL path to an object key; an error from it is a 404. Errors are
// the recorder's JSON error replies (internal/httperr) with the status of their code: 403 for a bad signature,
// 404 for a missing object, 416 for an unsatisfiable range, 503 when storage is
// unavailable. Messages never include the signature.
func SignedURLHandler(b *Bucket, s *URLSigner, keyFromPath func(urlPath string) (string, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := r.Method
		switch method {
		case http.MethodGet, http.MethodHead:
			method = http.MethodGet
		case http.MethodPut:
		default:
			w.Header().Set("Allow", "GET, HEAD, PUT")
			httperr.Write(w, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed")
			return
		}
		if err := s.Check(method, r.URL); err != nil {
			httpError(w, err)
			return
		}
		key, err := keyFromPath(r.URL.Path)
		if err == nil {
			err = ValidateKey(key)
		}
		if err != nil {
			httperr.Write(w, http.StatusNotFound, NotFound.String(), "not found")
			return
		}
		if r.Method == http.MethodPut {
			servePut(w, r, b, key)
			return
		}
		serveGet(w, r, b, key)
	})
}

func serveGet(w http.ResponseWriter, r *http.Request, b *Bucket, key string) {
	a, err := b.Attributes(r.Context(), key)
	if err != nil {
		httpError(w, err)
		return
	}
	ct := a.ContentType
	if ct == "" {
		ct = mime.TypeByExtension(path.Ext(key))
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	if a.ETag != "" {
		w.Header().Set("ETag", a.ETag)
	}
	rs := &objectReadSeeker{ctx: r.Context(), b: b, key: key, size: a.Size}
	defer rs.Close()
	http.ServeContent(w, r, "", a.ModTime, rs)
}

func servePut(w http.ResponseWriter, r *http.Request, b *Bucket, key string) {
	opts := &WriterOptions{Size: r.ContentLength, ContentType: r.Header.Get("Content-Type")}
	if _, err := b.Upload(r.Context(), key, r.Body, opts); err != nil {
		httpError(w, err)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// HTTPStatus returns the HTTP status that reports err to a client.
func HTTPStatus(err error) int {
	switch Code(err) {
	case NotFound:
		return http.StatusNotFound
	case PermissionDenied:
		return http.StatusForbidden
	case Unauthenticated:
		return http.StatusUnauthorized
	case InvalidArgument:
		return http.StatusBadRequest
	case Unavailable, Canceled:
		return http.StatusServiceUnavailable
	case DeadlineExceeded:
		return http.StatusGatewayTimeout
	case ResourceExhausted:
		return http.StatusInsufficientStorage
	case AlreadyExists:
		return http.StatusConflict
	case Unimplemented:
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

// httpError replies with err's status; the reason is its code, the message
// the status text (never the provider's error, which may name hosts).
func httpError(w http.ResponseWriter, err error) {
	status := HTTPStatus(err)
	msg := http.StatusText(status)
	if Code(err) == PermissionDenied && errors.Is(err, ErrBadSignature) {
		msg = "invalid or expired signed URL"
	}
	httperr.Write(w, status, Code(err).String(), msg)
}

// objectReadSeeker is an io.ReadSeeker over an object, opening a range reader
// at the current offset on the first Read after a Seek (http.ServeContent seeks
// to a range's start, then reads it).
type objectReadSeeker struct {
	ctx  context.Context
	b    *Bucket
	key  string
	size int64
	off  int64
	r    io.ReadCloser
}

func (o *objectReadSeeker) Read(p []byte) (int, error) {
	if o.off >= o.size {
		return 0, io.EOF
	}
	if o.r == nil {
		r, err := o.b.NewRangeReader(o.ctx, o.key, o.off, -1)
		if err != nil {
			return 0, err
		}
		o.r = r
	}
	n, err := o.r.Read(p)
	o.off += int64(n)
	return n, err
}

func (o *objectReadSeeker) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = o.off + offset
	case io.SeekEnd:
		abs = o.size + offset
	default:
		return 0, errors.New("storage: bad whence")
	}
	if abs < 0 {
		return 0, errors.New("storage: negative position")
	}
	if abs != o.off && o.r != nil {
		o.r.Close()
		o.r = nil
	}
	o.off = abs
	return abs, nil
}

func (o *objectReadSeeker) Close() error {
	if o.r == nil {
		return nil
	}
	err := o.r.Close()
	o.r = nil
	return err
}
