package main

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/rtcrec/recorder/api"
	"github.com/rtcrec/recorder/internal/pgtest"
	"github.com/rtcrec/recorder/recorder/conference/whip"
	"github.com/rtcrec/recorder/recorder/conference/whip/whiptest"
)

const fleetKey = "fleet-key-0123456789"

// startFleetProcesses runs n `recorder serve` processes on one PostgreSQL
// database, each with its own data directory (so its own recorderId).
func startFleetProcesses(t *testing.T, n int) []*server {
	t.Helper()
	dsn := pgtest.Start(t).NewDatabase(t)
	var out []*server
	for range n {
		dir := t.TempDir()
		writeConfig(t, dir, fmt.Sprintf("apiKeys: [{key: %s, organizationId: org1, applications: [\"*\"]}]\n"+
			"store: {driver: postgres, dsn: %q}\ncluster: {heartbeat: 1s}\n", fleetKey, dsn))
		out = append(out, serveProcess(t, dir))
	}
	return out
}

// TestFleet_ThreeProcesses: three recorder processes share one PostgreSQL.
// A recording of a real WHIP publisher is started on A; C pauses it, adds
// metadata and stops it (each forwarded to A and answered as A would); B
// reads it from the shared store at every step. The latency of a metadata
// command served by A itself and forwarded from C is logged (median of 20).
func TestFleet_ThreeProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes")
	}
	fleet := startFleetProcesses(t, 3)
	a, b, c := fleet[0], fleet[1], fleet[2]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	wapi, closeFn, err := whip.NewAPI(whip.Settings{LoopbackOnly: true, UDP4Only: true})
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	p, err := whiptest.Join(ctx, &whip.Client{API: wapi, Token: fleetKey}, whip.Endpoint(a.url, "f", "u", "MIC"), "u", 440)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Leave(context.Background())
	var ev api.RecordingDataEvent
	if st := call(t, "POST", a.url+"/api/recordings/start", fleetKey, api.StartRecording{ApplicationID: "a", ConferenceID: "f", ConversationID: "c"}, &ev); st != 200 {
		t.Fatalf("start on A: %d", st)
	}
	path := "/api/recordings/c/" + ev.RecorderID + "/" + ev.InstanceID
	var got api.RecordingDataEvent
	if st := call(t, "POST", c.url+path+"/pause", fleetKey, nil, &got); st != 200 || !got.Paused {
		t.Fatalf("pause on C: %d %+v", st, got)
	}
	got = api.RecordingDataEvent{}
	if st := call(t, "GET", b.url+path+"/state", fleetKey, nil, &got); st != 200 || got.State != "ACTIVE" || !got.Paused || got.RecorderID != ev.RecorderID {
		t.Errorf("state read on B: %d %+v, want ACTIVE and paused", st, got)
	}
	md := map[string]any{"metadata": map[string]string{"ticket": "T-1"}}
	var mdReply struct {
		Metadata map[string]string `json:"metadata"`
	}
	if st := call(t, "POST", c.url+path+"/metadata", fleetKey, md, &mdReply); st != 200 || mdReply.Metadata["ticket"] != "T-1" {
		t.Fatalf("metadata on C: %d %+v", st, mdReply)
	}
	// A blackout sent to C silences u in A's recording.
	sent := time.Now()
	if st := call(t, "POST", c.url+"/api/blackouts/start", fleetKey, map[string]any{"userId": "u"}, nil); st != 200 {
		t.Fatalf("blackout on C: %d", st)
	}
	for {
		var part api.ParticipantMessage
		// (The recording is paused, so its RecordingState says Paused.)
		if st := call(t, "GET", a.url+"/api/participants/u", fleetKey, nil, &part); st == 200 && part.Blackout != nil &&
			part.Blackout.Active && len(part.Blackout.Recordings) == 1 && part.Blackout.Recordings[0] == ev.InstanceID {
			break
		}
		if time.Since(sent) > 10*time.Second {
			t.Fatal("the blackout sent to C never reached A's recording")
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("blackout sent to C in force in A's recording after %v (including A's API read)", time.Since(sent))
	if st := call(t, "POST", b.url+"/api/blackouts/stop", fleetKey, map[string]any{"userId": "u"}, nil); st != 200 {
		t.Fatalf("blackout stop on B: %d", st)
	}
	local, forwarded := commandLatency(t, a.url+path+"/metadata"), commandLatency(t, c.url+path+"/metadata")
	t.Logf("metadata command latency, median of 20: served by the owner %v, forwarded from another instance %v", local, forwarded)

	got = api.RecordingDataEvent{}
	if st := call(t, "POST", c.url+path+"/stop", fleetKey, nil, &got); st != 200 || got.State != "STOPPED" {
		t.Fatalf("stop on C: %d %+v", st, got)
	}
	var msg api.RecordingDataMessage
	if st := call(t, "GET", b.url+path, fleetKey, nil, &msg); st != 200 || msg.State != "STOPPED" || len(msg.Streams) == 0 {
		t.Errorf("recording read on B after the stop: %d %+v", st, msg)
	}
	if u, err := url.Parse(msg.Streams[0].Tracks[0].URL); err != nil || u.Host == "" {
		t.Errorf("track URL %q", msg.Streams[0].Tracks[0].URL)
	}
	for _, s := range fleet {
		s.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, s := range fleet {
		if code := s.wait(t, 30*time.Second); code != 0 {
			t.Errorf("exit code %d", code)
		}
	}
}

// commandLatency returns the median time of 20 metadata updates at u.
func commandLatency(t *testing.T, u string) time.Duration {
	t.Helper()
	var ds []time.Duration
	for i := range 20 {
		start := time.Now()
		if st := call(t, "POST", u, fleetKey, map[string]any{"metadata": map[string]string{"n": fmt.Sprint(i)}}, nil); st != 200 {
			t.Fatalf("metadata at %s: %d", u, st)
		}
		ds = append(ds, time.Since(start))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}
