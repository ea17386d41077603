package events

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/rtcrec/recorder/internal/pgtest"
	"github.com/rtcrec/recorder/recorder/internal/dbtest"
	"github.com/rtcrec/recorder/recorder/store"
)

// fleetBuses opens n Buses, each on its own store of one PostgreSQL
// database: n instances of a fleet, in-process.
func fleetBuses(t *testing.T, n int, opts func(i int) Options) []*Bus {
	t.Helper()
	dsn := pgtest.Start(t).NewDatabase(t)
	var out []*Bus
	for i := range n {
		out = append(out, fleetBus(t, dsn, i, opts(i)))
	}
	return out
}

// fleetBus starts instance i of a fleet on the PostgreSQL database dsn.
func fleetBus(t *testing.T, dsn string, i int, o Options) *Bus {
	t.Helper()
	st, err := store.OpenConfig(context.Background(), store.Config{Driver: store.DriverPostgres, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	o.Logger = slog.New(slog.NewTextHandler(t.Output(), nil)).With("instance", i)
	b, err := New(context.Background(), st, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestFleet_SSEOnAnyInstanceStreamsEveryEvent: three instances share one
// PostgreSQL outbox. A client of instance C, live and resuming, sees every
// event of its organization published on A and B (concurrently), in order,
// without gap or duplicate, and none of the other organization's.
func TestFleet_SSEOnAnyInstanceStreamsEveryEvent(t *testing.T) {
	dbtest.NoLeaks(t)
	buses := fleetBuses(t, 3, func(int) Options { return Options{SubscriberBuffer: 1024} })
	a, bb, c := buses[0], buses[1], buses[2]
	srv := httptest.NewServer(c.Handler(orgHeader))
	t.Cleanup(srv.Close)

	publishN(t, a, "org1", 10)
	live, _ := sseClient(t, srv.URL, "org1", "")
	resumed, _ := sseClient(t, srv.URL, "org1", "5")
	other, _ := sseClient(t, srv.URL, "org2", "")
	var wg sync.WaitGroup
	for _, pub := range []*Bus{a, bb, a, bb} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			publishN(t, pub, "org1", 25)
		}()
	}
	publishN(t, bb, "org2", 3)
	wg.Wait()
	if ids := readIDs(t, live, 110); !equalIDs(ids, seq(11, 110)) {
		t.Errorf("live on C: %d ids %v…, want 11..110 in order", len(ids), ids[:min(len(ids), 10)])
	}
	if ids := readIDs(t, resumed, 110); !equalIDs(ids, seq(6, 110)) {
		t.Errorf("resumed on C from 5: %d ids, want 6..110 in order", len(ids))
	}
	if ids := readIDs(t, other, 3); !equalIDs(ids, seq(1, 3)) {
		t.Errorf("org2 on C: %v, want [1 2 3]", ids)
	}
}

// TestFleet_WebhookOncePerEvent: events published on three instances with
// the same webhook configuration reach the endpoint once each, in order.
func TestFleet_WebhookOncePerEvent(t *testing.T) {
	dbtest.NoLeaks(t)
	rc, srv := newReceiver(t, "k", 0)
	hooks := map[string][]Webhook{"app1": {{URL: srv.URL, Secret: "k"}}}
	buses := fleetBuses(t, 3, func(int) Options {
		o := fastRetry(hooks)
		o.Poll = 50 * time.Millisecond // every instance looks often: a duplicate would show
		return o
	})
	ctx := context.Background()
	var wg sync.WaitGroup
	for _, b := range buses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			publishN(t, b, "org1", 20)
		}()
	}
	wg.Wait()
	rc.waitAcked(t, 60)
	// Give a duplicate, if any, the time to arrive: every instance's worker
	// polls at least once more.
	for _, b := range buses {
		b.nudge()
	}
	time.Sleep(500 * time.Millisecond)
	if got := rc.ackedIDs(); !equalIDs(got, seq(1, 60)) {
		t.Fatalf("acknowledged %v, want 1..60 each once, in order", got)
	}
	if n, err := buses[2].Backlog(ctx); err != nil || n != 0 {
		t.Fatalf("backlog %d, %v; want 0", n, err)
	}
}

// TestFleet_DeadInstanceDeliveryTakenOver: instance A leases a delivery and
// hangs (its requests never reach the endpoint: dead or partitioned). Once
// A's lease lapses, instance B sends it; A, when it gets going again, cannot
// record over B's outcome.
func TestFleet_DeadInstanceDeliveryTakenOver(t *testing.T) {
	dbtest.NoLeaks(t)
	rc, srv := newReceiver(t, "k", 0)
	hooks := map[string][]Webhook{"app1": {{URL: srv.URL, Secret: "k"}}}
	hung := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	dsn := pgtest.Start(t).NewDatabase(t)
	oa := fastRetry(hooks)
	oa.Owner, oa.Lease = "A", time.Second
	oa.Client = &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		once.Do(func() { close(hung) })
		<-release // A hangs until the test lets it go
		return &http.Response{StatusCode: http.StatusNoContent, Body: io.NopCloser(http.NoBody), Request: r}, nil
	})}
	a := fleetBus(t, dsn, 0, oa)
	if _, err := a.Publish(context.Background(), ev(StateUpdated, "org1", "app1", "")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-hung:
	case <-time.After(10 * time.Second):
		t.Fatal("A never sent the delivery")
	}
	// B starts once A holds the lease and hangs, so B cannot pick the
	// delivery first (CI s14-2, load 20: B, started beside A, polled it
	// before A's worker leased it).
	ob := fastRetry(hooks)
	ob.Owner = "B"
	b := fleetBus(t, dsn, 1, ob)
	start := time.Now()
	rc.waitAcked(t, 1)
	t.Logf("B delivered %v after A hung (A's lease: 1 s, poll 2 s)", time.Since(start).Round(time.Millisecond))
	var ds []Delivery
	for deadline := time.Now().Add(10 * time.Second); ; { // B records its outcome
		var err error
		if ds, err = b.Deliveries(context.Background(), "org1", 1); err != nil {
			t.Fatal(err)
		}
		if len(ds) == 1 && ds[0].State != Pending || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release) // A "acknowledges" too late: its lease is gone
	if len(ds) != 1 || ds[0].State != Delivered || ds[0].Attempts != 1 {
		t.Fatalf("deliveries %+v, want delivered once (by B)", ds)
	}
	a.Close()
	ds, _ = b.Deliveries(context.Background(), "org1", 1)
	if len(ds) != 1 || ds[0].State != Delivered || ds[0].Attempts != 1 {
		t.Fatalf("after A came back: deliveries %+v, want B's outcome unchanged", ds)
	}
	if got := rc.ackedIDs(); !equalIDs(got, []int64{1}) {
		t.Fatalf("endpoint acknowledged %v, want [1]", got)
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
