package api

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/internal/udpstat"
	"github.com/rtcrec/recorder/media/g711"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/media/pause"
	"github.com/rtcrec/recorder/media/wavwriter"
	"github.com/rtcrec/recorder/recorder/conference/whip"
)

// gatedTone is a WHIP publisher that sends a PCMU tone while it speaks
// (speak) and µ-law silence otherwise: a participant who speaks exactly when
// a test says so. A frame holds the tone if the participant spoke at the
// frame's own time (its RTP timestamp's: the publisher's start plus 20 ms a
// frame), not when it was written: a publisher that a busy machine delays
// writes the frames it owes in a burst, and a frame due before the
// participant began to speak (before a pause, say) holds silence however
// late it is written, as a microphone's would. It keeps the instant it sent
// each 20 ms packet: what it sent, not the wall clock, is what a track can
// hold (a busy machine delays the publisher too).
type gatedTone struct {
	pub  *whip.Publication
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	sent []time.Time
	// turns are the instants the participant began or stopped speaking,
	// in order; speaking from the first on (the publisher starts speaking).
	turns []time.Time
}

// speak makes the participant speak (on) or fall silent from now on.
func (g *gatedTone) speak(on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.speaking(time.Now()) != on {
		g.turns = append(g.turns, time.Now())
	}
}

// speaking reports whether the participant speaks at t; g.mu held.
func (g *gatedTone) speaking(t time.Time) bool {
	n := 0
	for _, at := range g.turns {
		if !t.Before(at) {
			n++
		}
	}
	return n%2 == 0
}

// sentBetween returns the audio the publisher sent from a to b: its packets
// sent in that interval, 20 ms each.
func (g *gatedTone) sentBetween(a, b time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, t := range g.sent {
		if !t.Before(a) && t.Before(b) {
			n++
		}
	}
	return time.Duration(n) * 20 * time.Millisecond
}

func joinGated(t *testing.T, ctx context.Context, h *harness, conf, user string, freq float64) *gatedTone {
	t.Helper()
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "audio", user)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := h.whipClient(key1).Publish(ctx, whip.Endpoint(h.url, conf, user, "MIC"), track)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	g := &gatedTone{pub: pub, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(g.done)
		tone := &synth.Tone{Freq: freq, Amplitude: 8000}
		buf := make([]byte, 0, synth.FrameSamples)
		start, sent := time.Now(), 0
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-g.stop:
				return
			case now := <-tick.C:
				for due := int(now.Sub(start)/(20*time.Millisecond)) + 1; sent < due; sent++ {
					buf = tone.NextPCMU(buf[:0])
					g.mu.Lock()
					on := g.speaking(start.Add(time.Duration(sent) * 20 * time.Millisecond)) // the frame's own time
					g.mu.Unlock()
					if !on {
						for i := range buf {
							buf[i] = 0xFF // µ-law zero
						}
					}
					if track.WriteSample(media.Sample{Data: buf, Duration: 20 * time.Millisecond}) != nil {
						return
					}
					g.mu.Lock()
					g.sent = append(g.sent, time.Now())
					g.mu.Unlock()
				}
			}
		}
	}()
	t.Cleanup(func() {
		select {
		case <-g.stop:
		default:
			close(g.stop)
		}
		<-g.done
		pub.Close(context.Background())
	})
	return g
}

// wavPCM decodes a WAV file of this recorder (16-bit PCM or G.711 µ-law) to
// linear samples; a file still being written is read up to its last whole
// sample.
func wavPCM(t *testing.T, data []byte) []int16 {
	t.Helper()
	h, err := wavwriter.ParseHeader(data)
	if err != nil {
		t.Fatalf("not a WAV file: %v", err)
	}
	body := data[h.DataOffset:]
	switch h.Format {
	case wavwriter.PCM:
		return samples(body[:len(body)/2*2])
	case wavwriter.MuLaw:
		out := make([]int16, len(body))
		for i, b := range body {
			out[i] = g711.DecodeMuLaw(b)
		}
		return out
	}
	t.Fatalf("unexpected WAV format %v", h.Format)
	return nil
}

// level is the Goertzel amplitude of freq in pcm (8 kHz) between from and to seconds.
func level(pcm []int16, freq, from, to float64) float64 {
	a, b := max(0, int(from*8000)), min(len(pcm), int(to*8000))
	if b <= a {
		return 0
	}
	return mediatest.Goertzel(pcm[a:b], 8000, freq)
}

// pitchScan is how far from a tone's frequency the failure logs look for
// it: the mix may resample a track by up to media's MaxSkew (5 %). A
// same-clock publisher's tone moved at all is a product defect (the checks
// stay at the exact frequency); the logs tell such a move from a loss.
const pitchScan = 0.05

// toneWindow is a tone's strongest component within pitchScan of its
// frequency in a window of a recording: freq Hz at amplitude amp, from at
// seconds.
type toneWindow struct{ at, freq, amp float64 }

// tone returns the strongest component within pitchScan of freq in pcm (8
// kHz) between from and to seconds.
func tone(pcm []int16, freq, from, to float64) toneWindow {
	a, b := max(0, int(from*8000)), min(len(pcm), int(to*8000))
	best := toneWindow{at: from, freq: freq}
	if b <= a {
		return best
	}
	for f := freq * (1 - pitchScan); f <= freq*(1+pitchScan); f++ {
		if l := mediatest.Goertzel(pcm[a:b], 8000, f); l > best.amp {
			best.freq, best.amp = f, l
		}
	}
	return best
}

// pitchOf returns the frequency of the tone near freq (within 5 %) in pcm
// (8 kHz) between from and to seconds, to 0.05 Hz: where its Goertzel
// amplitude peaks.
func pitchOf(pcm []int16, freq, from, to float64) float64 {
	a, b := max(0, int(from*8000)), min(len(pcm), int(to*8000))
	best, amp := freq, 0.0
	for f := freq * 0.95; f <= freq*1.05; f += 0.05 {
		if l := mediatest.Goertzel(pcm[a:b], 8000, f); l > amp {
			best, amp = f, l
		}
	}
	return best
}

// toneWindows200 returns the tone near freq in each 200 ms window of pcm
// from from to to seconds (the last window ends at to).
func toneWindows200(pcm []int16, freq, from, to float64) []toneWindow {
	var out []toneWindow
	for w := from; w < to-1e-9; w += 0.2 {
		w = min(w, max(from, to-0.2))
		out = append(out, tone(pcm, freq, w, min(w+0.2, to)))
	}
	return out
}

// heardFrom returns where a check of user's tone in the mix may begin: at
// floor seconds into the recording, or 200 ms into the user's track if later
// (on a loaded machine a publisher's first packet can come some 100 ms after
// the start; its media offset is where its first sample is in the mix).
func heardFrom(t *testing.T, man *composition.Manifest, user string, floor float64) float64 {
	t.Helper()
	off := mediaOffset(t, man, user)
	t.Logf("%s's track begins at %.3f s of the mix", user, off)
	return max(floor, off+0.2)
}

// mediaOffset returns where the first sample of user's audio track is on
// the recording's timeline, in seconds (the manifest's mediaOffset).
func mediaOffset(t *testing.T, man *composition.Manifest, user string) float64 {
	t.Helper()
	for _, tr := range man.Tracks {
		if tr.UserID == user && tr.Kind == "AUDIO" {
			if tr.MediaOffset == nil {
				t.Fatalf("%s's track has no media offset", user)
			}
			return *tr.MediaOffset
		}
	}
	t.Fatalf("no audio track of %s in the manifest", user)
	return 0
}

// pitchTrace describes ws for a failure's log: each window's start, the
// frequency found and its amplitude.
func pitchTrace(ws []toneWindow) string {
	var b strings.Builder
	for _, w := range ws {
		fmt.Fprintf(&b, " %.1fs:%.0fHz/%.0f", w.at, w.freq, w.amp)
	}
	return b.String()
}

// logResampled logs the windows where the mix moved the tone's pitch by more
// than 1 %: what a failed check at the exact frequency meant (pitchScan).
func logResampled(t *testing.T, what string, freq float64, ws []toneWindow) {
	t.Helper()
	var off []toneWindow
	for _, w := range ws {
		if math.Abs(w.freq-freq) > 0.01*freq && w.amp > 1000 {
			off = append(off, w)
		}
	}
	if len(off) > 0 {
		t.Logf("%s: the mix resampled the %g Hz tone in %d of %d windows:%s", what, freq, len(off), len(ws), pitchTrace(off))
	}
}

// toneWindows returns, per 100 ms window, whether freq is present.
func toneWindows(pcm []int16, freq float64) []bool {
	var out []bool
	for a := 0; a+800 <= len(pcm); a += 800 {
		out = append(out, mediatest.Goertzel(pcm[a:a+800], 8000, freq) > 1000)
	}
	return out
}

// scanDir checks every WAV file under dir (tracks, mix, anything temporary)
// for freq: none may contain it.
func scanDir(t *testing.T, dir string, freq float64, when string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil || len(data) < 64 {
			return nil
		}
		if _, err := wavwriter.ParseHeader(data); err != nil {
			if strings.HasSuffix(path, ".wav") {
				t.Errorf("%s: %s is not a WAV file", when, path)
			}
			return nil
		}
		n++
		pcm := wavPCM(t, data)
		for i, on := range toneWindows(pcm, freq) {
			if on {
				t.Errorf("%s: %s holds the paused participant's %g Hz tone at %.1f s", when, filepath.Base(path), freq, float64(i)/10)
				break
			}
		}
		return nil
	})
	return n
}

// soundEdges returns where the sound in pcm (8 kHz) stops after from
// seconds (the first sample of a run of 20 ms of digital silence) and where
// it starts again after that (the first sample that is not zero), in
// seconds: a mix is exact zeros where nothing is placed.
func soundEdges(pcm []int16, from float64) (stops, starts float64) {
	i, zeros := max(0, int(from*8000)), 0
	for ; i < len(pcm) && zeros < 160; i++ {
		if pcm[i] == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	stop := i - zeros
	for i < len(pcm) && pcm[i] == 0 {
		i++
	}
	return float64(stop) / 8000, float64(i) / 8000
}

// localDir returns the recording's working directory (the API shows no
// server path: it is the Manager's).
func localDir(t *testing.T, h *harness, p string) string {
	t.Helper()
	ids := strings.Split(strings.TrimPrefix(p, "/api/recordings/"), "/")
	if len(ids) != 3 {
		t.Fatalf("not a recording path: %s", p)
	}
	rec, err := h.svc.Manager.Get(context.Background(), "org1", ids[0], ids[1], ids[2])
	if err != nil {
		t.Fatal(err)
	}
	return rec.Dir
}

// TestEndToEnd_Pause records a 6 s call of two participants, paused from 2 s
// to 4 s: alice (440 Hz) speaks throughout, bob (880 Hz) speaks only while
// the recording is paused. With pauseBehavior silence the mix is 6 s, silent
// in the pause; with skip it is 4 s. Bob's tone must never reach any file,
// checked on disk during the pause and in the uploaded outputs.
func TestEndToEnd_Pause(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	for _, behavior := range []string{"silence", "skip"} {
		t.Run(behavior, func(t *testing.T) {
			t.Parallel()
			testPause(t, behavior)
		})
	}
}

func testPause(t *testing.T, behavior string) {
	h := startService(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conf, conv := "pconf-"+behavior, "pconv-"+behavior
	alice := joinGated(t, ctx, h, conf, "alice", 440)
	bob := joinGated(t, ctx, h, conf, "bob", 880)
	bob.speak(false)

	ev, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: conf, ConversationID: conv, PauseBehavior: behavior})
	if st != 200 || ev.State != "ACTIVE" {
		t.Fatalf("start: %d %+v", st, ev)
	}
	p := recPath(ev)
	time.Sleep(2 * time.Second)
	var paused RecordingDataEvent
	pauseSent := time.Now()
	if st := h.do("POST", p+"/pause", key1, nil, &paused); st != 200 || paused.State != "ACTIVE" || !paused.Paused {
		t.Fatalf("pause: %d %+v", st, paused)
	}
	pauseDone := time.Now()
	// Pausing again succeeds and adds no status.
	if st := h.do("POST", p+"/pause", key1, nil, &paused); st != 200 || !paused.Paused {
		t.Errorf("second pause: %d %+v", st, paused)
	}
	bob.speak(true) // bob speaks only while paused
	dir := localDir(t, h, p)
	time.Sleep(1500 * time.Millisecond)
	if n := scanDir(t, dir, 880, "during the pause"); n < 3 {
		t.Errorf("found %d WAV files on disk during the pause, want the mix and two tracks", n)
	}
	time.Sleep(500 * time.Millisecond)
	bob.speak(false)
	time.Sleep(40 * time.Millisecond) // bob's last tone frame is on its way before resume
	var resumed RecordingDataEvent
	resumeSent := time.Now()
	if st := h.do("POST", p+"/resume", key1, nil, &resumed); st != 200 || resumed.Paused || resumed.State != "ACTIVE" {
		t.Fatalf("resume: %d %+v", st, resumed)
	}
	resumeDone := time.Now()
	if st := h.do("POST", p+"/resume", key1, nil, &resumed); st != 200 || resumed.Paused {
		t.Errorf("second resume: %d %+v", st, resumed)
	}
	time.Sleep(2 * time.Second)
	var stopped RecordingDataEvent
	if st := h.do("POST", p+"/stop", key1, nil, &stopped); st != 200 || stopped.State != "STOPPED" {
		t.Fatalf("stop: %d %+v", st, stopped)
	}
	var e ErrorMessage
	if st := h.do("POST", p+"/pause", key1, nil, &e); st != 409 {
		t.Errorf("pause of a stopped recording: %d %+v, want 409", st, e)
	}
	if st := h.do("POST", p+"/resume", key1, nil, &e); st != 409 {
		t.Errorf("resume of a stopped recording: %d %+v, want 409", st, e)
	}

	// Status history (seed 000).
	var hist StatusHistory
	if st := h.do("GET", "/api/recordings/"+conv+"/status", key1, nil, &hist); st != 200 {
		t.Fatalf("status: %d", st)
	}
	var got []string
	for _, s := range hist.Statuses {
		got = append(got, s.Status)
		if _, err := time.Parse(time.RFC3339, s.LastModifiedTime); err != nil || !strings.HasSuffix(s.LastModifiedTime, "Z") {
			t.Errorf("last_modified_time %q is not RFC 3339 UTC", s.LastModifiedTime)
		}
	}
	if strings.Join(got, ",") != "start,pause,resume,stop" || hist.EngagementID != conv || hist.Channel != "voice" {
		t.Errorf("status history %+v, want start,pause,resume,stop of %s on voice", hist, conv)
	}

	// The outputs.
	var comp RecordingDataMessage
	if st := h.do("GET", "/api/compositions/"+conv, key1, nil, &comp); st != 200 || comp.Composition == nil ||
		len(comp.Composition.Outputs) != 1 || comp.Composition.Manifest == nil {
		t.Fatalf("composition: %d %+v", st, comp.Composition)
	}
	var man composition.Manifest
	if err := json.Unmarshal(fetch(t, comp.Composition.Manifest.URL), &man); err != nil {
		t.Fatal(err)
	}
	if len(man.Pauses) != 1 || man.Pauses[0].MixStart == nil || man.Pauses[0].StartTime.IsZero() || man.PauseBehavior != pause.Behavior(behavior) {
		t.Fatalf("manifest pauses %+v (behavior %q), want one interval with mix offsets", man.Pauses, man.PauseBehavior)
	}
	pz := man.Pauses[0]
	mixStart, mixEnd := *pz.MixStart, *pz.MixEnd
	t.Logf("pause: %.2f–%.2f s of the recording, %.2f–%.2f s of the mix", pz.Start, pz.End, mixStart, mixEnd)
	// The pause spans the requests as the recorder got them (on a loaded
	// machine the test's own sleeps run long: not a fixed 2 s).
	if pz.StartTime.Before(pauseSent) || pz.StartTime.After(pauseDone) || pz.EndTime.Before(resumeSent) || pz.EndTime.After(resumeDone) {
		t.Errorf("the pause is %v–%v, want from the pause request (%v–%v) to the resume request (%v–%v)",
			pz.StartTime, pz.EndTime, pauseSent, pauseDone, resumeSent, resumeDone)
	}
	recorded := man.Stopped.Sub(man.Started).Seconds()
	pcm := wavPCM(t, fetch(t, comp.Composition.Outputs[0].URL))
	dur := float64(len(pcm)) / 8000
	want := recorded
	// The cut is at the pause's instants on the recording's timeline (the
	// mix's: it starts with the recording), within 20 ms: with silence the
	// pause spans them in the mix, with skip it is the first instant.
	cutAt := func(what string, got, want float64) {
		t.Logf("%s at %.3f s of the mix, the instant at %.3f s: %+.0f ms", what, got, want, (got-want)*1000)
		if math.Abs(got-want) > 0.02 {
			t.Errorf("%s at %.3f s of the mix, want %.3f s (the instant) ±20 ms", what, got, want)
		}
	}
	cutAt("the pause begins", mixStart, pz.Start)
	if behavior == "skip" {
		want = recorded - (pz.End - pz.Start)
		cutAt("the pause ends", mixEnd, pz.Start)
	} else {
		cutAt("the pause ends", mixEnd, pz.End)
	}
	t.Logf("mix %.2f s for %.2f s recorded (pauseBehavior %s, want %.2f s)", dur, recorded, behavior, want)
	if math.Abs(dur-want) > 0.15 {
		t.Errorf("mix is %.2f s, want %.2f s (recorded %.2f s, pauseBehavior %s)", dur, want, recorded, behavior)
	}
	for i, on := range toneWindows(pcm, 880) {
		if on {
			t.Errorf("mix holds bob's paused tone at %.1f s", float64(i)/10)
			break
		}
	}
	checks := []struct {
		what     string
		from, to float64
		present  bool
	}{
		{"before the pause", heardFrom(t, &man, "alice", 0.3), mixStart - 0.02, true},
		{"just before the pause", mixStart - 0.12, mixStart - 0.02, true},
		{"after the pause", mixEnd + 0.3, dur - 0.2, true},
	}
	var mixStops, mixStarts float64 // where the sound stops and starts again around the pause (silence)
	if behavior == "silence" {
		checks = append(checks, struct {
			what     string
			from, to float64
			present  bool
		}{"during the pause", mixStart + 0.02, mixEnd - 0.05, false})
		// Where the sound stops and starts again around the pause, to the
		// sample (bob is silent but while paused, so it is alice's tone):
		// for the note; it stops at the instant, and starts where alice's
		// mapping places her first packet after the resume.
		mixStops, mixStarts = soundEdges(pcm, mixStart-0.3)
		t.Logf("the mix's sound stops at %.3f s (%+.0f ms from the pause instant), starts at %.3f s (%+.0f ms from the resume instant)",
			mixStops, (mixStops-pz.Start)*1000, mixStarts, (mixStarts-pz.End)*1000)
	}
	for _, c := range checks {
		a := level(pcm, 440, c.from, c.to)
		if c.present && a < 2000 || !c.present && a > 200 {
			t.Errorf("alice's tone %s [%.2f, %.2f]: amplitude %.0f, want present=%v; the mix per 200 ms:%s",
				c.what, c.from, c.to, a, c.present, pitchTrace(toneWindows200(pcm, 440, c.from, c.to)))
		}
		if c.present {
			logResampled(t, "alice "+c.what, 440, toneWindows200(pcm, 440, c.from, c.to))
		}
	}
	// The pitch after the resume: alice's publisher runs on this machine's
	// clock, so the mix plays her 440 Hz at 440 Hz, within what a catch-up
	// of an offset from her reports' line may resample (media's
	// maxCatchUp, 0.5 %) and what a 400 ms window measures (0.1 %). Caught
	// up over a second, such an offset found at the resume made it 447 Hz
	// for 0.6 s (1.6 %, session 13's train 1).
	var pitches []string
	for w := mixEnd + 0.05; w+0.4 <= dur-0.2; w += 0.4 {
		f := pitchOf(pcm, 440, w, w+0.4)
		pitches = append(pitches, fmt.Sprintf("%.1fs:%.2fHz", w, f))
		if math.Abs(f-440) > 440*0.006 {
			t.Errorf("alice's 440 Hz at %.2f Hz in the mix at %.1f-%.1f s, after the resume: %+.2f %%, want within 0.6 %%", f, w, w+0.4, (f/440-1)*100)
		}
	}
	t.Logf("alice's pitch in the mix after the resume: %s", strings.Join(pitches, " "))
	if behavior == "skip" { // no silent hole where the pause was cut out
		for w := heardFrom(t, &man, "alice", 0.3); w+0.1 < dur-0.2; w += 0.1 {
			if a := level(pcm, 440, w, w+0.1); a < 1000 {
				t.Errorf("skip: alice's tone drops to %.0f at %.1f s of the mix; there: %s", a, w, pitchTrace([]toneWindow{tone(pcm, 440, w, w+0.1)}))
				break
			}
		}
	}

	// Per-track files: bob's holds none of his tone; alice's holds what
	// alice sent while her track recorded (silence: the whole call; skip:
	// without the pause), which is the mix's length unless the publisher
	// itself fell behind the clock.
	sec := func(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
	pauseFrom, pauseTo := man.Started.Add(sec(pz.Start)), man.Started.Add(sec(pz.End))
	var msg RecordingDataMessage
	h.do("GET", p, key1, nil, &msg)
	for _, s := range msg.Streams {
		tr := s.Tracks[0]
		tpcm := wavPCM(t, fetch(t, tr.URL))
		tdur := float64(len(tpcm)) / 8000
		switch s.UserID {
		case "bob":
			for i, on := range toneWindows(tpcm, 880) {
				if on {
					t.Errorf("bob's track holds his paused tone at %.1f s", float64(i)/10)
					break
				}
			}
		case "alice":
			a, _ := time.Parse(time.RFC3339Nano, tr.Started)
			b, _ := time.Parse(time.RFC3339Nano, tr.Stopped)
			sent := alice.sentBetween(a, b)
			if behavior == "skip" {
				sent -= alice.sentBetween(pauseFrom, pauseTo)
			}
			if behavior == "silence" {
				// Her file is cut where the mix is: its sound, placed on
				// the timeline by its time zero (mediaOffset), stops and
				// starts again where the mix's does, within 20 ms.
				off := mediaOffset(t, &man, "alice")
				stops, starts := soundEdges(tpcm, mixStops-0.3-off)
				stops, starts = stops+off, starts+off
				t.Logf("alice's file (time zero %.3f s): its sound stops at %.3f s (%+.0f ms from the mix's), starts at %.3f s (%+.0f ms)",
					off, stops, (stops-mixStops)*1000, starts, (starts-mixStarts)*1000)
				if math.Abs(stops-mixStops) > 0.02 || math.Abs(starts-mixStarts) > 0.02 {
					t.Errorf("alice's file is cut at %.3f–%.3f s of the timeline, the mix at %.3f–%.3f s: want the same instants within 20 ms",
						stops, starts, mixStops, mixStarts)
				}
			}
			want := sent.Seconds()
			t.Logf("alice's track %.2f s; she sent %.2f s while it recorded (%.2f s of wall time)", tdur, want, b.Sub(a).Seconds())
			if math.Abs(tdur-want) > 0.3 {
				us, _ := udpstat.Read()
				t.Errorf("alice's track is %.2f s, want %.2f s: what she sent while it recorded (this process: UDP datagrams the kernel dropped %d, the UDP mux dropped %d)",
					tdur, want, us.Drops, whip.MuxQueueDrops())
			}
		}
	}
}

// TestEndToEnd_Blackout blacks out one of two participants (bob, 660 Hz) for
// 2 s: only his tone vanishes from the mix and his track, only during the
// blackout; alice (440 Hz) is heard throughout.
func TestEndToEnd_Blackout(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	t.Parallel()
	h := startService(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	joinGated(t, ctx, h, "bconf", "alice", 440)
	joinGated(t, ctx, h, "bconf", "bob", 660)
	ev, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: "bconf", ConversationID: "bconv"})
	if st != 200 {
		t.Fatalf("start: %d", st)
	}
	time.Sleep(2 * time.Second)
	var b BlackoutMessage
	if st := h.do("POST", "/api/blackouts/start", key1, map[string]any{"userId": "bob"}, &b); st != 200 || !b.Active || len(b.Recordings) != 1 {
		t.Fatalf("blackout start: %d %+v", st, b)
	}
	var parts []ParticipantMessage
	if st := h.do("GET", "/api/participants", key1, nil, &parts); st != 200 || len(parts) != 2 {
		t.Errorf("participants: %d %+v", st, parts)
	}
	var bob ParticipantMessage
	if st := h.do("GET", "/api/participants/bob", key1, nil, &bob); st != 200 || bob.Blackout == nil || !bob.Blackout.Active ||
		bob.ActiveCall == nil || len(bob.ActiveCall.Recordings) != 1 || bob.ActiveCall.Recordings[0].RecordingState != "BlackedOut" {
		t.Errorf("participant bob: %d %+v", st, bob)
	}
	time.Sleep(2 * time.Second)
	if st := h.do("POST", "/api/blackouts/stop", key1, map[string]any{"userId": "bob"}, &b); st != 200 || b.Active {
		t.Fatalf("blackout stop: %d %+v", st, b)
	}
	time.Sleep(2 * time.Second)
	var stopped RecordingDataEvent
	if st := h.do("POST", recPath(ev)+"/stop", key1, nil, &stopped); st != 200 || stopped.State != "STOPPED" {
		t.Fatalf("stop: %d %+v", st, stopped)
	}
	evs, _ := h.svc.Events.Since(ctx, "org1", 0, 1000)
	var kinds []string
	for _, e := range evs {
		if strings.HasPrefix(string(e.Type), "blackout.") && strings.Contains(string(e.Data), `"userId":"bob"`) &&
			strings.Contains(string(e.Data), ev.InstanceID) && e.ApplicationID == "app1" {
			kinds = append(kinds, string(e.Type))
		}
	}
	if strings.Join(kinds, ",") != "blackout.started,blackout.stopped" {
		t.Errorf("blackout events %v, want started and stopped naming bob and the recording", kinds)
	}
	var comp RecordingDataMessage
	if st := h.do("GET", "/api/compositions/bconv", key1, nil, &comp); st != 200 || comp.Composition == nil || comp.Composition.Manifest == nil {
		t.Fatalf("composition: %d", st)
	}
	var man composition.Manifest
	if err := json.Unmarshal(fetch(t, comp.Composition.Manifest.URL), &man); err != nil {
		t.Fatal(err)
	}
	if len(man.Blackouts) != 1 || man.Blackouts[0].UserID != "bob" {
		t.Fatalf("manifest blackouts %+v, want one of bob", man.Blackouts)
	}
	bo := man.Blackouts[0]
	t.Logf("blackout of bob: %.2f–%.2f s", bo.Start, bo.End)
	pcm := wavPCM(t, fetch(t, comp.Composition.Outputs[0].URL))
	dur := float64(len(pcm)) / 8000
	// Where bob's tone stops around the blackout's instant, for the note:
	// the first 20 ms window (in 5 ms steps) holding less than a quarter
	// of it.
	stop := bo.Start - 0.2
	for stop < bo.End && level(pcm, 660, stop, stop+0.02) > 2000 {
		stop += 0.005
	}
	t.Logf("bob's tone stops in the mix about %.3f s (%+.0f ms from the blackout's instant, ±5 ms)", stop+0.005, (stop+0.005-bo.Start)*1000)
	checks := []struct {
		what     string
		freq     float64
		from, to float64
		present  bool
	}{
		{"alice throughout", 440, heardFrom(t, &man, "alice", 0.3), dur - 0.2, true},
		{"bob before", 660, heardFrom(t, &man, "bob", 0.3), bo.Start - 0.1, true},
		{"bob during", 660, bo.Start + 0.02, bo.End - 0.05, false},
		{"bob after", 660, bo.End + 0.3, dur - 0.2, true},
	}
	for _, c := range checks {
		a := level(pcm, c.freq, c.from, c.to)
		if c.present && a < 2000 || !c.present && a > 200 {
			t.Errorf("mix, %s [%.2f, %.2f]: %g Hz amplitude %.0f, want present=%v; per 200 ms:%s",
				c.what, c.from, c.to, c.freq, a, c.present, pitchTrace(toneWindows200(pcm, c.freq, c.from, c.to)))
		}
		if c.present {
			logResampled(t, c.what, c.freq, toneWindows200(pcm, c.freq, c.from, c.to))
		}
	}
	var msg RecordingDataMessage
	h.do("GET", recPath(ev), key1, nil, &msg)
	for _, s := range msg.Streams {
		if s.UserID != "bob" {
			continue
		}
		tr := s.Tracks[0]
		tpcm := wavPCM(t, fetch(t, tr.URL))
		// Where the file's first sample is on the recording's timeline
		// (its media offset), not the track's start: a file may begin with
		// audio that reached the recorder before it (a publisher's
		// backlog), 0.49 s in a run beside two CPU hogs.
		off := mediaOffset(t, &man, "bob")
		if l := level(tpcm, 660, bo.Start-off+0.05, bo.End-off-0.05); l > 200 {
			t.Errorf("bob's track holds his tone during the blackout: %.0f", l)
		}
		if l := level(tpcm, 660, 0.2, bo.Start-off-0.1); l < 2000 {
			t.Errorf("bob's track lacks his tone before the blackout: %.0f", l)
		}
		if l := level(tpcm, 660, bo.End-off+0.2, float64(len(tpcm))/8000-0.2); l < 2000 {
			t.Errorf("bob's track lacks his tone after the blackout: %.0f", l)
		}
	}
}
