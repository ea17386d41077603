package recorder

import (
	"errors"
	"fmt"
	"time"
)

// ErrorKind classifies a recorder error so that the API can map it to an HTTP
// status in one place.
type ErrorKind int

// The error kinds.
const (
	KindInternal    ErrorKind = iota // our fault: 500
	KindInvalid                      // bad input from the caller: 400
	KindNotFound                     // unknown id, or another tenant's: 404
	KindConflict                     // the recording is in the wrong state: 409
	KindUnavailable                  // storage or a conference platform cannot be reached: 503
	KindQuota                        // the organization is at one of its quotas: 429
)

// String names the kind.
func (k ErrorKind) String() string {
	switch k {
	case KindInvalid:
		return "Invalid"
	case KindNotFound:
		return "NotFound"
	case KindConflict:
		return "Conflict"
	case KindUnavailable:
		return "Unavailable"
	case KindQuota:
		return "Quota"
	}
	return "Internal"
}

// Error is an error of the recorder's API surface: a kind, a machine-readable
// reason ("already_active", "invalid_id") and a message a person can act on.
type Error struct {
	Kind    ErrorKind
	Reason  string
	Message string
	Err     error // the cause, if any
	// RetryAfter, when set, tells the caller when to try again (the
	// Retry-After of a 503: the fleet is full).
	RetryAfter time.Duration
}

// Error returns "recorder: message[: cause]".
func (e *Error) Error() string {
	msg := "recorder: " + e.Message
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func errorf(kind ErrorKind, reason, format string, args ...any) *Error {
	return &Error{Kind: kind, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// ErrNotFound is the error of every lookup that finds nothing visible to the caller.
var ErrNotFound = &Error{Kind: KindNotFound, Reason: "not_found", Message: "recording not found"}

// KindOf returns the kind of err: the Kind of a wrapped *Error, KindInternal otherwise.
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}
