package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/api"
	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/media/mediatest"
)

// TestServe_LateStartIsPlacedWhereCaptured: issue 10's one clock for all
// tracks, for a publisher that is late at its start. A real Pion publisher
// joins a running recording and beeps on its capture clock (a beep every
// second); the relay on its path delays each of its RTP packets of its
// first second by late (a queue on the path at connect, a sender short of
// CPU while it starts), then lets them through on time again (the delay
// falls by a packet's 20 ms per packet: no reordering). Its sender reports
// say its capture clock; without them (noRTCP), its arrivals. The track
// file's time zero (mediaOffset) is where the mix first placed the track:
// by its first packets' arrival, as late as they were; the live mix moves
// the track from there (its moves), and the manifest keeps where it did,
// so that the offline `recorder mix` and the composite place the file as
// the live mix placed it (session 18's open question: a file "placed at
// 45 ms, its first packet captured at 0"). Each beep (from the second: the
// track's start cuts the first) in the offline mix and in the track file
// placed by the manifest (mediaOffset and moves) is where the live mix has
// it, within 20 ms (the manifest keeps a move of 10 ms or more); and in the
// live mix where it was captured, within 20 ms, once the
// arrivals pulled the track back (from 5 s), with reports too (session
// 18's item 4: main kept the late anchor for good, 52-60 ms late for
// 60 ms).
func TestServe_LateStartIsPlacedWhereCaptured(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	const freq = 600.0
	beeps := beepPackets(t, freq)
	dir := t.TempDir()
	s := serveProcess(t, dir)
	key := readKey(t, dir)
	for _, tc := range []struct {
		name   string
		late   time.Duration
		noRTCP bool
	}{
		{"60ms late for 1s, reports", 60 * time.Millisecond, false},
		{"60ms late for 1s, no reports", 60 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			conf := fmt.Sprintf("latestart%d%v", tc.late.Milliseconds(), tc.noRTCP)
			var ev api.RecordingDataEvent
			if st := call(t, "POST", s.url+"/api/recordings/start", key, api.StartRecording{ApplicationID: "a", ConferenceID: conf, ConversationID: conf}, &ev); st != 200 {
				t.Fatalf("start: %d", st)
			}
			// The relay's clock (elapsed) starts at the first packet it
			// relays: the first second late, then on time again.
			late := func(_ int, elapsed time.Duration) (time.Duration, bool, bool) {
				return min(max(tc.late-(elapsed-time.Second), 0), tc.late), false, false
			}
			rt := &relayTransport{t: t, imp: late, noRTCP: tc.noRTCP}
			stop, first := publishThrough(t, ctx, s, key, conf, "p", beeps, time.Time{}, 20*time.Millisecond, rt)
			// Six beeps after the first (which the track's start cuts).
			for deadline := time.Now().Add(30 * time.Second); time.Since(first) < 6500*time.Millisecond; time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the publisher has not sent 6.5 s in 30 s")
				}
			}
			stopRecording(t, s, key, conf, ev)
			stop()
			objects, man := recordingFiles(t, dir, ev.InstanceID)
			defer func() {
				if t.Failed() {
					for _, l := range s.stderr.Lines("mix pipeline", "first packet", "track's file") {
						t.Log(l)
					}
				}
			}()
			i := slices.IndexFunc(man.Tracks, func(tr composition.Track) bool { return tr.UserID == "p" && strings.HasSuffix(tr.File, ".ogg") })
			if i < 0 {
				t.Fatalf("no Opus track in the manifest: %+v", man.Tracks)
			}
			tr := man.Tracks[i]
			live, err := os.ReadFile(objects[composition.MixFile])
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "offline.wav")
			if b, err := exec.CommandContext(ctx, recorderBin, "mix", "-o", out, filepath.Dir(objects[composition.ManifestFile])).CombinedOutput(); err != nil {
				t.Fatalf("recorder mix: %v\n%s", err, b)
			}
			offline, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			// Beep k was captured at first + k s; it sounds 6.5 ms later
			// (libopus's pre-skip, 312 samples at 48 kHz).
			captured := first.Sub(man.Started) + 6500*time.Microsecond
			zero := time.Duration(fileZero(t, tr) * float64(time.Second))
			file := placed(t, tr, toneOnsets(mediatest.Decode(t, objects[tr.File], 8000), freq, 1000))
			t.Logf("first packet captured at %v; the file's time zero (mediaOffset) %v, moves %+v", first.Sub(man.Started).Round(time.Millisecond),
				zero.Round(100*time.Microsecond), tr.Timing.Steps())
			// Each beep k (from the second: the track's start cuts the
			// first; not one the stop cuts) off its capture, per place.
			offs := func(onsets []time.Duration) map[int]time.Duration {
				out := map[int]time.Duration{}
				for _, o := range onsets {
					k := (o - captured + 500*time.Millisecond).Truncate(time.Second)
					if k >= time.Second && o <= man.Stopped.Sub(man.Started)-30*time.Millisecond {
						out[int(k/time.Second)] = o - (captured + k)
					}
				}
				return out
			}
			liveOff := offs(toneOnsets(wavSamples(t, live), freq, 1000))
			for _, where := range []struct {
				name string
				off  map[int]time.Duration
			}{
				{"live mix", liveOff},
				{"offline mix", offs(toneOnsets(wavSamples(t, offline), freq, 1000))},
				{"track file placed by the manifest", offs(file)},
			} {
				var list []string
				for k := 1; k <= 6; k++ {
					d, ok := where.off[k]
					if !ok {
						list = append(list, "none")
						t.Errorf("%s: no beep %d (captured at %v)", where.name, k, captured+time.Duration(k)*time.Second)
						continue
					}
					list = append(list, fmt.Sprintf("%+v", d.Round(time.Millisecond)))
					// Where the live mix has it, within 20 ms: the
					// manifest places the file as the live mix did.
					if l, ok := liveOff[k]; ok && (d-l).Abs() > 20*time.Millisecond {
						t.Errorf("%s: beep %d %v off its capture, the live mix's %v: %v apart", where.name, k, d, l, d-l)
					}
					// The live mix: where it was captured, within 20
					// ms, once the arrivals pulled the track back (over
					// 2 s at up to MaxSkew while more than pullFar
					// late: without reports 11 ms from 4.3 s in the run
					// this was written with), with reports too (item
					// 4: main kept the late anchor for good, 52 ms).
					if where.name == "live mix" && k >= 5 && d.Abs() > 20*time.Millisecond {
						t.Errorf("%s: beep %d %v off its capture (want within 20 ms once pulled back)", where.name, k, d)
					}
				}
				t.Logf("%s: beeps 1-6 off their capture by %v", where.name, list)
			}
		})
	}
}
