package loadtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/media/ogg"
)

func TestMain(m *testing.M) {
	RunChild() // the naive Pion receiver runs as this test binary
	os.Exit(m.Run())
}

// TestRun_SmallLoad runs the harness end to end at a small N, as `make
// bench-load` does at a large one: the real recorder binary and the naive
// Pion receiver each get 10 speech streams (one conference), and every
// figure the table prints must be there and plausible, with nothing lost;
// the recorder runs once with its mix and once with mix "none".
func TestRun_SmallLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the recorder and runs two receivers for about 30 s")
	}
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	testenv.LookPath(t, "taskset")
	dir := t.TempDir()
	bin := filepath.Join(dir, "recorder")
	build := exec.Command("go", "build", "-o", bin, "github.com/rtcrec/recorder/cmd/recorder")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the recorder: %v\n%s", err, out)
	}
	var log bytes.Buffer
	cfg := Config{
		Recorder: bin, FFmpeg: ffmpeg, Systems: []string{SystemRecorder, SystemRecorderNoMix, SystemPion},
		Streams: []int{10}, Warmup: time.Second, Window: 3 * time.Second, PinCPU: -1, Dir: dir, Log: &log,
		ProfileDir: t.TempDir(), Keep: true,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	results, err := Run(ctx, cfg)
	t.Logf("harness log:\n%s", log.String())
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	Table(&table, results)
	t.Logf("\n%s", table.String())
	if len(results) != 3 {
		t.Fatalf("%d results, want 3", len(results))
	}
	for _, r := range results {
		if r.Err != "" {
			t.Errorf("%s: %s", r.System, r.Err)
			continue
		}
		if r.Connected != 10 || r.Files != 10 {
			t.Errorf("%s: %d streams connected, %d files; want 10 and 10", r.System, r.Connected, r.Files)
		}
		if r.CPU <= 0 || r.RSS <= r.RSSIdle/2 || r.Window < 3*time.Second {
			t.Errorf("%s: CPU %v over %v, RSS %d (idle %d): not measured", r.System, r.CPU, r.Window, r.RSS, r.RSSIdle)
		}
		if r.Lost != 0 || r.Late != 0 || r.DecodeErrs != 0 || r.Missing != 0 {
			t.Errorf("%s: lost %d, late %d, decode errors %d, missing from files %d; want none (%s)",
				r.System, r.Lost, r.Late, r.DecodeErrs, r.Missing, r.FilesDetail)
		}
		if r.MixShort > time.Second {
			t.Errorf("%s: a mix is %v shorter than its recording", r.System, r.MixShort)
		}
	}
	// The recorder's goroutines, heap and stacks are counted and it profiled
	// itself.
	for _, r := range results[:2] {
		// Every packet is accounted for: written, none missing, none dropped
		// (10 streams of at least 4 s of 20 ms packets).
		if r.Err == "" && (r.Written < 10*200 || r.NotReceived != 0 || r.KernelDrops != 0 || r.FileDrops != 0) {
			t.Errorf("%s: %d written, %d not received (%d dropped by the kernel), %d dropped by the files",
				r.System, r.Written, r.NotReceived, r.KernelDrops, r.FileDrops)
		}
		if r.Err == "" && (r.GoroutinesIdle == 0 || r.Goroutines <= r.GoroutinesIdle) {
			t.Errorf("%s: %d goroutines (idle %d): not counted", r.System, r.Goroutines, r.GoroutinesIdle)
		}
		if r.Err == "" && (r.HeapIdle == 0 || r.Heap <= r.HeapIdle || r.StacksIdle == 0 || r.Stacks <= r.StacksIdle) {
			t.Errorf("%s: heap %d (idle %d), stacks %d (idle %d): not measured", r.System, r.Heap, r.HeapIdle, r.Stacks, r.StacksIdle)
		}
		for _, kind := range []string{"cpu", "heap"} {
			f := filepath.Join(cfg.ProfileDir, r.System+"-10-"+kind+".pprof")
			if st, err := os.Stat(f); err != nil || st.Size() == 0 {
				t.Errorf("%s: no %s profile (%v)", r.System, kind, err)
			}
		}
	}
	// A recording with mix "none" decodes nothing; one with the mix decodes.
	if rec := results[0]; rec.Err == "" && rec.Decoded == 0 {
		t.Errorf("the recorder with its mix decoded no packet")
	}
	if nomix := results[1]; nomix.Err == "" && nomix.Decoded != 0 {
		t.Errorf("the recorder with mix none decoded %d packets", nomix.Decoded)
	}
	// The kept directory of the recorder with its mix analyses: its one
	// recording was stopped by request and answered, each of its 10 tracks
	// placed by its sender's reports and counted by its mix pipeline.
	if rec := results[0]; rec.Err == "" {
		a, err := Analyze(rec.Dir)
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		a.Print(&out)
		t.Logf("analysis:\n%s", out.String())
		s := a.Summary()
		if len(a.Recordings) != 1 || s.ByRequest != 1 || len(s.Answered) != 1 || len(s.Ends) != 10 || s.Tracks != 10 || s.Read < 10*200 {
			t.Errorf("analysis: %d recordings, summary %+v; want one stopped by request, 10 tracks with their ends and counters", len(a.Recordings), s)
		}
		for _, end := range s.Ends {
			if end < -1 || end > 1 {
				t.Errorf("a track ends %.2f s from the stop by its sender's reports: not placed", end)
			}
		}
	}
}

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(strings.NewReader(`# HELP recorder_tracks Tracks.
# TYPE recorder_tracks gauge
recorder_tracks{kind="audio"} 12
recorder_tracks{kind="video"} 3
recorder_rtp_packets_lost_total 7
`))
	if err != nil {
		t.Fatal(err)
	}
	if m[`recorder_tracks{kind="audio"}`] != 12 || m["recorder_tracks"] != 15 || m["recorder_rtp_packets_lost_total"] != 7 {
		t.Errorf("parsed %v", m)
	}
}

// oggPage builds one Ogg page holding packets (RFC 3533 lacing).
func oggPage(granule uint64, packets ...[]byte) []byte {
	var lacing, body []byte
	for _, p := range packets {
		n := len(p)
		for n >= 255 {
			lacing = append(lacing, 255)
			n -= 255
		}
		lacing = append(lacing, byte(n))
		body = append(body, p...)
	}
	h := make([]byte, 27)
	copy(h, "OggS")
	binary.LittleEndian.PutUint64(h[6:], granule)
	h[26] = byte(len(lacing))
	page := append(append(h, lacing...), body...)
	binary.LittleEndian.PutUint32(page[22:], ogg.CRC(0, page))
	return page
}

func TestParseOgg_CountsFillers(t *testing.T) {
	long := bytes.Repeat([]byte{0x78}, 300) // spans two lacing values
	file := append(oggPage(0, []byte("OpusHead"), []byte("OpusTags")),
		oggPage(3*960, long, []byte{0xF8, 0xFF, 0xFE}, []byte{0x78, 1, 2})...)
	path := filepath.Join(t.TempDir(), "t.ogg")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	audio, filler, d, err := opusTrackCheck(path)
	if err != nil {
		t.Fatal(err)
	}
	if audio != 3 || filler != 1 || d != 60*time.Millisecond {
		t.Errorf("audio %d, filler %d, duration %v; want 3, 1, 60ms", audio, filler, d)
	}
	if _, _, err := parseOgg(file[:len(file)-1]); err == nil {
		t.Error("a truncated page parsed")
	}
}

func TestParseMJR_CountsHoles(t *testing.T) {
	b := []byte("MJR00002")
	info := []byte(`{"t":"a","c":"opus"}`)
	b = binary.BigEndian.AppendUint16(b, uint16(len(info)))
	b = append(b, info...)
	for _, seq := range []uint16{10, 11, 14, 15} { // 12 and 13 missing
		pkt := make([]byte, 12+3)
		pkt[0] = 0x80
		binary.BigEndian.PutUint16(pkt[2:], seq)
		binary.BigEndian.PutUint32(pkt[4:], uint32(seq-10)*960)
		b = append(b, "MEET"...)
		b = binary.BigEndian.AppendUint32(b, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(len(pkt)))
		b = append(b, pkt...)
	}
	n, missing, span, err := parseMJR(b)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 || missing != 2 || span != 100*time.Millisecond {
		t.Errorf("packets %d, missing %d, span %v; want 4, 2, 100ms", n, missing, span)
	}
}

func TestParseWAV(t *testing.T) {
	b := []byte("RIFF\x00\x00\x00\x00WAVEfmt ")
	b = binary.LittleEndian.AppendUint32(b, 16)
	b = binary.LittleEndian.AppendUint16(b, 1)
	b = binary.LittleEndian.AppendUint16(b, 1)
	b = binary.LittleEndian.AppendUint32(b, 8000)
	b = binary.LittleEndian.AppendUint32(b, 16000)
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 16)
	b = append(b, "data"...)
	b = binary.LittleEndian.AppendUint32(b, 16000)
	for i := 0; i < 8000; i++ {
		b = binary.LittleEndian.AppendUint16(b, uint16(int16(1000)))
	}
	d, rms, err := parseWAV(b)
	if err != nil {
		t.Fatal(err)
	}
	if d != time.Second || rms != 1000 {
		t.Errorf("duration %v, RMS %v; want 1s, 1000", d, rms)
	}
}

func FuzzParseOgg(f *testing.F) {
	f.Add(oggPage(960, []byte{1, 2, 3}))
	f.Fuzz(func(t *testing.T, b []byte) { _, _, _ = parseOgg(b) })
}

func FuzzParseMJR(f *testing.F) {
	f.Add([]byte("MJR00002\x00\x02{}MEET\x00\x00\x00\x00\x00\x0c\x80\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) { _, _, _, _ = parseMJR(b) })
}

func FuzzParseWAV(f *testing.F) {
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00data\x02\x00\x00\x00\x01\x00"))
	f.Fuzz(func(t *testing.T, b []byte) { _, _, _ = parseWAV(b) })
}

func FuzzParseMetrics(f *testing.F) {
	f.Add("a{b=\"c\"} 1\n# x\nd 2\n")
	f.Fuzz(func(t *testing.T, s string) { _, _ = parseMetrics(strings.NewReader(s)) })
}

// TestRunWait_SeesACoreShared: a busy process that shares its CPU with
// another busy one waits for it while runnable (runWait grows by a good part
// of the time); the same process alone on a CPU with nothing else busy
// would not, which is what the harness's "waited" column tells apart.
func TestRunWait_SeesACoreShared(t *testing.T) {
	if runWait(os.Getpid()) == 0 {
		t.Skip("the kernel keeps no schedstat")
	}
	var hogs []int
	for range 2 {
		cmd := exec.Command("taskset", "-c", "0", "sh", "-c", "while :; do :; done") // taskset execs sh: the same process
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		hogs = append(hogs, cmd.Process.Pid)
	}
	time.Sleep(50 * time.Millisecond) // both exec'd and running
	start := make([]time.Duration, len(hogs))
	for i, pid := range hogs {
		start[i] = runWait(pid)
	}
	const window = 500 * time.Millisecond
	time.Sleep(window)
	var waited time.Duration
	for i, pid := range hogs {
		waited += runWait(pid) - start[i]
	}
	// Two loops on one CPU: each runs about half the time and waits the
	// other half, so together they wait about the window.
	if waited < window/4 {
		t.Fatalf("two busy processes on one CPU waited %v for it in %v, want at least %v", waited, window, window/4)
	}
}
