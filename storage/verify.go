package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"path"
	"strings"
	"time"
)

// CheckResult is the outcome of one Verify check, as in seed 004's StorageTestResult.
type CheckResult struct {
	Message string `json:"message"`
	Passed  bool   `json:"passed"`
}

// VerifyResult is the outcome of Verify; its JSON form is seed 004's
// StorageVerificationStatusMessage.
type VerifyResult struct {
	Bucket CheckResult `json:"bucketTestResult"`
	Delete CheckResult `json:"deleteTestResult"`
	Modify CheckResult `json:"modifyTestResult"`
	Read   CheckResult `json:"readTestResult"`
	Write  CheckResult `json:"writeTestResult"`
	// Key is the object key the checks used.
	Key string `json:"-"`
}

// OK reports whether all five checks passed.
func (r *VerifyResult) OK() bool {
	return r.Bucket.Passed && r.Write.Passed && r.Read.Passed && r.Modify.Passed && r.Delete.Passed
}

// VerifyOptions bound and tune Verify. The zero value is usable.
type VerifyOptions struct {
	// CheckTimeout bounds each check; default 10 s.
	CheckTimeout time.Duration
	// Timeout bounds all checks together, cleanup included; default 45 s.
	Timeout time.Duration
	// Secrets are strings (keys, passwords) that must never appear in a
	// message; they are replaced by "[redacted]" should a provider echo one.
	Secrets []string
}

// Verify checks that b is usable for recordings, the way a storage admin
// would: the bucket exists and is reachable, an object can be written under
// prefix (at "prefix/verify-<time>-<random>.txt"), read back unchanged,
// overwritten (modify) and read back with the new content, and deleted (it is
// gone afterwards). A check that cannot run because an earlier one failed says
// so. The object is removed afterwards whatever happened. Messages name the
// location, the key, the cause and, where the driver is a PermissionHinter, the
// permission to grant; they never contain opts.Secrets.
func Verify(ctx context.Context, b *Bucket, prefix string, opts *VerifyOptions) VerifyResult {
	var o VerifyOptions
	if opts != nil {
		o = *opts
	}
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = 10 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 45 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	v := &verifier{b: b, opts: o}
	var res VerifyResult
	res.Key = verifyKey(prefix)
	key := res.Key
	first := []byte(fmt.Sprintf("recorder storage verification\nkey: %s\ntime: %s\n%s\n", key, time.Now().UTC().Format(time.RFC3339), randomHex(16)))
	second := append(bytes.Clone(first), []byte("modified: "+randomHex(24)+"\n")...)

	res.Bucket = v.run(ctx, func(ctx context.Context) (string, error) {
		if err := b.CheckBucket(ctx); err != nil {
			return "", err
		}
		return "bucket " + b.Location() + " exists and is reachable", nil
	})
	// Without permission to list, writing may still be allowed: go on.
	if !res.Bucket.Passed && !v.lastCodeIs(PermissionDenied) {
		skip := CheckResult{Message: "skipped: bucket check failed"}
		res.Write, res.Read, res.Modify, res.Delete = skip, skip, skip, skip
		return v.redact(res)
	}

	res.Write = v.run(ctx, func(ctx context.Context) (string, error) {
		return v.put(ctx, key, first)
	})
	if !res.Write.Passed {
		skip := CheckResult{Message: "skipped: write failed"}
		res.Read, res.Modify, res.Delete = skip, skip, skip
		v.cleanup(ctx, key)
		return v.redact(res)
	}
	res.Read = v.run(ctx, func(ctx context.Context) (string, error) {
		return v.get(ctx, key, first)
	})
	res.Modify = v.run(ctx, func(ctx context.Context) (string, error) {
		if _, err := v.put(ctx, key, second); err != nil {
			return "", err
		}
		got, err := b.ReadAll(ctx, key)
		if err != nil {
			return "", err
		}
		switch {
		case bytes.Equal(got, first):
			return "", fmt.Errorf("overwrote %s but read back the old content: the storage does not replace objects", key)
		case !bytes.Equal(got, second):
			return "", fmt.Errorf("overwrote %s with %d bytes but read back %d different bytes", key, len(second), len(got))
		}
		return fmt.Sprintf("overwrote %s and read back the new %d bytes", key, len(second)), nil
	})
	res.Delete = v.run(ctx, func(ctx context.Context) (string, error) {
		if err := b.Delete(ctx, key); err != nil {
			return "", err
		}
		_, err := b.Attributes(ctx, key)
		switch {
		case err == nil:
			return "", fmt.Errorf("deleted %s but it still exists", key)
		case Code(err) != NotFound:
			return "", err
		}
		return "deleted " + key + "; it is gone", nil
	})
	if !res.Delete.Passed {
		v.cleanup(ctx, key)
	}
	return v.redact(res)
}

type verifier struct {
	b       *Bucket
	opts    VerifyOptions
	lastErr error
}

func (v *verifier) lastCodeIs(c ErrorCode) bool { return Code(v.lastErr) == c }

// run runs one check under CheckTimeout and turns its error into advice.
func (v *verifier) run(ctx context.Context, check func(context.Context) (string, error)) CheckResult {
	cctx, cancel := context.WithTimeout(ctx, v.opts.CheckTimeout)
	defer cancel()
	msg, err := check(cctx)
	v.lastErr = err
	if err != nil {
		if cctx.Err() != nil && ctx.Err() == nil && Code(err) != DeadlineExceeded {
			err = &Error{Code: DeadlineExceeded, Op: opOf(err), Key: keyOf(err), Err: err}
		}
		return CheckResult{Message: v.advice(err)}
	}
	return CheckResult{Passed: true, Message: msg}
}

func (v *verifier) put(ctx context.Context, key string, data []byte) (string, error) {
	_, err := v.b.Upload(ctx, key, bytes.NewReader(data), &WriterOptions{Size: int64(len(data)), ContentType: "text/plain"})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("wrote %d bytes to %s", len(data), key), nil
}

func (v *verifier) get(ctx context.Context, key string, want []byte) (string, error) {
	got, err := v.b.ReadAll(ctx, key)
	if err != nil {
		return "", err
	}
	if !bytes.Equal(got, want) {
		return "", fmt.Errorf("read %d bytes from %s, but %d different bytes were written", len(got), key, len(want))
	}
	return fmt.Sprintf("read %s back: %d bytes, content equal", key, len(got)), nil
}

// cleanup removes the test object, best effort, even if ctx has expired.
func (v *verifier) cleanup(ctx context.Context, key string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.opts.CheckTimeout)
	defer cancel()
	v.b.Delete(cctx, key)
}

func opOf(err error) string {
	var se *Error
	if errors.As(err, &se) {
		return se.Op
	}
	return ""
}

func keyOf(err error) string {
	var se *Error
	if errors.As(err, &se) {
		return se.Key
	}
	return ""
}

var opVerbs = map[string]string{
	"write":      "writing",
	"read":       "reading",
	"attributes": "reading the attributes of",
	"delete":     "deleting",
	"list":       "listing",
	"check":      "checking the bucket",
	"verify":     "verifying",
}

// advice turns a check's error into a message an admin can act on.
func (v *verifier) advice(err error) string {
	var se *Error
	if !errors.As(err, &se) {
		return err.Error() // a content mismatch, already phrased for people
	}
	loc := v.b.Location()
	doing := opVerbs[se.Op]
	if doing == "" {
		doing = se.Op
	}
	if se.Key != "" {
		doing += " " + se.Key
	}
	cause := rootCause(se)
	switch se.Code {
	case NotFound:
		if se.Op == "check" || se.Key == "" {
			return fmt.Sprintf("bucket does not exist: %s (or these credentials cannot see it): %s", loc, cause)
		}
		return fmt.Sprintf("%s: not found (%s)", doing, cause)
	case Unavailable:
		return fmt.Sprintf("cannot reach %s: %s", loc, cause)
	case Unauthenticated:
		return fmt.Sprintf("credentials rejected by %s while %s: check the %s (%s)", loc, doing, v.hint(HintCredentials, "credentials"), cause)
	case PermissionDenied:
		return fmt.Sprintf("access denied %s: check the credential's %s permission on %s (%s)", doing, v.hint(se.Op, se.Op), loc, cause)
	case DeadlineExceeded:
		return fmt.Sprintf("%s timed out at %s: the storage is too slow or does not answer (limits: %v per check, %v in all)",
			doing, loc, v.opts.CheckTimeout, v.opts.Timeout)
	case DataLoss:
		return fmt.Sprintf("%s: the stored object differs from what was written: %s", doing, cause)
	case ResourceExhausted:
		return fmt.Sprintf("%s: the storage is full or over quota: %s", doing, cause)
	}
	return fmt.Sprintf("%s failed (%s): %s", doing, se.Code, cause)
}

// hint returns the driver's PermissionHint for op, or def.
func (v *verifier) hint(op, def string) string {
	if h, ok := v.b.p.(PermissionHinter); ok {
		if s := h.PermissionHint(op); s != "" {
			return s
		}
	}
	return def
}

// apiError is the shape of service errors that carry a code and a message
// (smithy.APIError of the AWS SDK, among others).
type apiError interface {
	ErrorCode() string
	ErrorMessage() string
}

// rootCause is the most telling part of a provider error: a network error as
// such ("dial tcp 127.0.0.1:9000: connect: connection refused"), a service's
// code and message ("AccessDenied: Access Denied."), otherwise the whole error.
func rootCause(se *Error) string {
	var oe *net.OpError
	if errors.As(se.Err, &oe) {
		return oe.Error()
	}
	var ae apiError
	if errors.As(se.Err, &ae) && ae.ErrorCode() != "" {
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	if se.Err == nil {
		return se.Code.String()
	}
	return se.Err.Error()
}

func (v *verifier) redact(r VerifyResult) VerifyResult {
	for _, c := range []*CheckResult{&r.Bucket, &r.Write, &r.Read, &r.Modify, &r.Delete} {
		for _, s := range v.opts.Secrets {
			if s != "" {
				c.Message = strings.ReplaceAll(c.Message, s, "[redacted]")
			}
		}
	}
	return r
}

// verifyKey returns a new key under prefix for Verify's test object.
func verifyKey(prefix string) string {
	name := "verify-" + time.Now().UTC().Format("20060102T150405Z") + "-" + randomHex(6) + ".txt"
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return name
	}
	return path.Join(prefix, name)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
