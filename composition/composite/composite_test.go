package composite

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/media/wavwriter"
)

// A synthetic recording made with ffmpeg the way the recorder lays one out:
// per-track WebM (VP8) and Ogg/Opus files, mix.wav at 8 kHz and a manifest.

// part is one participant of a synthetic recording.
type part struct {
	user      string
	color     string  // video colour (ffmpeg name); "" for audio only
	size      string  // video size
	rate      int     // video frame rate (15 when 0)
	freq      float64 // tone
	from, to  float64 // seconds of the recording
	videoLag  float64 // the video file's first frame, seconds after the track start (as the recorder's first keyframe)
	flash     float64 // recording time of a 0.2 s white flash in the video and a 2 kHz beep in the audio (and the mix); 0: none
	loudUntil float64 // speaker test: the tone stops here (0: plays throughout)
	loudFrom  float64 // speaker test: the tone starts here
	screen    bool    // a screen share (video only, stream type SCREEN)
	audioLag  float64 // the audio file's first sample, seconds after the track start (its mediaOffset)
	mixEarly  float64 // the live mix holds the beep this much earlier than the track does (a re-anchor)
}

type fixture struct {
	parts     []part
	length    float64 // seconds
	pause     *span   // paused interval (pauseBehavior silence)
	blackouts []composition.Interval
	noMix     bool // recorded with "mix": "none": no mix.wav
}

const mixRate = 8000

func ffmpegRun(t testing.TB, args ...string) {
	t.Helper()
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	cmd := exec.Command(ffmpeg, append([]string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// audible reports whether the participant's tone sounds at recording time s.
func (f *fixture) audible(p part, s float64) bool {
	if s < p.from || s >= p.to || (p.loudUntil > 0 && s >= p.loudUntil) || s < p.loudFrom {
		return false
	}
	if f.pause != nil && s >= f.pause.from && s < f.pause.to {
		return false
	}
	for _, b := range f.blackouts {
		if b.UserID == p.user && s >= b.Start && s < b.End {
			return false
		}
	}
	return true
}

// write lays out the recording in dir and returns the manifest's path.
func (f *fixture) write(t testing.TB, dir string) string {
	t.Helper()
	os.MkdirAll(filepath.Join(dir, "tracks"), 0o755)
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	m := &composition.Manifest{ConversationID: "conv", RecorderID: "rec", InstanceID: "inst", State: "STOPPED",
		Started: t0, Stopped: t0.Add(time.Duration(f.length * float64(time.Second))), PauseBehavior: "silence",
		Blackouts: f.blackouts}
	if f.pause != nil {
		m.Pauses = []composition.Interval{{Start: f.pause.from, End: f.pause.to}}
	}
	for _, p := range f.parts {
		d := p.to - p.from
		vol := "1"
		if p.loudUntil > 0 || p.loudFrom > 0 {
			vol = fmt.Sprintf("'between(t,%g,%g)'", p.loudFrom-p.from, p.loudUntil-p.from)
		}
		stream, typ := p.user, "CAM"
		if p.screen {
			stream, typ = p.user+"-screen", "SCREEN"
		}
		if !p.screen {
			audio := "tracks/" + p.user + "-audio.ogg"
			src := fmt.Sprintf("sine=frequency=%g:sample_rate=48000:duration=%g,volume=%s:eval=frame", p.freq, d-p.audioLag, vol)
			if p.flash > 0 { // the beep, in the track as a sender sends it
				at := p.flash - p.from - p.audioLag
				src = fmt.Sprintf("aevalsrc=exprs='0.125*sin(2*PI*%g*t)+0.125*sin(2*PI*2000*t)*between(t,%g,%g)':s=48000:d=%g",
					p.freq, at, at+0.2, d-p.audioLag)
			}
			ffmpegRun(t, "-f", "lavfi", "-i", src, "-c:a", "libopus", "-b:a", "32k", filepath.Join(dir, audio))
			tr := composition.Track{StreamID: stream, TrackID: "audio", UserID: p.user, StreamType: typ,
				Kind: "AUDIO", Codec: "audio/opus", File: audio, Offset: p.from, Duration: d}
			if p.audioLag > 0 {
				zero := p.from + p.audioLag
				tr.MediaOffset = &zero
			}
			m.Tracks = append(m.Tracks, tr)
			if p.color == "" {
				continue
			}
		}
		video := "tracks/" + stream + "-video.webm"
		rate := cmp.Or(p.rate, 15)
		src := fmt.Sprintf("color=c=%s:s=%s:r=%d:d=%g,drawtext=fontfile=%s:text=%%{n}:fontsize=40:x=20:y=20", p.color, p.size, rate, d-p.videoLag, FontFiles[0])
		if p.flash > 0 {
			at := p.flash - p.from - p.videoLag
			src += fmt.Sprintf(",drawbox=color=white:t=fill:enable='between(t,%g,%g)'", at, at+0.2)
		}
		ffmpegRun(t, "-f", "lavfi", "-i", src, "-c:v", "libvpx", "-b:v", "200k", "-deadline", "realtime", "-cpu-used", "8",
			"-output_ts_offset", strconv.FormatFloat(p.videoLag, 'f', 3, 64), filepath.Join(dir, video))
		m.Tracks = append(m.Tracks, composition.Track{StreamID: stream, TrackID: "video", UserID: p.user, StreamType: typ,
			Kind: "VIDEO", Codec: "video/VP8", File: video, Offset: p.from, Duration: d})
	}
	path := filepath.Join(dir, composition.ManifestFile)
	if f.noMix {
		if err := composition.WriteManifest(path, m); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// The mix, as the recorder's mixer makes it.
	n := int(f.length * mixRate)
	mix := make([]int16, n)
	for _, p := range f.parts {
		for i := range mix {
			s := float64(i) / mixRate
			if f.audible(p, s) {
				mix[i] += int16(4000 * math.Sin(2*math.Pi*p.freq*(s-p.from)))
			}
			if at := p.flash - p.mixEarly; p.flash > 0 && s >= at && s < at+0.2 {
				mix[i] += int16(4000 * math.Sin(2*math.Pi*2000*s))
			}
		}
	}
	w, err := wavwriter.New(filepath.Join(dir, composition.MixFile), wavwriter.WithSampleRate(mixRate), wavwriter.WithChannels(1))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 160 {
		if err := w.WriteFrame(mix[i:min(n, i+160)]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if m.Mix, err = composition.ReadMix(filepath.Join(dir, composition.MixFile)); err != nil {
		t.Fatal(err)
	}
	if err := composition.WriteManifest(path, m); err != nil {
		t.Fatal(err)
	}
	return path
}

// video is a composite decoded to small RGB frames for sampling.
type video struct {
	w, h, scale int
	frames      [][]byte
}

// decodeVideo decodes every frame of path scaled down by scale.
func decodeVideo(t *testing.T, path string, width, height, scale int) *video {
	t.Helper()
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	v := &video{w: width / scale, h: height / scale, scale: scale}
	out, err := exec.Command(ffmpeg, "-v", "error", "-i", path, "-vf", fmt.Sprintf("scale=%d:%d:flags=area", v.w, v.h),
		"-f", "rawvideo", "-pix_fmt", "rgb24", "-").Output()
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	size := v.w * v.h * 3
	for i := 0; i+size <= len(out); i += size {
		v.frames = append(v.frames, out[i:i+size])
	}
	return v
}

// at returns the colour at canvas pixel (x, y) of frame n.
func (v *video) at(n, x, y int) [3]int {
	f := v.frames[min(n, len(v.frames)-1)]
	i := ((y/v.scale)*v.w + x/v.scale) * 3
	return [3]int{int(f[i]), int(f[i+1]), int(f[i+2])}
}

var colours = map[string][3]int{
	"red": {255, 0, 0}, "blue": {0, 0, 255}, "green": {0, 128, 0}, "yellow": {255, 255, 0},
	"white": {255, 255, 255}, "black": {0, 0, 0}, "placeholder": {0x2b, 0x2b, 0x2b},
}

func near(c [3]int, name string) bool {
	want := colours[name]
	d := 0
	for i := range c {
		d = max(d, abs(c[i]-want[i]))
	}
	return d <= 40
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// probe is what ffprobe says of the composite.
type probe struct {
	Streams []struct {
		CodecType  string `json:"codec_type"`
		CodecName  string `json:"codec_name"`
		Width      int    `json:"width"`
		Height     int    `json:"height"`
		RFrameRate string `json:"r_frame_rate"`
		Duration   string `json:"duration"`
		SampleRate string `json:"sample_rate"`
		StartTime  string `json:"start_time"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

func ffprobe(t *testing.T, path string) probe {
	t.Helper()
	bin := testenv.LookPath(t, "ffprobe")
	out, err := exec.Command(bin, "-v", "error", "-show_entries",
		"stream=codec_type,codec_name,width,height,r_frame_rate,duration,sample_rate,start_time:format=duration", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func parseF(s string) float64 {
	v, _ := strconv.ParseFloat(s, 64)
	return v
}

// tileAt is a sampling point of the box b: the middle of its upper part,
// clear of the placeholder's centred name and of the name label.
func tileAt(b box) (int, int) { return b.x + b.w/2, b.y + b.h/5 }

// checkProbe checks codecs, size, rate and duration.
func checkProbe(t *testing.T, path string, w, h, fps int, length float64) {
	t.Helper()
	p := ffprobe(t, path)
	var v, a bool
	for _, s := range p.Streams {
		switch s.CodecType {
		case "video":
			v = true
			if s.CodecName != "h264" || s.Width != w || s.Height != h || s.RFrameRate != strconv.Itoa(fps)+"/1" {
				t.Errorf("video stream %s %dx%d %s, want h264 %dx%d %d/1", s.CodecName, s.Width, s.Height, s.RFrameRate, w, h, fps)
			}
		case "audio":
			a = true
			if s.CodecName != "aac" {
				t.Errorf("audio codec %s, want aac", s.CodecName)
			}
		}
	}
	if !v || !a {
		t.Fatalf("streams %+v: want one video and one audio", p.Streams)
	}
	if d := parseF(p.Format.Duration); math.Abs(d-length) > length*0.001 {
		t.Errorf("duration %.4fs, want %.3fs ±0.1%%", d, length)
	}
}

// toneIn reports whether the tone freq sounds in pcm over [from, to) seconds.
func toneIn(pcm []int16, rate int, freq, from, to float64) bool {
	a, b := int(from*float64(rate)), min(len(pcm), int(to*float64(rate)))
	if a >= b {
		return false
	}
	return mediatest.ToneLevel(pcm[a:b], rate, freq) > -40
}

func compose(t *testing.T, manifest string, s Settings) (string, *Result) {
	t.Helper()
	testenv.LookPath(t, "ffmpeg")
	testenv.LookPath(t, "ffprobe")
	out := filepath.Join(filepath.Dir(manifest), File)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := ComposePath(ctx, filepath.Dir(manifest), "", s, Options{Nice: 5})
	if err != nil {
		t.Fatal(err)
	}
	if res.File != out {
		t.Fatalf("written to %s, want %s", res.File, out)
	}
	return out, res
}

// TestCompose_Grid: three participants, one joining late and one leaving
// early, one audio-only, a pause with silence and a blackout. Each tile
// shows the right colour at the right time, the layout changes at the join
// and the leave, the audio holds the right tones, and the picture is in
// sync with the sound within 40 ms.
func TestCompose_Grid(t *testing.T) {
	f := &fixture{
		length: 10,
		parts: []part{
			// The live mix holds alice's beep 130 ms before her track does, as
			// it does after it re-anchored a track at a resume (seen with
			// Chromium): the composite's sound comes from the tracks.
			{user: "alice", color: "red", size: "320x240", freq: 440, from: 0, to: 8, videoLag: 0.3, flash: 3.2, mixEarly: 0.13},
			{user: "bob", color: "blue", size: "320x180", freq: 880, from: 2, to: 10},
			{user: "carol", freq: 1320, from: 0, to: 6},
		},
		pause:     &span{4.5, 5.5},
		blackouts: []composition.Interval{{UserID: "bob", Start: 6.4, End: 7.4}},
	}
	dir := t.TempDir()
	manifest := f.write(t, dir)
	const W, H, fps = 640, 360, 15
	out, res := compose(t, manifest, Settings{Layout: LayoutGrid, Width: W, Height: H, FPS: fps})
	if res.Tiles != 3 || !res.Audio {
		t.Errorf("result %+v: want 3 tiles and audio", res)
	}
	checkProbe(t, out, W, H, fps, f.length)

	v := decodeVideo(t, out, W, H, 4)
	if want := int(f.length * fps); abs(len(v.frames)-want) > 1 {
		t.Fatalf("%d frames, want %d", len(v.frames), want)
	}
	two := [2]box{{0, 90, 320, 180}, {320, 90, 320, 180}}
	three := [3]box{{0, 0, 320, 180}, {320, 0, 320, 180}, {160, 180, 320, 180}}
	full := box{0, 0, 640, 360}
	type look struct {
		at     float64
		b      box
		colour string
		what   string
	}
	for _, c := range []look{
		{1, two[0], "red", "alice before bob joins: left of two"},
		{1, two[1], "placeholder", "carol (audio only): a placeholder, right of two"},
		{2.1, three[2], "blue", "bob joined: third of three at once"},
		{3, three[0], "red", "alice: first of three"},
		{3, three[1], "placeholder", "carol: second of three (in order of joining)"},
		{3, three[2], "blue", "bob: third of three"},
		{5, full, "black", "paused: black"},
		{5, three[0], "black", "paused: black"},
		{6.9, two[1], "black", "bob blacked out: marked"},
		{7.7, two[0], "red", "carol left: alice left of two"},
		{7.7, two[1], "blue", "carol left: bob right of two"},
		{9, full, "blue", "alice left: bob alone"},
	} {
		x, y := tileAt(c.b)
		n := int(c.at * fps)
		if got := v.at(n, x, y); !near(got, c.colour) {
			t.Errorf("at %.1fs (%d,%d) colour %v, want %s: %s", c.at, x, y, got, c.colour, c.what)
		}
	}
	// The name label: white text on a dark box at the tile's bottom left.
	if got := v.at(int(3*fps), three[2].x+12, three[2].y+three[2].h-10); near(got, "blue") {
		t.Errorf("no name label on bob's tile: %v", got)
	}

	pcm := mediatest.Decode(t, out, mixRate)
	for _, c := range []struct {
		from, to float64
		freq     float64
		want     bool
	}{
		{0.5, 1.5, 440, true}, {0.5, 1.5, 1320, true}, {0.5, 1.5, 880, false},
		{2.5, 3.0, 880, true}, {2.5, 3.0, 1320, true},
		{4.7, 5.3, 440, false}, {4.7, 5.3, 880, false}, {4.7, 5.3, 1320, false},
		{6.6, 7.2, 440, true}, {6.6, 7.2, 880, false}, {6.6, 7.2, 1320, false},
		{8.5, 9.5, 880, true}, {8.5, 9.5, 440, false},
	} {
		if got := toneIn(pcm, mixRate, c.freq, c.from, c.to); got != c.want {
			t.Errorf("%g Hz in %.1f–%.1fs: %v, want %v", c.freq, c.from, c.to, got, c.want)
		}
	}

	// A/V sync: alice's flash against its beep.
	x, y := tileAt(three[0])
	flash := -1.0
	for n := int(2.8 * fps); n < int(3.8*fps); n++ {
		if near(v.at(n, x, y), "white") {
			flash = float64(n) / fps
			break
		}
	}
	beep := -1.0
	for i := int(2.8 * mixRate); i < int(3.8*mixRate); i += 40 {
		if mediatest.ToneLevel(pcm[i:i+80], mixRate, 2000) > -30 {
			beep = float64(i) / mixRate
			break
		}
	}
	if flash < 0 || beep < 0 {
		t.Fatalf("flash at %.3fs, beep at %.3fs: not found", flash, beep)
	}
	if d := flash - beep; math.Abs(d) > 0.040 {
		t.Errorf("A/V offset %.0f ms (flash %.3fs, beep %.3fs), want within 40 ms", d*1000, flash, beep)
	}
	t.Logf("A/V: flash %.3fs, beep %.3fs, offset %+.0f ms", flash, beep, (flash-beep)*1000)
}

// TestCompose_MixNone: a recording made with "mix": "none" has no mix.wav;
// the composite mixes the tracks itself, each placed at its mediaOffset
// (where the live mix would have put it), with the pause silent and the
// blacked-out participant silent, and lasts the recording's length.
func TestCompose_MixNone(t *testing.T) {
	f := &fixture{
		length: 10,
		noMix:  true,
		parts: []part{
			{user: "alice", color: "red", size: "320x240", freq: 440, from: 0, to: 8},
			{user: "bob", color: "blue", size: "320x180", freq: 880, from: 2, to: 10, audioLag: 0.4},
			{user: "carol", freq: 1320, from: 0, to: 6},
		},
		pause:     &span{4.5, 5.5},
		blackouts: []composition.Interval{{UserID: "bob", Start: 6.4, End: 7.4}},
	}
	dir := t.TempDir()
	manifest := f.write(t, dir)
	if _, err := os.Stat(filepath.Join(dir, composition.MixFile)); !os.IsNotExist(err) {
		t.Fatalf("the fixture has a mix: %v", err)
	}
	const W, H, fps = 640, 360, 15
	out, res := compose(t, manifest, Settings{Layout: LayoutGrid, Width: W, Height: H, FPS: fps})
	if res.Tiles != 3 || !res.Audio {
		t.Errorf("result %+v: want 3 tiles and audio", res)
	}
	checkProbe(t, out, W, H, fps, f.length)
	if entries, _ := os.ReadDir(dir); len(entries) != 3 { // manifest.json, tracks, composite.mp4
		t.Errorf("the recording's directory holds %d entries, want 3 (no mix left beside it)", len(entries))
	}

	pcm := mediatest.Decode(t, out, mixRate)
	if got, want := float64(len(pcm))/mixRate, f.length; math.Abs(got-want) > want*0.001 {
		t.Errorf("audio lasts %.4fs, want %.3fs ±0.1%%", got, want)
	}
	for _, c := range []struct {
		from, to float64
		freq     float64
		want     bool
	}{
		{0.5, 1.5, 440, true}, {0.5, 1.5, 1320, true}, {0.5, 1.5, 880, false},
		{2.05, 2.35, 880, false}, // bob's file begins at his mediaOffset (2.4 s), not his offset
		{2.5, 3.0, 880, true}, {2.5, 3.0, 1320, true}, {2.5, 3.0, 440, true},
		{4.7, 5.3, 440, false}, {4.7, 5.3, 880, false}, {4.7, 5.3, 1320, false},
		{5.6, 5.95, 1320, true},
		{6.6, 7.2, 440, true}, {6.6, 7.2, 880, false}, {6.6, 7.2, 1320, false},
		{7.6, 7.95, 880, true},
		{8.5, 9.5, 880, true}, {8.5, 9.5, 440, false},
	} {
		if got := toneIn(pcm, mixRate, c.freq, c.from, c.to); got != c.want {
			t.Errorf("%g Hz in %.2f–%.2fs: %v, want %v", c.freq, c.from, c.to, got, c.want)
		}
	}
	// Bob's tone starts where his file starts: within 20 ms of 2.4 s.
	onset := -1.0
	for i := int(2.2 * mixRate); i+80 <= int(2.8*mixRate); i += 8 {
		if mediatest.ToneLevel(pcm[i:i+80], mixRate, 880) > -30 {
			onset = float64(i+40) / mixRate
			break
		}
	}
	if math.Abs(onset-2.4) > 0.020 {
		t.Errorf("bob's tone starts at %.3fs, want 2.400s (his mediaOffset) ±20 ms", onset)
	}
}

// TestCompose_Speaker: the main area follows who speaks, with the other in
// the strip.
func TestCompose_Speaker(t *testing.T) {
	f := &fixture{
		length: 10,
		parts: []part{
			{user: "alice", color: "red", size: "320x180", freq: 440, from: 0, to: 10, loudFrom: 0, loudUntil: 4},
			{user: "bob", color: "blue", size: "320x180", freq: 880, from: 0, to: 10, loudFrom: 5, loudUntil: 10},
		},
	}
	dir := t.TempDir()
	manifest := f.write(t, dir)
	const W, H, fps = 640, 360, 15
	out, _ := compose(t, manifest, Settings{Layout: LayoutSpeaker, Width: W, Height: H, FPS: fps})
	checkProbe(t, out, W, H, fps, f.length)
	v := decodeVideo(t, out, W, H, 4)
	main := box{even((W - 512) / 2), 0, 512, 288}
	for _, c := range []struct {
		at     float64
		colour string
	}{{2, "red"}, {4.5, "red"}, {7, "blue"}, {9.5, "blue"}} {
		x, y := tileAt(main)
		if got := v.at(int(c.at*fps), x, y); !near(got, c.colour) {
			t.Errorf("main area at %.1fs: %v, want %s", c.at, got, c.colour)
		}
	}
	// The strip holds the other one.
	if got := v.at(int(2*fps), W/2, H-72/2-10); !near(got, "blue") {
		t.Errorf("strip at 2s: %v, want blue (bob)", got)
	}
}

// TestCompose_ScreenShareTakesTheMainArea: in a grid, a screen share goes to
// the main area while it lasts and everyone else to the strip.
func TestCompose_ScreenShareTakesTheMainArea(t *testing.T) {
	f := &fixture{
		length: 6,
		parts: []part{
			{user: "alice", color: "red", size: "320x180", freq: 440, from: 0, to: 6},
			{user: "bob", color: "blue", size: "320x180", freq: 880, from: 0, to: 6},
			{user: "alice", color: "yellow", size: "640x360", from: 2, to: 4, screen: true},
		},
	}
	dir := t.TempDir()
	manifest := f.write(t, dir)
	const W, H, fps = 640, 360, 15
	out, res := compose(t, manifest, Settings{Layout: LayoutGrid, Width: W, Height: H, FPS: fps})
	if res.Tiles != 3 {
		t.Errorf("%d tiles, want 3 (two cameras, one screen)", res.Tiles)
	}
	v := decodeVideo(t, out, W, H, 4)
	main := box{64, 0, 512, 288}
	strip := [2]box{{192, 288, 128, 72}, {320, 288, 128, 72}}
	grid := [2]box{{0, 90, 320, 180}, {320, 90, 320, 180}}
	for _, c := range []struct {
		at     float64
		b      box
		colour string
	}{
		{1, grid[0], "red"}, {1, grid[1], "blue"},
		{3, main, "yellow"}, {3, strip[0], "red"}, {3, strip[1], "blue"},
		{5, grid[0], "red"}, {5, grid[1], "blue"},
	} {
		x, y := tileAt(c.b)
		if got := v.at(int(c.at*fps), x, y); !near(got, c.colour) {
			t.Errorf("at %.0fs (%d,%d): %v, want %s", c.at, x, y, got, c.colour)
		}
	}
}

// TestCompose_Single: the single layout shows one participant's camera over
// the canvas (bob's blue, never alice's red) and the sound is everyone's.
func TestCompose_Single(t *testing.T) {
	f := &fixture{length: 4, parts: []part{
		{user: "alice", color: "red", size: "320x240", freq: 440, from: 0, to: 4},
		{user: "bob", color: "blue", size: "320x240", freq: 880, from: 0, to: 4},
	}}
	manifest := f.write(t, t.TempDir())
	const W, H, fps = 320, 240, 5
	out, res := compose(t, manifest, Settings{Layout: LayoutSingle, UserID: "bob", Width: W, Height: H, FPS: fps})
	if !res.Audio {
		t.Errorf("result %+v: want audio", res)
	}
	v := decodeVideo(t, out, W, H, 4)
	for _, at := range []float64{0.5, 2, 3.5} {
		for _, p := range [][2]int{{W / 2, H / 2}, {3 * W / 4, H / 4}, {W / 4, 3 * H / 4}} { // not the frame counter (top left)
			if got := v.at(int(at*fps), p[0], p[1]); !near(got, "blue") {
				t.Errorf("at %.1fs (%d,%d) colour %v, want bob's blue", at, p[0], p[1], got)
			}
		}
	}
	pcm := mediatest.Decode(t, out, mixRate)
	for _, freq := range []float64{440, 880} {
		if !toneIn(pcm, mixRate, freq, 0.5, 3.5) {
			t.Errorf("%g Hz missing: the sound is everyone's", freq)
		}
	}
}

// TestCompose_FollowsTheSendersClockSteps: one participant whose video
// capture stalled 300 ms at 2 s of its file and whose audio clock runs
// 1 % fast against its wall clock; each file holds its media back to back
// (a flash each second of the video file, a beep each second of the
// sender's wall clock in the audio), and each track's timing lists the
// sender reports that show its clock moving (timing.mappings). The
// composite places the picture and the sound piecewise by them: every
// flash within 40 ms of its beep, where by the files' own timestamps the
// flashes after the stall are 300 ms early and the beeps drift 1 %.
func TestCompose_FollowsTheSendersClockSteps(t *testing.T) {
	const length, fps = 9.0, 30
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "tracks"), 0o755)
	sender0 := time.Date(2026, 1, 1, 7, 0, 0, 0, time.UTC) // the sender's wall clock
	// Video: file time f is the sender's wall time f, and f + 0.3 from the stall at file 2 s.
	ffmpegRun(t, "-f", "lavfi", "-i", fmt.Sprintf("color=c=red:s=320x240:r=%d:d=%g,drawbox=color=white:t=fill:enable='between(mod(t+0.5,1),0,0.2)'", fps, length-0.5),
		"-c:v", "libvpx", "-b:v", "300k", "-deadline", "realtime", "-cpu-used", "8", filepath.Join(dir, "tracks", "alice-video.webm"))
	vwall := func(f float64) float64 {
		if f >= 2 {
			return f + 0.3
		}
		return f
	}
	// Audio: 1 % fast, a beep at each flash's wall time.
	const speed = 1.01
	beeps := fmt.Sprintf("if(lt(t/%[1]g,2.3),between(mod(t/%[1]g,1),0.5,0.7),between(mod(t/%[1]g-0.3,1),0.5,0.7))", speed)
	ffmpegRun(t, "-f", "lavfi", "-i", fmt.Sprintf("aevalsrc=exprs='0.125*sin(2*PI*440*t)+0.25*sin(2*PI*2000*t)*%s':s=48000:d=%g", beeps, length-0.5),
		"-c:a", "libopus", "-b:a", "48k", filepath.Join(dir, "tracks", "alice-audio.ogg"))
	// The reports: the video's, before its stall and just after it; the
	// audio's, a second apart. RTP zero is 0 for both.
	report := func(rate float64, file, wall float64) composition.Mapping {
		return composition.Mapping{NTP: sender0.Add(time.Duration(wall * float64(time.Second))), RTP: uint32(math.Round(file * rate)), File: file}
	}
	vt := &composition.TrackTiming{ClockRate: 90000, Mappings: []composition.Mapping{report(90000, 1, vwall(1)), report(90000, 2.05, vwall(2.05))}}
	at := &composition.TrackTiming{ClockRate: 48000}
	for w := 0.25; w < length-0.5; w++ {
		at.Mappings = append(at.Mappings, report(48000, w*speed, w))
	}
	zero := 0.5 // both files' first samples at 0.5 s of the recording
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	m := &composition.Manifest{ConversationID: "conv", RecorderID: "rec", InstanceID: "inst", State: "STOPPED",
		Started: t0, Stopped: t0.Add(time.Duration(length * float64(time.Second))), PauseBehavior: "silence",
		Tracks: []composition.Track{
			{StreamID: "alice", TrackID: "audio", UserID: "alice", StreamType: "CAM", Kind: "AUDIO", Codec: "audio/opus",
				File: "tracks/alice-audio.ogg", Offset: zero, MediaOffset: &zero, Duration: length - zero, Timing: at},
			{StreamID: "alice", TrackID: "video", UserID: "alice", StreamType: "CAM", Kind: "VIDEO", Codec: "video/VP8",
				File: "tracks/alice-video.webm", Offset: zero, MediaOffset: &zero, Duration: length - zero, Timing: vt},
		}}
	manifest := filepath.Join(dir, composition.ManifestFile)
	if err := composition.WriteManifest(manifest, m); err != nil {
		t.Fatal(err)
	}
	const W, H = 320, 180
	out, _ := compose(t, manifest, Settings{Layout: LayoutGrid, Width: W, Height: H, FPS: fps})
	v := decodeVideo(t, out, W, H, 4)
	pcm := mediatest.Decode(t, out, 8000)
	white := func(n int) bool { return near(v.at(n, W/2, H/2), "white") }
	var offsets []float64
	for n := 1; n < len(v.frames); n++ {
		if !white(n) || white(n-1) {
			continue
		}
		flash := float64(n) / fps
		beep := -1.0
		for i := max(0, int((flash-0.4)*8000)); i+80 <= min(len(pcm), int((flash+0.4)*8000)); i += 8 {
			if mediatest.ToneLevel(pcm[i:i+80], 8000, 2000) > -30 {
				beep = float64(i+40) / 8000
				break
			}
		}
		if beep < 0 {
			t.Errorf("a flash at %.3f s without a beep", flash)
			continue
		}
		offsets = append(offsets, math.Round((flash-beep)*1000))
		if math.Abs(flash-beep) > 0.040 {
			t.Errorf("flash at %.3f s, beep at %.3f s: %+.0f ms, want within 40 ms", flash, beep, (flash-beep)*1000)
		}
	}
	t.Logf("flash − beep: %v ms", offsets)
	if len(offsets) < 7 {
		t.Errorf("%d flashes, want 8", len(offsets))
	}
}
