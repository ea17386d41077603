package whip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/pion/webrtc/v4"
)

// Client publishes media to a WHIP endpoint (RFC 9725): the demo's synthetic
// participants and the tests' publishers use it.
type Client struct {
	API        *webrtc.API  // see NewAPI
	HTTPClient *http.Client // nil: http.DefaultClient
	Token      string       // sent as "Authorization: Bearer <Token>"
}

// Publication is one published WHIP session.
type Publication struct {
	PC        *webrtc.PeerConnection
	Location  string // absolute URL of the WHIP session
	c         *Client
	connected chan struct{}
}

// HTTPError is a WHIP endpoint's refusal.
type HTTPError struct {
	Status     int
	Body       string
	RetryAfter string // the Retry-After header, if any (503 no_capacity)
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("whip: endpoint answered %d: %s", e.Status, e.Body)
}

// Publish sends tracks to endpoint (the full URL with userId and type) and
// returns once the endpoint answered; Connected tells when media flows.
func (c *Client) Publish(ctx context.Context, endpoint string, tracks ...webrtc.TrackLocal) (*Publication, error) {
	pc, err := c.API.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	p := &Publication{PC: pc, c: c, connected: make(chan struct{})}
	fail := func(err error) (*Publication, error) {
		pc.Close()
		return nil, err
	}
	for _, t := range tracks {
		if _, err := pc.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			return fail(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fail(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return fail(err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewBufferString(pc.LocalDescription().SDP))
	if err != nil {
		return fail(err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fail(err)
	}
	if resp.StatusCode != http.StatusCreated {
		return fail(&HTTPError{Status: resp.StatusCode, Body: string(bytes.TrimSpace(body)), RetryAfter: resp.Header.Get("Retry-After")})
	}
	loc, err := resp.Location()
	if err != nil {
		return fail(fmt.Errorf("whip: answer without a Location: %w", err))
	}
	p.Location = loc.String()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		return fail(err)
	}
	// Media flows once DTLS-SRTP is up, not when ICE connected: Pion
	// drops, without an error, what a track writes before (its SRTP
	// writer returns nothing written), and the DTLS handshake after ICE
	// connected took ~100 ms with the recorder on a busy core (session 21:
	// a test publisher's first 5 packets, written and never sent; 25 of
	// another's). A sender's SetReadDeadline waits for DTLS-SRTP (or the
	// sender's stop): its RTCP stream opens then. SetRemoteDescription
	// started the senders (we offer), those the answer accepted; one it
	// did not start has no media to wait for.
	go func() {
		for _, s := range pc.GetSenders() {
			if err := s.SetReadDeadline(time.Time{}); errors.Is(err, io.ErrClosedPipe) {
				return // closed first
			}
		}
		close(p.connected)
	}()
	return p, nil
}

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}

// Connected is closed when media flows: ICE connected and DTLS-SRTP is up,
// so that what the tracks write from then on is sent (before, Pion drops
// it without an error).
func (p *Publication) Connected() <-chan struct{} { return p.connected }

// WaitConnected waits until media flows (Connected) or ctx ends.
func (p *Publication) WaitConnected(ctx context.Context) error {
	select {
	case <-p.connected:
		return nil
	case <-ctx.Done():
		return errors.New("whip: ICE and DTLS did not connect: " + ctx.Err().Error())
	}
}

// Close ends the session: DELETE on its Location, then the PeerConnection closes.
func (p *Publication) Close(ctx context.Context) error {
	var err error
	if p.Location != "" {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		req, rerr := http.NewRequestWithContext(ctx, http.MethodDelete, p.Location, nil)
		if rerr == nil {
			req.Header.Set("Authorization", "Bearer "+p.c.Token)
			resp, derr := p.c.httpClient().Do(req)
			if derr == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					derr = &HTTPError{Status: resp.StatusCode}
				}
			}
			err = derr
		}
	}
	return errors.Join(err, p.PC.Close())
}

// Endpoint builds a WHIP URL: base + /whip/{conferenceId}?userId=…&type=….
func Endpoint(base, conferenceID, userID, streamType string) string {
	q := url.Values{"userId": {userID}}
	if streamType != "" {
		q.Set("type", streamType)
	}
	return base + "/whip/" + url.PathEscape(conferenceID) + "?" + q.Encode()
}
