package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rtcrec/recorder/api"
	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/internal/pgtest"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/recorder/conference/janus/janustest"
)

// takeoverChunk is the upload interval of the takeover test: what the owner
// recorded in its last interval before the kill is lost (issue 13: "at most
// one upload interval").
const takeoverChunk = time.Second

// TestFleet_KillNineTakesOverAJanusRecording: three `recorder serve`
// processes share one PostgreSQL and one storage; a Janus room with a real
// Pion publisher (440 Hz) is recorded by A. A is killed with SIGKILL mid
// recording. One survivor takes the recording over within the fleet's lease
// (default heartbeats: dead after 6 s; under 10 s in all), the other reads it
// from the store throughout: every GET on both survivors answers 200 from
// the kill to the end. The first recording ends STOPPED, recovered, with the
// two segments and the gap; its audio (reassembled from A's parts) holds the
// tone up to within one upload interval of the kill, the continuation holds
// it from its start to its stop, and the gap between them is no longer than
// the takeover time plus that interval.
func TestFleet_KillNineTakesOverAJanusRecording(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes")
	}
	srv := janustest.Start(t) // fails under CI without the namespace
	srv.CreateRoom(t, "4004")
	srv.Publish(t, "4004", "erin", 440, "MIC")

	dsn := pgtest.Start(t).NewDatabase(t)
	shared := t.TempDir() // the storage every instance uploads to
	var fleet []*server
	for range 3 {
		dir := t.TempDir()
		cfg := fmt.Sprintf("listen: 127.0.0.1:0\ndataDir: %s\n"+
			"webrtc: {includeLoopback: true, interfaces: [%s]}\n"+
			"apiKeys: [{key: %s, organizationId: org1, applications: [\"*\"]}]\n"+
			"store: {driver: postgres, dsn: %q}\n"+
			"uploads: {chunkInterval: %s}\n"+
			"applications:\n  jan:\n    conference: {kind: janus, url: %q}\n    storage: {provider: LOCAL, dir: %q}\n",
			filepath.Join(dir, "data"), janustest.Interface, fleetKey, dsn, takeoverChunk, srv.URL, shared)
		if err := os.WriteFile(filepath.Join(dir, "recorder.yaml"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		fleet = append(fleet, serveProcess(t, dir))
	}
	var ev api.RecordingDataEvent
	if st := call(t, "POST", fleet[0].url+"/api/recordings/start", fleetKey,
		api.StartRecording{ApplicationID: "jan", ConferenceID: "4004", ConversationID: "kn"}, &ev); st != 200 || ev.State != "ACTIVE" {
		t.Fatalf("start: %d %+v", st, ev)
	}
	var owner *server
	var survivors []*server
	for _, s := range fleet {
		if s.id == ev.RecorderID {
			owner = s
		} else {
			survivors = append(survivors, s)
		}
	}
	if owner == nil {
		t.Fatalf("the recording runs on %s, none of the processes", ev.RecorderID)
	}
	path := "/api/recordings/kn/" + ev.RecorderID + "/" + ev.InstanceID
	// The owner records erin, and uploads parts of her track to the shared
	// storage, for about 4.5 s (mid-way between two uploads).
	var msg api.RecordingDataMessage
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		msg = api.RecordingDataMessage{}
		call(t, "GET", owner.url+path, fleetKey, nil, &msg)
		if len(msg.Streams) > 0 && len(msg.Streams[0].Tracks) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the owner never subscribed to erin: %+v", msg)
		}
	}
	started, err := time.Parse(time.RFC3339Nano, msg.Started)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(started.Add(4500 * time.Millisecond)))
	if err := owner.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	owner.wait(t, 10*time.Second)
	t.Logf("owner %s killed %.2f s after the recording started", owner.id, killed.Sub(started).Seconds())

	// Both survivors answer for the recording all along: 200 on every read,
	// polled every 100 ms, until it is final.
	var mu sync.Mutex
	var final api.RecordingDataMessage
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for _, s := range survivors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				var m api.RecordingDataMessage
				if st := call(t, "GET", s.url+path, fleetKey, nil, &m); st != 200 {
					errs <- fmt.Sprintf("GET on %s %.1f s after the kill: %d", s.id, time.Since(killed).Seconds(), st)
				}
				if m.State == "STOPPED" || m.State == "FAILED" {
					mu.Lock()
					final = m
					mu.Unlock()
					return
				}
				if time.Now().After(deadline) {
					errs <- fmt.Sprintf("%s: the recording is %s a minute after the kill", s.id, m.State)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if t.Failed() {
		t.FailNow()
	}
	tk := final.Takeover
	if final.State != "STOPPED" || final.Recovered == "" || tk == nil || tk.From != owner.id || len(tk.Segments) != 2 || tk.Parts == 0 {
		t.Fatalf("the first recording after the takeover: %s, recovered %q, takeover %+v", final.State, final.Recovered, tk)
	}
	var by, other *server
	for _, s := range survivors {
		if s.id == tk.By {
			by = s
		} else {
			other = s
		}
	}
	if by == nil || tk.Segments[1].RecorderID != by.id {
		t.Fatalf("taken over by %s (second segment on %s), not a survivor", tk.By, tk.Segments[1].RecorderID)
	}
	seg1End, err1 := time.Parse(time.RFC3339Nano, tk.Segments[0].Ended)
	seg2Start, err2 := time.Parse(time.RFC3339Nano, tk.Segments[1].Started)
	if err1 != nil || err2 != nil {
		t.Fatalf("segment times: %v %v", err1, err2)
	}
	takeover := seg2Start.Sub(killed)
	lost := killed.Sub(seg1End)
	gap := time.Duration(tk.GapSeconds * float64(time.Second))
	t.Logf("takeover by %s: kill → second segment ACTIVE %v; first segment %v of audio from %d parts, ends %v before the kill; gap %v",
		by.id, takeover.Round(time.Millisecond), seg1End.Sub(started).Round(time.Millisecond), tk.Parts, lost.Round(time.Millisecond), gap.Round(time.Millisecond))
	if takeover > 10*time.Second {
		t.Errorf("takeover took %v after the kill, want under 10 s", takeover)
	}
	// What the owner had not uploaded is lost: at most one upload interval
	// plus the writers' one-second flush (recorder/chunks.go).
	if lost > takeoverChunk+time.Second {
		t.Errorf("the first segment ends %v before the kill: more than one upload interval (%v) and the 1 s write buffer lost", lost, takeoverChunk)
	}
	if gap > takeover+takeoverChunk+time.Second {
		t.Errorf("gap %v, want at most the takeover time %v plus what was not uploaded", gap, takeover)
	}
	// Exactly one continuation: the other survivor started none.
	var conv api.ConversationMessage
	if st := call(t, "GET", other.url+"/api/recordings/kn", fleetKey, nil, &conv); st != 200 || len(conv.Recordings) != 2 ||
		conv.Recordings[0].RecorderID != owner.id || conv.Recordings[1].RecorderID != by.id {
		t.Fatalf("recordings of the conversation read on %s: %d %+v, want the first and one continuation", other.id, st, conv.Recordings)
	}

	// The continuation records erin on its instance; stopped through the
	// other survivor (forwarded).
	time.Sleep(time.Until(seg2Start.Add(3 * time.Second)))
	path2 := "/api/recordings/kn/" + by.id + "/" + tk.Segments[1].InstanceID
	var stopped api.RecordingDataEvent
	if st := call(t, "POST", other.url+path2+"/stop", fleetKey, nil, &stopped); st != 200 || stopped.State != "STOPPED" {
		t.Fatalf("stop of the continuation through %s: %d %+v", other.id, st, stopped)
	}
	stopAt := time.Now()

	// By content: each segment's mix and track (the truth) hold the tone over
	// all they cover; the first up to the kill less what the owner had not
	// uploaded.
	checkSegment := func(what, instanceID string, recorded time.Duration) {
		t.Helper()
		var man composition.Manifest
		if err := json.Unmarshal(readObject(t, shared, instanceID, composition.ManifestFile), &man); err != nil {
			t.Fatal(err)
		}
		if len(man.Tracks) != 1 {
			t.Fatalf("%s: manifest tracks %+v, want erin's", what, man.Tracks)
		}
		checkTone(t, what+": mix", wavSamples(t, readObject(t, shared, instanceID, composition.MixFile)), 440, 0, recorded)
		tr := man.Tracks[0]
		file := filepath.Join(t.TempDir(), filepath.Base(tr.File))
		if err := os.WriteFile(file, readObject(t, shared, instanceID, tr.File), 0o600); err != nil {
			t.Fatal(err)
		}
		checkTone(t, what+": "+tr.File, mediatest.Decode(t, file, 8000), 440, time.Duration(tr.Offset*float64(time.Second)), recorded)
	}
	// checkTone allows a second before recorded: the writers' flush.
	checkSegment("first segment (the owner's parts)", ev.InstanceID, killed.Sub(started)-takeoverChunk)
	checkSegment("second segment", tk.Segments[1].InstanceID, stopAt.Sub(seg2Start))
}

// readObject returns the object rel of recording instanceID in the LOCAL
// storage at root.
func readObject(t *testing.T, root, instanceID, rel string) []byte {
	t.Helper()
	var found string
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(filepath.ToSlash(path), "/"+instanceID+"/"+rel) {
			found = path
		}
		return nil
	})
	b, err := os.ReadFile(found)
	if err != nil {
		t.Fatalf("%s of %s in storage: %v", rel, instanceID, err)
	}
	return b
}
