package main

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rtcrec/recorder/api"
)

// writeConfig writes dir/recorder.yaml: the serveProcess defaults plus extra YAML.
func writeConfig(t *testing.T, dir, extra string) {
	t.Helper()
	cfg := "listen: 127.0.0.1:0\ndataDir: " + filepath.Join(dir, "data") +
		"\nwebrtc:\n  includeLoopback: true\n  interfaces: [lo]\n" + extra
	if err := os.WriteFile(filepath.Join(dir, "recorder.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestServe_DrainWaitsThenStops: with shutdown {policy: wait, deadline: 3s}
// the first SIGTERM makes /readyz and new starts answer 503 shutting_down
// at once, lets the running recording go on until the deadline, then stops
// it, uploads it and exits 0; the recording is STOPPED (not recovered) and
// about as long as the deadline.
func TestServe_DrainWaitsThenStops(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	dir := t.TempDir()
	writeConfig(t, dir, "shutdown:\n  policy: wait\n  deadline: 3s\n  timeout: 30s\n")
	s := serveProcess(t, dir)
	key := readKey(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ev, _ := recordWithProcess(t, ctx, s, key)
	if st := call(t, "GET", s.url+"/readyz", "", nil, nil); st != 200 {
		t.Fatalf("readyz before the signal: %d", st)
	}
	time.Sleep(time.Second) // the scenario: a second of the recording before the signal (the composition's length is checked)
	signalled := time.Now()
	s.cmd.Process.Signal(syscall.SIGTERM)
	var e struct{ Reason string }
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if call(t, "GET", s.url+"/readyz", "", nil, &e) == 503 {
			break
		}
	}
	if e.Reason != "shutting_down" {
		t.Errorf("readyz while draining: reason %q, want 503 shutting_down", e.Reason)
	}
	e.Reason = ""
	st := call(t, "POST", s.url+"/api/recordings/start", key, api.StartRecording{ApplicationID: "a", ConferenceID: "f2", ConversationID: "c2"}, &e)
	if st != 503 || e.Reason != "shutting_down" {
		t.Errorf("start while draining: %d %q, want 503 shutting_down", st, e.Reason)
	}
	var during api.RecordingDataEvent
	if call(t, "GET", s.url+"/api/recordings/c/"+ev.RecorderID+"/"+ev.InstanceID+"/state", key, nil, &during); during.State != "ACTIVE" {
		t.Errorf("under policy wait the recording is %s right after the signal, want ACTIVE", during.State)
	}
	if code := s.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d\n%s", code, s.stderr)
	}
	took := time.Since(signalled)
	if took < 3*time.Second {
		t.Errorf("exited %v after the signal, before the 3 s deadline", took)
	}
	s2 := serveProcess(t, dir)
	var msg api.RecordingDataMessage
	call(t, "GET", s2.url+"/api/recordings/c/"+ev.RecorderID+"/"+ev.InstanceID, key, nil, &msg)
	if msg.State != "STOPPED" || msg.Recovered != "" || len(msg.Streams) != 1 || msg.Streams[0].Tracks[0].URL == "" {
		t.Errorf("after the drain: %+v", msg)
	}
	var comp api.RecordingDataMessage
	call(t, "GET", s2.url+"/api/compositions/c", key, nil, &comp)
	if comp.Composition == nil || len(comp.Composition.Outputs) != 1 || comp.Composition.Outputs[0].Duration < 3.5 {
		t.Errorf("composition after the drain (want ≥ 3.5 s: 1 s before the signal, 3 s of wait): %+v", comp.Composition)
	}
}

// TestServe_SecondSignalExitsAtOnce: under a long wait policy a second
// SIGTERM exits at once; the next start recovers the recording.
func TestServe_SecondSignalExitsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	dir := t.TempDir()
	writeConfig(t, dir, "shutdown:\n  policy: wait\n  deadline: 5m\n")
	s := serveProcess(t, dir)
	key := readKey(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ev, p := recordWithProcess(t, ctx, s, key)
	// The recording has audio on disk, which the recovery finds after the
	// second signal's exit.
	waitTrackOnDisk(t, filepath.Join(dir, "data", "recordings"))
	s.cmd.Process.Signal(syscall.SIGTERM)
	// Go's runtime folds a signal that arrives while the same one is still
	// pending into it, so the second is sent only once the first was taken
	// (its log line); under load that took 0.85 s, and a second signal sent
	// 0.5 s after the first was lost.
	for deadline := time.Now().Add(30 * time.Second); len(s.stderr.Lines("signal received")) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no log of the first signal within 30 s\n%s", s.stderr)
		}
	}
	second := time.Now()
	s.cmd.Process.Signal(syscall.SIGTERM)
	if code := s.wait(t, 5*time.Second); code == 0 {
		t.Errorf("exit code 0 after a second signal, want non-zero")
	}
	t.Logf("exited %v after the second signal", time.Since(second).Round(time.Millisecond))
	p.Leave(ctx)
	s2 := serveProcess(t, dir)
	var msg api.RecordingDataMessage
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		call(t, "GET", s2.url+"/api/recordings/c/"+ev.RecorderID+"/"+ev.InstanceID, key, nil, &msg)
		if msg.State == "STOPPED" || msg.State == "FAILED" {
			break
		}
	}
	if msg.State != "STOPPED" || msg.Recovered == "" {
		t.Errorf("after a second signal and a restart: state %s, recovered %q", msg.State, msg.Recovered)
	}
}
