// Package wheptest runs a WHEP endpoint for tests: Pion peers that answer
// offers and send tones, with error replies on demand.
package wheptest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/rtcrec/recorder/recorder/conference/internal/rtctest"
)

// Server is a WHEP endpoint on 127.0.0.1: a Pion peer per session that
// sends a PCMU tone. Its endpoints are POST /c/{conf}/whep and
// /c/{conf}/{stream}/whep (and /moved/to/a/deeper/{conf}/whep, which
// redirects to the first with 307); sessions are DELETE /resource/{id},
// given in Location relative to the endpoint. Conference ids select error replies:
// err400, err404, err503 (Retry-After 30), busyonce (503 with Retry-After 1
// the first time), and noloc (201 without Location).
type Server struct {
	// URL is the server's base URL.
	URL string
	// Token, when set, is the bearer token every request must carry.
	Token string

	srv   *httptest.Server
	freqs map[string]float64 // tone by stream (by conference when no stream)
	api   *webrtc.API

	mu       sync.Mutex
	n        int
	sessions map[string]*peer // by resource id
	deleted  []string
	busy     int      // busyonce requests so far
	posts    []string // URL paths posted to
}

type peer struct {
	pc   *webrtc.PeerConnection
	tone *rtctest.ToneSender
}

// New starts a server whose stream (or conference, for endpoints without a
// stream) named k sends a tone at freqs[k] Hz; others are 404. It stops when
// the test ends.
func New(t testing.TB, freqs map[string]float64) *Server {
	s := &Server{freqs: freqs, sessions: make(map[string]*peer), api: rtctest.API(t)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /c/{conf}/whep", s.post)
	mux.HandleFunc("POST /c/{conf}/{stream}/whep", s.post)
	mux.HandleFunc("DELETE /resource/{id}", s.delete)
	mux.HandleFunc("POST /moved/to/a/deeper/{conf}/whep", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/c/"+r.PathValue("conf")+"/whep", http.StatusTemporaryRedirect)
	})
	s.srv = httptest.NewServer(mux) // 127.0.0.1
	s.URL = s.srv.URL
	t.Cleanup(func() {
		s.srv.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, p := range s.sessions {
			p.tone.Stop()
			_ = p.pc.Close()
		}
	})
	return s
}

func (s *Server) post(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.posts = append(s.posts, r.URL.Path)
	s.mu.Unlock()
	if s.Token != "" && r.Header.Get("Authorization") != "Bearer "+s.Token {
		http.Error(w, "bad token", http.StatusUnauthorized)
		return
	}
	if r.Header.Get("Content-Type") != "application/sdp" {
		http.Error(w, "want application/sdp", http.StatusUnsupportedMediaType)
		return
	}
	conf, stream := r.PathValue("conf"), r.PathValue("stream")
	switch conf {
	case "err400":
		http.Error(w, "malformed offer", http.StatusBadRequest)
		return
	case "err404":
		http.Error(w, "no such stream", http.StatusNotFound)
		return
	case "err503":
		w.Header().Set("Retry-After", "30")
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
		return
	case "busyonce":
		s.mu.Lock()
		s.busy++
		first := s.busy == 1
		s.mu.Unlock()
		if first {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "busy, come back in a second", http.StatusServiceUnavailable)
			return
		}
	}
	key := stream
	if key == "" {
		key = conf
	}
	freq, ok := s.freqs[key]
	if !ok {
		http.Error(w, "no such stream", http.StatusNotFound)
		return
	}
	offer, _ := io.ReadAll(r.Body)
	answer, p, err := s.answer(string(offer), freq, key)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.n++
	id := strconv.Itoa(s.n)
	s.sessions[id] = p
	s.mu.Unlock()
	if conf != "noloc" {
		// Relative to the endpoint: /c/conf/whep → /resource/id.
		loc := "../../resource/" + id
		if stream != "" {
			loc = "../../../resource/" + id
		}
		w.Header().Set("Location", loc)
	}
	w.Header().Add("Link", `<stun:127.0.0.1:3478>; rel="ice-server"`)
	w.Header().Set("Content-Type", "application/sdp")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

func (s *Server) answer(offer string, freq float64, id string) (string, *peer, error) {
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return "", nil, err
	}
	tone, err := rtctest.NewToneSender(freq, "audio", id)
	if err != nil {
		return "", nil, err
	}
	if _, err := pc.AddTrack(tone.Track); err != nil {
		return "", nil, err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", nil, err
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", nil, err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return "", nil, err
	}
	<-gathered
	tone.Start()
	return pc.LocalDescription().SDP, &peer{pc: pc, tone: tone}, nil
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	if s.Token != "" && r.Header.Get("Authorization") != "Bearer "+s.Token {
		http.Error(w, "bad token", http.StatusUnauthorized)
		return
	}
	id := r.PathValue("id")
	s.mu.Lock()
	p, ok := s.sessions[id]
	delete(s.sessions, id)
	if ok {
		s.deleted = append(s.deleted, id)
	}
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	p.tone.Stop()
	_ = p.pc.Close()
	w.WriteHeader(http.StatusOK)
}

// Drop closes every session's peer without a DELETE: the endpoint vanished.
func (s *Server) Drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, p := range s.sessions {
		p.tone.Stop()
		_ = p.pc.Close()
		delete(s.sessions, id)
	}
	s.srv.CloseClientConnections()
}

// State returns the number of live sessions and the ids deleted so far.
func (s *Server) State() (live int, deleted []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions), append([]string(nil), s.deleted...)
}

// Posts returns the URL paths offers were posted to.
func (s *Server) Posts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.posts...)
}
