package api

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/recorder"
	"github.com/rtcrec/recorder/recorder/conference/whip"
	"github.com/rtcrec/recorder/storage"
)

// joinOpus publishes frames (20 ms Opus packets, looped) over WHIP as user,
// catching up on ticks a loaded machine missed so that its RTP time keeps
// wall-clock time. From a call of hold until one of the release it returns,
// the publisher sends nothing, then what it missed at once: its packets
// come late, in a burst, as after a network queue at connect or a starved
// recorder's reader.
func joinOpus(t *testing.T, ctx context.Context, h *harness, conf, user string, frames [][]byte) (hold func() (release func())) {
	t.Helper()
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", user)
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
	stop, done := make(chan struct{}), make(chan struct{})
	var held atomic.Bool
	go func() {
		defer close(done)
		start, sent := time.Now(), 0
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-tick.C:
				if held.Load() {
					continue
				}
				for due := int(now.Sub(start)/(20*time.Millisecond)) + 1; sent < due; sent++ {
					if track.WriteSample(media.Sample{Data: frames[sent%len(frames)], Duration: 20 * time.Millisecond}) != nil {
						return
					}
				}
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
		pub.Close(context.Background())
	})
	return func() func() {
		held.Store(true)
		return func() { held.Store(false) }
	}
}

// TestEndToEnd_RetroactiveBlackout: bob (Opus, 660 Hz) and carol (PCMU,
// 880 Hz) are blacked out with a BlackoutStartTime 3 s in the past while
// alice (PCMU, 440 Hz) talks on; the recording uploads parts every second.
// Their tones are in the parts before the request; after it they are gone
// from that instant on (checked from 20 ms either side of it) in the parts
// already uploaded (reassembled from storage while the recording runs), and
// in the final tracks and mix, where the first 20 ms window without each
// tone begins within 20 ms of the instant (a track's file laid on the
// recording's timeline where the mix placed it: from its first packet, the
// manifest's mediaOffset, by its timing's moves); they are back after
// the blackout's stop. Alice is in every 20 ms window of the mix over the
// blacked-out range, in the re-uploaded parts and the final mix: the mix
// already written when the request came is re-mixed from the tracks, not
// silenced.
func TestEndToEnd_RetroactiveBlackout(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	t.Parallel()
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Uploads.ChunkInterval = time.Second
	h := startServiceConfig(t, cfg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	alice := joinGated(t, ctx, h, "rconf", "alice", 440)
	joinGated(t, ctx, h, "rconf", "carol", 880)
	hold := joinOpus(t, ctx, h, "rconf", "bob", opusFrames(t, 660, 2))
	// Bob's packets from 300 ms before the start come after it, in a
	// burst: his file begins with audio captured before the track was
	// added (its first packet came late: its time zero moved back), so it
	// is placed by its first packet (FirstPacket, the manifest's
	// mediaOffset) and its timing, not by Track.Started (a loaded
	// machine's reader did the same in session 20: 320 ms).
	release := hold()
	time.Sleep(300 * time.Millisecond) // how long bob's packets are held: the scenario, not a wait
	ev, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: "rconf", ConversationID: "rconv"})
	release()
	if st != 200 {
		t.Fatalf("start: %d", st)
	}
	m := h.svc.Manager
	rec := func() *recorder.Recording {
		r, err := m.Get(ctx, "org1", ev.ConversationID, ev.RecorderID, ev.InstanceID)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	bucket, err := m.Bucket(ctx, "app1")
	if err != nil {
		t.Fatal(err)
	}
	// The files to check, bob's and carol's tracks and the mix (once for
	// each tone). A track's file begins at its first packet written, which
	// may have been captured before the track was added (Track.Started),
	// and the mix may move it: it is laid on the recording's timeline
	// where the recording says the mix placed it (placement).
	type file struct {
		rel  string
		freq float64
	}
	var files []file
	// placement returns where the recording places the instants of f's
	// file, as it stands now (its time zero, Track.FirstPacket, once
	// settled, and its timing: the manifest's mediaOffset and moves); nil
	// for the mix (its own timeline).
	placement := func(r *recorder.Recording, f file) func(float64) float64 {
		for _, s := range r.Streams {
			for _, tr := range s.Tracks {
				if tr.File == f.rel && !tr.FirstPacket.IsZero() {
					zero := tr.FirstPacket.Sub(r.Started).Seconds()
					return composition.Track{Offset: tr.Offset.Seconds(), MediaOffset: &zero, Timing: tr.Timing}.Placement()
				}
			}
		}
		return nil
	}
	waitFor(t, 30*time.Second, func() bool {
		r := rec()
		files = files[:0]
		for _, s := range r.Streams {
			for _, tr := range s.Tracks {
				f := file{tr.File, map[string]float64{"bob": 660, "carol": 880}[s.UserID]}
				if f.freq != 0 && placement(r, f) != nil {
					files = append(files, f)
				}
			}
		}
		return len(files) == 2
	})
	started := rec().Started
	files = append(files, file{composition.MixFile, 660}, file{composition.MixFile, 880})
	prefix := rec().Storage.Prefix
	// reassemble rebuilds f from the parts uploaded so far into dir (false:
	// none yet); decode decodes such a file onto the recording's timeline.
	reassemble := func(f file, dir string) (string, bool) {
		dst := filepath.Join(dir, filepath.Base(f.rel))
		if _, err := recorder.Reassemble(ctx, bucket, prefix, f.rel, dst); err != nil {
			return "", false
		}
		fi, err := os.Stat(dst)
		return dst, err == nil && fi.Size() > 1000
	}
	decode := func(f file, path string) []int16 {
		pcm := mediatest.Decode(t, path, 8000)
		if f.rel == composition.MixFile {
			return pcm
		}
		place := placement(rec(), f)
		if place == nil {
			t.Fatalf("%s: the recording no longer places it", f.rel)
		}
		return mediatest.Lay(pcm, 8000, place, 0)
	}
	parts := func(f file) []int16 {
		if path, ok := reassemble(f, t.TempDir()); ok {
			return decode(f, path)
		}
		return nil
	}
	// toneAt is f's tone in pcm (on the recording's timeline) between
	// recording times from and to.
	toneAt := func(pcm []int16, f file, from, to float64) float64 {
		return level(pcm, f.freq, from, to)
	}
	dump := func(pcm []int16, f file, from, to float64) {
		for x := from; x < to; x += 0.1 {
			t.Logf("%s %g Hz %.1f s: %.0f", f.rel, f.freq, x, toneAt(pcm, f, x, x+0.1))
		}
	}

	// The blackout starts 3 s into the recording and is asked for 3 s
	// later; the parts stored just before the request are kept to show
	// what they held.
	t0 := started.Add(3 * time.Second)
	at := 3.0 // the blackout's start in the recording
	time.Sleep(time.Until(t0.Add(3 * time.Second)))
	// The mix on disk may lag by up to its latency budget (a loaded
	// machine's readers lag): wait until the stored parts of every file
	// hold the blackout's start and 0.3 s more, so that the request is
	// retroactive for each of them.
	before := t.TempDir()
	held := func() bool {
		for _, f := range files[:3] {
			path, ok := reassemble(f, before)
			if !ok || float64(len(decode(f, path)))/8000 < at+0.3 {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(30 * time.Second); !held(); time.Sleep(250 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the stored parts did not reach %.1f s of the recording in 30 s", at+0.3)
		}
	}
	request := time.Now()
	for _, user := range []string{"bob", "carol"} {
		var b BlackoutMessage
		if st := h.do("POST", "/api/blackouts/start", key1, map[string]any{"userId": user, "startTime": t0.Format(time.RFC3339Nano)}, &b); st != 200 || !b.Active {
			t.Fatalf("blackout start of %s: %d %+v", user, st, b)
		}
	}
	// Before the request the parts held the tones after the start.
	for _, f := range files {
		pcm := decode(f, filepath.Join(before, filepath.Base(f.rel)))
		cov := float64(len(pcm)) / 8000
		if cov < at+0.3 {
			t.Fatalf("%s: the parts held %.2f s when the blackout was asked for at %.2f s", f.rel, cov, request.Sub(started).Seconds())
		}
		if l := toneAt(pcm, f, at+0.04, min(cov, at+1)); l < 2000 {
			dump(pcm, f, at-0.5, cov)
			t.Fatalf("%s: the parts lacked the %g Hz tone after the blackout's start before it was asked for: %.0f", f.rel, f.freq, l)
		}
	}
	done := time.Since(started).Seconds()
	t.Logf("blackout from %.3f s, asked at %.3f s, in force at %.3f s", at, request.Sub(started).Seconds(), done)
	// After: the parts already uploaded are replaced.
	for _, f := range files {
		deadline := time.Now().Add(60 * time.Second)
		for {
			pcm := parts(f)
			l := toneAt(pcm, f, at+0.02, done-0.3)
			if pcm != nil && l < 200 {
				break
			}
			if time.Now().After(deadline) {
				dump(pcm, f, at-0.5, done)
				t.Fatalf("%s: the parts still hold the %g Hz tone after the blackout's start: %.0f", f.rel, f.freq, l)
			}
			time.Sleep(500 * time.Millisecond)
		}
		pcm := parts(f)
		if toneAt(pcm, f, at-0.3, at-0.02) < 2000 {
			dump(pcm, f, at-0.5, at+0.3)
			t.Errorf("%s: the parts lost the %g Hz tone before the blackout's start", f.rel, f.freq)
		}
		if f.rel == composition.MixFile && f.freq == 660 {
			// The range re-mixed ends where the mix was written when the
			// request came; the part holding that instant is stored at the
			// next cut (every second), so wait until the parts reach the
			// request, then alice must be in all of it.
			asked := request.Sub(started).Seconds()
			deadline := time.Now().Add(30 * time.Second)
			for float64(len(pcm))/8000 < asked {
				if time.Now().After(deadline) {
					t.Fatalf("the re-uploaded parts of the mix cover %.2f s, not yet up to the request at %.2f s", float64(len(pcm))/8000, asked)
				}
				time.Sleep(250 * time.Millisecond)
				pcm = parts(f)
			}
			aliceEverywhere(t, "the re-uploaded parts of the mix", pcm, at-0.5, asked)
		}
	}
	time.Sleep(time.Second)
	for _, user := range []string{"bob", "carol"} {
		var b BlackoutMessage
		if st := h.do("POST", "/api/blackouts/stop", key1, map[string]any{"userId": user}, &b); st != 200 || b.Active {
			t.Fatalf("blackout stop of %s: %d %+v", user, st, b)
		}
	}
	time.Sleep(2 * time.Second)
	var stopped RecordingDataEvent
	if st := h.do("POST", recPath(ev)+"/stop", key1, nil, &stopped); st != 200 || stopped.State != "STOPPED" {
		t.Fatalf("stop: %d %+v", st, stopped)
	}
	var comp RecordingDataMessage
	if st := h.do("GET", "/api/compositions/rconv", key1, nil, &comp); st != 200 || comp.Composition == nil || comp.Composition.Manifest == nil {
		t.Fatalf("composition: %d", st)
	}
	var man composition.Manifest
	if err := json.Unmarshal(fetch(t, comp.Composition.Manifest.URL), &man); err != nil {
		t.Fatal(err)
	}
	placed := map[string]func(float64) float64{} // the manifest's placement of each file with a mediaOffset
	for _, tr := range man.Tracks {
		if tr.MediaOffset != nil {
			placed[tr.File] = tr.Placement()
		}
	}
	ends := map[string]float64{}
	for _, b := range man.Blackouts {
		ends[b.UserID] = b.End
		if d := b.Start - at; d > 0.001 || d < -0.001 {
			t.Errorf("manifest: %s's blackout starts at %.3f s, want %.3f s (the given start)", b.UserID, b.Start, at)
		}
	}
	if len(ends) != 2 {
		t.Fatalf("manifest blackouts %+v, want bob's and carol's", man.Blackouts)
	}
	// The final objects.
	r := rec()
	for _, f := range files {
		data := []byte(nil)
		if f.rel == composition.MixFile {
			data = fetch(t, comp.Composition.Outputs[0].URL)
		} else {
			waitFor(t, 30*time.Second, func() bool {
				data, err = bucket.ReadAll(ctx, r.Storage.Prefix+f.rel)
				return err == nil
			})
		}
		path := filepath.Join(t.TempDir(), filepath.Base(f.rel))
		os.WriteFile(path, data, 0o600)
		if d := os.Getenv("MIXDEBUG"); d != "" { // kept for a look at a failure
			d = filepath.Join(d, ev.InstanceID)
			os.MkdirAll(d, 0o755)
			os.WriteFile(filepath.Join(d, filepath.Base(f.rel)), data, 0o644)
		}
		pcm := mediatest.Decode(t, path, 8000)
		if place, ok := placed[f.rel]; ok {
			pcm = mediatest.Lay(pcm, 8000, place, 0) // where the mix placed it
		} else if f.rel != composition.MixFile {
			t.Errorf("manifest: no mediaOffset for %s", f.rel)
		}
		end := ends[map[float64]string{660: "bob", 880: "carol"}[f.freq]]
		// Where the tone ends: the first of 20 ms windows 5 ms apart without
		// it, ms from the blackout's start (counted in whole steps: a sum of
		// 5 ms steps in floating point put a window at exactly -20 ms at
		// 2.9799999 s, outside the bound).
		ms := -100
		for ms < 100 && toneAt(pcm, f, at+float64(ms)/1000, at+float64(ms+20)/1000) > 1000 {
			ms += 5
		}
		edge := at + float64(ms)/1000
		t.Logf("%s: the first 20 ms window without the %g Hz tone begins at %.3f s (%+d ms from the blackout's start)", f.rel, f.freq, edge, ms)
		if ms < -20 || ms > 20 {
			dump(pcm, f, at-0.2, at+0.2)
			t.Errorf("%s: the %g Hz tone ends at %.3f s, more than 20 ms from the blackout's start %.3f s", f.rel, f.freq, edge, at)
		}
		if l := toneAt(pcm, f, at-0.3, at-0.02); l < 2000 {
			dump(pcm, f, at-0.5, at+0.3)
			t.Errorf("%s: %g Hz before the blackout: %.0f, want present", f.rel, f.freq, l)
		}
		if l := toneAt(pcm, f, at+0.02, end-0.05); l > 200 {
			t.Errorf("%s: %g Hz during the blackout [%.2f, %.2f]: %.0f, want absent", f.rel, f.freq, at, end, l)
		}
		// Back after the blackout's stop: at its pitch (one Goertzel over
		// the range: its main lobe is 0.7 Hz wide over 1.5 s, so a mix that
		// resampled the track by 1 % fails it, as the live mix did while it
		// followed its sender's late-stamped reports: session 10's official
		// CI, 593; media's reportTrial), and in every 100 ms window (not
		// 20 ms: bob's looped Opus frames have a seam every 2 s, in his
		// file too). toneTrace tells a tone off its pitch from a hole.
		after := float64(len(pcm))/8000 - 0.2
		l := toneAt(pcm, f, end+0.3, after)
		missing := toneMissing(pcm, f.freq, 0, end+0.3, after, 0.1, 1000)
		if l < 2000 {
			t.Errorf("%s: %g Hz after the blackout: %.0f, want present at its pitch", f.rel, f.freq, l)
		}
		if len(missing) > 0 {
			t.Errorf("%s: %g Hz after the blackout missing in %d windows of 100 ms, from %.2f s: want present", f.rel, f.freq, len(missing), missing[0])
		}
		if l < 2000 || len(missing) > 0 {
			toneTrace(t, f.rel, pcm, f.freq, 0, end-0.3, after+0.2)
		}
		if f.rel == composition.MixFile && f.freq == 660 {
			// Over the blacked-out range and a second either side (not up to
			// the stop, where the tracks' last packets may end first).
			if missing := aliceEverywhere(t, "the final mix", pcm, at-0.5, end+1); len(missing) > 0 {
				aliceWhere(t, ctx, bucket, r, man, alice, started, missing, data)
			}
		}
	}
}

// aliceEverywhere checks that alice's 440 Hz tone is in every 20 ms window of
// the mix pcm between from and to (seconds); it returns the windows without
// it (their starts).
func aliceEverywhere(t *testing.T, what string, pcm []int16, from, to float64) (missing []float64) {
	t.Helper()
	missing = toneMissing(pcm, 440, 0, from, to, 0.02, 2000)
	for _, x := range missing[:min(len(missing), 5)] {
		t.Errorf("%s: alice's 440 Hz missing at %.2f s (%.0f)", what, x, level(pcm, 440, x, x+0.02))
	}
	if len(missing) > 0 {
		t.Errorf("%s: alice missing in %d windows of 20 ms in [%.2f, %.2f] s", what, len(missing), from, to)
	}
	return missing
}

// toneMissing returns the starts of the windows of win seconds between from
// and to (seconds of the recording) where pcm, whose time 0 is off seconds
// into the recording, lacks freq (amplitude under least).
func toneMissing(pcm []int16, freq, off, from, to, win, least float64) (missing []float64) {
	for x := from; x+win <= to; x += win {
		if level(pcm, freq, x-off, x-off+win) < least {
			missing = append(missing, x)
		}
	}
	return missing
}

// aliceWhere logs, for windows of the mix where alice's tone is missing,
// whether her own track file holds it there (placed at its mediaOffset) and
// when her publisher sent the packets around it: a hole in the mix only is
// the recorder's, one in the track too is the sender's or the network's.
func aliceWhere(t *testing.T, ctx context.Context, bucket *storage.Bucket, r *recorder.Recording, man composition.Manifest, alice *gatedTone, started time.Time, missing []float64, mix []byte) {
	t.Helper()
	var at []string
	for _, x := range missing {
		at = append(at, fmt.Sprintf("%.2f", x))
	}
	t.Logf("alice missing in the final mix at %v s", at)
	debug := os.Getenv("MIXDEBUG")
	if debug != "" {
		os.MkdirAll(debug, 0o755)
		os.WriteFile(filepath.Join(debug, "retro-mix.wav"), mix, 0o644)
	}
	for _, tr := range man.Tracks {
		if tr.UserID != "alice" || tr.Kind != "AUDIO" {
			continue
		}
		data, err := bucket.ReadAll(ctx, r.Storage.Prefix+tr.File)
		if err != nil {
			t.Logf("alice's track %s: %v", tr.File, err)
			continue
		}
		path := filepath.Join(t.TempDir(), filepath.Base(tr.File))
		os.WriteFile(path, data, 0o600)
		pcm := mediatest.Decode(t, path, 8000)
		if debug != "" {
			os.WriteFile(filepath.Join(debug, "retro-alice"+filepath.Ext(tr.File)), data, 0o644)
		}
		off := tr.Offset
		if tr.MediaOffset != nil {
			off = *tr.MediaOffset
		}
		for _, x := range missing[:min(len(missing), 5)] {
			t.Logf("alice's track %s (from %.3f s): 440 Hz at %.2f s of the mix: %.0f", tr.File, off, x, level(pcm, 440, x-off, x-off+0.02))
		}
	}
	alice.mu.Lock()
	defer alice.mu.Unlock()
	for _, x := range missing[:min(len(missing), 5)] {
		var near []string
		for _, s := range alice.sent {
			if d := s.Sub(started).Seconds() - x; d > -0.1 && d < 0.1 {
				near = append(near, fmt.Sprintf("%.3f", s.Sub(started).Seconds()))
			}
		}
		t.Logf("alice's packets sent within 100 ms of %.2f s: %v", x, near)
	}
}

// pollEvery checks cond every half second until it holds or d passes (cond is
// costly: it reassembles and decodes files).
func pollEvery(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// toneTrace logs, per 100 ms of the recording's time between from and to,
// the level of freq in pcm (whose time 0 is off seconds into the
// recording) and the frequency within 5 % of it with the highest level
// there: a tone missing from a window, and a tone there but off its
// frequency (resampled), tell apart.
func toneTrace(t *testing.T, what string, pcm []int16, freq, off, from, to float64) {
	t.Helper()
	for x := from; x+0.1 <= to; x += 0.1 {
		a, b := max(0, int((x-off)*8000)), min(len(pcm), int((x+0.1-off)*8000))
		if b <= a {
			continue
		}
		best, bestL := freq, 0.0
		for g := freq * 0.95; g <= freq*1.05; g += 1 {
			if l := mediatest.Goertzel(pcm[a:b], 8000, g); l > bestL {
				best, bestL = g, l
			}
		}
		t.Logf("%s %.1f s: %g Hz %.0f; peak %.0f Hz %.0f", what, x, freq, mediatest.Goertzel(pcm[a:b], 8000, freq), best, bestL)
	}
}
