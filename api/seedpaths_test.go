package api

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/recorder/conference/whip"
	"github.com/rtcrec/recorder/recorder/conference/whip/whiptest"
)

// seedRoutes returns the "METHOD /path" lines a seed prints (HTTP request
// lines), query strings cut off.
func seedRoutes(t *testing.T, seed string) [][2]string {
	t.Helper()
	var out [][2]string
	for _, m := range regexp.MustCompile(`(?m)^(GET|POST|DELETE|PUT) (/\S+) HTTP/1\.1$`).FindAllStringSubmatch(seed, -1) {
		p, _, _ := strings.Cut(m[2], "?")
		out = append(out, [2]string{m[1], p})
	}
	if len(out) == 0 {
		t.Fatal("the seed prints no request lines")
	}
	return out
}

// fill replaces every {name} of a seed path with a valid id.
func fill(p string) string {
	return regexp.MustCompile(`\{[A-Za-z]+\}`).ReplaceAllString(p, "x1")
}

// TestSeed004_LiteralPaths sends every request line seed 004 prints, at its
// literal path (/auvious.video/rtc-recorder/api/…), and at /api/…: each is
// routed, authenticated the same way (401 without a key, 403 for the
// attachment route without a signature), and never "no such route".
func TestSeed004_LiteralPaths(t *testing.T) {
	h := startService(t, t.TempDir())
	routes := seedRoutes(t, seedFile(t, "004"))
	if len(routes) != 14 {
		t.Errorf("seed 004 prints %d request lines, want 14", len(routes))
	}
	for _, rt := range routes {
		method, path := rt[0], fill(rt[1])
		if !strings.HasPrefix(path, Seed004Prefix+"/api/") {
			t.Errorf("seed 004 path %s is not under %s", path, Seed004Prefix)
			continue
		}
		for _, p := range []string{path, strings.TrimPrefix(path, Seed004Prefix)} {
			var e ErrorMessage
			st := h.do(method, p, "", nil, &e)
			want, reason := 401, "missing_api_key"
			if strings.Contains(p, "/recordings/attachment/") {
				want, reason = 403, "invalid_signature"
			}
			if st != want || e.Reason != reason {
				t.Errorf("%s %s without credentials: %d %+v, want %d %s", method, p, st, e, want, reason)
			}
			e = ErrorMessage{}
			st = h.do(method, p, key1, "{}", &e)
			if e.Reason == "not_found" && strings.HasPrefix(e.Message, "no such route") || st == 405 {
				t.Errorf("%s %s with a key: %d %+v: not routed", method, p, st, e)
			}
		}
	}
	// Only seed 004's routes have the prefix.
	var e ErrorMessage
	if st := h.do("GET", Seed004Prefix+"/v1/recordings", key1, nil, &e); st != 404 {
		t.Errorf("seed 001 route under seed 004's prefix: %d, want 404", st)
	}
}

// TestSeed004_PrefixedRecording records a tone through the prefixed paths
// only: the signed URLs it gets back are under the prefix and serve the
// media; the same URL without the prefix is refused (the signature covers
// the path), and the unprefixed API still signs unprefixed URLs.
func TestSeed004_PrefixedRecording(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	h := startService(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := whiptest.Join(ctx, h.whipClient(key1), whip.Endpoint(h.url, "pconf", "alice", "MIC"), "alice", 440)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Leave(context.Background())
	api := Seed004Prefix + "/api"
	var ev RecordingDataEvent
	if st := h.do("POST", api+"/recordings/start", key1,
		`{"applicationId":"app1","audio":true,"conferenceId":"pconf","conversationId":"pconv","video":false}`, &ev); st != 200 || ev.State != "ACTIVE" {
		t.Fatalf("start: %d %+v", st, ev)
	}
	rp := api + "/recordings/pconv/" + ev.RecorderID + "/" + ev.InstanceID
	var state RecordingDataEvent
	if st := h.do("GET", rp+"/state", key1, nil, &state); st != 200 || state.State != "ACTIVE" {
		t.Fatalf("state: %d %+v", st, state)
	}
	time.Sleep(1500 * time.Millisecond)
	if st := h.do("POST", rp+"/stop", key1, nil, &state); st != 200 || state.State != "STOPPED" {
		t.Fatalf("stop: %d %+v", st, state)
	}
	var msg RecordingDataMessage
	if st := h.do("GET", rp, key1, nil, &msg); st != 200 || len(msg.Streams) != 1 || len(msg.Streams[0].Tracks) != 1 {
		t.Fatalf("recording: %d %+v", st, msg)
	}
	signedPrefix := h.url + Seed004Prefix + "/api/recordings/attachment/"
	if u := msg.Streams[0].Tracks[0].URL; !strings.HasPrefix(u, signedPrefix) {
		t.Errorf("track URL %s, want it under %s", u, signedPrefix)
	}
	var comp RecordingDataMessage
	if st := h.do("GET", api+"/compositions/pconv", key1, nil, &comp); st != 200 || comp.Composition == nil || len(comp.Composition.Outputs) != 1 {
		t.Fatalf("composition: %d %+v", st, comp.Composition)
	}
	u := comp.Composition.Outputs[0].URL
	if !strings.HasPrefix(u, signedPrefix) {
		t.Fatalf("mix URL %s, want it under %s", u, signedPrefix)
	}
	wav := fetch(t, u)
	pcm := wavPCM(t, wav)
	if len(pcm) < 8000 {
		t.Fatalf("mix holds %d samples, want at least 1 s", len(pcm))
	}
	if lv := mediatest.Goertzel(pcm[len(pcm)/4:len(pcm)*3/4], 8000, 440); lv < 2000 {
		t.Errorf("440 Hz amplitude %.0f in the mix fetched through the prefixed URL, want the tone", lv)
	}
	resp, err := http.Get(strings.Replace(u, Seed004Prefix, "", 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("the prefixed URL without its prefix: %d, want 403", resp.StatusCode)
	}
	if st := h.do("GET", "/api/compositions/pconv", key1, nil, &comp); st != 200 || strings.Contains(comp.Composition.Outputs[0].URL, Seed004Prefix) {
		t.Errorf("unprefixed composition URL %s: want it without the prefix", comp.Composition.Outputs[0].URL)
	}
}
