package api

import (
	"context"
	"encoding/binary"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/media/wavwriter"
	"github.com/rtcrec/recorder/recorder/conference/whip"
	"github.com/rtcrec/recorder/recorder/conference/whip/whiptest"
)

// TestEndToEnd_ThreeParticipants records a conference of three WHIP
// publishers sending tones at known frequencies: two connected before the
// recording starts, one joining 2 s into it, one of the first two leaving at
// 4.5 s. The mix must hold each tone exactly where it was sent.
func TestEndToEnd_ThreeParticipants(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	h := startService(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := h.whipClient(key1)
	publishers := map[string]*whiptest.Participant{}
	join := func(name string, freq float64) *whiptest.Participant {
		p, err := whiptest.Join(ctx, c, whip.Endpoint(h.url, "conf1", name, "MIC"), name, freq)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(func() { p.Leave(context.Background()) })
		publishers[name] = p
		return p
	}
	join("alice", 440)
	bob := join("bob", 660)

	t0 := time.Now()
	ev, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: "conf1", ConversationID: "conv1"})
	startLatency := time.Since(t0)
	if st != 200 || ev.State != "ACTIVE" {
		t.Fatalf("start: %d %+v", st, ev)
	}
	t.Logf("start request → ACTIVE: %v", startLatency)

	time.Sleep(2 * time.Second)
	join("carol", 880) // returns when connected; she starts sending then
	carolJoin := time.Since(t0)
	time.Sleep(2500 * time.Millisecond)
	bobLeave := time.Since(t0)
	if err := bob.Leave(ctx); err != nil {
		t.Errorf("bob leaves: %v", err)
	}
	time.Sleep(2 * time.Second)

	t1 := time.Now()
	var stopped RecordingDataEvent
	if st := h.do("POST", recPath(ev)+"/stop", key1, nil, &stopped); st != 200 || stopped.State != "STOPPED" {
		t.Fatalf("stop: %d %+v", st, stopped)
	}
	t.Logf("stop request → files written and uploaded: %v", time.Since(t1))

	var msg RecordingDataMessage
	if st := h.do("GET", recPath(ev), key1, nil, &msg); st != 200 {
		t.Fatalf("recording: %d", st)
	}
	if len(msg.Streams) != 3 {
		t.Fatalf("recording has %d streams, want 3: %+v", len(msg.Streams), msg.Streams)
	}
	users := map[string]StreamDataMessage{}
	for _, s := range msg.Streams {
		users[s.UserID] = s
		if s.Type != "MIC" || s.State != "STOPPED" || len(s.Tracks) != 1 {
			t.Errorf("stream of %s: %+v", s.UserID, s)
			continue
		}
		tr := s.Tracks[0]
		if tr.Type != "AUDIO" || tr.URL == "" || tr.Started == "" || tr.Stopped == "" ||
			tr.Storage == nil || tr.Storage.ObjectStorage == nil || tr.Storage.ObjectStorage.Uploaded == "" {
			t.Errorf("track of %s: %+v", s.UserID, tr)
		}
	}
	started, _ := time.Parse(time.RFC3339Nano, msg.Started)
	stoppedAt, _ := time.Parse(time.RFC3339Nano, msg.Stopped)
	recorded := stoppedAt.Sub(started)

	// The mix.
	pcm := h.mixPCM("conv1")
	dur := time.Duration(len(pcm)) * time.Second / 8000
	if diff := math.Abs(dur.Seconds()-recorded.Seconds()) / recorded.Seconds(); diff > 0.02 {
		t.Errorf("mix is %v long, the recording %v: %.1f%% off (limit 2%%)", dur, recorded, 100*diff)
	}
	t.Logf("mix %v for %v recorded", dur, recorded)

	// Tone checks, relative to the recording's start (the mix's time zero).
	rel := func(d time.Duration) float64 { return (d - started.Sub(t0)).Seconds() }
	_ = rel
	level := func(freq, from, to float64) float64 {
		a, b := int(from*8000), int(to*8000)
		b = min(b, len(pcm))
		return mediatest.Goertzel(pcm[a:b], 8000, freq)
	}
	offStart := started.Sub(t0)
	carolAt := (carolJoin - offStart).Seconds()
	bobGone := (bobLeave - offStart).Seconds()
	end := dur.Seconds()
	checks := []struct {
		who      string
		freq     float64
		from, to float64
		present  bool
	}{
		{"alice", 440, 0.3, end - 0.3, true},
		{"bob before leaving", 660, 0.3, bobGone - 0.3, true},
		{"bob after leaving", 660, bobGone + 0.4, end - 0.1, false},
		{"carol before joining", 880, 0.1, carolAt - 0.1, false},
		{"carol after joining", 880, carolAt + 0.5, end - 0.3, true},
	}
	for _, c := range checks {
		a := level(c.freq, c.from, c.to)
		if c.present && a < 2000 || !c.present && a > 200 {
			t.Errorf("%s: %g Hz amplitude %.0f in [%.2f s, %.2f s], want present=%v", c.who, c.freq, a, c.from, c.to, c.present)
		}
	}
	// The late joiner's tone starts where she joined (± the join's signalling
	// time and the mixer's cushion).
	onset := -1.0
	for w := 0.0; w+0.05 < end; w += 0.05 {
		if level(880, w, w+0.05) > 2000 {
			onset = w
			break
		}
	}
	if onset < carolAt-0.2 || onset > carolAt+0.5 {
		t.Errorf("carol's tone starts at %.2f s in the mix, she joined at %.2f s", onset, carolAt)
	}
	t.Logf("carol joined at %.2f s, her tone starts at %.2f s", carolAt, onset)

	// Per-track files decode to their durations: as long as the track ran,
	// or at least as what its publisher wrote meanwhile when that is less.
	// A publisher starved of CPU under load writes its packets late: session
	// 22, carol's last 0.43 s came after the stop's drain; the recorder had
	// written every packet it read, her mix ring ended where her file did.
	// What it writes after the stop, from before it, the drain may still
	// take (the file then holds more than was written by the stop).
	ffprobe := testenv.LookPath(t, "ffprobe")
	for name, s := range users {
		tr := s.Tracks[0]
		path := filepath.Join(t.TempDir(), name+".wav")
		if err := os.WriteFile(path, fetch(t, tr.URL), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path).Output()
		if err != nil {
			t.Fatalf("ffprobe %s: %v", name, err)
		}
		got, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		if err != nil {
			t.Fatalf("ffprobe %s: %q", name, out)
		}
		a, _ := time.Parse(time.RFC3339Nano, tr.Started)
		b, _ := time.Parse(time.RFC3339Nano, tr.Stopped)
		sent := 0.02 * float64(publishers[name].SentBetween(a, b))
		t.Logf("track of %s: ffprobe says %.3f s, the track ran %.3f s, its publisher wrote %.2f s of packets meanwhile", name, got, b.Sub(a).Seconds(), sent)
		if ran := b.Sub(a).Seconds(); got > ran+0.3 || got < min(ran, sent)-0.3 {
			t.Errorf("track of %s: ffprobe says %.2f s, the track ran %.2f s, its publisher wrote %.2f s of packets meanwhile", name, got, b.Sub(a).Seconds(), sent)
		}
	}
}

// mixPCM returns the samples of the mix of conversation conv, failing the
// test unless it is one 8000 Hz 16-bit mono PCM WAV.
func (h *harness) mixPCM(conv string) []int16 {
	t := h.t
	t.Helper()
	var comp RecordingDataMessage
	if st := h.do("GET", "/api/compositions/"+conv, key1, nil, &comp); st != 200 || comp.Composition == nil ||
		len(comp.Composition.Outputs) != 1 || comp.Composition.Outputs[0].URL == "" {
		t.Fatalf("composition: %d %+v", st, comp.Composition)
	}
	wav := fetch(t, comp.Composition.Outputs[0].URL)
	hdr, err := wavwriter.ParseHeader(wav)
	if err != nil {
		t.Fatal(err)
	}
	if hdr.SampleRate != 8000 || hdr.BitsPerSample != 16 || hdr.Channels != 1 || hdr.Format != wavwriter.PCM {
		t.Fatalf("mix.wav is %+v, want 8000 Hz 16-bit mono PCM", hdr)
	}
	return samples(wav[hdr.DataOffset:])
}

// fetch GETs a signed URL.
func fetch(t testing.TB, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v %s", url, resp.StatusCode, err, b[:min(len(b), 200)])
	}
	return b
}

func samples(b []byte) []int16 {
	out := make([]int16, len(b)/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return out
}

// TestEndToEnd_TwoRecordingsOfOneConference: every ACTIVE recording of a
// conference records its streams; the one started later picks up the
// participant already connected.
func TestEndToEnd_TwoRecordingsOfOneConference(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	h := startService(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := whiptest.Join(ctx, h.whipClient(key1), whip.Endpoint(h.url, "shared", "u", "MIC"), "u", 620)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Leave(context.Background())
	a, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: "shared", ConversationID: "conv-a"})
	if st != 200 {
		t.Fatalf("start a: %d", st)
	}
	time.Sleep(time.Second)
	b, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: "shared", ConversationID: "conv-b"})
	if st != 200 {
		t.Fatalf("start b: %d", st)
	}
	time.Sleep(1500 * time.Millisecond)
	for _, ev := range []RecordingDataEvent{a, b} {
		var stopped RecordingDataEvent
		if st := h.do("POST", recPath(ev)+"/stop", key1, nil, &stopped); st != 200 || stopped.State != "STOPPED" {
			t.Fatalf("stop %s: %d %+v", ev.ConversationID, st, stopped)
		}
	}
	for conv, minDur := range map[string]float64{"conv-a": 2.3, "conv-b": 1.3} {
		var comp RecordingDataMessage
		h.do("GET", "/api/compositions/"+conv, key1, nil, &comp)
		if len(comp.Streams) != 1 || comp.Composition == nil || len(comp.Composition.Outputs) != 1 {
			t.Fatalf("%s: %+v", conv, comp)
		}
		wav := fetch(t, comp.Composition.Outputs[0].URL)
		pcm := wavPCM(t, wav)
		if d := float64(len(pcm)) / 8000; d < minDur {
			t.Errorf("%s: mix %.2f s, want at least %.1f s", conv, d, minDur)
		}
		if lvl := mediatest.Goertzel(pcm[2400:len(pcm)-800], 8000, 620); lvl < 4000 {
			t.Errorf("%s: 620 Hz amplitude %.0f, want the tone", conv, lvl)
		}
	}
}

// TestEndToEnd_TenantIsolation: a conference id is per organization: another
// tenant's publisher in a conference of the same name is never recorded.
func TestEndToEnd_TenantIsolation(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	h := startService(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mine, err := whiptest.Join(ctx, h.whipClient(key1), whip.Endpoint(h.url, "iso", "mine", "MIC"), "mine", 450)
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Leave(context.Background())
	theirs, err := whiptest.Join(ctx, h.whipClient(key2), whip.Endpoint(h.url, "iso", "theirs", "MIC"), "theirs", 900)
	if err != nil {
		t.Fatal(err)
	}
	defer theirs.Leave(context.Background())
	ev, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: "iso", ConversationID: "iso"})
	if st != 200 {
		t.Fatalf("start: %d", st)
	}
	time.Sleep(1500 * time.Millisecond)
	h.do("POST", recPath(ev)+"/stop", key1, nil, nil)
	var comp RecordingDataMessage
	h.do("GET", "/api/compositions/iso", key1, nil, &comp)
	if len(comp.Streams) != 1 || comp.Streams[0].UserID != "mine" {
		t.Fatalf("streams %+v, want only mine", comp.Streams)
	}
	wav := fetch(t, comp.Composition.Outputs[0].URL)
	pcm := wavPCM(t, wav)
	if a, b := mediatest.Goertzel(pcm, 8000, 450), mediatest.Goertzel(pcm, 8000, 900); a < 2000 || b > 50 {
		t.Errorf("450 Hz (mine) %.0f, 900 Hz (theirs) %.0f: want only mine", a, b)
	}
}
