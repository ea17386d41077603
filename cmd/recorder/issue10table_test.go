package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/api"
	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/media/mediatest"
)

// issue10Publisher is one real Pion publisher of an issue-10 case: user
// sends packets (20 ms of Opus each, looped) every period on a capture clock
// that begins at the case's t0 (plus lag), through a relay that impairs them
// (imp; nil: none). tone says whether it sends the tone at freq in the
// window of recording time [from, from+20 ms), given where its capture
// clock's zero is on the recording's timeline (zero, seconds).
type issue10Publisher struct {
	user    string
	freq    float64
	packets func(t *testing.T) [][]byte
	lag     time.Duration
	period  time.Duration
	imp     impairment
	noRTCP  bool // the relay drops its RTCP: a sender without sender reports
	tone    func(from, zero float64, period time.Duration) bool
	// placedLater: the mix places its audio on its capture clock only
	// after a while (a slow clock is resampled once 3 s show its rate; a
	// late first anchor is pulled back by resampling): the windows in
	// which it sent the tone, by that clock, are shown, not checked.
	placedLater bool
}

// issue10Row is one line of issue 10's case table, for one track: the 20 ms
// windows of the recording (outside its pauses) in which the publisher sent
// the tone, and how many of them hold it in the track file (placed where
// the manifest places it: mediaOffset and the steps of its sender's
// reports) and in the mix; lacks counts the windows where the track file
// has the tone and the mix does not (a window beside two with it counts as
// there: the edges).
type issue10Row struct {
	name, user, before      string
	sent, track, mix, lacks int
	steps                   int           // of the track's placement (its sender's reports)
	longer                  time.Duration // the mix's length less the recording's
	pipeline, note, edges   string
	placed                  string
}

// TestIssue10Table runs issue 10's case table through the real binary with
// real Pion WHIP publishers (Opus, 20 ms) and prints it: per case and track,
// the fraction of the 20 ms windows in which the publisher sent its tone
// that hold it in the track file and in the mix, beside the issue's own
// figures (the "before"), the mix's length against the recording's, and the
// cut points of the pause. It fails where a case misses the issue's limits:
// the mix lacks the tone in a window where the track file has it; an edge of
// the sound in the mix is more than 20 ms from the track file's as the
// manifest places it (mediaOffset and timing: the mix and the file on one
// mapping); a cut of the mix is more than 20 ms from the track's; a
// participant's audio is more than 20 ms from where its sender captured it.
// `RECORDER_BIN=path go test -run TestIssue10Table -v` gives another
// build's table (the "before" of a change). Case 5 (400 streams overloaded on one core) is `recorder-load
// -analyze` (internal/loadtest): a load run, not a test.
func TestIssue10Table(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	tone := func(freq float64) func(t *testing.T) [][]byte {
		return func(t *testing.T) [][]byte {
			p, err := mediatest.OpusTone(ffmpeg, t.TempDir(), freq, 8)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
	}
	always := func(float64, float64, time.Duration) bool { return true }
	// beepPackets: a 200 ms beep (10 packets) every 50 packets of the
	// capture clock (a second, at a period of 20 ms), plus libopus's
	// pre-skip (6.5 ms).
	beeps := func(freq float64) func(t *testing.T) [][]byte {
		return func(t *testing.T) [][]byte { return beepPackets(t, freq) }
	}
	inBeep := func(from, zero float64, period time.Duration) bool {
		cycle := 50 * period.Seconds()
		at := math.Mod(from-zero-0.0065+100*cycle, cycle) // positive before the clock's zero too
		return at+0.02 <= 10*period.Seconds()
	}
	stall := func(_ int, e time.Duration) (time.Duration, bool, bool) {
		if ph := e % (2 * time.Second); ph >= 1700*time.Millisecond {
			return 2*time.Second - ph, false, false
		}
		return 0, false, false
	}
	cases := []struct {
		name, before string
		pubs         []issue10Publisher
		busy         bool          // the recorder on one core beside a busy competitor
		pauseAt      time.Duration // pause there and resume 2.1 s later; 0: none
		length       time.Duration
		check        bool // the issue's limits apply (else the row is shown only)
	}{
		{"pause at 2 s, resume 2.1 s later", "track 0-2.04 and 4.10-6.14 s; mix silent 1.94-5.14 s",
			[]issue10Publisher{{user: "o", freq: 660, packets: tone(660), period: 20 * time.Millisecond, tone: always}},
			false, 2 * time.Second, 6100 * time.Millisecond, true},
		{"stall 300 ms every 2 s, then a burst", "track 1.00, mix 0.80",
			[]issue10Publisher{{user: "o", freq: 660, packets: beeps(660), period: 20 * time.Millisecond, imp: stall, tone: inBeep}},
			false, 0, 8 * time.Second, true},
		{"two publishers, recorder on a busy core", "tracks 1.00, mix 0.53 and 0.61",
			[]issue10Publisher{
				{user: "a", freq: 600, packets: beeps(600), period: 20 * time.Millisecond, tone: inBeep},
				{user: "b", freq: 1000, packets: beeps(1000), lag: 300 * time.Millisecond, period: 20 * time.Millisecond, tone: inBeep},
			}, true, 0, 8 * time.Second, true},
		{"sender clock 4 % slow", "track complete, mix: 200 ms holes every 2.4 s",
			[]issue10Publisher{{user: "o", freq: 660, packets: beeps(660), period: 20800 * time.Microsecond, tone: inBeep, placedLater: true}},
			false, 0, 8 * time.Second, true},
		// Session 9's TooLate probe through the binary: without sender
		// reports, the mix anchors late a track whose first packets come
		// late, and pulls it back on time once they come on time; the
		// file's placement must follow (timing.moves), or the two part.
		{"late first anchor: no sender reports, 150 ms late for 2 s", "(session 9: mix and file parted by ~100 ms)",
			[]issue10Publisher{{user: "o", freq: 660, packets: beeps(660), period: 20 * time.Millisecond, noRTCP: true, tone: inBeep, placedLater: true,
				imp: func(_ int, e time.Duration) (time.Duration, bool, bool) {
					switch {
					case e < 2*time.Second:
						return 150 * time.Millisecond, false, false
					case e < 2150*time.Millisecond:
						return 2150*time.Millisecond - e, false, false // in order
					}
					return 0, false, false
				}}},
			false, 0, 8 * time.Second, true},
		// The issue's two publishers "sent only 92 % of real time": its
		// test sender skipped the ticks it missed on a loaded machine
		// (removed in 6d30abd), so its timestamps ran 8 % slow against its
		// wall clock. Beyond the 5 % that resampling absorbs (MaxSkew):
		// shown, not checked.
		{"sender 92 % of real time (8 % slow)", "tracks 1.00, mix 0.53 and 0.61 (with load)",
			[]issue10Publisher{{user: "o", freq: 660, packets: beeps(660), period: 21740 * time.Microsecond, tone: inBeep, placedLater: true}},
			false, 0, 8 * time.Second, false},
	}
	var rows []issue10Row
	var cuts []string
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var s *server
			if tc.busy {
				taskset := testenv.LookPath(t, "taskset")
				busy := exec.Command(taskset, "-c", "0", "sh", "-c", "while :; do :; done")
				if err := busy.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { busy.Process.Kill(); busy.Wait() })
				s = serveProcessWith(t, dir, taskset, "-c", "0")
			} else {
				s = serveProcess(t, dir)
			}
			key := readKey(t, dir)
			ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
			defer cancel()
			conf := fmt.Sprintf("case%d", i+1)
			t0 := time.Now().Add(500 * time.Millisecond)
			var stops []func()
			firstSent := map[string]time.Time{}
			rts := map[string]*relayTransport{}
			for _, p := range tc.pubs {
				rts[p.user] = &relayTransport{t: t, imp: p.imp, noRTCP: p.noRTCP}
				stop, first := publishThrough(t, ctx, s, key, conf, p.user, p.packets(t), t0.Add(p.lag), p.period, rts[p.user])
				stops, firstSent[p.user] = append(stops, stop), first
			}
			var ev api.RecordingDataEvent
			if st := call(t, "POST", s.url+"/api/recordings/start", key, api.StartRecording{ApplicationID: "a", ConferenceID: conf, ConversationID: conf}, &ev); st != 200 {
				t.Fatalf("start: %d", st)
			}
			path := s.url + "/api/recordings/" + conf + "/" + ev.RecorderID + "/" + ev.InstanceID
			var r api.RecordingDataEvent
			rest := tc.length
			if tc.pauseAt > 0 {
				for _, step := range []struct {
					wait time.Duration
					verb string
				}{{tc.pauseAt, "/pause"}, {2100 * time.Millisecond, "/resume"}} {
					time.Sleep(step.wait)
					if st := call(t, "POST", path+step.verb, key, nil, &r); st != 200 {
						t.Fatalf("%s: %d", step.verb, st)
					}
					rest -= step.wait
				}
			}
			time.Sleep(rest)
			if st := call(t, "POST", path+"/stop", key, nil, &r); st != 200 {
				t.Fatalf("stop: %d", st)
			}
			for _, stop := range stops {
				stop()
			}
			objects, man := recordingFiles(t, dir, ev.InstanceID)
			mixData, err := os.ReadFile(objects[composition.MixFile])
			if err != nil {
				t.Fatal(err)
			}
			mixPCM := wavSamples(t, mixData)
			pipelines := s.stderr.Lines("track's mix pipeline")
			for _, p := range tc.pubs {
				// The windows in which the publisher sent the tone: from
				// the first packet that left it, on its capture clock
				// (zero). It writes from the first slot after ICE
				// connected, and its Pion drops what it writes before
				// DTLS-SRTP is up: with the recorder on a busy core, b's
				// first 5 packets (0.00-0.10 s) never left it, and the
				// track file, which holds what the recorder received,
				// "lacked" them (session 21, 73 of 77 windows).
				wrote := firstSent[p.user]
				first, unsent, ok := rts[p.user].firstRelayed(wrote, p.period)
				if !ok {
					t.Fatalf("%s: no RTP packet of its publisher reached the relay", p.user)
				}
				zero, sentFrom := t0.Add(p.lag).Sub(man.Started).Seconds(), first.Sub(man.Started).Seconds()
				row := issue10Windows(t, objects, man, mixPCM, p.user, p.freq, func(from float64) bool { return from >= sentFrom && p.tone(from, zero, p.period) })
				row.name, row.before = tc.name, tc.before
				row.longer = time.Duration(len(mixPCM))*time.Second/8000 - man.Stopped.Sub(man.Started)
				for _, l := range pipelines {
					if strings.Contains(l, "userId="+p.user+" ") {
						row.pipeline = pipelineSummary(l)
					}
				}
				if tc.check && row.lacks > 0 {
					t.Errorf("%s: the mix lacks the tone in %d of the windows where the track file has it", p.user, row.lacks)
				}
				if tc.check && !p.placedLater && float64(row.track) < 0.95*float64(row.sent) {
					t.Errorf("%s: the track file has the tone in %d of the %d windows it was sent in", p.user, row.track, row.sent)
				}
				if tr := opusTrackOf(t, man, p.user); !p.noRTCP {
					// The file's placement, apart from what it holds:
					// its first sample where its sender captured it (its
					// first report says when: the test's publishers
					// report their capture clock, publisherAPI), within
					// 20 ms (the issue's limit), wherever the recorder
					// placed it from (the report, or the arrivals).
					sent, ok := tr.Timing.FirstSent()
					at := fileZero(t, tr) + composition.StepAt(tr.Timing.Steps(), 0)
					if !ok {
						t.Errorf("%s: the manifest keeps no sender report of the track", p.user)
					} else {
						off := time.Duration((at - sent.Sub(man.Started).Seconds()) * float64(time.Second))
						row.placed = fmt.Sprintf("file's first sample placed at %.4f s, %+.1f ms from its capture (by its sender's first report); the publisher's first packet sent captured at %.4f s (%d written before it from %.4f s never left it)",
							at, off.Seconds()*1000, sentFrom, unsent, wrote.Sub(man.Started).Seconds())
						if tc.check && !p.placedLater && off.Abs() > 20*time.Millisecond {
							t.Errorf("%s: the track file is placed %v from where its sender captured it", p.user, off)
						}
					}
				}
				if tc.pauseAt == 0 && len(tc.pubs) == 1 {
					// The beeps' edges: in the mix where the track file,
					// placed as the manifest says, has them.
					row.edges = issue10Edges(t, objects, man, mixPCM, p.user, tc.check)
				}
				rows = append(rows, row)
			}
			if len(tc.pubs) == 2 {
				// Each participant's beeps where its sender captured them
				// (t0, and b's 300 ms later; libopus's pre-skip 6.5 ms),
				// within 20 ms: the offset between them too.
				a, b := tc.pubs[0], tc.pubs[1]
				for _, p := range []struct {
					pub   issue10Publisher
					other float64
				}{{a, b.freq}, {b, a.freq}} {
					first := t0.Add(p.pub.lag).Sub(man.Started)
					start := time.Duration(fileZero(t, opusTrackOf(t, man, p.pub.user)) * float64(time.Second))
					at, off := beepOffsets(toneOnsets(mixPCM, p.pub.freq, p.other), first, 50*p.pub.period, start)
					for k := range off {
						if off[k].Abs() > 20*time.Millisecond {
							t.Errorf("%s's beep at %v in the mix, captured at %v: %v off", p.pub.user, at[k], at[k]-off[k], off[k])
						}
					}
					rows[len(rows)-2+slices.Index([]string{a.user, b.user}, p.pub.user)].note = "beep onsets vs capture (ms): " + offsetsMS(off)
				}
			}
			if tc.pauseAt > 0 {
				cuts = append(cuts, issue10Cuts(t, objects, man, mixPCM))
			}
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "issue 10's case table (20 ms windows in which the publisher sent its tone; load %s)\n", loadAverage())
	fmt.Fprintf(&b, "| case | track | windows sent | track file | mix | mix lacks (of the track's) | mix − recording | mix pipeline | before (the issue) |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		frac := func(n int) string {
			if r.sent == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f", float64(n)/float64(r.sent))
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %d | %+.1f ms | %s steps=%d | %s |\n", r.name, r.user, r.sent, frac(r.track), frac(r.mix), r.lacks, r.longer.Seconds()*1000, r.pipeline, r.steps, r.before)
		if r.note != "" {
			fmt.Fprintf(&b, "|   | %s: %s |\n", r.user, r.note)
		}
		if r.edges != "" {
			fmt.Fprintf(&b, "|   | %s: %s |\n", r.user, r.edges)
		}
		if r.placed != "" {
			fmt.Fprintf(&b, "|   | %s: %s |\n", r.user, r.placed)
		}
	}
	for _, c := range cuts {
		fmt.Fprintf(&b, "pause cuts: %s\n", c)
	}
	t.Log("\n" + b.String())
}

// issue10Windows compares user's Opus track file, placed on the recording's
// timeline where the manifest places it (mediaOffset, moved by the steps of
// its sender's reports), with the mix in the 20 ms windows of the recording
// outside its pauses (pause behavior silence: the mix's positions are the
// recording's) and between its first and last windows (partial): the
// windows in which the publisher sent the tone (sent), and how many of them
// hold it in the track file and in the mix; and the windows in which the
// track file has it and the mix lacks it.
func issue10Windows(t *testing.T, objects map[string]string, man composition.Manifest, mixPCM []int16, user string, freq float64, sent func(from float64) bool) issue10Row {
	t.Helper()
	tr := opusTrackOf(t, man, user)
	zero := fileZero(t, tr)
	mix := toneBlocks(mixPCM, freq, 160)
	track := toneBlocks(mediatest.Decode(t, objects[tr.File], 8000), freq, 160)
	steps := tr.Timing.Steps()
	// Per window of the recording: the track has the tone there, at the
	// edge of a run of windows with it (libopus, decoding the file, rings
	// on for a window after a beep ends, where pion/opus, decoding the mix,
	// does not; and the file's windows sit on the mix's to the nearest
	// window only).
	inTrack, edge := make([]bool, len(mix)), make([]bool, len(mix))
	for k, on := range track {
		m := int(math.Round((zero + float64(k)/50 + composition.StepAt(steps, float64(k)/50)) * 50))
		if on && m >= 0 && m < len(mix) {
			inTrack[m] = true
			edge[m] = k == 0 || k == len(track)-1 || !track[k-1] || !track[k+1]
		}
	}
	paused := func(m int) bool {
		from, to := float64(m)/50, float64(m+1)/50
		for _, p := range man.Pauses {
			if from < p.End && to > p.Start {
				return true
			}
		}
		return false
	}
	row := issue10Row{user: user, steps: len(steps)}
	var lackAt, notInFile []string
	for m := 1; m < len(mix)-1; m++ {
		if paused(m) {
			continue
		}
		if sent(float64(m) / 50) {
			// The first or last window of a beep counts as held by the
			// file when a neighbour has it: what the file holds, not to
			// the window where it is placed (a placement a few ms off
			// moves a beep's edge across a window boundary; it is
			// checked against the capture within 20 ms on its own).
			row.sent++
			edge := !sent(float64(m-1)/50) || !sent(float64(m+1)/50)
			if inTrack[m] || edge && (inTrack[m-1] || inTrack[m+1]) {
				row.track++
			} else {
				notInFile = append(notInFile, fmt.Sprintf("%.2f", float64(m)/50))
			}
			if mix[m] {
				row.mix++
			}
		}
		if inTrack[m] && !mix[m] && !(mix[m-1] && mix[m+1]) && !(edge[m] && (mix[m-1] || mix[m+1])) {
			row.lacks++
			lackAt = append(lackAt, fmt.Sprintf("%.2f", float64(m)/50))
		}
	}
	if len(lackAt) > 0 {
		t.Logf("%s: the mix lacks the tone the track file has at %v s", user, lackAt)
	}
	if len(notInFile) > 0 {
		t.Logf("%s: the track file, placed as the manifest says, lacks the tone in windows it was sent in, at %v s", user, notInFile)
	}
	return row
}

// issue10Cuts checks the cut points of the recording's one pause: the edges
// of the silent span in the mix, in the track file (placed at its
// mediaOffset) and the manifest's pause (its instants on the recording's
// timeline and in the mix); the mix's edges within 20 ms of the track's. It
// returns them as a line of the table.
func issue10Cuts(t *testing.T, objects map[string]string, man composition.Manifest, mixPCM []int16) string {
	t.Helper()
	if len(man.Pauses) != 1 || man.Pauses[0].MixStart == nil || man.Pauses[0].MixEnd == nil {
		t.Fatalf("manifest pauses %+v", man.Pauses)
	}
	var ogg composition.Track
	for _, tr := range man.Tracks {
		if strings.HasSuffix(tr.File, ".ogg") {
			ogg = tr
		}
	}
	mix := edges(soundBlocks(mixPCM, 40))
	track := edges(soundBlocks(mediatest.Decode(t, objects[ogg.File], 8000), 40))
	for i := range track {
		track[i] += time.Duration(fileZero(t, ogg) * float64(time.Second))
	}
	p := man.Pauses[0]
	line := fmt.Sprintf("mix %v, track %v; manifest: pause %.3f-%.3f s, in the mix %.3f-%.3f s", mix, track, p.Start, p.End, *p.MixStart, *p.MixEnd)
	if len(mix) != len(track) {
		t.Errorf("%d cut edges in the mix, %d in the track: %s", len(mix), len(track), line)
		return line
	}
	for i := range track {
		if d := (mix[i] - track[i]).Abs(); d > 20*time.Millisecond {
			t.Errorf("cut edge %d: at %v in the mix, %v in the track: %v apart", i, mix[i], track[i], d)
		}
	}
	return line
}

// issue10Edges compares the edges of the sound (5 ms blocks, silent runs of
// 100 ms or more) of the mix and of user's track file, laid on the
// recording's timeline as the manifest places it (mediaOffset and its steps:
// its sender's reports and the mix's moves by arrival; placedPCM). With
// check, every edge of the track (past its first 40 ms) is within 20 ms of
// one in the mix, and every edge of the mix within 20 ms of one of the
// track. It returns the largest distance, how many edges were compared and
// the placement's largest move.
func issue10Edges(t *testing.T, objects map[string]string, man composition.Manifest, mixPCM []int16, user string, check bool) string {
	t.Helper()
	tr := opusTrackOf(t, man, user)
	steps := tr.Timing.Steps()
	mix := edges(soundBlocks(mixPCM, 40))
	// The edges of the file as laid, not the file's own edges moved: a
	// step forward of the placement (the mix took a sender's clock 4 %
	// slow by arrival for 5 s, then jumped ~120 ms to its reports' line)
	// is silence in the mix and in the file as laid; moving the file's
	// edges instead, a jump within a beep's sound (its decay above
	// -60 dBFS too) left the mix with two edges the file had nowhere (the
	// mix's and the laid file's agreeing within 10 ms: s17 edges-note).
	// Laid within the recording (the mix's length): the file keeps its last
	// packet whole when its audio begins before the stop, so it may hold
	// sound up to a packet past the mix's end; a beep beginning there made
	// the silence before it the file's (not the mix's, whose trailing
	// silence has no edge), two edges the mix could not have.
	track := edges(soundBlocks(placedPCM(t, tr, mediatest.Decode(t, objects[tr.File], 8000), 8000, len(mixPCM)), 40))
	nearest := func(e time.Duration, list []time.Duration) time.Duration {
		best := time.Hour
		for _, m := range list {
			best = min(best, (m - e).Abs())
		}
		return best
	}
	var worst time.Duration
	var far []string
	n := 0
	for _, e := range track {
		if e <= 40*time.Millisecond {
			continue
		}
		n++
		if d := nearest(e, mix); d > 20*time.Millisecond {
			far = append(far, fmt.Sprintf("track %v: %v", e.Round(time.Millisecond), d.Round(time.Millisecond)))
		} else {
			worst = max(worst, d)
		}
	}
	for _, m := range mix {
		if d := nearest(m, track); d > 20*time.Millisecond {
			far = append(far, fmt.Sprintf("mix %v: %v", m.Round(time.Millisecond), d.Round(time.Millisecond)))
		}
	}
	if check && (len(far) > 0 || n < 10) {
		t.Errorf("%s: edges of the mix and the track file (placed by mediaOffset and %d steps) more than 20 ms apart: %v (of %d track edges)", user, len(steps), far, n)
	}
	out := fmt.Sprintf("edges mix vs file: %d compared, %d more than 20 ms apart, the others within %v", n, len(far), worst.Round(100*time.Microsecond))
	if at, by := largestMove(steps); by != 0 {
		out += fmt.Sprintf("; the placement's largest move %+.0f ms at %.2f s of the file", by*1000, at)
	}
	if len(far) > 0 {
		out += fmt.Sprintf(" (%s)", strings.Join(far[:min(len(far), 4)], "; "))
	}
	return out
}

// beepOffsets returns the beep onsets (on the recording's timeline) and how
// far each is from where its sender captured that beep: the beeps begin
// every cycle from first, plus libopus's pre-skip (6.5 ms). A beep captured
// before start (where the track begins on the timeline, or the recording's
// time zero) is left out: its onset there is where the track begins.
func beepOffsets(onsets []time.Duration, first, cycle, start time.Duration) (at, off []time.Duration) {
	for _, o := range onsets {
		k := (o - first + cycle/2) / cycle
		captured := first + k*cycle + 6500*time.Microsecond
		if captured < max(start, 0) {
			continue
		}
		at, off = append(at, o), append(off, o-captured)
	}
	return at, off
}

// offsetsMS formats durations as milliseconds with a sign, one decimal.
func offsetsMS(ds []time.Duration) string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = fmt.Sprintf("%+.1f", d.Seconds()*1000)
	}
	return strings.Join(out, " ")
}

// opusTrackOf returns user's Opus track in the manifest.
func opusTrackOf(t *testing.T, man composition.Manifest, user string) composition.Track {
	t.Helper()
	i := slices.IndexFunc(man.Tracks, func(tr composition.Track) bool { return tr.UserID == user && strings.HasSuffix(tr.File, ".ogg") })
	if i < 0 {
		t.Fatalf("no Opus track of %s in the manifest: %+v", user, man.Tracks)
	}
	return man.Tracks[i]
}

// pipelineSummary returns the counters of a "track's mix pipeline" log line
// that tell how the mix placed the track.
func pipelineSummary(line string) string {
	var out []string
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok && slices.Contains([]string{"late", "shed", "reanchors", "bySR", "ratio"}, k) {
			out = append(out, k+"="+v)
		}
	}
	return strings.Join(out, " ")
}

// loadAverage returns the machine's load averages (/proc/loadavg), or "?".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

// placedPCM lays a track file's samples (pcm, at rate) on the recording's
// timeline as the manifest places them (its Placement; see placed), in its
// first n samples: mediatest.Lay.
func placedPCM(t *testing.T, tr composition.Track, pcm []int16, rate float64, n int) []int16 {
	t.Helper()
	fileZero(t, tr)
	return mediatest.Lay(pcm, rate, tr.Placement(), n)
}

// largestMove returns the largest change between successive steps of a
// placement (from none), by size, and the file time it is at.
func largestMove(steps []composition.Step) (at, by float64) {
	prev := 0.0
	for _, st := range steps {
		if d := st.By - prev; math.Abs(d) > math.Abs(by) {
			at, by = st.File, d
		}
		prev = st.By
	}
	return at, by
}
