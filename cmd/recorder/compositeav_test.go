package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/api"
	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/composition/composite"
	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/internal/tooltest"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/recorder/conference/whip"
	"github.com/rtcrec/recorder/recorder/conference/whip/whiptest"
)

// The flash-and-beep publishers: a white flash of avFlashLen seconds every
// avEvery seconds, and a beep of avBeep Hz with each.
const avEvery, avFlashLen, avBeep = 2.0, 0.2, 2000.0

// avFlashAt is when in each avEvery the Pion publisher's flash and beep
// begin: on a frame (9 at 30 fps) between its video's keyframes (frames 0
// and 30), so that the first frame a recording can show is never a flash's
// first, and none while the slipping clock's capture stalls (7.5-7.6 s), so
// that no beep loses its onset to the stall. A flash on the video's first frame
// is left out (checkCompositeAV cannot tell when it began): with the flash
// at 0 s, on a keyframe, a recording whose video began there kept one
// flash before the pause (session 14, the A/B of anchor's branch; session
// 13, follow's run 1: "flashes before the pause 1, after 2: want 2 of each").
const avFlashAt = 0.3

// TestServe_CompositeKeepsAVAcrossAPause: a `recorder serve` process records
// a Pion WHIP publisher sending VP8 video with a white flash every 2 s and
// PCMU audio with a beep at each flash (both paced from one start), paused
// for a second in the middle; its composite (made by the same process)
// shows every flash within 40 ms of its beep, before and after the pause
// alike (the sound and the picture are placed by one mapping of the
// sender's time). The publisher runs in this process and the recorder in
// its own, so that a stall of one is not a stall of the other.
func TestServe_CompositeKeepsAVAcrossAPause(t *testing.T) {
	pionAV(t, "avconf", whiptest.AudioClock{}, avSource{})
}

// TestServe_CompositeFollowsASenderWhoseAudioClockSlips: as
// TestServe_CompositeKeepsAVAcrossAPause, but the publisher's audio clock
// runs 0.5 % slow against its wall clock and its video, and 7.5 s in its
// capture stalls and loses 100 ms of audio (whiptest.AudioClock: the file
// holds the samples back to back, so by the end its beeps are ~150 ms early
// against the flashes by the files' own timestamps). The sender's RTCP
// reports say so; the recorder keeps the reports whose mapping moved
// (timing.mappings) and the composite places the audio piecewise by them:
// every flash within 40 ms of its beep across the whole recording, and every
// beep of the mix within 20 ms of the sender's clock. That holds for the
// audio captured after the stall and before the report that confirms its
// step (the second after it; media's followReport) too: the live mix holds
// the track's audio from the packets' gap at the stall, and moves it by the
// step once confirmed (media's hold), and the composite and the offline mix
// place the file as the mix did (timing.moves). The beep at 8.3 s is in
// that window whatever the phase of the publisher's reports (Pion's 1 s
// ticker from its connection): the first report after the stall may come
// before or after it, the second comes after it, and by 9.9 s, before the
// recording stops (its camera began 0.3-1.4 s before it, and it lasts 10
// s); the pause ends before the stall. Before the hold that
// audio was the stall early (session 14, with the stall at 6.5 s, when the
// reports' phase put a beep in the window: -125 ms in the mix, A/V +117
// ms); the stall's window is logged.
func TestServe_CompositeFollowsASenderWhoseAudioClockSlips(t *testing.T) {
	pionAV(t, "slipconf", whiptest.AudioClock{Rate: 0.995, StallAt: 7500 * time.Millisecond, Stall: 100 * time.Millisecond},
		avSource{slips: true, least: 2})
}

// TestServe_CompositeKeepsAVWhenTheFirstAudioReportIsLate: as
// TestServe_CompositeKeepsAVAcrossAPause, but the first RTCP sender
// reports of the publisher's audio the recording sees are stamped 455 ms
// late (lateReports; Pion stamps a report by when it last wrote a packet,
// and TestDemo's alice, session 11, sent one 455 ms late while her writes
// lagged on a busy machine), the later ones honest. The live mix leaves
// the late ones out (they place the audio 455 ms after it came) and places
// the audio by its arrival and the honest reports; the composite places
// the video against where the mix placed the audio by the reports it
// followed (timing.mixSent), not by the first report kept
// (timing.mappings[0]): every flash within 40 ms of its beep. By the first
// report kept the picture came 455 ms before its sound.
func TestServe_CompositeKeepsAVWhenTheFirstAudioReportIsLate(t *testing.T) {
	pionAV(t, "lateconf", whiptest.AudioClock{}, avSource{lateReport: 455 * time.Millisecond})
}

// TestServe_CompositeKeepsAVWhenTheFirstVideoReportIsLate: as
// TestServe_CompositeKeepsAVWhenTheFirstAudioReportIsLate, but the
// publisher's first VIDEO reports are stamped 100 ms late (session 15's
// Slips under hogs: the first video report 31, 35 and 800 ms late, A/V +41
// and +44 ms). The recording keeps the first video report and, once the
// next honest one confirms it, the first honest one, a step back
// (timing.mappings); the composite places the video by the first (100 ms
// late) until that step, unless it sees that the first report placed the
// video after its arrival and was taken back: every flash within 40 ms of
// its beep.
func TestServe_CompositeKeepsAVWhenTheFirstVideoReportIsLate(t *testing.T) {
	pionAV(t, "latevconf", whiptest.AudioClock{}, avSource{lateReport: 100 * time.Millisecond, lateVideo: true})
}

// lateReports is a Pion interceptor under a publisher's report interceptor
// that stamps the RTCP sender reports of its audio (of its video, with
// video) late by by (the NTP time later, for the same RTP time) until the
// instant until (unix ns), as Pion stamps one when the publisher's writes
// lag.
type lateReports struct {
	interceptor.NoOp
	by    time.Duration
	video bool
	until atomic.Int64
	ssrc  atomic.Int64 // 1<<32 | the SSRC of the track it stamps late; 0: not bound yet
}

func (l *lateReports) NewInterceptor(string) (interceptor.Interceptor, error) { return l, nil }

func (l *lateReports) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	kind := "audio/"
	if l.video {
		kind = "video/"
	}
	if strings.HasPrefix(strings.ToLower(info.MimeType), kind) {
		l.ssrc.Store(1<<32 | int64(info.SSRC))
	}
	return w
}

func (l *lateReports) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, attr interceptor.Attributes) (int, error) {
		if time.Now().UnixNano() >= l.until.Load() {
			return w.Write(pkts, attr)
		}
		out := slices.Clone(pkts)
		for i, p := range out {
			if sr, ok := p.(*rtcp.SenderReport); ok && l.ssrc.Load() == 1<<32|int64(sr.SSRC) {
				late := *sr
				late.NTPTime += uint64(l.by.Seconds() * (1 << 32)) // NTP: 32.32 fixed point seconds
				out[i] = &late
			}
		}
		return w.Write(out, attr)
	})
}

// pionAV runs checkCompositeAV on a Pion flash-and-beep publisher whose
// audio keeps clock; with av.lateReport, its audio's (video's, with
// av.lateVideo) sender reports are stamped late until lateWindow after the
// recording's start.
func pionAV(t *testing.T, conf string, clock whiptest.AudioClock, av avSource) {
	t.Helper()
	if testing.Short() {
		t.Skip("real-time media test")
	}
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	testenv.LookPath(t, "ffprobe")
	dir := t.TempDir()
	ivf := filepath.Join(dir, "flash.ivf")
	src := fmt.Sprintf("color=c=red:s=320x240:r=30:d=%g,drawbox=color=white:t=fill:enable='between(n,%.0f,%.0f)'", avEvery, avFlashAt*30, (avFlashAt+avFlashLen)*30-1)
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
	var reports *senderReports
	if clock.Stall > 0 {
		reports = &senderReports{}
		wapi = loopbackAPI(t, reports)
	}
	if av.lateReport > 0 {
		late := &lateReports{by: av.lateReport, video: av.lateVideo}
		late.until.Store(math.MaxInt64)
		wapi = loopbackAPI(t, late)
		av.started = func() { late.until.Store(time.Now().Add(lateWindow).UnixNano()) }
	}
	cam, err := whiptest.JoinCameraWith(ctx, &whip.Client{API: wapi, Token: key}, whip.Endpoint(s.url, conf, "alice", "CAM"), "alice", frames,
		func(_ time.Time, sec float64) float64 {
			v := 6000 * math.Sin(2*math.Pi*440*sec)
			if m := math.Mod(sec, avEvery); m >= avFlashAt && m < avFlashAt+avFlashLen {
				v += 6000 * math.Sin(2*math.Pi*avBeep*sec)
			}
			return v
		}, clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cam.Leave(context.Background()) })
	if reports != nil {
		av.stall = func() stallWindow { return reports.window(cam.Started(), clock) }
	}

	checkCompositeAV(t, s, key, conf, dir, func() { cam.Leave(ctx) }, av)
}

// checkCompositeAV records conf (whose publisher is connected) for 4.5 s,
// pauses it for 1 s, records 4.5 s more and stops, calls leave, and checks
// the composite the process makes of it: every flash of the publisher (a
// white frame at the upper middle of the canvas, avFlashLen every avEvery
// seconds) within 40 ms of its beep (avBeep Hz), before and after the
// pause alike.
func checkCompositeAV(t *testing.T, s *server, key, conf, dir string, leave func(), src avSource) {
	t.Helper()
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	// 60 fps: the 30 fps flashes land on the composite's frame grid within
	// ±8 ms (round to the nearest frame), not ±17 ms.
	const W, H, fps = 640, 360, 60
	var ev api.RecordingDataEvent
	if st := call(t, "POST", s.url+"/api/recordings/start", key, api.StartRecording{ApplicationID: "a", ConferenceID: conf, ConversationID: conf,
		Video: true, Composite: &composite.Settings{Layout: "grid", Width: W, Height: H, FPS: fps}}, &ev); st != 200 {
		t.Fatalf("start: %d", st)
	}
	if src.started != nil {
		src.started()
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
	leave()

	// The composition: COMPLETED, made by the same process.
	var comp api.RecordingDataMessage
	deadline := time.Now().Add(4 * time.Minute)
	for {
		call(t, "GET", s.url+"/api/compositions/"+conf, key, nil, &comp)
		if c := comp.Composition; c != nil && c.State == "COMPLETED" {
			break
		}
		if c := comp.Composition; time.Now().After(deadline) || c != nil && c.State == "FAILED" {
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
	if keep := os.Getenv("COMPOSITE_AV_KEEP"); keep != "" { // for a look at what the test saw
		if out, err := exec.Command("cp", "-r", dir, keep).CombinedOutput(); err != nil {
			t.Logf("keep: %v %s", err, out)
		}
	}
	for _, tr := range man.Tracks {
		if tr.MediaOffset != nil {
			t.Logf("%s %s: offset %.4f s, file from %.4f s, timing %+v", tr.UserID, tr.Kind, tr.Offset, *tr.MediaOffset, tr.Timing)
		}
		if src.lateReport > 0 && tr.Kind == "AUDIO" && !src.lateVideo {
			// The scenario: the first report the recording kept is the
			// late one (the latest, after lateWindow, is honest).
			first, ok := tr.Timing.FirstSent()
			latest, lok := tr.Timing.Sent()
			if d := first.Sub(latest); !ok || !lok || (d-src.lateReport).Abs() > 60*time.Millisecond {
				t.Fatalf("the audio's first report kept says its first sample was sent %v after its latest report does, want about %v: the test shows nothing",
					d, src.lateReport)
			}
		}
		if src.lateReport > 0 && tr.Kind == "VIDEO" && src.lateVideo {
			// The scenario: the first video report the recording kept
			// is a late one, and an honest one after lateWindow a step
			// back from it by as much or more (Pion may stamp the first
			// later still, by a write that lagged as the publisher
			// started: +33 and +70 ms seen under -race at load 23-26,
			// and the latest report too: 65 ms).
			back := 0.0
			steps := tr.Timing.Steps()
			for _, st := range steps {
				back = min(back, st.By)
			}
			if back > -src.lateReport.Seconds()+0.020 {
				t.Fatalf("the video's steps %+v, want one back by %v or more: the test shows nothing", steps, src.lateReport)
			}
		}
	}
	// The mix holds the audio track where its file has it, on both sides of
	// the pause (issue 10: no jump at the resume), as the sender's reports
	// place it: for a sender whose audio clock slips the file holds the
	// samples back to back, and the live mix follows the reports, as the
	// composite and the offline mix do.
	mixOnsets := mixAgreesWithTrack(t, dir, ev.InstanceID, avBeep)
	var stall stallWindow
	if src.stall != nil {
		stall = src.stall()
		for _, l := range stall.log {
			t.Log(l)
		}
		t.Logf("the capture stall: %s", stall.describe(man.Started))
	}
	// stalled reports whether the recording's instant at (seconds) is in
	// the stall's window.
	stalled := func(at float64) bool { return stall.holds(man.Started.Add(time.Duration(at * float64(time.Second)))) }
	if src.slips && len(mixOnsets) > 0 {
		// One clock: the sender's wall clock, not its audio clock, places
		// its audio in the live mix (by its reports). Its beeps leave
		// avEvery apart by its wall clock (its audio clock, 0.5 % slow
		// with a 100 ms stall, counts them 100-150 ms apart by the end): in
		// the mix each is within 20 ms of a whole number of avEvery after
		// the first, in the stall's window too (the live mix holds the
		// audio from the stall and moves it by the step once confirmed:
		// media's hold).
		ref := mixOnsets[0]
		var offs []float64
		for _, o := range mixOnsets[1:] {
			d := (o - ref).Seconds()
			off := d - math.Round(d/avEvery)*avEvery
			offs = append(offs, off)
			if math.Abs(off) > 0.020 {
				where := ""
				if stalled(o.Seconds()) {
					where = " (in the stall's window)"
				}
				t.Errorf("the mix's beep at %v is %+.0f ms from the sender's clock (beeps %v s apart from the one at %v)%s", o, off*1000, avEvery, ref, where)
			}
		}
		t.Logf("the mix's beeps from the one at %v: %.0f ms off the sender's clock", ref, msList(offs))
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
	// red: the publisher's picture between flashes (both publishers draw
	// red); before its video's first keyframe the tile is a grey placeholder.
	red := func(n int) bool {
		i := n*size + (H/scale/3*(W/scale)+W/scale/2)*3
		return i+2 < len(raw) && raw[i] > 150 && raw[i+1] < 100 && raw[i+2] < 100
	}
	pcm := mediatest.Decode(t, mp4, 8000)
	pause := man.Pauses[0]
	// The recording may begin inside a flash: its first white frame is
	// then the first keyframe's and its beep is cut at the audio's first
	// sample. A flash that begins within a flash's length after both
	// tracks began, or on the video's first frame (the frame before it is
	// not the publisher's red), is left out.
	begun := 0.0
	for _, tr := range man.Tracks {
		if tr.MediaOffset != nil {
			begun = max(begun, *tr.MediaOffset)
		}
	}
	var before, after []float64
	for n := 1; n < len(raw)/size; n++ {
		if !white(n) || white(n-1) {
			continue
		}
		at := float64(n) / fps
		if at >= pause.Start-avFlashLen && at < pause.End+avFlashLen {
			continue // cut by the pause
		}
		if at < begun+avFlashLen+1.0/fps || !red(n-1) {
			// The video's first keyframe came during the flash: the
			// flash shows from the keyframe on, after its beep began.
			t.Logf("a flash at %.3f s, as the tracks began (%.3f s) or the video's first frame: left out", at, begun)
			continue
		}
		onset := -1.0
		for i := max(0, int((at-0.3)*8000)); i+80 <= min(len(pcm), int((at+0.3)*8000)); i += 8 {
			if mediatest.ToneLevel(pcm[i:i+80], 8000, avBeep) > -30 {
				onset = float64(i+40) / 8000
				break
			}
		}
		if onset < 0 {
			t.Errorf("a flash at %.3f s without a beep", at)
			continue
		}
		note := ""
		if src.note != nil {
			note = "; " + src.note(man.Started.Add(time.Duration(at*float64(time.Second))))
		}
		if stalled(at) {
			note += " (in the stall's window)"
		}
		t.Logf("flash at %.3f s, beep at %.3f s: %+.0f ms%s", at, onset, (at-onset)*1000, note)
		if at < pause.Start {
			before = append(before, at-onset)
		} else {
			after = append(after, at-onset)
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("A/V (flash − beep; frames %.0f ms apart): before the pause (%.3f–%.3f s) %.0f ms, after %.0f ms; load %.14s",
		1000.0/fps, pause.Start, pause.End, msList(before), msList(after), load)
	if len(before) < src.least || len(after) < src.least {
		t.Fatalf("flashes before the pause %d, after %d: want %d of each", len(before), len(after), max(src.least, 1))
	}
	if len(before) == 0 || len(after) == 0 {
		t.Fatalf("flashes before the pause %d, after %d: want some of each", len(before), len(after))
	}
	if src.median {
		// Each side of the pause: its flashes' median offset within 40 ms.
		for _, side := range []struct {
			what string
			v    []float64
		}{{"before the pause", before}, {"after the pause", after}} {
			if m := median(side.v); math.Abs(m) > 0.040 {
				t.Errorf("A/V offset %s %+.0f ms (median of %.0f ms), want within 40 ms", side.what, m*1000, msList(side.v))
			}
		}
		return
	}
	all := append(append([]float64(nil), before...), after...)
	lo, hi := all[0], all[0]
	for _, o := range all {
		lo, hi = min(lo, o), max(hi, o)
		if math.Abs(o) > 0.040 {
			t.Errorf("A/V offset %+.0f ms, want within 40 ms", o*1000)
		}
	}
	if src.slips {
		// The mix follows the sender's clock a report at a time (a kept
		// report is 10 ms or more from the one before): the offset may
		// move within the bound.
		if len(man.Tracks) == 0 || !slices.ContainsFunc(man.Tracks, func(tr composition.Track) bool {
			return tr.Kind == "AUDIO" && tr.Timing != nil && len(tr.Timing.Steps()) > 0
		}) {
			t.Errorf("the audio track's timing shows no step of its sender's clock")
		}
		return
	}
	// Across the pause the offset keeps to a frame (the frame grid's
	// quantisation) and 5 ms (the beep's detection).
	if hi-lo > 1.0/fps+0.005 {
		t.Errorf("A/V offset moves from %+.0f to %+.0f ms over the recording", lo*1000, hi*1000)
	}
}

// avSource says how exact a flash-and-beep publisher is. The zero value is
// a publisher whose every flash leaves with its beep to the sample (Pion,
// pacing both from one start): every flash within 40 ms, and the offset
// the same across the pause to a frame.
type avSource struct {
	// median: the publisher stamps each flash and its beep apart by a
	// varying few ms (a browser's capture paths), more under load: the
	// median offset of each side of the pause is within 40 ms.
	median bool
	least  int // flashes wanted on each side of the pause
	// slips: the publisher's audio clock slips against its video; every
	// flash is within 40 ms, the offset may move (the mix follows the
	// sender's reports), and the audio track's timing shows the steps.
	slips bool
	note  func(time.Time) string // what the publisher says of the flash at a wall time (logged)
	// lateReport: the publisher's audio reports (video reports, with
	// lateVideo) are stamped this late until lateWindow after the
	// recording's start (pionAV), which calls started once the recording
	// started.
	lateReport time.Duration
	lateVideo  bool
	started    func()
	// stall: for a publisher whose capture stalls (whiptest.AudioClock),
	// when the live mix holds its audio for the stall's step (logged).
	stall func() stallWindow
}

// stallWindow is when, on the sender's wall clock, the live mix holds a
// publisher's audio for the capture stall's step (by): from the stall to
// the report that confirms its step (the second after it) and that
// report's trial (media's reportTrial, 300 ms) and a packet. Before media's
// hold the mix placed that audio the stall early. Its zero value holds no
// instant.
type stallWindow struct {
	from, to time.Time
	by       time.Duration
	log      []string // what the sender's audio reports said, and when
}

func (w stallWindow) holds(at time.Time) bool { return !at.Before(w.from) && at.Before(w.to) }

// describe says where the window is against the recording's start.
func (w stallWindow) describe(started time.Time) string {
	if w.to.IsZero() {
		return "none"
	}
	return fmt.Sprintf("%v at %.3f s of the recording; its step confirmed by %.3f s", w.by, w.from.Sub(started).Seconds(), w.to.Sub(started).Seconds())
}

// senderReports is a Pion interceptor under a publisher's report
// interceptor that keeps when each RTCP sender report of its audio and its
// video left and what it said, and each one's first RTP time.
type senderReports struct {
	interceptor.NoOp
	mu      sync.Mutex
	streams map[uint32]*sentStream // by SSRC
}

// sentStream is what the publisher sent of its audio or its video.
type sentStream struct {
	video   bool
	first   uint32 // its first packet's RTP time
	sending bool   // first is set
	reports []sentReport
}

// sentReport is one sender report: it left at at and said the sender's wall
// clock was ntp at RTP time rtp.
type sentReport struct {
	at, ntp time.Time
	rtp     uint32
}

func (r *senderReports) NewInterceptor(string) (interceptor.Interceptor, error) { return r, nil }

func (r *senderReports) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	st := &sentStream{video: strings.HasPrefix(strings.ToLower(info.MimeType), "video/")}
	r.mu.Lock()
	if r.streams == nil {
		r.streams = map[uint32]*sentStream{}
	}
	r.streams[info.SSRC] = st
	r.mu.Unlock()
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		r.mu.Lock()
		if !st.sending {
			st.sending, st.first = true, h.Timestamp
		}
		r.mu.Unlock()
		return w.Write(h, payload, a)
	})
}

func (r *senderReports) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, attr interceptor.Attributes) (int, error) {
		now := time.Now()
		r.mu.Lock()
		for _, p := range pkts {
			if sr, ok := p.(*rtcp.SenderReport); ok && r.streams[sr.SSRC] != nil && r.streams[sr.SSRC].sending {
				st := r.streams[sr.SSRC]
				sec, frac := int64(sr.NTPTime>>32)-2208988800, sr.NTPTime&0xffffffff // NTP: seconds since 1900, 32.32 fixed point
				st.reports = append(st.reports, sentReport{at: now, ntp: time.Unix(sec, int64(frac*1e9>>32)), rtp: sr.RTPTime})
			}
		}
		r.mu.Unlock()
		return w.Write(pkts, attr)
	})
}

// window returns the stall's window of a camera started at start whose
// audio keeps clock, with a line per report sent: when it left (after the
// camera's start) and how late it was stamped (Pion stamps a report by
// when it last wrote a packet: against when its RTP time was captured; the
// camera's video is 30 fps from its start).
func (r *senderReports) window(start time.Time, clock whiptest.AudioClock) stallWindow {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := stallWindow{from: start.Add(clock.StallAt), by: clock.Stall, to: time.Now()}
	for _, st := range r.streams {
		kind, after := "audio", 0 // after: reports made after the stall ended
		for _, s := range st.reports {
			captured := start.Add(clock.CapturedAt(int(s.rtp - st.first)))
			if st.video {
				kind, captured = "video", start.Add(time.Duration(float64(s.rtp-st.first)/90000*float64(time.Second)))
			}
			w.log = append(w.log, fmt.Sprintf("the sender's %s report at %.3f s of its time: stamped %+.1f ms against the capture",
				kind, s.at.Sub(start).Seconds(), s.ntp.Sub(captured).Seconds()*1000))
			if !st.video && s.at.After(w.from.Add(clock.Stall)) {
				if after++; after == 2 {
					w.to = s.at.Add(320 * time.Millisecond)
				}
			}
		}
	}
	return w
}

// lateWindow is how long after the recording's start a publisher with
// avSource.lateReport stamps its reports late: its first packets
// reach the recording within it (and Pion reports every second), so the
// first report the recording keeps is a late one.
const lateWindow = 2500 * time.Millisecond

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

func msList(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = math.Round(x * 1000)
	}
	return out
}

// flashBeepPage is a real browser's flash-and-beep participant: a canvas
// (red, a frame counter, white for avFlashLen every avEvery seconds) and a
// WebAudio tone (440 Hz, plus avBeep Hz while the canvas is white), captured
// with captureStream and published over WHIP with a publish token. The
// beeps are scheduled on the audio clock; the canvas turns white when that
// clock reaches a beep, so the picture and the sound enter the browser's
// media tracks together (to the audio callback's and the 4 ms poll's
// granularity). It reports each step to /report.
const flashBeepPage = `<!doctype html><html><body><canvas id=c width=320 height=240></canvas><script>
const report = (s) => fetch('/report', {method: 'POST', body: s});
(async () => {
  try {
    const ac = new AudioContext({sampleRate: 48000});
    await ac.resume();
    const dest = ac.createMediaStreamDestination();
    const tone = ac.createOscillator(), toneGain = ac.createGain();
    tone.frequency.value = 440; toneGain.gain.value = 0.2;
    tone.connect(toneGain).connect(dest);
    const beep = ac.createOscillator(), beepGain = ac.createGain();
    beep.frequency.value = BEEP; beepGain.gain.value = 0;
    beep.connect(beepGain).connect(dest);
    tone.start(); beep.start();
    const t0 = ac.currentTime + 0.5;
    for (let k = 0; k < 120; k++) {
      beepGain.gain.setValueAtTime(0.2, t0 + k * EVERY);
      beepGain.gain.setValueAtTime(0, t0 + k * EVERY + LEN);
    }
    const canvas = document.getElementById('c'), g = canvas.getContext('2d');
    let n = 0, last = -1, white = false, prev = ac.currentTime, step = 0;
    const draw = () => {
      const now = ac.currentTime;
      if (now > prev) { step = Math.max(step, now - prev); prev = now; }
      const s = now - t0;
      const w = s >= 0 && s % EVERY < LEN;
      const frame = Math.floor(performance.now() / (1000 / 30));
      if (frame === last && w === white) return;
      last = frame; n++;
      g.fillStyle = w ? '#fff' : '#f00'; g.fillRect(0, 0, 320, 240);
      g.fillStyle = '#000'; g.font = '36px sans-serif'; g.fillText(String(n), 8, 40);
      if (w && !white) report('flash ' + JSON.stringify({k: Math.round(s / EVERY), late: (s % EVERY) * 1000,
        wall: performance.timeOrigin + performance.now(), step: step * 1000}));
      white = w;
    };
    draw(); setInterval(draw, 4);
    const stream = new MediaStream([...canvas.captureStream().getVideoTracks(), ...dest.stream.getAudioTracks()]);
    const pc = new RTCPeerConnection();
    for (const tr of stream.getTracks()) pc.addTransceiver(tr, {direction: 'sendonly', streams: [stream]});
    pc.oniceconnectionstatechange = () => report('ice ' + pc.iceConnectionState);
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((ok) => {
      if (pc.iceGatheringState === 'complete') return ok();
      pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && ok();
    });
    const resp = await fetch(WHIP, {method: 'POST', body: pc.localDescription.sdp,
      headers: {'Content-Type': 'application/sdp', 'Authorization': 'Bearer ' + TOKEN}});
    if (resp.status !== 201) return report('whip ' + resp.status + ' ' + await resp.text());
    await pc.setRemoteDescription({type: 'answer', sdp: await resp.text()});
    report('answered');
  } catch (e) { report('error ' + e); }
})();
</script></body></html>`

// TestServe_CompositeKeepsAVOfAChromiumPublisher: the flash-and-beep
// participant is headless Chromium (flashBeepPage: a canvas and WebAudio,
// captured by the browser, encoded as VP8 and Opus, stamped by its own
// capture paths and RTCP sender reports), publishing over WHIP with a
// publish token to a `recorder serve` process that joins while it is
// already sending; a flash a second. The composite holds the flashes
// within 40 ms of their beeps before and after a pause: the median of each
// side. Unlike the Pion publisher, the browser does not stamp a flash and
// its beep together to the sample: seen in its own track files, they are
// a few to 25 ms apart, varying from flash to flash, and under load
// (18-28) its page draws some flashes late and its audio clock stalls, so
// single flashes are logged (with the page's own account), not each bounded.
func TestServe_CompositeKeepsAVOfAChromiumPublisher(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time browser test")
	}
	testenv.LookPath(t, "ffprobe")
	dir := t.TempDir()
	s := serveProcess(t, dir)
	key := readKey(t, dir)
	const conf, user = "chromeav", "chromium"
	var tok api.PublishTokenMessage
	if st := call(t, "POST", s.url+"/api/publishtokens", key, api.PublishTokenRequest{ConferenceID: conf, UserID: user,
		StreamTypes: []string{"CAM"}}, &tok); st != 200 || tok.Token == "" {
		t.Fatalf("publish token: %d %+v", st, tok)
	}

	// The page's server, on loopback; the page reports its progress.
	reports := make(chan string, 512)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /page.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		consts, _ := json.Marshal(map[string]any{"WHIP": whip.Endpoint(s.url, conf, user, "CAM"), "TOKEN": tok.Token,
			"EVERY": chromiumFlashEvery, "LEN": avFlashLen, "BEEP": avBeep})
		fmt.Fprint(w, strings.Replace(flashBeepPage, "<script>",
			"<script>const {WHIP, TOKEN, EVERY, LEN, BEEP} = "+string(consts)+";", 1))
	})
	var flashMu sync.Mutex
	var flashes []pageFlash // what the page drew
	mux.HandleFunc("POST /report", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
		if f, ok := strings.CutPrefix(string(b), "flash "); ok {
			var pf pageFlash
			if json.Unmarshal([]byte(f), &pf) == nil {
				flashMu.Lock()
				flashes = append(flashes, pf)
				flashMu.Unlock()
			}
			return
		}
		select {
		case reports <- string(b):
		default:
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	page := &http.Server{Handler: mux}
	go page.Serve(ln)
	t.Cleanup(func() { page.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sc, stop := tooltest.Chromium(t, ctx, dir, "http://"+ln.Addr().String()+"/page.html",
		"--disable-quic", "--allow-loopback-in-peer-connection")
	var logMu sync.Mutex
	var chromeLog strings.Builder
	logged := make(chan struct{})
	go func() { // Chromium's log: kept for a failure, and drained so that it never blocks
		defer close(logged)
		for sc.Scan() {
			logMu.Lock()
			chromeLog.WriteString(sc.Text() + "\n")
			logMu.Unlock()
		}
	}()
	stopped := false
	stopChromium := func() {
		if !stopped {
			stopped = true
			stop()
			<-logged
		}
	}
	t.Cleanup(stopChromium)
	failf := func(format string, args ...any) {
		t.Helper()
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf(format+"\nchromium:\n%s", append(args, chromeLog.String())...)
	}
	for connected := false; !connected; {
		select {
		case r := <-reports:
			t.Logf("page: %s", r)
			if strings.HasPrefix(r, "error") || strings.HasPrefix(r, "whip") || r == "ice failed" {
				failf("page: %s", r)
			}
			connected = r == "ice connected" || r == "ice completed"
		case <-ctx.Done():
			failf("the page did not connect")
		}
	}
	checkCompositeAV(t, s, key, conf, dir, stopChromium, avSource{median: true, least: 3, note: func(w time.Time) string {
		flashMu.Lock()
		defer flashMu.Unlock()
		for _, f := range flashes {
			if d := w.Sub(time.UnixMicro(int64(f.Wall * 1000))); d > -300*time.Millisecond && d < 300*time.Millisecond {
				return fmt.Sprintf("the page drew it %.0f ms after its beep by its audio clock", f.Late)
			}
		}
		return "the page reported no flash then"
	}})
	for len(reports) > 0 {
		t.Logf("page: %s", <-reports)
	}
	flashMu.Lock()
	defer flashMu.Unlock()
	t.Logf("the page's flashes: %+v", flashes)
}

// chromiumFlashEvery is the page's flash period: a flash a second, so that
// each side of the pause has several.
const chromiumFlashEvery = 1.0

// pageFlash is what flashBeepPage reports of a flash: its number, how late
// it was drawn after its beep by the audio clock (ms), when (ms since the
// epoch) and the largest step of the audio clock seen (ms).
type pageFlash struct {
	K    int     `json:"k"`
	Late float64 `json:"late"`
	Wall float64 `json:"wall"`
	Step float64 `json:"step"`
}
