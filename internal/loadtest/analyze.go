package loadtest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rtcrec/recorder/composition"
)

// Analysis is what a recorder step's kept directory (-keep) says about each
// recording: how its stop went, where each track's file ends against the
// stop, how long its mix is against the recording, and what the mix's
// pipelines counted. It reads the recorder's log (slog text) and the
// manifests and files in its LOCAL storage.
type Analysis struct {
	Recordings []RecordingAnalysis
}

// RecordingAnalysis is one recording of an Analysis.
type RecordingAnalysis struct {
	Conference string
	InstanceID string
	// Reason is why it stopped ("stop request", "shutdown", ...), from the
	// log's "recording finished" line; empty if the line is missing.
	Reason string
	// Answered is how long the stop took: from the stop (the manifest's
	// stopped, taken when the stop begins) to the "recording finished" log
	// line (when a stop request is answered); negative if unknown.
	Answered time.Duration
	// Drain is the stop's wait for audio on its way and whether every track
	// came complete (false: it gave up); DrainLogged is false when the log
	// has no drain line (no track to wait for, or a paused recording).
	Drain       time.Duration
	Drained     bool
	DrainLogged bool
	// DrainWhy is what the drain waited for last when it gave up (its log's
	// reason: writing, unread, gapQueued, gap, quiet; recorder/media.go
	// drainReason), or, when it drained, the tracks it counted complete
	// though a packet from before the stop had not reached the machine
	// ("notArrived N"); empty if the log does not say.
	DrainWhy string
	// Duration is the recording's (stopped - started); MixLong, how much
	// longer its mix is (negative: shorter).
	Duration time.Duration
	MixLong  time.Duration
	Tracks   []TrackAnalysis
}

// TrackAnalysis is one audio track of a recording.
type TrackAnalysis struct {
	UserID string
	// End is where the track file's last sample was sent, against the
	// recording's stop (positive: after it): the file's last RTP timestamp
	// (its first, the manifest's rtpZero, plus its granule position) placed
	// by the sender's latest RTCP sender report (the sender's wall clock).
	// EndKnown is false for a track without a report.
	End      time.Duration
	EndKnown bool
	// The mix pipeline's counters (its log line at the track's end); Logged
	// is false without one.
	Logged                                      bool
	Packets, Late, Shed, Reanchors, BySR, Defer uint64
	Ratio                                       float64
}

// maxSkewSeen is how close to the pipeline's ±5 % cap a ratio counts as at
// the cap.
const maxSkewSeen = 0.049

// Analyze reads a kept recorder step directory (the one holding
// recorder.log and data/).
func Analyze(dir string) (*Analysis, error) {
	logs, err := readRecorderLog(filepath.Join(dir, "recorder.log"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", errNoRecorderDir, dir)
	}
	if err != nil {
		return nil, err
	}
	var manifests []string
	root := filepath.Join(dir, "data", "storage")
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "manifest.json" {
			manifests = append(manifests, path)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	a := &Analysis{}
	for _, path := range manifests {
		r, err := analyzeRecording(path, logs)
		if err != nil {
			return nil, err
		}
		a.Recordings = append(a.Recordings, r)
	}
	slices.SortFunc(a.Recordings, func(x, y RecordingAnalysis) int { return strings.Compare(x.Conference, y.Conference) })
	return a, nil
}

// logLine is one line of the recorder's log: its time, message and
// attributes.
type logLine struct {
	at    time.Time
	msg   string
	attrs map[string]string
}

// recorderLog holds the log lines the analysis uses, by instanceId.
type recorderLog map[string][]logLine

func readRecorderLog(path string) (recorderLog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseRecorderLog(f)
}

// parseRecorderLog reads slog's text format (key=value, values quoted as
// Go strings where needed); lines it cannot read are skipped.
func parseRecorderLog(r io.Reader) (recorderLog, error) {
	out := recorderLog{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		attrs, ok := parseLogfmt(sc.Text())
		if !ok || attrs["instanceId"] == "" {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, attrs["time"])
		if err != nil {
			continue
		}
		id := attrs["instanceId"]
		out[id] = append(out[id], logLine{at: at, msg: attrs["msg"], attrs: attrs})
	}
	return out, sc.Err()
}

// parseLogfmt splits one slog text line into its attributes; ok is false if
// it is not one.
func parseLogfmt(line string) (map[string]string, bool) {
	attrs := map[string]string{}
	for line = strings.TrimSpace(line); line != ""; line = strings.TrimLeft(line, " ") {
		eq := strings.IndexByte(line, '=')
		if eq <= 0 || strings.ContainsAny(line[:eq], " \"") {
			return nil, false
		}
		key := line[:eq]
		line = line[eq+1:]
		var val string
		if strings.HasPrefix(line, `"`) {
			q, err := strconv.QuotedPrefix(line)
			if err != nil {
				return nil, false
			}
			if val, err = strconv.Unquote(q); err != nil {
				return nil, false
			}
			line = line[len(q):]
		} else {
			end := strings.IndexByte(line, ' ')
			if end < 0 {
				end = len(line)
			}
			val, line = line[:end], line[end:]
		}
		attrs[key] = val
	}
	return attrs, len(attrs) > 0
}

func analyzeRecording(path string, logs recorderLog) (RecordingAnalysis, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return RecordingAnalysis{}, err
	}
	var m composition.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return RecordingAnalysis{}, fmt.Errorf("%s: %w", path, err)
	}
	r := RecordingAnalysis{Conference: m.ConferenceID, InstanceID: m.InstanceID, Answered: -1, Duration: m.Stopped.Sub(m.Started)}
	if m.Mix != nil && m.Mix.SampleRate > 0 {
		r.MixLong = time.Duration(float64(m.Mix.Frames)/float64(m.Mix.SampleRate)*float64(time.Second)) - r.Duration
	}
	pipes := map[string][]logLine{} // the pipelines' lines by userId
	for _, l := range logs[m.InstanceID] {
		switch l.msg {
		case "recording finished":
			r.Reason, r.Answered = l.attrs["reason"], l.at.Sub(m.Stopped)
		case "stop: drained the audio on its way", "stop: audio still missing after the drain":
			r.DrainLogged, r.Drained = true, l.msg == "stop: drained the audio on its way"
			r.Drain, _ = time.ParseDuration(l.attrs["wait"])
			if why := l.attrs["reason"]; why != "" {
				r.DrainWhy = why
			} else if n := l.attrs["notArrived"]; n != "" && n != "0" {
				r.DrainWhy = "notArrived " + n
			}
		case "track's mix pipeline":
			pipes[l.attrs["userId"]] = append(pipes[l.attrs["userId"]], l)
		}
	}
	for _, tr := range m.Tracks {
		if tr.Kind != "AUDIO" {
			continue
		}
		t := TrackAnalysis{UserID: tr.UserID}
		if tm := tr.Timing; tm != nil && tm.SenderReportNTP != nil && tm.ClockRate > 0 {
			_, _, d, err := opusTrackCheck(filepath.Join(filepath.Dir(path), filepath.FromSlash(tr.File)))
			if err != nil {
				return r, err
			}
			last := tm.RTPZero + uint32(d.Seconds()*float64(tm.ClockRate)+0.5)
			sent := tm.SenderReportNTP.Add(time.Duration(float64(int32(last-tm.SenderReportRTP)) / float64(tm.ClockRate) * float64(time.Second)))
			t.End, t.EndKnown = sent.Sub(m.Stopped), true
		}
		if ls := pipes[tr.UserID]; len(ls) == 1 { // a user with two audio tracks is not told apart
			a := ls[0].attrs
			t.Logged = true
			t.Packets, t.Late, t.Shed = atou(a["packets"]), atou(a["late"]), atou(a["shed"])
			t.Reanchors, t.BySR, t.Defer = atou(a["reanchors"]), atou(a["bySR"]), atou(a["deferred"])
			t.Ratio, _ = strconv.ParseFloat(a["ratio"], 64)
		}
		r.Tracks = append(r.Tracks, t)
	}
	return r, nil
}

func atou(s string) uint64 {
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}

// Print writes the analysis: one row per recording, then a summary.
func (a *Analysis) Print(w io.Writer) {
	fmt.Fprintln(w, "| conference | stop | answered s | drain s | recording s | mix − rec s | tracks | track end − stop s (min / median / max) | re-anchors (median / max) | anchors by SR | at ±5 % | read | late | shed | deferred |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, r := range a.Recordings {
		ends, re := r.ends(), r.reanchors()
		var bySR, capped int
		var read, late, shed, def uint64
		for _, t := range r.Tracks {
			if t.BySR > 0 {
				bySR++
			}
			if t.Logged && math.Abs(t.Ratio-1) >= maxSkewSeen {
				capped++
			}
			read, late, shed, def = read+t.Packets, late+t.Late, shed+t.Shed, def+t.Defer
		}
		drain := "–"
		if r.DrainLogged {
			drain = fmt.Sprintf("%.2f", r.Drain.Seconds())
			switch {
			case !r.Drained && r.DrainWhy != "":
				drain += " (gave up: " + r.DrainWhy + ")"
			case !r.Drained:
				drain += " (gave up)"
			case r.DrainWhy != "":
				drain += " (" + r.DrainWhy + ")"
			}
		}
		answered := "–"
		if r.Answered >= 0 {
			answered = fmt.Sprintf("%.1f", r.Answered.Seconds())
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %.2f | %+.2f | %d | %s | %s | %d | %d | %d | %d | %d | %d |\n",
			r.Conference, orDash(r.Reason), answered, drain, r.Duration.Seconds(), r.MixLong.Seconds(), len(r.Tracks),
			spread(ends), counts(re), bySR, capped, read, late, shed, def)
	}
	s := a.Summary()
	fmt.Fprintf(w, "\n%d recordings: %d stopped by request, answered in %s s; track ends − stop %s s (%d of %d recordings have a track ending more than 0.1 s from the stop); mixes − recordings %s s; re-anchors per track %s; %d of %d tracks anchored by a sender report, %d at the ±5 %% cap; read %d, late %d, shed %d, deferred %d\n",
		len(a.Recordings), s.ByRequest, spread(s.Answered), spread(s.Ends), s.Off, len(a.Recordings), spread(s.MixLong), counts(s.Reanchors), s.BySR, s.Tracks, s.Capped, s.Read, s.Late, s.Shed, s.Deferred)
	var why []string
	for _, k := range slices.Sorted(maps.Keys(s.GaveUpWhy)) {
		why = append(why, fmt.Sprintf("%s %d", k, s.GaveUpWhy[k]))
	}
	fmt.Fprintf(w, "%d drains, %d gave up (waiting for: %s)\n", s.Drains, s.GaveUp, orDash(strings.Join(why, ", ")))
}

// Summary is an Analysis over all its recordings.
type Summary struct {
	ByRequest                  int       // recordings stopped by a stop request
	Answered                   []float64 // their stops' answer times, seconds
	Ends                       []float64 // every track's end − stop, seconds
	Off                        int       // recordings with a track ending more than 0.1 s from the stop
	MixLong                    []float64 // mix − recording, seconds
	Reanchors                  []uint64  // per track
	Tracks                     int
	BySR                       int // tracks anchored by a sender report at least once
	Capped                     int // tracks whose ratio ended at the ±5 % cap
	Read, Late, Shed, Deferred uint64
	Drains, GaveUp             int            // stops whose drain was logged; of them, drains that gave up
	GaveUpWhy                  map[string]int // the give-ups by what they waited for last (DrainWhy)
}

// Summary returns the figures over all recordings.
func (a *Analysis) Summary() Summary {
	s := Summary{GaveUpWhy: map[string]int{}}
	for _, r := range a.Recordings {
		if r.DrainLogged {
			s.Drains++
			if !r.Drained {
				s.GaveUp++
				s.GaveUpWhy[orDash(r.DrainWhy)]++
			}
		}
		if r.Reason == "stop request" {
			s.ByRequest++
			if r.Answered >= 0 {
				s.Answered = append(s.Answered, r.Answered.Seconds())
			}
		}
		ends := r.ends()
		s.Ends = append(s.Ends, ends...)
		if len(ends) > 0 && (slices.Min(ends) < -0.1 || slices.Max(ends) > 0.1) {
			s.Off++
		}
		s.MixLong = append(s.MixLong, r.MixLong.Seconds())
		s.Reanchors = append(s.Reanchors, r.reanchors()...)
		for _, t := range r.Tracks {
			s.Tracks++
			if t.BySR > 0 {
				s.BySR++
			}
			if t.Logged && math.Abs(t.Ratio-1) >= maxSkewSeen {
				s.Capped++
			}
			s.Read, s.Late, s.Shed, s.Deferred = s.Read+t.Packets, s.Late+t.Late, s.Shed+t.Shed, s.Deferred+t.Defer
		}
	}
	return s
}

func (r RecordingAnalysis) ends() []float64 {
	var out []float64
	for _, t := range r.Tracks {
		if t.EndKnown {
			out = append(out, t.End.Seconds())
		}
	}
	return out
}

func (r RecordingAnalysis) reanchors() []uint64 {
	var out []uint64
	for _, t := range r.Tracks {
		if t.Logged {
			out = append(out, t.Reanchors)
		}
	}
	return out
}

// spread formats min / median / max of xs.
func spread(xs []float64) string {
	if len(xs) == 0 {
		return "–"
	}
	s := slices.Sorted(slices.Values(xs))
	return fmt.Sprintf("%+.2f / %+.2f / %+.2f", s[0], s[len(s)/2], s[len(s)-1])
}

// counts formats median / max of xs.
func counts(xs []uint64) string {
	if len(xs) == 0 {
		return "–"
	}
	s := slices.Sorted(slices.Values(xs))
	return fmt.Sprintf("%d / %d", s[len(s)/2], s[len(s)-1])
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// errNoRecorderDir says a directory is not a kept recorder step.
var errNoRecorderDir = errors.New("loadtest: not a kept recorder directory (no recorder.log)")
