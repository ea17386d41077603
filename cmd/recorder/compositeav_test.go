package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rtcrec/recorder/api"
	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/composition/composite"
	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/recorder/conference/whip"
	"github.com/rtcrec/recorder/recorder/conference/whip/whiptest"
)

// TestServe_CompositeKeepsAVAcrossAPause: a `recorder serve` process records
// a Pion WHIP publisher sending VP8 video with a white flash every 2 s and
// PCMU audio with a beep at each flash (both paced from one start), paused
// for a second in the middle; its composite (made by the same process)
// shows every flash within 40 ms of its beep, before and after the pause
// alike (the sound and the picture are placed by one mapping of the
// sender's time). The publisher runs in this process and the recorder in
// its own, so that a stall of one is not a stall of the other.
func TestServe_CompositeKeepsAVAcrossAPause(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	testenv.LookPath(t, "ffprobe")
	dir := t.TempDir()
	const every, flashLen, beep = 2.0, 0.2, 2000.0
	ivf := filepath.Join(dir, "flash.ivf")
	src := fmt.Sprintf("color=c=red:s=320x240:r=30:d=%g,drawbox=color=white:t=fill:enable='lt(t,%g)'", every, flashLen)
	if out, err := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", src,
		"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-g", "30", "-b:v", "300k", "-f", "ivf", ivf).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	frames, err := whiptest.ReadIVF(ivf)
	if err != nil || len(frames) != 60 {
		t.Fatalf("%d frames: %v", len(frames), err)
	}
	s := serveProcess(t, dir)
	key := readKey(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	wapi, closeFn, err := whip.NewAPI(whip.Settings{LoopbackOnly: true, UDP4Only: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeFn() })
	const conf = "avconf"
	cam, err := whiptest.JoinCamera(ctx, &whip.Client{API: wapi, Token: key}, whip.Endpoint(s.url, conf, "alice", "CAM"), "alice", frames,
		func(_ time.Time, sec float64) float64 {
			v := 6000 * math.Sin(2*math.Pi*440*sec)
			if math.Mod(sec, every) < flashLen {
				v += 6000 * math.Sin(2*math.Pi*beep*sec)
			}
			return v
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cam.Leave(context.Background()) })

	// 60 fps: the 30 fps flashes land on the composite's frame grid within
	// ±8 ms (round to the nearest frame), not ±17 ms.
	const W, H, fps = 640, 360, 60
	var ev api.RecordingDataEvent
	if st := call(t, "POST", s.url+"/api/recordings/start", key, api.StartRecording{ApplicationID: "a", ConferenceID: conf, ConversationID: conf,
		Video: true, Composite: &composite.Settings{Layout: "grid", Width: W, Height: H, FPS: fps}}, &ev); st != 200 {
		t.Fatalf("start: %d", st)
	}
	path := s.url + "/api/recordings/" + conf + "/" + ev.RecorderID + "/" + ev.InstanceID
	for _, step := range []struct {
		after time.Duration
		what  string
	}{{4500 * time.Millisecond, "/pause"}, {time.Second, "/resume"}, {4500 * time.Millisecond, "/stop"}} {
		time.Sleep(step.after) // the scenario's own time: the recording runs this long
		if st := call(t, "POST", path+step.what, key, nil, nil); st != 200 {
			t.Fatalf("%s: %d", step.what, st)
		}
	}
	cam.Leave(ctx)

	// The composition: COMPLETED, made by the same process.
	var comp api.RecordingDataMessage
	for {
		call(t, "GET", s.url+"/api/compositions/"+conf, key, nil, &comp)
		if c := comp.Composition; c != nil && c.State == "COMPLETED" {
			break
		}
		if c := comp.Composition; ctx.Err() != nil || c != nil && c.State == "FAILED" {
			t.Fatalf("composition %+v", c)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var video string
	for _, o := range comp.Composition.Outputs {
		if o.Type == "VIDEO" {
			video = o.URL
		}
	}
	get := func(url string) []byte {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
		}
		return b
	}
	if video == "" || comp.Composition.Manifest == nil {
		t.Fatalf("outputs %+v", comp.Composition.Outputs)
	}
	var man composition.Manifest
	if err := json.Unmarshal(get(comp.Composition.Manifest.URL), &man); err != nil {
		t.Fatal(err)
	}
	if len(man.Pauses) != 1 {
		t.Fatalf("pauses %+v, want one", man.Pauses)
	}
	mp4 := filepath.Join(dir, "composite.mp4")
	if err := os.WriteFile(mp4, get(video), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tr := range man.Tracks {
		if tr.MediaOffset != nil {
			t.Logf("%s %s: offset %.4f s, file from %.4f s, timing %+v", tr.UserID, tr.Kind, tr.Offset, *tr.MediaOffset, tr.Timing)
		}
	}

	// The flashes (white at the middle of the canvas, 4× smaller) against
	// the beeps of the composite's own audio.
	const scale = 4
	raw, err := exec.Command(ffmpeg, "-v", "error", "-i", mp4, "-vf", fmt.Sprintf("scale=%d:%d:flags=area", W/scale, H/scale),
		"-f", "rawvideo", "-pix_fmt", "rgb24", "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	size := W / scale * H / scale * 3
	white := func(n int) bool {
		i := n*size + (H/scale/3*(W/scale)+W/scale/2)*3
		return i+2 < len(raw) && raw[i] > 200 && raw[i+1] > 200 && raw[i+2] > 200
	}
	pcm := mediatest.Decode(t, mp4, 8000)
	pause := man.Pauses[0]
	var before, after []float64
	for n := 1; n < len(raw)/size; n++ {
		if !white(n) || white(n-1) {
			continue
		}
		at := float64(n) / fps
		if at >= pause.Start-flashLen && at < pause.End+flashLen {
			continue // cut by the pause
		}
		onset := -1.0
		for i := max(0, int((at-0.3)*8000)); i+80 <= min(len(pcm), int((at+0.3)*8000)); i += 8 {
			if mediatest.ToneLevel(pcm[i:i+80], 8000, beep) > -30 {
				onset = float64(i+40) / 8000
				break
			}
		}
		if onset < 0 {
			t.Errorf("a flash at %.3f s without a beep", at)
			continue
		}
		if at < pause.Start {
			before = append(before, at-onset)
		} else {
			after = append(after, at-onset)
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("A/V (flash − beep, frames %.0f ms apart): before the pause (%.2f–%.2f s) %.0f ms, after %.0f ms; load %.14s",
		1000.0/fps, pause.Start, pause.End, msList(before), msList(after), load)
	if len(before) == 0 || len(after) == 0 {
		t.Fatalf("flashes before the pause %d, after %d: want some of each", len(before), len(after))
	}
	all := append(append([]float64(nil), before...), after...)
	lo, hi := all[0], all[0]
	for _, o := range all {
		lo, hi = min(lo, o), max(hi, o)
		if math.Abs(o) > 0.040 {
			t.Errorf("A/V offset %+.0f ms, want within 40 ms", o*1000)
		}
	}
	// Across the pause the offset keeps to a frame (the frame grid's
	// quantisation) and 5 ms (the beep's detection).
	if hi-lo > 1.0/fps+0.005 {
		t.Errorf("A/V offset moves from %+.0f to %+.0f ms over the recording", lo*1000, hi*1000)
	}
}

func msList(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = math.Round(x * 1000)
	}
	return out
}
