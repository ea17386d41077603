package janus

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/rtcrec/recorder/recorder/conference"
)

// Janus core error codes (janus/apierror.h) the client tells apart.
const (
	codeSessionNotFound = 458
	codeHandleNotFound  = 459
)

// ErrSessionGone is wrapped by the errors of a Session whose Janus server went
// away, stopped answering, or timed the session out. It wraps
// conference.ErrSessionLost.
var ErrSessionGone error = sessionGone{}

type sessionGone struct{}

func (sessionGone) Error() string { return "janus: session gone" }
func (sessionGone) Unwrap() error { return conference.ErrSessionLost }

// Error is an error reply of the Janus core ({"janus":"error"}).
type Error struct {
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

// Error implements error.
func (e *Error) Error() string { return fmt.Sprintf("janus: error %d: %s", e.Code, e.Reason) }

// PluginError is an error reported by a plugin in its data
// ({"error_code":426,"error":"No such room"}).
type PluginError struct {
	Code   int    `json:"error_code"`
	Reason string `json:"error"`
}

// Error implements error.
func (e *PluginError) Error() string {
	return fmt.Sprintf("janus: plugin error %d: %s", e.Code, e.Reason)
}

// JSEP is an SDP offer or answer carried beside a Janus message.
type JSEP struct {
	Type string `json:"type"`
	SDP  string `json:"sdp"`
}

// PluginData is the plugin part of a Janus event or reply.
type PluginData struct {
	Plugin string          `json:"plugin"`
	Data   json.RawMessage `json:"data"`
}

// Message is one message from Janus: a reply, or an event from the long poll.
type Message struct {
	Janus       string          `json:"janus"`
	Transaction string          `json:"transaction,omitempty"`
	SessionID   uint64          `json:"session_id,omitempty"`
	Sender      uint64          `json:"sender,omitempty"`
	Data        json.RawMessage `json:"data,omitempty"`
	PluginData  *PluginData     `json:"plugindata,omitempty"`
	JSEP        *JSEP           `json:"jsep,omitempty"`
	Error       *Error          `json:"error,omitempty"`
	Reason      string          `json:"reason,omitempty"` // hangup
	Type        string          `json:"type,omitempty"`   // media
	Receiving   bool            `json:"receiving,omitempty"`
}

// pluginError returns the plugin's error in m, if any.
func (m *Message) pluginError() error {
	if m.PluginData == nil {
		return nil
	}
	var pe PluginError
	if json.Unmarshal(m.PluginData.Data, &pe) == nil && pe.Code != 0 {
		return &pe
	}
	return nil
}

// Client talks to one Janus server over its HTTP transport (the REST API of
// janus.transport.http). It is safe for concurrent use.
type Client struct {
	url     string
	http    *http.Client
	timeout time.Duration // every request but the long poll
}

// NewClient returns a client of the Janus HTTP API at url (for instance
// http://127.0.0.1:8088/janus). hc may be nil; every request has its own
// timeout (requestTimeout, 10 s when zero), the long poll excepted.
func NewClient(url string, hc *http.Client, requestTimeout time.Duration) *Client {
	if hc == nil {
		hc = &http.Client{}
	}
	if requestTimeout <= 0 {
		requestTimeout = 10 * time.Second
	}
	return &Client{url: url, http: hc, timeout: requestTimeout}
}

func newTransaction() string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// post sends req (a JSON object) to url and decodes the reply.
func (c *Client) post(ctx context.Context, url string, req map[string]any) (*Message, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("janus: %s %q: %w", req["janus"], url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("janus: %s %q: reading reply: %w", req["janus"], url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("janus: %s %q: HTTP %s", req["janus"], url, resp.Status)
	}
	var m Message
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("janus: %s %q: bad reply: %w", req["janus"], url, err)
	}
	if m.Janus == "error" && m.Error != nil {
		return &m, m.Error
	}
	return &m, nil
}

// Info asks the server for its description (GET /info); it tells whether a
// Janus answers at the URL.
func (c *Client) Info(ctx context.Context) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url+"/info", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("janus: info: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("janus: info: HTTP %s", resp.Status)
	}
	var info map[string]any
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&info); err != nil {
		return nil, fmt.Errorf("janus: info: %w", err)
	}
	return info, nil
}

// Session is one Janus session. A goroutine long-polls its events: replies to
// asynchronous requests go to their callers, every other event to Events.
// The session dies (Done closes, Err says why) when the server stops
// answering, forgets the session, or Destroy is called.
type Session struct {
	c   *Client
	ID  uint64
	url string

	mu      sync.Mutex
	waiters map[string]chan *Message // by transaction
	queue   []*Message               // events nobody waits for, oldest first
	err     error

	notify chan struct{} // a token when queue grows
	done   chan struct{} // closed when the session is dead
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

// CreateSession creates a session and starts its event long poll and its
// keepalives (every keepalive, 25 s when zero; Janus drops sessions silent
// for 60 s by default).
func (c *Client) CreateSession(ctx context.Context, keepalive time.Duration) (*Session, error) {
	m, err := c.post(ctx, c.url, map[string]any{"janus": "create", "transaction": newTransaction()})
	if err != nil {
		return nil, err
	}
	var d struct {
		ID uint64 `json:"id"`
	}
	if err := json.Unmarshal(m.Data, &d); err != nil || d.ID == 0 {
		return nil, fmt.Errorf("janus: create: no session id in %q", m.Data)
	}
	if keepalive <= 0 {
		keepalive = 25 * time.Second
	}
	pctx, stop := context.WithCancel(context.Background())
	s := &Session{
		c: c, ID: d.ID, url: c.url + "/" + strconv.FormatUint(d.ID, 10),
		waiters: make(map[string]chan *Message),
		notify:  make(chan struct{}, 1),
		done:    make(chan struct{}),
		stop:    stop,
	}
	s.wg.Add(2)
	go s.poll(pctx)
	go s.keepalive(pctx, keepalive)
	return s, nil
}

// Done is closed when the session is dead.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns why the session died, nil while it lives or after Destroy.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Notify yields a token whenever events are queued; call Next to take them.
func (s *Session) Notify() <-chan struct{} { return s.notify }

// Next returns the oldest queued event, or nil when there is none.
func (s *Session) Next() *Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return nil
	}
	m := s.queue[0]
	s.queue[0] = nil
	s.queue = s.queue[1:]
	return m
}

// die marks the session dead with err (nil: destroyed on purpose).
func (s *Session) die(err error) {
	s.mu.Lock()
	select {
	case <-s.done:
	default:
		s.err = err
		close(s.done)
	}
	s.mu.Unlock()
	s.stop()
}

// poll long-polls the session's events until the session dies. Two failed
// polls in a row (server gone, HTTP error, timeout) kill the session.
func (s *Session) poll(ctx context.Context) {
	defer s.wg.Done()
	failures := 0
	for ctx.Err() == nil {
		msgs, err := s.pollOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var je *Error
			if errors.As(err, &je) && je.Code == codeSessionNotFound {
				s.die(fmt.Errorf("%w: %v", ErrSessionGone, err))
				return
			}
			if failures++; failures >= 2 {
				s.die(fmt.Errorf("%w: %v", ErrSessionGone, err))
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(300 * time.Millisecond):
			}
			continue
		}
		failures = 0
		for _, m := range msgs {
			s.dispatch(m)
		}
	}
}

func (s *Session) pollOnce(ctx context.Context) ([]*Message, error) {
	// Janus answers a long poll within 30 s (with a keepalive when idle).
	ctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"?maxev=10&rid="+strconv.FormatInt(time.Now().UnixNano(), 10), nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.c.http.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("janus: polling session %d: %w", s.ID, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("janus: polling session %d: %w", s.ID, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("janus: polling session %d: HTTP %s", s.ID, resp.Status)
	}
	return parseEvents(data)
}

// parseEvents decodes a long-poll reply: one message or an array of them.
func parseEvents(data []byte) ([]*Message, error) {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '[' {
		var ms []*Message
		if err := json.Unmarshal(data, &ms); err != nil {
			return nil, fmt.Errorf("janus: bad events: %w", err)
		}
		return ms, nil
	}
	var m Message
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("janus: bad event: %w", err)
	}
	if m.Janus == "error" && m.Error != nil {
		return nil, m.Error
	}
	return []*Message{&m}, nil
}

func (s *Session) dispatch(m *Message) {
	switch m.Janus {
	case "keepalive", "ack":
		return
	case "timeout":
		s.die(fmt.Errorf("%w: session %d timed out", ErrSessionGone, s.ID))
		return
	}
	s.mu.Lock()
	if w, ok := s.waiters[m.Transaction]; ok && m.Transaction != "" {
		delete(s.waiters, m.Transaction)
		s.mu.Unlock()
		w <- m // buffered
		return
	}
	s.queue = append(s.queue, m)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *Session) keepalive(ctx context.Context, every time.Duration) {
	defer s.wg.Done()
	failures := 0
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// A dead server is noticed by the long poll at once; a frozen
			// one holds the poll up to its 40 s timeout, so two keepalives
			// in a row that fail (each bounded by the request timeout) end
			// the session too.
			_, err := s.c.post(ctx, s.url, map[string]any{"janus": "keepalive", "transaction": newTransaction()})
			if ctx.Err() != nil {
				return
			}
			var je *Error
			switch {
			case err == nil:
				failures = 0
			case errors.As(err, &je) && je.Code == codeSessionNotFound:
				s.die(fmt.Errorf("%w: %v", ErrSessionGone, err))
				return
			default:
				if failures++; failures >= 2 {
					s.die(fmt.Errorf("%w: keepalives unanswered: %v", ErrSessionGone, err))
					return
				}
			}
		}
	}
}

// Attach attaches a handle of plugin (e.g. "janus.plugin.videoroom").
func (s *Session) Attach(ctx context.Context, plugin string) (*Handle, error) {
	m, err := s.c.post(ctx, s.url, map[string]any{"janus": "attach", "plugin": plugin, "transaction": newTransaction()})
	if err != nil {
		return nil, s.wrap(err)
	}
	var d struct {
		ID uint64 `json:"id"`
	}
	if err := json.Unmarshal(m.Data, &d); err != nil || d.ID == 0 {
		return nil, fmt.Errorf("janus: attach %s: no handle id in %q", plugin, m.Data)
	}
	return &Handle{s: s, ID: d.ID, url: s.url + "/" + strconv.FormatUint(d.ID, 10)}, nil
}

// wrap marks errors of a dead session.
func (s *Session) wrap(err error) error {
	var je *Error
	if errors.As(err, &je) && je.Code == codeSessionNotFound {
		return fmt.Errorf("%w: %v", ErrSessionGone, err)
	}
	return err
}

// Destroy destroys the session on the server and stops its goroutines. It is
// idempotent; after it Err returns nil unless the session had died before.
func (s *Session) Destroy(ctx context.Context) error {
	var err error
	select {
	case <-s.done:
	default:
		_, err = s.c.post(ctx, s.url, map[string]any{"janus": "destroy", "transaction": newTransaction()})
		s.die(nil)
	}
	s.stop()
	s.wg.Wait()
	return err
}

// Handle is a handle attached to a plugin within a Session.
type Handle struct {
	s   *Session
	ID  uint64
	url string
}

// Request sends a synchronous plugin request (e.g. videoroom "create",
// "exists", "listparticipants") and returns the plugin's reply data.
func (h *Handle) Request(ctx context.Context, body any) (json.RawMessage, error) {
	m, err := h.s.c.post(ctx, h.url, map[string]any{"janus": "message", "body": body, "transaction": newTransaction()})
	if err != nil {
		return nil, h.s.wrap(err)
	}
	if err := m.pluginError(); err != nil {
		return nil, err
	}
	if m.PluginData == nil {
		return nil, fmt.Errorf("janus: reply %q without plugin data", m.Janus)
	}
	return m.PluginData.Data, nil
}

// Send sends an asynchronous plugin request, with an SDP when jsep is not nil,
// and waits for the plugin's event that answers it (which may carry a JSEP).
// A plugin error in that event is returned as *PluginError.
func (h *Handle) Send(ctx context.Context, body any, jsep *JSEP) (*Message, error) {
	tx := newTransaction()
	w := make(chan *Message, 1)
	h.s.mu.Lock()
	h.s.waiters[tx] = w
	h.s.mu.Unlock()
	defer func() {
		h.s.mu.Lock()
		delete(h.s.waiters, tx)
		h.s.mu.Unlock()
	}()
	req := map[string]any{"janus": "message", "body": body, "transaction": tx}
	if jsep != nil {
		req["jsep"] = jsep
	}
	m, err := h.s.c.post(ctx, h.url, req)
	if err != nil {
		return nil, h.s.wrap(err)
	}
	if m.Janus != "ack" { // answered at once
		if err := m.pluginError(); err != nil {
			return nil, err
		}
		return m, nil
	}
	ctx, cancel := context.WithTimeout(ctx, h.s.c.timeout)
	defer cancel()
	select {
	case m := <-w:
		if m.Janus == "error" && m.Error != nil {
			return nil, m.Error
		}
		if err := m.pluginError(); err != nil {
			return m, err
		}
		return m, nil
	case <-h.s.done:
		if err := h.s.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: destroyed", ErrSessionGone)
	case <-ctx.Done():
		return nil, fmt.Errorf("janus: waiting for the reply to %v: %w", body, ctx.Err())
	}
}

// Trickle sends the end of our ICE candidates; our SDPs carry all candidates.
func (h *Handle) Trickle(ctx context.Context) error {
	_, err := h.s.c.post(ctx, h.url, map[string]any{
		"janus": "trickle", "candidate": map[string]any{"completed": true}, "transaction": newTransaction(),
	})
	return h.s.wrap(err)
}

// Detach detaches the handle (which hangs up its PeerConnection).
func (h *Handle) Detach(ctx context.Context) error {
	_, err := h.s.c.post(ctx, h.url, map[string]any{"janus": "detach", "transaction": newTransaction()})
	return h.s.wrap(err)
}
