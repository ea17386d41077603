package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/api"
	"github.com/rtcrec/recorder/recorder/conference/whip"
	"github.com/rtcrec/recorder/recorder/conference/whip/whiptest"
)

// procStats returns a process's resident memory (bytes) and CPU time.
func procStats(t *testing.T, pid int) (rss int64, cpu time.Duration) {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			rss = kb << 10
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return rss, time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ = 100
}

// TestMeasure_PerStream measures a `recorder serve` process (built without
// -race for this figure only when RECORDER_BIN is set) recording N PCMU
// streams: resident memory and CPU per stream. It runs only with
// RECORDER_MEASURE=N.
func TestMeasure_PerStream(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("RECORDER_MEASURE"))
	if n <= 0 {
		t.Skip("set RECORDER_MEASURE=<streams> (and RECORDER_BIN=<non-race binary>) to measure")
	}
	if b := os.Getenv("RECORDER_BIN"); b != "" {
		recorderBin = b
	}
	dir := t.TempDir()
	s := serveProcess(t, dir)
	key := readKey(t, dir)
	pid := s.cmd.Process.Pid
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	wapi, closeFn, err := whip.NewAPI(whip.Settings{LoopbackOnly: true, UDP4Only: true})
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	c := &whip.Client{API: wapi, Token: key}
	time.Sleep(time.Second)
	rss0, _ := procStats(t, pid)
	var ev api.RecordingDataEvent
	if st := call(t, "POST", s.url+"/api/recordings/start", key, api.StartRecording{ApplicationID: "a", ConferenceID: "m", ConversationID: "m"}, &ev); st != 200 {
		t.Fatalf("start: %d", st)
	}
	for i := 0; i < n; i++ {
		name := "p" + strconv.Itoa(i)
		p, err := whiptest.Join(ctx, c, whip.Endpoint(s.url, "m", name, "MIC"), name, 200+float64(i*10))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Leave(context.Background())
	}
	time.Sleep(3 * time.Second) // settle
	rss1, cpu1 := procStats(t, pid)
	const window = 10 * time.Second
	time.Sleep(window)
	rss2, cpu2 := procStats(t, pid)
	t0 := time.Now()
	if st := call(t, "POST", s.url+"/api/recordings/m/"+ev.RecorderID+"/"+ev.InstanceID+"/stop", key, nil, &ev); st != 200 {
		t.Fatalf("stop: %d", st)
	}
	stop := time.Since(t0)
	perStream := float64(max(rss1, rss2)-rss0) / float64(n)
	cpuPerStreamSecond := (cpu2 - cpu1).Seconds() / (float64(n) * window.Seconds())
	t.Logf("%d PCMU streams recorded (per-track WAV + mix): RSS %0.1f MiB idle, %0.1f MiB recording: %.0f KiB per stream; CPU %.2f ms per stream-second; stop → files uploaded %v",
		n, float64(rss0)/(1<<20), float64(max(rss1, rss2))/(1<<20), perStream/1024, cpuPerStreamSecond*1000, stop)
}
