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
