package storage

import (
	"context"
	"errors"
	"fmt"
	"regexp"
)

// ErrorCode classifies a storage failure so callers can decide what to do
// (retry, report to the admin, give up) without parsing provider messages.
// An ErrorCode is itself an error, so errors.Is(err, storage.NotFound) works on
// any error the Bucket returns.
type ErrorCode int

// The error codes every driver maps its provider's errors to.
const (
	Unknown           ErrorCode = iota // not classified
	NotFound                           // the object (or bucket) does not exist
	AlreadyExists                      // a create-only write found an object
	PermissionDenied                   // authenticated, but not allowed
	Unauthenticated                    // credentials missing, wrong or expired
	InvalidArgument                    // a bad key, range or option
	Unavailable                        // the service cannot be reached or is overloaded: retry
	DeadlineExceeded                   // the context's deadline passed
	Canceled                           // the context was cancelled
	Unimplemented                      // the driver does not support the operation
	DataLoss                           // the stored bytes differ from what was written (size or checksum)
	ResourceExhausted                  // quota or disk full
)

var codeNames = [...]string{
	Unknown:           "Unknown",
	NotFound:          "NotFound",
	AlreadyExists:     "AlreadyExists",
	PermissionDenied:  "PermissionDenied",
	Unauthenticated:   "Unauthenticated",
	InvalidArgument:   "InvalidArgument",
	Unavailable:       "Unavailable",
	DeadlineExceeded:  "DeadlineExceeded",
	Canceled:          "Canceled",
	Unimplemented:     "Unimplemented",
	DataLoss:          "DataLoss",
	ResourceExhausted: "ResourceExhausted",
}

// String returns the code's name, for example "NotFound".
func (c ErrorCode) String() string {
	if c < 0 || int(c) >= len(codeNames) {
		return fmt.Sprintf("ErrorCode(%d)", int(c))
	}
	return codeNames[c]
}

// Error makes a code usable as an errors.Is target.
func (c ErrorCode) Error() string { return "storage: " + c.String() }

// Retryable reports whether an operation that failed with this code may succeed
// if tried again later without any change of configuration.
func (c ErrorCode) Retryable() bool {
	switch c {
	case Unavailable, DeadlineExceeded, Unknown, ResourceExhausted:
		return true
	}
	return false
}

// Error is the error every Bucket method returns: the operation, the key and a
// code, wrapping the provider's own error (which may carry details an admin needs,
// never credentials).
type Error struct {
	Code ErrorCode
	Op   string // "write", "read", "attributes", "delete", "list", "signedurl", "check"
	Key  string // object key; empty for bucket-level operations
	Err  error  // the provider's error; may be nil
}

// Error formats the failure as "storage: op key: code: provider error".
func (e *Error) Error() string {
	msg := "storage: " + e.Op
	if e.Key != "" {
		msg += " " + e.Key
	}
	msg += ": " + e.Code.String()
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the provider's error.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is this error's code, so errors.Is(err, NotFound) works.
func (e *Error) Is(target error) bool {
	c, ok := target.(ErrorCode)
	return ok && c == e.Code
}

// Code returns the ErrorCode of err: the code of a wrapped *Error or ErrorCode,
// Canceled or DeadlineExceeded for context errors, and Unknown otherwise
// (including for nil).
func Code(err error) ErrorCode {
	var se *Error
	if errors.As(err, &se) {
		return se.Code
	}
	var c ErrorCode
	if errors.As(err, &c) {
		return c
	}
	switch {
	case errors.Is(err, context.Canceled):
		return Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return DeadlineExceeded
	}
	return Unknown
}

// wrap turns a driver error into an *Error once; errors that already are one
// keep their code and key.
func wrap(p Provider, op, key string, err error) error {
	if err == nil {
		return nil
	}
	var se *Error
	if errors.As(err, &se) {
		return err
	}
	code := p.ErrorCode(err)
	if code == Unknown {
		code = Code(err)
	}
	return &Error{Code: code, Op: op, Key: key, Err: err}
}

// urlQuery matches the query string of a URL in an error's text.
var urlQuery = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://[^\s?"']+)\?[^\s"']*`)

// RedactURLs cuts the query strings of the URLs in s, for logs: that is
// where SAS tokens and presigned signatures live, and a driver's transport
// error (a *url.Error) quotes the URL it requested, query included.
func RedactURLs(s string) string { return urlQuery.ReplaceAllString(s, "$1?…") }
