// Package httpcode maps the HTTP status of a storage service's error reply to
// a storage.ErrorCode, for the drivers whose SDKs expose the status.
package httpcode

import (
	"net/http"

	"github.com/rtcrec/recorder/storage"
)

// Code returns the ErrorCode for an HTTP error status, Unknown for others.
func Code(status int) storage.ErrorCode {
	switch {
	case status == http.StatusNotFound:
		return storage.NotFound
	case status == http.StatusUnauthorized:
		return storage.Unauthenticated
	case status == http.StatusForbidden:
		return storage.PermissionDenied
	case status == http.StatusPreconditionFailed, status == http.StatusConflict:
		return storage.AlreadyExists
	case status == http.StatusRequestedRangeNotSatisfiable, status == http.StatusBadRequest:
		return storage.InvalidArgument
	case status == http.StatusTooManyRequests, status >= 500:
		return storage.Unavailable
	}
	return storage.Unknown
}
