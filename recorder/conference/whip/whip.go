// Package whip is the recorder's embedded WHIP endpoint (RFC 9725), its
// default conference adapter: any WHIP client (a browser, OBS, GStreamer, an
// SFU) publishes to
//
//	POST /whip/{conferenceId}?userId=…&type=MIC|CAM|SCREEN[&agentId=…][&agentPhone=…]
//	Authorization: Bearer <key>
//	Content-Type: application/sdp
//
// and gets 201 Created with the SDP answer and a Location of the WHIP session,
// which DELETE ends. Every received track goes to the Sink of its conference
// (per organization, so tenants never see each other's conferences), whether
// or not a recording of that conference runs.
//
// agentId (a positive integer) and agentPhone say which seed-003 agent
// publishes; the recorder's agent tracker learns the agent from them.
//
// The package also has a WHIP Client, used by the demo and tests.
package whip

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtcrec/recorder/internal/httperr"
	"github.com/rtcrec/recorder/recorder/conference"
)

// Options configure an Adapter.
type Options struct {
	// API makes the PeerConnections (see NewAPIs). Required.
	API *ReceiveAPI
	// AudioAPI, when set, makes the PeerConnections of offers without video
	// (see NewAPIs: no NACK generator).
	AudioAPI *ReceiveAPI
	// Authorize checks a request's bearer token for publishing p (for DELETE,
	// the session's own conference, user and type) and returns the
	// organization it publishes for, or an *AuthError (any other error is a
	// 401). Required.
	Authorize func(token string, p Publish) (organizationID string, err error)
	// Quota returns how many WHIP sessions an organization may hold at once
	// (429 beyond); nil or 0: only MaxSessions bounds them.
	Quota func(organizationID string) int
	// FleetQuota, in a fleet, also takes the session's place in the
	// organization's quota across every instance (ok false: the quota is
	// full, 429); release gives it back when the session ends. Nil: the
	// quota is this endpoint's alone.
	FleetQuota func(ctx context.Context, organizationID, sessionID string, quota int) (release func(), ok bool, err error)
	// ValidID checks a conferenceId before it is used; nil accepts 1–128
	// letters, digits, '.', '_' and '-', starting with a letter or digit.
	ValidID func(id string) error
	// Path is the route prefix, default "/whip/".
	Path string
	// MaxSessions bounds concurrent WHIP sessions of every organization
	// together (503 beyond); default 1000.
	MaxSessions int
	// Full, when set, reports that the recorder carries its capacity of
	// streams: offers are refused with 503 no_capacity and Retry-After.
	Full func() bool
	// ConnectTimeout closes a session whose ICE never connects; default 30 s.
	ConnectTimeout time.Duration
	// VideoBitrate, when positive, is asked of every video sender with REMB
	// from its first packet on, about once a second: without it a browser
	// starts low and lowers its resolution for seconds. The API must
	// negotiate REMB (Settings.VideoBitrate).
	VideoBitrate uint64
	// Load, when set, reports the streams the recorder carries and its
	// capacity (0: none): past three quarters of it, the REMB asks video
	// senders for less (VideoBitrateAt).
	Load func() (load, capacity int)
	// Receipts, when set (the one given to the APIs' Settings), tells each
	// track when its packets reached the UDP mux's socket, however late its
	// reader reads them (conference.ArrivalReader).
	Receipts *Receipts
	Logger   *slog.Logger
}

// VideoBitrateAt is the bitrate the REMB asks of a video sender: target up
// to three quarters of the recorder's capacity, then less in proportion, down
// to a quarter of target at capacity (and past it, for the senders already
// taken). A video stream's receive and write cost goes with its bytes, so a
// recorder near its capacity keeps its running recordings whole by asking
// for fewer; capacity 0 (no limit) always asks target.
func VideoBitrateAt(target uint64, load, capacity int) uint64 {
	if capacity <= 0 || 4*load <= 3*capacity {
		return target
	}
	// (capacity − load) / (capacity / 4) of target, at least a quarter.
	f := max(0.25, 4*float64(capacity-load)/float64(capacity))
	return uint64(f * float64(target))
}

// Adapter is the WHIP endpoint. It implements conference.Adapter,
// conference.Listener and http.Handler.
type Adapter struct {
	o    Options
	log  *slog.Logger
	mu   sync.Mutex
	open func(organizationID, conferenceID string) conference.Sink
	sess map[string]*session // by resource id
	// held counts the sessions reserved per organization and total all of
	// them: reserved before negotiation, released when the session ends or
	// fails, so that the limits hold under concurrent offers.
	held  map[string]int
	total int
	// admit serialises the capacity check (Options.Full) with the
	// reservation, so that concurrent offers at capacity − 1 take one place
	// between them, not one each. Not a.mu: Full counts the sessions.
	admit sync.Mutex
	// addMu serialises AddTrack calls (Sink methods are never concurrent).
	addMu  sync.Mutex
	closed bool
	// cut is closed by Close: the sessions whose publishers left stop
	// reading what came before (leave) and close at once.
	cut     chan struct{}
	cutOnce sync.Once
}

// session is one WHIP session: one publisher's PeerConnection.
type session struct {
	id, org, conference, user string
	agentID, agentPhone       string // seed 003's agent, when the publisher named one
	typ                       conference.StreamType
	pc                        *webrtc.PeerConnection
	bufs                      *conference.PushBuffers // pc's stream buffers: its tracks push
	closeOnce                 sync.Once
	// connectTimer ends the session if ICE never connects; end stops it, so
	// that a pending timer does not keep a closed PeerConnection (about
	// 140 KiB of ICE, DTLS and SRTP state) alive for ConnectTimeout.
	// ended tells offer that end ran before the session was registered.
	// Both guarded by Adapter.mu.
	connectTimer *time.Timer
	ended        bool
	tracks       []*conference.PionTrack // guarded by Adapter.mu
	releaseOnce  sync.Once               // gives back the session's reservation
	fleetRelease func()                  // gives back its place in the fleet-wide quota (set before it is shared)
}

// Publish is what a WHIP request publishes: the token presented must allow it.
type Publish struct {
	ConferenceID string
	UserID       string
	Type         conference.StreamType
}

// AuthError is a refused bearer token: Status is 401 (no or invalid token)
// or 403 (a valid token that does not allow this publication).
type AuthError struct {
	Status  int
	Reason  string
	Message string
}

func (e *AuthError) Error() string { return "whip: " + e.Message }

// New returns a WHIP endpoint.
func New(o Options) (*Adapter, error) {
	if o.API == nil || o.Authorize == nil {
		return nil, errors.New("whip: Options need API and Authorize")
	}
	if o.Path == "" {
		o.Path = "/whip/"
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = 1000
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 30 * time.Second
	}
	if o.ValidID == nil {
		o.ValidID = validID
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Adapter{o: o, log: log.With("adapter", "whip"), sess: map[string]*session{}, held: map[string]int{}, cut: make(chan struct{})}, nil
}

// Kind implements conference.Adapter.
func (a *Adapter) Kind() string { return "whip" }

// Join implements conference.Adapter. The WHIP endpoint listens instead (see
// Listen): Join does nothing and returns a no-op leave.
func (a *Adapter) Join(ctx context.Context, organizationID, conferenceID string, sink conference.Sink) (func(), error) {
	return func() {}, nil
}

// Listen implements conference.Listener.
func (a *Adapter) Listen(open func(organizationID, conferenceID string) conference.Sink) {
	a.mu.Lock()
	a.open = open
	a.mu.Unlock()
}

// Sessions returns the number of WHIP sessions connected or connecting,
// counted from their reservation: an offer being negotiated takes its place
// in the instance's load at once.
func (a *Adapter) Sessions() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.total
}

// ConferenceSessions returns the number of WHIP sessions connected or
// connecting to one conference of an organization.
func (a *Adapter) ConferenceSessions(organizationID, conferenceID string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, s := range a.sess {
		if s.org == organizationID && s.conference == conferenceID {
			n++
		}
	}
	return n
}

// Close ends every session, and those whose publishers left at once; later
// offers get 503.
func (a *Adapter) Close() error {
	a.cutOnce.Do(func() { close(a.cut) })
	a.mu.Lock()
	a.closed = true
	all := make([]*session, 0, len(a.sess))
	for _, s := range a.sess {
		all = append(all, s)
	}
	a.mu.Unlock()
	for _, s := range all {
		a.end(s)
	}
	return nil
}

// ServeHTTP serves POST {Path}{conferenceId} and DELETE {Path}{conferenceId}/{sessionId}.
func (a *Adapter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, a.o.Path)
	if !ok {
		httperr.Write(w, http.StatusNotFound, "not_found", "not a WHIP resource")
		return
	}
	conf, res, hasRes := strings.Cut(rest, "/")
	// Browsers publish from pages of other origins: allow them (CORS). The
	// bearer token, not a cookie, authenticates, so no credentials are shared.
	hdr := w.Header()
	hdr.Set("Access-Control-Allow-Origin", "*")
	hdr.Set("Access-Control-Expose-Headers", "Location, Link")
	switch {
	case r.Method == http.MethodOptions:
		hdr.Set("Allow", "OPTIONS, POST, DELETE")
		hdr.Set("Access-Control-Allow-Methods", "OPTIONS, POST, DELETE")
		hdr.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		hdr.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPost && !hasRes:
		a.offer(w, r, conf)
	case r.Method == http.MethodDelete && hasRes:
		a.delete(w, r, conf, res)
	case r.Method == http.MethodPatch && hasRes:
		// Trickle ICE and ICE restarts (RFC 9725 §4.3) are not supported: the
		// answer carries every candidate.
		httperr.Write(w, http.StatusMethodNotAllowed, "not_supported", "trickle ICE is not supported; send a complete offer")
	default:
		w.Header().Set("Allow", "OPTIONS, POST, DELETE")
		httperr.Write(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST on /whip/{conferenceId} and DELETE on the session's Location")
	}
}

// maxOffer bounds an SDP offer's size.
const maxOffer = 64 << 10

func (a *Adapter) offer(w http.ResponseWriter, r *http.Request, conf string) {
	if err := a.o.ValidID(conf); err != nil {
		httperr.Write(w, http.StatusBadRequest, "invalid_id", "conferenceId: "+err.Error())
		return
	}
	q := r.URL.Query()
	user := q.Get("userId")
	if user == "" || len(user) > 256 || strings.ContainsFunc(user, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		httperr.Write(w, http.StatusBadRequest, "invalid_field", "userId is required: up to 256 printable characters")
		return
	}
	typ, err := conference.ParseStreamType(q.Get("type"))
	if err != nil {
		httperr.Write(w, http.StatusBadRequest, "invalid_field", err.Error())
		return
	}
	agentID, agentPhone := q.Get("agentId"), q.Get("agentPhone")
	if agentID != "" {
		if n, err := strconv.ParseInt(agentID, 10, 64); err != nil || n <= 0 || strconv.FormatInt(n, 10) != agentID {
			httperr.Write(w, http.StatusBadRequest, "invalid_field", "agentId must be a positive integer")
			return
		}
	}
	if len(agentPhone) > 64 || strings.ContainsFunc(agentPhone, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune("+-.*#() ", r))
	}) {
		httperr.Write(w, http.StatusBadRequest, "invalid_field", "agentPhone is up to 64 digits, letters and + - . * # ( ) or spaces")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "application/sdp") {
		httperr.Write(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/sdp")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxOffer))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httperr.Write(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the offer is larger than %d bytes", maxOffer))
			return
		}
		httperr.Write(w, http.StatusBadRequest, "bad_request", "cannot read the offer")
		return
	}
	offer := string(body)
	if typ == conference.StreamUNKNOWN {
		typ = conference.StreamMIC
		if strings.Contains(offer, "m=video") {
			typ = conference.StreamCAM
		}
	}
	org, ok := a.authorize(w, r, Publish{ConferenceID: conf, UserID: user, Type: typ})
	if !ok {
		return
	}
	if !strings.HasPrefix(strings.TrimSpace(offer), "v=0") || !strings.Contains(offer, "m=") {
		httperr.Write(w, http.StatusBadRequest, "bad_sdp", "the body is not an SDP offer with media")
		return
	}

	s := &session{id: newID(), org: org, conference: conf, user: user, agentID: agentID, agentPhone: agentPhone, typ: typ}
	a.admit.Lock()
	if a.o.Full != nil && a.o.Full() { // not under a.mu: Full counts the sessions
		a.admit.Unlock()
		w.Header().Set("Retry-After", "5")
		httperr.Write(w, http.StatusServiceUnavailable, "no_capacity", "the recorder carries its capacity of streams; retry later or on another instance")
		return
	}
	status, reason, msg := a.reserve(s)
	a.admit.Unlock()
	if status != 0 {
		httperr.Write(w, status, reason, msg)
		return
	}
	if status, reason, msg := a.reserveFleet(r.Context(), s); status != 0 {
		a.release(s)
		httperr.Write(w, status, reason, msg)
		return
	}
	api := a.o.API
	if a.o.AudioAPI != nil && !HasVideo(offer) {
		api = a.o.AudioAPI
	}
	s.bufs = &conference.PushBuffers{}
	pc, err := api.NewPeerConnection(webrtc.Configuration{}, s.bufs, func() { a.hungUp(s) })
	if err != nil {
		a.release(s)
		a.log.Error("cannot create a peer connection", "err", err)
		httperr.Write(w, http.StatusInternalServerError, "internal", "cannot create a peer connection")
		return
	}
	s.pc = pc
	answer, err := a.negotiate(r.Context(), s, offer)
	if err != nil {
		pc.Close()
		a.release(s)
		httperr.Write(w, http.StatusBadRequest, "bad_sdp", err.Error())
		return
	}
	a.mu.Lock()
	if a.closed || s.ended {
		a.mu.Unlock()
		pc.Close()
		a.release(s)
		httperr.Write(w, http.StatusServiceUnavailable, "unavailable", "the WHIP endpoint is closing")
		return
	}
	a.sess[s.id] = s
	s.connectTimer = time.AfterFunc(a.o.ConnectTimeout, func() {
		if st := pc.ICEConnectionState(); st == webrtc.ICEConnectionStateNew || st == webrtc.ICEConnectionStateChecking {
			a.log.Info("WHIP session never connected", "session", s.id)
			a.end(s)
		}
	})
	a.mu.Unlock()
	a.log.Info("WHIP session created", "session", s.id, "conference", conf, "userId", user, "type", s.typ)
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", strings.TrimSuffix(a.o.Path, "/")+"/"+conf+"/"+s.id)
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, answer)
}

// authorize checks the request's bearer token for p; it has answered (401,
// 403) when ok is false.
func (a *Adapter) authorize(w http.ResponseWriter, r *http.Request, p Publish) (org string, ok bool) {
	org, err := a.o.Authorize(bearer(r.Header.Get("Authorization")), p)
	if err == nil {
		return org, true
	}
	ae, isAuth := err.(*AuthError)
	if !isAuth {
		ae = &AuthError{Status: http.StatusUnauthorized, Reason: "unauthorized", Message: "missing or invalid bearer token"}
	}
	if ae.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="whip"`)
	}
	httperr.Write(w, ae.Status, ae.Reason, ae.Message)
	return "", false
}

// reserve takes a place for s within MaxSessions and its organization's
// quota, atomically; it returns the refusal's status (0: reserved).
func (a *Adapter) reserve(s *session) (status int, reason, msg string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed || a.open == nil || a.total >= a.o.MaxSessions {
		return http.StatusServiceUnavailable, "unavailable", "the WHIP endpoint is not accepting sessions"
	}

	if a.o.Quota != nil {
		if q := a.o.Quota(s.org); q > 0 && a.held[s.org] >= q {
			return http.StatusTooManyRequests, "quota_exceeded",
				fmt.Sprintf("the organization is at its quota of %d WHIP sessions; end some and retry", q)
		}
	}
	a.held[s.org]++
	a.total++
	return 0, "", ""
}

// reserveFleet takes s's place in the fleet-wide quota (Options.FleetQuota),
// after reserve; it returns the refusal's status (0: reserved or no fleet).
func (a *Adapter) reserveFleet(ctx context.Context, s *session) (status int, reason, msg string) {
	if a.o.FleetQuota == nil || a.o.Quota == nil {
		return 0, "", ""
	}
	q := a.o.Quota(s.org)
	if q <= 0 {
		return 0, "", ""
	}
	release, ok, err := a.o.FleetQuota(ctx, s.org, s.id, q)
	if err != nil {
		a.log.Error("cannot count the fleet's WHIP sessions", "err", err)
		return http.StatusServiceUnavailable, "unavailable", "the WHIP endpoint cannot check its quota; retry later"
	}
	if !ok {
		return http.StatusTooManyRequests, "quota_exceeded",
			fmt.Sprintf("the organization is at its quota of %d WHIP sessions; end some and retry", q)
	}
	s.fleetRelease = release
	return 0, "", ""
}

// release gives back s's reservation; idempotent.
func (a *Adapter) release(s *session) {
	s.releaseOnce.Do(func() {
		a.mu.Lock()
		a.total--
		if a.held[s.org]--; a.held[s.org] <= 0 {
			delete(a.held, s.org)
		}
		a.mu.Unlock()
		if s.fleetRelease != nil {
			go s.fleetRelease() // a store write: not on Pion's goroutine
		}
	})
}

// negotiate applies the offer and returns the answer with every candidate
// (no trickle). Tracks are handed to the conference's Sink as they start.
func (a *Adapter) negotiate(ctx context.Context, s *session, offer string) (string, error) {
	pc := s.pc
	n := 0
	pc.OnTrack(func(t *webrtc.TrackRemote, recv *webrtc.RTPReceiver) { a.addTrack(s, t, recv) })
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateFailed || st == webrtc.PeerConnectionStateClosed {
			a.end(s)
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", fmt.Errorf("the offer was rejected: %v", err)
	}
	for _, tr := range pc.GetTransceivers() {
		if tr.Direction() == webrtc.RTPTransceiverDirectionRecvonly || tr.Direction() == webrtc.RTPTransceiverDirectionSendrecv {
			n++
		}
	}
	if n == 0 {
		return "", errors.New("the offer sends no media the recorder can receive")
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("no answer to the offer: %v", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return "", fmt.Errorf("cannot apply the answer: %v", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", ctx.Err()
	case <-time.After(10 * time.Second):
		return "", errors.New("ICE gathering did not complete")
	}
	return pc.LocalDescription().SDP, nil
}

func (a *Adapter) addTrack(s *session, t *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	a.mu.Lock()
	open := a.open
	a.mu.Unlock()
	if open == nil {
		return
	}
	kind := conference.KindAudio
	if t.Kind() == webrtc.RTPCodecTypeVideo {
		kind = conference.KindVideo
	}
	c := t.Codec()
	mid := ""
	for _, tr := range s.pc.GetTransceivers() {
		if r := tr.Receiver(); r != nil && r.Track() == t {
			mid = tr.Mid()
		}
	}
	ct := &conference.Track{
		ConferenceID: s.conference, UserID: s.user, StreamID: s.id, AgentID: s.agentID, AgentPhone: s.agentPhone,
		TrackID:    strings.ToLower(string(kind)) + mid,
		StreamType: s.typ, Kind: kind, Started: time.Now().UTC(),
		Codec: conference.CodecOf(c),
	}
	var onRTCP func()
	if kind == conference.KindVideo && a.o.VideoBitrate > 0 {
		bitrate := func() uint64 {
			if a.o.Load == nil {
				return a.o.VideoBitrate
			}
			load, capacity := a.o.Load()
			return VideoBitrateAt(a.o.VideoBitrate, load, capacity)
		}
		onRTCP = conference.REMB(s.pc, bitrate, uint32(t.SSRC()))
		onRTCP()
	}
	// srtp's goroutines push the track's packets and its sender reports
	// (REMB sent from there): no goroutine of ours waits for them.
	ssrc := uint32(t.SSRC())
	srs := conference.PushSenderReports(recv, s.bufs.RTCP(ssrc), onRTCP)
	pt := conference.NewPushedPionTrack(t, srs, s.bufs.RTP(ssrc))
	if a.o.Receipts != nil {
		// Looked up once here; each packet's lookup (by the goroutine that
		// hands it over) takes no lock and allocates nothing.
		if ufrag, ok := localUfrag(s.pc); ok {
			if arr := a.o.Receipts.lookup(ufrag); arr != nil {
				pt.SetArrivals(arr)
			}
		}
	}
	pt.Fill(ct, s.pc, 0)
	a.mu.Lock()
	s.tracks = append(s.tracks, pt)
	a.mu.Unlock()
	if ct.RequestKeyframe != nil {
		ct.RequestKeyframe() // the recording starts with a keyframe
	}
	a.addMu.Lock()
	defer a.addMu.Unlock()
	open(s.org, s.conference).AddTrack(ct)
}

func (a *Adapter) delete(w http.ResponseWriter, r *http.Request, conf, id string) {
	a.mu.Lock()
	s := a.sess[id]
	a.mu.Unlock()
	p := Publish{ConferenceID: conf}
	if s != nil {
		p.UserID, p.Type = s.user, s.typ
	}
	org, ok := a.authorize(w, r, p)
	if !ok {
		return
	}
	if s == nil || s.org != org || s.conference != conf {
		httperr.Write(w, http.StatusNotFound, "not_found", "no such WHIP session")
		return
	}
	a.leave(s)
	w.WriteHeader(http.StatusOK)
}

// hungUp ends the session of a publisher that closed its connection
// without a DELETE (its DTLS close_notify): it left, as with a DELETE.
func (a *Adapter) hungUp(s *session) {
	a.mu.Lock()
	ended := s.ended
	a.mu.Unlock()
	if ended {
		return // the close that follows its DELETE, or our own
	}
	a.log.Info("WHIP publisher closed its connection without DELETE", "session", s.id)
	a.leave(s)
}

// end closes a session's PeerConnection at once: its tracks' readers get
// io.EOF.
func (a *Adapter) end(s *session) { a.finish(s, false) }

// leave ends the session of a publisher that left (DELETE, or its DTLS
// close_notify: hungUp): its tracks' readers first read what was received before (conference.PionTrack.Leave:
// a recorder short of CPU reads its sockets seconds behind), then the
// PeerConnection closes.
func (a *Adapter) leave(s *session) { a.finish(s, true) }

func (a *Adapter) finish(s *session, leave bool) {
	s.closeOnce.Do(func() {
		a.mu.Lock()
		delete(a.sess, s.id)
		s.ended = true
		if s.connectTimer != nil {
			s.connectTimer.Stop()
		}
		tracks := s.tracks
		a.mu.Unlock()
		a.release(s)
		go func() {
			if leave {
				for _, t := range tracks {
					t.Leave()
				}
				for _, t := range tracks {
					select {
					case <-t.Done():
					case <-a.cut:
					}
				}
			}
			if err := s.pc.Close(); err != nil {
				a.log.Debug("closing peer connection", "session", s.id, "err", err)
			}
		}()
		a.log.Info("WHIP session ended", "session", s.id, "conference", s.conference, "userId", s.user)
	})
}

func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validID is the default conferenceId check.
func validID(id string) error {
	if id == "" || len(id) > 128 {
		return errors.New("must be 1 to 128 characters")
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || (c != '.' && c != '_' && c != '-')) {
			return fmt.Errorf("character %d is not allowed", i)
		}
	}
	return nil
}

// Interface guards.
var (
	_ conference.Adapter  = (*Adapter)(nil)
	_ conference.Listener = (*Adapter)(nil)
	_ http.Handler        = (*Adapter)(nil)
)
