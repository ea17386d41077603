package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rtcrec/recorder/api"
	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/internal/contract"
	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/media/wavwriter"
	"github.com/rtcrec/recorder/recorder/conference/janus/janustest"
	"github.com/rtcrec/recorder/recorder/conference/whip"
	"github.com/rtcrec/recorder/recorder/conference/whip/whiptest"
	"github.com/rtcrec/recorder/storage"
)

var recorderBin string

// TestMain builds the binary the tests run (or takes $RECORDER_BIN: another
// build, such as an older commit's, to measure against the same tests), and
// runs them in the private network namespace Janus needs (janustest.Main; as
// root, else in place).
func TestMain(m *testing.M) {
	os.Exit(janustest.Main(func() int {
		dir, err := os.MkdirTemp("", "recorder-bin-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		recorderBin = filepath.Join(dir, "recorder")
		if b := os.Getenv("RECORDER_BIN"); b != "" {
			recorderBin = b
			return m.Run()
		}
		if out, err := exec.Command("go", "build", "-race", "-o", recorderBin, ".").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}))
}

// server is a `recorder serve` process.
type server struct {
	cmd    *exec.Cmd
	url    string
	id     string // its recorderId
	stderr *logBuffer
	done   chan error
}

// logBuffer holds a process's log; it may be read while the process writes.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Lines returns the log lines that contain any of words.
func (b *logBuffer) Lines(words ...string) []string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		for _, w := range words {
			if strings.Contains(l, w) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

var listening = regexp.MustCompile(`recorder listening"? url=(\S+) recorderId=(\S+)`)

// serveProcess starts `recorder serve --config` on a config in dir.
func serveProcess(t *testing.T, dir string) *server {
	t.Helper()
	cfg := filepath.Join(dir, "recorder.yaml")
	if _, err := os.Stat(cfg); err != nil {
		os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\ndataDir: "+filepath.Join(dir, "data")+
			"\nwebrtc:\n  includeLoopback: true\n  interfaces: [lo]\n"), 0o600)
	}
	cmd := exec.Command(recorderBin, "serve", "--config", cfg)
	pr, pw := io.Pipe()
	s := &server{cmd: cmd, stderr: &logBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			s.stderr.WriteString(line + "\n")
			if m := listening.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1:]:
				default:
				}
			}
		}
	}()
	go func() { s.done <- cmd.Wait(); pw.Close() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-s.done
		}
	})
	select {
	case m := <-found:
		s.url, s.id = m[0], m[1]
	case err := <-s.done:
		t.Fatalf("serve exited: %v\n%s", err, s.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not start\n%s", s.stderr)
	}
	return s
}

// wait waits for the process to exit and returns its exit code.
func (s *server) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-s.done:
		return s.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		t.Fatalf("serve did not exit within %v\n%s", d, s.stderr)
	}
	return -1
}

// call makes one API request of a `recorder serve` process; the exchange is
// validated against api/openapi.json when the test ends (checkedClient).
func call(t *testing.T, method, url, key string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Authorization", key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := checkedClient(t, req.URL).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// contractDoc is api/openapi.json, loaded once.
var contractDoc = sync.OnceValues(func() (*contract.Doc, error) { return contract.Load(api.OpenAPIDocument()) })

// checkedClients are the HTTP clients of checkedClient, one per test and
// server.
var checkedClients = struct {
	sync.Mutex
	m map[checkedKey]*http.Client
}{m: map[checkedKey]*http.Client{}}

type checkedKey struct {
	t      *testing.T
	server string
}

// checkedClient returns t's HTTP client for the server of u: every exchange
// with it is validated against api/openapi.json when t ends
// (internal/contract), as the api tests' exchanges are.
func checkedClient(t *testing.T, u *url.URL) *http.Client {
	t.Helper()
	k := checkedKey{t, u.Scheme + "://" + u.Host}
	checkedClients.Lock()
	defer checkedClients.Unlock()
	if c := checkedClients.m[k]; c != nil {
		return c
	}
	doc, err := contractDoc()
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: contract.Transport(t, doc, k.server, nil)}
	checkedClients.m[k] = c
	t.Cleanup(func() {
		checkedClients.Lock()
		delete(checkedClients.m, k)
		checkedClients.Unlock()
	})
	return c
}

func TestServe_GeneratesKeyOnce(t *testing.T) {
	dir := t.TempDir()
	s := serveProcess(t, dir)
	key, err := os.ReadFile(filepath.Join(dir, "data", "api-key"))
	if err != nil {
		t.Fatal(err)
	}
	k := strings.TrimSpace(string(key))
	if !strings.Contains(s.stderr.String(), k) {
		t.Errorf("the generated key is not printed on first start:\n%s", s.stderr)
	}
	if st := call(t, "GET", s.url+"/api/recordings/none", k, nil, nil); st != 404 {
		t.Errorf("with the generated key: %d, want 404", st)
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	if code := s.wait(t, 20*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
	s2 := serveProcess(t, dir)
	if strings.Contains(s2.stderr.String(), k) {
		t.Errorf("the key is printed again on the second start")
	}
	if st := call(t, "GET", s2.url+"/api/recordings/none", k, nil, nil); st != 404 {
		t.Errorf("with the persisted key after restart: %d, want 404", st)
	}
}

// recordWithProcess starts a recording of one participant on a serve process.
func recordWithProcess(t *testing.T, ctx context.Context, s *server, key string) (api.RecordingDataEvent, *whiptest.Participant) {
	t.Helper()
	wapi, closeFn, err := whip.NewAPI(whip.Settings{LoopbackOnly: true, UDP4Only: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeFn() })
	p, err := whiptest.Join(ctx, &whip.Client{API: wapi, Token: key}, whip.Endpoint(s.url, "f", "u", "MIC"), "u", 440)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Leave(context.Background()) })
	var ev api.RecordingDataEvent
	if st := call(t, "POST", s.url+"/api/recordings/start", key, api.StartRecording{ApplicationID: "a", ConferenceID: "f", ConversationID: "c"}, &ev); st != 200 {
		t.Fatalf("start: %d", st)
	}
	return ev, p
}

// waitMetric waits until the recorder's metric name (a counter, without
// labels) reaches v, for 30 s at most.
func waitMetric(t *testing.T, s *server, name string, v float64) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got := recorderMetrics(t, s)[name]
		if got >= v {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v after 30 s, want %v", name, got, v)
		}
	}
}

// waitTrackOnDisk waits until a track file under root (in a tracks
// directory) holds audio on disk: it grew past the size it had when it
// first held anything (its headers, or a first flush), by a writer's flush;
// for 30 s at most.
func waitTrackOnDisk(t *testing.T, root string) {
	t.Helper()
	var first int64
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var size int64
		filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && filepath.Base(filepath.Dir(path)) == "tracks" {
				if fi, err := d.Info(); err == nil {
					size = max(size, fi.Size())
				}
			}
			return nil
		})
		if first == 0 {
			first = size
		} else if size > first {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no track file under %s grew on disk in 30 s (%d bytes)", root, size)
		}
	}
}

// TestServe_SIGTERMFinishesRecordings: the first SIGTERM stops the running
// recording, writes and uploads its files, then exits 0.
func TestServe_SIGTERMFinishesRecordings(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	dir := t.TempDir()
	s := serveProcess(t, dir)
	key := readKey(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ev, _ := recordWithProcess(t, ctx, s, key)
	waitMetric(t, s, "recorder_track_packets_written_total", 25) // the track is recorded: half a second of it written
	s.cmd.Process.Signal(syscall.SIGTERM)
	if code := s.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d\n%s", code, s.stderr)
	}
	s2 := serveProcess(t, dir)
	var msg api.RecordingDataMessage
	call(t, "GET", s2.url+"/api/recordings/c/"+ev.RecorderID+"/"+ev.InstanceID, key, nil, &msg)
	if msg.State != "STOPPED" || msg.Recovered != "" || len(msg.Streams) != 1 || msg.Streams[0].Tracks[0].URL == "" {
		t.Errorf("after SIGTERM and restart: %+v", msg)
	}
}

// TestServe_RecoversAfterKill: a recording running when the process is
// killed is found at the next start and finished: STOPPED, recovered, with
// its files uploaded, and its mix rebuilt from the track files. A second
// participant joins and its network stalls half a second later (a relay
// drops its packets from then on): the live mixer waits the latency budget
// (5 s) for it, so when the process is killed 2 s into the stall its mix.wav
// holds nothing after the stall, while the first participant's track file
// holds its tone up to about the kill. The recovered mix must hold that tone
// wherever the track file does (failed before recovery completed the mix
// from the tracks: the mix ended at the stall), and the recovered manifest
// the running track's time zero (stored once settled; failed before: none).
func TestServe_RecoversAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	const freq, stalledFreq = 440.0, 660.0
	opus, err := mediatest.OpusTone(testenv.LookPath(t, "ffmpeg"), t.TempDir(), stalledFreq, 8)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := serveProcess(t, dir)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the killed recorder's log:\n%s", s.stderr)
		}
	})
	key := readKey(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ev, p := recordWithProcess(t, ctx, s, key)
	var st api.RecordingDataMessage
	call(t, "GET", s.url+"/api/recordings/c/"+ev.RecorderID+"/"+ev.InstanceID, key, nil, &st)
	started, err := time.Parse(time.RFC3339Nano, st.Started)
	if err != nil {
		t.Fatalf("started %q: %v", st.Started, err)
	}
	stalled := make(chan struct{})
	var stall sync.Once
	stopStalled := publishOnSchedule(t, ctx, s, key, "f", "stalled", opus, time.Time{}, 20*time.Millisecond,
		func(_ int, elapsed time.Duration) (time.Duration, bool, bool) {
			if elapsed < 500*time.Millisecond {
				return 0, false, false
			}
			stall.Do(func() { close(stalled) })
			return 0, true, false
		})
	select {
	case <-stalled:
	case <-ctx.Done():
		// The relay calls the schedule per RTP packet it relays, timed from
		// the first: none relayed 0.5 s of audio (CI, session 13: ICE
		// nominated a pair around the relay; see relayTransport). The
		// publisher's path is printed (publishThrough).
		t.Fatal("the second participant sent nothing through its relay")
	}
	time.Sleep(2 * time.Second) // the recording goes on, its mix held back by the stalled input
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	recorded := time.Since(started)
	s.wait(t, 10*time.Second)
	p.Leave(ctx)
	stopStalled()
	t.Logf("killed %.2f s after the recording started", recorded.Seconds())

	s2 := serveProcess(t, dir)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the restarted recorder's log:\n%s", s2.stderr)
		}
	})
	var msg api.RecordingDataMessage
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		call(t, "GET", s2.url+"/api/recordings/c/"+ev.RecorderID+"/"+ev.InstanceID, key, nil, &msg)
		if msg.State == "STOPPED" || msg.State == "FAILED" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if msg.State != "STOPPED" || msg.Recovered == "" {
		t.Fatalf("after kill and restart: %+v", msg)
	}
	var comp api.RecordingDataMessage
	call(t, "GET", s2.url+"/api/compositions/c", key, nil, &comp)
	if comp.Composition == nil || len(comp.Composition.Outputs) != 1 || comp.Composition.Outputs[0].Duration < 1.5 {
		t.Errorf("recovered composition: %+v", comp.Composition)
	}
	// The tone by content: in the track file up to within a second of the
	// kill (its writer's flush), and in the mix wherever the file has it.
	objects, man := recordingFiles(t, dir, ev.InstanceID)
	i := slices.IndexFunc(man.Tracks, func(tr composition.Track) bool { return tr.UserID == "u" })
	if i < 0 {
		t.Fatalf("no track of u in the manifest: %+v", man.Tracks)
	}
	mixData, err := os.ReadFile(objects[composition.MixFile])
	if err != nil {
		t.Fatal(err)
	}
	// The track ran at the kill: its time zero (where the live mix placed its
	// first sample) was stored once settled, so the recovery places it as
	// the live mix did.
	if man.Tracks[i].MediaOffset == nil {
		t.Fatalf("the recovered manifest has no mediaOffset for the track that ran at the kill: %+v", man.Tracks[i])
	}
	offset := time.Duration(*man.Tracks[i].MediaOffset * float64(time.Second))
	track := mediatest.Decode(t, objects[man.Tracks[i].File], 8000)
	checkTone(t, man.Tracks[i].File, track, freq, offset, recorded)
	mix := wavSamples(t, mixData)
	checkTone(t, "mix", mix, freq, 0, recorded)
	if tEnd, mEnd := toneEnd(track, freq)+offset, toneEnd(mix, freq); mEnd < tEnd-100*time.Millisecond {
		t.Errorf("the tone ends %.2f s into the mix, %.2f s into the recording in the track file: the mix lacks %v", mEnd.Seconds(), tEnd.Seconds(), tEnd-mEnd)
	}
}

func readKey(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "data", "api-key"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestCLI(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("dataDir: "+filepath.Join(dir, "data")+"\nsigningKey: k123\napplications:\n  app1:\n    storage: {provider: LOCAL, dir: "+filepath.Join(dir, "store")+"}\n"), 0o600)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("listen: 127.0.0.1:0\nwebrtc:\n  includeLoopbak: true\n"), 0o600)
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"unknown config key", []string{"serve", "--config", bad}, 1, "line 3: field includeLoopbak not found"},
		{"verify json", []string{"verify", "--config", good, "--application", "app1", "--json"}, 0, `"deleteTestResult": {`},
		{"verify text", []string{"verify", "--config", good, "--application", "app1"}, 0, "ok   delete"},
		{"verify needs application", []string{"verify", "--config", good}, 1, "--application is required"},
		{"verify bad id", []string{"verify", "--config", good, "--application", "../x"}, 1, "applicationId"},
		{"sign attachment", []string{"sign", "--config", good, "/api/recordings/attachment/composition/c/r/i/mix.wav"}, 0, "Signature="},
		{"sign object key", []string{"sign", "--config", good, "--application", "app1", "default/c/r/i/tracks/s-t.wav"}, 0, "/api/recordings/attachment/track/c/r/i/s-t.wav?"},
		{"version", []string{"version"}, 0, "recorder "},
		{"compose needs a recording", []string{"compose"}, 1, "give a manifest.json"},
		{"compose bad layout", []string{"compose", "--layout", "diagonal", dir}, 1, `layout "diagonal" is not grid, speaker or single`},
		{"compose bad size", []string{"compose", "--size", "big", dir}, 1, `--size "big" is not WIDTHxHEIGHT`},
		{"compose no manifest", []string{"compose", dir}, 1, "manifest.json: no such file"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, recorderBin, tt.args...).CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code || !strings.Contains(string(out), tt.out) {
				t.Errorf("exit %d, output:\n%s\nwant exit %d and %q", code, out, tt.code, tt.out)
			}
		})
	}
	// The signed attachment URL checks with the configured key.
	out, _ := exec.Command(recorderBin, "sign", "--config", good, "/api/recordings/attachment/composition/c/r/i/mix.wav").Output()
	u, err := urlParse(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	if err := storage.NewURLSigner([]byte("k123")).Check("GET", u); err != nil {
		t.Errorf("signed URL does not check: %v", err)
	}
	// recorder token mints a publish token the recorder with that key accepts,
	// for what it names only.
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"token", "--config", good, "--conference", "conf1", "--user", "alice", "--types", "MIC", "--ttl", "5m"}, 0},
		{[]string{"token", "--config", good, "--conference", "../x", "--user", "alice"}, 1},
		{[]string{"token", "--config", good, "--user", "alice"}, 1},
		{[]string{"token", "--config", good, "--conference", "c", "--user", "alice", "--ttl", "100h"}, 1},
	} {
		out, err := exec.Command(recorderBin, tc.args...).Output()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d", tc.args, code, tc.code)
			continue
		}
		if code != 0 {
			continue
		}
		c, err := api.NewPublishTokens("k123", time.Hour).Check(strings.TrimSpace(string(out)))
		if err != nil {
			t.Fatalf("token %q does not check: %v", out, err)
		}
		if c.OrganizationID != "default" || c.ConferenceID != "conf1" || c.UserID != "alice" || len(c.StreamTypes) != 1 || c.StreamTypes[0] != "MIC" {
			t.Errorf("claims %+v", c)
		}
		if d := time.Until(time.Unix(c.Expires, 0)); d > 5*time.Minute || d < 4*time.Minute {
			t.Errorf("token valid for %s, want 5m", d)
		}
		if _, err := api.NewPublishTokens("another key", time.Hour).Check(strings.TrimSpace(string(out))); err == nil {
			t.Error("the token checks under another signing key")
		}
	}
}

func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	out, err := exec.CommandContext(ctx, recorderBin, "demo", "--duration", "6s", "--data-dir", dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "The recording is complete") {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, want := range []string{"carol joins late", "bob leaves early", "mix.wav  8000 Hz", "url http://127.0.0.1:"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	// recorder mix rebuilds the mix from the uploaded tracks and manifest:
	// as long as the live one, every participant's tone in it.
	manifests, _ := filepath.Glob(filepath.Join(dir, "storage", "*", "*", "*", "*", "manifest.json"))
	if len(manifests) != 1 {
		t.Fatalf("manifests %v", manifests)
	}
	rdir := filepath.Dir(manifests[0])
	offline := filepath.Join(t.TempDir(), "offline.wav")
	if out, err := exec.CommandContext(ctx, recorderBin, "mix", "-o", offline, rdir).CombinedOutput(); err != nil {
		t.Fatalf("mix: %v\n%s", err, out)
	}
	read := func(path string) []int16 {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		h, err := wavwriter.ParseHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		pcm := make([]int16, (len(b)-int(h.DataOffset))/2)
		for i := range pcm {
			pcm[i] = int16(binary.LittleEndian.Uint16(b[int(h.DataOffset)+2*i:]))
		}
		return pcm
	}
	live, rebuilt := read(filepath.Join(rdir, "mix.wav")), read(offline)
	if d := len(rebuilt) - len(live); d < -800 || d > 800 {
		t.Errorf("offline mix %d samples, live %d", len(rebuilt), len(live))
	}
	var man composition.Manifest
	if raw, err := os.ReadFile(manifests[0]); err != nil || json.Unmarshal(raw, &man) != nil {
		t.Fatalf("manifest: %v", err)
	}
	for _, tr := range man.Tracks {
		t.Logf("%s's track: mediaOffset %.4f s, steps %+v", tr.UserID, fileZero(t, tr), tr.Timing.Steps())
	}
	// Every participant's tone is in the offline mix wherever the live mix
	// (checked by the demo itself) has it, in 100 ms windows. Not one
	// Goertzel over the whole mix: a participant placed in two pieces (a
	// step of its timing, as the live mix took it) adds up out of phase
	// there, though every window holds the tone.
	demoTonesFollow(t, "offline mix", live, rebuilt)

	// recorder compose makes the composite of the same folder: the demo's
	// participants have no video, so three placeholder tiles over the mix.
	mp4 := filepath.Join(t.TempDir(), "composite.mp4")
	out, err = exec.CommandContext(ctx, recorderBin, "compose", "-o", mp4, "--size", "640x360", rdir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "grid 640x360 15 fps") || !strings.Contains(string(out), "3 tiles") {
		t.Fatalf("compose: %v\n%s", err, out)
	}
	probe, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", mp4).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	d, _ := strconv.ParseFloat(strings.TrimSpace(string(probe)), 64)
	if want := float64(len(live)) / 8000; math.Abs(d-want) > want*0.001 {
		t.Errorf("composite lasts %.4fs, the mix %.4fs: want ±0.1%%", d, want)
	}
	demoTonesFollow(t, "composite", live, mediatest.Decode(t, mp4, 8000))
}

// demoTonesFollow checks that each of the demo's tones (440, 660 and 880 Hz:
// alice, bob, carol) is in got in every 100 ms window in which the live mix
// has it, but for the first and last of each run (its edges), and that the
// live mix has each for at least a second.
func demoTonesFollow(t *testing.T, name string, live, got []int16) {
	t.Helper()
	for _, f := range []float64{440, 660, 880} {
		want, have := toneBlocks(live, f, 800), toneBlocks(got, f, 800)
		n, lacks := 0, []string{}
		for k, on := range want {
			if !on {
				continue
			}
			n++
			edge := k == 0 || k == len(want)-1 || !want[k-1] || !want[k+1]
			if !edge && (k >= len(have) || !have[k]) {
				lacks = append(lacks, fmt.Sprintf("%.1f", float64(k)/10))
			}
		}
		t.Logf("%s: %g Hz in %d of the live mix's 100 ms windows; Goertzel over the whole: live %.0f, %s %.0f",
			name, f, n, mediatest.Goertzel(live, 8000, f), name, mediatest.Goertzel(got, 8000, f))
		if n < 10 {
			t.Errorf("the live mix has %g Hz in %d windows of 100 ms, want a second or more", f, n)
		}
		if len(lacks) > 0 {
			t.Errorf("%s lacks %g Hz at %v s, where the live mix has it", name, f, lacks)
		}
	}
}

func urlParse(s string) (*url.URL, error) { return url.Parse(s) }
