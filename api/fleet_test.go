package api

import (
	"context"
	"testing"
	"time"

	"github.com/rtcrec/recorder/internal/pgtest"
	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/recorder/conference/whip"
)

// startFleet runs n services on one PostgreSQL database, each with its own
// data directory (and so its own recorderId), with 100 ms heartbeats.
func startFleet(t *testing.T, n int) []*harness {
	t.Helper()
	dsn := pgtest.Start(t).NewDatabase(t)
	var hs []*harness
	for range n {
		cfg := testConfig(t.TempDir())
		cfg.Store.Driver, cfg.Store.DSN = "postgres", dsn
		cfg.Cluster.Heartbeat = 100 * time.Millisecond
		hs = append(hs, startServiceConfig(t, cfg, nil))
	}
	return hs
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
	p, err := synth.Join(ctx, a.whipClient(key1), whip.Endpoint(a.url, "fwd-conf", "alice", "MIC"), "fwd", 440)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Leave(context.Background())
	ev, st := a.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: "fwd-conf", ConversationID: "fwd"})
	if st != 200 || ev.RecorderID != a.svc.RecorderID {
		t.Fatalf("start on A: %d %+v", st, ev)
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
// heart-beating is a 503 that names the owner, not a hang.
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
	p, err := synth.Join(ctx, b.whipClient(key1), whip.Endpoint(b.url, "bo-conf", "agent7", "MIC"), "agent7", 660)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Leave(context.Background())
	ev, st := b.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: "bo-conf", ConversationID: "bo"})
	if st != 200 {
		t.Fatalf("start on B: %d", st)
	}
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
