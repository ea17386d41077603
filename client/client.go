// Package client is a Go client of the recorder's HTTP API, written against
// its OpenAPI document (api/openapi.json, served at /openapi.json). The
// command line (recorder ls, get, download, tail, start, stop) and the API
// tests use it.
//
//	c := client.New("http://127.0.0.1:8080", os.Getenv("RECORDER_API_KEY"))
//	ev, err := c.Start(ctx, client.StartRequest{ApplicationID: "app1", ConferenceID: "conf1", ConversationID: "conv1"})
//
// Errors from the server are *Error values carrying the HTTP status and the
// API's {code, message, reason}.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Client calls one recorder. Its zero value is not usable: see New.
type Client struct {
	BaseURL string       // for example http://127.0.0.1:8080, without a trailing slash
	Key     string       // the API key, sent as "Authorization: Bearer <key>"
	HTTP    *http.Client // nil: http.DefaultClient
}

// New returns a client of the recorder at baseURL with an API key.
func New(baseURL, key string) *Client {
	return &Client{BaseURL: strings.TrimSuffix(baseURL, "/"), Key: key}
}

// Error is an error answer of the API.
type Error struct {
	Status  int    `json:"-"`    // HTTP status
	Code    int    `json:"code"` // the status again, or a seed's own code
	Message string `json:"message"`
	Reason  string `json:"reason"`
}

func (e *Error) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("%d %s: %s", e.Status, e.Reason, e.Message)
	}
	return fmt.Sprintf("%d: %s", e.Status, e.Message)
}

// StatusOf returns the HTTP status of an *Error in err's chain, else 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// Ref names one recording.
type Ref struct {
	ConversationID, RecorderID, InstanceID string
}

// ParseRef parses "conversationId/recorderId/instanceId", as the CLI prints it.
func ParseRef(s string) (Ref, error) {
	p := strings.Split(s, "/")
	if len(p) != 3 || p[0] == "" || p[1] == "" || p[2] == "" {
		return Ref{}, fmt.Errorf("%q is not conversationId/recorderId/instanceId", s)
	}
	return Ref{p[0], p[1], p[2]}, nil
}

func (r Ref) String() string { return r.ConversationID + "/" + r.RecorderID + "/" + r.InstanceID }

func (r Ref) path() string {
	return "/api/recordings/" + url.PathEscape(r.ConversationID) + "/" + url.PathEscape(r.RecorderID) + "/" + url.PathEscape(r.InstanceID)
}

// do sends a request with an optional JSON body and decodes a JSON answer
// into out (nil: discarded).
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return readError(resp)
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("client: %s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

func (c *Client) send(req *http.Request) (*http.Response, error) {
	if c.Key != "" {
		req.Header.Set("Authorization", "Bearer "+c.Key)
	}
	h := c.HTTP
	if h == nil {
		h = http.DefaultClient
	}
	return h.Do(req)
}

func readError(resp *http.Response) error {
	e := &Error{Status: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, e) != nil || e.Message == "" {
		e.Message = strings.TrimSpace(string(b))
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
	}
	return e
}

// Start starts a recording (POST /api/recordings/start).
func (c *Client) Start(ctx context.Context, req StartRequest) (*RecordingEvent, error) {
	var ev RecordingEvent
	return &ev, c.do(ctx, http.MethodPost, "/api/recordings/start", req, &ev)
}

// Stop stops a recording; it returns once its files are uploaded.
func (c *Client) Stop(ctx context.Context, r Ref) (*RecordingEvent, error) {
	var ev RecordingEvent
	return &ev, c.do(ctx, http.MethodPost, r.path()+"/stop", nil, &ev)
}

// Pause pauses a recording.
func (c *Client) Pause(ctx context.Context, r Ref) (*RecordingEvent, error) {
	var ev RecordingEvent
	return &ev, c.do(ctx, http.MethodPost, r.path()+"/pause", nil, &ev)
}

// Resume resumes a paused recording.
func (c *Client) Resume(ctx context.Context, r Ref) (*RecordingEvent, error) {
	var ev RecordingEvent
	return &ev, c.do(ctx, http.MethodPost, r.path()+"/resume", nil, &ev)
}

// State returns a recording's state.
func (c *Client) State(ctx context.Context, r Ref) (*RecordingEvent, error) {
	var ev RecordingEvent
	return &ev, c.do(ctx, http.MethodGet, r.path()+"/state", nil, &ev)
}

// Recording returns a recording with its streams, tracks and signed URLs.
func (c *Client) Recording(ctx context.Context, r Ref) (*Recording, error) {
	var rec Recording
	return &rec, c.do(ctx, http.MethodGet, r.path(), nil, &rec)
}

// Files returns every file of a recording with its size, SHA-256 and signed URL.
func (c *Client) Files(ctx context.Context, r Ref) (*Files, error) {
	var f Files
	return &f, c.do(ctx, http.MethodGet, r.path()+"/files", nil, &f)
}

// ListOptions filter GET /api/recordings; zero fields do not filter.
type ListOptions struct {
	States         []string
	ConversationID string
	ConferenceID   string
	Participant    string
	From, To       string // RFC 3339
	Limit          int    // 1..100; 0: the server's default (20)
	PageToken      string
}

// List returns one page of the organization's recordings, newest first.
func (c *Client) List(ctx context.Context, o ListOptions) (*List, error) {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("state", strings.Join(o.States, ","))
	set("conversationId", o.ConversationID)
	set("conferenceId", o.ConferenceID)
	set("participant", o.Participant)
	set("from", o.From)
	set("to", o.To)
	set("pageToken", o.PageToken)
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	path := "/api/recordings"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var l List
	return &l, c.do(ctx, http.MethodGet, path, nil, &l)
}

// Event is one event of GET /api/events.
type Event struct {
	ID             int64           `json:"id"`
	Type           string          `json:"type"`
	OrganizationID string          `json:"organizationId"`
	ApplicationID  string          `json:"applicationId"`
	Occurred       string          `json:"occurred"`
	Data           json.RawMessage `json:"data"`
}

// Events follows the event stream (Server-Sent Events) and calls fn for each
// event until ctx ends, fn returns an error, or the server closes the stream.
// lastEventID resumes after that event ("" : live events only).
func (c *Client) Events(ctx context.Context, lastEventID string, fn func(Event) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+"/api/events", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() == 0 {
				continue
			}
			var ev Event
			if err := json.Unmarshal([]byte(data.String()), &ev); err != nil {
				return fmt.Errorf("client: event: %w", err)
			}
			data.Reset()
			if err := fn(ev); err != nil {
				return err
			}
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return sc.Err()
}

// Download opens a file's signed URL (no API key is sent: the signature is
// the right to read) from byte offset on. The caller closes the body. A
// server that ignores the range answers 200 with the whole file; partial
// reports whether the body starts at offset.
func (c *Client) Download(ctx context.Context, signedURL string, offset int64) (body io.ReadCloser, partial bool, err error) {
	u, err := url.Parse(signedURL)
	if err != nil {
		return nil, false, err
	}
	if !u.IsAbs() {
		signedURL = c.BaseURL + signedURL
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, signedURL, nil)
	if err != nil {
		return nil, false, err
	}
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	h := c.HTTP
	if h == nil {
		h = http.DefaultClient
	}
	resp, err := h.Do(req)
	if err != nil {
		return nil, false, err
	}
	switch {
	case resp.StatusCode == http.StatusPartialContent && offset > 0:
		return resp.Body, true, nil
	case resp.StatusCode == http.StatusOK:
		return resp.Body, offset == 0, nil
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		resp.Body.Close()
		return io.NopCloser(strings.NewReader("")), true, nil // nothing after offset
	}
	defer resp.Body.Close()
	return nil, false, readError(resp)
}
