package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtcrec/recorder/api"
	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/media/mediatest"
)

// TestServe_TooLateForTheMixIsShedNotShifted: with a latency budget of 1 s,
// the relay holds a Pion publisher's packets for 2.5 s, 2 s into the
// recording, then delivers them in one burst (a network stall, or a
// recorder that fell behind reading its socket: the recorder cannot tell).
// The first 1.5 s of them come later than the budget: the mix has written
// their place, so they are dropped from it without being decoded (counted:
// late dropped, not decoded) — the recorder sheds that work and catches up.
// Everything else lands at its own place: the sound's edges (an aperiodic
// on/off tone) are where the track file has them, before and after the
// stall, not shifted by it; the track file holds every packet.
func TestServe_TooLateForTheMixIsShedNotShifted(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	opus := gatedOpusTone(t, testenv.LookPath(t, "ffmpeg"), 660, 12)
	dir := t.TempDir()
	s := serveProcess(t, dir)
	key := readKey(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const stall = 2500 * time.Millisecond
	var from atomic.Int64 // unix ns; 0: not yet
	stop := publishOnSchedule(t, ctx, s, key, "shed", "o", opus, time.Time{}, 20*time.Millisecond, releasedTogether(&from, stall))
	defer stop()
	before := recorderMetrics(t, s)
	var ev api.RecordingDataEvent
	req := api.StartRecording{ApplicationID: "a", ConferenceID: "shed", ConversationID: "shed", Mix: &config.MixSettings{Latency: time.Second}}
	if st := call(t, "POST", s.url+"/api/recordings/start", key, req, &ev); st != 200 {
		t.Fatalf("start: %d", st)
	}
	time.Sleep(2 * time.Second)
	from.Store(time.Now().UnixNano())
	time.Sleep(stall + 2*time.Second)
	stopRecording(t, s, key, "shed", ev)
	after := recorderMetrics(t, s)
	objects, man := recordingFiles(t, dir, ev.InstanceID)
	var ogg composition.Track
	for _, tr := range man.Tracks {
		if strings.HasSuffix(tr.File, ".ogg") {
			ogg = tr
		}
	}
	mixData, err := os.ReadFile(objects[composition.MixFile])
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() || os.Getenv("MIXDEBUG") != "" {
			for _, l := range s.stderr.Lines("late", "anchor", "track") {
				t.Log(l)
			}
		}
	}()
	stallAt := time.Unix(0, from.Load()).Sub(man.Started)
	// The packets sent in the stall's first 1.5 s came later than the
	// budget; what the track holds there is not in the mix.
	shedFrom, shedTo := stallAt, stallAt+stall-time.Second
	mix := edges(soundBlocks(wavSamples(t, mixData), 40))
	trackPCM := mediatest.Decode(t, objects[ogg.File], 8000)
	// The track's edges where the manifest places them: its mediaOffset,
	// moved by its timing's steps (the mix's moves by arrival, its
	// sender's reports), as the offline mix places the file.
	track := placed(t, ogg, edges(soundBlocks(trackPCM, 40)))
	t.Logf("stall at %v for %v (packets from %v to %v later than the budget); track placed at %.4f s, steps %+v; edges: track %v, mix %v",
		stallAt, stall, shedFrom, shedTo, fileZero(t, ogg), ogg.Timing.Steps(), track, mix)
	delta := func(name string) float64 { return after[name] - before[name] }
	late, decoded, received := delta("recorder_rtp_packets_late_dropped_total"), delta("recorder_audio_packets_decoded_total"), delta("recorder_rtp_packets_received_total")
	t.Logf("packets received %.0f, decoded %.0f, late-dropped from the mix %.0f", received, decoded, late)
	// Every edge of the track outside the shed span (and 40 ms around it)
	// is in the mix within 20 ms; inside it the mix is silent.
	matched := 0
	for _, e := range track {
		if e > shedFrom-40*time.Millisecond && e < shedTo+40*time.Millisecond {
			continue
		}
		found := false
		for _, m := range mix {
			if (m - e).Abs() <= 20*time.Millisecond {
				found = true
			}
		}
		if !found {
			t.Errorf("the track's edge at %v is not in the mix (within 20 ms)", e)
		}
		matched++
	}
	if matched < 6 {
		t.Errorf("only %d edges of the track to compare outside the shed span", matched)
	}
	for _, m := range mix {
		if m > shedFrom+40*time.Millisecond && m < shedTo-40*time.Millisecond {
			t.Errorf("an edge at %v in the mix, within the span whose packets came later than the budget (%v–%v)", m, shedFrom, shedTo)
		}
	}
	// 75 packets were later than the budget (1.5 s of 20 ms): dropped from
	// the mix, and none of them decoded.
	if late < 70 || late > 80 {
		t.Errorf("%.0f packets late-dropped from the mix, want about 75 (1.5 s)", late)
	}
	// Each packet given to the mix pipeline was decoded or shed undecoded
	// (its log line at the track's end: a late packet whose span the
	// mixer had written only in part is decoded, and counted late too).
	var pkts, dec, shed int
	for _, l := range s.stderr.Lines("track's mix pipeline") {
		for _, f := range strings.Fields(l) {
			if k, v, ok := strings.Cut(f, "="); ok {
				n, _ := strconv.Atoi(v)
				switch k {
				case "packets":
					pkts += n
				case "decoded":
					dec += n
				case "shed":
					shed += n
				}
			}
		}
	}
	if pkts == 0 || dec+shed != pkts || shed < 70 {
		t.Errorf("the mix pipeline had %d packets, decoded %d and shed %d undecoded: want each decoded or shed, about 75 shed", pkts, dec, shed)
	}
	if got := delta("recorder_audio_packets_shed_total"); got != float64(shed) {
		t.Errorf("recorder_audio_packets_shed_total grew by %.0f, the pipeline shed %d", got, shed)
	}
	// The track file holds every packet.
	if dropped := delta(`recorder_track_packets_dropped_total{reason="late"}`) + delta("recorder_track_packets_missing_total"); dropped != 0 {
		t.Errorf("the track file lacks %.0f packets (late or missing)", dropped)
	}
}

// gatedOpusTone returns 20 ms Opus packets (48 kHz) of a freq Hz tone switched
// on and off aperiodically (by the sign of two incommensurate slow sines:
// on and off spans of 0.1–0.7 s), so that a shift of the audio moves edges
// by a measurable amount whatever its length.
func gatedOpusTone(t *testing.T, ffmpeg string, freq float64, seconds int) [][]byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gated.ogg")
	expr := fmt.Sprintf("0.25*sin(2*PI*%g*t)*gt(sin(2*PI*1.3*t)+sin(2*PI*0.71*t)\\,0.3)", freq)
	out, err := exec.Command(ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i",
		fmt.Sprintf("aevalsrc=%s:s=48000:d=%d", expr, seconds),
		"-c:a", "libopus", "-b:a", "48k", "-frame_duration", "20", "-page_duration", "20000", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	packets, err := synth.ReadOggPackets(path)
	if err != nil {
		t.Fatal(err)
	}
	return packets
}

// releasedTogether is an impairment that, once *from (unix ns) is set, holds
// every packet until stall after it and then releases them all at that very
// instant by the relay's clock (its first packet's instant plus elapsed is
// its now), in the order they came, as a network queue delivers a burst. A
// delay read off another clock reading would shuffle them.
func releasedTogether(from *atomic.Int64, stall time.Duration) impairment {
	var t0 int64 // the relay's first packet, unix ns (relay goroutine)
	return func(_ int, elapsed time.Duration) (time.Duration, bool, bool) {
		if t0 == 0 {
			t0 = time.Now().UnixNano() - int64(elapsed)
		}
		if f := from.Load(); f != 0 {
			return max(time.Duration(f+int64(stall)-(t0+int64(elapsed))), 0), false, false
		}
		return 0, false, false
	}
}
