package events

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rtcrec/recorder/recorder/internal/retry"
)

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("events: bus is closed")

// schema creates the outbox and the webhook delivery state. Times are stored as
// fixed-width RFC 3339 UTC text (occurred, see occurredFormat) or Unix
// nanoseconds (scheduling).
const schema = `
CREATE TABLE IF NOT EXISTS events_outbox (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	type            TEXT NOT NULL,
	organization_id TEXT NOT NULL,
	application_id  TEXT NOT NULL,
	occurred        TEXT NOT NULL,
	data            TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_outbox_org ON events_outbox(organization_id, id);
CREATE TABLE IF NOT EXISTS events_deliveries (
	url          TEXT NOT NULL,
	event_id     INTEGER NOT NULL REFERENCES events_outbox(id),
	state        TEXT NOT NULL DEFAULT 'pending',
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_attempt INTEGER NOT NULL DEFAULT 0,
	last_status  INTEGER NOT NULL DEFAULT 0,
	last_error   TEXT NOT NULL DEFAULT '',
	done_at      INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (url, event_id)
);
CREATE INDEX IF NOT EXISTS events_deliveries_pending ON events_deliveries(state, url, event_id);
`

// occurredFormat is RFC 3339 with nanoseconds in a fixed width, so that the
// stored text sorts (and compares in SQL) in time order.
const occurredFormat = "2006-01-02T15:04:05.000000000Z07:00"

// Options configure a Bus. Zero fields take the defaults given per field.
type Options struct {
	// WebhooksFor returns the webhooks configured for an application of an
	// organization (none when the application is another organization's). It is
	// called by Publish (to persist which endpoints must get the event) and by
	// the delivery worker (to find the current secret), from any goroutine.
	// Secrets are never stored in the database. Nil: no webhooks.
	WebhooksFor func(organizationID, applicationID string) []Webhook
	// Client sends webhook requests. Default: a client with a 10 s timeout.
	// Redirects are never followed: only a 2xx acknowledges a delivery.
	Client *http.Client
	// MinBackoff is the delay after the first failed delivery (default 1 s);
	// each further failure doubles it up to MaxBackoff (default 5 min), and
	// the delay is jittered to between half and all of that.
	MinBackoff, MaxBackoff time.Duration
	// MaxAge gives up on a delivery whose event is older (default 72 h). A
	// given-up delivery stays in events_deliveries with state "expired".
	MaxAge time.Duration
	// Concurrency bounds how many endpoints are delivered to at once
	// (default 4). Deliveries to one endpoint URL are always sequential.
	Concurrency int
	// Heartbeat is the interval of SSE comment lines that keep idle
	// connections open through proxies (default 15 s).
	Heartbeat time.Duration
	// SubscriberBuffer is how many events an SSE subscriber may lag behind
	// before it is disconnected (default 256). It resumes with Last-Event-ID.
	SubscriberBuffer int
	// WriteTimeout bounds each write to an SSE client (default 30 s).
	WriteTimeout time.Duration
	// Logger receives one line per delivery failure or give-up. Default: slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	c := *o.Client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	o.Client = &c
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.MinBackoff, time.Second)
	def(&o.MaxBackoff, 5*time.Minute)
	def(&o.MaxAge, 72*time.Hour)
	def(&o.Heartbeat, 15*time.Second)
	def(&o.WriteTimeout, 30*time.Second)
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.SubscriberBuffer <= 0 {
		o.SubscriberBuffer = 256
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Bus persists events and publishes them. All methods are safe for concurrent
// use. It runs one delivery goroutine, which starts one goroutine per
// endpoint with a due delivery (at most Options.Concurrency, never two for
// one URL, so deliveries to an endpoint stay in event order), until Close.
type Bus struct {
	db   *sql.DB
	opts Options

	// mu serialises Publish (insert, then fan-out) so that live subscribers
	// receive events in ID order; it also guards subs and closed.
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool

	wake   chan struct{} // capacity 1: a nudge to the delivery worker
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// subscriber is one live SSE connection. ch and gone are written only by the
// Bus under mu; the handler goroutine reads them.
type subscriber struct {
	org  string
	ch   chan Event
	gone chan struct{} // closed when the Bus drops the subscriber
}

// New creates the events_ tables if needed and starts the webhook delivery
// worker, which resumes every delivery left pending by an earlier process.
// The Bus does not own db: Close leaves it open.
func New(ctx context.Context, db *sql.DB, opts Options) (*Bus, error) {
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return nil, fmt.Errorf("events: create tables: %w", err)
	}
	b := &Bus{
		db:   db,
		opts: opts.withDefaults(),
		subs: make(map[*subscriber]struct{}),
		wake: make(chan struct{}, 1),
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	d := &retry.Dispatcher[head]{
		Workers: b.opts.Concurrency,
		Due:     b.due,
		Key:     func(h head) string { return h.url },
		Run:     b.attempt,
		Wake:    b.wake,
		OnError: func(err error) {
			b.opts.Logger.Warn("events: reading pending deliveries failed", "err", err)
		},
		ErrorDelay: b.opts.MinBackoff,
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		d.Loop(b.ctx)
	}()
	return b, nil
}

// Publish persists ev, assigns its ID, and then hands it to live SSE
// subscribers of its organization and to the webhook worker. It returns the
// stored event. When Publish returns an error nothing was stored or sent.
// Type and OrganizationID are required; Data must be valid JSON or empty
// (stored as {}); a zero Occurred becomes now.
func (b *Bus) Publish(ctx context.Context, ev Event) (Event, error) {
	if ev.Type == "" || ev.OrganizationID == "" {
		return Event{}, errors.New("events: publish: type and organizationId are required")
	}
	if strings.ContainsAny(string(ev.Type), "\r\n") {
		return Event{}, fmt.Errorf("events: publish: type %q contains a line break", ev.Type)
	}
	if ev.Occurred.IsZero() {
		ev.Occurred = time.Now()
	}
	ev.Occurred = ev.Occurred.UTC()
	data, err := compactData(ev.Data)
	if err != nil {
		return Event{}, err
	}
	ev.Data = data
	urls := b.webhookURLs(ev)

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return Event{}, ErrClosed
	}
	if ev.ID, err = b.insert(ctx, ev, urls); err != nil {
		return Event{}, err
	}
	for s := range b.subs {
		if s.org != ev.OrganizationID {
			continue
		}
		select {
		case s.ch <- ev:
		default: // too slow: disconnect rather than wait
			b.dropLocked(s)
		}
	}
	if len(urls) > 0 {
		b.nudge()
	}
	return ev, nil
}

func compactData(d json.RawMessage) (json.RawMessage, error) {
	if len(d) == 0 {
		return json.RawMessage("{}"), nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, d); err != nil {
		return nil, fmt.Errorf("events: publish: data is not valid JSON: %w", err)
	}
	return json.RawMessage(buf.Bytes()), nil
}

// webhookURLs lists the distinct endpoint URLs that must receive ev.
func (b *Bus) webhookURLs(ev Event) []string {
	if b.opts.WebhooksFor == nil {
		return nil
	}
	var urls []string
	seen := map[string]bool{}
	for _, h := range b.opts.WebhooksFor(ev.OrganizationID, ev.ApplicationID) {
		if h.URL != "" && !seen[h.URL] && h.Matches(ev.Type) {
			seen[h.URL] = true
			urls = append(urls, h.URL)
		}
	}
	return urls
}

// insert stores the event and its pending deliveries in one transaction.
func (b *Bus) insert(ctx context.Context, ev Event, urls []string) (int64, error) {
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("events: publish: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx,
		`INSERT INTO events_outbox (type, organization_id, application_id, occurred, data) VALUES (?, ?, ?, ?, ?)`,
		string(ev.Type), ev.OrganizationID, ev.ApplicationID, ev.Occurred.Format(occurredFormat), string(ev.Data))
	if err != nil {
		return 0, fmt.Errorf("events: publish %s: %w", ev.Type, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("events: publish %s: %w", ev.Type, err)
	}
	for _, u := range urls {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO events_deliveries (url, event_id) VALUES (?, ?)`, u, id); err != nil {
			return 0, fmt.Errorf("events: publish %s: delivery to %s: %w", ev.Type, u, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("events: publish %s: %w", ev.Type, err)
	}
	return id, nil
}

// Since returns up to limit events of organization org with IDs greater than
// after, in ID order. It reads only committed events.
func (b *Bus) Since(ctx context.Context, org string, after int64, limit int) ([]Event, error) {
	rows, err := b.db.QueryContext(ctx,
		`SELECT id, type, organization_id, application_id, occurred, data FROM events_outbox
		 WHERE organization_id = ? AND id > ? ORDER BY id LIMIT ?`, org, after, limit)
	if err != nil {
		return nil, fmt.Errorf("events: since %d: %w", after, err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		ev, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("events: since %d: %w", after, err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("events: since %d: %w", after, err)
	}
	return out, nil
}

type scanner interface{ Scan(dest ...any) error }

// scanEvent reads the six event columns in the order of events_outbox,
// followed by any extra destinations.
func scanEvent(s scanner, extra ...any) (Event, error) {
	var ev Event
	var typ, occurred, data string
	dest := append([]any{&ev.ID, &typ, &ev.OrganizationID, &ev.ApplicationID, &occurred, &data}, extra...)
	if err := s.Scan(dest...); err != nil {
		return Event{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, occurred)
	if err != nil {
		return Event{}, fmt.Errorf("event %d: occurred %q: %w", ev.ID, occurred, err)
	}
	ev.Type, ev.Occurred, ev.Data = Type(typ), t, json.RawMessage(data)
	return ev, nil
}

// Backlog returns the number of webhook deliveries not yet made (pending:
// waiting for their turn or for a retry).
func (b *Bus) Backlog(ctx context.Context) (int, error) {
	var n int
	if err := b.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM events_deliveries WHERE state = 'pending'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("events: backlog: %w", err)
	}
	return n, nil
}

// lastID returns the highest event ID ever assigned (0 for none); IDs of
// pruned events count, since AUTOINCREMENT never reuses them.
func (b *Bus) lastID(ctx context.Context) (int64, error) {
	var id int64
	err := b.db.QueryRowContext(ctx, `SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events_outbox'), 0)`).Scan(&id)
	return id, err
}

// Prune deletes the events that occurred before the given time and have no
// pending webhook delivery, with their delivery records, and returns how many
// events it deleted. Clients resuming from a pruned ID get only what is left.
// The service calls it periodically (for example daily, keeping a week).
func (b *Bus) Prune(ctx context.Context, before time.Time) (int64, error) {
	const old = `SELECT id FROM events_outbox WHERE occurred < ?1 AND NOT EXISTS
		(SELECT 1 FROM events_deliveries d WHERE d.event_id = events_outbox.id AND d.state = 'pending')`
	cut := before.UTC().Format(occurredFormat)
	if _, err := b.db.ExecContext(ctx, `DELETE FROM events_deliveries WHERE event_id IN (`+old+`)`, cut); err != nil {
		return 0, fmt.Errorf("events: prune: %w", err)
	}
	res, err := b.db.ExecContext(ctx, `DELETE FROM events_outbox WHERE id IN (`+old+`)`, cut)
	if err != nil {
		return 0, fmt.Errorf("events: prune: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("events: prune: %w", err)
	}
	return n, nil
}

// subscribe registers a live subscriber for org; nil after Close.
func (b *Bus) subscribe(org string) *subscriber {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	s := &subscriber{org: org, ch: make(chan Event, b.opts.SubscriberBuffer), gone: make(chan struct{})}
	b.subs[s] = struct{}{}
	return s
}

// unsubscribe removes s; it is safe after the Bus dropped it.
func (b *Bus) unsubscribe(s *subscriber) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dropLocked(s)
}

func (b *Bus) dropLocked(s *subscriber) {
	if _, ok := b.subs[s]; ok {
		delete(b.subs, s)
		close(s.gone)
	}
}

func (b *Bus) nudge() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Close disconnects every SSE subscriber, stops the delivery worker (a
// delivery in flight is cancelled and stays pending, to be retried by the next
// Bus on this database) and waits for its goroutines. It is idempotent and
// does not close the database.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	for s := range b.subs {
		b.dropLocked(s)
	}
	b.mu.Unlock()
	b.cancel()
	b.wg.Wait()
	return nil
}
