package loadtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtcrec/recorder/internal/janusrun"
	"github.com/rtcrec/recorder/recorder/conference/janus"
)

// janusTarget is Janus (the Debian package) with only the VideoRoom plugin
// and the HTTP transport: every conference is a room created with
// record=true, so every publisher's audio is written to an .mjr file, Janus's
// per-stream recording. Janus skips loopback interfaces for ICE: it needs
// Config.Interface to be a veth (cmd/recorder-load makes one in a private
// network namespace).
type janusTarget struct {
	cfg Config
	dir string
	srv *janusrun.Server
	c   *janus.Client
	api *webrtc.API

	mu    sync.Mutex
	rooms map[string]*janusRoom
	up    int // publishers whose media Janus announced (webrtcup)
}

// janusRoom is one room: one session, one handle per publisher.
type janusRoom struct {
	mu   sync.Mutex // one publisher joins at a time: webrtcup events are matched by handle
	sess *janus.Session
}

func (t *janusTarget) start(ctx context.Context) (int, error) {
	if t.cfg.Interface == "lo" {
		return 0, fmt.Errorf("janus skips loopback interfaces: run in a network namespace with a veth (cmd/recorder-load does)")
	}
	if err := os.Mkdir(filepath.Join(t.dir, "rec"), 0o755); err != nil {
		return 0, err
	}
	srv, err := janusrun.Start(janusrun.Options{
		Bin: t.cfg.Janus, Dir: t.dir, HostIP: t.cfg.HostIP,
		RTPPorts: "20000-60000", DebugLevel: 3, SessionTimeout: 120, StringIDs: true,
		Command: func(bin string, args ...string) *exec.Cmd { return command(t.cfg, bin, args...) },
	})
	if err != nil {
		return 0, err
	}
	t.srv = srv
	t.c = janus.NewClient(srv.URL, nil, 20*time.Second)
	t.rooms = map[string]*janusRoom{}
	if t.api, err = publisherAPI(t.cfg.Interface); err != nil {
		return 0, err
	}
	if err := srv.Ready(ctx); err != nil {
		return 0, err
	}
	return srv.Cmd.Process.Pid, nil
}

// room returns conference conf's room, creating it (recording every
// publisher) on first use.
func (t *janusTarget) room(ctx context.Context, conf string) (*janusRoom, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r := t.rooms[conf]; r != nil {
		return r, nil
	}
	sess, err := t.c.CreateSession(ctx, 0)
	if err != nil {
		return nil, err
	}
	h, err := sess.Attach(ctx, janus.Plugin)
	if err != nil {
		return nil, err
	}
	if _, err := h.Request(ctx, map[string]any{
		"request": "create", "room": conf, "publishers": t.cfg.PerConference + 2, "audiocodec": "opus",
		"record": true, "rec_dir": filepath.Join(t.dir, "rec"),
	}); err != nil {
		return nil, fmt.Errorf("create room %s: %w", conf, err)
	}
	r := &janusRoom{sess: sess}
	t.rooms[conf] = r
	return r, nil
}

// janusPublisher is one publisher's handle and PeerConnection.
type janusPublisher struct {
	h  *janus.Handle
	pc *webrtc.PeerConnection
}

func (p *janusPublisher) Close(ctx context.Context) error {
	_, _ = p.h.Send(ctx, map[string]any{"request": "leave"}, nil)
	return p.pc.Close()
}

func (t *janusTarget) publish(ctx context.Context, conf string, n int, snd *sender) (closer, error) {
	r, err := t.room(ctx, conf)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	h, err := r.sess.Attach(ctx, janus.Plugin)
	if err != nil {
		return nil, err
	}
	if _, err := h.Send(ctx, map[string]any{"request": "join", "ptype": "publisher", "room": conf, "display": streamName(n)}, nil); err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	pc, err := t.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	p := &janusPublisher{h: h, pc: pc}
	fail := func(what string, err error) (closer, error) {
		p.Close(context.Background())
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	track, err := newOpusTrack(n)
	if err != nil {
		return fail("track", err)
	}
	if _, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		return fail("track", err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fail("offer", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return fail("offer", err)
	}
	<-gathered
	m, err := h.Send(ctx, map[string]any{"request": "publish", "audio": true, "video": false},
		&janus.JSEP{Type: "offer", SDP: pc.LocalDescription().SDP})
	if err != nil {
		return fail("publish", err)
	}
	if m.JSEP == nil {
		return fail("publish", fmt.Errorf("no answer"))
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.JSEP.SDP}); err != nil {
		return fail("answer", err)
	}
	snd.add(track, n)
	for { // Janus announces the media once ICE and DTLS are up
		for ev := r.sess.Next(); ev != nil; ev = r.sess.Next() {
			if ev.Janus == "webrtcup" && ev.Sender == h.ID {
				t.mu.Lock()
				t.up++
				t.mu.Unlock()
				return p, nil
			}
		}
		select {
		case <-r.sess.Notify():
		case <-ctx.Done():
			return fail("webrtcup", ctx.Err())
		}
	}
}

func (t *janusTarget) record(context.Context, []string) error { return nil } // rooms record from the start

func (t *janusTarget) recorded(context.Context) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.up, nil
}

// counters: Janus exposes no loss counter without its admin API; the files
// show what is missing.
func (t *janusTarget) counters(context.Context) (counters, error) { return counters{}, nil }

func (t *janusTarget) finish(ctx context.Context, recorded time.Duration) (fileCheck, error) {
	// Destroying the rooms closes every recording.
	t.mu.Lock()
	rooms := t.rooms
	t.mu.Unlock()
	for conf, r := range rooms {
		if h, err := r.sess.Attach(ctx, janus.Plugin); err == nil {
			_, _ = h.Request(ctx, map[string]any{"request": "destroy", "room": conf})
		}
	}
	var fc fileCheck
	m, _ := filepath.Glob(filepath.Join(t.dir, "rec", "*-audio-*.mjr"))
	shortest := time.Duration(-1)
	for _, path := range m {
		_, missing, span, err := mjrCheck(path)
		if err != nil {
			return fc, err
		}
		fc.files++
		fc.missing += missing
		if short := recorded - span; short > time.Second {
			fc.missing += uint64(short / packetTime)
		}
		if shortest < 0 || span < shortest {
			shortest = span
		}
	}
	fc.detail = fmt.Sprintf("%d .mjr files (shortest %.1f s)", fc.files, shortest.Seconds())
	return fc, nil
}

func (t *janusTarget) stop() {
	if t.srv == nil {
		return
	}
	t.mu.Lock()
	for _, r := range t.rooms {
		_ = r.sess.Destroy(context.Background())
	}
	t.mu.Unlock()
	t.srv.Kill() // by its PID
}
