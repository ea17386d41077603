package recorder

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/storage"
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
	KindTooLarge                     // a bounded collection (chat, cobrowse) is full: 413
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
	case KindTooLarge:
		return "TooLarge"
	}
	return "Internal"
}

// HTTPStatus returns the HTTP status that reports an error of kind k: the one
// map from kinds to statuses, used by the API, the command envelope and the
// fleet's forwarded commands.
func (k ErrorKind) HTTPStatus() int {
	switch k {
	case KindInvalid:
		return http.StatusBadRequest
	case KindNotFound:
		return http.StatusNotFound
	case KindConflict:
		return http.StatusConflict
	case KindUnavailable:
		return http.StatusServiceUnavailable
	case KindQuota:
		return http.StatusTooManyRequests
	case KindTooLarge:
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusInternalServerError
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

// failureInfo is the ErrorInfo a recording's state shows for a failure with
// code: a stable message for the code, never the error's text (which may
// name server paths, storage URLs or a provider's reply). The text goes to
// log (which carries the recording's ids), with the query strings of URLs in
// it cut (SAS tokens, signatures).
func failureInfo(log *slog.Logger, code ErrorCode, err error, at time.Time) *ErrorInfo {
	if err != nil {
		log.Warn("failure recorded in the recording's state", "code", code, "err", RedactURLs(err.Error()))
	}
	return &ErrorInfo{Code: code, Message: failureMessage(code), Occurred: at}
}

// failureLogHint ends every failure message: where the details are.
const failureLogHint = "; the recorder's log has the details under the recording's instanceId"

// failureMessage is the message callers see for a failure code.
func failureMessage(code ErrorCode) string {
	const log = failureLogHint
	switch code {
	case CodeUploadFailed:
		return "uploading the recording's files to its storage profile failed" + log
	case CodeWriteFailed:
		return "writing the recording's files on the recorder failed" + log
	case CodeDiskFull:
		return "the recorder's disk is full: the recording's files could not be written" + log
	case CodeTrackFailed:
		return "the track could not be recorded" + log
	case CodeCompositeNotQueued:
		return "the composite video could not be scheduled" + log
	case CodeCompositeInputs:
		return "the composite video's inputs could not be read" + log
	case CodeCompositeFailed:
		return "making the composite video failed" + log
	}
	// A storage error code (storage.ErrorCode: Unauthenticated, Unavailable, …).
	return "the storage profile refused or failed the upload (" + string(code) + ")" + log
}

// RedactURLs cuts the query strings of the URLs in s (where SAS tokens and
// presigned signatures live), for logs (storage.RedactURLs).
func RedactURLs(s string) string { return storage.RedactURLs(s) }

// conferenceEndedInfo is the ErrorInfo of a recording whose conference ended
// with an error: code conference_ended and a fixed message per reason (the
// platform dropped the recorder's session, or the connection failed
// otherwise); the adapter's text, which names its server and replies, goes
// to log.
func conferenceEndedInfo(log *slog.Logger, err error, at time.Time) *ErrorInfo {
	log.Warn("the conference ended with an error", "code", CodeConferenceEnded, "err", RedactURLs(err.Error()))
	msg := "the conference ended: the recorder's connection to the conference platform failed"
	if errors.Is(err, conference.ErrSessionLost) {
		msg = "the conference ended: the conference platform dropped the recorder's session (it restarted, stopped answering or timed the session out)"
	}
	return &ErrorInfo{Code: CodeConferenceEnded, Message: msg + failureLogHint, Occurred: at}
}
