package api

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/composition/composite"
	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/media/mediatest"
)

// TestEndToEnd_CompositeSpeakerSkipBlackout renders, over real WHIP, the
// speaker layout, a pause with pauseBehavior skip and a blackout marker:
// alice (red camera, 440 Hz) speaks first, then bob (blue camera, 880 Hz);
// the recording is paused (skip) and bob is blacked out for a while. The
// composite's frames show who is in the main area and who in the strip, no
// trace of the pause (cut, as the mix is), and bob's tile darkened with a
// red border while he is blacked out; its audio holds the tones of who
// speaks, and not bob's while he is blacked out.
func TestEndToEnd_CompositeSpeakerSkipBlackout(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	testenv.LookPath(t, "ffprobe")
	red, blue := cameraFrames(t, "red", false), cameraFrames(t, "blue", false)
	h := startService(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const conf, conv = "spk-conf", "spk"
	const W, H, fps = 640, 360, 15
	ev, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: conf, ConversationID: conv, Video: true,
		PauseBehavior: "skip", Composite: &composite.Settings{Layout: "speaker", Width: W, Height: H, FPS: fps}})
	if st != 200 {
		t.Fatalf("start: %d", st)
	}
	t0 := time.Now() // ≈ the recording's start
	const bobFrom = 3.0
	tone := func(freq float64, speaks func(float64) bool) func(time.Time, float64) float64 {
		return func(at time.Time, s float64) float64 {
			if !speaks(at.Sub(t0).Seconds()) {
				return 0
			}
			return 8000 * math.Sin(2*math.Pi*freq*s)
		}
	}
	joinCameraVoice(t, ctx, h, conf, "alice", red, tone(440, func(w float64) bool { return w < bobFrom }))
	joinCameraVoice(t, ctx, h, conf, "bob", blue, tone(880, func(w float64) bool { return w >= bobFrom }))
	p := recPath(ev)
	at := func(w float64) { time.Sleep(time.Until(t0.Add(time.Duration(w * float64(time.Second))))) }
	at(4.5)
	if st := h.do("POST", p+"/pause", key1, nil, nil); st != 200 {
		t.Fatalf("pause: %d", st)
	}
	at(5.5)
	if st := h.do("POST", p+"/resume", key1, nil, nil); st != 200 {
		t.Fatalf("resume: %d", st)
	}
	at(6.5)
	if st := h.do("POST", "/api/blackouts/start", key1, map[string]any{"userId": "bob", "conferenceId": conf}, nil); st != 200 {
		t.Fatalf("blackout start: %d", st)
	}
	at(8.0)
	if st := h.do("POST", "/api/blackouts/stop", key1, map[string]any{"userId": "bob", "conferenceId": conf}, nil); st != 200 {
		t.Fatalf("blackout stop: %d", st)
	}
	at(9.5)
	var stopped RecordingDataEvent
	if st := h.do("POST", p+"/stop", key1, nil, &stopped); st != 200 || stopped.State != "STOPPED" {
		t.Fatalf("stop: %d %+v", st, stopped)
	}

	var comp RecordingDataMessage
	deadline := time.Now().Add(3 * time.Minute)
	for {
		h.do("GET", "/api/compositions/"+conv, key1, nil, &comp)
		if c := comp.Composition; c != nil && c.State == "COMPLETED" {
			break
		}
		if c := comp.Composition; time.Now().After(deadline) || (c != nil && c.State == "FAILED") {
			t.Fatalf("composition %+v", c)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var video *CompositionOutput
	for i, o := range comp.Composition.Outputs {
		if o.Type == "VIDEO" {
			video = &comp.Composition.Outputs[i]
		}
	}
	if video == nil || video.URL == "" {
		t.Fatalf("outputs %+v", comp.Composition.Outputs)
	}
	var man composition.Manifest
	if err := json.Unmarshal(fetch(t, comp.Composition.Manifest.URL), &man); err != nil {
		t.Fatal(err)
	}
	if len(man.Pauses) != 1 || len(man.Blackouts) != 1 || man.Blackouts[0].UserID != "bob" {
		t.Fatalf("manifest: pauses %+v, blackouts %+v", man.Pauses, man.Blackouts)
	}
	pause, bo := man.Pauses[0], man.Blackouts[0]
	cut := pause.End - pause.Start
	// out maps the recording's time to the composite's: the pause is cut.
	out := func(w float64) float64 {
		if w >= pause.End {
			return w - cut
		}
		return math.Min(w, pause.Start)
	}
	path := filepath.Join(t.TempDir(), "composite.mp4")
	if err := os.WriteFile(path, fetch(t, video.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	if d := os.Getenv("COMPOSITE_E2E_KEEP"); d != "" {
		os.WriteFile(filepath.Join(d, "speaker-manifest.json"), fetch(t, comp.Composition.Manifest.URL), 0o600)
		os.WriteFile(filepath.Join(d, "speaker.mp4"), fetch(t, video.URL), 0o600)
	}

	// Skip: the composite lasts the mix (the recording without the pause).
	probe, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	dur, _ := strconv.ParseFloat(string(trimNL(probe)), 64)
	wall := man.Stopped.Sub(man.Started).Seconds()
	t.Logf("pause %.2f–%.2f s (cut), blackout of bob %.2f–%.2f s, recording %.2f s, composite %.2f s, mix %.2f s",
		pause.Start, pause.End, bo.Start, bo.End, wall, dur, man.Mix.Duration)
	if math.Abs(dur-man.Mix.Duration) > man.Mix.Duration*0.001 || math.Abs(dur-(wall-cut)) > 0.1 {
		t.Errorf("composite %.3f s; want the mix's %.3f s ±0.1%% and the recording less its pause, %.3f s", dur, man.Mix.Duration, wall-cut)
	}

	frames := decodeRGB(t, path, W, H, 4)
	mainBox, stripBox := tileBox{64, 0, 512, 288}, tileBox{256, 288, 128, 72}
	colour := func(w float64, b tileBox) string {
		return frames.colourName(int(out(w)*fps), b.x+b.w/2, b.y+b.h/5)
	}
	for _, c := range []struct {
		what        string
		w           float64
		main, strip string
	}{
		{"alice speaks", 2.0, "alice", "blue"},
		{"bob speaks", bobFrom + 0.9, "blue", "alice"},
		{"right after the cut", pause.End + 0.2, "blue", "alice"},
		{"after the blackout", (bo.End + wall) / 2, "blue", "alice"},
	} {
		if gm, gs := colour(c.w, mainBox), colour(c.w, stripBox); gm != c.main || gs != c.strip {
			t.Errorf("%s (%.2f s, composite %.2f s): main %s, strip %s; want %s, %s", c.what, c.w, out(c.w), gm, gs, c.main, c.strip)
		}
	}
	// The pause left no black frame: every frame around the cut shows cameras.
	for n := int(out(pause.Start)*fps) - 3; n <= int(out(pause.Start)*fps)+3; n++ {
		if got := frames.colourName(n, mainBox.x+mainBox.w/2, mainBox.y+mainBox.h/5); got == "black" {
			t.Errorf("frame %d (%.2f s), at the cut: black, want no trace of the pause", n, float64(n)/fps)
		}
	}
	// The blackout: bob's tile (the speaker still; his camera is not recorded
	// while he is blacked out) darkened, with a red border.
	mid := (bo.Start + bo.End) / 2
	n := int(out(mid) * fps)
	if px := frames.pixel(n, mainBox.x+mainBox.w/2, mainBox.y+mainBox.h/5); max(px[0], px[1], px[2]) > 25 {
		t.Errorf("bob blacked out (%.2f s): main area %v, want it darkened (the placeholder alone is 43)", mid, px)
	}
	if got := frames.colourName(n, mainBox.x+4, mainBox.y+mainBox.h/2); got != "alice" { // "alice": red
		t.Errorf("bob blacked out (%.2f s): border %s, want red", mid, got)
	}
	if got := colour(mid, stripBox); got != "alice" {
		t.Errorf("bob blacked out (%.2f s): strip %s, want alice", mid, got)
	}
	if got := frames.colourName(int(out(bo.End+0.3)*fps), mainBox.x+4, mainBox.y+mainBox.h/2); got == "alice" {
		t.Errorf("after the blackout: the red border is still there")
	}

	// The audio: who speaks, bob silent while blacked out, nothing of the pause.
	pcm := mediatest.Decode(t, path, 8000)
	toneIn := func(freq, from, to float64) bool {
		a, b := int(out(from)*8000), min(len(pcm), int(out(to)*8000))
		return a < b && mediatest.ToneLevel(pcm[a:b], 8000, freq) > -40
	}
	for _, c := range []struct {
		freq, from, to float64
		want           bool
	}{
		{440, 1.8, bobFrom - 0.3, true}, {880, 1.8, bobFrom - 0.3, false},
		{880, bobFrom + 0.3, pause.Start - 0.1, true}, {440, bobFrom + 0.3, pause.Start - 0.1, false},
		{880, pause.End + 0.2, bo.Start - 0.2, true},
		{880, bo.Start + 0.2, bo.End - 0.2, false},
		{880, bo.End + 0.3, wall - 0.3, true},
	} {
		if got := toneIn(c.freq, c.from, c.to); got != c.want {
			t.Errorf("%g Hz in %.2f–%.2f s: %v, want %v", c.freq, c.from, c.to, got, c.want)
		}
	}
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
