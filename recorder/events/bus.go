package events

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rtcrec/recorder/recorder/internal/retry"
	"github.com/rtcrec/recorder/recorder/store"
)

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("events: bus is closed")

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
	// given-up delivery stays in the outbox with state "expired".
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
	// Owner names this instance in delivery leases (the recorderId, for
	// logs and the delivery table). Default: a random name.
	Owner string
	// Lease is how long a delivery attempt holds its lease: no other
	// instance sends the delivery meanwhile; once it lapses (the instance
	// died or hangs) another one does. Default: the client's timeout + 5 s
	// (15 s with the default client).
	Lease time.Duration
	// Poll is how often the delivery worker looks for deliveries that
	// another instance stored and did not send (it died). Default 2 s.
	Poll time.Duration
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
	def(&o.Lease, o.Client.Timeout+5*time.Second)
	def(&o.Poll, 2*time.Second)
	if o.Owner == "" {
		o.Owner = "bus-" + rand.Text()[:10]
	}
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

// Bus persists events in the store's outbox and publishes them. All methods
// are safe for concurrent use.
//
// Live SSE subscribers are fed by one fan-out goroutine, which reads each
// organization's new events from the store in sequence order: after a local
// Publish, and on PostgreSQL after every notification of an event published by
// any instance (store.OutboxChannel). Webhooks are sent by one delivery
// goroutine, which starts one goroutine per endpoint with a due delivery (at
// most Options.Concurrency, never two for one endpoint, so deliveries to an
// endpoint stay in event order) and leases each delivery in the store first,
// so that a fleet sends it once.
type Bus struct {
	st   *store.Store
	opts Options

	// mu guards subs, cursor, dirty and closed.
	mu     sync.Mutex
	subs   map[string]map[*subscriber]struct{} // by organization
	cursor map[string]int64                    // per organization with subscribers: the last seq handed out
	dirty  map[string]bool                     // organizations with new events to hand out
	closed bool

	fan    chan struct{} // capacity 1: a nudge to the fan-out goroutine
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

// New starts the fan-out and the webhook delivery worker on the store's
// outbox; the worker resumes every delivery left pending by any instance. The
// Bus does not own st: Close leaves it open.
func New(ctx context.Context, st *store.Store, opts Options) (*Bus, error) {
	if st == nil {
		return nil, errors.New("events: no store")
	}
	b := &Bus{
		st:     st,
		opts:   opts.withDefaults(),
		subs:   make(map[string]map[*subscriber]struct{}),
		cursor: make(map[string]int64),
		dirty:  make(map[string]bool),
		fan:    make(chan struct{}, 1),
		wake:   make(chan struct{}, 1),
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	d := &retry.Dispatcher[head]{
		Workers: b.opts.Concurrency,
		Due:     b.due,
		Key:     func(h head) string { return h.OrganizationID + "\x00" + h.URL },
		Run:     b.attempt,
		Wake:    b.wake,
		OnError: func(err error) {
			b.opts.Logger.Warn("events: reading pending deliveries failed", "err", err)
		},
		ErrorDelay: b.opts.MinBackoff,
	}
	b.wg.Add(3)
	go func() {
		defer b.wg.Done()
		d.Loop(b.ctx)
	}()
	go func() {
		defer b.wg.Done()
		b.fanOut()
	}()
	go func() {
		defer b.wg.Done()
		b.listen()
	}()
	return b, nil
}

// Publish persists ev, assigns its ID (the next of its organization), and
// then hands it to live SSE subscribers of its organization, on every
// instance, and to the webhook worker. It returns the stored event. When
// Publish returns an error nothing was stored or sent. Type and
// OrganizationID are required; Data must be valid JSON or empty (stored as
// {}); a zero Occurred becomes now.
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
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return Event{}, ErrClosed
	}
	ev.ID, err = b.st.AppendEvent(ctx, &store.OutboxEvent{
		OrganizationID: ev.OrganizationID, Type: string(ev.Type), ApplicationID: ev.ApplicationID,
		Occurred: ev.Occurred.Format(occurredFormat), Data: string(ev.Data),
	}, urls)
	if err != nil {
		return Event{}, fmt.Errorf("events: publish %s: %w", ev.Type, err)
	}
	b.poke(ev.OrganizationID)
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

// Since returns up to limit events of organization org with IDs greater than
// after, in ID order. It reads only committed events.
func (b *Bus) Since(ctx context.Context, org string, after int64, limit int) ([]Event, error) {
	rows, err := b.st.EventsSince(ctx, org, after, limit)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	out := make([]Event, 0, len(rows))
	for _, r := range rows {
		ev, err := fromStore(r)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

func fromStore(r store.OutboxEvent) (Event, error) {
	t, err := time.Parse(time.RFC3339Nano, r.Occurred)
	if err != nil {
		return Event{}, fmt.Errorf("events: event %d: occurred %q: %w", r.Seq, r.Occurred, err)
	}
	return Event{ID: r.Seq, Type: Type(r.Type), OrganizationID: r.OrganizationID, ApplicationID: r.ApplicationID,
		Occurred: t, Data: json.RawMessage(r.Data)}, nil
}

// Backlog returns the number of webhook deliveries not yet made (pending:
// waiting for their turn or for a retry), fleet-wide.
func (b *Bus) Backlog(ctx context.Context) (int, error) {
	n, err := b.st.PendingDeliveries(ctx)
	if err != nil {
		return 0, fmt.Errorf("events: backlog: %w", err)
	}
	return n, nil
}

// Prune deletes the events that occurred before the given time and have no
// pending webhook delivery, with their delivery records, and returns how many
// events it deleted. Clients resuming from a pruned ID get only what is left.
// The service calls it periodically (for example daily, keeping a week).
func (b *Bus) Prune(ctx context.Context, before time.Time) (int64, error) {
	n, err := b.st.PruneEvents(ctx, before.UTC().Format(occurredFormat))
	if err != nil {
		return 0, fmt.Errorf("events: prune: %w", err)
	}
	return n, nil
}

// poke tells the fan-out goroutine that org has new events.
func (b *Bus) poke(org string) {
	b.mu.Lock()
	if _, ok := b.subs[org]; ok {
		b.dirty[org] = true
	}
	b.mu.Unlock()
	select {
	case b.fan <- struct{}{}:
	default:
	}
}

// fanOut hands each organization's new events, read from the store in
// sequence order, to its live subscribers, until Close.
func (b *Bus) fanOut() {
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-b.fan:
		}
		b.mu.Lock()
		work := make(map[string]int64, len(b.dirty))
		for org := range b.dirty {
			work[org] = b.cursor[org]
		}
		clear(b.dirty)
		b.mu.Unlock()
		for org, after := range work {
			for {
				evs, err := b.Since(b.ctx, org, after, replayPage)
				if err != nil {
					if b.ctx.Err() == nil {
						b.opts.Logger.Warn("events: reading new events failed", "org", org, "err", err)
						b.poke(org) // try again on the next nudge
					}
					break
				}
				if len(evs) > 0 {
					after = evs[len(evs)-1].ID
					b.hand(org, evs)
				}
				if len(evs) < replayPage {
					break
				}
			}
		}
	}
}

// hand gives evs (in order) to the subscribers of org past its cursor.
func (b *Bus) hand(org string, evs []Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ev := range evs {
		subs, ok := b.subs[org]
		if !ok { // the last subscriber left
			return
		}
		if ev.ID <= b.cursor[org] {
			continue
		}
		b.cursor[org] = ev.ID
		for s := range subs {
			select {
			case s.ch <- ev:
			default: // too slow: disconnect rather than wait
				b.dropLocked(s)
			}
		}
	}
}

// listen pokes the fan-out for every event another instance publishes
// (PostgreSQL notifications), until Close. On SQLite it returns at once.
func (b *Bus) listen() {
	for b.ctx.Err() == nil {
		err := b.st.Listen(b.ctx, store.OutboxChannel, func() {
			// Listening (again): what was published while we were not is
			// read now.
			b.mu.Lock()
			for org := range b.subs {
				b.dirty[org] = true
			}
			b.mu.Unlock()
			select {
			case b.fan <- struct{}{}:
			default:
			}
			b.nudge()
		}, func(payload string) {
			var n store.OutboxNotice
			if json.Unmarshal([]byte(payload), &n) == nil && n.OrganizationID != "" {
				b.poke(n.OrganizationID)
			}
		})
		if errors.Is(err, store.ErrNoNotify) || b.ctx.Err() != nil {
			return
		}
		b.opts.Logger.Warn("events: listening for other instances' events failed; listening again", "err", err)
		select {
		case <-b.ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// subscribe registers a live subscriber for org; nil after Close. It gets
// every event of org committed after subscribe began.
func (b *Bus) subscribe(ctx context.Context, org string) (*subscriber, error) {
	top, err := b.st.LastEventSeq(ctx, org)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	s := &subscriber{org: org, ch: make(chan Event, b.opts.SubscriberBuffer), gone: make(chan struct{})}
	subs, ok := b.subs[org]
	if !ok {
		subs = make(map[*subscriber]struct{})
		b.subs[org] = subs
		b.cursor[org] = top
	}
	subs[s] = struct{}{}
	// What was committed between reading top and now is handed out at once.
	b.dirty[org] = true
	select {
	case b.fan <- struct{}{}:
	default:
	}
	return s, nil
}

// unsubscribe removes s; it is safe after the Bus dropped it.
func (b *Bus) unsubscribe(s *subscriber) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dropLocked(s)
}

func (b *Bus) dropLocked(s *subscriber) {
	subs := b.subs[s.org]
	if _, ok := subs[s]; !ok {
		return
	}
	delete(subs, s)
	close(s.gone)
	if len(subs) == 0 {
		delete(b.subs, s.org)
		delete(b.cursor, s.org)
		delete(b.dirty, s.org)
	}
}

func (b *Bus) nudge() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Close disconnects every SSE subscriber, stops the delivery worker (a
// delivery in flight is cancelled, stays pending and its lease is released,
// so the next Bus on this store, here or on another instance, sends it) and waits for its goroutines. It is idempotent and
// does not close the database.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	for _, subs := range b.subs {
		for s := range subs {
			b.dropLocked(s)
		}
	}
	b.mu.Unlock()
	b.cancel()
	b.wg.Wait()
	return nil
}
