package whep_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/recorder/conference/internal/rtctest"
	"github.com/rtcrec/recorder/recorder/conference/whep"
)

func TestMain(m *testing.M) { os.Exit(rtctest.Main(m)) }

// server is a WHEP endpoint: a Pion peer per session that sends a PCMU tone.
// Conference ids select error replies: err400, err404, err503, noloc.
type server struct {
	t     testing.TB
	srv   *httptest.Server
	freqs map[string]float64 // tone by stream (by conference when no stream)
	token string             // required bearer token, if set
	api   *webrtc.API

	mu       sync.Mutex
	n        int
	sessions map[string]*peer // by resource id
	deleted  []string
	posts    []string // URL paths posted to
}

type peer struct {
	pc   *webrtc.PeerConnection
	tone *rtctest.ToneSender
}

func newServer(t *testing.T, freqs map[string]float64) *server {
	s := &server{t: t, freqs: freqs, sessions: make(map[string]*peer), api: rtctest.API(t)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /c/{conf}/whep", s.post)
	mux.HandleFunc("POST /c/{conf}/{stream}/whep", s.post)
	mux.HandleFunc("DELETE /resource/{id}", s.delete)
	s.srv = httptest.NewServer(mux) // 127.0.0.1
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

func (s *server) post(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.posts = append(s.posts, r.URL.Path)
	s.mu.Unlock()
	if s.token != "" && r.Header.Get("Authorization") != "Bearer "+s.token {
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
		w.Header().Set("Retry-After", "5")
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
		return
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

func (s *server) answer(offer string, freq float64, id string) (string, *peer, error) {
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

func (s *server) delete(w http.ResponseWriter, r *http.Request) {
	if s.token != "" && r.Header.Get("Authorization") != "Bearer "+s.token {
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

// drop closes every server peer without a DELETE: the endpoint vanished.
func (s *server) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, p := range s.sessions {
		p.tone.Stop()
		_ = p.pc.Close()
		delete(s.sessions, id)
	}
	s.srv.CloseClientConnections()
}

func (s *server) state() (live int, deleted []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions), append([]string(nil), s.deleted...)
}

func (s *server) adapter(t testing.TB, template string, streams ...string) *whep.Adapter {
	return whep.New(whep.Options{
		URLTemplate: s.srv.URL + template, Streams: streams, Token: s.token,
		API: rtctest.API(t), RequestTimeout: 5 * time.Second,
	})
}

func TestWHEP_OneEndpointPerConference(t *testing.T) {
	rtctest.NoLeaks(t, "conference/whep.(*")
	s := newServer(t, map[string]float64{"room1": 440})
	sink := rtctest.NewSink(t)
	joinAt := time.Now()
	leave, err := s.adapter(t, "/c/{conferenceId}/whep").Join(context.Background(), "org1", "room1", sink)
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	tr := sink.Next(t, 5*time.Second)
	if tr.UserID != "room1" || tr.ConferenceID != "room1" || tr.Kind != conference.KindAudio || tr.StreamType != conference.StreamMIC {
		t.Errorf("track: user %q conference %q kind %s type %s", tr.UserID, tr.ConferenceID, tr.Kind, tr.StreamType)
	}
	if !strings.EqualFold(tr.Codec.MimeType, "audio/PCMU") || tr.Codec.ClockRate != 8000 {
		t.Errorf("codec %+v, want PCMU/8000", tr.Codec)
	}
	time.Sleep(1500 * time.Millisecond)
	t.Logf("join to first RTP packet: %v", tr.First().Sub(joinAt))
	tr.CheckTone(t, 440, 660)

	leave()
	leave() // idempotent
	tr.WaitEnded(t, 2*time.Second)
	if live, deleted := s.state(); live != 0 || len(deleted) != 1 {
		t.Errorf("after leave: %d sessions live, deleted %v; want 0 and one DELETE", live, deleted)
	}
	if err, ok := sink.Ended(0); ok {
		t.Errorf("ConferenceEnded(%v) after leave", err)
	}
}

func TestWHEP_StreamList(t *testing.T) {
	rtctest.NoLeaks(t, "conference/whep.(*")
	s := newServer(t, map[string]float64{"alice": 440, "bob": 660})
	s.token = "secret"
	sink := rtctest.NewSink(t)
	leave, err := s.adapter(t, "/c/{conferenceId}/{streamId}/whep", "alice", "bob").Join(context.Background(), "org1", "room2", sink)
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	byUser := sink.NextByUser(t, 2, 10*time.Second)
	time.Sleep(1500 * time.Millisecond)
	if byUser["alice"] == nil || byUser["bob"] == nil {
		t.Fatalf("tracks of %v, want alice and bob", byUser)
	}
	byUser["alice"].CheckTone(t, 440, 660)
	byUser["bob"].CheckTone(t, 660, 440)
	if got := s.posts; len(got) != 2 || got[0] != "/c/room2/alice/whep" || got[1] != "/c/room2/bob/whep" {
		t.Errorf("POSTs to %v", got)
	}
	leave()
	if live, deleted := s.state(); live != 0 || len(deleted) != 2 {
		t.Errorf("after leave: %d sessions live, deleted %v; want 0 and two DELETEs", live, deleted)
	}
}

func TestWHEP_ErrorReplies(t *testing.T) {
	rtctest.NoLeaks(t, "conference/whep.(*")
	s := newServer(t, map[string]float64{"noloc": 440, "alice": 440})
	var he *whep.HTTPError
	for _, tc := range []struct {
		name, template, conf string
		streams              []string
		check                func(error) bool
	}{
		{"400", "/c/{conferenceId}/whep", "err400", nil, func(err error) bool {
			return errors.As(err, &he) && he.Status == 400 && strings.Contains(he.Body, "malformed offer")
		}},
		{"404", "/c/{conferenceId}/whep", "err404", nil, func(err error) bool { return errors.Is(err, conference.ErrNoConference) }},
		{"503", "/c/{conferenceId}/whep", "err503", nil, func(err error) bool { return errors.As(err, &he) && he.Status == 503 }},
		{"unknown stream", "/c/{conferenceId}/whep", "nobody", nil, func(err error) bool { return errors.Is(err, conference.ErrNoConference) }},
		{"201 without Location", "/c/{conferenceId}/whep", "noloc", nil, func(err error) bool { return errors.Is(err, whep.ErrNoLocation) }},
		{"second stream fails", "/c/{conferenceId}/{streamId}/whep", "room3", []string{"alice", "carol"}, func(err error) bool { return errors.Is(err, conference.ErrNoConference) }},
		{"no streams configured", "/c/{conferenceId}/{streamId}/whep", "room3", nil, func(err error) bool { return err != nil }},
		{"connection refused", "", "x", nil, func(err error) bool { return err != nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := s.adapter(t, tc.template, tc.streams...)
			if tc.template == "" {
				a = whep.New(whep.Options{URLTemplate: "http://127.0.0.1:1/{conferenceId}", RequestTimeout: time.Second})
			}
			liveBefore, deletedBefore := s.state()
			leave, err := a.Join(context.Background(), "org1", tc.conf, rtctest.NewSink(t))
			if err == nil {
				leave()
				t.Fatal("Join succeeded")
			}
			if !tc.check(err) {
				t.Errorf("wrong error: %v", err)
			}
			t.Logf("error: %v", err)
			if tc.name == "second stream fails" {
				// The first stream's session was released.
				if live, deleted := s.state(); live != liveBefore || len(deleted) != len(deletedBefore)+1 {
					t.Errorf("%d sessions live, deleted %v", live, deleted)
				}
			}
		})
	}
}

func TestWHEP_EndpointVanishes(t *testing.T) {
	rtctest.NoLeaks(t, "conference/whep.(*")
	s := newServer(t, map[string]float64{"room4": 440})
	se := rtctest.SettingEngine()
	se.SetICETimeouts(time.Second, 2*time.Second, 200*time.Millisecond)
	var me webrtc.MediaEngine
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	a := whep.New(whep.Options{
		URLTemplate: s.srv.URL + "/c/{conferenceId}/whep",
		API:         webrtc.NewAPI(webrtc.WithMediaEngine(&me), webrtc.WithSettingEngine(se)),
	})
	sink := rtctest.NewSink(t)
	leave, err := a.Join(context.Background(), "org1", "room4", sink)
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	tr := sink.Next(t, 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	s.drop()
	droppedAt := time.Now()
	err, ok := sink.Ended(10 * time.Second)
	if !ok {
		t.Fatal("no ConferenceEnded within 10 s of the endpoint's end")
	}
	t.Logf("ended %v after the drop: %v", time.Since(droppedAt), err)
	if err != nil {
		t.Errorf("ConferenceEnded(%v), want nil: the endpoint closed the session", err)
	}
	tr.WaitEnded(t, 2*time.Second)
}
