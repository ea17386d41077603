// Package api is the recorder's HTTP interface: the recording API of seed 004
// (start, stop, state, recording, conversation, active, storage info,
// compositions, storage verification), API-key authentication with tenant
// scoping, the error format, signed attachment URLs and the WHIP endpoint's
// route; and the routes of the other seeds (lifecycle.go: pause and resume,
// status history, metadata, blackouts, participants, chat and cobrowse, the
// command envelope, the telephony view under /v1, the event stream). Handlers validate every id and bound every body before anything
// reaches the recorder.
package api

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/internal/httperr"
	"github.com/rtcrec/recorder/recorder"
	"github.com/rtcrec/recorder/recorder/events"
	"github.com/rtcrec/recorder/storage"
)

// MaxBody bounds every JSON request body.
const MaxBody = 64 << 10

// Options configure a Server.
type Options struct {
	Manager *recorder.Manager // required
	Keys    []config.APIKey   // the API keys; at least one
	// Attachments makes and checks the recorder's own signed URLs. Required.
	Attachments *recorder.Attachments
	// WHIP serves /whip/; nil: no WHIP route.
	WHIP http.Handler
	// Events serves GET /api/events; nil: no event stream.
	Events *events.Bus
	URLTTL time.Duration // validity of signed URLs; default 1 h
	Logger *slog.Logger
	// Tokens mints and checks publish tokens; nil: POST /api/publishtokens
	// answers 503 and WHIP takes API keys only.
	Tokens *PublishTokens
}

// Server is the HTTP API. It is an http.Handler.
type Server struct {
	m    *recorder.Manager
	keys map[[32]byte]*config.APIKey
	att  *recorder.Attachments
	ttl  time.Duration
	log  *slog.Logger
	mux  *http.ServeMux
	// routes is the route table (routes.go); folded maps the lower-case
	// paths of case-insensitive routes to their registered paths.
	routes []Route
	folded map[string]string
	// events serves the event stream (lifecycle.go).
	events *events.Bus
	// public are the route patterns served without an API key (auth.go).
	public map[string]bool
	// tokens mints and checks publish tokens (token.go); nil: none.
	tokens *PublishTokens
	// sse counts each organization's open event streams.
	sse recorder.Counter
}

// New returns the API server.
func New(o Options) *Server {
	s := &Server{m: o.Manager, att: o.Attachments, ttl: o.URLTTL, log: o.Logger, keys: map[[32]byte]*config.APIKey{}, events: o.Events,
		public: map[string]bool{}, tokens: o.Tokens}
	if s.ttl <= 0 {
		s.ttl = time.Hour
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	for i := range o.Keys {
		k := o.Keys[i]
		s.keys[sha256.Sum256([]byte(k.Key))] = &k
	}
	mux := http.NewServeMux()
	s.register(mux, s.routeTable(o.WHIP)) // routes.go
	s.mux = mux
	return s
}

// ServeHTTP implements http.Handler: every request gets a request id, and
// every route is authenticated and scoped here (auth.go) before its handler
// runs. Requests no route matches get the error JSON too: 404, or 405 with
// Allow when only the method is wrong.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r = s.withRequestID(w, r)
	_, pattern := s.mux.Handler(r)
	noteRoute(r.Context(), pattern) // the metrics' route label (metrics.go)
	if pattern == "" {
		if p := s.foldPath(r.URL.Path); p != "" { // seed 003's paths in any case
			r2 := r.Clone(r.Context())
			r2.URL.Path, r2.URL.RawPath = p, ""
			s.ServeHTTP(w, r2)
			return
		}
		s.mux.ServeHTTP(&routeError{w: w, r: r}, r)
		return
	}
	r, ok := s.authenticate(w, r, pattern)
	if !ok {
		return
	}
	s.mux.ServeHTTP(w, r)
}

// routeError turns the ServeMux's plain-text 404 and 405 into the error JSON.
type routeError struct {
	w     http.ResponseWriter
	r     *http.Request
	wrote bool
}

func (e *routeError) Header() http.Header { return e.w.Header() }

func (e *routeError) WriteHeader(status int) {
	if e.wrote {
		return
	}
	e.wrote = true
	switch status {
	case http.StatusNotFound:
		writeError(e.w, status, "not_found", "no such route: "+e.r.Method+" "+e.r.URL.Path)
	case http.StatusMethodNotAllowed:
		writeError(e.w, status, "method_not_allowed", "method "+e.r.Method+" is not allowed on "+e.r.URL.Path)
	default: // redirects of unclean paths
		e.w.WriteHeader(status)
	}
}

func (e *routeError) Write(b []byte) (int, error) {
	if !e.wrote {
		e.WriteHeader(http.StatusOK)
	}
	return len(b), nil
}

// writeError writes the error JSON (ErrorMessage) with status.
func writeError(w http.ResponseWriter, status int, reason, msg string) {
	httperr.Write(w, status, reason, msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) { httperr.WriteJSON(w, status, v) }

// fail maps an error to its status: the one place that does.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var re *recorder.Error
	if errors.As(err, &re) {
		status := re.Kind.HTTPStatus()
		if status >= 500 {
			// The message is ours and generic; the cause (hosts, paths,
			// replies of other servers) goes to the log only.
			s.log.Error("request failed", "requestId", requestID(r), "method", r.Method, "path", r.URL.Path, "err", err)
		}
		if re.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((re.RetryAfter+time.Second-1)/time.Second)))
		}
		writeError(w, status, re.Reason, re.Message)
		return
	}
	s.log.Error("request failed", "requestId", requestID(r), "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "internal", "internal error; the recorder's log has the details under this requestId")
}

// decode reads a JSON command: bounded, unknown fields rejected, one value only.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("data after the JSON value")
		}
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "the body is larger than "+strconv.Itoa(MaxBody)+" bytes")
			return false
		}
		writeError(w, http.StatusBadRequest, "malformed_json", "the body is not a valid command: "+err.Error())
		return false
	}
	return true
}

func (s *Server) start(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	var cmd StartRecording
	if !decode(w, r, &cmd) {
		return
	}
	for _, f := range []struct{ name, v string }{
		{"applicationId", cmd.ApplicationID}, {"conferenceId", cmd.ConferenceID}, {"conversationId", cmd.ConversationID},
	} {
		if f.v == "" {
			writeError(w, http.StatusBadRequest, "missing_field", f.name+" is required")
			return
		}
	}
	if err := recorder.ValidateID("applicationId", cmd.ApplicationID); err != nil {
		s.fail(w, r, err)
		return
	}
	if !s.m.Config().Allows(k, cmd.ApplicationID) {
		writeError(w, http.StatusNotFound, "unknown_application", "application "+cmd.ApplicationID+" is not known to this API key")
		return
	}
	req := recorder.StartRequest{
		ApplicationID: cmd.ApplicationID, ConferenceID: cmd.ConferenceID, ConversationID: cmd.ConversationID,
		Audio: cmd.Audio == nil || *cmd.Audio, Video: cmd.Video, Duplicate: cmd.Duplicate, Metadata: cmd.Metadata,
		PauseBehavior: cmd.PauseBehavior, Mix: cmd.Mix, Composite: cmd.Composite,
	}
	if cmd.MaxDuration != "" {
		d, err := parseDuration(cmd.MaxDuration)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_field", "maxDuration: "+err.Error())
			return
		}
		req.MaxDuration = d
	}
	rec, err := s.m.Start(r.Context(), k.OrganizationID, req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, eventOf(rec))
}

func parseDuration(s string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		if n <= 0 || n > 1e6 {
			return 0, errors.New("out of range")
		}
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, errors.New(`want a positive duration such as "90m" or seconds`)
	}
	return d, nil
}

// ids returns the path's conversationId, recorderId and instanceId.
func ids(r *http.Request) (c, rid, i string) {
	return r.PathValue("conversationId"), r.PathValue("recorderId"), r.PathValue("instanceId")
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, k *config.APIKey) (*recorder.Recording, bool) {
	c, rid, i := ids(r)
	rec, err := s.m.Get(r.Context(), k.OrganizationID, c, rid, i)
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	return rec, true
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	c, rid, i := ids(r)
	// Finishing (files, upload) goes on if the caller gives up; it waits at most 5 minutes here.
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Minute)
	defer cancel()
	rec, err := s.m.Stop(ctx, k.OrganizationID, c, rid, i)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, eventOf(rec))
}

func (s *Server) state(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	if rec, ok := s.get(w, r, k); ok {
		writeJSON(w, http.StatusOK, eventOf(rec))
	}
}

func (s *Server) storageInfo(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	if rec, ok := s.get(w, r, k); ok {
		writeJSON(w, http.StatusOK, profileOf(rec))
	}
}

func (s *Server) recording(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	if rec, ok := s.get(w, r, k); ok {
		writeJSON(w, http.StatusOK, messageOf(rec, s.signer(r.Context(), rec)))
	}
}

// signer returns a function signing object keys of rec's bucket.
func (s *Server) signer(ctx context.Context, rec *recorder.Recording) func(key string) string {
	b, err := s.m.Bucket(ctx, rec.ApplicationID)
	return func(key string) string {
		if err != nil {
			return ""
		}
		u, serr := b.SignedURL(ctx, key, &storage.SignedURLOptions{Method: http.MethodGet, Expiry: s.ttl})
		if serr != nil {
			s.log.Warn("cannot sign URL", "key", key, "err", serr)
			return ""
		}
		return u
	}
}

func (s *Server) conversation(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	rs, err := s.m.Conversation(r.Context(), k.OrganizationID, r.PathValue("conversationId"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, conversationOf(rs))
}

func (s *Server) active(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	rec, err := s.m.Active(r.Context(), k.OrganizationID, r.PathValue("conversationId"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, eventOf(rec))
}

func (s *Server) composition(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	rs, err := s.m.Conversation(r.Context(), k.OrganizationID, r.PathValue("conversationId"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rec := rs[len(rs)-1]
	sign := s.signer(r.Context(), rec)
	msg := messageOf(rec, sign)
	msg.Composition = compositionOf(rec, sign, ts(time.Now().Add(s.ttl))) // compositions.go
	writeJSON(w, http.StatusOK, msg)
}

func (s *Server) verify(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	app := r.PathValue("applicationId")
	if err := recorder.ValidateID("applicationId", app); err != nil {
		s.fail(w, r, err)
		return
	}
	if !s.m.Config().Allows(k, app) {
		writeError(w, http.StatusNotFound, "unknown_application", "application "+app+" is not known to this API key")
		return
	}
	res, err := s.m.Verify(r.Context(), app)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// attachment serves an object of LOCAL or SFTP storage to the holder of a
// signed URL: no API key, the signature proves the right to read.
func (s *Server) attachment(w http.ResponseWriter, r *http.Request) {
	if err := s.att.Signer.Check(http.MethodGet, r.URL); err != nil {
		writeError(w, http.StatusForbidden, "invalid_signature", "invalid or expired signed URL")
		return
	}
	c, rid, i := ids(r)
	rec, err := s.m.Lookup(r.Context(), c, rid, i)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	key, err := recorder.AttachmentKey(rec, r.PathValue("kind"), r.PathValue("path"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	b, err := s.m.Bucket(r.Context(), rec.ApplicationID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	storage.SignedURLHandler(b, s.att.Signer, func(string) (string, error) { return key, nil }).ServeHTTP(w, r)
}
