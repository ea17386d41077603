package loadtest

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/composition"
)

func TestParseLogfmt(t *testing.T) {
	for _, tc := range []struct {
		line string
		want map[string]string
	}{
		{`time=2026-12-06T07:16:09.945Z level=INFO msg="recording finished" instanceId=651e reason="stop request" duration=7.121s`,
			map[string]string{"time": "2026-12-06T07:16:09.945Z", "level": "INFO", "msg": "recording finished", "instanceId": "651e", "reason": "stop request", "duration": "7.121s"}},
		{`msg="a \"quoted\" word" n=1`, map[string]string{"msg": `a "quoted" word`, "n": "1"}},
		{`k=`, map[string]string{"k": ""}},
		{`not a log line`, nil},
		{`msg="unterminated`, nil},
		{``, nil},
	} {
		got, ok := parseLogfmt(tc.line)
		if ok != (tc.want != nil) || len(got) != len(tc.want) {
			t.Errorf("%q: %v %v, want %v", tc.line, got, ok, tc.want)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%q: %s=%q, want %q", tc.line, k, got[k], v)
			}
		}
	}
}

func FuzzParseLogfmt(f *testing.F) {
	f.Add(`time=2026-12-06T07:16:09.945Z level=INFO msg="recording finished" instanceId=651e reason="stop request"`)
	f.Add(`msg="a \"q\"" k= x=1`)
	f.Fuzz(func(t *testing.T, line string) {
		attrs, ok := parseLogfmt(line)
		if ok && len(attrs) == 0 {
			t.Errorf("%q: ok without attributes", line)
		}
		_, _ = parseRecorderLog(strings.NewReader(line + "\n" + line))
	})
}

// TestAnalyze_PlacesTheTrackEndBySenderReport analyses a kept directory
// made by hand: a recording stopped at 10 s whose one track file holds 10.2 s
// of audio from RTP timestamp 48000, with a sender report saying its clock
// read 1.0 s after the start at timestamp 96000 (so the file's first sample
// was sent at 0 s and its last at 10.2 s: 0.2 s after the stop), a mix of
// 10.05 s and the log lines of its stop.
func TestAnalyze_PlacesTheTrackEndBySenderReport(t *testing.T) {
	dir := t.TempDir()
	rec := filepath.Join(dir, "data", "storage", "org", "conv", "rec", "inst1")
	if err := os.MkdirAll(filepath.Join(rec, "tracks"), 0o755); err != nil {
		t.Fatal(err)
	}
	granule := uint64(10.2 * 48000)
	ogg := append(oggPage(0, []byte("OpusHead"), []byte("OpusTags")), oggPage(granule, []byte{0x78, 1, 2})...)
	if err := os.WriteFile(filepath.Join(rec, "tracks", "a.ogg"), ogg, 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)
	stop := start.Add(10 * time.Second)
	srAt := start.Add(time.Second)
	m := composition.Manifest{
		ConferenceID: "conf000", InstanceID: "inst1", Started: start, Stopped: stop,
		Mix: &composition.Mix{SampleRate: 8000, Frames: 80400},
		Tracks: []composition.Track{
			{UserID: "u1", Kind: "AUDIO", File: "tracks/a.ogg", Timing: &composition.TrackTiming{
				ClockRate: 48000, RTPZero: 48000, SenderReportNTP: &srAt, SenderReportRTP: 96000}},
			{UserID: "u2", Kind: "AUDIO", File: "tracks/b.ogg"}, // no report: no end
			{UserID: "u3", Kind: "VIDEO", File: "tracks/c.webm"},
		},
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rec, "manifest.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	log := `time=2026-12-06T07:00:00.001Z level=INFO msg="recording started" instanceId=inst1 state=ACTIVE
time=2026-12-06T07:00:13.000Z level=INFO msg="stop: audio still missing after the drain" instanceId=inst1 tracks=2 wait=2.5s reason=gap gap=2.49s
time=2026-12-06T07:00:13.100Z level=INFO msg="track's mix pipeline" instanceId=inst1 track=audio0 userId=u1 originMs=0 packets=500 decoded=400 lost=0 late=90 shed=80 beforeStart=0 reanchors=7 bySR=2 deferred=30 ratio=1.05
time=2026-12-06T07:00:13.500Z level=INFO msg="recording finished" instanceId=inst1 state=STOPPED reason="stop request" duration=10s
time=2026-12-06T07:00:14.000Z level=INFO msg="track ended" conference=conf000 userId=u1 track=audio0
`
	if err := os.WriteFile(filepath.Join(dir, "recorder.log"), []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := Analyze(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Recordings) != 1 {
		t.Fatalf("%d recordings, want 1", len(a.Recordings))
	}
	r := a.Recordings[0]
	if r.Reason != "stop request" || r.Answered != 3500*time.Millisecond || !r.DrainLogged || r.Drained || r.Drain != 2500*time.Millisecond || r.DrainWhy != "gap" {
		t.Errorf("stop: %q answered %v, drain %v (logged %t, drained %t, %q); want stop request, 3.5s, 2.5s gave up waiting for a gap", r.Reason, r.Answered, r.Drain, r.DrainLogged, r.Drained, r.DrainWhy)
	}
	if r.Duration != 10*time.Second || r.MixLong != 50*time.Millisecond {
		t.Errorf("recording %v, mix − recording %v; want 10s, 50ms", r.Duration, r.MixLong)
	}
	if len(r.Tracks) != 2 {
		t.Fatalf("%d audio tracks, want 2", len(r.Tracks))
	}
	t1, t2 := r.Tracks[0], r.Tracks[1]
	if !t1.EndKnown || (t1.End-200*time.Millisecond).Abs() > time.Millisecond {
		t.Errorf("u1's end − stop %v (known %t), want 200ms", t1.End, t1.EndKnown)
	}
	if !t1.Logged || t1.Packets != 500 || t1.Late != 90 || t1.Shed != 80 || t1.Reanchors != 7 || t1.BySR != 2 || t1.Defer != 30 || t1.Ratio != 1.05 {
		t.Errorf("u1's counters %+v", t1)
	}
	if t2.EndKnown || t2.Logged {
		t.Errorf("u2 (no report, no pipeline line): %+v", t2)
	}
	s := a.Summary()
	if s.ByRequest != 1 || s.Off != 1 || s.Capped != 1 || s.BySR != 1 || s.Tracks != 2 || s.Read != 500 || s.Drains != 1 || s.GaveUp != 1 || s.GaveUpWhy["gap"] != 1 {
		t.Errorf("summary %+v", s)
	}
	var out strings.Builder
	a.Print(&out)
	if !strings.Contains(out.String(), "| conf000 | stop request | 3.5 | 2.50 (gave up: gap) | 10.00 | +0.05 | 2 | +0.20 / +0.20 / +0.20 | 7 / 7 | 1 | 1 | 500 | 90 | 80 | 30 |") {
		t.Errorf("printed:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "1 drains, 1 gave up (waiting for: gap 1)") {
		t.Errorf("printed:\n%s", out.String())
	}
	if _, err := Analyze(t.TempDir()); !errors.Is(err, errNoRecorderDir) {
		t.Errorf("an empty directory: %v, want errNoRecorderDir", err)
	}
}
