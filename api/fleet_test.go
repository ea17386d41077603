package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/internal/pgtest"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/recorder"
	"github.com/rtcrec/recorder/recorder/conference/whep/wheptest"
	"github.com/rtcrec/recorder/recorder/conference/whip"
	"github.com/rtcrec/recorder/recorder/conference/whip/whiptest"
	"github.com/rtcrec/recorder/recorder/events"
)

// startFleet runs n services on one PostgreSQL database, each with its own
// data directory (and so its own recorderId), with 1 s heartbeats (dead after 3 s: a loaded test machine is not taken for dead and its recordings taken over).
func startFleet(t *testing.T, n int) []*harness {
	t.Helper()
	dsn := pgtest.Start(t).NewDatabase(t)
	var hs []*harness
	for range n {
		cfg := testConfig(t.TempDir())
		cfg.Store.Driver, cfg.Store.DSN = "postgres", dsn
		cfg.Cluster.Heartbeat = time.Second
		hs = append(hs, startServiceConfig(t, cfg, nil))
	}
	return hs
}

// recordOn starts a recording of conf (conversation conv) on h, with a real
// WHIP publisher user in it sending freq Hz until the test ends.
func recordOn(t *testing.T, ctx context.Context, h *harness, conf, conv, user string, freq float64) RecordingDataEvent {
	t.Helper()
	p, err := whiptest.Join(ctx, h.whipClient(key1), whip.Endpoint(h.url, conf, user, "MIC"), user, freq)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Leave(context.Background()) })
	ev, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: conf, ConversationID: conv})
	if st != 200 {
		t.Fatalf("start on %s: %d %+v", h.url, st, ev)
	}
	return ev
}

// TestFleet_CommandsForwardedToOwner: a recording started on A (a real WHIP
// publisher in it) is paused, resumed, given metadata and stopped through B,
// which forwards each command to A and answers as A would; errors cross too
// (a pause after the stop is A's 409), and another tenant still gets 404.
func TestFleet_CommandsForwardedToOwner(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	hs := startFleet(t, 2)
	a, b := hs[0], hs[1]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ev := recordOn(t, ctx, a, "fwd-conf", "fwd", "alice", 440)
	if ev.RecorderID != a.svc.RecorderID {
		t.Fatalf("start on A: %+v", ev)
	}
	path := recPath(ev)
	var got RecordingDataEvent
	if st := b.do("POST", path+"/pause", key1, nil, &got); st != 200 || !got.Paused || got.State != "ACTIVE" {
		t.Fatalf("pause through B: %d %+v", st, got)
	}
	if r, _ := a.svc.Manager.Get(ctx, "org1", "fwd", ev.RecorderID, ev.InstanceID); r == nil || !r.Paused {
		t.Fatalf("A's recording is not paused: %+v", r)
	}
	got = RecordingDataEvent{} // paused is omitted when false
	if st := b.do("POST", path+"/resume", key1, nil, &got); st != 200 || got.Paused {
		t.Fatalf("resume through B: %d %+v", st, got)
	}
	var md struct {
		RecordingDataEvent
		Metadata map[string]string `json:"metadata"`
	}
	if st := b.do("POST", path+"/metadata", key1, map[string]any{"metadata": map[string]string{"ticket": "T-9"}}, &md); st != 200 || md.Metadata["ticket"] != "T-9" {
		t.Fatalf("metadata through B: %d %+v", st, md)
	}
	if st := b.do("POST", path+"/pause", key2, nil, nil); st != 404 {
		t.Errorf("another tenant's pause through B: %d, want 404", st)
	}
	a.waitWritten(1) // stopped with media: STOPPED, not ABORTED
	if st := b.do("POST", path+"/stop", key1, nil, &got); st != 200 || got.State != "STOPPED" {
		t.Fatalf("stop through B: %d %+v", st, got)
	}
	// Stop returned once A finished: the composition is there, with the metadata.
	var comp RecordingDataMessage
	if st := b.do("GET", "/api/compositions/fwd", key1, nil, &comp); st != 200 || comp.Composition == nil || len(comp.Composition.Outputs) == 0 {
		t.Fatalf("composition read on B: %d %+v", st, comp)
	}
	if st := b.do("POST", path+"/pause", key1, nil, nil); st != 409 {
		t.Errorf("pause of the stopped recording through B: %d, want 409", st)
	}
}

// TestFleet_OwnerGone: a command for a recording whose owner stopped
// heart-beating is a 503 that names the owner, not a hang; once another
// instance has taken the recording over (within a heartbeat of the owner
// being declared dead), it is finished there and a pause is a 409.
func TestFleet_OwnerGone(t *testing.T) {
	hs := startFleet(t, 2)
	a, b := hs[0], hs[1]
	ev, st := a.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: "gone-conf", ConversationID: "gone"})
	if st != 200 {
		t.Fatalf("start: %d", st)
	}
	a.svc.Node.Stop() // A's heartbeats stop, as if it were cut off
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := b.do("POST", recPath(ev)+"/pause", key1, nil, nil)
		if st == 503 {
			break
		}
		if st == 409 {
			// The takeover came between two polls (a loaded machine). B
			// answers 409 from its claim on (the store names it the owner,
			// and it runs no session of it) and records the takeover once
			// it has reassembled the parts and started the continuation:
			// the record shows it then.
			var r *recorder.Recording
			var err error
			for end := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				r, err = b.svc.Manager.Get(context.Background(), "org1", "gone", ev.RecorderID, ev.InstanceID)
				if err != nil || r.Takeover != nil || time.Now().After(end) {
					break
				}
			}
			if err != nil || r.Takeover == nil || r.Takeover.From != a.svc.Node.RecorderID() {
				t.Fatalf("pause through B: 409 but the recording was not taken over from A: %+v, %v", r, err)
			}
			t.Logf("B took the recording over before a poll saw the 503")
			break
		}
		if st != 200 || time.Now().After(deadline) {
			t.Fatalf("pause through B with A silent: %d, want 200 until A is declared dead, then 503", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFleet_BlackoutReachesOtherInstance: a blackout started through A
// silences the participant in a recording that B runs; the time from the
// request on A to the blackout being in force in B's recording is logged
// (the budget is 200 ms). Stopping it through A ends it on B.
func TestFleet_BlackoutReachesOtherInstance(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	hs := startFleet(t, 2)
	a, b := hs[0], hs[1]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ev := recordOn(t, ctx, b, "bo-conf", "bo", "agent7", 660)
	// intervals returns the blackout intervals of agent7 in B's recording.
	intervals := func() []time.Time {
		r, err := b.svc.Manager.Get(ctx, "org1", "bo", ev.RecorderID, ev.InstanceID)
		if err != nil {
			t.Fatal(err)
		}
		var ends []time.Time
		for _, iv := range r.Blackouts {
			if iv.UserID == "agent7" {
				ends = append(ends, iv.End)
			}
		}
		return ends
	}
	waitFor := func(what string, cond func([]time.Time) bool) time.Duration {
		start := time.Now()
		for !cond(intervals()) {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("%s: not within 10 s", what)
			}
			time.Sleep(time.Millisecond)
		}
		return time.Since(start)
	}
	for i := 1; i <= 3; i++ {
		sent := time.Now()
		if st := a.do("POST", "/api/blackouts/start", key1, map[string]any{"userId": "agent7"}, nil); st != 200 {
			t.Fatalf("blackout start on A: %d", st)
		}
		waitFor("blackout in force on B", func(ends []time.Time) bool { return len(ends) == i && ends[i-1].IsZero() })
		t.Logf("blackout %d: propagation A → B (request sent on A to in force in B's recording): %v", i, time.Since(sent))
		if !b.svc.Manager.Blackouts("org1")["agent7"].Active {
			t.Error("B does not list the blackout as active")
		}
		sent = time.Now()
		if st := a.do("POST", "/api/blackouts/stop", key1, map[string]any{"userId": "agent7"}, nil); st != 200 {
			t.Fatalf("blackout stop on A: %d", st)
		}
		waitFor("blackout ended on B", func(ends []time.Time) bool { return len(ends) == i && !ends[i-1].IsZero() })
		t.Logf("blackout %d: stop propagation A → B: %v", i, time.Since(sent))
	}
}

// TestFleet_EventsOnEveryInstance: three instances share the outbox. A
// recording runs on B; its commands arrive through A and C. An SSE client of C
// sees B's events, in order; the webhook endpoint gets each event of the
// fleet exactly once, although every instance runs a delivery worker; and the
// ids number org1's events alone (org2's activity leaves no gap).
func TestFleet_EventsOnEveryInstance(t *testing.T) {
	var mu sync.Mutex
	got := map[int64]int{} // event id → deliveries
	var order []int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id, err := events.VerifySignature("s3cret", r.Header, body, time.Now(), time.Minute)
		if err != nil {
			t.Errorf("webhook: %v", err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		mu.Lock()
		got[id]++
		order = append(order, id)
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	dsn := pgtest.Start(t).NewDatabase(t)
	var hs []*harness
	for range 3 {
		cfg := testConfig(t.TempDir())
		cfg.Store.Driver, cfg.Store.DSN = "postgres", dsn
		cfg.Cluster.Heartbeat = time.Second
		cfg.Applications = map[string]*config.Application{
			"app1": {Conference: config.ConferenceConfig{Kind: "whip"},
				Webhooks: []config.WebhookConfig{{URL: hook.URL, Secret: "s3cret"}}},
			"app2": {Conference: config.ConferenceConfig{Kind: "whip"}},
		}
		hs = append(hs, startServiceConfig(t, cfg, nil))
	}
	a, b, c := hs[0], hs[1], hs[2]
	live := make(chan []events.Event, 1)
	const n = 5 // start (1), pause (2), resume (2)
	go func() { live <- sseEvents(t, c, key1, 0, n) }()
	// The subscription is in force once an event published now reaches it:
	// wait for C's stream to be open before the recording starts.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c.svc.Events.Subscribers("org1") > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("C's event stream never opened")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ev, st := b.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: "evf-conf", ConversationID: "evf"})
	if st != 200 || ev.RecorderID != b.svc.RecorderID {
		t.Fatalf("start on B: %d %+v", st, ev)
	}
	for range 5 { // org2's activity between org1's events
		if _, st := a.start(key2, StartRecording{ApplicationID: "app2", ConferenceID: "o2", ConversationID: "o2"}); st != 200 && st != 409 {
			t.Fatalf("org2 start: %d", st)
		}
	}
	if st := a.do("POST", recPath(ev)+"/pause", key1, nil, nil); st != 200 {
		t.Fatalf("pause through A: %d", st)
	}
	if st := c.do("POST", recPath(ev)+"/resume", key1, nil, nil); st != 200 {
		t.Fatalf("resume through C: %d", st)
	}
	var evs []events.Event
	select {
	case evs = <-live:
	case <-time.After(30 * time.Second):
		t.Fatal("no events on C")
	}
	var ids []int64
	for _, e := range evs {
		ids = append(ids, e.ID)
		if e.OrganizationID != "org1" {
			t.Errorf("org1's stream on C carries %+v", e)
		}
	}
	if len(ids) != n || ids[0] != 1 || ids[n-1] != n {
		t.Errorf("ids on C %v, want 1..%d (org1's own numbering)", ids, n)
	}
	var kinds []events.Type
	for _, e := range evs {
		kinds = append(kinds, e.Type)
	}
	if len(kinds) != n || kinds[0] != events.StateUpdated || !slices.Contains(kinds, events.RecordingPaused) ||
		!slices.Contains(kinds, events.RecordingResumed) || slices.Index(kinds, events.RecordingPaused) > slices.Index(kinds, events.RecordingResumed) {
		t.Errorf("event types on C %v: want B's start, pause, resume in order", kinds)
	}
	if st := c.do("POST", recPath(ev)+"/stop", key1, nil, nil); st != 200 {
		t.Fatalf("stop through C: %d", st)
	}
	stored, err := a.svc.Events.Since(context.Background(), "org1", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		done := len(got) == len(stored)
		mu.Unlock()
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // a duplicate, had any instance sent one, would be in by now
	mu.Lock()
	defer mu.Unlock()
	for _, e := range stored {
		if got[e.ID] != 1 {
			t.Errorf("event %d (%s) delivered %d times, want once for the fleet", e.ID, e.Type, got[e.ID])
		}
	}
	if !slices.IsSorted(order) {
		t.Errorf("deliveries out of order: %v", order)
	}
	t.Logf("%d org1 events, delivered once each in order: %v", len(stored), order)
}

// TestFleet_PlacementByLoad: every start of a dial-out (WHEP) conference is
// sent to instance A; each lands on the least-loaded instance with room (A,
// B, C, then round again), and once every instance is at its capacity (2) a
// start is refused with 503 and Retry-After. A recording ending makes room
// again.
func TestFleet_PlacementByLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	freqs := map[string]float64{}
	for i := range 8 {
		freqs[fmt.Sprintf("p%d", i)] = 440
	}
	sfu := wheptest.New(t, freqs)
	dsn := pgtest.Start(t).NewDatabase(t)
	var hs []*harness
	for range 3 {
		cfg := testConfig(t.TempDir())
		cfg.Store.Driver, cfg.Store.DSN = "postgres", dsn
		cfg.Cluster.Heartbeat, cfg.Capacity.Streams = time.Second, 2
		cfg.Applications = map[string]*config.Application{
			"dial": {Conference: config.ConferenceConfig{Kind: "whep", URLTemplate: sfu.URL + "/c/{conferenceId}/whep"}},
		}
		hs = append(hs, startServiceConfig(t, cfg, nil))
	}
	a := hs[0]
	name := map[string]string{}
	for i, h := range hs {
		name[h.svc.RecorderID] = string(rune('A' + i))
	}
	start := func(i int) (RecordingDataEvent, *http.Response) {
		body, _ := json.Marshal(StartRecording{ApplicationID: "dial", ConferenceID: fmt.Sprintf("p%d", i), ConversationID: fmt.Sprintf("p%d", i)})
		req, _ := http.NewRequest("POST", a.url+"/api/recordings/start", bytes.NewReader(body))
		req.Header.Set("Authorization", key1)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ev RecordingDataEvent
		json.NewDecoder(resp.Body).Decode(&ev)
		return ev, resp
	}
	var placed []string
	var evs []RecordingDataEvent
	for i := range 6 {
		ev, resp := start(i)
		if resp.StatusCode != 200 || ev.State != "ACTIVE" {
			t.Fatalf("start %d through A: %d %+v", i, resp.StatusCode, ev)
		}
		placed = append(placed, name[ev.RecorderID])
		evs = append(evs, ev)
	}
	// B and C tie at every round: the one with the lower recorderId first.
	want := "ABCABC"
	if hs[2].svc.RecorderID < hs[1].svc.RecorderID {
		want = "ACBACB"
	}
	if got := strings.Join(placed, ""); got != want {
		t.Errorf("starts placed on %s, want %s (least loaded first, ties to the receiving instance)", got, want)
	}
	_, resp := start(6)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("start with every instance full: %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// A recording on B or C ends (stopped through A): that instance takes the next start.
	freed := name[evs[1].RecorderID]
	if st := a.do("POST", recPath(evs[1])+"/stop", key1, nil, nil); st != 200 {
		t.Fatalf("stop through A: %d", st)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		ev, resp := start(7)
		if resp.StatusCode == 200 {
			if name[ev.RecorderID] != freed {
				t.Errorf("start after %s's recording ended placed on %s, want %s", freed, name[ev.RecorderID], freed)
			}
			break
		}
		if resp.StatusCode != 503 || time.Now().After(deadline) {
			t.Fatalf("start after %s's recording ended: %d", freed, resp.StatusCode)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFleet_PlacementCountsStreams: placement weighs streams, the unit of
// capacity.streams, not recordings. A records a conference of two streams;
// a one-stream start through A goes to B (2 streams against 0), and so does
// the next (2 against 1), where counting recordings would keep it on A (a
// tie, 1 against 1).
func TestFleet_PlacementCountsStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	sfu := wheptest.New(t, map[string]float64{"s1": 440, "s2": 660, "o1": 440, "o2": 440})
	dsn := pgtest.Start(t).NewDatabase(t)
	var hs []*harness
	for range 2 {
		cfg := testConfig(t.TempDir())
		cfg.Store.Driver, cfg.Store.DSN = "postgres", dsn
		cfg.Cluster.Heartbeat = time.Second
		cfg.Applications = map[string]*config.Application{
			"two": {Conference: config.ConferenceConfig{Kind: "whep", URLTemplate: sfu.URL + "/c/{conferenceId}/{streamId}/whep", Streams: []string{"s1", "s2"}}},
			"one": {Conference: config.ConferenceConfig{Kind: "whep", URLTemplate: sfu.URL + "/c/{conferenceId}/whep"}},
		}
		hs = append(hs, startServiceConfig(t, cfg, nil))
	}
	a, b := hs[0], hs[1]
	ev, st := a.start(key1, StartRecording{ApplicationID: "two", ConferenceID: "w", ConversationID: "w"})
	if st != 200 || ev.RecorderID != a.svc.RecorderID {
		t.Fatalf("start of the two-stream conference through A: %d %+v, want it on A (a tie stays)", st, ev)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if load, _ := a.svc.Manager.Load(); load == 2 {
			break
		}
		if time.Now().After(deadline) {
			load, _ := a.svc.Manager.Load()
			t.Fatalf("A carries %d streams, want the two it records", load)
		}
	}
	for _, conf := range []string{"o1", "o2"} {
		ev, st := a.start(key1, StartRecording{ApplicationID: "one", ConferenceID: conf, ConversationID: conf})
		if st != 200 || ev.RecorderID != b.svc.RecorderID {
			la, _ := a.svc.Manager.Load()
			lb, _ := b.svc.Manager.Load()
			t.Fatalf("start of %s through A: %d on %s, want B (A carries %d streams, B %d)", conf, st, ev.RecorderID, la, lb)
		}
	}
}

// TestFleet_WHIPRedirectedToPinnedInstance: alice publishes through A, which
// pins the conference to A. A recording started through B runs on A. Bob's
// real Pion WHIP publisher posts to B, gets a 307 to A, follows it and
// publishes there: both tones are in A's mix, and B holds no WHIP session.
func TestFleet_WHIPRedirectedToPinnedInstance(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	hs := startFleet(t, 2)
	a, b := hs[0], hs[1]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alice, err := whiptest.Join(ctx, a.whipClient(key1), whip.Endpoint(a.url, "pin-conf", "alice", "MIC"), "alice", 440)
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Leave(context.Background())
	ev, st := b.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: "pin-conf", ConversationID: "pin"})
	if st != 200 || ev.RecorderID != a.svc.RecorderID {
		t.Fatalf("start through B: %d %+v, want it run on A (%s), where the conference is pinned", st, ev, a.svc.RecorderID)
	}

	// What B answers an offer, without following.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("POST", whip.Endpoint(b.url, "pin-conf", "bob", "MIC"), strings.NewReader("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n"))
	req.Header.Set("Authorization", "Bearer "+key1)
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := whip.Endpoint(a.url, "pin-conf", "bob", "MIC"); resp.StatusCode != 307 || resp.Header.Get("Location") != want {
		t.Fatalf("offer to B: %d Location %q, want 307 to %s", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	// Without the right to publish there is no redirect (and no pin): B answers.
	req, _ = http.NewRequest("POST", whip.Endpoint(b.url, "pin-conf", "bob", "MIC"), strings.NewReader("v=0\r\n"))
	req.Header.Set("Authorization", "Bearer nope")
	req.Header.Set("Content-Type", "application/sdp")
	if resp, err := noFollow.Do(req); err != nil || resp.StatusCode != 401 {
		t.Fatalf("offer to B with a bad token: %v %v, want 401", resp.StatusCode, err)
	}

	bob, err := whiptest.Join(ctx, b.whipClient(key1), whip.Endpoint(b.url, "pin-conf", "bob", "MIC"), "bob", 660)
	if err != nil {
		t.Fatalf("bob through B: %v", err)
	}
	defer bob.Leave(context.Background())
	for deadline := time.Now().Add(20 * time.Second); ; {
		r, err := a.svc.Manager.Get(ctx, "org1", "pin", ev.RecorderID, ev.InstanceID)
		if err != nil {
			t.Fatal(err)
		}
		users := map[string]bool{}
		for _, s := range r.Streams {
			users[s.UserID] = true
		}
		if users["alice"] && users["bob"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A's recording has the streams of %v, want alice and bob", users)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := b.svc.WHIP.Sessions(); n != 0 {
		t.Errorf("B holds %d WHIP sessions, want 0", n)
	}
	time.Sleep(2 * time.Second)
	if st := b.do("POST", recPath(ev)+"/stop", key1, nil, nil); st != 200 {
		t.Fatalf("stop through B: %d", st)
	}
	var comp RecordingDataMessage
	if st := a.do("GET", "/api/compositions/pin", key1, nil, &comp); st != 200 || comp.Composition == nil || len(comp.Composition.Outputs) == 0 {
		t.Fatalf("composition: %d %+v", st, comp)
	}
	wav := fetch(t, comp.Composition.Outputs[0].URL)
	pcm := wavPCM(t, wav)
	last := pcm[max(0, len(pcm)-8000) : len(pcm)-800] // the last second: both publishers
	for _, f := range []float64{440, 660} {
		if lv := mediatest.Goertzel(last, 8000, f); lv < 1000 {
			t.Errorf("%.0f Hz amplitude %.0f in the last second of A's mix: want the tone", f, lv)
		}
	}
}

// TestFleet_TakeoverOfADeadOwner: a dial-out (WHEP) recording runs on A,
// uploading parts every second to the storage both instances share. A stops
// heart-beating (cut off from the fleet; its session still runs: a zombie).
// B takes the recording over: it re-joins the conference as a second segment
// (a new recording on B that continues the first), finishes the first from
// A's parts (STOPPED, recovered, both segments and the gap listed), and A's
// next write is fenced: A writes nothing more. The time from A's last
// heartbeat to the second segment being ACTIVE is logged.
func TestFleet_TakeoverOfADeadOwner(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	sfu := wheptest.New(t, map[string]float64{"tk": 440})
	dsn := pgtest.Start(t).NewDatabase(t)
	shared := t.TempDir() // the storage both instances upload to
	var hs []*harness
	for range 2 {
		cfg := testConfig(t.TempDir())
		cfg.Store.Driver, cfg.Store.DSN = "postgres", dsn
		// The default heartbeat (2 s: dead after 6 s), so that the takeover
		// time logged is the fleet's.
		cfg.Uploads.ChunkInterval = time.Second
		cfg.Applications = map[string]*config.Application{
			"dial": {Conference: config.ConferenceConfig{Kind: "whep", URLTemplate: sfu.URL + "/c/{conferenceId}/whep"},
				Storage: &config.StorageProfile{Provider: config.ProviderLocal, Dir: shared}},
		}
		hs = append(hs, startServiceConfig(t, cfg, nil))
	}
	a, b := hs[0], hs[1]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ev, st := a.start(key1, StartRecording{ApplicationID: "dial", ConferenceID: "tk", ConversationID: "tk"})
	if st != 200 || ev.RecorderID != a.svc.RecorderID || ev.State != "ACTIVE" {
		t.Fatalf("start on A: %d %+v", st, ev)
	}
	// A uploaded parts (three, of its files) to the shared storage.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		parts := 0
		filepath.WalkDir(shared, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.Contains(d.Name(), ".part-") && !strings.HasPrefix(d.Name(), ".") { // not a temporary or attributes file
				parts++
			}
			return nil
		})
		if parts >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A uploaded %d parts in 30 s, want 3", parts)
		}
	}
	a.svc.Node.Stop() // A is cut off: no more heartbeats (nor takeovers)
	cut := time.Now()

	// B takes over: the first recording gets its Takeover.
	var first *recorder.Recording
	for deadline := time.Now().Add(30 * time.Second); ; {
		r, err := b.svc.Manager.Get(ctx, "org1", "tk", ev.RecorderID, ev.InstanceID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Takeover != nil {
			first = r
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no takeover within 30 s: %+v", r)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tk := first.Takeover
	if tk.From != a.svc.RecorderID || tk.By != b.svc.RecorderID || len(tk.Segments) != 2 || tk.Parts == 0 {
		t.Fatalf("takeover %+v, want from A by B, two segments, parts reassembled", tk)
	}
	second := tk.Segments[1]
	lastBeat := cut
	if in, err := b.svc.Store.Instance(ctx, a.svc.RecorderID); err == nil {
		lastBeat = in.Heartbeat
	}
	t.Logf("takeover: A cut off → second segment ACTIVE on B: %v; from A's last heartbeat: %v (dead after %v); first segment %v of audio from %d parts; gap %v",
		second.Started.Sub(cut).Round(time.Millisecond), second.Started.Sub(lastBeat).Round(time.Millisecond), 3*2*time.Second,
		tk.Segments[0].Ended.Sub(tk.Segments[0].Started).Round(time.Millisecond), tk.Parts, tk.Gap.Round(time.Millisecond))
	if d := second.Started.Sub(lastBeat); d > 10*time.Second {
		t.Errorf("takeover took %v, want under 10 s", d)
	}

	// A is fenced: a pause on A (its session still runs there) cannot write.
	if _, err := a.svc.Manager.Pause(ctx, "org1", "tk", ev.RecorderID, ev.InstanceID); err == nil {
		t.Error("A paused a recording B took over")
	}
	for deadline := time.Now().Add(20 * time.Second); ; { // A's session stops by itself
		if a.svc.Manager.ActiveCount() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("A's fenced session still runs")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The first segment ends STOPPED (recovered) by B, with what A uploaded.
	for deadline := time.Now().Add(30 * time.Second); ; {
		r, _ := b.svc.Manager.Get(ctx, "org1", "tk", ev.RecorderID, ev.InstanceID)
		if r != nil && r.State.Final() {
			first = r
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("first segment not final: %+v", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if first.State != recorder.StateStopped || first.Recovered.IsZero() || first.Paused {
		t.Errorf("first segment: state %s recovered %v paused %v, want STOPPED, recovered by B, not paused by A", first.State, first.Recovered, first.Paused)
	}
	// checkMixTone checks the mix.wav a recording uploaded to the shared
	// storage: at least min long, the tone over its middle.
	checkMixTone := func(r *recorder.Recording, what string, min time.Duration) {
		t.Helper()
		wav, err := os.ReadFile(filepath.Join(shared, filepath.FromSlash(r.Storage.Prefix+"mix.wav")))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		pcm := wavPCM(t, wav)
		t.Logf("%s: mix %v", what, time.Duration(len(pcm))*time.Second/8000)
		if time.Duration(len(pcm))*time.Second/8000 < min {
			t.Errorf("%s: mix of %d samples, want at least %v", what, len(pcm), min)
			return
		}
		if lv := mediatest.Goertzel(pcm[len(pcm)/4:len(pcm)*3/4], 8000, 440); lv < 1000 {
			t.Errorf("%s: 440 Hz amplitude %.0f over the mix's middle: want the tone", what, lv)
		}
	}
	checkMixTone(first, "first segment (A's parts, reassembled by B)", 2*time.Second)
	var msg RecordingDataMessage
	if st := b.do("GET", recPath(ev), key1, nil, &msg); st != 200 || msg.Takeover == nil || len(msg.Takeover.Segments) != 2 ||
		msg.Takeover.Segments[1].InstanceID != second.InstanceID || msg.Takeover.GapSeconds <= 0 || msg.Recovered == "" {
		t.Errorf("the first recording through the API: %d %+v", st, msg.Takeover)
	}
	// The second segment records the conference on B until stopped.
	time.Sleep(2 * time.Second)
	cont := RecordingDataEvent{ConversationID: "tk", RecorderID: b.svc.RecorderID, InstanceID: second.InstanceID}
	if st := b.do("POST", recPath(cont)+"/stop", key1, nil, nil); st != 200 {
		t.Fatalf("stop of the second segment on B: %d", st)
	}
	r2, err := b.svc.Manager.Get(ctx, "org1", "tk", b.svc.RecorderID, second.InstanceID)
	if err != nil || r2.State != recorder.StateStopped {
		t.Fatalf("second segment: %+v %v", r2, err)
	}
	checkMixTone(r2, "second segment (B)", 2*time.Second)
}

// TestFleet_RecordingsQuotaAcrossTheFleet: the quota of concurrent recordings
// (3 here) counts the recordings of every instance: ten starts at once, half
// through A and half through B, give exactly three recordings, in each of ten
// rounds; the others are 429.
func TestFleet_RecordingsQuotaAcrossTheFleet(t *testing.T) {
	dsn := pgtest.Start(t).NewDatabase(t)
	var hs []*harness
	for range 2 {
		cfg := testConfig(t.TempDir())
		cfg.Store.Driver, cfg.Store.DSN = "postgres", dsn
		cfg.Cluster.Heartbeat = time.Second
		cfg.Quotas.Recordings = 3
		hs = append(hs, startServiceConfig(t, cfg, nil))
	}
	for round := range 10 {
		var mu sync.Mutex
		var started []RecordingDataEvent
		statuses := map[int]int{}
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				conv := fmt.Sprintf("q%d-%d", round, i)
				ev, st := hs[i%2].start(key1, StartRecording{ApplicationID: "app1", ConferenceID: conv, ConversationID: conv})
				mu.Lock()
				defer mu.Unlock()
				statuses[st]++
				if st == 200 {
					started = append(started, ev)
				}
			}()
		}
		wg.Wait()
		if statuses[200] != 3 || statuses[429] != 7 {
			t.Fatalf("round %d: statuses %v, want 3 × 200 and 7 × 429 across the fleet", round, statuses)
		}
		for _, ev := range started {
			if st := hs[0].do("POST", recPath(ev)+"/stop", key1, nil, nil); st != 200 {
				t.Fatalf("stop: %d", st)
			}
		}
	}
}

// TestFleet_TakeoverKeepsPauseAndLinksSegments: a paused recording whose
// owner dies continues paused on the instance that takes it over (its mix
// silent until a resume there, the tone after), and a participant blacked
// out stays so (silent until the blackout stops); the continuation links
// back to the first segment, and both manifests list the two segments in
// order with their storage prefixes and offsets on the first one's timeline.
func TestFleet_TakeoverKeepsPauseAndLinksSegments(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	for _, held := range []string{"paused", "blacked out"} {
		t.Run(strings.ReplaceAll(held, " ", "_"), func(t *testing.T) { takeoverKeeps(t, held) })
	}
}

// takeoverKeeps is TestFleet_TakeoverKeepsPauseAndLinksSegments with the
// recording paused or its participant blacked out when its owner dies.
func takeoverKeeps(t *testing.T, held string) {
	sfu := wheptest.New(t, map[string]float64{"tp": 440})
	dsn := pgtest.Start(t).NewDatabase(t)
	shared := t.TempDir()
	var hs []*harness
	for range 2 {
		cfg := testConfig(t.TempDir())
		cfg.Store.Driver, cfg.Store.DSN = "postgres", dsn
		cfg.Cluster.Heartbeat = time.Second
		cfg.Uploads.ChunkInterval = time.Second
		cfg.Applications = map[string]*config.Application{
			"dial": {Conference: config.ConferenceConfig{Kind: "whep", URLTemplate: sfu.URL + "/c/{conferenceId}/whep"},
				Storage: &config.StorageProfile{Provider: config.ProviderLocal, Dir: shared}},
		}
		hs = append(hs, startServiceConfig(t, cfg, nil))
	}
	a, b := hs[0], hs[1]
	ctx := context.Background()
	ev, st := a.start(key1, StartRecording{ApplicationID: "dial", ConferenceID: "tp", ConversationID: "tp"})
	if st != 200 || ev.RecorderID != a.svc.RecorderID {
		t.Fatalf("start on A: %d %+v", st, ev)
	}
	time.Sleep(2 * time.Second)
	if held == "paused" {
		if st := a.do("POST", recPath(ev)+"/pause", key1, nil, nil); st != 200 {
			t.Fatalf("pause on A: %d", st)
		}
	} else if st := a.do("POST", "/api/blackouts/start", key1, map[string]any{"userId": "tp"}, nil); st != 200 {
		t.Fatalf("blackout on A: %d", st) // the WHEP stream's user is its conference
	}
	a.svc.Node.Stop() // A is cut off
	var tk *recorder.Takeover
	for deadline := time.Now().Add(30 * time.Second); tk == nil; time.Sleep(20 * time.Millisecond) {
		r, err := b.svc.Manager.Get(ctx, "org1", "tp", ev.RecorderID, ev.InstanceID)
		if err != nil {
			t.Fatal(err)
		}
		tk = r.Takeover
		if time.Now().After(deadline) {
			t.Fatal("no takeover within 30 s")
		}
	}
	if len(tk.Segments) != 2 {
		t.Fatalf("takeover %+v, want two segments", tk)
	}
	cont := RecordingDataEvent{ConversationID: "tp", RecorderID: b.svc.RecorderID, InstanceID: tk.Segments[1].InstanceID}
	var msg RecordingDataMessage
	if st := a.do("GET", recPath(cont), key1, nil, &msg); st != 200 || msg.State != "ACTIVE" || msg.Paused != (held == "paused") ||
		msg.Continues == nil || msg.Continues.InstanceID != ev.InstanceID || msg.Continues.RecorderID != ev.RecorderID {
		t.Fatalf("the continuation, read on A: %d %s paused %v continues %+v; want ACTIVE, paused if held so, linked to the first", st, msg.State, msg.Paused, msg.Continues)
	}
	time.Sleep(1500 * time.Millisecond)
	resumed := time.Now()
	if held == "paused" {
		if st := b.do("POST", recPath(cont)+"/resume", key1, nil, nil); st != 200 {
			t.Fatalf("resume of the continuation on B: %d", st)
		}
	} else if st := b.do("POST", "/api/blackouts/stop", key1, map[string]any{"userId": "tp"}, nil); st != 200 {
		t.Fatalf("blackout stop on B: %d", st)
	}
	time.Sleep(2 * time.Second)
	if st := b.do("POST", recPath(cont)+"/stop", key1, nil, nil); st != 200 {
		t.Fatalf("stop of the continuation on B: %d", st)
	}
	r2, err := b.svc.Manager.Get(ctx, "org1", "tp", b.svc.RecorderID, cont.InstanceID)
	if err != nil || r2.State != recorder.StateStopped || len(r2.Streams) != 1 {
		t.Fatalf("continuation %+v %v; want STOPPED with its stream", r2, err)
	}
	if held == "paused" && (len(r2.Pauses) != 1 || r2.Streams[0].Tracks[0].Started.Before(r2.Pauses[0].Start)) {
		t.Errorf("continuation's pauses %+v, want one begun before its track was added (%v)", r2.Pauses, r2.Streams[0].Tracks[0].Started)
	}
	// Its mix: silent while held (from its start to the resume or the
	// blackout's stop), the tone after.
	wav, err := os.ReadFile(filepath.Join(shared, filepath.FromSlash(r2.Storage.Prefix+"mix.wav")))
	if err != nil {
		t.Fatal(err)
	}
	pcm := wavPCM(t, wav)
	at := func(d time.Duration) int { return min(len(pcm), int(d*8000/time.Second)) }
	paused := resumed.Sub(r2.Started)
	if lv := mediatest.Goertzel(pcm[:at(paused-200*time.Millisecond)], 8000, 440); lv > 50 {
		t.Errorf("the continuation's mix holds 440 Hz at %.0f while %s (0–%v)", lv, held, paused)
	}
	after, dur := (paused + 500*time.Millisecond).Seconds(), float64(len(pcm))/8000
	if lv := mediatest.Goertzel(pcm[at(paused+500*time.Millisecond):], 8000, 440); lv < 1000 {
		t.Errorf("the continuation's mix after the resume: 440 Hz at %.0f, want the tone; per 200 ms:%s", lv, pitchTrace(toneWindows200(pcm, 440, after, dur)))
	}
	logResampled(t, "the continuation", 440, toneWindows200(pcm, 440, after, dur))
	// Both manifests list the segments; the continuation's links back.
	readManifest := func(prefix string) composition.Manifest {
		t.Helper()
		var man composition.Manifest
		b, err := os.ReadFile(filepath.Join(shared, filepath.FromSlash(prefix+composition.ManifestFile)))
		if err == nil {
			err = json.Unmarshal(b, &man)
		}
		if err != nil {
			t.Fatalf("manifest under %s: %v", prefix, err)
		}
		return man
	}
	var first *recorder.Recording
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		first, _ = b.svc.Manager.Get(ctx, "org1", "tp", ev.RecorderID, ev.InstanceID)
		if first != nil && first.State.Final() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("first segment not final: %+v", first)
		}
	}
	for _, man := range []composition.Manifest{readManifest(first.Storage.Prefix), readManifest(r2.Storage.Prefix)} {
		sg := man.Segments
		if len(sg) != 2 || sg[0].InstanceID != ev.InstanceID || sg[0].Prefix != first.Storage.Prefix || sg[0].Offset != 0 ||
			sg[1].InstanceID != cont.InstanceID || sg[1].RecorderID != b.svc.RecorderID || sg[1].Prefix != r2.Storage.Prefix ||
			math.Abs(sg[1].Offset-r2.Started.Sub(first.Started).Seconds()) > 1e-6 {
			t.Errorf("manifest of %s: segments %+v", man.InstanceID, sg)
		}
		if want := map[string]string{ev.InstanceID: "", cont.InstanceID: ev.InstanceID}[man.InstanceID]; man.Continues != want {
			t.Errorf("manifest of %s: continues %q, want %q", man.InstanceID, man.Continues, want)
		}
	}
}

// TestFleet_PinDeletedWhenRecordingsEnd: a WHIP conference is pinned to the
// instance that records it, and unpinned once its recording has ended (no
// publisher is connected), so that the id, reused, is placed afresh.
func TestFleet_PinDeletedWhenRecordingsEnd(t *testing.T) {
	dsn := pgtest.Start(t).NewDatabase(t)
	var hs []*harness
	for range 2 {
		cfg := testConfig(t.TempDir())
		cfg.Store.Driver, cfg.Store.DSN = "postgres", dsn
		cfg.Cluster.Heartbeat = time.Second
		hs = append(hs, startServiceConfig(t, cfg, nil))
	}
	a, b := hs[0], hs[1]
	ctx := context.Background()
	ev, st := b.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: "pz", ConversationID: "pz"})
	if st != 200 {
		t.Fatalf("start: %d", st)
	}
	owner := map[string]*harness{a.svc.RecorderID: a, b.svc.RecorderID: b}[ev.RecorderID]
	other := map[bool]*harness{true: b, false: a}[owner == a]
	if p, err := other.svc.Store.PinConference(ctx, "org1", "pz", other.svc.RecorderID); err != nil || p.RecorderID != owner.svc.RecorderID {
		t.Fatalf("pin while recording: %+v %v, want the recording's instance", p, err)
	}
	if st := other.do("POST", recPath(ev)+"/stop", key1, nil, nil); st != 200 {
		t.Fatalf("stop: %d", st)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		p, err := other.svc.Store.PinConference(ctx, "org1", "pz", other.svc.RecorderID)
		if err != nil {
			t.Fatal(err)
		}
		if p.RecorderID == other.svc.RecorderID {
			break // the old pin was gone: this one is new
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pin of a conference whose recording ended is still %+v", p)
		}
	}
}

// TestFleet_QuotasAcrossTheFleet (issue 12): the WHIP-session, event-stream
// and blackout quotas of an organization count every instance's. Each round
// sends more requests than the quota at once, half to A and half to B; in
// each of 20 rounds exactly the quota succeed (each instance alone would
// allow the quota, so twice as many), the rest get 429 quota_exceeded.
func TestFleet_QuotasAcrossTheFleet(t *testing.T) {
	dsn := pgtest.Start(t).NewDatabase(t)
	var hs []*harness
	for range 2 {
		cfg := twoOrgConfig(t.TempDir(), "")
		cfg.Store.Driver, cfg.Store.DSN = "postgres", dsn
		cfg.Cluster.Heartbeat = time.Second
		cfg.Quotas.WHIPSessions, cfg.Quotas.SSEConnections, cfg.Quotas.Blackouts = 3, 2, 3
		hs = append(hs, startServiceConfig(t, cfg, nil))
	}
	ctx := context.Background()
	leases := func(kind string) int {
		n, err := hs[0].svc.Store.Leases(ctx, "orgA", kind)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	offer := offerSDP(t)
	t.Run("whip", func(t *testing.T) {
		for round := range 20 {
			var created, refused atomic.Int32
			var mu sync.Mutex
			type session struct {
				h   *harness
				loc string
			}
			var open []session
			var wg sync.WaitGroup
			for i := range 8 {
				h := hs[i%2]
				wg.Go(func() {
					st, loc, reason := whipPost(t, h.url, fmt.Sprintf("fq%d-%d", round, i), "u", "MIC", keyA, offer)
					switch {
					case st == 201:
						created.Add(1)
						mu.Lock()
						open = append(open, session{h, loc})
						mu.Unlock()
					case st == 429 && reason == "quota_exceeded":
						refused.Add(1)
					default:
						t.Errorf("round %d: offer %d: %d %s", round, i, st, reason)
					}
				})
			}
			wg.Wait()
			if created.Load() != 3 || refused.Load() != 5 {
				t.Fatalf("round %d: %d created, %d refused; want 3 and 5", round, created.Load(), refused.Load())
			}
			for _, s := range open {
				if st := whipDelete(t, s.h.url, s.loc, keyA); st != 200 {
					t.Fatalf("round %d: DELETE %s: %d", round, s.loc, st)
				}
			}
			waitFor(t, 10*time.Second, func() bool { return leases(recorder.QuotaWHIP) == 0 })
		}
	})
	t.Run("sse", func(t *testing.T) {
		for round := range 20 {
			ctx, cancel := context.WithCancel(context.Background())
			bodies, refused := openEventStreams(t, ctx, keyA, 6, hs[0].url, hs[1].url)
			if len(bodies) != 2 || refused != 4 {
				cancel()
				t.Fatalf("round %d: %d open, %d refused; want 2 and 4", round, len(bodies), refused)
			}
			for _, b := range bodies {
				b.Close()
			}
			cancel()
			waitFor(t, 10*time.Second, func() bool { return leases(recorder.QuotaSSE) == 0 })
		}
	})
	t.Run("blackouts", func(t *testing.T) {
		for round := range 20 {
			var ok, refused atomic.Int32
			var wg sync.WaitGroup
			for i := range 8 {
				h := hs[i%2]
				wg.Go(func() {
					var e ErrorMessage
					st := h.do("POST", "/api/blackouts/start", keyA, fmt.Sprintf(`{"userId":"u%d"}`, i), &e)
					switch {
					case st == 200:
						ok.Add(1)
					case st == 429 && e.Reason == "quota_exceeded":
						refused.Add(1)
					default:
						t.Errorf("round %d: blackout %d: %d %+v", round, i, st, e)
					}
				})
			}
			wg.Wait()
			if ok.Load() != 3 || refused.Load() != 5 {
				t.Fatalf("round %d: %d started, %d refused; want 3 and 5", round, ok.Load(), refused.Load())
			}
			for i := range 8 {
				hs[i%2].do("POST", "/api/blackouts/stop", keyA, fmt.Sprintf(`{"userId":"u%d"}`, i), nil)
			}
			// The stops reach both instances, and the places come back.
			waitFor(t, 10*time.Second, func() bool {
				if leases(recorder.QuotaBlackout) != 0 {
					return false
				}
				for _, h := range hs {
					for i := range 8 {
						var p ParticipantMessage
						if h.do("GET", fmt.Sprintf("/api/participants/u%d", i), keyA, nil, &p); p.Blackout != nil && p.Blackout.Active {
							return false
						}
					}
				}
				return true
			})
		}
	})
}
