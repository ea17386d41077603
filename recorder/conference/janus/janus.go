// Package janus is the conference adapter for Janus VideoRoom (Janus 1.x): it
// joins a room over Janus's HTTP API and records every publisher in it.
//
// On Join the adapter creates a Janus session, attaches the VideoRoom plugin
// and joins room conferenceId as a publisher that never publishes: Janus then
// tells it of every publisher already in the room ("joined") and of every
// later one ("publishers"), and of those that go ("unpublished", "leaving",
// "kicked"). It subscribes to the audio (and, with Options.Video, the video)
// of all of them on a second handle: ONE multistream subscription, extended
// with "subscribe" as publishers come and renegotiated by Janus as they go,
// answered by one Pion PeerConnection. Every remote track reaches the Sink as a
// conference.Track whose userId is the publisher's display name (its feed id
// when it has none) and whose stream type comes from the stream's description
// when that names one (MIC, CAM, SCREEN, …), else MIC for audio and CAM for
// video. When Janus reports a publisher gone, its tracks read what came
// before, then end (their reader gives io.EOF: conference.PionTrack.Leave).
//
// Every HTTP request has a timeout and the event long poll notices a server
// that went away: a room that does not exist fails Join with
// conference.ErrNoConference, an unreachable Janus fails Join, and a Janus
// that dies mid-recording ends the conference with an error
// (Sink.ConferenceEnded). leave leaves the room and destroys the session.
package janus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtcrec/recorder/recorder/conference"
)

// Options configure the Janus adapter.
type Options struct {
	// URL is the base of Janus's HTTP API, e.g. http://127.0.0.1:8088/janus.
	URL string
	// HTTPClient sends the API requests; nil means a new http.Client.
	HTTPClient *http.Client
	// API builds the subscriber PeerConnection (codecs, interfaces, ports);
	// nil means Pion's defaults with the answering DTLS role set to server.
	// Build it with SettingEngine.SetAnsweringDTLSRole(webrtc.DTLSRoleServer)
	// too: Janus then starts DTLS as soon as its ICE is up, whereas with
	// Pion's default (client) the first ClientHello often reaches Janus before
	// it is ready and the retransmission costs a second (measured: join to
	// first packet 37 ms vs 1.04 s).
	API *webrtc.API
	// ICEServers are given to the PeerConnection (STUN/TURN).
	ICEServers []webrtc.ICEServer
	// Video subscribes to video streams too; audio only when false.
	Video bool
	// Display is the recorder's display name in the room ("recorder" if empty).
	Display string
	// PIN is the room's PIN, if it has one.
	PIN string
	// RequestTimeout bounds every API request and the wait for its event
	// (10 s when zero).
	RequestTimeout time.Duration
	// Keepalive is the period of session keepalives (25 s when zero). A
	// Janus that dies is noticed at once (the event long poll fails); one
	// that freezes, after two unanswered keepalives: within about
	// 2×(Keepalive+RequestTimeout).
	Keepalive time.Duration
	// Logger receives one line per event; nil means slog.Default().
	Logger *slog.Logger
}

// Adapter joins Janus VideoRooms. It implements conference.Adapter.
type Adapter struct {
	opts   Options
	client *Client
	api    *webrtc.API
	log    *slog.Logger
}

// New returns an adapter for the Janus server of opts.URL.
func New(opts Options) *Adapter {
	if opts.Display == "" {
		opts.Display = "recorder"
	}
	api := opts.API
	if api == nil {
		var se webrtc.SettingEngine
		_ = se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer)
		se.SetSRTPReplayProtectionWindow(conference.SRTPReplayWindow)
		api = webrtc.NewAPI(webrtc.WithSettingEngine(se))
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Adapter{
		opts:   opts,
		client: NewClient(strings.TrimRight(opts.URL, "/"), opts.HTTPClient, opts.RequestTimeout),
		api:    api,
		log:    log.With("adapter", "janus"),
	}
}

// Kind returns "janus".
func (a *Adapter) Kind() string { return "janus" }

// Join joins room conferenceID and delivers the tracks of its publishers to
// sink until leave is called. A room that does not exist gives an error
// wrapping conference.ErrNoConference.
func (a *Adapter) Join(ctx context.Context, organizationID, conferenceID string, sink conference.Sink) (leave func(), err error) {
	if conferenceID == "" {
		return nil, fmt.Errorf("janus: empty conference id: %w", conference.ErrNoConference)
	}
	sess, err := a.client.CreateSession(ctx, a.opts.Keepalive)
	if err != nil {
		return nil, fmt.Errorf("janus: joining room %q: %w", conferenceID, err)
	}
	r := &room{
		a: a, sess: sess, sink: sink,
		conferenceID: conferenceID,
		roomID:       RoomID(conferenceID),
		feeds:        make(map[ID]*Publisher),
		subscribed:   make(map[feedStream]bool),
		mids:         make(map[string]SubscriberStream),
		tracks:       make(map[string]*track),
		leaving:      make(map[*track]string),
		remotes:      make(map[string]*webrtc.TrackRemote),
		srs:          make(map[string]*conference.SenderReports),
		log:          a.log.With("conference", conferenceID),
		wake:         make(chan struct{}, 1),
	}
	defer func() {
		if err != nil {
			r.teardown()
		}
	}()
	if r.listener, err = sess.Attach(ctx, Plugin); err != nil {
		return nil, fmt.Errorf("janus: joining room %q: %w", conferenceID, err)
	}
	join := map[string]any{"request": "join", "ptype": "publisher", "room": r.roomID, "display": a.opts.Display}
	if a.opts.PIN != "" {
		join["pin"] = a.opts.PIN
	}
	m, err := r.listener.Send(ctx, join, nil)
	if err != nil {
		var pe *PluginError
		if errors.As(err, &pe) && (pe.Code == codeNoSuchRoom ||
			// A name where the server wants numeric room ids (no string_ids).
			pe.Code == codeInvalidElement && strings.Contains(pe.Reason, "room")) {
			return nil, fmt.Errorf("janus: room %q: %w (%v)", conferenceID, conference.ErrNoConference, err)
		}
		return nil, fmt.Errorf("janus: joining room %q: %w", conferenceID, err)
	}
	ev := parseRoomEvent(m)
	if ev == nil || ev.VideoRoom != "joined" {
		return nil, fmt.Errorf("janus: joining room %q: unexpected reply %q", conferenceID, m.Janus)
	}
	r.privateID = ev.PrivateID
	r.log.Info("joined janus room", "session", sess.ID, "publishers", len(ev.Publishers))
	if err := r.addPublishers(ctx, ev.Publishers); err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done = make(chan struct{})
	go r.run(runCtx)
	return r.leave, nil
}

// feedStream names one publisher stream.
type feedStream struct {
	feed ID
	mid  string
}

// room is one joined VideoRoom. Its fields are owned by the run goroutine
// (and by Join before run starts) unless said otherwise.
type room struct {
	a            *Adapter
	sess         *Session
	sink         conference.Sink
	conferenceID string
	roomID       ID
	log          *slog.Logger

	listener   *Handle // joined as a publisher that never publishes
	privateID  uint64  // the listener's private_id, for require_pvtid rooms
	subscriber *Handle // the multistream subscription, once there is a publisher
	pc         *webrtc.PeerConnection

	subscribed map[feedStream]bool // publisher streams we asked for
	wake       chan struct{}       // nudged when the PeerConnection fails
	pcFailed   atomic.Bool         // set by the PeerConnection callback

	mu      sync.Mutex                           // guards feeds, mids, tracks, leaving, closed and AddTrack calls
	feeds   map[ID]*Publisher                    // publishers in the room
	mids    map[string]SubscriberStream          // subscription m-lines by mid
	remotes map[string]*webrtc.TrackRemote       // Pion's tracks by mid; they outlive feeds
	srs     map[string]*conference.SenderReports // their receivers' sender reports, by mid
	tracks  map[string]*track                    // live tracks by subscription mid
	leaving map[*track]string                    // tracks whose publisher went, reading what came before; their mid
	livePC  *webrtc.PeerConnection               // r.pc, for Pion's goroutines
	closed  bool                                 // no AddTrack after this

	cancel    context.CancelFunc
	done      chan struct{}
	leaveOnce sync.Once
}

// wanted reports whether the adapter records a stream of this type.
func (r *room) wanted(typ string) bool {
	return typ == "audio" || (typ == "video" && r.a.opts.Video)
}

// addPublishers records new publishers and subscribes to their streams.
func (r *room) addPublishers(ctx context.Context, pubs []Publisher) error {
	var streams []map[string]any
	for i := range pubs {
		p := pubs[i]
		r.mu.Lock()
		r.feeds[p.ID] = &p
		r.mu.Unlock()
		for _, s := range p.Streams {
			fs := feedStream{p.ID, s.MID}
			if s.Disabled || !r.wanted(s.Type) || r.subscribed[fs] {
				continue
			}
			r.subscribed[fs] = true
			streams = append(streams, map[string]any{"feed": p.ID, "mid": s.MID})
		}
		r.log.Info("janus publisher", "feed", p.ID.String(), "display", p.Display, "streams", len(p.Streams))
	}
	if len(streams) == 0 {
		return nil
	}
	return r.subscribe(ctx, streams)
}

// subscribe creates the subscription, or extends it, with streams.
func (r *room) subscribe(ctx context.Context, streams []map[string]any) error {
	if r.subscriber == nil {
		if err := r.newSubscriber(ctx); err != nil {
			return err
		}
		join := map[string]any{"request": "join", "ptype": "subscriber", "room": r.roomID, "streams": streams}
		if r.a.opts.PIN != "" {
			join["pin"] = r.a.opts.PIN
		}
		if r.privateID != 0 {
			join["private_id"] = r.privateID
		}
		m, err := r.subscriber.Send(ctx, join, nil)
		var pe *PluginError
		if errors.As(err, &pe) && pe.Code == codeNoSuchFeed {
			// A publisher went before we subscribed: start over with the next
			// publisher event (its leave event follows).
			r.log.Info("janus feed gone before subscription", "error", err)
			_ = r.subscriber.Detach(ctx)
			_ = r.pc.Close()
			r.subscriber, r.pc = nil, nil
			clear(r.subscribed)
			r.mu.Lock()
			for mid, t := range r.tracks {
				r.endTrackLocked(mid, t)
			}
			r.endLeavingLocked("", nil)
			clear(r.remotes)
			clear(r.mids)
			r.livePC = nil
			r.mu.Unlock()
			return nil
		}
		if err != nil {
			return fmt.Errorf("janus: subscribing in room %q: %w", r.conferenceID, err)
		}
		return r.handleSubscriberEvent(ctx, m)
	}
	m, err := r.subscriber.Send(ctx, map[string]any{"request": "subscribe", "streams": streams}, nil)
	if err != nil {
		var pe *PluginError
		if errors.As(err, &pe) && pe.Code == codeNoSuchFeed {
			// The publisher went before we subscribed: its leave event follows.
			r.log.Info("janus feed gone before subscription", "error", err)
			return nil
		}
		return fmt.Errorf("janus: subscribing in room %q: %w", r.conferenceID, err)
	}
	return r.handleSubscriberEvent(ctx, m)
}

// newSubscriber attaches the subscriber handle and makes its PeerConnection.
func (r *room) newSubscriber(ctx context.Context) error {
	h, err := r.sess.Attach(ctx, Plugin)
	if err != nil {
		return fmt.Errorf("janus: attaching subscriber in room %q: %w", r.conferenceID, err)
	}
	r.subscriber = h
	pc, err := r.a.api.NewPeerConnection(webrtc.Configuration{ICEServers: r.a.opts.ICEServers})
	if err != nil {
		return fmt.Errorf("janus: new PeerConnection: %w", err)
	}
	r.pc = pc
	r.mu.Lock()
	r.livePC = pc
	r.mu.Unlock()
	pc.OnTrack(func(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) { r.onTrack(pc, remote, recv) })
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		r.log.Debug("janus subscriber connection", "state", s.String())
		if s == webrtc.PeerConnectionStateFailed {
			r.pcFailed.Store(true)
			r.nudge()
		}
	})
	return nil
}

func (r *room) nudge() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// handleSubscriberEvent takes the stream layout and the offer of an
// "attached" or "updated" event and answers the offer.
func (r *room) handleSubscriberEvent(ctx context.Context, m *Message) error {
	ev := parseRoomEvent(m)
	if ev != nil && (ev.VideoRoom == "attached" || ev.VideoRoom == "updated") && ev.Streams != nil {
		r.setLayout(ev.Streams)
	}
	if m.JSEP == nil || m.JSEP.Type != "offer" {
		return nil
	}
	if err := r.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.JSEP.SDP}); err != nil {
		return fmt.Errorf("janus: subscriber offer: %w", err)
	}
	answer, err := r.pc.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("janus: subscriber answer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(r.pc)
	if err := r.pc.SetLocalDescription(answer); err != nil {
		return fmt.Errorf("janus: subscriber answer: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(5 * time.Second):
		r.log.Warn("janus subscriber: ICE gathering incomplete after 5 s, answering anyway")
	}
	ld := r.pc.LocalDescription()
	if _, err := r.subscriber.Send(ctx, map[string]any{"request": "start"}, &JSEP{Type: "answer", SDP: ld.SDP}); err != nil {
		return fmt.Errorf("janus: starting subscription: %w", err)
	}
	return nil
}

// setLayout records the subscription's m-lines and ends the tracks of those
// that no longer carry the stream they carried.
func (r *room) setLayout(streams []SubscriberStream) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mids = make(map[string]SubscriberStream, len(streams))
	for _, s := range streams {
		if s.Active != nil && !*s.Active || s.FeedID == "" {
			continue
		}
		r.mids[s.MID] = s
	}
	for mid, t := range r.tracks {
		switch s, ok := r.mids[mid]; {
		case !ok:
			r.leaveTrackLocked(mid, t) // its publisher went: Janus freed the m-line
		case s.FeedID != t.feed || s.FeedMID != t.feedMID:
			r.endTrackLocked(mid, t)
		}
	}
	// Janus reuses a freed m-line, SSRC and all, for a new publisher: Pion
	// sees no new track then, so the new feed starts on the old TrackRemote.
	for mid := range r.mids {
		if r.tracks[mid] == nil && r.remotes[mid] != nil {
			r.deliverLocked(mid)
		}
	}
}

// removeFeed ends the tracks of a publisher that went.
func (r *room) removeFeed(id ID, why string) {
	for fs := range r.subscribed {
		if fs.feed == id {
			delete(r.subscribed, fs)
		}
	}
	r.mu.Lock()
	p, ok := r.feeds[id]
	if !ok {
		r.mu.Unlock()
		return
	}
	delete(r.feeds, id)
	for mid, t := range r.tracks {
		if t.feed == id {
			r.leaveTrackLocked(mid, t)
		}
	}
	r.mu.Unlock()
	r.log.Info("janus publisher gone", "feed", id.String(), "display", p.Display, "why", why)
}

// endTrackLocked ends the live track of m-line mid at once.
func (r *room) endTrackLocked(mid string, t *track) {
	delete(r.tracks, mid)
	t.end()
}

// leaveTrackLocked ends the live track of m-line mid, whose publisher went,
// once it has read what came before (conference.PionTrack.Leave): a
// recorder short of CPU reads seconds behind. Until then it is in leaving.
func (r *room) leaveTrackLocked(mid string, t *track) {
	delete(r.tracks, mid)
	for l := range r.leaving {
		select {
		case <-l.Done():
			delete(r.leaving, l)
		default:
		}
	}
	r.leaving[t] = mid
	t.Leave()
}

// endLeavingLocked ends at once the tracks still reading what came before
// their publisher went: every one (mid ""), or the one of mid if it reads
// remote, which Janus gives to another publisher (it reuses a freed
// m-line, SSRC and all): its reader must not read the newcomer's packets.
// What it had not read yet is lost.
func (r *room) endLeavingLocked(mid string, remote *webrtc.TrackRemote) {
	for l, m := range r.leaving {
		if mid == "" || m == mid && l.remote == remote {
			delete(r.leaving, l)
			l.end()
		}
	}
}

// onTrack runs on a Pion goroutine for each new remote track.
func (r *room) onTrack(pc *webrtc.PeerConnection, remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	mid := ""
	for _, tr := range pc.GetTransceivers() {
		if tr.Receiver() == recv {
			mid = tr.Mid()
			break
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.remotes[mid] = remote
	if r.srs[mid] == nil {
		r.srs[mid] = conference.ReadSenderReports(recv) // once per receiver: a second reader would split its RTCP
	}
	if old := r.tracks[mid]; old != nil {
		r.endTrackLocked(mid, old)
	}
	r.deliverLocked(mid)
}

// deliverLocked hands the stream now on m-line mid to the sink.
func (r *room) deliverLocked(mid string) {
	s, ok := r.mids[mid]
	remote := r.remotes[mid]
	if !ok || remote == nil || r.closed || r.feeds[s.FeedID] == nil {
		return // no stream, no Pion track yet, leaving, or the publisher went
	}
	r.endLeavingLocked(mid, remote)
	t := &track{PionTrack: conference.NewPionTrack(remote, r.srs[mid]), remote: remote, feed: s.FeedID, feedMID: s.FeedMID}
	_ = remote.SetReadDeadline(time.Time{})
	r.tracks[mid] = t
	kind := conference.KindAudio
	if remote.Kind() == webrtc.RTPCodecTypeVideo {
		kind = conference.KindVideo
	}
	codec := remote.Codec()
	ct := &conference.Track{
		ConferenceID: r.conferenceID,
		UserID:       r.userID(s),
		StreamID:     s.FeedID.String(),
		TrackID:      s.FeedMID,
		StreamType:   r.streamType(s, kind),
		Kind:         kind,
		Codec:        conference.CodecOf(codec),
		Started:      time.Now(),
	}
	// Janus files incoming RTCP under the m-line its sender SSRC maps to,
	// and a recvonly peer has no SSRC of its own: a zero or made-up sender
	// SSRC lands on the audio m-line and the PLI is lost. Janus's own SSRC
	// of the video m-line maps right.
	t.Fill(ct, r.livePC, uint32(remote.SSRC()))
	r.log.Info("janus track", "user", ct.UserID, "feed", ct.StreamID, "mid", mid, "codec", codec.MimeType, "type", ct.StreamType)
	r.sink.AddTrack(ct)
}

func (r *room) userID(s SubscriberStream) string {
	if s.FeedDisplay != "" {
		return s.FeedDisplay
	}
	if p := r.feeds[s.FeedID]; p != nil && p.Display != "" {
		return p.Display
	}
	return s.FeedID.String()
}

func (r *room) streamType(s SubscriberStream, kind conference.Kind) conference.StreamType {
	desc := s.FeedDescription
	if desc == "" {
		if p := r.feeds[s.FeedID]; p != nil {
			for _, ps := range p.Streams {
				if ps.MID == s.FeedMID {
					desc = ps.Description
				}
			}
		}
	}
	if t, err := conference.ParseStreamType(strings.TrimSpace(desc)); err == nil && t != conference.StreamUNKNOWN {
		return t
	}
	if kind == conference.KindVideo {
		return conference.StreamCAM
	}
	return conference.StreamMIC
}

// run follows the room's events until leave or the end of the conference,
// which it reports to the sink after closing done (so that the sink may call
// leave from ConferenceEnded).
func (r *room) run(ctx context.Context) {
	ended, err := r.follow(ctx)
	if ended {
		r.mu.Lock()
		report := !r.closed
		r.closed = true
		for mid, t := range r.tracks {
			r.endTrackLocked(mid, t)
		}
		r.endLeavingLocked("", nil)
		r.mu.Unlock()
		close(r.done)
		if report {
			if err != nil {
				r.log.Warn("janus conference ended", "error", err)
			} else {
				r.log.Info("janus conference ended")
			}
			r.sink.ConferenceEnded(err)
		}
		return
	}
	close(r.done)
}

// follow handles events until leave (ended false) or the end of the
// conference (ended true, with err saying why unless the room was closed).
func (r *room) follow(ctx context.Context) (ended bool, err error) {
	for {
		select {
		case <-ctx.Done():
			return false, nil
		case <-r.sess.Done():
			if err := r.sess.Err(); err != nil {
				return true, fmt.Errorf("janus: room %q: %w", r.conferenceID, err)
			}
			return false, nil
		case <-r.wake:
			if r.pcFailed.Load() {
				return true, fmt.Errorf("janus: room %q: subscriber PeerConnection failed", r.conferenceID)
			}
		case <-r.sess.Notify():
			for m := r.sess.Next(); m != nil; m = r.sess.Next() {
				done, err := r.handle(ctx, m)
				if ctx.Err() != nil {
					return false, nil
				}
				if err != nil || done {
					return true, err
				}
			}
		}
	}
}

// handle processes one event; done reports the end of the conference.
func (r *room) handle(ctx context.Context, m *Message) (done bool, err error) {
	if r.subscriber != nil && m.Sender == r.subscriber.ID {
		switch m.Janus {
		case "event":
			if ev := parseRoomEvent(m); ev != nil && ev.ErrorCode != 0 {
				r.log.Warn("janus subscriber error", "code", ev.ErrorCode, "error", ev.Error)
				return false, nil
			}
			return false, r.handleSubscriberEvent(ctx, m)
		case "hangup":
			return true, fmt.Errorf("janus: room %q: subscriber hung up: %s", r.conferenceID, m.Reason)
		case "detached":
			return true, fmt.Errorf("janus: room %q: subscriber detached", r.conferenceID)
		}
		return false, nil
	}
	if m.Sender != r.listener.ID {
		return false, nil
	}
	switch m.Janus {
	case "detached":
		return true, fmt.Errorf("janus: room %q: detached by the server", r.conferenceID)
	case "event":
	default:
		return false, nil
	}
	ev := parseRoomEvent(m)
	if ev == nil {
		return false, nil
	}
	if ev.VideoRoom == "destroyed" {
		r.log.Info("janus room destroyed")
		return true, nil
	}
	if id := participant(ev.Kicked); id == "" && len(ev.Kicked) > 0 {
		return true, fmt.Errorf("janus: room %q: the recorder was kicked", r.conferenceID)
	}
	if id := participant(ev.Unpublished); id != "" {
		r.removeFeed(id, "unpublished")
	}
	if id := participant(ev.Leaving); id != "" {
		r.removeFeed(id, "leaving")
	}
	if id := participant(ev.Kicked); id != "" {
		r.removeFeed(id, "kicked")
	}
	if r.subscriber == nil && len(r.subscribed) == 0 && len(ev.Publishers) == 0 {
		// A subscription that failed for a feed that was going: retry with
		// the publishers that remain.
		r.mu.Lock()
		pubs := make([]Publisher, 0, len(r.feeds))
		for _, p := range r.feeds {
			pubs = append(pubs, *p)
		}
		r.mu.Unlock()
		if len(pubs) > 0 {
			if err := r.addPublishers(ctx, pubs); err != nil {
				return true, err
			}
		}
	}
	if len(ev.Publishers) > 0 {
		if err := r.addPublishers(ctx, ev.Publishers); err != nil {
			return true, err
		}
	}
	return false, nil
}

// leave stops following the room, leaves it and destroys the session. It is
// idempotent; after it no AddTrack follows.
func (r *room) leave() {
	r.leaveOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		r.cancel()
		<-r.done
		r.teardown()
	})
}

// teardown ends every track, then leaves the room, destroys the session and
// closes the PeerConnection.
func (r *room) teardown() {
	// The tracks end now; the network goodbyes follow.
	r.mu.Lock()
	r.closed = true
	for mid, t := range r.tracks {
		r.endTrackLocked(mid, t)
	}
	r.endLeavingLocked("", nil)
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	select {
	case <-r.sess.Done():
	default:
		if r.subscriber != nil {
			_ = r.subscriber.Detach(ctx)
		}
		if r.listener != nil {
			_, _ = r.listener.Send(ctx, map[string]any{"request": "leave"}, nil)
		}
	}
	_ = r.sess.Destroy(ctx)
	if r.pc != nil {
		_ = r.pc.Close()
	}
}

// track reads one subscribed stream. It ends (ReadRTP gives io.EOF) when its
// publisher goes, once it has read what came before (or at once when Janus
// gives its m-line to another publisher).
type track struct {
	*conference.PionTrack
	remote  *webrtc.TrackRemote
	feed    ID
	feedMID string
}

// end makes ReadRTP return io.EOF from now on, waking a blocked reader.
func (t *track) end() { t.End() }

var (
	_ conference.Adapter   = (*Adapter)(nil)
	_ conference.RTPReader = (*track)(nil)
)
