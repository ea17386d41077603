package api

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/composition/composite"
	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/internal/tooltest"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/recorder/conference/whip"
	"github.com/rtcrec/recorder/recorder/conference/whip/whiptest"
)

// The composite video end to end: three WHIP participants (two cameras of
// distinct colours with a frame counter and a tone, one audio-only), one
// joining late and one leaving early, a pause in the middle; the composite
// is checked with ffprobe, by the colours of its tiles over time, by the
// tones of its audio, by the offset between alice's flash and her beep, and
// played by Chromium through its signed URL.

const (
	flashEvery = 2.0 // seconds between alice's flashes (and beeps)
	flashLen   = 0.2
	beepFreq   = 2000.0
)

// camera is a synthetic participant sending PCMU audio and VP8 video paced
// by the wall clock from one start, so that its flash and its beep leave
// together (whiptest.Camera).
type camera struct{ *whiptest.Camera }

// cameraFrames encodes 2 s of a colour with a frame counter (and, with
// flash, a white flash in the first 0.2 s) as VP8 at 30 fps, a keyframe a second.
func cameraFrames(t *testing.T, color string, flash bool) [][]byte {
	src := fmt.Sprintf("color=c=%s:s=320x240:r=30:d=%g", color, flashEvery)
	if flash {
		src += fmt.Sprintf(",drawbox=color=white:t=fill:enable='lt(t,%g)'", flashLen)
	}
	src += fmt.Sprintf(",drawtext=fontfile=%s:text=%%{n}:fontsize=36:x=8:y=8:fontcolor=black", composite.FontFiles[0])
	path := ffmpegFile(t, color+".ivf", "-f", "lavfi", "-i", src,
		"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-g", "30", "-b:v", "300k", "-f", "ivf")
	return mediatest.IVFFrames(t, path)
}

// joinCamera publishes user (type CAM, or MIC without video) sending a tone
// of freq (plus a beep with every flash) and video frames (looped).
func joinCamera(t *testing.T, ctx context.Context, h *harness, conf, user string, freq float64, frames [][]byte, beep bool) *camera {
	t.Helper()
	return joinCameraVoice(t, ctx, h, conf, user, frames, func(_ time.Time, s float64) float64 {
		v := 6000 * math.Sin(2*math.Pi*freq*s)
		if beep && math.Mod(s, flashEvery) < flashLen {
			v += 6000 * math.Sin(2*math.Pi*beepFreq*s)
		}
		return v
	})
}

// joinCameraVoice publishes user like joinCamera; voice gives the audio
// sample at s seconds of the sender's time (at, on the wall clock).
func joinCameraVoice(t *testing.T, ctx context.Context, h *harness, conf, user string, frames [][]byte, voice func(at time.Time, s float64) float64) *camera {
	t.Helper()
	typ := "MIC"
	if frames != nil {
		typ = "CAM"
	}
	c, err := whiptest.JoinCamera(ctx, h.whipClient(key1), whip.Endpoint(h.url, conf, user, typ), user, frames, voice)
	if err != nil {
		t.Fatalf("%s: %v", user, err)
	}
	t.Cleanup(func() { c.Leave(context.Background()) })
	return &camera{c}
}

func (c *camera) leave() { c.Leave(context.Background()) }

// TestEndToEnd_CompositeVideo is the composite of a recorded WHIP conference.
func TestEndToEnd_CompositeVideo(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	testenv.LookPath(t, "ffprobe")
	red, blue := cameraFrames(t, "red", true), cameraFrames(t, "blue", false)
	h := startService(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const conf = "comp-conf"
	joinCamera(t, ctx, h, conf, "alice", 440, red, true)
	carol := joinCamera(t, ctx, h, conf, "carol", 1320, nil, false)
	// 30 fps (not the default 15): the A/V offset is measured to a frame,
	// and at 15 fps every flash of a recording falls at the same phase of
	// the 67 ms frame grid, so its error (±33 ms) does not average out.
	const W, H, fps = 640, 360, 30
	ev, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: conf, ConversationID: "comp", Video: true,
		Composite: &composite.Settings{Layout: "grid", Width: W, Height: H, FPS: fps}})
	if st != 200 {
		t.Fatalf("start: %d", st)
	}
	p := recPath(ev)
	time.Sleep(2500 * time.Millisecond)
	joinCamera(t, ctx, h, conf, "bob", 880, blue, false) // joins late
	time.Sleep(1500 * time.Millisecond)
	if st := h.do("POST", p+"/pause", key1, nil, nil); st != 200 {
		t.Fatalf("pause: %d", st)
	}
	time.Sleep(time.Second)
	if st := h.do("POST", p+"/resume", key1, nil, nil); st != 200 {
		t.Fatalf("resume: %d", st)
	}
	time.Sleep(1500 * time.Millisecond)
	carol.leave() // leaves early
	time.Sleep(2500 * time.Millisecond)
	var stopped RecordingDataEvent
	if st := h.do("POST", p+"/stop", key1, nil, &stopped); st != 200 || stopped.State != "STOPPED" {
		t.Fatalf("stop: %d %+v", st, stopped)
	}

	// The composition: PENDING, PROCESSING, COMPLETED.
	var comp RecordingDataMessage
	deadline := time.Now().Add(4 * time.Minute)
	for {
		h.do("GET", "/api/compositions/comp", key1, nil, &comp)
		if c := comp.Composition; c != nil && c.State == "COMPLETED" {
			break
		}
		if c := comp.Composition; time.Now().After(deadline) || (c != nil && c.State == "FAILED") {
			t.Fatalf("composition %+v", c)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var video, mix *CompositionOutput
	for i, o := range comp.Composition.Outputs {
		switch o.Type {
		case "VIDEO":
			video = &comp.Composition.Outputs[i]
		case "AUDIO":
			mix = &comp.Composition.Outputs[i]
		}
	}
	if video == nil || mix == nil || video.URL == "" || len(video.SHA256) != 64 {
		t.Fatalf("outputs %+v", comp.Composition.Outputs)
	}
	var man composition.Manifest
	if err := json.Unmarshal(fetch(t, comp.Composition.Manifest.URL), &man); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "composite.mp4")
	if err := os.WriteFile(path, fetch(t, video.URL), 0o600); err != nil {
		t.Fatal(err)
	}

	// ffprobe: H.264 640x360 at 30 fps, AAC, the recording's duration ±0.1 %.
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height,r_frame_rate:format=duration",
		"-of", "json", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	var pr struct {
		Streams []struct {
			CodecName  string `json:"codec_name"`
			Width      int    `json:"width"`
			Height     int    `json:"height"`
			RFrameRate string `json:"r_frame_rate"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	json.Unmarshal(out, &pr)
	codecs := map[string]bool{}
	for _, s := range pr.Streams {
		codecs[s.CodecName] = true
		if s.CodecName == "h264" && (s.Width != W || s.Height != H || s.RFrameRate != strconv.Itoa(fps)+"/1") {
			t.Errorf("video %dx%d %s, want %dx%d %d/1", s.Width, s.Height, s.RFrameRate, W, H, fps)
		}
	}
	dur, _ := strconv.ParseFloat(pr.Format.Duration, 64)
	length := man.Mix.Duration
	if !codecs["h264"] || !codecs["aac"] || math.Abs(dur-length) > length*0.001 {
		t.Errorf("composite: codecs %v, %.3f s; want h264 and aac, the mix's %.3f s ±0.1%%", codecs, dur, length)
	}

	// When things happened, from the manifest.
	var bobIn, carolOut float64
	for _, tr := range man.Tracks {
		switch {
		case tr.UserID == "bob" && tr.Kind == "VIDEO":
			bobIn = tr.Offset
		case tr.UserID == "carol":
			carolOut = tr.Offset + tr.Duration
		}
	}
	if len(man.Pauses) != 1 || bobIn < 2 || carolOut < 5 {
		t.Fatalf("manifest: bob at %.2f s, carol leaves at %.2f s, pauses %+v", bobIn, carolOut, man.Pauses)
	}
	pause := man.Pauses[0]
	logPlacement(t, &man, "alice")
	t.Logf("bob joins %.2f s, pause %.2f–%.2f s, carol leaves %.2f s, length %.2f s", bobIn, pause.Start, pause.End, carolOut, length)
	if d := os.Getenv("COMPOSITE_E2E_KEEP"); d != "" { // for a look at what the test saw
		os.WriteFile(filepath.Join(d, "manifest.json"), fetch(t, comp.Composition.Manifest.URL), 0o600)
		os.WriteFile(filepath.Join(d, "composite.mp4"), fetch(t, video.URL), 0o600)
	}

	// The tiles: colours by phase (the order of alice and carol, present
	// from the start, is theirs to take; bob, joining last, is third).
	frames := decodeRGB(t, path, W, H, 4)
	two := []tileBox{{0, 90, 320, 180}, {320, 90, 320, 180}}
	three := []tileBox{{0, 0, 320, 180}, {320, 0, 320, 180}, {160, 180, 320, 180}}
	colourSet := func(at float64, boxes []tileBox) map[string]int {
		n := int(at * fps)
		set := map[string]int{}
		for _, b := range boxes {
			c := frames.colourName(n, b.x+b.w/2, b.y+b.h/5)
			if c == "white" {
				c = "alice" // flashing
			}
			set[c]++
		}
		return set
	}
	for _, c := range []struct {
		what  string
		at    float64
		boxes []tileBox
		want  map[string]int
	}{
		{"before bob joins: alice and carol's placeholder", bobIn / 2, two, map[string]int{"alice": 1, "placeholder": 1}},
		{"bob joined", pause.Start - 0.2, three, map[string]int{"alice": 1, "placeholder": 1, "blue": 1}},
		{"paused: black", (pause.Start + pause.End) / 2, three, map[string]int{"black": 3}},
		{"after the pause", (pause.End + carolOut) / 2, three, map[string]int{"alice": 1, "placeholder": 1, "blue": 1}},
		{"carol left", (carolOut + length) / 2, two, map[string]int{"alice": 1, "blue": 1}},
	} {
		if got := colourSet(c.at, c.boxes); !equalCount(got, c.want) {
			t.Errorf("%s (%.2f s): tiles %v, want %v", c.what, c.at, got, c.want)
		}
	}
	if got := frames.colourName(int((pause.Start-0.2)*fps), three[2].x+three[2].w/2, three[2].y+three[2].h/5); got != "blue" {
		t.Errorf("bob, joining last, is not the third tile: %s", got)
	}

	// The audio: the tones of who is there, silence in the pause.
	pcm := mediatest.Decode(t, path, 8000)
	tone := func(freq, from, to float64) bool {
		a, b := int(from*8000), min(len(pcm), int(to*8000))
		return a < b && mediatest.ToneLevel(pcm[a:b], 8000, freq) > -40
	}
	for _, c := range []struct {
		freq, from, to float64
		want           bool
	}{
		{440, 0.3, bobIn - 0.3, true}, {1320, 0.3, bobIn - 0.3, true}, {880, 0.3, bobIn - 0.3, false},
		{880, bobIn + 0.5, pause.Start - 0.1, true},
		{440, pause.Start + 0.15, pause.End - 0.15, false}, {880, pause.Start + 0.15, pause.End - 0.15, false}, {1320, pause.Start + 0.15, pause.End - 0.15, false},
		{880, carolOut + 0.3, length - 0.3, true}, {1320, carolOut + 0.3, length - 0.3, false},
	} {
		if got := tone(c.freq, c.from, c.to); got != c.want {
			t.Errorf("%g Hz in %.2f–%.2f s: %v, want %v", c.freq, c.from, c.to, got, c.want)
		}
	}

	// A/V: each flash on alice's tile against its beep.
	offsets := flashOffsets(t, frames, pcm, fps, append(two, three...), pause)
	if len(offsets) < 2 {
		t.Fatalf("%d flashes found out of the pause, want at least 2", len(offsets))
	}
	mean, lo, hi := 0.0, offsets[0], offsets[0]
	for _, o := range offsets {
		mean += o / float64(len(offsets))
		lo, hi = min(lo, o), max(hi, o)
	}
	t.Logf("A/V offsets (flash − beep) %.0f ms, mean %+.0f ms (frames are %.0f ms apart)", scale(offsets, 1000), mean*1000, 1000.0/fps)
	// No drift: every flash keeps the same offset to its beep, within a frame.
	if hi-lo > 1.0/fps+0.005 {
		t.Errorf("A/V offset drifts from %+.0f to %+.0f ms over the recording", lo*1000, hi*1000)
	}
	// Within 40 ms: the mix places alice's audio by its RTP time from the
	// least late arrival of its first packets, and the composite places her
	// video by the same rule (the track's time zero, recorder/room.go).
	if math.Abs(mean) > 0.040 {
		t.Errorf("A/V offset %+.0f ms, want within 40 ms", mean*1000)
	}
	// Chromium plays it through its signed URL to the end.
	pb := chromiumPlayURL(t, video.URL)
	if !pb.Ended || pb.Err != "" || pb.Width != W || pb.Height != H || math.Abs(pb.Duration-dur) > 0.1 {
		t.Errorf("chromium: %+v, want %dx%d played to its end (%.2f s)", pb, W, H, dur)
	}
}

// flashOffsets returns, for every flash (a frame turning white at the
// upper middle of one of boxes) out of the pause, its time less its beep's
// in the composite's audio pcm (8 kHz).
func flashOffsets(t *testing.T, frames *rgbFrames, pcm []int16, fps float64, boxes []tileBox, pause composition.Interval) []float64 {
	t.Helper()
	white := func(n int) bool {
		for _, b := range boxes {
			if frames.colourName(n, b.x+b.w/2, b.y+b.h/5) == "white" {
				return true
			}
		}
		return false
	}
	var offsets []float64
	for n := 1; n < frames.count(); n++ {
		if !white(n) || white(n-1) {
			continue
		}
		at := float64(n) / fps
		if at >= pause.Start-flashLen && at < pause.End+flashLen {
			continue // a flash cut by the pause: its beep was in the pause
		}
		beep := -1.0
		for i := max(0, int((at-0.3)*8000)); i+80 <= min(len(pcm), int((at+0.3)*8000)); i += 8 {
			if mediatest.ToneLevel(pcm[i:i+80], 8000, beepFreq) > -30 {
				beep = float64(i+40) / 8000
				break
			}
		}
		if beep < 0 {
			t.Errorf("a flash at %.3f s without a beep", at)
			continue
		}
		offsets = append(offsets, at-beep)
	}
	return offsets
}

// logPlacement logs where user's tracks lie on the recording's timeline:
// the audio where the mix put it, the video by its arrival and by the
// sender's clock (what the composite uses when the sender reported it).
func logPlacement(t *testing.T, man *composition.Manifest, user string) {
	var audio *composition.Track
	for i, tr := range man.Tracks {
		if tr.UserID == user && tr.Kind == "AUDIO" {
			audio = &man.Tracks[i]
		}
	}
	for _, tr := range man.Tracks {
		if tr.UserID != user || tr.Kind != "VIDEO" || tr.MediaOffset == nil || audio == nil || audio.MediaOffset == nil {
			continue
		}
		vs, vok := tr.Timing.Sent()
		as, aok := audio.Timing.Sent()
		if !vok || !aok {
			t.Logf("%s: audio at %.4f s, video at %.4f s by arrival; no sender reports", user, *audio.MediaOffset, *tr.MediaOffset)
			continue
		}
		bySR := *audio.MediaOffset + vs.Sub(as).Seconds()
		t.Logf("%s: audio at %.4f s (its mediaOffset: where the mix put it), video at %.4f s by arrival, %.4f s by the sender's clock (%+.1f ms); audio sent %+.1f ms from its mediaOffset",
			user, *audio.MediaOffset, *tr.MediaOffset, bySR, (bySR-*tr.MediaOffset)*1000,
			(as.Sub(man.Started).Seconds()-*audio.MediaOffset)*1000)
	}
}

type tileBox struct{ x, y, w, h int }

func equalCount(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func scale(v []float64, k float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = math.Round(x * k)
	}
	return out
}

// rgbFrames is a video decoded to small RGB frames.
type rgbFrames struct {
	w, h, scale int
	data        []byte
}

func decodeRGB(t *testing.T, path string, width, height, scale int) *rgbFrames {
	t.Helper()
	f := &rgbFrames{w: width / scale, h: height / scale, scale: scale}
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-vf", fmt.Sprintf("scale=%d:%d:flags=area", f.w, f.h),
		"-f", "rawvideo", "-pix_fmt", "rgb24", "-").Output()
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	f.data = out
	return f
}

func (f *rgbFrames) count() int { return len(f.data) / (f.w * f.h * 3) }

// colourName names the colour at canvas pixel (x, y) of frame n: alice
// (red, or white while she flashes), blue, placeholder, black or white.
func (f *rgbFrames) colourName(n, x, y int) string {
	c := f.pixel(n, x, y)
	near := func(r, g, b int) bool {
		return abs(c[0]-r) <= 30 && abs(c[1]-g) <= 30 && abs(c[2]-b) <= 30
	}
	switch {
	case near(255, 0, 0):
		return "alice"
	case near(255, 255, 255):
		return "white"
	case near(0, 0, 255):
		return "blue"
	case near(0, 0, 0):
		return "black"
	case near(0x2b, 0x2b, 0x2b):
		return "placeholder"
	}
	return fmt.Sprintf("rgb%v", c)
}

// pixel is the colour at canvas pixel (x, y) of frame n.
func (f *rgbFrames) pixel(n, x, y int) [3]int {
	n = max(0, min(n, f.count()-1))
	i := n*f.w*f.h*3 + ((y/f.scale)*f.w+x/f.scale)*3
	return [3]int{int(f.data[i]), int(f.data[i+1]), int(f.data[i+2])}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// playback is what headless Chromium saw of a <video>.
type playback struct {
	Duration float64 `json:"duration"`
	Width    int     `json:"w"`
	Height   int     `json:"h"`
	Time     float64 `json:"t"`
	Ended    bool    `json:"ended"`
	Err      string  `json:"err"`
}

var playResult = regexp.MustCompile(`"RESULT (\{.*\})", source`)

// chromiumPlayURL plays url in a <video> of headless Chromium until it ends
// or fails (at most two minutes).
func chromiumPlayURL(t *testing.T, url string) playback {
	t.Helper()
	dir := t.TempDir()
	page := filepath.Join(dir, "play.html")
	src, _ := json.Marshal(url)
	html := `<html><body><script>
const el = document.createElement('video'); const r = {};
el.muted = true;
el.onloadedmetadata = () => { r.duration = el.duration; el.play().catch(e => r.err = String(e)); };
el.onended = () => { r.ended = true; };
el.onerror = () => { r.err = 'error ' + (el.error && (el.error.code + ' ' + el.error.message)); };
el.src = ` + string(src) + `;
document.body.appendChild(el);
setInterval(() => { r.t = el.currentTime; r.w = el.videoWidth; r.h = el.videoHeight; console.log('RESULT ' + JSON.stringify(r)); }, 500);
</script></body></html>`
	if err := os.WriteFile(page, []byte(html), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sc, stop := tooltest.Chromium(t, ctx, dir, "file://"+page)
	defer stop()
	var last playback
	for sc.Scan() {
		m := playResult.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		if err := json.Unmarshal([]byte(strings.ReplaceAll(m[1], `\"`, `"`)), &last); err != nil {
			t.Fatalf("chromium: %v: %s", err, m[1])
		}
		if last.Ended || last.Err != "" {
			return last
		}
	}
	t.Errorf("chromium: no end of playback (last report %+v)", last)
	return last
}
