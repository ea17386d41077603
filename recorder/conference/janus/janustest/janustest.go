// Package janustest runs a real Janus server (the Debian janus package, 1.x)
// for tests, with only the VideoRoom plugin and the HTTP transport on
// 127.0.0.1, and Pion publishers that send tones into its rooms.
//
// Janus ignores loopback interfaces for ICE, so Janus and the peers gather on
// the veth of the private network namespace that rtctest.Main makes: call
// rtctest.NetNS(t) (Start does) and use rtctest.API for every peer.
package janustest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/rtcrec/recorder/internal/janusrun"
	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/recorder/conference/internal/rtctest"
	"github.com/rtcrec/recorder/recorder/conference/janus"
)

// Server is a Janus process started by Start.
type Server struct {
	URL string // base of the HTTP API, http://127.0.0.1:PORT/janus
	Dir string // configuration and log

	proc *janusrun.Server

	mu   sync.Mutex
	pins map[string]string // room PINs, by room
}

// Start starts Janus with a fresh configuration in t.TempDir() and stops it,
// by its PID, when the test ends. Its log is printed (tail) when the test
// fails, and copied to the file named by $JANUSTEST_KEEPLOG when that is set.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Config{})
}

// Config chooses Janus settings for StartWith.
type Config struct {
	// StringIDs makes room and participant ids strings (VideoRoom
	// string_ids = true) instead of numbers.
	StringIDs bool
}

// StartWith is Start with the settings of cfg.
func StartWith(t testing.TB, cfg Config) *Server {
	t.Helper()
	rtctest.NetNS(t)
	bin := testenv.LookPath(t, "janus")
	proc, err := janusrun.Start(janusrun.Options{
		Bin: bin, Dir: t.TempDir(), HostIP: rtctest.HostIP,
		RTPPorts: "20000-40000", DebugLevel: 4, SessionTimeout: 60, StringIDs: cfg.StringIDs,
	})
	if errors.Is(err, janusrun.ErrNotInstalled) {
		testenv.Missing(t, err.Error())
	}
	must(t, err)
	s := &Server{URL: proc.URL, Dir: proc.Dir, proc: proc, pins: make(map[string]string)}
	t.Cleanup(func() {
		s.Kill()
		if keep := os.Getenv("JANUSTEST_KEEPLOG"); keep != "" {
			if b, err := os.ReadFile(proc.Log); err == nil {
				_ = os.WriteFile(keep, b, 0o644)
			}
		}
		if t.Failed() {
			t.Logf("janus log (tail):\n%s", proc.LogTail(8000))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := proc.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// Kill stops Janus with SIGKILL (by its PID) and waits for it to exit. It is
// idempotent.
func (s *Server) Kill() { s.proc.Kill() }

// Freeze stops Janus (SIGSTOP) without closing its sockets, as a hung server
// would; it is resumed (SIGCONT) before Kill at the end of the test.
func (s *Server) Freeze() {
	_ = s.proc.Cmd.Process.Signal(syscall.SIGSTOP)
}

// CreateRoom creates VideoRoom room id (a number, or a string when the server
// uses string ids) whose publishers must send PCMU audio and whose
// subscriptions must give a participant's private_id (require_pvtid).
func (s *Server) CreateRoom(t testing.TB, id string) {
	t.Helper()
	s.CreateRoomPIN(t, id, "")
}

// CreateRoomPIN is CreateRoom for a room that needs pin to join; Publish
// gives it.
func (s *Server) CreateRoomPIN(t testing.TB, id, pin string) {
	t.Helper()
	req := map[string]any{
		"request": "create", "room": janus.RoomID(id), "publishers": 16,
		"audiocodec": "pcmu", "videocodec": "vp8", "description": "test room " + id,
		"require_pvtid": true, // subscriptions must come from a participant
	}
	if pin != "" {
		req["pin"] = pin
		s.mu.Lock()
		s.pins[id] = pin
		s.mu.Unlock()
	}
	s.roomRequest(t, req, "created")
}

// DestroyRoom destroys room id, which tells everyone in it.
func (s *Server) DestroyRoom(t testing.TB, id string) {
	t.Helper()
	s.roomRequest(t, map[string]any{"request": "destroy", "room": janus.RoomID(id)}, "destroyed")
}

// roomRequest sends a synchronous VideoRoom request and checks the reply.
func (s *Server) roomRequest(t testing.TB, body map[string]any, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := janus.NewClient(s.URL, nil, 5*time.Second)
	sess, err := c.CreateSession(ctx, 0)
	must(t, err)
	defer sess.Destroy(ctx)
	h, err := sess.Attach(ctx, janus.Plugin)
	must(t, err)
	data, err := h.Request(ctx, body)
	if err != nil {
		t.Fatalf("videoroom %s: %v", body["request"], err)
	}
	if !bytes.Contains(data, []byte(`"`+want+`"`)) {
		t.Fatalf("videoroom %s: %s", body["request"], data)
	}
}

// Publisher is a Pion peer publishing a PCMU tone in a room.
type Publisher struct {
	ID      janus.ID
	Display string
	Tone    *rtctest.ToneSender

	sess      *janus.Session
	handle    *janus.Handle
	pc        *webrtc.PeerConnection
	closed    bool
	plis      atomic.Int32
	stopVideo chan struct{}
	videoDone chan struct{}
}

// PLIs returns how many keyframe requests (RTCP PLI) the video sender got.
func (p *Publisher) PLIs() int { return int(p.plis.Load()) }

func (p *Publisher) countPLIs(s *webrtc.RTPSender) {
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			if _, ok := pkt.(*rtcp.PictureLossIndication); ok {
				p.plis.Add(1)
			}
		}
	}
}

// sendVideo sends placeholder VP8 frames (a key frame's 10-byte header and
// padding, RFC 6386 section 9.1) at 30 per second until Leave.
func (p *Publisher) sendVideo(vt *webrtc.TrackLocalStaticSample) {
	defer close(p.videoDone)
	frame := make([]byte, 400)
	copy(frame, []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00}) // 320x240
	tick := time.NewTicker(time.Second / 30)
	defer tick.Stop()
	for {
		_ = vt.WriteSample(media.Sample{Data: frame, Duration: time.Second / 30})
		select {
		case <-p.stopVideo:
			return
		case <-tick.C:
		}
	}
}

// Publish joins room as display and publishes a tone at freq Hz whose stream
// description is desc (e.g. "MIC"; none when empty). It returns when Janus has
// the publisher's media (ICE and DTLS up: "webrtcup"), so a subscriber may
// join its feed. The publisher leaves when the test ends.
func (s *Server) Publish(t testing.TB, room, display string, freq float64, desc string) *Publisher {
	t.Helper()
	return s.publish(t, room, display, freq, desc, false, "")
}

// PublishVideo is Publish with a VP8 video stream too (placeholder frames at
// 30 per second), described by videoDesc. The publisher counts the keyframe
// requests (RTCP PLI) it receives: see PLIs.
func (s *Server) PublishVideo(t testing.TB, room, display string, freq float64, desc, videoDesc string) *Publisher {
	t.Helper()
	return s.publish(t, room, display, freq, desc, true, videoDesc)
}

func (s *Server) publish(t testing.TB, room, display string, freq float64, desc string, video bool, videoDesc string) *Publisher {
	t.Helper()
	s.mu.Lock()
	pin := s.pins[room]
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	p, err := publishTo(ctx, s.URL, room, pin, display, freq, desc, video, videoDesc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Leave)
	return p
}

// publishTo joins room of the Janus at url and publishes; on error it leaves.
func publishTo(ctx context.Context, url, room, pin, display string, freq float64, desc string, video bool, videoDesc string) (_ *Publisher, err error) {
	fail := func(what string, err error) error { return fmt.Errorf("publisher %s: %s: %w", display, what, err) }
	c := janus.NewClient(url, nil, 5*time.Second)
	sess, err := c.CreateSession(ctx, 0)
	if err != nil {
		return nil, fail("session", err)
	}
	p := &Publisher{Display: display, sess: sess}
	defer func() {
		if err != nil {
			p.Leave()
		}
	}()
	if p.handle, err = sess.Attach(ctx, janus.Plugin); err != nil {
		return nil, fail("attach", err)
	}
	join := map[string]any{"request": "join", "ptype": "publisher", "room": janus.RoomID(room), "display": display}
	if pin != "" {
		join["pin"] = pin
	}
	m, err := p.handle.Send(ctx, join, nil)
	if err != nil {
		return nil, fail("join", err)
	}
	var joined struct {
		ID janus.ID `json:"id"`
	}
	if err := json.Unmarshal(m.PluginData.Data, &joined); err != nil {
		return nil, fail("join", err)
	}
	p.ID = joined.ID

	api, err := rtctest.NewAPI()
	if err != nil {
		return nil, fail("api", err)
	}
	if p.pc, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		return nil, fail("peer", err)
	}
	if p.Tone, err = rtctest.NewToneSender(freq, "audio", display); err != nil {
		return nil, fail("tone", err)
	}
	tr, err := p.pc.AddTransceiverFromTrack(p.Tone.Track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return nil, fail("audio", err)
	}
	go func() { // drain RTCP
		buf := make([]byte, 1500)
		for {
			if _, _, err := tr.Sender().Read(buf); err != nil {
				return
			}
		}
	}()
	var vtr *webrtc.RTPTransceiver
	if video {
		vt, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", display)
		if err != nil {
			return nil, fail("video", err)
		}
		if vtr, err = p.pc.AddTransceiverFromTrack(vt, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			return nil, fail("video", err)
		}
		go p.countPLIs(vtr.Sender())
		p.stopVideo = make(chan struct{})
		p.videoDone = make(chan struct{})
		go p.sendVideo(vt)
	}
	connected := make(chan struct{})
	var once sync.Once
	p.pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		return nil, fail("offer", err)
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(offer); err != nil {
		return nil, fail("offer", err)
	}
	<-gathered
	var descs []map[string]string // mids are known once the offer is set
	if desc != "" {
		descs = append(descs, map[string]string{"mid": tr.Mid(), "description": desc})
	}
	if vtr != nil && videoDesc != "" {
		descs = append(descs, map[string]string{"mid": vtr.Mid(), "description": videoDesc})
	}
	body := map[string]any{"request": "publish", "audio": true, "video": video}
	if len(descs) > 0 {
		body["descriptions"] = descs
	}
	if m, err = p.handle.Send(ctx, body, &janus.JSEP{Type: "offer", SDP: p.pc.LocalDescription().SDP}); err != nil {
		return nil, fail("publish", err)
	}
	if m.JSEP == nil {
		return nil, fail("publish", fmt.Errorf("no answer in %s", m.PluginData.Data))
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.JSEP.SDP}); err != nil {
		return nil, fail("answer", err)
	}
	p.Tone.Start()
	select {
	case <-connected:
	case <-ctx.Done():
		return nil, fail("connect", ctx.Err())
	}
	for { // Janus announces the feed once it has the media
		for ev := p.sess.Next(); ev != nil; ev = p.sess.Next() {
			if ev.Janus == "webrtcup" {
				return p, nil
			}
		}
		select {
		case <-p.sess.Notify():
		case <-ctx.Done():
			return nil, fail("webrtcup", ctx.Err())
		}
	}
}

// Unpublish stops publishing but stays in the room.
func (p *Publisher) Unpublish(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := p.handle.Send(ctx, map[string]any{"request": "unpublish"}, nil); err != nil {
		t.Fatalf("publisher %s: unpublish: %v", p.Display, err)
	}
}

// Leave leaves the room (which unpublishes) and closes the peer. It is
// idempotent.
func (p *Publisher) Leave() {
	if p.closed {
		return
	}
	p.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if p.handle != nil {
		_, _ = p.handle.Send(ctx, map[string]any{"request": "leave"}, nil)
	}
	if p.Tone != nil {
		p.Tone.Stop()
	}
	if p.stopVideo != nil {
		close(p.stopVideo)
		<-p.videoDone
	}
	if p.pc != nil {
		_ = p.pc.Close()
	}
	if p.sess != nil {
		_ = p.sess.Destroy(ctx)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
