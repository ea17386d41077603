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
	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/media/mediatest"
)

// TestEndToEnd_CompositeMixNone: a recording started with "mix": "none"
// has no mix.wav; its composite mixes the track files itself, each where the
// live mix would have put it. alice (red camera, 440 Hz, a flash and a beep
// every 2 s) and bob (audio only, 880 Hz, joining late) over WHIP, a pause
// in the middle: the composite has AAC audio with the tones of who is
// there, silence in the pause, the recording's length ±0.1 %, and alice's
// flashes within 40 ms of their beeps.
func TestEndToEnd_CompositeMixNone(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	testenv.LookPath(t, "ffprobe")
	red := cameraFrames(t, "red", true)
	h := startService(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const conf = "none-conf"
	joinCamera(t, ctx, h, conf, "alice", 440, red, true)
	const W, H, fps = 640, 360, 30
	ev, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: conf, ConversationID: "nomix", Video: true,
		Mix: &config.MixSettings{None: true}, Composite: &composite.Settings{Layout: "grid", Width: W, Height: H, FPS: fps}})
	if st != 200 {
		t.Fatalf("start: %d", st)
	}
	p := recPath(ev)
	time.Sleep(2 * time.Second) // the scenario's own time
	joinCamera(t, ctx, h, conf, "bob", 880, nil, false)
	time.Sleep(2500 * time.Millisecond)
	if st := h.do("POST", p+"/pause", key1, nil, nil); st != 200 {
		t.Fatalf("pause: %d", st)
	}
	time.Sleep(time.Second)
	if st := h.do("POST", p+"/resume", key1, nil, nil); st != 200 {
		t.Fatalf("resume: %d", st)
	}
	time.Sleep(2500 * time.Millisecond)
	if st := h.do("POST", p+"/stop", key1, nil, nil); st != 200 {
		t.Fatalf("stop: %d", st)
	}

	var comp RecordingDataMessage
	for {
		h.do("GET", "/api/compositions/nomix", key1, nil, &comp)
		if c := comp.Composition; c != nil && c.State == "COMPLETED" {
			break
		}
		if c := comp.Composition; ctx.Err() != nil || c != nil && c.State == "FAILED" {
			t.Fatalf("composition %+v", c)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var video *CompositionOutput
	for i, o := range comp.Composition.Outputs {
		switch o.Type {
		case "VIDEO":
			video = &comp.Composition.Outputs[i]
		case "AUDIO":
			t.Errorf("a recording without a mix lists an audio output: %+v", o)
		}
	}
	if video == nil || video.URL == "" {
		t.Fatalf("outputs %+v", comp.Composition.Outputs)
	}
	var man composition.Manifest
	if err := json.Unmarshal(fetch(t, comp.Composition.Manifest.URL), &man); err != nil {
		t.Fatal(err)
	}
	if man.Mix != nil || len(man.Pauses) != 1 {
		t.Fatalf("manifest: mix %+v, pauses %+v; want no mix, one pause", man.Mix, man.Pauses)
	}
	logPlacement(t, &man, "alice")
	path := filepath.Join(t.TempDir(), "composite.mp4")
	if err := os.WriteFile(path, fetch(t, video.URL), 0o600); err != nil {
		t.Fatal(err)
	}

	// H.264 and AAC, the recording's length ±0.1 % (no skipped pause).
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name:format=duration", "-of", "json", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	var pr struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	json.Unmarshal(out, &pr)
	codecs := map[string]bool{}
	for _, s := range pr.Streams {
		codecs[s.CodecName] = true
	}
	dur, _ := strconv.ParseFloat(pr.Format.Duration, 64)
	length := man.Stopped.Sub(man.Started).Seconds()
	if !codecs["h264"] || !codecs["aac"] || math.Abs(dur-length) > length*0.001 {
		t.Errorf("composite: codecs %v, %.3f s; want h264 and aac, the recording's %.3f s ±0.1%%", codecs, dur, length)
	}

	// The tones of who is there, silence in the pause.
	var bobIn float64
	for _, tr := range man.Tracks {
		if tr.UserID == "bob" && tr.Kind == "AUDIO" {
			bobIn = tr.Offset
		}
	}
	pause := man.Pauses[0]
	t.Logf("bob joins %.2f s, pause %.2f–%.2f s, length %.2f s", bobIn, pause.Start, pause.End, length)
	pcm := mediatest.Decode(t, path, 8000)
	// Decoded, AAC ends on a whole frame (1024 samples at 48 kHz): the
	// length ±0.1 % and the padding of the last frame.
	if got := float64(len(pcm)) / 8000; math.Abs(got-length) > length*0.001+1024.0/48000 {
		t.Errorf("the audio lasts %.3f s, want %.3f s ±0.1%% (and the last AAC frame)", got, length)
	}
	tone := func(freq, from, to float64) bool {
		a, b := int(from*8000), min(len(pcm), int(to*8000))
		return a < b && mediatest.ToneLevel(pcm[a:b], 8000, freq) > -40
	}
	for _, c := range []struct {
		freq, from, to float64
		want           bool
	}{
		{440, 0.3, bobIn - 0.3, true}, {880, 0.3, bobIn - 0.3, false},
		{880, bobIn + 0.5, pause.Start - 0.1, true}, {440, bobIn + 0.5, pause.Start - 0.1, true},
		{440, pause.Start + 0.15, pause.End - 0.15, false}, {880, pause.Start + 0.15, pause.End - 0.15, false},
		{440, pause.End + 0.3, length - 0.3, true}, {880, pause.End + 0.3, length - 0.3, true},
	} {
		if got := tone(c.freq, c.from, c.to); got != c.want {
			t.Errorf("%g Hz in %.2f–%.2f s: %v, want %v", c.freq, c.from, c.to, got, c.want)
		}
	}

	// A/V: alice's flashes against the beeps of the composite's own mix.
	frames := decodeRGB(t, path, W, H, 4)
	boxes := []tileBox{{0, 0, 640, 360}, {0, 90, 320, 180}, {320, 90, 320, 180}}
	offsets := flashOffsets(t, frames, pcm, fps, boxes, pause)
	t.Logf("A/V offsets (flash − beep) %.0f ms (frames are %.0f ms apart)", scale(offsets, 1000), 1000.0/fps)
	if len(offsets) < 2 {
		t.Fatalf("%d flashes found out of the pause, want at least 2", len(offsets))
	}
	for _, o := range offsets {
		if math.Abs(o) > 0.040 {
			t.Errorf("A/V offset %+.0f ms, want within 40 ms", o*1000)
		}
	}
}
