package whep_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/recorder/conference/internal/rtctest"
	"github.com/rtcrec/recorder/recorder/conference/whep"
	"github.com/rtcrec/recorder/recorder/conference/whep/wheptest"
	"github.com/rtcrec/recorder/recorder/conference/whip"
)

func TestMain(m *testing.M) { os.Exit(rtctest.Main(m)) }

func adapter(t testing.TB, s *wheptest.Server, template string, streams ...string) *whep.Adapter {
	return whep.New(whep.Options{
		URLTemplate: s.URL + template, Streams: streams, Token: s.Token,
		API: rtctest.API(t), RequestTimeout: 5 * time.Second,
	})
}

func TestWHEP_OneEndpointPerConference(t *testing.T) {
	rtctest.NoLeaks(t, "conference/whep.(*")
	s := wheptest.New(t, map[string]float64{"room1": 440})
	sink := rtctest.NewSink(t)
	joinAt := time.Now()
	leave, err := adapter(t, s, "/c/{conferenceId}/whep").Join(context.Background(), "org1", "room1", sink)
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
	if live, deleted := s.State(); live != 0 || len(deleted) != 1 {
		t.Errorf("after leave: %d sessions live, deleted %v; want 0 and one DELETE", live, deleted)
	}
	if err, ok := sink.Ended(0); ok {
		t.Errorf("ConferenceEnded(%v) after leave", err)
	}
}

// TestWHEP_Redirect: a 307 from the endpoint is followed, and the relative
// Location resolves against where the offer landed.
func TestWHEP_Redirect(t *testing.T) {
	rtctest.NoLeaks(t, "conference/whep.(*")
	s := wheptest.New(t, map[string]float64{"room6": 440})
	sink := rtctest.NewSink(t)
	leave, err := adapter(t, s, "/moved/to/a/deeper/{conferenceId}/whep").Join(context.Background(), "org1", "room6", sink)
	if err != nil {
		t.Fatal(err)
	}
	sink.Next(t, 5*time.Second)
	leave()
	if live, deleted := s.State(); live != 0 || len(deleted) != 1 {
		t.Errorf("after leave: %d sessions live, deleted %v; want the session DELETEd", live, deleted)
	}
}

func TestWHEP_StreamList(t *testing.T) {
	rtctest.NoLeaks(t, "conference/whep.(*")
	s := wheptest.New(t, map[string]float64{"alice": 440, "bob": 660})
	s.Token = "secret"
	sink := rtctest.NewSink(t)
	leave, err := adapter(t, s, "/c/{conferenceId}/{streamId}/whep", "alice", "bob").Join(context.Background(), "org1", "room2", sink)
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
	if got := s.Posts(); len(got) != 2 || got[0] != "/c/room2/alice/whep" || got[1] != "/c/room2/bob/whep" {
		t.Errorf("POSTs to %v", got)
	}
	leave()
	if live, deleted := s.State(); live != 0 || len(deleted) != 2 {
		t.Errorf("after leave: %d sessions live, deleted %v; want 0 and two DELETEs", live, deleted)
	}
}

func TestWHEP_ErrorReplies(t *testing.T) {
	rtctest.NoLeaks(t, "conference/whep.(*")
	s := wheptest.New(t, map[string]float64{"noloc": 440, "alice": 440})
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
		{"503", "/c/{conferenceId}/whep", "err503", nil, func(err error) bool {
			return errors.As(err, &he) && he.Status == 503 && he.RetryAfter == 30*time.Second
		}},
		{"unknown stream", "/c/{conferenceId}/whep", "nobody", nil, func(err error) bool { return errors.Is(err, conference.ErrNoConference) }},
		{"201 without Location", "/c/{conferenceId}/whep", "noloc", nil, func(err error) bool { return errors.Is(err, whep.ErrNoLocation) }},
		{"second stream fails", "/c/{conferenceId}/{streamId}/whep", "room3", []string{"alice", "carol"}, func(err error) bool { return errors.Is(err, conference.ErrNoConference) }},
		{"no streams configured", "/c/{conferenceId}/{streamId}/whep", "room3", nil, func(err error) bool { return err != nil }},
		{"connection refused", "", "x", nil, func(err error) bool { return err != nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := adapter(t, s, tc.template, tc.streams...)
			if tc.template == "" {
				a = whep.New(whep.Options{URLTemplate: "http://127.0.0.1:1/{conferenceId}", RequestTimeout: time.Second})
			}
			liveBefore, deletedBefore := s.State()
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
				if live, deleted := s.State(); live != liveBefore || len(deleted) != len(deletedBefore)+1 {
					t.Errorf("%d sessions live, deleted %v", live, deleted)
				}
			}
		})
	}
}

func TestWHEP_EndpointVanishes(t *testing.T) {
	rtctest.NoLeaks(t, "conference/whep.(*")
	s := wheptest.New(t, map[string]float64{"room4": 440})
	se := rtctest.SettingEngine()
	se.SetICETimeouts(time.Second, 2*time.Second, 200*time.Millisecond)
	var me webrtc.MediaEngine
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	a := whep.New(whep.Options{
		URLTemplate: s.URL + "/c/{conferenceId}/whep",
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
	s.Drop()
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

func TestWHEP_RetryAfter(t *testing.T) {
	rtctest.NoLeaks(t, "conference/whep.(*")
	s := wheptest.New(t, map[string]float64{"busyonce": 440})
	sink := rtctest.NewSink(t)
	start := time.Now()
	leave, err := adapter(t, s, "/c/{conferenceId}/whep").Join(context.Background(), "org1", "busyonce", sink)
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	if d := time.Since(start); d < time.Second {
		t.Errorf("joined after %v, before the endpoint's Retry-After of 1 s", d)
	}
	if got := s.Posts(); len(got) != 2 {
		t.Errorf("%d POSTs, want 2", len(got))
	}
	sink.Next(t, 5*time.Second)
}

// lockedSink is a Sink whose AddTrack takes a lock that the caller of Join
// holds around it, as the recorder's room does.
type lockedSink struct {
	mu *sync.Mutex
	*rtctest.Sink
}

func (s lockedSink) AddTrack(ct *conference.Track) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Sink.AddTrack(ct)
}

// trackLog signals on seen when the adapter logs a track (onTrack).
type trackLog struct {
	slog.Handler
	seen chan struct{}
}

func (h trackLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "whep track" {
		select {
		case h.seen <- struct{}{}:
		default:
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h trackLog) WithAttrs(as []slog.Attr) slog.Handler {
	return trackLog{Handler: h.Handler.WithAttrs(as), seen: h.seen}
}

func (h trackLog) WithGroup(name string) slog.Handler {
	return trackLog{Handler: h.Handler.WithGroup(name), seen: h.seen}
}

// TestWHEP_TrackDuringJoin: the first stream's track arrives while Join still
// pulls the second, and the sink's AddTrack needs the lock the caller holds
// around Join (the recorder's room). Join returns, and both tracks reach the
// sink once the caller lets go; it deadlocked when the track was handed over
// from Pion's goroutine at once.
func TestWHEP_TrackDuringJoin(t *testing.T) {
	rtctest.NoLeaks(t, "conference/whep.(*")
	s := wheptest.New(t, map[string]float64{"alice": 440, "bob": 660})
	seen := make(chan struct{}, 1)
	// bob's offer is held until alice's track has reached the adapter.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/bob/") {
			select {
			case <-seen:
			case <-time.After(10 * time.Second):
				t.Error("alice's track never came while bob's offer waited")
			}
		}
		u, _ := url.Parse(s.URL)
		httputil.NewSingleHostReverseProxy(u).ServeHTTP(w, r)
	}))
	defer proxy.Close()
	a := whep.New(whep.Options{URLTemplate: proxy.URL + "/c/{conferenceId}/{streamId}/whep", Streams: []string{"alice", "bob"},
		API: rtctest.API(t), RequestTimeout: 15 * time.Second,
		Logger: slog.New(trackLog{Handler: slog.Default().Handler(), seen: seen})})
	var roomMu sync.Mutex
	sink := lockedSink{mu: &roomMu, Sink: rtctest.NewSink(t)}
	roomMu.Lock()
	joined := make(chan error, 1)
	var leave func()
	go func() {
		var err error
		leave, err = a.Join(context.Background(), "org1", "room7", sink)
		joined <- err
	}()
	select {
	case err := <-joined:
		roomMu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		roomMu.Unlock()
		t.Fatal("Join did not return: a track arriving during Join waited for the caller's lock")
	}
	defer leave()
	byUser := sink.NextByUser(t, 2, 10*time.Second)
	if byUser["alice"] == nil || byUser["bob"] == nil {
		t.Fatalf("tracks of %v, want alice and bob", byUser)
	}
	time.Sleep(1500 * time.Millisecond)
	byUser["alice"].CheckTone(t, 440, 660)
	byUser["bob"].CheckTone(t, 660, 440)
}

// TestWHEP_EndpointClosesWhileBehind: the endpoint closes the session (its
// DTLS close_notify, no DELETE) while the recorder's reader of the track is
// a second behind (paused): with Options.Receive the track still gives what
// came before the close, none of it skipped, the tone, then ends with
// io.EOF; the conference ends. (With Options.API alone, Pion closes the
// connection at the close_notify and the second is lost.)
func TestWHEP_EndpointClosesWhileBehind(t *testing.T) {
	rtctest.NoLeaks(t, "conference/whep.(*")
	s := wheptest.New(t, map[string]float64{"room9": 440})
	settings := whip.Settings{LoopbackOnly: true, UDP4Only: true}
	if rtctest.InNetNS() {
		settings = whip.Settings{Interfaces: []string{rtctest.Interface}, IncludeLoopback: true, UDP4Only: true}
	}
	receive, _, closeAPI, err := whip.NewAPIs(settings)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAPI()
	a := whep.New(whep.Options{URLTemplate: s.URL + "/c/{conferenceId}/whep", Receive: receive, RequestTimeout: 5 * time.Second})
	sink := rtctest.NewSink(t)
	leave, err := a.Join(context.Background(), "org1", "room9", sink)
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	sink.Next(t, 5*time.Second).CheckGoneKeepsWhatCameBefore(t, 440, func() {
		s.Drop()
		if err, ok := sink.Ended(10 * time.Second); !ok || err != nil {
			t.Fatalf("ConferenceEnded: %v (came: %v), want nil: the endpoint closed the session", err, ok)
		}
	})
}
