package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rtcrec/recorder/internal/pgtest"
)

// opener opens the database of one conformance case; every call opens the
// same database again, as a restart would.
type opener func(t *testing.T) *Store

// conformance is the suite every driver passes: the code above the store
// relies on exactly this behaviour.
var conformance = []struct {
	name string
	run  func(t *testing.T, open opener)
}{
	{"PutGetAcrossReopen", testPutGetAcrossReopen},
	{"ListPages", testListPages},
	{"Blackouts", testBlackouts},
	{"Agents", testAgents},
	{"MigrationsOnce", testMigrationsOnce},
	{"Instances", testInstances},
	{"Settings", testSettings},
	{"Outbox", testOutbox},
	{"Pins", testPins},
	{"Fencing", testFencing},
	{"Leases", testLeases},
	{"Entries", testEntries},
	{"EntriesRaceTheLimits", testEntriesRaceTheLimits},
}

// TestConformance runs the suite on SQLite and on a real PostgreSQL 15
// started for the test (a failure under CI=true when PostgreSQL is missing).
func TestConformance(t *testing.T) {
	t.Run(DriverSQLite, func(t *testing.T) {
		for _, c := range conformance {
			t.Run(c.name, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "recorder.db")
				c.run(t, func(t *testing.T) *Store {
					return openT(t, Config{Driver: DriverSQLite, DSN: path})
				})
			})
		}
	})
	t.Run(DriverPostgres, func(t *testing.T) {
		srv := pgtest.Start(t)
		for _, c := range conformance {
			t.Run(c.name, func(t *testing.T) {
				dsn := srv.NewDatabase(t)
				local := filepath.Join(t.TempDir(), "local.db")
				c.run(t, func(t *testing.T) *Store {
					return openT(t, Config{Driver: DriverPostgres, DSN: dsn, LocalPath: local})
				})
			})
		}
	})
}

func openT(t *testing.T, cfg Config) *Store {
	t.Helper()
	s, err := OpenConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.Driver() != cfg.Driver {
		t.Fatalf("Driver() = %s, want %s", s.Driver(), cfg.Driver)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testPutGetAcrossReopen(t *testing.T, open opener) {
	ctx := context.Background()
	s := open(t)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	recs := []*Record{
		{InstanceID: "i1", OrganizationID: "org1", ApplicationID: "app", ConversationID: "c1", ConferenceID: "f", RecorderID: "r", State: "ACTIVE", Started: t0, Data: []byte(`{"a":1}`)},
		{InstanceID: "i2", OrganizationID: "org1", ApplicationID: "app", ConversationID: "c1", ConferenceID: "f", RecorderID: "r", State: "STOPPED", Started: t0.Add(time.Second), Data: []byte(`{"a":2}`)},
		{InstanceID: "i3", OrganizationID: "org2", ApplicationID: "app", ConversationID: "c1", ConferenceID: "f", RecorderID: "r", State: "ACTIVE", Started: t0, Data: []byte(`{}`)},
	}
	for _, r := range recs {
		if err := s.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// Update replaces state and data.
	upd := *recs[0]
	upd.State, upd.Data = "STOPPED", []byte(`{"a":3}`)
	if err := s.Put(ctx, &upd); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t)
	got, err := s.Get(ctx, "org1", "i1")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != "STOPPED" || string(got.Data) != `{"a":3}` || !got.Started.Equal(t0) {
		t.Errorf("Get(i1) = %+v, want the update", got)
	}
	if _, err := s.Get(ctx, "org2", "i1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("another tenant's Get: err = %v, want ErrNotFound", err)
	}
	if got, err := s.Lookup(ctx, "i3"); err != nil || got.OrganizationID != "org2" {
		t.Errorf("Lookup(i3) = %+v, %v", got, err)
	}
	if _, err := s.Lookup(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup(nope): err = %v, want ErrNotFound", err)
	}
	conv, err := s.Conversation(ctx, "org1", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if len(conv) != 2 || conv[0].InstanceID != "i1" || conv[1].InstanceID != "i2" {
		t.Errorf("Conversation = %d records, want i1, i2 in order", len(conv))
	}
	if conv, err := s.Conversation(ctx, "org1", "none"); err != nil || len(conv) != 0 {
		t.Errorf("Conversation(none) = %v, %v; want empty", conv, err)
	}
	active, err := s.InStates(ctx, "ACTIVE", "INITIALISED")
	if err != nil {
		t.Fatal(err)
	}
	if len(active) != 1 || active[0].InstanceID != "i3" {
		t.Errorf("InStates(ACTIVE) = %v, want only i3", active)
	}
}

func testListPages(t *testing.T, open opener) {
	ctx := context.Background()
	s := open(t)
	t0 := time.Unix(1700000000, 0)
	for i := range 7 {
		org := "org1"
		if i == 3 {
			org = "org2"
		}
		// Two recordings share a start time: the id breaks the tie.
		started := t0.Add(time.Duration(i/2) * time.Second)
		if err := s.Put(ctx, &Record{InstanceID: fmt.Sprintf("i%d", i), OrganizationID: org, ApplicationID: "a",
			ConversationID: "c", ConferenceID: "f", RecorderID: "r", State: "ACTIVE", Started: started, Data: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	var before int64
	var beforeID string
	for page := 0; page < 10; page++ {
		recs, err := s.List(ctx, "org1", before, beforeID, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			got = append(got, r.InstanceID)
		}
		last := recs[len(recs)-1]
		before, beforeID = last.Started.UnixNano(), last.InstanceID
	}
	want := "[i6 i5 i4 i2 i1 i0]"
	if fmt.Sprint(got) != want {
		t.Errorf("pages gave %v, want %s (org2's i3 excluded)", got, want)
	}
}

func testBlackouts(t *testing.T, open opener) {
	ctx := context.Background()
	s := open(t)
	t0 := time.Unix(1700000000, 0).UTC()
	b := &Blackout{OrganizationID: "o", UserID: "u", Start: t0, Stop: t0.Add(time.Hour), Recordings: []byte(`[]`)}
	if err := s.PutBlackout(ctx, b); err != nil {
		t.Fatal(err)
	}
	b.Stop, b.Recordings = t0.Add(time.Minute), []byte(`["i1"]`)
	if err := s.PutBlackout(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, err := s.Blackouts(ctx)
	if err != nil || len(got) != 1 || !got[0].Stop.Equal(t0.Add(time.Minute)) || string(got[0].Recordings) != `["i1"]` {
		t.Fatalf("blackouts %+v, %v", got, err)
	}
	if err := s.DeleteBlackout(ctx, "o", "u"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Blackouts(ctx); len(got) != 0 {
		t.Errorf("after delete: %+v", got)
	}
	if err := s.DeleteBlackout(ctx, "o", "missing"); err != nil {
		t.Errorf("deleting a missing blackout: %v", err)
	}
}

func testAgents(t *testing.T, open opener) {
	ctx := context.Background()
	s := open(t)
	for _, a := range []*Agent{{"o", 2, []byte(`{"agentPhone":"5003"}`)}, {"o", 1, []byte(`{}`)}, {"p", 2, []byte(`{}`)}} {
		if err := s.PutAgent(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutAgent(ctx, &Agent{"o", 2, []byte(`{"agentPhone":"5005"}`)}); err != nil {
		t.Fatal(err)
	}
	got, err := open(t).Agents(ctx) // reopened: stored
	if err != nil || len(got) != 3 || got[0].AgentID != 1 || got[1].AgentID != 2 || string(got[1].Data) != `{"agentPhone":"5005"}` || got[2].OrganizationID != "p" {
		t.Fatalf("agents %+v, %v", got, err)
	}
	if err := s.DeleteAgent(ctx, "o", 2); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAgent(ctx, "o", 99); err != nil {
		t.Errorf("deleting a missing agent: %v", err)
	}
	if got, _ := s.Agents(ctx); len(got) != 2 {
		t.Errorf("after delete: %+v", got)
	}
}

// testMigrationsOnce checks that reopening applies nothing twice, and that a
// new migration appended to the list is applied once, on both drivers.
func testMigrationsOnce(t *testing.T, open opener) {
	ctx := context.Background()
	s := open(t)
	extra := append(append([]Migration(nil), migrations...), Migration{
		Version: 1000, Name: "test_extra",
		SQL: `CREATE TABLE test_extra (k TEXT PRIMARY KEY, v BIGINT NOT NULL);
INSERT INTO test_extra (k, v) VALUES ('a', 1)`,
	})
	for range 2 {
		if err := migrate(ctx, s.db, s.d, extra); err != nil {
			t.Fatal(err) // a second run would fail on CREATE TABLE or the primary key
		}
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(extra) {
		t.Errorf("schema_migrations has %d rows, want %d", n, len(extra))
	}
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM test_extra`).Scan(&n); err != nil || n != 1 {
		t.Errorf("test_extra rows = %d, %v; want 1", n, err)
	}
	bad := append(append([]Migration(nil), migrations...), Migration{Version: 1, Name: "dup", SQL: "SELECT 1"})
	if err := migrate(ctx, s.db, s.d, bad); err == nil {
		t.Error("a list with a repeated version migrated without error")
	}
}

func testInstances(t *testing.T, open opener) {
	ctx := context.Background()
	s := open(t)
	t0 := time.Unix(1700000000, 123).UTC()
	a := &Instance{RecorderID: "rec-a", InternalURL: "http://10.0.0.1:8080", PublicURL: "https://a.example", Capacity: 50,
		Active: 3, Started: t0, Heartbeat: t0.Add(time.Second)}
	b := &Instance{RecorderID: "rec-b", InternalURL: "http://10.0.0.2:8080", PublicURL: "https://b.example", Capacity: 10,
		Draining: true, Started: t0, Heartbeat: t0}
	for _, in := range []*Instance{b, a} {
		if err := s.PutInstance(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	a.Active, a.Heartbeat = 4, t0.Add(3*time.Second)
	if err := s.PutInstance(ctx, a); err != nil {
		t.Fatal(err)
	}
	all, err := s.Instances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || *all[0] != *a || *all[1] != *b {
		t.Fatalf("Instances = %+v, want a (updated) then b", all)
	}
	if got, err := s.Instance(ctx, "rec-b"); err != nil || !got.Draining {
		t.Errorf("Instance(rec-b) = %+v, %v", got, err)
	}
	if err := s.DeleteInstance(ctx, "rec-b"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Instance(ctx, "rec-b"); !errors.Is(err, ErrNoInstance) {
		t.Errorf("deleted instance: err = %v, want ErrNoInstance", err)
	}
}

func testSettings(t *testing.T, open opener) {
	ctx := context.Background()
	s := open(t)
	if v, err := s.Setting(ctx, "k", "first"); err != nil || v != "first" {
		t.Fatalf("Setting(k, first) = %q, %v", v, err)
	}
	if v, err := s.Setting(ctx, "k", "second"); err != nil || v != "first" {
		t.Errorf("Setting(k, second) = %q, %v; want the first value kept", v, err)
	}
}

// testOutbox: each organization numbers its events 1, 2, 3 across reopens;
// deliveries are leased to one owner at a time, an outcome is recorded only
// under the lease, and pruning keeps pending deliveries and the numbering.
func testOutbox(t *testing.T, open opener) {
	ctx := context.Background()
	s := open(t)
	at := func(sec int) string {
		return time.Unix(int64(sec), 0).UTC().Format("2006-01-02T15:04:05.000000000Z07:00")
	}
	for i, org := range []string{"o1", "o2", "o1", "o1"} {
		var urls []string
		if i == 2 {
			urls = []string{"http://h/1", "http://h/2"}
		}
		if _, err := s.AppendEvent(ctx, &OutboxEvent{OrganizationID: org, Type: "t", ApplicationID: "a", Occurred: at(i), Data: "{}"}, urls); err != nil {
			t.Fatal(err)
		}
	}
	s = open(t)
	seq, err := s.AppendEvent(ctx, &OutboxEvent{OrganizationID: "o2", Type: "t", Occurred: at(10), Data: "{}"}, nil)
	if err != nil || seq != 2 {
		t.Fatalf("o2's second event: %d, %v", seq, err)
	}
	evs, err := s.EventsSince(ctx, "o1", 1, 10)
	if err != nil || len(evs) != 2 || evs[0].Seq != 2 || evs[1].Seq != 3 || evs[0].Occurred != at(2) {
		t.Fatalf("o1 since 1: %+v, %v", evs, err)
	}
	if last, _ := s.LastEventSeq(ctx, "o1"); last != 3 {
		t.Fatalf("o1 last = %d", last)
	}
	if last, _ := s.LastEventSeq(ctx, "nobody"); last != 0 {
		t.Fatalf("unknown org last = %d", last)
	}
	heads, err := s.DeliveryHeads(ctx)
	if err != nil || len(heads) != 2 || heads[0].Event.Seq != 2 || heads[0].Event.OrganizationID != "o1" {
		t.Fatalf("heads %+v, %v", heads, err)
	}
	now := time.Now()
	if ok, err := s.LeaseDelivery(ctx, "http://h/1", "o1", 2, "A", now, now.Add(time.Minute)); !ok || err != nil {
		t.Fatalf("A's lease: %v, %v", ok, err)
	}
	if ok, _ := s.LeaseDelivery(ctx, "http://h/1", "o1", 2, "B", now, now.Add(time.Minute)); ok {
		t.Fatal("B leased a delivery A holds")
	}
	later := now.Add(2 * time.Minute) // A's lease lapsed
	if ok, _ := s.LeaseDelivery(ctx, "http://h/1", "o1", 2, "B", later, later.Add(time.Minute)); !ok {
		t.Fatal("B could not lease a lapsed delivery")
	}
	d := heads[0].Delivery
	d.State, d.Attempts, d.Done = "delivered", 1, later
	if ok, _ := s.FinishDelivery(ctx, d, "A"); ok {
		t.Fatal("A recorded an outcome without the lease")
	}
	if ok, err := s.FinishDelivery(ctx, d, "B"); !ok || err != nil {
		t.Fatalf("B's outcome: %v, %v", ok, err)
	}
	ds, err := s.EventDeliveries(ctx, "o1", 2)
	if err != nil || len(ds) != 2 || ds[0].State != "delivered" || ds[0].LeaseOwner != "" || ds[1].State != "pending" {
		t.Fatalf("deliveries %+v, %v", ds, err)
	}
	if n, _ := s.PendingDeliveries(ctx); n != 1 {
		t.Fatalf("pending = %d", n)
	}
	n, err := s.PruneEvents(ctx, at(5)) // o1 1 and 3, o2 1 go; o1 2 has a pending delivery
	if err != nil || n != 3 {
		t.Fatalf("pruned %d, %v; want 3", n, err)
	}
	if evs, _ := s.EventsSince(ctx, "o1", 0, 10); len(evs) != 1 || evs[0].Seq != 2 {
		t.Fatalf("o1 after prune: %+v", evs)
	}
	if seq, _ := s.AppendEvent(ctx, &OutboxEvent{OrganizationID: "o1", Type: "t", Occurred: at(20), Data: "{}"}, nil); seq != 4 {
		t.Fatalf("o1 after prune numbers %d, want 4", seq)
	}
}

// testPins: the first pin of a conference wins; a re-pin moves it only from
// the instance named, with the next epoch; organizations pin apart.
func testPins(t *testing.T, open opener) {
	ctx := context.Background()
	s := open(t)
	p, err := s.PinConference(ctx, "o1", "conf", "rec-a")
	if err != nil || p.RecorderID != "rec-a" || p.Epoch != 1 {
		t.Fatalf("first pin: %+v, %v", p, err)
	}
	if p, _ := s.PinConference(ctx, "o1", "conf", "rec-b"); p.RecorderID != "rec-a" {
		t.Fatalf("second pin took over: %+v", p)
	}
	if p, _ := s.PinConference(ctx, "o2", "conf", "rec-b"); p.RecorderID != "rec-b" {
		t.Fatalf("another organization's conference: %+v", p)
	}
	if ok, _ := s.RepinConference(ctx, "o1", "conf", "rec-c", "rec-b"); ok {
		t.Fatal("re-pinned from an instance that does not hold the pin")
	}
	if ok, err := s.RepinConference(ctx, "o1", "conf", "rec-a", "rec-b"); !ok || err != nil {
		t.Fatalf("re-pin: %v, %v", ok, err)
	}
	s = open(t)
	if p, _ := s.PinConference(ctx, "o1", "conf", "rec-c"); p.RecorderID != "rec-b" || p.Epoch != 2 {
		t.Fatalf("after the re-pin: %+v", p)
	}
	// Unpin: only by its holder, only once no recording of the conference
	// is unfinished.
	r := &Record{InstanceID: "pin-i1", OrganizationID: "o1", ApplicationID: "a", ConversationID: "c", ConferenceID: "conf",
		RecorderID: "rec-b", State: "ACTIVE", Started: time.Unix(1, 0), Data: []byte(`{}`)}
	if err := s.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.UnpinConference(ctx, "o1", "conf", "rec-b", "INITIALISED", "ACTIVE", "PENDING_RECOVERY"); ok || err != nil {
		t.Fatalf("unpinned with a recording ACTIVE: %v %v", ok, err)
	}
	r.State = "STOPPED"
	if err := s.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.UnpinConference(ctx, "o1", "conf", "rec-a", "INITIALISED", "ACTIVE", "PENDING_RECOVERY"); ok {
		t.Fatal("unpinned by an instance that does not hold the pin")
	}
	if ok, err := s.UnpinConference(ctx, "o1", "conf", "rec-b", "INITIALISED", "ACTIVE", "PENDING_RECOVERY"); !ok || err != nil {
		t.Fatalf("unpin once every recording ended: %v %v", ok, err)
	}
	if p, _ := s.PinConference(ctx, "o1", "conf", "rec-c"); p.RecorderID != "rec-c" || p.Epoch != 1 {
		t.Fatalf("a pin after the unpin: %+v, want a fresh one to rec-c", p)
	}
	if p, _ := s.PinConference(ctx, "o2", "conf", "rec-a"); p.RecorderID != "rec-b" {
		t.Fatalf("the other organization's pin: %+v", p)
	}
}

// testFencing: a claim moves a recording to a new owner with the next epoch;
// from then on a write with the old epoch fails with ErrFenced and changes
// nothing; of two claims from one epoch, one wins.
func testFencing(t *testing.T, open opener) {
	ctx := context.Background()
	s := open(t)
	r := &Record{InstanceID: "i1", OrganizationID: "o", ApplicationID: "a", ConversationID: "c", ConferenceID: "f",
		RecorderID: "rec-a", State: "ACTIVE", Started: time.Unix(1, 0), Data: []byte(`{"v":1}`)}
	if err := s.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	if owner, epoch, err := s.Epoch(ctx, "i1"); err != nil || owner != "rec-a" || epoch != 0 {
		t.Fatalf("epoch: %s %d %v", owner, epoch, err)
	}
	if ok, err := s.Claim(ctx, "i1", 0, "rec-b"); !ok || err != nil {
		t.Fatalf("B's claim: %v %v", ok, err)
	}
	if ok, _ := s.Claim(ctx, "i1", 0, "rec-c"); ok {
		t.Fatal("a second claim from epoch 0 won")
	}
	r.Data = []byte(`{"v":2}`)
	if err := s.Put(ctx, r); !errors.Is(err, ErrFenced) {
		t.Fatalf("A's write after the takeover: %v, want ErrFenced", err)
	}
	s = open(t)
	got, err := s.Get(ctx, "o", "i1")
	if err != nil || string(got.Data) != `{"v":1}` || got.Owner != "rec-b" || got.Epoch != 1 || got.RecorderID != "rec-a" {
		t.Fatalf("after the fenced write: %+v %v", got, err)
	}
	got.Data = []byte(`{"v":3}`)
	if err := s.Put(ctx, got); err != nil {
		t.Fatalf("B's write: %v", err)
	}
}

// testLeases: a fleet-wide quota of 3: concurrent acquisitions hold exactly
// 3; re-acquiring a held lease renews it; a released or lapsed lease frees
// its place; renewal moves only the holder's leases of the given kinds.
func testLeases(t *testing.T, open opener) {
	ctx := context.Background()
	s := open(t)
	hour := time.Now().Add(time.Hour)
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := 0
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.AcquireLease(ctx, &Lease{OrganizationID: "o", Kind: "whip", ID: fmt.Sprint("l", i), Holder: "rec-a", Expires: hour}, 3)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				got++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if n, _ := s.Leases(ctx, "o", "whip"); got != 3 || n != 3 {
		t.Fatalf("12 concurrent acquisitions under a quota of 3: %d taken, %d held", got, n)
	}
	if ok, _ := s.AcquireLease(ctx, &Lease{OrganizationID: "o2", Kind: "whip", ID: "x", Holder: "rec-a", Expires: hour}, 3); !ok {
		t.Error("another organization's quota is its own")
	}
	if ok, _ := s.AcquireLease(ctx, &Lease{OrganizationID: "o", Kind: "sse", ID: "x", Holder: "rec-a", Expires: hour}, 3); !ok {
		t.Error("another kind's quota is its own")
	}
	if err := s.ReleaseLease(ctx, "o", "whip", "nope"); err != nil {
		t.Error(err)
	}
	// Lapsed: a lease whose holder stopped renewing frees its place.
	if ok, _ := s.AcquireLease(ctx, &Lease{OrganizationID: "o", Kind: "blackout", ID: "b1", Holder: "rec-b", Expires: time.Now().Add(-time.Second)}, 1); !ok {
		t.Fatal("first blackout lease")
	}
	if ok, _ := s.AcquireLease(ctx, &Lease{OrganizationID: "o", Kind: "blackout", ID: "b2", Holder: "rec-a", Expires: hour}, 1); !ok {
		t.Error("a lapsed lease still holds its place")
	}
	// Renewal: rec-a's sse lease is renewed, a lapsed rec-b whip one is not.
	if err := s.RenewLeases(ctx, "rec-a", []string{"sse"}, time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Leases(ctx, "o", "sse"); n != 0 {
		t.Errorf("sse leases after renewing them into the past: %d", n)
	}
	if n, _ := s.Leases(ctx, "o", "whip"); n != 3 {
		t.Errorf("whip leases renewed with sse: %d held", n)
	}
}
