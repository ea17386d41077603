package events

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rtcrec/recorder/recorder/internal/retry"
	"github.com/rtcrec/recorder/recorder/store"
)

// The webhook request headers. The signature scheme:
//
//	X-Recorder-Event-Id:  <event id, decimal>
//	X-Recorder-Event:     <event type>
//	X-Recorder-Timestamp: <Unix seconds when this attempt was sent>
//	X-Recorder-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + id + "." + body)>
//
// The body is the event's JSON. A receiver recomputes the HMAC over the raw
// body with the shared secret (VerifySignature does), compares in constant
// time, rejects timestamps far from its clock (a captured request cannot be
// replayed later), and deduplicates on the event id (delivery is at least
// once: a retry carries the same id and body with a new timestamp).
const (
	HeaderEventID   = "X-Recorder-Event-Id"
	HeaderEventType = "X-Recorder-Event"
	HeaderTimestamp = "X-Recorder-Timestamp"
	HeaderSignature = "X-Recorder-Signature"
)

// Webhook is one endpoint configured for an application.
type Webhook struct {
	URL    string
	Secret string
	// Events filters by type: exact names ("state.updated"), a prefix with a
	// wildcard ("upload.*"), or "*". Empty receives every event.
	Events []string
}

// Matches reports whether the webhook wants events of type t.
func (w Webhook) Matches(t Type) bool {
	if len(w.Events) == 0 {
		return true
	}
	for _, f := range w.Events {
		switch {
		case f == "*", f == string(t):
			return true
		case strings.HasSuffix(f, ".*") && strings.HasPrefix(string(t), f[:len(f)-1]):
			return true
		}
	}
	return false
}

// Sign returns the X-Recorder-Signature value for a delivery of body as event
// id at Unix time ts: "sha256=" followed by the hex HMAC-SHA256 of
// "<ts>.<id>.<body>" under secret.
func Sign(secret string, id, ts int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	var pre []byte
	pre = strconv.AppendInt(pre, ts, 10)
	pre = append(pre, '.')
	pre = strconv.AppendInt(pre, id, 10)
	pre = append(pre, '.')
	m.Write(pre)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// ErrBadSignature is returned by VerifySignature for a request that was not
// signed with the secret, or whose timestamp is outside the tolerance.
var ErrBadSignature = errors.New("events: webhook signature does not verify")

// VerifySignature checks a webhook request as a receiver should: the headers
// must be well formed, the timestamp within tolerance of now, and the
// signature that of body under secret. It returns the event id.
func VerifySignature(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) (int64, error) {
	id, err := strconv.ParseInt(h.Get(HeaderEventID), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: bad %s %q", ErrBadSignature, HeaderEventID, h.Get(HeaderEventID))
	}
	ts, err := strconv.ParseInt(h.Get(HeaderTimestamp), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: bad %s %q", ErrBadSignature, HeaderTimestamp, h.Get(HeaderTimestamp))
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return 0, fmt.Errorf("%w: timestamp %d is %v from now", ErrBadSignature, ts, d.Round(time.Second))
	}
	want := Sign(secret, id, ts, body)
	if !hmac.Equal([]byte(h.Get(HeaderSignature)), []byte(want)) {
		return 0, ErrBadSignature
	}
	return id, nil
}

// DeliveryState is where one webhook delivery stands.
type DeliveryState string

// The delivery states stored in the outbox.
const (
	Pending   DeliveryState = "pending"   // not yet acknowledged; retried
	Delivered DeliveryState = "delivered" // acknowledged with a 2xx
	Expired   DeliveryState = "expired"   // given up: the event became older than MaxAge
	Dropped   DeliveryState = "dropped"   // the webhook was removed from the configuration, or its URL is unusable
)

// String returns the state's stored name.
func (s DeliveryState) String() string { return string(s) }

// Delivery is the persisted state of one event's delivery to one endpoint.
type Delivery struct {
	URL         string
	EventID     int64
	State       DeliveryState
	Attempts    int
	NextAttempt time.Time // when Pending
	LastStatus  int       // HTTP status of the last attempt; 0 when none came back
	LastError   string
	Done        time.Time // when Delivered, Expired or Dropped
}

// Deliveries returns the delivery state of event id of organization org for
// every endpoint it was due to, ordered by URL.
func (b *Bus) Deliveries(ctx context.Context, org string, id int64) ([]Delivery, error) {
	ds, err := b.st.EventDeliveries(ctx, org, id)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	out := make([]Delivery, 0, len(ds))
	for _, d := range ds {
		x := Delivery{URL: d.URL, EventID: d.Seq, State: DeliveryState(d.State), Attempts: d.Attempts,
			LastStatus: d.LastStatus, LastError: d.LastError}
		if x.State == Pending {
			x.NextAttempt = d.NextAttempt
		} else {
			x.Done = d.Done
		}
		out = append(out, x)
	}
	return out, nil
}

// head is the oldest pending delivery of one endpoint and organization, with
// its event: deliveries to an endpoint go strictly in event order, so a later
// one waits for the head.
type head struct {
	store.Delivery
	ev Event
}

// due splits the endpoint heads into those to send now (not busy here, not
// leased by another instance, due) and the time the next other one becomes
// due; it looks again within Options.Poll for deliveries other instances left.
func (b *Bus) due(ctx context.Context, busy map[string]bool) ([]head, time.Time, error) {
	hs, err := b.st.DeliveryHeads(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	now := time.Now()
	next := now.Add(b.opts.Poll)
	var ready []head
	for _, h := range hs {
		at := h.NextAttempt
		if h.LeaseUntil.After(at) {
			at = h.LeaseUntil
		}
		switch {
		case busy[h.OrganizationID+"\x00"+h.URL]:
		case at.After(now):
			if at.Before(next) {
				next = at
			}
		default:
			ev, err := fromStore(h.Event)
			if err != nil {
				return nil, time.Time{}, err
			}
			ready = append(ready, head{h.Delivery, ev})
		}
	}
	return ready, next, nil
}

// attempt leases one delivery, sends it and records the outcome under the
// lease. A delivery another instance leased first is left to it; one cut
// short by Close is released as it was.
func (b *Bus) attempt(ctx context.Context, h head) {
	now := time.Now()
	owner := b.opts.Owner + "/" + rand.Text()[:8]
	ok, err := b.st.LeaseDelivery(ctx, h.URL, h.OrganizationID, h.Seq, owner, now, now.Add(b.opts.Lease))
	if err != nil {
		if ctx.Err() == nil {
			b.opts.Logger.Warn("events: leasing a delivery failed", "url", h.URL, "event", h.Seq, "err", err)
		}
		return
	}
	if !ok {
		return // another instance sends it
	}
	if age := now.Sub(h.ev.Occurred); age > b.opts.MaxAge {
		b.finish(h, owner, Expired, fmt.Sprintf("gave up after %d attempts: event is %v old", h.Attempts, age.Round(time.Second)))
		b.opts.Logger.Warn("events: webhook delivery expired", "url", h.URL, "event", h.Seq, "attempts", h.Attempts)
		return
	}
	hook, found := b.webhook(h.ev, h.URL)
	if !found {
		b.finish(h, owner, Dropped, "webhook no longer configured for this application and event type")
		return
	}
	if u, err := url.Parse(hook.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		b.finish(h, owner, Dropped, fmt.Sprintf("webhook URL %q is not an absolute http(s) URL", hook.URL))
		return
	}
	status, err := b.send(ctx, hook, h.ev, now)
	if ctx.Err() != nil {
		if rerr := b.st.ReleaseDelivery(context.WithoutCancel(ctx), h.URL, h.OrganizationID, h.Seq, owner); rerr != nil {
			b.opts.Logger.Warn("events: releasing a delivery failed", "url", h.URL, "event", h.Seq, "err", rerr)
		}
		return
	}
	if err == nil {
		b.finish(h, owner, Delivered, "")
		return
	}
	h.Attempts++
	h.NextAttempt = now.Add(retry.Backoff(h.Attempts, b.opts.MinBackoff, b.opts.MaxBackoff))
	b.opts.Logger.Info("events: webhook delivery failed", "url", h.URL, "event", h.Seq,
		"attempt", h.Attempts, "status", status, "err", err, "retry", h.NextAttempt.Sub(now).Round(time.Millisecond))
	h.LastStatus, h.LastError = status, err.Error()
	if _, err := b.st.FinishDelivery(context.Background(), h.Delivery, owner); err != nil {
		b.opts.Logger.Warn("events: recording a failed delivery failed", "url", h.URL, "event", h.Seq, "err", err)
	}
}

// finish records a final outcome under owner's lease. When the lease lapsed
// meanwhile (this instance hung past it) nothing is written: the instance that
// took the delivery records it (at least once).
func (b *Bus) finish(h head, owner string, s DeliveryState, msg string) {
	d := h.Delivery
	if s == Delivered {
		d.Attempts++
	}
	d.State, d.Done = string(s), time.Now()
	if msg != "" {
		d.LastError = msg
	}
	ok, err := b.st.FinishDelivery(context.Background(), d, owner)
	switch {
	case err != nil:
		// Not recorded: the delivery stays pending and is sent again (at least once).
		b.opts.Logger.Warn("events: recording a delivery failed", "url", h.URL, "event", h.Seq, "state", s, "err", err)
	case !ok:
		b.opts.Logger.Warn("events: a delivery's lease lapsed before its outcome was recorded; another instance sends it again",
			"url", h.URL, "event", h.Seq, "state", s)
	}
}

// webhook finds the current configuration of the endpoint at url for ev.
func (b *Bus) webhook(ev Event, url string) (Webhook, bool) {
	if b.opts.WebhooksFor == nil {
		return Webhook{}, false
	}
	for _, h := range b.opts.WebhooksFor(ev.OrganizationID, ev.ApplicationID) {
		if h.URL == url && h.Matches(ev.Type) {
			return h, true
		}
	}
	return Webhook{}, false
}

// send POSTs the signed event; only a 2xx is success.
func (b *Bus) send(ctx context.Context, hook Webhook, ev Event, now time.Time) (int, error) {
	body := appendJSON(nil, ev)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	ts := now.Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "recorder-webhook/1")
	req.Header.Set(HeaderEventID, strconv.FormatInt(ev.ID, 10))
	req.Header.Set(HeaderEventType, string(ev.Type))
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(hook.Secret, ev.ID, ts, body))
	resp, err := b.opts.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("webhook answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}
