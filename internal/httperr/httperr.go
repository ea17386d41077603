// Package httperr writes the recorder's one HTTP error reply, shared by every
// package that answers HTTP: the API, the WHIP endpoint, the event stream and
// storage's signed-URL handler. The body is JSON,
//
//	{"code": 404, "message": "no such WHIP session", "reason": "not_found", "requestId": "…"}
//
// code repeats the status, reason is a stable machine-readable word, message
// is for a person, and requestId (when the request has one) names the
// request in the recorder's log, where the details of a failure are.
package httperr

import (
	"encoding/json"
	"net/http"
)

// RequestIDHeader is the header that carries a request's id, set on the
// response by the API before any handler runs.
const RequestIDHeader = "X-Request-Id"

// Body is the JSON error reply.
type Body struct {
	Code      int    `json:"code"`
	Message   string `json:"message"`
	Reason    string `json:"reason"`
	RequestID string `json:"requestId,omitempty"`
}

// Write replies with status and the error body; the request id is taken
// from the response's RequestIDHeader.
func Write(w http.ResponseWriter, status int, reason, msg string) {
	WriteJSON(w, status, Body{Code: status, Message: msg, Reason: reason, RequestID: w.Header().Get(RequestIDHeader)})
}

// WriteJSON replies with status and v as JSON, never cached.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
