package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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

// TestServe_TooLateForTheMixIsShedNotShifted: with a latency budget of 2 s,
// the relay holds 75 of a Pion publisher's packets (1.5 s of its capture,
// from 2 s into the recording) until 3 s after the last of them was
// captured, while the packets after them go on as they come: every held
// packet comes later than the budget (and the half second the mixer waits
// on for a reader behind its socket), by half a second at least, whatever
// the load (the set is chosen by the packets' capture instants, not by when
// a publisher starved of CPU wrote them). The mix has written their place,
// so they are dropped from it without being decoded (counted: late dropped,
// not decoded) — the recorder sheds that work. Everything else lands at its
// own place: the sound's edges (an aperiodic on/off tone) are where the
// track file has them, before and after the span, not shifted by it, and
// the tone is in the mix in every 20 ms window where the track has it. The
// track file holds every packet but the held ones: its reorder stage waits
// the budget too, gives up on them (missing) and drops them when they come
// (late). (A stall whose burst comes within the budget is issue 10's
// table's case.) The recording runs until the recorder has read the held
// packets and what followed them, not for a set time.
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
	const (
		span     = 75 // packets held: 1.5 s of 20 ms
		period   = 20 * time.Millisecond
		holdPast = 3 * time.Second // after the last held packet's capture
		budget   = 2 * time.Second // the recording's latency
	)
	var (
		hold      atomic.Bool  // set by the test: the next packet begins the span
		spanFrom  atomic.Int64 // the span's first packet (its index + 1; 0: not yet)
		firstSent atomic.Int64 // the capture instant of the publisher's first packet (unix ns)
		through   atomic.Int64 // packets the relay put through imp
		t0        int64        // the relay's first packet, unix ns (relay goroutine)
	)
	// The n-th packet the relay sees is captured at firstSent + n periods,
	// or a few periods later if the publisher's first writes did not go out
	// (before its SRTP was ready): the release is timed by this, with half
	// a second to spare; where the held packets are on the timeline, by
	// their RTP timestamps (rtpOf) as the track's timing maps them.
	captured := func(n int64) int64 { return firstSent.Load() + n*int64(period) }
	var mu sync.Mutex
	rtpOf := map[int]uint32{} // the relay's n-th packet's RTP timestamp
	seen := func(n int, b []byte) {
		if len(b) >= 12 {
			mu.Lock()
			rtpOf[n] = binary.BigEndian.Uint32(b[4:8])
			mu.Unlock()
		}
	}
	rt := &relayTransport{t: t, seen: seen, imp: func(n int, elapsed time.Duration) (time.Duration, bool, bool) {
		if t0 == 0 {
			t0 = time.Now().UnixNano() - int64(elapsed)
		}
		through.Store(int64(n) + 1)
		f := spanFrom.Load()
		if f == 0 && hold.Load() {
			f = int64(n) + 1
			spanFrom.Store(f)
		}
		if f != 0 && int64(n) >= f-1 && int64(n) < f-1+span {
			// Released at one instant by the relay's clock (t0+elapsed
			// is its now): in the order they came, as a network queue
			// delivers them.
			release := captured(f-1+span) + int64(holdPast)
			return max(time.Duration(release-(t0+int64(elapsed))), 0), false, false
		}
		return 0, false, false
	}}
	stop, first := publishThrough(t, ctx, s, key, "shed", "o", opus, time.Time{}, period, rt)
	defer stop()
	firstSent.Store(first.UnixNano())
	before := recorderMetrics(t, s)
	var ev api.RecordingDataEvent
	req := api.StartRecording{ApplicationID: "a", ConferenceID: "shed", ConversationID: "shed", Mix: &config.MixSettings{Latency: budget}}
	if st := call(t, "POST", s.url+"/api/recordings/start", key, req, &ev); st != 200 {
		t.Fatalf("start: %d", st)
	}
	started := time.Now()
	time.Sleep(2 * time.Second) // the scenario: the span begins about 2 s into the recording (where, is measured)
	hold.Store(true)
	// The relay has put the whole span through and released it...
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		f := spanFrom.Load()
		if _, held := rt.rtpPassed(started); f != 0 && through.Load() >= f-1+span && held == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the relay has not released the span in 30 s (span from %d, %d packets through it)", f-1, through.Load())
		}
	}
	// ... and the recorder has read every packet the relay sent it since
	// the start (the held ones among them), and a second more (as the test
	// ran before: stopped a second after the release).
	waitReceived(t, s, rt, started, before, 50)
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
			for _, l := range s.stderr.Lines("late", "anchor", "track", "mix", "stop", "finished") {
				t.Log(l)
			}
		}
	}()
	if spanFrom.Load() == 0 {
		t.Fatal("the relay held no packet")
	}
	// The held packets came later than the budget; what the track holds
	// where they are (the first one's RTP timestamp on the track file's
	// time, placed as the manifest places the file) is not in the mix.
	mu.Lock()
	heldRTP, ok := rtpOf[int(spanFrom.Load()-1)]
	mu.Unlock()
	if !ok || ogg.Timing == nil || ogg.Timing.ClockRate == 0 {
		t.Fatalf("no RTP timestamp of the first held packet (%v) or no timing of the track (%+v)", ok, ogg.Timing)
	}
	inFile := time.Duration(int32(heldRTP-ogg.Timing.RTPZero)) * time.Second / time.Duration(ogg.Timing.ClockRate)
	shedFrom := placed(t, ogg, []time.Duration{inFile})[0]
	shedTo := shedFrom + span*period
	defer func() {
		if !t.Failed() {
			return
		}
		// What else came later than the budget (a publisher or relay
		// starved of CPU for longer: with a 1 s budget the exact counts
		// below failed 2 of 8 at load 21, 87 and 116 late): the packets,
		// other than the held ones, that reached the recorder more than
		// the budget after their capture.
		var others []string
		for _, p := range rt.sentPackets(first, period) {
			held := p.reached.Sub(p.written) > time.Second
			if d := p.reached.Sub(p.captured); !p.reached.IsZero() && !held && d > budget {
				others = append(others, fmt.Sprintf("%v at %v", d.Round(time.Millisecond), p.captured.Sub(man.Started).Round(time.Millisecond)))
			}
		}
		t.Logf("%d packets not held reached the recorder later than the budget (%v) after their capture: %v", len(others), budget, others)
	}()
	mixPCM := wavSamples(t, mixData)
	t.Logf("the recording lasted %v, the mix %v", man.Stopped.Sub(man.Started), time.Duration(len(mixPCM))*time.Second/8000)
	mix := edges(soundBlocks(mixPCM, 40))
	trackPCM := mediatest.Decode(t, objects[ogg.File], 8000)
	// The track's edges where the manifest places them: its mediaOffset,
	// moved by its timing's steps (the mix's moves by arrival, its
	// sender's reports), as the offline mix places the file.
	track := placed(t, ogg, edges(soundBlocks(trackPCM, 40)))
	// Less a silent run of the track that reaches the mix's end (ends
	// within 30 ms of it, or after): the mix ends at the stop to the
	// sample, the track file keeps the whole packet the stop falls in, so
	// where the tone comes back in that packet the track's silence ends
	// and the mix's runs on to its end, a trailing silence that edges does
	// not count (session 18, 2 of ~150 runs under hogs: "the track's edge
	// at 6.967625s is not in the mix" and at 7.527625s, the tone back 2 ms
	// after the mix's end at 7.525625 s; the mix was silent from 6.967 s as
	// the track). mixAgreesWithTrack leaves that end out for the same
	// reason.
	mixEnd := time.Duration(len(mixPCM)) * time.Second / 8000
	track = silentRunsBefore(track, mixEnd-30*time.Millisecond)
	t.Logf("%d packets held until %v after the last's capture, placed from %v to %v (capture by the relay's count: from %v); track placed at %.4f s, steps %+v; edges: track %v, mix %v",
		span, holdPast, shedFrom, shedTo, time.Unix(0, captured(spanFrom.Load()-1)).Sub(man.Started), fileZero(t, ogg), ogg.Timing.Steps(), track, mix)
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
	// The tone is in the mix wherever it is in the track, in issue 10's
	// 20 ms windows (the edges above miss a loss that runs to the mix's
	// end: a trailing silence is no edge). The track lacks the held
	// packets too (its reorder stage gave up on them).
	if with, lacks := windowsMixLacks(t, objects, man, "o", 660, 1000); with < 100 || lacks > 0 {
		t.Errorf("the mix lacks %d of the %d windows of 20 ms where the track has its tone", lacks, with)
	}
	for _, m := range mix {
		if m > shedFrom+40*time.Millisecond && m < shedTo-40*time.Millisecond {
			t.Errorf("an edge at %v in the mix, within the span whose packets came later than the budget (%v–%v)", m, shedFrom, shedTo)
		}
	}
	// The held packets, and only they, were later than the budget:
	// dropped from the mix, and none of them decoded.
	if late != span {
		t.Errorf("%.0f packets late-dropped from the mix, want the %d held", late, span)
	}
	// Each packet given to the mix pipeline was decoded or shed undecoded
	// (its log line at the track's end: a late packet whose span the
	// mixer had written only in part is decoded, and counted late too);
	// shed are the held ones, and of those that lie before the track's
	// start in the mix (beforeStart: its first packet came late, time zero
	// moved back, and what was sent before it is left out; decoded or
	// shed, by whether its place was written), those shed.
	var pkts, dec, shed, beforeStart int
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
				case "beforeStart":
					beforeStart += n
				}
			}
		}
	}
	if pkts == 0 || dec+shed != pkts || shed < span || shed > span+beforeStart {
		t.Errorf("the mix pipeline had %d packets, decoded %d and shed %d undecoded (%d before the track's start): want each decoded or shed, the %d held shed", pkts, dec, shed, beforeStart, span)
	}
	if got := delta("recorder_audio_packets_shed_total"); got != float64(shed) {
		t.Errorf("recorder_audio_packets_shed_total grew by %.0f, the pipeline shed %d", got, shed)
	}
	// The track file lacks the held packets and only they: its reorder
	// stage waits the budget too, gave up on them (missing) and dropped
	// them when they came (late).
	if late, missing := delta(`recorder_track_packets_dropped_total{reason="late"}`), delta("recorder_track_packets_missing_total"); late != span || missing != span {
		t.Errorf("the track file's reorder stage gave up on %.0f packets and dropped %.0f late, want the %d held", missing, late, span)
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

// silentRunsBefore returns the silent runs of edges (start and end pairs)
// that end before end.
func silentRunsBefore(runs []time.Duration, end time.Duration) []time.Duration {
	var out []time.Duration
	for i := 0; i+1 < len(runs); i += 2 {
		if runs[i+1] < end {
			out = append(out, runs[i], runs[i+1])
		}
	}
	return out
}
