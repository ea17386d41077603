package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtcrec/recorder/client"
	"github.com/rtcrec/recorder/internal/contract"
	"github.com/rtcrec/recorder/recorder/conference/whip"
	"github.com/rtcrec/recorder/recorder/conference/whip/whiptest"
)

// cli runs a client subcommand in-process and returns its exit code, stdout
// and stderr.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// recordingTransport counts the requests of the client subcommands and can
// break one response body part-way: an interrupted download.
type recordingTransport struct {
	mu       sync.Mutex
	requests []string // path and Range of every request
	breakOn  string   // a path suffix whose body fails after breakAt bytes
	breakAt  int64
	flipOn   string // a path suffix whose body has its last byte changed
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.requests = append(rt.requests, req.URL.Path+" "+req.Header.Get("Range"))
	brk := rt.breakOn != "" && strings.HasSuffix(req.URL.Path, rt.breakOn)
	flip := rt.flipOn != "" && strings.HasSuffix(req.URL.Path, rt.flipOn)
	rt.mu.Unlock()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil && brk {
		resp.Body = &brokenBody{r: io.LimitReader(resp.Body, rt.breakAt), c: resp.Body}
	}
	if err == nil && flip {
		b, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr != nil {
			return nil, rerr
		}
		b[len(b)-1] ^= 0xff // same size, other bytes: a storage that gave back something else
		resp.Body = io.NopCloser(bytes.NewReader(b))
	}
	return resp, err
}

func (rt *recordingTransport) fetched(suffix string) []string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	var out []string
	for _, r := range rt.requests {
		if p, rng, _ := strings.Cut(r, " "); strings.HasSuffix(p, suffix) {
			out = append(out, rng)
		}
	}
	return out
}

// brokenBody gives the first bytes of a body, then a connection error.
type brokenBody struct {
	r io.Reader
	c io.Closer
}

func (b *brokenBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		return n, errors.New("connection reset (injected)")
	}
	return n, err
}

func (b *brokenBody) Close() error { return b.c.Close() }

// TestCLI_Client runs the client subcommands against a `recorder serve`
// process: start, ls, get, stop, tail, and a download of a 3-track recording
// that is interrupted mid-file and run again: the second run resumes the
// broken file with a Range request, does not fetch the completed files again,
// and every file's SHA-256 matches the manifest. Also the exit codes of a
// missing recording, a wrong key and a server that is not there.
func TestCLI_Client(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	dir := t.TempDir()
	s := serveProcess(t, dir)
	key := readKey(t, dir)
	t.Setenv("RECORDER_API_KEY", key)
	t.Setenv("RECORDER_SERVER", s.url)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Every exchange of the subcommands with the server is validated
	// against api/openapi.json when the test ends.
	doc, err := contractDoc()
	if err != nil {
		t.Fatal(err)
	}
	checked := func(rt http.RoundTripper) *http.Client {
		return &http.Client{Transport: contract.Transport(t, doc, s.url, rt)}
	}
	httpClient = checked(nil)
	t.Cleanup(func() { httpClient = &http.Client{} })

	wapi, closeFn, err := whip.NewAPI(whip.Settings{LoopbackOnly: true, UDP4Only: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeFn() })
	for i, user := range []string{"ann", "ben", "cat"} {
		p, err := whiptest.Join(ctx, &whip.Client{API: wapi, Token: key}, whip.Endpoint(s.url, "conf3", user, "MIC"), user, 300+200*float64(i))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Leave(context.Background()) })
	}
	code, out, errs := cli(t, "start", "--json", "--application", "app1", "--conference", "conf3", "--conversation", "conv3")
	if code != 0 {
		t.Fatalf("start: exit %d\n%s%s", code, out, errs)
	}
	var ev client.RecordingEvent
	if err := json.Unmarshal([]byte(out), &ev); err != nil || ev.State != "ACTIVE" {
		t.Fatalf("start printed %q (%v)", out, err)
	}
	ref := ev.Ref().String()
	if code, out, _ := cli(t, "start", "--application", "app1", "--conference", "conf3", "--conversation", "conv3"); code != exitConflict {
		t.Errorf("a second start of the conversation: exit %d (%s), want %d", code, out, exitConflict)
	}

	// Wait until the three tracks are recorded, through ls --json. The
	// participants are listed in the order their tracks went live in the
	// recording (api: "in order of arrival"), which the publishers' start-up
	// on a loaded machine decides, not the order they joined in.
	var participants []string
	for {
		code, out, errs := cli(t, "ls", "--json", "--state", "ACTIVE")
		if code != 0 {
			t.Fatalf("ls: exit %d\n%s", code, errs)
		}
		var l client.List
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatal(err)
		}
		if len(l.Recordings) == 1 && len(l.Recordings[0].Participants) == 3 {
			participants = l.Recordings[0].Participants
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the recording never had three participants: %s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// tail follows the live events: started with nothing to replay, it
	// prints the first event after it connected, which the test makes by
	// pausing and resuming the recording until tail has one.
	type result struct {
		code      int
		out, errs string
	}
	tailed := make(chan result, 1)
	go func() {
		code, out, errs := cli(t, "tail", "--count", "1")
		tailed <- result{code, out, errs}
	}()
	var tr result
	for paused := false; tr.out == "" || paused; paused = !paused {
		action := map[bool]string{false: "pause", true: "resume"}[paused]
		if code, out, errs := cli(t, action, ref); code != 0 {
			t.Fatalf("%s: exit %d %q %s", action, code, out, errs)
		}
		if tr.out != "" {
			continue
		}
		select {
		case tr = <-tailed:
			if tr.out == "" {
				t.Fatalf("tail ended with nothing: exit %d %s", tr.code, tr.errs)
			}
		case <-time.After(300 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("tail printed no live event")
		}
	}
	if tr.code != 0 || strings.Count(tr.out, "\n") != 1 || !strings.Contains(tr.out, ref) ||
		!strings.Contains(tr.out, "recording.paused") && !strings.Contains(tr.out, "recording.resumed") && !strings.Contains(tr.out, "state.updated") {
		t.Errorf("tail of the live events: exit %d\n%s%s", tr.code, tr.out, tr.errs)
	}

	time.Sleep(2 * time.Second)
	if code, out, errs := cli(t, "stop", ref); code != 0 || !strings.Contains(out, "STOPPED") {
		t.Fatalf("stop: exit %d %q %s", code, out, errs)
	}
	if got := slices.Sorted(slices.Values(participants)); !slices.Equal(got, []string{"ann", "ben", "cat"}) {
		t.Errorf("ls --json listed the participants %q, want ann, ben and cat", participants)
	}
	code, out, _ = cli(t, "ls")
	if code != 0 || !strings.Contains(out, ref) || !strings.Contains(out, "STOPPED") || !strings.Contains(out, strings.Join(participants, ",")) {
		t.Errorf("ls table: exit %d, want the participants %s as ls --json listed them\n%s", code, strings.Join(participants, ","), out)
	}
	code, out, _ = cli(t, "get", ref)
	if code != 0 || strings.Count(out, "track") < 3 || !strings.Contains(out, "mix.wav") {
		t.Errorf("get: exit %d\n%s", code, out)
	}

	// tail replays the stored events from the start and stops after --count.
	code, out, errs = cli(t, "tail", "--since", "0", "--count", "2", "--json")
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(out, `"state.updated"`) {
		t.Errorf("tail: exit %d\n%s%s", code, out, errs)
	}

	// The download, broken in the middle of the second track.
	var files client.Files
	if code, out, _ := cli(t, "get", "--json", ref); code == 0 {
		var g struct{ Files []client.File }
		json.Unmarshal([]byte(out), &g)
		files.Files = g.Files
	}
	var tracks []string
	for _, f := range files.Files {
		if f.Kind == "track" {
			tracks = append(tracks, f.File)
		}
	}
	if len(tracks) != 3 {
		t.Fatalf("the recording has tracks %v, want 3", tracks)
	}
	target := filepath.Join(t.TempDir(), "dl")
	rt := &recordingTransport{breakOn: "/" + filepath.Base(tracks[1]), breakAt: 4000}
	httpClient = checked(rt)
	code, _, errs = cli(t, "download", "-o", target, ref)
	if code == 0 {
		t.Fatalf("the interrupted download exited 0:\n%s", errs)
	}
	if _, err := os.Stat(filepath.Join(target, filepath.FromSlash(tracks[0]))); err != nil {
		t.Fatalf("the first track is not complete after the interruption: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(target, filepath.FromSlash(tracks[1])+".part")); err != nil || fi.Size() != 4000 {
		t.Fatalf("the broken track's .part: %v %v, want 4000 bytes", fi, err)
	}

	rt2 := &recordingTransport{}
	httpClient = checked(rt2)
	code, out, errs = cli(t, "download", "--json", "-o", target, ref)
	if code != 0 {
		t.Fatalf("the second download: exit %d\n%s%s", code, out, errs)
	}
	if got := rt2.fetched("/" + filepath.Base(tracks[0])); len(got) != 0 {
		t.Errorf("the completed first track was fetched again: %q", got)
	}
	if got := rt2.fetched("/" + filepath.Base(tracks[1])); len(got) != 1 || got[0] != "bytes=4000-" {
		t.Errorf("the broken track was fetched with ranges %q, want one bytes=4000-", got)
	}
	if got := rt2.fetched("/" + filepath.Base(tracks[2])); len(got) != 1 || got[0] != "" {
		t.Errorf("the third track was fetched with ranges %q, want one whole download", got)
	}
	if !strings.Contains(errs, "downloading") {
		t.Errorf("no progress bar on stderr: %q", errs)
	}

	// Every file's SHA-256 against the manifest, computed here.
	raw, err := os.ReadFile(filepath.Join(target, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var man client.Manifest
	if err := json.Unmarshal(raw, &man); err != nil {
		t.Fatal(err)
	}
	if len(man.Tracks) != 3 || man.Mix == nil {
		t.Fatalf("manifest: %d tracks, mix %v", len(man.Tracks), man.Mix)
	}
	check := func(file string, size int64, sum string) {
		got, err := fileSHA256(filepath.Join(target, filepath.FromSlash(file)))
		if err != nil || got != sum || sum == "" {
			t.Errorf("%s: SHA-256 %s (%v), manifest %s", file, got, err, sum)
		}
		if fi, err := os.Stat(filepath.Join(target, filepath.FromSlash(file))); err != nil || fi.Size() != size {
			t.Errorf("%s: size %v, manifest %d", file, fi, size)
		}
	}
	for _, tr := range man.Tracks {
		check(tr.File, tr.Size, tr.SHA256)
	}
	check(man.Mix.File, man.Mix.Size, man.Mix.SHA256)
	if m, _ := filepath.Glob(filepath.Join(target, "tracks", "*.part")); len(m) != 0 {
		t.Errorf(".part files left: %v", m)
	}

	// A third run fetches no media at all.
	rt3 := &recordingTransport{}
	httpClient = checked(rt3)
	if code, out, errs := cli(t, "download", "-o", target, ref); code != 0 || strings.Count(out, "already complete") != 4 {
		t.Errorf("a third download: exit %d\n%s%s", code, out, errs)
	}
	if got := rt3.fetched(".wav"); len(got) != 0 {
		t.Errorf("a complete download fetched media again: %q", got)
	}
	// A file altered on disk is downloaded again, whole.
	os.WriteFile(filepath.Join(target, filepath.FromSlash(tracks[2])), []byte("not the track"), 0o640)
	if code, out, errs := cli(t, "download", "-o", target, ref); code != 0 || !strings.Contains(out, "downloaded") {
		t.Errorf("download after damage: exit %d\n%s%s", code, out, errs)
	}

	// A file that comes back other than the manifest says (same size, one
	// byte changed): exit 7, the file is not kept, the others are.
	os.Remove(filepath.Join(target, filepath.FromSlash(tracks[0])))
	rt4 := &recordingTransport{flipOn: "/" + filepath.Base(tracks[0])}
	httpClient = checked(rt4)
	code, out, errs = cli(t, "download", "-o", target, ref)
	if code != exitChecksum || !strings.Contains(errs, "SHA-256") {
		t.Errorf("a download with a file other than the manifest's: exit %d, want %d\n%s%s", code, exitChecksum, out, errs)
	}
	if _, err := os.Stat(filepath.Join(target, filepath.FromSlash(tracks[0]))); err == nil {
		t.Errorf("the file whose SHA-256 differs from the manifest's was kept")
	}
	if m, _ := filepath.Glob(filepath.Join(target, "tracks", "*.part")); len(m) != 0 {
		t.Errorf(".part files left after a checksum failure: %v", m)
	}
	for _, tr := range man.Tracks {
		if tr.File != tracks[0] {
			check(tr.File, tr.Size, tr.SHA256)
		}
	}

	// Exit codes.
	parts := strings.Split(ref, "/")
	if code, _, _ := cli(t, "get", parts[0]+"/"+parts[1]+"/00000000-0000-0000-0000-000000000000"); code != exitNotFound {
		t.Errorf("get of a missing recording: exit %d, want %d", code, exitNotFound)
	}
	t.Setenv("RECORDER_API_KEY", "wrong-key")
	if code, _, _ := cli(t, "ls"); code != exitRefused {
		t.Errorf("ls with a wrong key: exit %d, want %d", code, exitRefused)
	}
	if code, _, _ := cli(t, "ls", "--server", "http://127.0.0.1:1"); code != exitUnavailable {
		t.Errorf("ls of no server: exit %d, want %d", code, exitUnavailable)
	}
	if code, _, _ := cli(t, "get", "not-a-ref"); code != exitUsage {
		t.Errorf("get with a bad argument: exit %d, want %d", code, exitUsage)
	}
}
