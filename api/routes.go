package api

import (
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/recorder"
)

// Seed004Prefix is the path prefix seed 004 prints before every route
// (/auvious.video/rtc-recorder/api/…). Each seed-004 route is served under it
// as well as under /api/…, with the same handler and auth; signed URLs made
// for a request under the prefix carry the prefix too.
const Seed004Prefix = "/auvious.video/rtc-recorder"

// Auth values of a Route.
const (
	AuthAPIKey    = "apiKey"    // Authorization: <key> or Bearer <key>
	AuthSignature = "signature" // a signed URL (Date, Expires, Signature)
	AuthBearer    = "bearer"    // the WHIP endpoint's bearer token
	AuthNone      = "none"
)

// Route is one route of the API, as registered: the table the README and the
// OpenAPI document describe.
type Route struct {
	Method string // GET, POST, DELETE; empty: any method (the WHIP endpoint)
	Path   string // a net/http pattern path, with {wildcards}
	Seed   string // the seed document it comes from ("000"…"004"), empty: the recorder's own
	Auth   string // AuthAPIKey, AuthSignature, AuthBearer or AuthNone
	// Seed004 routes are also served under Seed004Prefix.
	Seed004 bool
	// Fold routes (seed 003's) match their path case-insensitively.
	Fold    bool
	handler http.Handler
}

// Routes returns every route the server serves, in registration order. The
// Seed004 ones are served a second time under Seed004Prefix.
func (s *Server) Routes() []Route {
	out := make([]Route, len(s.routes))
	copy(out, s.routes)
	for i := range out {
		out[i].handler = nil
	}
	return out
}

// routeTable is the whole API, one line a route.
func (s *Server) routeTable(whip http.Handler) []Route {
	key := func(h authed) http.Handler { return s.auth(h) }
	fn := func(f http.HandlerFunc) http.Handler { return f }
	rs := []Route{
		// Seed 004: the recorder API (api.go, transcript.go).
		{Method: "POST", Path: "/api/recordings/start", Seed: "004", Seed004: true, handler: key(s.start)},
		{Method: "POST", Path: "/api/recordings/{conversationId}/{recorderId}/{instanceId}/stop", Seed: "004", Seed004: true, handler: key(s.stop)},
		{Method: "GET", Path: "/api/recordings/{conversationId}/{recorderId}/{instanceId}/state", Seed: "004", Seed004: true, handler: key(s.state)},
		{Method: "GET", Path: "/api/recordings/{conversationId}/{recorderId}/{instanceId}/storage/info", Seed: "004", Seed004: true, handler: key(s.storageInfo)},
		{Method: "GET", Path: "/api/recordings/{conversationId}/{recorderId}/{instanceId}", Seed: "004", Seed004: true, handler: key(s.recording)},
		{Method: "GET", Path: "/api/recordings/{conversationId}", Seed: "004", Seed004: true, handler: key(s.conversation)},
		{Method: "GET", Path: "/api/recordings/{conversationId}/active", Seed: "004", Seed004: true, handler: key(s.active)},
		{Method: "GET", Path: "/api/compositions/{conversationId}", Seed: "004", Seed004: true, handler: key(s.composition)},
		{Method: "POST", Path: "/api/compositions/{conversationId}/{recorderId}/{instanceId}", handler: key(s.requestComposite)}, // composite.mp4 (compositions.go)
		{Method: "POST", Path: "/api/storageproviders/{applicationId}/verify", Seed: "004", Seed004: true, handler: key(s.verify)},
		{Method: "GET", Path: "/api/recordings/attachment/{kind}/{conversationId}/{recorderId}/{instanceId}/{path...}", Seed: "004", Seed004: true, Auth: AuthSignature, handler: fn(s.attachment)},
		{Method: "POST", Path: "/api/recordings/chat/transcript/add", Seed: "004", Seed004: true, handler: key(s.chatAdd)},
		{Method: "POST", Path: "/api/recordings/cobrowse/event", Seed: "004", Seed004: true, handler: key(s.cobrowseAdd)},
		{Method: "GET", Path: "/api/recordings/{conversationId}/cobrowse", Seed: "004", Seed004: true, handler: key(s.cobrowseList)},
		// .../cobrowse/{sessionId}/url/attachment: a catch-all below a recording so it
		// cannot clash with the attachment route (whose first segment is the literal "attachment").
		{Method: "GET", Path: "/api/recordings/{conversationId}/{recorderId}/{instanceId}/{rest...}", Seed: "004", Seed004: true, handler: key(s.recordingSub)},

		// Extensions from the other seeds (DESIGN.md; lifecycle.go, commands.go, participants.go).
		{Method: "POST", Path: "/api/recordings/{conversationId}/{recorderId}/{instanceId}/pause", Seed: "000", handler: key(s.pause)},
		{Method: "POST", Path: "/api/recordings/{conversationId}/{recorderId}/{instanceId}/resume", Seed: "000", handler: key(s.resume)},
		{Method: "POST", Path: "/api/recordings/{conversationId}/{recorderId}/{instanceId}/metadata", Seed: "003", handler: key(s.metadata)},
		{Method: "GET", Path: "/api/recordings/{conversationId}/status", Seed: "000", handler: key(s.statusHistory)},
		{Method: "POST", Path: "/api/blackouts/start", Seed: "003", handler: key(s.blackoutStart)},
		{Method: "POST", Path: "/api/blackouts/stop", Seed: "003", handler: key(s.blackoutStop)},
		{Method: "GET", Path: "/api/participants", Seed: "003", handler: key(s.participants)},
		{Method: "GET", Path: "/api/participants/{userId}", Seed: "003", handler: key(s.participant)},
		{Method: "POST", Path: "/api/commands", Seed: "002", handler: key(s.command)},
	}
	rs = append(rs, s.telephonyRoutes()...) // seed 001 (telephony.go)
	rs = append(rs, s.agentRoutes()...)     // seed 003's agents (agents.go)
	rs = append(rs, []Route{

		// Operations.
		{Method: "GET", Path: "/healthz", Auth: AuthNone, handler: fn(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })},
		{Method: "GET", Path: "/readyz", Auth: AuthNone, handler: fn(s.ready)},

		// The operator routes (search.go), the web console (console.go) and
		// this API's description (openapi.go). The console's files and the
		// description are public: what the console shows comes from the API
		// with the key its user gives.
		{Method: "GET", Path: "/api/recordings", handler: key(s.search)},
		{Method: "GET", Path: "/api/recordings/{conversationId}/{recorderId}/{instanceId}/files", handler: key(s.files)},
		{Method: "GET", Path: "/api/keys/self", handler: key(s.keySelf)},         // keys.go: any scope
		{Method: "GET", Path: "/api/applications", handler: key(s.applications)}, // keys.go
		{Method: "GET", Path: "/console/", Auth: AuthNone, handler: consoleHandler()},
		{Method: "GET", Path: "/console", Auth: AuthNone, handler: http.RedirectHandler("/console/", http.StatusMovedPermanently)},
		{Method: "GET", Path: "/openapi.json", Auth: AuthNone, handler: fn(serveOpenAPI)},
	}...)
	rs = append(rs, Route{Method: "POST", Path: "/api/publishtokens", handler: key(s.publishToken)}) // token.go
	if s.events != nil {
		rs = append(rs, Route{Method: "GET", Path: "/api/events", Seed: "002", handler: key(func(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
			quota := s.m.Config().Quotas.For(k.OrganizationID).SSEConnections
			release, ok := s.sse.Acquire(k.OrganizationID, quota)
			if !ok {
				s.fail(w, r, recorder.QuotaError("event streams", quota))
				return
			}
			defer release()
			// In a fleet, the quota counts every instance's streams.
			releaseFleet, ok, err := s.m.FleetQuota(r.Context(), k.OrganizationID, recorder.QuotaSSE, rand.Text(), quota)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			if !ok {
				s.fail(w, r, recorder.QuotaError("event streams", quota))
				return
			}
			defer releaseFleet()
			s.events.Handler(func(*http.Request) (string, bool) { return k.OrganizationID, true }).ServeHTTP(w, r)
		})})
	}
	if whip != nil {
		rs = append(rs, Route{Path: "/whip/", Auth: AuthBearer, handler: whip})
	}
	for i := range rs {
		if rs[i].Auth == "" {
			rs[i].Auth = AuthAPIKey
		}
	}
	return rs
}

// register adds the routes to mux: each at its path, the Seed004 ones under
// Seed004Prefix too, and the folded (case-insensitive) paths to s.folded.
func (s *Server) register(mux *http.ServeMux, rs []Route) {
	s.folded = map[string]string{}
	for _, rt := range rs {
		pattern := rt.Path
		if rt.Method != "" {
			pattern = rt.Method + " " + rt.Path
		}
		mux.Handle(pattern, rt.handler)
		public := rt.Auth != AuthAPIKey // authenticate (auth.go) asks no API key of these
		s.public[pattern] = public
		if rt.Seed004 {
			prefixed := Seed004Prefix + rt.Path
			if rt.Method != "" {
				prefixed = rt.Method + " " + prefixed
			}
			s.public[prefixed] = public
			h := rt.handler
			mux.Handle(prefixed, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h.ServeHTTP(w, r.WithContext(recorder.WithURLPrefix(r.Context(), Seed004Prefix)))
			}))
		}
		if rt.Fold {
			s.folded[strings.ToLower(rt.Path)] = rt.Path
		}
	}
	s.routes = rs
}

// foldPath returns the registered path of a request to a case-insensitive
// route written in another case, or "".
func (s *Server) foldPath(p string) string {
	if c, ok := s.folded[strings.ToLower(p)]; ok && c != p {
		return c
	}
	return ""
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if s.m.Draining() { // after the first SIGTERM (recorder/drain.go)
		s.fail(w, r, &recorder.Error{Kind: recorder.KindUnavailable, Reason: "shutting_down",
			Message: "the recorder is shutting down: it finishes its recordings and accepts no new ones"})
		return
	}
	load, capacity := s.m.Load()
	if capacity > 0 && load >= capacity { // recorder/capacity.go
		w.Header().Set("Retry-After", "5")
		s.fail(w, r, &recorder.Error{Kind: recorder.KindUnavailable, Reason: "no_capacity",
			Message: fmt.Sprintf("the recorder carries %d streams, its capacity", load)})
		return
	}
	fmt.Fprintf(w, "ok load=%d capacity=%d\n", load, capacity)
}
