package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/api"
	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/media/mediatest"
)

// TestServe_SkipCutIsSeamlessForEveryTrack pauses a recording of two real
// Pion publishers with pauseBehavior skip and resumes it. Their Opus tones
// (600 and 1400 Hz) are sent 10 ms apart in phase, so at the pause one
// track's audio ends about 10 ms before the other's, where the cut begins.
// In the mix each tone must go on across the cut with no hole: a track whose
// audio ended first resumes where it ended, not at the cut's end (that left
// 9–11 ms of silence in it, seen in a unit test before the bridge of
// AudioPipeline.ResyncAt). Checked over the whole mix, by each tone's level
// in 5 ms windows at every sample.
func TestServe_SkipCutIsSeamlessForEveryTrack(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	freqs := [2]float64{600, 1400} // whole cycles in 5 ms: each is 0 in the other's window
	var tones [2][][]byte
	for i, f := range freqs {
		var err error
		if tones[i], err = mediatest.OpusTone(ffmpeg, t.TempDir(), f, 20); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	s := serveProcess(t, dir)
	key := readKey(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const conf = "skip2"
	base := time.Now().Add(200 * time.Millisecond)
	for i := range freqs {
		stop := publishOnSchedule(t, ctx, s, key, conf, fmt.Sprintf("p%d", i+1), tones[i], base.Add(time.Duration(i)*10*time.Millisecond), 20*time.Millisecond, nil)
		defer stop()
	}
	var ev api.RecordingDataEvent
	if st := call(t, "POST", s.url+"/api/recordings/start", key, api.StartRecording{ApplicationID: "a", ConferenceID: conf, ConversationID: conf, PauseBehavior: "skip"}, &ev); st != 200 {
		t.Fatalf("start: %d", st)
	}
	path := s.url + "/api/recordings/" + conf + "/" + ev.RecorderID + "/" + ev.InstanceID
	var r api.RecordingDataEvent
	for _, step := range []struct {
		wait time.Duration
		what string
	}{{2 * time.Second, "/pause"}, {1500 * time.Millisecond, "/resume"}, {1500 * time.Millisecond, "/stop"}} {
		time.Sleep(step.wait)
		if st := call(t, "POST", path+step.what, key, nil, &r); st != 200 {
			t.Fatalf("%s: %d", step.what, st)
		}
	}
	objects, man := recordingFiles(t, dir, ev.InstanceID)
	if len(man.Pauses) != 1 || man.Pauses[0].MixStart == nil {
		t.Fatalf("manifest pauses %+v", man.Pauses)
	}
	mixData, err := os.ReadFile(objects[composition.MixFile])
	if err != nil {
		t.Fatal(err)
	}
	pcm := wavSamples(t, mixData)
	cut := *man.Pauses[0].MixStart
	defer func() { // the recorder's log of the cut
		if t.Failed() || os.Getenv("MIXDEBUG") != "" {
			for _, l := range s.stderr.Lines("paused", "resumed") {
				t.Log(l)
			}
		}
	}()
	// Both tracks' audio is in the mix from the later track's start to the
	// earlier track's end: each tone's longest hole there, and at the cut.
	var from, to float64 = 0, float64(len(pcm)) / 8000
	for _, tr := range man.Tracks {
		if strings.HasSuffix(tr.File, ".ogg") {
			from = max(from, fileZero(t, tr))
		}
	}
	from, to = from+0.1, to-0.1
	if cut < from+0.5 || cut > to-0.5 {
		t.Fatalf("the cut at %.3f s of the mix is not within the tracks' common span %.3f–%.3f s", cut, from, to)
	}
	for i, f := range freqs {
		hole, at := longestHole(pcm[int(from*8000):int(to*8000)], f)
		t.Logf("%g Hz: longest hole in the mix %v at %.3f s (the cut at %.3f s)", f, hole, from+at.Seconds(), cut)
		if hole > 3*time.Millisecond {
			t.Errorf("publisher %d (%g Hz): a hole of %v in the mix at %.3f s (the skipped pause is cut at %.3f s)", i+1, f, hole, from+at.Seconds(), cut)
		}
	}
}

// longestHole returns the longest run of 5 ms windows of pcm (one starting
// at every sample) in which the tone at freq is more than 20 dB below its
// median level, as a duration (a hole of d shows as a run of about d less
// 4 ms; a phase jump of the tone as a few samples), and where it begins.
func longestHole(pcm []int16, freq float64) (time.Duration, time.Duration) {
	const w = 40 // 5 ms at 8 kHz: 600 and 1400 Hz are 3 and 7 whole cycles
	n := len(pcm) - w + 1
	if n <= 0 {
		return 0, 0
	}
	level := make([]float64, n)
	for i := range level {
		level[i] = mediatest.Goertzel(pcm[i:i+w], 8000, freq)
	}
	sorted := slices.Clone(level)
	slices.Sort(sorted)
	floor := sorted[len(sorted)/2] / 10
	best, bestAt, run := 0, 0, 0
	for i, l := range level {
		if l >= floor {
			run = 0
			continue
		}
		run++
		if run > best {
			best, bestAt = run, i-run+1
		}
	}
	ms := func(k int) time.Duration { return time.Duration(k) * time.Second / 8000 }
	return ms(best), ms(bestAt)
}
