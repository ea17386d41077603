package events

import (
	"bytes"
	"context"
	"crypto/hmac"
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

// The delivery states stored in events_deliveries.state.
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

// Deliveries returns the delivery state of event id for every endpoint it was
// due to, ordered by URL.
func (b *Bus) Deliveries(ctx context.Context, id int64) ([]Delivery, error) {
	rows, err := b.db.QueryContext(ctx,
		`SELECT url, event_id, state, attempts, next_attempt, last_status, last_error, done_at
		 FROM events_deliveries WHERE event_id = ? ORDER BY url`, id)
	if err != nil {
		return nil, fmt.Errorf("events: deliveries of %d: %w", id, err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		var next, done int64
		if err := rows.Scan(&d.URL, &d.EventID, &d.State, &d.Attempts, &next, &d.LastStatus, &d.LastError, &done); err != nil {
			return nil, fmt.Errorf("events: deliveries of %d: %w", id, err)
		}
		if d.State == Pending {
			d.NextAttempt = time.Unix(0, next)
		} else {
			d.Done = time.Unix(0, done)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// head is the oldest pending delivery of one endpoint, with its event.
type head struct {
	url      string
	attempts int
	next     time.Time
	ev       Event
}

// heads returns, per endpoint URL, its oldest pending delivery. Deliveries to
// one URL go strictly in event order: a later one waits for the head.
func (b *Bus) heads(ctx context.Context) ([]head, error) {
	rows, err := b.db.QueryContext(ctx,
		`SELECT e.id, e.type, e.organization_id, e.application_id, e.occurred, e.data,
		        d.url, d.attempts, d.next_attempt
		 FROM events_deliveries d JOIN events_outbox e ON e.id = d.event_id
		 WHERE d.state = 'pending' AND d.event_id =
		       (SELECT MIN(x.event_id) FROM events_deliveries x WHERE x.url = d.url AND x.state = 'pending')`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []head
	for rows.Next() {
		var h head
		var next int64
		if h.ev, err = scanEvent(rows, &h.url, &h.attempts, &next); err != nil {
			return nil, err
		}
		h.next = time.Unix(0, next)
		out = append(out, h)
	}
	return out, rows.Err()
}

// due splits the endpoint heads into those to send now (not busy, due) and
// the time the next other one becomes due.
func (b *Bus) due(ctx context.Context, busy map[string]bool) ([]head, time.Time, error) {
	hs, err := b.heads(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	now := time.Now()
	var ready []head
	var next time.Time
	for _, h := range hs {
		switch {
		case busy[h.url]:
		case h.next.After(now):
			if next.IsZero() || h.next.Before(next) {
				next = h.next
			}
		default:
			ready = append(ready, h)
		}
	}
	return ready, next, nil
}

// attempt sends one delivery and records the outcome. A delivery cut short by
// Close is left as it was.
func (b *Bus) attempt(ctx context.Context, h head) {
	now := time.Now()
	if age := now.Sub(h.ev.Occurred); age > b.opts.MaxAge {
		b.finish(h, Expired, fmt.Sprintf("gave up after %d attempts: event is %v old", h.attempts, age.Round(time.Second)))
		b.opts.Logger.Warn("events: webhook delivery expired", "url", h.url, "event", h.ev.ID, "attempts", h.attempts)
		return
	}
	hook, ok := b.webhook(h.ev, h.url)
	if !ok {
		b.finish(h, Dropped, "webhook no longer configured for this application and event type")
		return
	}
	if u, err := url.Parse(hook.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		b.finish(h, Dropped, fmt.Sprintf("webhook URL %q is not an absolute http(s) URL", hook.URL))
		return
	}
	status, err := b.send(ctx, hook, h.ev, now)
	if ctx.Err() != nil {
		return
	}
	if err == nil {
		b.finish(h, Delivered, "")
		return
	}
	attempts := h.attempts + 1
	next := now.Add(retry.Backoff(attempts, b.opts.MinBackoff, b.opts.MaxBackoff))
	b.opts.Logger.Info("events: webhook delivery failed", "url", h.url, "event", h.ev.ID,
		"attempt", attempts, "status", status, "err", err, "retry", next.Sub(now).Round(time.Millisecond))
	if _, err := b.db.ExecContext(context.Background(),
		`UPDATE events_deliveries SET attempts = ?, next_attempt = ?, last_status = ?, last_error = ?
		 WHERE url = ? AND event_id = ?`, attempts, next.UnixNano(), status, err.Error(), h.url, h.ev.ID); err != nil {
		b.opts.Logger.Warn("events: recording a failed delivery failed", "url", h.url, "event", h.ev.ID, "err", err)
	}
}

func (b *Bus) finish(h head, s DeliveryState, msg string) {
	attempts := h.attempts
	if s == Delivered {
		attempts++
	}
	q := `UPDATE events_deliveries SET state = ?, attempts = ?, done_at = ?, last_error = CASE WHEN ? = '' THEN last_error ELSE ? END
	      WHERE url = ? AND event_id = ?`
	if _, err := b.db.ExecContext(context.Background(), q, string(s), attempts, time.Now().UnixNano(), msg, msg, h.url, h.ev.ID); err != nil {
		// Not recorded: the delivery stays pending and is sent again (at least once).
		b.opts.Logger.Warn("events: recording a delivery failed", "url", h.url, "event", h.ev.ID, "state", s, "err", err)
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
