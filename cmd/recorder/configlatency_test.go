package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestServe_ConfiguredLatencyIsTheDefaultBudget: issue 10's budget is
// "default 5 s, `defaults.mix.latency` and per start request"; the request's
// is tested (TestServe_TooLateForTheMixIsShedNotShifted), this is the
// configuration's. The recorder's config sets defaults.mix.latency to 1 s and
// the start request names no budget; a real Pion publisher's network stalls
// for 2.5 s, 2 s into the recording, then delivers the held packets at once.
// The packets of the stall's first 1.5 s come later than the 1 s budget and
// are dropped from the mix as late (about 75 of 20 ms): between 50 and 100
// (a budget of 1.5 s and of 0.5 s). With the default 5 s none would be.
func TestServe_ConfiguredLatencyIsTheDefaultBudget(t *testing.T) {
	opus := realTimeTone(t, 660)
	dir := t.TempDir()
	writeConfig(t, dir, "defaults:\n  mix:\n    latency: 1s\n")
	s := serveProcess(t, dir)
	key := readKey(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const stall = 2500 * time.Millisecond
	var from atomic.Int64 // unix ns; 0: not yet
	rt := &relayTransport{t: t, imp: releasedTogether(&from, stall)}
	stop, _ := publishThrough(t, ctx, s, key, "cfglatency", "o", opus, time.Time{}, 20*time.Millisecond, rt)
	defer stop()
	before := recorderMetrics(t, s)
	ev := startRecording(t, s, key, "cfglatency", false)
	started := time.Now()
	time.Sleep(2 * time.Second) // the scenario: the stall begins 2 s into the recording
	from.Store(time.Now().UnixNano())
	// The recording goes on until the relay released what it held (at
	// the stall's end) and the recorder received every packet the relay
	// sent it since the start, and a second more (was: a sleep of the
	// stall and a second).
	time.Sleep(stall) // the release's instant
	waitReceived(t, s, rt, started, before, 50)
	stopRecording(t, s, key, "cfglatency", ev)
	after := recorderMetrics(t, s)
	late := after["recorder_rtp_packets_late_dropped_total"] - before["recorder_rtp_packets_late_dropped_total"]
	t.Logf("a %v stall with defaults.mix.latency 1s: %.0f packets late-dropped from the mix", stall, late)
	if late < 50 || late > 100 {
		t.Errorf("%.0f packets late-dropped from the mix, want about 75 (the stall's first 1.5 s beyond a 1 s budget): the configured budget is not the recording's", late)
	}
}
