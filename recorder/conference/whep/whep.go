// Package whep is the conference adapter that pulls streams from WHEP
// endpoints (WebRTC-HTTP Egress Protocol, draft-ietf-wish-whep): for each
// stream of a conference it POSTs an SDP offer, takes the SDP answer of the
// 201 reply, records the tracks that arrive, and DELETEs the session's
// resource (the reply's Location) when the recording stops.
//
// # Which URLs
//
// Options.URLTemplate is expanded once per stream. It may hold
// {conferenceId}, {organizationId} and {streamId} (each path-escaped). A
// template without {streamId} names ONE endpoint per conference, for instance
// https://sfu.example/whep/{conferenceId}: that endpoint's tracks all belong
// to one participant whose userId is the conferenceId. A template with
// {streamId} is expanded for each entry of Options.Streams (for instance
// https://cdn.example/{conferenceId}/{streamId}/whep with Streams
// ["alice","bob"]), and each stream's tracks belong to the participant named
// by its stream id. WHEP has no way to list a conference's streams or to learn
// of new ones, so the list is configuration.
//
// # Replies
//
// 201 with an application/sdp answer and a Location header (resolved against
// the endpoint URL, after redirects, when relative) is success. A 201 without
// Location is an error: the session could never be deleted. 404 fails Join
// with an error wrapping conference.ErrNoConference; other 4xx and 5xx replies
// fail it with an *HTTPError naming the status and the start of the body. A
// 503 whose Retry-After (in seconds) is within the request timeout is tried
// once more. ICE servers the
// endpoint announces in Link headers (rel="ice-server", RFC 8288) are parsed
// (ParseLinkICEServers) and set on the PeerConnection's configuration, but
// they cannot help the connection at hand: the offer already carried all our
// candidates (no trickle, no ICE restart). Configure Options.ICEServers for
// set-ups behind NAT.
package whep

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/recorder/conference/whip"
)

// Options configure the WHEP adapter.
type Options struct {
	// URLTemplate is the endpoint URL with {conferenceId}, {organizationId}
	// and {streamId} placeholders (see the package documentation).
	URLTemplate string
	// Streams are the values of {streamId}; required when URLTemplate has it.
	Streams []string
	// Token, when set, is sent as "Authorization: Bearer <Token>" on every
	// request (POST and DELETE).
	Token string
	// HTTPClient sends the requests; nil means a new http.Client.
	HTTPClient *http.Client
	// API builds the PeerConnections; nil means Pion's defaults.
	API *webrtc.API
	// Receive, when set, builds them instead: an endpoint that closes a
	// session (its DTLS close_notify) then ends its tracks once they have
	// read what came before (conference.PionTrack.Leave: a recorder short
	// of CPU reads seconds behind), where Pion would close the connection
	// at once and drop what was not read yet.
	Receive *whip.ReceiveAPI
	// ICEServers are given to every PeerConnection (STUN/TURN).
	ICEServers []webrtc.ICEServer
	// Video pulls video too; audio only when false.
	Video bool
	// RequestTimeout bounds every HTTP request and ICE gathering (10 s when zero).
	RequestTimeout time.Duration
	// Logger receives one line per event; nil means slog.Default().
	Logger *slog.Logger
}

// Adapter pulls conference streams from WHEP endpoints. It implements
// conference.Adapter.
type Adapter struct {
	opts Options
	http *http.Client
	api  *webrtc.API
	log  *slog.Logger
}

// New returns a WHEP adapter.
func New(opts Options) *Adapter {
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 10 * time.Second
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	api := opts.API
	if api == nil {
		api = webrtc.NewAPI()
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Adapter{opts: opts, http: hc, api: api, log: log.With("adapter", "whep")}
}

// Kind returns "whep".
func (a *Adapter) Kind() string { return "whep" }

// HTTPError is a WHEP endpoint's error reply.
type HTTPError struct {
	URL        string
	Status     int
	Body       string        // the start of the reply body
	RetryAfter time.Duration // from a Retry-After header in seconds, if any
}

// retryAfter reports whether err is a 503 whose Retry-After asks for a new
// try within limit, and how long to wait.
func retryAfter(err error, limit time.Duration) (time.Duration, bool) {
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusServiceUnavailable || he.RetryAfter <= 0 || he.RetryAfter > limit {
		return 0, false
	}
	return he.RetryAfter, true
}

// Error implements error.
func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("whep: %s: HTTP %d %s", e.URL, e.Status, http.StatusText(e.Status))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// ErrNoLocation is returned for a 201 reply without a Location header.
var ErrNoLocation = errors.New("whep: 201 reply without Location")

// endpoint is one stream to pull.
type endpoint struct {
	url    string
	userID string
	stream string
}

// endpoints expands the URL template for a conference (see the package
// documentation).
func (a *Adapter) endpoints(organizationID, conferenceID string) ([]endpoint, error) {
	tmpl := a.opts.URLTemplate
	if tmpl == "" {
		return nil, errors.New("whep: no urlTemplate configured")
	}
	expand := func(stream string) string {
		return strings.NewReplacer(
			"{conferenceId}", url.PathEscape(conferenceID),
			"{organizationId}", url.PathEscape(organizationID),
			"{streamId}", url.PathEscape(stream),
		).Replace(tmpl)
	}
	if !strings.Contains(tmpl, "{streamId}") {
		return []endpoint{{url: expand(""), userID: conferenceID, stream: conferenceID}}, nil
	}
	if len(a.opts.Streams) == 0 {
		return nil, errors.New("whep: urlTemplate has {streamId} but no streams are configured")
	}
	eps := make([]endpoint, 0, len(a.opts.Streams))
	for _, s := range a.opts.Streams {
		eps = append(eps, endpoint{url: expand(s), userID: s, stream: s})
	}
	return eps, nil
}

// Join pulls every stream of conferenceID and delivers its tracks to sink
// until leave is called. If any stream cannot be pulled, Join fails and
// releases the others.
func (a *Adapter) Join(ctx context.Context, organizationID, conferenceID string, sink conference.Sink) (leave func(), err error) {
	eps, err := a.endpoints(organizationID, conferenceID)
	if err != nil {
		return nil, err
	}
	c := &conf{a: a, sink: sink, id: conferenceID, log: a.log.With("conference", conferenceID)}
	for _, ep := range eps {
		s, err := c.pull(ctx, ep)
		if err != nil {
			c.leave()
			if he := (*HTTPError)(nil); errors.As(err, &he) && he.Status == http.StatusNotFound {
				return nil, fmt.Errorf("whep: conference %q: %w: %v", conferenceID, conference.ErrNoConference, err)
			}
			return nil, fmt.Errorf("whep: conference %q: %w", conferenceID, err)
		}
		c.mu.Lock()
		c.sessions = append(c.sessions, s)
		c.mu.Unlock()
	}
	c.live.Store(int32(len(c.sessions)))
	for _, s := range c.sessions {
		s.active.Store(true)
	}
	// The tracks that arrived while Join ran go to the sink now, from a
	// goroutine: the sink's AddTrack waits for the lock its caller holds
	// around Join (recorder's room), so neither Join nor a Pion goroutine may
	// wait in AddTrack before Join has returned (a conference of several
	// streams deadlocked: the first stream's track waited for the room, Join
	// for c.mu to add the second session).
	go func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.joined = true
		early := c.early
		c.early = nil
		if c.closed {
			return
		}
		for _, ct := range early {
			c.sink.AddTrack(ct)
		}
	}()
	return c.leave, nil
}

// conf is one joined conference: a WHEP session per stream.
type conf struct {
	a    *Adapter
	sink conference.Sink
	id   string
	log  *slog.Logger

	mu       sync.Mutex // guards sessions, closed, joined, early and the sink
	sessions []*session
	closed   bool
	joined   bool                // Join has returned: tracks go to the sink as they come
	early    []*conference.Track // tracks that came before (Join delivers them after)
	live     atomic.Int32        // sessions not yet failed
	once     sync.Once
}

// session is one WHEP session (one pulled stream).
type session struct {
	ep       endpoint
	location string
	pc       *webrtc.PeerConnection

	active atomic.Bool // part of the conference: set by Join, cleared by leave

	mu     sync.Mutex
	tracks []*track
	failed bool
}

// pull negotiates one stream.
func (c *conf) pull(ctx context.Context, ep endpoint) (*session, error) {
	a := c.a
	s := &session{ep: ep}
	cfg := webrtc.Configuration{ICEServers: a.opts.ICEServers}
	var pc *webrtc.PeerConnection
	var err error
	if a.opts.Receive != nil {
		pc, err = a.opts.Receive.NewPeerConnection(cfg, &conference.PushBuffers{}, func() { c.fail(s, nil, true) })
	} else {
		pc, err = a.api.NewPeerConnection(cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("whep: new PeerConnection: %w", err)
	}
	s.pc = pc
	ok := false
	defer func() {
		if !ok {
			_ = pc.Close()
		}
	}()
	kinds := []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio}
	if a.opts.Video {
		kinds = append(kinds, webrtc.RTPCodecTypeVideo)
	}
	for _, k := range kinds {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return nil, fmt.Errorf("whep: %w", err)
		}
	}
	pc.OnTrack(func(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) { c.onTrack(s, remote, recv) })
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateFailed:
			c.fail(s, fmt.Errorf("whep: %s: connection failed", ep.url), false)
		case webrtc.PeerConnectionStateClosed:
			// Closed by the endpoint (DTLS close_notify: by Pion, without
			// Options.Receive), or by us.
			c.fail(s, nil, false)
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return nil, fmt.Errorf("whep: offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return nil, fmt.Errorf("whep: offer: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(a.opts.RequestTimeout):
		return nil, errors.New("whep: ICE gathering did not complete")
	}

	answer, loc, links, err := a.post(ctx, ep.url, pc.LocalDescription().SDP)
	if wait, ok := retryAfter(err, a.opts.RequestTimeout); ok {
		// 503 with a short Retry-After: the endpoint asks for one more try.
		c.log.Info("whep endpoint busy, retrying", "url", ep.url, "after", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		answer, loc, links, err = a.post(ctx, ep.url, pc.LocalDescription().SDP)
	}
	if err != nil {
		return nil, err
	}
	s.location = loc
	if len(links) > 0 {
		cfg := pc.GetConfiguration()
		cfg.ICEServers = append(cfg.ICEServers, links...)
		if err := pc.SetConfiguration(cfg); err != nil {
			c.log.Warn("whep: ICE servers of the Link header not applied", "error", err)
		}
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		a.delete(s.location)
		return nil, fmt.Errorf("whep: %s: bad answer: %w", ep.url, err)
	}
	c.log.Info("whep session", "url", ep.url, "location", loc, "user", ep.userID)
	ok = true
	return s, nil
}

// post sends the offer and returns the answer, the resolved Location and the
// ICE servers of the reply's Link headers.
func (a *Adapter) post(ctx context.Context, endpointURL, offer string) (answer, location string, ice []webrtc.ICEServer, err error) {
	ctx, cancel := context.WithTimeout(ctx, a.opts.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpointURL, strings.NewReader(offer))
	if err != nil {
		return "", "", nil, fmt.Errorf("whep: %w", err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Accept", "application/sdp")
	a.auth(req)
	resp, err := a.http.Do(req)
	if err != nil {
		return "", "", nil, fmt.Errorf("whep: POST %s: %w", endpointURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", "", nil, fmt.Errorf("whep: POST %s: reading reply: %w", endpointURL, err)
	}
	if resp.StatusCode != http.StatusCreated {
		snippet := string(bytes.TrimSpace(body))
		if len(snippet) > 200 {
			snippet = snippet[:200]
		}
		he := &HTTPError{URL: endpointURL, Status: resp.StatusCode, Body: snippet}
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs >= 0 {
			he.RetryAfter = time.Duration(secs) * time.Second
		}
		return "", "", nil, he
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "application/sdp") {
		return "", "", nil, fmt.Errorf("whep: POST %s: answer of type %q, want application/sdp", endpointURL, ct)
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", "", nil, fmt.Errorf("%w (POST %s)", ErrNoLocation, endpointURL)
	}
	base := resp.Request.URL // the endpoint, or where it redirected us
	ref, err := url.Parse(loc)
	if err != nil {
		return "", "", nil, fmt.Errorf("whep: POST %s: bad Location %q: %w", endpointURL, loc, err)
	}
	return string(body), base.ResolveReference(ref).String(), ParseLinkICEServers(resp.Header.Values("Link")), nil
}

func (a *Adapter) auth(req *http.Request) {
	if a.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.opts.Token)
	}
}

// delete ends a WHEP session on its server (DELETE of its resource).
func (a *Adapter) delete(location string) {
	if location == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.opts.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, location, nil)
	if err != nil {
		return
	}
	a.auth(req)
	resp, err := a.http.Do(req)
	if err != nil {
		a.log.Warn("whep: DELETE failed", "location", location, "error", err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		a.log.Warn("whep: DELETE refused", "location", location, "status", resp.StatusCode)
	}
}

// onTrack hands a new remote track to the sink (Pion goroutine).
func (c *conf) onTrack(s *session, remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	t := &track{PionTrack: conference.NewPionTrack(remote, conference.ReadSenderReports(recv))}
	s.mu.Lock()
	s.tracks = append(s.tracks, t)
	s.mu.Unlock()
	kind, typ := conference.KindAudio, conference.StreamMIC
	if remote.Kind() == webrtc.RTPCodecTypeVideo {
		kind, typ = conference.KindVideo, conference.StreamCAM
	}
	codec := remote.Codec()
	ct := &conference.Track{
		ConferenceID: c.id,
		UserID:       s.ep.userID,
		StreamID:     s.ep.stream,
		TrackID:      strings.ToLower(kind.String()),
		StreamType:   typ,
		Kind:         kind,
		Codec:        conference.CodecOf(codec),
		Started:      time.Now(),
	}
	// A zero sender SSRC makes Janus file the PLI under the first m-line
	// whose peer SSRC it does not know (often audio).
	t.Fill(ct, s.pc, senderSSRC)
	c.log.Info("whep track", "user", ct.UserID, "codec", codec.MimeType, "kind", kind)
	if !c.joined {
		c.early = append(c.early, ct) // see Join
		return
	}
	c.sink.AddTrack(ct)
}

// fail ends a session whose connection failed (err) or that the endpoint
// closed (nil); the conference ends, with the last session's err, when no
// session is left. With leave (the endpoint's close_notify seen, the
// connection still open: Options.Receive), its tracks first read what came
// before, and the connection closes after.
func (c *conf) fail(s *session, err error, leave bool) {
	if !s.active.Load() {
		return // not (yet) part of the conference, or we left
	}
	s.mu.Lock()
	if s.failed {
		s.mu.Unlock()
		return
	}
	s.failed = true
	tracks := s.tracks
	s.mu.Unlock()
	if leave {
		for _, t := range tracks {
			t.Leave()
		}
		go func() {
			for _, t := range tracks {
				<-t.Done() // leaveMax at the latest
			}
			_ = s.pc.Close()
		}()
	} else {
		for _, t := range tracks {
			t.end()
		}
	}
	if err != nil {
		c.log.Warn("whep session failed", "url", s.ep.url, "error", err)
	} else {
		c.log.Info("whep session closed by the endpoint", "url", s.ep.url)
	}
	if c.live.Add(-1) > 0 {
		return
	}
	c.mu.Lock()
	report := !c.closed
	c.closed = true
	c.mu.Unlock()
	if report {
		go c.sink.ConferenceEnded(err) // not on Pion's callback goroutine
	}
}

// leave deletes every session and closes its PeerConnection. It is
// idempotent; after it no AddTrack follows.
func (c *conf) leave() {
	c.once.Do(func() {
		c.mu.Lock()
		c.closed = true
		sessions := c.sessions
		c.mu.Unlock()
		var wg sync.WaitGroup
		// The tracks end now; the network goodbyes follow.
		for _, s := range sessions {
			s.active.Store(false)
			s.mu.Lock()
			for _, t := range s.tracks {
				t.end()
			}
			s.mu.Unlock()
		}
		for _, s := range sessions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.a.delete(s.location)
				_ = s.pc.Close()
			}()
		}
		wg.Wait()
	})
}

// track reads one pulled track.
type track struct{ *conference.PionTrack }

// end makes ReadRTP return io.EOF, waking a blocked reader.
func (t *track) end() { t.End() }

// senderSSRC is the sender SSRC of our RTCP feedback (RFC 4585 section 6.1):
// we send no media, so any fixed non-zero value will do.
const senderSSRC = 0x5245_4331 // "REC1"

var (
	_ conference.Adapter   = (*Adapter)(nil)
	_ conference.RTPReader = (*track)(nil)
)
