package janus_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/recorder/conference/internal/rtctest"
	"github.com/rtcrec/recorder/recorder/conference/janus"
	"github.com/rtcrec/recorder/recorder/conference/janus/janustest"
)

func TestMain(m *testing.M) { os.Exit(rtctest.Main(m)) }

// recTrack is a track the test sink received, read to the end.
type recTrack struct {
	*conference.Track
	added time.Time

	mu      sync.Mutex
	first   time.Time // first packet
	ended   time.Time
	err     error
	packets int
	pcm     []int16 // decoded µ-law
	done    chan struct{}
}

func (r *recTrack) read() {
	defer close(r.done)
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, err := r.Reader.ReadRTP(buf)
		if err != nil {
			r.mu.Lock()
			r.ended, r.err = time.Now(), err
			r.mu.Unlock()
			return
		}
		if pkt.Unmarshal(buf[:n]) != nil {
			continue
		}
		r.mu.Lock()
		if r.packets == 0 {
			r.first = time.Now()
		}
		r.packets++
		r.pcm = rtctest.MuLawDecodeInto(r.pcm, pkt.Payload)
		r.mu.Unlock()
	}
}

// snapshot returns the decoded audio of the last d of the track.
func (r *recTrack) lastAudio(d time.Duration) []int16 {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := int(d.Seconds() * 8000)
	if n > len(r.pcm) {
		n = len(r.pcm)
	}
	return append([]int16(nil), r.pcm[len(r.pcm)-n:]...)
}

// sink is a conference.Sink that reads every track like a Session would.
type sink struct {
	t      testing.TB
	mu     sync.Mutex
	tracks []*recTrack
	added  chan *recTrack
	ended  chan error
	calls  sync.Mutex // detects concurrent calls
}

func newSink(t testing.TB) *sink {
	return &sink{t: t, added: make(chan *recTrack, 16), ended: make(chan error, 1)}
}

func (s *sink) AddTrack(t *conference.Track) {
	if !s.calls.TryLock() {
		s.t.Error("concurrent Sink calls")
		return
	}
	defer s.calls.Unlock()
	r := &recTrack{Track: t, added: time.Now(), done: make(chan struct{})}
	s.mu.Lock()
	s.tracks = append(s.tracks, r)
	s.mu.Unlock()
	go r.read()
	s.added <- r
}

func (s *sink) ConferenceEnded(err error) {
	if !s.calls.TryLock() {
		s.t.Error("concurrent Sink calls")
		return
	}
	defer s.calls.Unlock()
	select {
	case s.ended <- err:
	default:
		s.t.Error("ConferenceEnded called twice")
	}
}

// next waits for the next track.
func (s *sink) next(t *testing.T, within time.Duration) *recTrack {
	t.Helper()
	select {
	case r := <-s.added:
		return r
	case <-time.After(within):
		t.Fatalf("no track within %v", within)
		return nil
	}
}

func adapter(t testing.TB, srv *janustest.Server) *janus.Adapter {
	return janus.New(janus.Options{URL: srv.URL, API: rtctest.API(t), RequestTimeout: 3 * time.Second})
}

// checkTone asserts that the last second of r carries freq and none of the
// other test tones.
func checkTone(t *testing.T, r *recTrack, freq float64, others ...float64) {
	t.Helper()
	pcm := r.lastAudio(time.Second)
	if len(pcm) < 4000 {
		t.Fatalf("track %s: only %d samples", r.UserID, len(pcm))
	}
	got := mediatest.ToneLevel(pcm, 8000, freq)
	if got < -20 { // sent at 8000/32767 = -12 dBFS
		t.Errorf("track %s: tone %v Hz at %.1f dBFS, want about -12", r.UserID, freq, got)
	}
	for _, f := range others {
		if l := mediatest.ToneLevel(pcm, 8000, f); l > got-30 {
			t.Errorf("track %s: foreign tone %v Hz at %.1f dBFS (own %.1f)", r.UserID, f, l, got)
		}
	}
}

func waitEnded(t *testing.T, r *recTrack, within time.Duration) time.Time {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(within):
		t.Fatalf("track %s did not end within %v", r.UserID, within)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !errors.Is(r.err, io.EOF) {
		t.Errorf("track %s ended with %v, want io.EOF", r.UserID, r.err)
	}
	return r.ended
}

// noLeaks fails the test if goroutines of the adapter or of Pion (an open
// PeerConnection) outlive it.
func noLeaks(t *testing.T) {
	t.Cleanup(func() {
		var stacks string
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			buf := make([]byte, 1<<20)
			stacks = string(buf[:runtime.Stack(buf, true)])
			if !strings.Contains(stacks, "conference/janus.(*") && !strings.Contains(stacks, "github.com/pion/") {
				return
			}
		}
		t.Errorf("goroutines of the adapter left running:\n%s", stacks)
	})
}

func TestJanus_FollowsPublishers(t *testing.T) {
	noLeaks(t)
	srv := janustest.Start(t)
	srv.CreateRoom(t, "1001")
	alice := srv.Publish(t, "1001", "alice", 440, "MIC")
	bob := srv.Publish(t, "1001", "bob", 660, "")

	s := newSink(t)
	joinAt := time.Now()
	leave, err := adapter(t, srv).Join(context.Background(), "org1", "1001", s)
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	byUser := map[string]*recTrack{}
	for range 2 {
		r := s.next(t, 10*time.Second)
		byUser[r.UserID] = r
	}
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
	byUser["alice"].mu.Lock()
	first := byUser["alice"].first
	byUser["alice"].mu.Unlock()
	t.Logf("join to first RTP packet: %v", first.Sub(joinAt))
	checkTone(t, byUser["alice"], 440, 660, 880)
	checkTone(t, byUser["bob"], 660, 440, 880)

	// A late joiner is added promptly, an early leaver removed promptly.
	carolAt := time.Now()
	srv.Publish(t, "1001", "carol", 880, "SCREEN")
	carol := s.next(t, 5*time.Second)
	if carol.UserID != "carol" || carol.StreamType != conference.StreamSCREEN {
		t.Fatalf("late track: user %s type %s, want carol SCREEN", carol.UserID, carol.StreamType)
	}
	if d := carol.added.Sub(carolAt); d > 3*time.Second {
		t.Errorf("late joiner added %v after it published", d)
	}
	time.Sleep(1500 * time.Millisecond)
	checkTone(t, carol, 880, 440, 660)

	leftAt := time.Now()
	alice.Leave()
	endedAt := waitEnded(t, byUser["alice"], 3*time.Second)
	t.Logf("leave to track end: %v", endedAt.Sub(leftAt))
	if d := endedAt.Sub(leftAt); d > 1500*time.Millisecond {
		t.Errorf("early leaver's track ended %v after the leave", d)
	}
	// The others go on.
	time.Sleep(time.Second)
	checkTone(t, byUser["bob"], 660, 440, 880)
	checkTone(t, carol, 880, 440, 660)

	// A newcomer after a leave (Janus may reuse the freed m-line).
	srv.Publish(t, "1001", "dave", 1000, "")
	dave := s.next(t, 5*time.Second)
	if dave.UserID != "dave" {
		t.Fatalf("track of %s, want dave", dave.UserID)
	}
	time.Sleep(1500 * time.Millisecond)
	checkTone(t, dave, 1000, 440, 660, 880)
	checkTone(t, carol, 880, 440, 660, 1000)

	// Unpublishing without leaving ends the track too.
	unpubAt := time.Now()
	bob.Unpublish(t)
	if d := waitEnded(t, byUser["bob"], 3*time.Second).Sub(unpubAt); d > 1500*time.Millisecond {
		t.Errorf("unpublished track ended %v after the unpublish", d)
	}
	time.Sleep(500 * time.Millisecond)
	checkTone(t, dave, 1000, 440, 660, 880)

	leave()
	leave() // idempotent
	for _, r := range []*recTrack{carol, dave} {
		waitEnded(t, r, 3*time.Second)
	}
	select {
	case err := <-s.ended:
		t.Errorf("ConferenceEnded(%v) after leave", err)
	default:
	}
}

func TestJanus_EmptyRoomFillsLater(t *testing.T) {
	noLeaks(t)
	srv := janustest.Start(t)
	srv.CreateRoom(t, "1002")
	s := newSink(t)
	leave, err := adapter(t, srv).Join(context.Background(), "org1", "1002", s)
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	select {
	case r := <-s.added:
		t.Fatalf("track %s in an empty room", r.UserID)
	case <-time.After(500 * time.Millisecond):
	}
	srv.Publish(t, "1002", "dave", 523.25, "")
	d := s.next(t, 5*time.Second)
	srv.Publish(t, "1002", "erin", 1000, "MIC")
	e := s.next(t, 5*time.Second)
	if d.UserID != "dave" || e.UserID != "erin" {
		t.Fatalf("tracks of %s and %s, want dave and erin", d.UserID, e.UserID)
	}
	time.Sleep(1500 * time.Millisecond)
	checkTone(t, d, 523.25, 1000)
	checkTone(t, e, 1000, 523.25)
}

func TestJanus_NoSuchRoom(t *testing.T) {
	srv := janustest.Start(t)
	for _, room := range []string{"999999", "no-such-room"} {
		t.Run(room, func(t *testing.T) {
			start := time.Now()
			leave, err := adapter(t, srv).Join(context.Background(), "org1", room, newSink(t))
			if err == nil {
				leave()
				t.Fatal("Join succeeded")
			}
			if room == "999999" && !errors.Is(err, conference.ErrNoConference) {
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
			leave, err := a.Join(context.Background(), "org1", "1", newSink(t))
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
	noLeaks(t)
	srv := janustest.Start(t)
	srv.CreateRoom(t, "1003")
	srv.Publish(t, "1003", "frank", 440, "")
	s := newSink(t)
	leave, err := adapter(t, srv).Join(context.Background(), "org1", "1003", s)
	if err != nil {
		t.Fatal(err)
	}
	r := s.next(t, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	killedAt := time.Now()
	srv.Kill()
	select {
	case err := <-s.ended:
		t.Logf("ended %v after the kill: %v", time.Since(killedAt), err)
		if err == nil || !errors.Is(err, janus.ErrSessionGone) {
			t.Errorf("ConferenceEnded(%v), want an error wrapping ErrSessionGone", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no ConferenceEnded within 5 s of the kill")
	}
	waitEnded(t, r, 2*time.Second)
	done := make(chan struct{})
	go func() { leave(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("leave hangs after the server died")
	}
}

func TestJanus_RoomDestroyed(t *testing.T) {
	noLeaks(t)
	srv := janustest.Start(t)
	srv.CreateRoom(t, "1004")
	srv.Publish(t, "1004", "gina", 440, "")
	s := newSink(t)
	leave, err := adapter(t, srv).Join(context.Background(), "org1", "1004", s)
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	r := s.next(t, 10*time.Second)
	srv.DestroyRoom(t, "1004")
	select {
	case err := <-s.ended:
		if err != nil {
			t.Errorf("ConferenceEnded(%v), want nil for a closed room", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no ConferenceEnded within 5 s of the room's end")
	}
	waitEnded(t, r, 2*time.Second)
}
