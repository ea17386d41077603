// Package tooltest runs the external media tools (ffprobe, soxi, sox,
// opusdec, ffmpeg) that the file writers' tests validate their output with.
// A missing tool skips the test outside CI and fails it under CI=true
// (internal/testenv); every run is bounded in time.
package tooltest

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/rtcrec/recorder/internal/testenv"
)

// Timeout bounds every tool run.
const Timeout = 60 * time.Second

// Run runs the named program with args and returns its standard output,
// failing the test when it exits with an error.
func Run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	path := testenv.LookPath(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, stderr.Bytes())
	}
	return stdout.Bytes()
}

// Probe is what ffprobe reports about a file's first stream and its format.
type Probe struct {
	FormatName string  // e.g. "ogg", "matroska,webm", "mov,mp4,m4a,3gp,3g2,mj2"
	Duration   float64 // format duration in seconds
	StartTime  float64 // format start time in seconds
	CodecName  string  // e.g. "opus", "vp8", "h264"
	Width      int
	Height     int
	SampleRate int
	Channels   int
	Frames     int // frames counted by decoding (-count_frames); 0 for audio
}

// FFProbe runs ffprobe on path and returns what it reports. With
// countFrames it decodes the whole stream to count frames.
func FFProbe(t testing.TB, path string, countFrames bool) Probe {
	t.Helper()
	args := []string{"-v", "error", "-print_format", "json", "-show_format", "-show_streams"}
	if countFrames {
		args = append(args, "-count_frames")
	}
	out := Run(t, "ffprobe", append(args, path)...)
	var r struct {
		Format struct {
			FormatName string `json:"format_name"`
			Duration   string `json:"duration"`
			StartTime  string `json:"start_time"`
		} `json:"format"`
		Streams []struct {
			CodecName  string `json:"codec_name"`
			Width      int    `json:"width"`
			Height     int    `json:"height"`
			SampleRate string `json:"sample_rate"`
			Channels   int    `json:"channels"`
			NbRead     string `json:"nb_read_frames"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	if len(r.Streams) == 0 {
		t.Fatalf("ffprobe %s: no streams", path)
	}
	p := Probe{FormatName: r.Format.FormatName, CodecName: r.Streams[0].CodecName,
		Width: r.Streams[0].Width, Height: r.Streams[0].Height, Channels: r.Streams[0].Channels}
	p.Duration, _ = strconv.ParseFloat(r.Format.Duration, 64)
	p.StartTime, _ = strconv.ParseFloat(r.Format.StartTime, 64)
	p.SampleRate, _ = strconv.Atoi(r.Streams[0].SampleRate)
	p.Frames, _ = strconv.Atoi(r.Streams[0].NbRead)
	return p
}

// CheckDecodes decodes every frame of path with ffmpeg and fails the test
// with what ffmpeg reports at level error, if anything.
func CheckDecodes(t testing.TB, path string) {
	t.Helper()
	bin := testenv.LookPath(t, "ffmpeg")
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-nostdin", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("ffmpeg decoding %s: %v\n%s", path, err, out)
	}
}

// DecodePCM decodes any audio file sox reads (WAV in every format here) to
// mono 16-bit samples at its own rate.
func DecodePCM(t testing.TB, path string) []int16 {
	t.Helper()
	raw := Run(t, "sox", path, "-t", "raw", "-e", "signed-integer", "-b", "16", "-L", "-c", "1", "-")
	pcm := make([]int16, len(raw)/2)
	for i := range pcm {
		pcm[i] = int16(uint16(raw[2*i]) | uint16(raw[2*i+1])<<8)
	}
	return pcm
}

// TotalAllocs calls f runs times and returns the total number of heap
// allocations, as testing.AllocsPerRun measures them but without its
// rounding down of the average: one allocation every 50 calls shows here.
func TotalAllocs(runs int, f func()) uint64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f() // warm up
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return after.Mallocs - before.Mallocs
}
