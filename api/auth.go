package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/internal/httperr"
)

// Authentication and scopes, in one place: Server.ServeHTTP calls
// authenticate for every request a route matches, before the route's
// handler runs. A route is public only when its Auth in the route table
// (routes.go) is not AuthAPIKey; every other route, however it was added to the mux, needs an API key of
// the scope routeScope gives it. A new route is therefore authenticated and
// scoped by construction.

// routeScope is the scope a route pattern ("METHOD /path") needs: none
// (any valid key) for a key's description of itself, admin for
// storage verification, storage info and agent registration, read for GET and HEAD, control for
// everything else (start, stop, pause, metadata, blackouts, chat, cobrowse,
// delete, publish tokens, commands).
func routeScope(pattern string) string {
	method, path, _ := strings.Cut(pattern, " ")
	switch {
	case pattern == "GET /api/keys/self":
		return ""
	case strings.HasSuffix(path, "/verify") || strings.HasSuffix(path, "/storage/info"),
		strings.HasPrefix(path, "/api/agents"): // registering seed 003's agents
		return config.ScopeAdmin
	case method == http.MethodGet || method == http.MethodHead:
		return config.ScopeRead
	}
	return config.ScopeControl
}

type keyContext struct{}

// authenticate checks the request's API key ("Authorization: <key>" or
// "Authorization: Bearer <key>") and scope for the route pattern, and returns
// the request carrying the key. It has answered (401, 403) when ok is false.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, pattern string) (_ *http.Request, ok bool) {
	if s.public[pattern] {
		return r, true
	}
	tok := strings.TrimSpace(r.Header.Get("Authorization"))
	if t, ok := strings.CutPrefix(tok, "Bearer "); ok {
		tok = strings.TrimSpace(t)
	}
	k := s.key(tok)
	if k == nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="recorder"`)
		reason, msg := "invalid_api_key", "the API key is not valid"
		if tok == "" {
			reason, msg = "missing_api_key", "the Authorization header with an API key is missing"
		}
		writeError(w, http.StatusUnauthorized, reason, msg)
		return r, false
	}
	if scope := routeScope(pattern); scope != "" && !k.HasScope(scope) {
		writeError(w, http.StatusForbidden, "missing_scope", "the API key lacks the "+scope+" scope this route needs")
		return r, false
	}
	return r.WithContext(context.WithValue(r.Context(), keyContext{}, k)), true
}

// authed is a handler of an authenticated route.
type authed func(w http.ResponseWriter, r *http.Request, k *config.APIKey)

// auth adapts an authed handler: it gets the key authenticate found.
// (Called outside ServeHTTP, it refuses the request.)
func (s *Server) auth(h authed) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		k, _ := r.Context().Value(keyContext{}).(*config.APIKey)
		if k == nil {
			writeError(w, http.StatusUnauthorized, "missing_api_key", "the Authorization header with an API key is missing")
			return
		}
		h(w, r, k)
	}
}

// key returns the configured key equal to token, or nil.
func (s *Server) key(token string) *config.APIKey {
	if token == "" {
		return nil
	}
	h := sha256.Sum256([]byte(token))
	k := s.keys[h]
	if k == nil || subtle.ConstantTimeCompare([]byte(k.Key), []byte(token)) != 1 {
		return nil
	}
	return k
}

// RequestIDHeader carries the request id in every reply; error replies
// carry it as requestId too, and the log lines of the request under
// "requestId".
const RequestIDHeader = httperr.RequestIDHeader

type requestIDContext struct{}

// withRequestID gives the request a new id, in the reply header and the
// request's context.
func (s *Server) withRequestID(w http.ResponseWriter, r *http.Request) *http.Request {
	if id, _ := r.Context().Value(requestIDContext{}).(string); id != "" {
		return r // the seed-004 prefix routes come through twice
	}
	var b [8]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	w.Header().Set(RequestIDHeader, id)
	return r.WithContext(context.WithValue(r.Context(), requestIDContext{}, id))
}

// requestID returns the request's id ("" outside ServeHTTP).
func requestID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDContext{}).(string)
	return id
}
