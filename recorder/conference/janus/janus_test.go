package janus_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/recorder/conference/internal/rtctest"
	"github.com/rtcrec/recorder/recorder/conference/janus"
	"github.com/rtcrec/recorder/recorder/conference/janus/janustest"
)

func TestMain(m *testing.M) {
	janustest.RunPublisherProcess()
	os.Exit(rtctest.Main(m))
}

// adapter returns an adapter of srv whose peers answer as DTLS servers.
func adapter(t testing.TB, srv *janustest.Server) *janus.Adapter {
	return adapterWith(t, srv, webrtc.DTLSRoleServer)
}

func adapterWith(t testing.TB, srv *janustest.Server, role webrtc.DTLSRole) *janus.Adapter {
	return janus.New(janus.Options{URL: srv.URL, API: testAPI(t, role), RequestTimeout: 3 * time.Second})
}

func testAPI(t testing.TB, role webrtc.DTLSRole) *webrtc.API {
	se := rtctest.SettingEngine()
	if err := se.SetAnsweringDTLSRole(role); err != nil {
		t.Fatal(err)
	}
	var me webrtc.MediaEngine
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(&me), webrtc.WithSettingEngine(se))
}

func TestJanus_FollowsPublishers(t *testing.T) {
	rtctest.NoLeaks(t, "conference/janus.(*")
	srv := janustest.Start(t)
	srv.CreateRoom(t, "1001")
	alice := srv.Publish(t, "1001", "alice", 440, "MIC")
	bob := srv.Publish(t, "1001", "bob", 660, "")

	s := rtctest.NewSink(t)
	joinAt := time.Now()
	leave, err := adapter(t, srv).Join(context.Background(), "org1", "1001", s)
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	byUser := s.NextByUser(t, 2, 10*time.Second)
	for _, tc := range []struct {
		user string
		typ  conference.StreamType
	}{{"alice", conference.StreamMIC}, {"bob", conference.StreamMIC}} {
		r := byUser[tc.user]
		if r == nil {
			t.Fatalf("no track of %s; got %v", tc.user, byUser)
		}
		if !strings.EqualFold(r.Codec.MimeType, "audio/PCMU") || r.Codec.ClockRate != 8000 {
			t.Errorf("%s: codec %+v, want audio/PCMU at 8000 Hz", tc.user, r.Codec)
		}
		if r.Kind != conference.KindAudio || r.StreamType != tc.typ || r.ConferenceID != "1001" {
			t.Errorf("%s: kind %s type %s conference %s", tc.user, r.Kind, r.StreamType, r.ConferenceID)
		}
	}
	time.Sleep(1500 * time.Millisecond)
	first := byUser["alice"].First()
	t.Logf("join to first RTP packet: %v", first.Sub(joinAt))
	byUser["alice"].CheckTone(t, 440, 660, 880)
	byUser["bob"].CheckTone(t, 660, 440, 880)

	// A late joiner is added promptly, an early leaver removed promptly.
	carolAt := time.Now()
	srv.Publish(t, "1001", "carol", 880, "SCREEN")
	carol := s.Next(t, 5*time.Second)
	if carol.UserID != "carol" || carol.StreamType != conference.StreamSCREEN {
		t.Fatalf("late track: user %s type %s, want carol SCREEN", carol.UserID, carol.StreamType)
	}
	if d := carol.Added.Sub(carolAt); d > 3*time.Second {
		t.Errorf("late joiner added %v after it published", d)
	}
	time.Sleep(1500 * time.Millisecond)
	carol.CheckTone(t, 880, 440, 660)

	leftAt := time.Now()
	alice.Leave()
	endedAt := byUser["alice"].WaitEnded(t, 3*time.Second)
	t.Logf("leave to track end: %v", endedAt.Sub(leftAt))
	if d := endedAt.Sub(leftAt); d > 1500*time.Millisecond {
		t.Errorf("early leaver's track ended %v after the leave", d)
	}
	// The others go on.
	time.Sleep(time.Second)
	byUser["bob"].CheckTone(t, 660, 440, 880)
	carol.CheckTone(t, 880, 440, 660)

	// A newcomer after a leave (Janus may reuse the freed m-line).
	srv.Publish(t, "1001", "dave", 1000, "")
	dave := s.Next(t, 5*time.Second)
	if dave.UserID != "dave" {
		t.Fatalf("track of %s, want dave", dave.UserID)
	}
	time.Sleep(1500 * time.Millisecond)
	dave.CheckTone(t, 1000, 440, 660, 880)
	carol.CheckTone(t, 880, 440, 660, 1000)

	// Unpublishing without leaving ends the track too.
	unpubAt := time.Now()
	bob.Unpublish(t)
	if d := byUser["bob"].WaitEnded(t, 3*time.Second).Sub(unpubAt); d > 1500*time.Millisecond {
		t.Errorf("unpublished track ended %v after the unpublish", d)
	}
	time.Sleep(500 * time.Millisecond)
	dave.CheckTone(t, 1000, 440, 660, 880)

	leave()
	leave() // idempotent
	for _, r := range []*rtctest.Track{carol, dave} {
		r.WaitEnded(t, 3*time.Second)
	}
	if err, ok := s.Ended(0); ok {
		t.Errorf("ConferenceEnded(%v) after leave", err)
	}
}

func TestJanus_EmptyRoomFillsLater(t *testing.T) {
	rtctest.NoLeaks(t, "conference/janus.(*")
	srv := janustest.Start(t)
	srv.CreateRoom(t, "1002")
	s := rtctest.NewSink(t)
	leave, err := adapter(t, srv).Join(context.Background(), "org1", "1002", s)
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	s.NoTrack(t, 500*time.Millisecond)
	srv.Publish(t, "1002", "dave", 523.25, "")
	d := s.Next(t, 5*time.Second)
	srv.Publish(t, "1002", "erin", 1000, "MIC")
	e := s.Next(t, 5*time.Second)
	if d.UserID != "dave" || e.UserID != "erin" {
		t.Fatalf("tracks of %s and %s, want dave and erin", d.UserID, e.UserID)
	}
	time.Sleep(1500 * time.Millisecond)
	d.CheckTone(t, 523.25, 1000)
	e.CheckTone(t, 1000, 523.25)
}

func TestJanus_NoSuchRoom(t *testing.T) {
	srv := janustest.Start(t)
	for _, room := range []string{"999999", "no-such-room"} {
		t.Run(room, func(t *testing.T) {
			start := time.Now()
			leave, err := adapter(t, srv).Join(context.Background(), "org1", room, rtctest.NewSink(t))
			if err == nil {
				leave()
				t.Fatal("Join succeeded")
			}
			if !errors.Is(err, conference.ErrNoConference) {
				t.Errorf("err = %v, want ErrNoConference", err)
			}
			if time.Since(start) > 5*time.Second {
				t.Errorf("Join took %v", time.Since(start))
			}
			t.Logf("error: %v", err)
		})
	}
}

func TestJanus_NotAnswering(t *testing.T) {
	// A port nobody listens on, and one that accepts but never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	for _, tc := range []struct{ name, addr string }{{"refused", closedAddr}, {"silent", l.Addr().String()}} {
		t.Run(tc.name, func(t *testing.T) {
			a := janus.New(janus.Options{URL: "http://" + tc.addr + "/janus", RequestTimeout: time.Second})
			start := time.Now()
			leave, err := a.Join(context.Background(), "org1", "1", rtctest.NewSink(t))
			if err == nil {
				leave()
				t.Fatal("Join succeeded")
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Join failed after %v, want about the 1 s request timeout", d)
			}
			t.Logf("error after %v: %v", time.Since(start), err)
		})
	}
}

func TestJanus_KilledMidRecording(t *testing.T) {
	rtctest.NoLeaks(t, "conference/janus.(*")
	srv := janustest.Start(t)
	srv.CreateRoom(t, "1003")
	srv.Publish(t, "1003", "frank", 440, "")
	s := rtctest.NewSink(t)
	leave, err := adapter(t, srv).Join(context.Background(), "org1", "1003", s)
	if err != nil {
		t.Fatal(err)
	}
	r := s.Next(t, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	killedAt := time.Now()
	srv.Kill()
	err, ok := s.Ended(5 * time.Second)
	if !ok {
		t.Fatal("no ConferenceEnded within 5 s of the kill")
	}
	t.Logf("ended %v after the kill: %v", time.Since(killedAt), err)
	if !errors.Is(err, janus.ErrSessionGone) {
		t.Errorf("ConferenceEnded(%v), want an error wrapping ErrSessionGone", err)
	}
	r.WaitEnded(t, 2*time.Second)
	done := make(chan struct{})
	go func() { leave(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("leave hangs after the server died")
	}
}

func TestJanus_RoomDestroyed(t *testing.T) {
	rtctest.NoLeaks(t, "conference/janus.(*")
	srv := janustest.Start(t)
	srv.CreateRoom(t, "1004")
	srv.Publish(t, "1004", "gina", 440, "")
	s := rtctest.NewSink(t)
	leave, err := adapter(t, srv).Join(context.Background(), "org1", "1004", s)
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	r := s.Next(t, 10*time.Second)
	srv.DestroyRoom(t, "1004")
	if err, ok := s.Ended(5 * time.Second); !ok {
		t.Fatal("no ConferenceEnded within 5 s of the room's end")
	} else if err != nil {
		t.Errorf("ConferenceEnded(%v), want nil for a closed room", err)
	}
	r.WaitEnded(t, 2*time.Second)
}

func TestJanus_Video(t *testing.T) {
	rtctest.NoLeaks(t, "conference/janus.(*")
	srv := janustest.Start(t)
	srv.CreateRoom(t, "1005")
	pub := srv.PublishVideo(t, "1005", "hal", 440, "", "SCREEN")

	t.Run("audio only", func(t *testing.T) {
		s := rtctest.NewSink(t)
		leave, err := adapter(t, srv).Join(context.Background(), "org1", "1005", s)
		if err != nil {
			t.Fatal(err)
		}
		defer leave()
		if tr := s.Next(t, 5*time.Second); tr.Kind != conference.KindAudio {
			t.Errorf("track of kind %s", tr.Kind)
		}
		s.NoTrack(t, time.Second)
	})
	t.Run("audio and video", func(t *testing.T) {
		a := janus.New(janus.Options{URL: srv.URL, API: testAPI(t, webrtc.DTLSRoleServer), Video: true})
		s := rtctest.NewSink(t)
		s.Discard = true
		leave, err := a.Join(context.Background(), "org1", "1005", s)
		if err != nil {
			t.Fatal(err)
		}
		defer leave()
		kinds := map[conference.Kind]*rtctest.Track{}
		for range 2 {
			tr := s.Next(t, 5*time.Second)
			kinds[tr.Kind] = tr
		}
		v, au := kinds[conference.KindVideo], kinds[conference.KindAudio]
		if v == nil || au == nil {
			t.Fatalf("tracks %v, want audio and video", kinds)
		}
		if !strings.EqualFold(v.Codec.MimeType, "video/VP8") || v.StreamType != conference.StreamSCREEN || v.UserID != "hal" {
			t.Errorf("video track: codec %s type %s user %s", v.Codec.MimeType, v.StreamType, v.UserID)
		}
		if au.StreamType != conference.StreamMIC || au.RequestKeyframe != nil || v.RequestKeyframe == nil {
			t.Errorf("audio track type %s, keyframe funcs audio %v video %v", au.StreamType, au.RequestKeyframe != nil, v.RequestKeyframe != nil)
		}
		time.Sleep(500 * time.Millisecond)
		if n := v.Packets(); n < 5 {
			t.Errorf("%d video packets in 0.5 s", n)
		}
		// Janus turns a subscriber's PLI into one to the publisher.
		before := pub.PLIs()
		deadline := time.Now().Add(3 * time.Second)
		for pub.PLIs() == before && time.Now().Before(deadline) {
			if err := v.RequestKeyframe(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if pub.PLIs() == before {
			t.Error("the publisher got no PLI after RequestKeyframe")
		}
	})
}

func TestJanus_FrozenMidRecording(t *testing.T) {
	rtctest.NoLeaks(t, "conference/janus.(*")
	srv := janustest.Start(t)
	srv.CreateRoom(t, "1006")
	srv.Publish(t, "1006", "ivan", 440, "")
	s := rtctest.NewSink(t)
	a := janus.New(janus.Options{URL: srv.URL, API: testAPI(t, webrtc.DTLSRoleServer), RequestTimeout: time.Second, Keepalive: time.Second})
	leave, err := a.Join(context.Background(), "org1", "1006", s)
	if err != nil {
		t.Fatal(err)
	}
	r := s.Next(t, 10*time.Second)
	frozenAt := time.Now()
	srv.Freeze()
	err, ok := s.Ended(8 * time.Second)
	if !ok {
		t.Fatal("no ConferenceEnded within 8 s of the freeze (want 2×(keepalive+timeout) = 4 s)")
	}
	t.Logf("ended %v after the freeze: %v", time.Since(frozenAt), err)
	if !errors.Is(err, janus.ErrSessionGone) {
		t.Errorf("ConferenceEnded(%v), want an error wrapping ErrSessionGone", err)
	}
	r.WaitEnded(t, 2*time.Second)
	start := time.Now()
	leave()
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("leave took %v with a frozen server", d)
	}
}

// TestJanus_RoomNamesAndPIN: on a Janus with string ids a conferenceId that
// is a name is the room's name; a room with a PIN is joined with
// Options.PIN and refused without it.
func TestJanus_RoomNamesAndPIN(t *testing.T) {
	rtctest.NoLeaks(t, "conference/janus.(*")
	srv := janustest.StartWith(t, janustest.Config{StringIDs: true})
	srv.CreateRoomPIN(t, "team-standup", "1234")
	srv.Publish(t, "team-standup", "judy", 440, "")
	for _, tc := range []struct {
		name, pin string
		ok        bool
	}{{"with pin", "1234", true}, {"without pin", "", false}, {"wrong pin", "4321", false}} {
		t.Run(tc.name, func(t *testing.T) {
			a := janus.New(janus.Options{URL: srv.URL, API: testAPI(t, webrtc.DTLSRoleServer), PIN: tc.pin})
			s := rtctest.NewSink(t)
			leave, err := a.Join(context.Background(), "org1", "team-standup", s)
			if !tc.ok {
				if err == nil {
					leave()
					t.Fatal("joined a PIN-protected room without its PIN")
				}
				t.Logf("error: %v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer leave()
			tr := s.Next(t, 5*time.Second)
			if tr.UserID != "judy" || tr.ConferenceID != "team-standup" || tr.StreamID == "" {
				t.Errorf("track: user %q conference %q stream %q", tr.UserID, tr.ConferenceID, tr.StreamID)
			}
			time.Sleep(1500 * time.Millisecond)
			tr.CheckTone(t, 440, 660)
		})
	}
	// A room name that does not exist.
	if _, err := adapter(t, srv).Join(context.Background(), "org1", "no-such-room", rtctest.NewSink(t)); !errors.Is(err, conference.ErrNoConference) {
		t.Errorf("Join of a missing named room: %v, want ErrNoConference", err)
	}
}

// TestJanus_LeaveReadsWhatCameBefore: a publisher leaves while the
// recorder's reader of its track is a second behind (paused): the track
// still gives what Janus forwarded before the leave, none of it skipped,
// the publisher's tone, then ends with io.EOF within leaveMax (10 s).
// (It ended at once before: the second was lost.)
func TestJanus_LeaveReadsWhatCameBefore(t *testing.T) {
	rtctest.NoLeaks(t, "conference/janus.(*")
	srv := janustest.Start(t)
	srv.CreateRoom(t, "1003")
	alice := srv.Publish(t, "1003", "alice", 440, "MIC")
	gone := make(chan struct{}, 1)
	a := janus.New(janus.Options{URL: srv.URL, API: testAPI(t, webrtc.DTLSRoleServer), RequestTimeout: 3 * time.Second,
		Logger: slog.New(onMessage{"janus publisher gone", gone})})
	s := rtctest.NewSink(t)
	leave, err := a.Join(context.Background(), "org1", "1003", s)
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	s.Next(t, 10*time.Second).CheckGoneKeepsWhatCameBefore(t, 440, func() {
		alice.Leave()
		select {
		case <-gone:
		case <-time.After(10 * time.Second):
			t.Fatal("the adapter did not hear of the leave in 10 s")
		}
	})
}

// onMessage is a slog.Handler that signals on each record of one message.
type onMessage struct {
	msg string
	ch  chan struct{}
}

func (h onMessage) Enabled(context.Context, slog.Level) bool { return true }
func (h onMessage) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		select {
		case h.ch <- struct{}{}:
		default:
		}
	}
	return nil
}
func (h onMessage) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h onMessage) WithGroup(string) slog.Handler      { return h }
