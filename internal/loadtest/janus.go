package loadtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtcrec/recorder/recorder/conference/janus"
)

// janusTarget is Janus (the Debian package) with only the VideoRoom plugin
// and the HTTP transport: every conference is a room created with
// record=true, so every publisher's audio is written to an .mjr file, Janus's
// per-stream recording. Janus skips loopback interfaces for ICE: it needs
// Config.Interface to be a veth (cmd/recorder-load makes one in a private
// network namespace).
type janusTarget struct {
	cfg  Config
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	url  string
	c    *janus.Client
	api  *webrtc.API

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
	var plugin, transport string
	for _, pat := range []string{"/usr/lib/*/janus", "/usr/lib/janus"} {
		if m, _ := filepath.Glob(filepath.Join(pat, "plugins", "libjanus_videoroom.so")); len(m) > 0 {
			plugin = m[0]
		}
		if m, _ := filepath.Glob(filepath.Join(pat, "transports", "libjanus_http.so")); len(m) > 0 {
			transport = m[0]
		}
	}
	if plugin == "" || transport == "" {
		return 0, fmt.Errorf("janus's videoroom plugin or HTTP transport is not installed")
	}
	for _, d := range []string{"plugins", "transports", "events", "loggers", "rec"} {
		if err := os.Mkdir(filepath.Join(t.dir, d), 0o755); err != nil {
			return 0, err
		}
	}
	if err := os.Symlink(plugin, filepath.Join(t.dir, "plugins", filepath.Base(plugin))); err != nil {
		return 0, err
	}
	if err := os.Symlink(transport, filepath.Join(t.dir, "transports", filepath.Base(transport))); err != nil {
		return 0, err
	}
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	files := map[string]string{
		"janus.jcfg": fmt.Sprintf(`general: {
	configs_folder = %[1]q
	plugins_folder = %[2]q
	transports_folder = %[3]q
	events_folder = %[4]q
	loggers_folder = %[5]q
	debug_level = 3
	session_timeout = 120
}
media: {
	rtp_port_range = "20000-60000"
}
nat: {
	nice_debug = false
	interface = %[6]q
	ice_enforce_list = %[6]q
}
plugins: {
}
transports: {
}
loggers: {
}
events: {
	broadcast = false
}
`, t.dir, filepath.Join(t.dir, "plugins"), filepath.Join(t.dir, "transports"),
			filepath.Join(t.dir, "events"), filepath.Join(t.dir, "loggers"), t.cfg.HostIP),
		"janus.transport.http.jcfg":   fmt.Sprintf("general: {\n\tjson = \"plain\"\n\tbase_path = \"/janus\"\n\thttp = true\n\tport = %d\n\tip = \"127.0.0.1\"\n\thttps = false\n}\nadmin: {\n\tadmin_http = false\n\tadmin_https = false\n}\n", port),
		"janus.plugin.videoroom.jcfg": "general: {\n\tstring_ids = true\n}\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(t.dir, name), []byte(body), 0o644); err != nil {
			return 0, err
		}
	}
	logf, err := os.Create(filepath.Join(t.dir, "janus.log"))
	if err != nil {
		return 0, err
	}
	t.cmd = command(t.cfg, t.cfg.Janus, "-C", filepath.Join(t.dir, "janus.jcfg"), "-F", t.dir, "--disable-colors")
	t.cmd.Stdout, t.cmd.Stderr = logf, logf
	t.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := t.cmd.Start(); err != nil {
		logf.Close()
		return 0, err
	}
	t.done = make(chan struct{})
	go func() { _ = t.cmd.Wait(); logf.Close(); close(t.done) }()
	t.url = fmt.Sprintf("http://127.0.0.1:%d/janus", port)
	t.c = janus.NewClient(t.url, nil, 20*time.Second)
	t.rooms = map[string]*janusRoom{}
	if t.api, err = publisherAPI(t.cfg.Interface); err != nil {
		return 0, err
	}
	for {
		if _, err := t.c.Info(ctx); err == nil {
			return t.cmd.Process.Pid, nil
		}
		select {
		case <-t.done:
			return 0, fmt.Errorf("janus exited: %s", tail(filepath.Join(t.dir, "janus.log")))
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
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
	if t.cmd == nil || t.cmd.Process == nil {
		return
	}
	t.mu.Lock()
	for _, r := range t.rooms {
		_ = r.sess.Destroy(context.Background())
	}
	t.mu.Unlock()
	select {
	case <-t.done:
	default:
		_ = t.cmd.Process.Kill() // by its PID
		<-t.done
	}
}
