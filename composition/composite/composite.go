package composite

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/rtcrec/recorder/composition"
)

// File is the composite's file name within a recording.
const File = "composite.mp4"

// Options say how to run ffmpeg.
type Options struct {
	FFmpeg  string // the ffmpeg binary; "ffmpeg" on PATH when empty
	FFprobe string // the ffprobe binary; "ffprobe" on PATH when empty
	// FontFile draws the names; when empty the first of FontFiles that exists.
	FontFile string
	Nice     int    // the niceness ffmpeg and ffprobe run at (0: unchanged), so it never starves live recordings
	Threads  int    // ffmpeg -threads (0: ffmpeg's choice)
	Preset   string // x264 preset; veryfast when empty
	Logger   *slog.Logger

	cpu *time.Duration // sums the tools' CPU time
}

// FontFiles are the fonts looked for when Options.FontFile is empty: Debian's
// fonts-dejavu-core first (in the Docker image and scripts/test-deps.sh).
var FontFiles = []string{
	"/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
	"/usr/share/fonts/TTF/DejaVuSans.ttf",
	"/usr/share/fonts/dejavu/DejaVuSans.ttf",
	"/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
	"/usr/share/fonts/truetype/freefont/FreeSans.ttf",
}

// Result describes a composite that was written.
type Result struct {
	File     string        `json:"file"` // the path written
	Layout   string        `json:"layout"`
	Width    int           `json:"width"`
	Height   int           `json:"height"`
	FPS      int           `json:"fps"`
	Frames   int           `json:"frames"`
	Duration float64       `json:"duration"` // seconds
	Tiles    int           `json:"tiles"`    // participants and screen shares shown
	Audio    bool          `json:"audio"`    // the mix is its audio
	Elapsed  time.Duration `json:"-"`        // wall time of Compose
	CPU      time.Duration `json:"-"`        // CPU time (user and system) of the ffmpeg and ffprobe runs
}

// ComposePath composes the recording at path: a recording directory or its
// manifest.json. out defaults to composite.mp4 beside the manifest.
func ComposePath(ctx context.Context, path, out string, s Settings, o Options) (*Result, error) {
	if err := s.WithDefaults().Validate(); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, composition.ManifestFile)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("composite: %w", err)
	}
	m, err := composition.ReadManifest(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	if out == "" {
		out = filepath.Join(dir, File)
	}
	return Compose(ctx, dir, m, out, s, o)
}

// Compose writes the composite of the recording described by m, whose files
// are in dir, to out (atomically: a temporary file renamed at the end). It
// runs ffmpeg (and ffprobe) as subprocesses; ctx ending kills them.
func Compose(ctx context.Context, dir string, m *composition.Manifest, out string, s Settings, o Options) (*Result, error) {
	started := time.Now()
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	font := o.FontFile
	if font == "" {
		for _, f := range FontFiles {
			if _, err := os.Stat(f); err == nil {
				font = f
				break
			}
		}
		if font == "" {
			return nil, errors.New("composite: no font to draw names with: install fonts-dejavu-core or set the font file")
		}
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	var cpu time.Duration
	o.cpu = &cpu
	probe := func(file string) videoInfo {
		vi, err := probeVideo(ctx, o, filepath.Join(dir, filepath.FromSlash(file)))
		if err != nil {
			o.Logger.Warn("composite: video track not shown", "file", file, "err", err)
		}
		return vi
	}
	p, err := newPlan(m, s, probe)
	if err != nil {
		return nil, err
	}
	var turns []turn
	if s.Layout == LayoutSpeaker {
		levels, err := p.levels(ctx, o, dir)
		if err != nil {
			return nil, err
		}
		turns = p.speakerTurns(levels)
	}
	p.layout(turns)

	live := "" // the recorder's mix, if the recording has one
	if m.Mix != nil && m.Mix.File != "" && !strings.Contains(m.Mix.File, "..") {
		live = filepath.Join(dir, filepath.FromSlash(m.Mix.File))
	} else if _, err := os.Stat(filepath.Join(dir, composition.MixFile)); err == nil {
		live = filepath.Join(dir, composition.MixFile)
	}
	if live != "" {
		if _, err := os.Stat(live); err != nil {
			live = ""
		}
	}
	work, err := os.MkdirTemp(filepath.Dir(out), ".composite-")
	if err != nil {
		return nil, fmt.Errorf("composite: %w", err)
	}
	defer os.RemoveAll(work)
	// The sound is the recording's mix made again from the track files
	// (composition.MixManifestLength: each track where the live mix put its
	// first sample, its own timestamps after that, the pauses and blackouts
	// applied), as long as the picture. The picture is placed from the same
	// files by the same clock, so the two cannot part: the live mix
	// re-anchors a track whose timestamps stop fitting its arrival (after a
	// pause, say), and a picture placed from the file would not follow it.
	// Without audio tracks there is no sound; when the tracks cannot be
	// mixed, the live mix is the sound.
	mix := ""
	if hasAudio(m) {
		file := filepath.Join(work, composition.MixFile)
		err := mixTracks(ctx, o, m, dir, file, p.dur)
		switch {
		case err == nil:
			mix = file
		case ctx.Err() != nil:
			return nil, fmt.Errorf("composite: %w", ctx.Err())
		case live == "":
			return nil, fmt.Errorf("composite: mixing the tracks: %w", err)
		default:
			o.Logger.Warn("composite: the tracks cannot be mixed: the recording's mix is the sound", "err", err)
			mix = live
		}
	}
	g := buildGraph(p, mix != "")
	if err := os.Symlink(font, filepath.Join(work, fontFile)); err != nil {
		return nil, fmt.Errorf("composite: font: %w", err)
	}
	for name, text := range g.texts {
		if err := os.WriteFile(filepath.Join(work, name), []byte(text), 0o600); err != nil {
			return nil, fmt.Errorf("composite: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(work, "graph.txt"), []byte(g.script), 0o600); err != nil {
		return nil, fmt.Errorf("composite: %w", err)
	}
	tmp := filepath.Join(work, "out.mp4")
	args := []string{"-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y"}
	for _, in := range g.inputs {
		// A camera changes resolution mid-call: the tile's scale takes every
		// size, where reconfiguring the whole graph would restart the canvas.
		args = append(args, "-reinit_filter", "0", "-i", filepath.Join(dir, filepath.FromSlash(in)))
	}
	if mix != "" {
		args = append(args, "-i", mix)
	}
	args = append(args, "-filter_complex_script", "graph.txt", "-map", "[v]")
	if mix != "" {
		args = append(args, "-map", "[a]", "-c:a", "aac", "-b:a", "96k")
	}
	args = append(args, "-c:v", "libx264", "-preset", o.Preset, "-crf", "23", "-pix_fmt", "yuv420p",
		"-g", strconv.Itoa(2*s.FPS), "-r", strconv.Itoa(s.FPS), "-movflags", "+faststart")
	if o.Threads > 0 {
		args = append(args, "-threads", strconv.Itoa(o.Threads), "-filter_complex_threads", strconv.Itoa(o.Threads))
	}
	args = append(args, "-f", "mp4", tmp)
	if _, err := run(ctx, o, work, o.FFmpeg, args...); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, out); err != nil {
		return nil, fmt.Errorf("composite: %w", err)
	}
	shown := 0
	for _, t := range p.tiles {
		if len(t.places) > 0 {
			shown++
		}
	}
	res := &Result{File: out, Layout: s.Layout, Width: s.Width, Height: s.Height, FPS: s.FPS, Frames: p.tl.frames,
		Duration: p.dur, Tiles: shown, Audio: mix != "", Elapsed: time.Since(started), CPU: cpu}
	o.Logger.Info("composite written", "file", out, "layout", s.Layout, "duration", p.dur, "tiles", shown,
		"elapsed", res.Elapsed.Round(time.Millisecond), "cpu", res.CPU.Round(time.Millisecond))
	return res, nil
}

// offlineMixRate is the sample rate of the composite's mix: wideband speech
// (ffmpeg resamples it to AAC's 48 kHz).
const offlineMixRate = 16000

// mixTracks mixes m's audio tracks into file, seconds long, on an OS thread
// of its own at the tools' niceness (the thread ends with it), adding its
// CPU time to the tools'. ctx ending stops it.
func mixTracks(ctx context.Context, o Options, m *composition.Manifest, dir, file string, seconds float64) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread, niced, exits with the goroutine
		if o.Nice > 0 {
			if err := setThreadNice(o.Nice); err != nil {
				o.Logger.Warn("composite: cannot lower the priority of the mix", "err", err)
			}
		}
		before := threadCPU()
		_, err := composition.MixManifestLength(ctx, m, dir, file, offlineMixRate, seconds)
		if o.cpu != nil {
			*o.cpu += threadCPU() - before
		}
		done <- err
	}()
	return <-done
}

// hasAudio reports whether m lists an audio track.
func hasAudio(m *composition.Manifest) bool {
	for _, t := range m.Tracks {
		if t.Kind == "AUDIO" {
			return true
		}
	}
	return false
}

func (o Options) withDefaults() Options {
	if o.FFmpeg == "" {
		o.FFmpeg = "ffmpeg"
	}
	if o.FFprobe == "" {
		o.FFprobe = "ffprobe"
	}
	if o.Preset == "" {
		o.Preset = "veryfast"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// run runs a tool at o.Nice and returns its standard output; an error
// carries the end of its standard error.
func run(ctx context.Context, o Options, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stdout bytes.Buffer
	stderr := &tail{max: 4 << 10}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("composite: %s: %w", filepath.Base(name), err)
	}
	if o.Nice > 0 {
		if err := setNice(cmd.Process.Pid, o.Nice); err != nil {
			o.Logger.Warn("composite: cannot lower the priority of "+filepath.Base(name), "err", err)
		}
	}
	err := cmd.Wait()
	if o.cpu != nil && cmd.ProcessState != nil {
		*o.cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("composite: %s: %w", filepath.Base(name), ctx.Err())
		}
		return nil, fmt.Errorf("composite: %s: %w: %s", filepath.Base(name), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// tail keeps the last max bytes written to it.
type tail struct {
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tail) String() string { return string(t.buf) }

// probeVideo asks ffprobe for a video file's first stream.
func probeVideo(ctx context.Context, o Options, path string) (videoInfo, error) {
	if _, err := os.Stat(path); err != nil {
		return videoInfo{}, err
	}
	out, err := run(ctx, o, "", o.FFprobe, "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=width,height,start_time:format=start_time", "-of", "json", path)
	if err != nil {
		return videoInfo{}, err
	}
	var r struct {
		Streams []struct {
			Width     int    `json:"width"`
			Height    int    `json:"height"`
			StartTime string `json:"start_time"`
		} `json:"streams"`
		Format struct {
			StartTime string `json:"start_time"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return videoInfo{}, fmt.Errorf("ffprobe: %w", err)
	}
	if len(r.Streams) == 0 || r.Streams[0].Width <= 0 || r.Streams[0].Height <= 0 {
		return videoInfo{}, errors.New("no video stream")
	}
	st := r.Streams[0]
	start, err := strconv.ParseFloat(st.StartTime, 64)
	if err != nil || math.IsNaN(start) || math.IsInf(start, 0) {
		start = 0
	}
	return videoInfo{ok: true, start: start, w: st.Width, h: st.Height}, nil
}

// levels decodes every tile's audio tracks (ffmpeg, 8 kHz mono) and returns
// each tile's level per window of the composite.
func (p *plan) levels(ctx context.Context, o Options, dir string) (map[string][]float64, error) {
	const rate = 8000
	windows := int(math.Ceil(p.dur/levelWindow)) + 1
	out := map[string][]float64{}
	for _, t := range p.tiles {
		if t.screen || len(t.audio) == 0 {
			continue
		}
		lv := make([]float64, windows)
		for i := range lv {
			lv[i] = math.Inf(-1)
		}
		for _, a := range t.audio {
			raw, err := run(ctx, o, "", o.FFmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
				"-i", filepath.Join(dir, filepath.FromSlash(a.file)), "-f", "s16le", "-ac", "1", "-ar", strconv.Itoa(rate), "-")
			if err != nil {
				o.Logger.Warn("composite: no levels for an audio track", "file", a.file, "err", err)
				continue
			}
			pcm := make([]int16, len(raw)/2)
			binary.Read(bytes.NewReader(raw[:2*len(pcm)]), binary.LittleEndian, pcm)
			first := int(math.Round(a.at / levelWindow))
			for i, v := range levelsOf(pcm, rate) {
				if w := first + i; w >= 0 && w < windows {
					lv[w] = max(lv[w], v)
				}
			}
		}
		out[t.key] = lv
	}
	return out, nil
}

var _ io.Writer = (*tail)(nil)
