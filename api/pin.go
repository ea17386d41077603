package api

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/recorder"
	"github.com/rtcrec/recorder/recorder/cluster"
)

// whipPinned sends a WHIP offer for a conference pinned to another live
// instance of the fleet there, with a 307 to the same path on that instance's
// public URL (RFC 9725 §4.7 allows redirects; the client sends the offer
// again), so that every track of a conference lands on one instance. The
// conference is pinned to this instance when it is not pinned to a live one.
// Only an offer whose bearer may publish to the conference is pinned or
// redirected; anything else goes to the WHIP endpoint, which answers it.
func whipPinned(node *cluster.Node, srv func() *Server, next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conf, ok := strings.CutPrefix(r.URL.Path, "/whip/")
		if r.Method != http.MethodPost || !ok || recorder.ValidateID("conferenceId", conf) != nil {
			next.ServeHTTP(w, r)
			return
		}
		org, ok := srv().publishOrganization(r.Header.Get("Authorization"), conf)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		in, err := node.Pin(r.Context(), org, conf, node.RecorderID())
		if err != nil {
			log.Warn("whip: cannot read the conference's pin; serving here", "conferenceId", conf, "err", err)
			next.ServeHTTP(w, r)
			return
		}
		if in.RecorderID == node.RecorderID() {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Expose-Headers", "Location, Link")
		w.Header().Set("Location", strings.TrimSuffix(in.PublicURL, "/")+r.URL.RequestURI())
		w.WriteHeader(http.StatusTemporaryRedirect)
	})
}

// publishOrganization returns the organization of a bearer (an API key with
// the publish scope, or a publish token for conf), without the checks of
// user and stream type the WHIP endpoint makes.
func (s *Server) publishOrganization(authorization, conf string) (string, bool) {
	token, _ := strings.CutPrefix(authorization, "Bearer ")
	token = strings.TrimSpace(token)
	if k := s.key(token); k != nil {
		return k.OrganizationID, k.HasScope(config.ScopePublish)
	}
	if s.tokens == nil {
		return "", false
	}
	c, err := s.tokens.Check(token)
	if err != nil || c.ConferenceID != conf {
		return "", false
	}
	return c.OrganizationID, true
}
