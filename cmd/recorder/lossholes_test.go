package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/media/mediatest"
)

// TestServe_RandomLossLeavesNoHoleInTheMix: issue 10's "5 % random loss
// leaves no audible holes", through the real binary. A real Pion publisher
// sends an Opus tone through a relay that drops 5 % of its RTP packets at
// random: the track file has holes where packets never came (the writer's
// silence frames), and the mix must not: no 20 ms window of the mix from its
// first with the tone to its last is 20 dB or more below the tone's steady
// level (a lost packet's place concealed), and the mix pipeline counts
// every lost packet as concealed or recovered.
// The same with speech coded with in-band FEC (useinbandfec=1, as browsers
// send it): the pipeline recovers lost packets from the next one's FEC.
// (TestServe_MixHoldsTheTrackUnderImpairments/5%_loss checks only that the
// mix has the tone where the track file has it: a hole in both passes.)
func TestServe_RandomLossLeavesNoHoleInTheMix(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	const freq = 660.0
	tone := realTimeTone(t, freq)
	speech, _, err := synth.OpusSpeechWith(ffmpeg, t.TempDir(), 8, 3, 32000, "-fec", "1", "-packet_loss", "10")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := serveProcess(t, dir)
	key := readKey(t, dir)
	for i, tc := range []struct {
		name    string
		packets [][]byte
		fec     bool // speech with in-band FEC: recovered, and not checked by tone
	}{{"tone", tone, false}, {"speech with in-band FEC", speech, true}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			rng := rand.New(rand.NewPCG(5, uint64(i)))
			var mu sync.Mutex
			dropped := 0
			loss := func(n int, _ time.Duration) (time.Duration, bool, bool) {
				mu.Lock()
				defer mu.Unlock()
				drop := n > 10 && rng.IntN(100) < 5
				if drop {
					dropped++
				}
				return 0, drop, false
			}
			conf := fmt.Sprintf("loss%d", i)
			stop := publishOnSchedule(t, ctx, s, key, conf, "o", tc.packets, time.Time{}, 20*time.Millisecond, loss)
			ev := startRecording(t, s, key, conf, false)
			time.Sleep(6 * time.Second)
			stopRecording(t, s, key, conf, ev)
			stop()
			objects, man := recordingFiles(t, dir, ev.InstanceID)
			// The track's pipeline log, written when it ended (before the
			// manifest): the last one, the subtests run one after another.
			var line string
			if lines := s.stderr.Lines("track's mix pipeline"); len(lines) > 0 {
				line = lines[len(lines)-1]
			}
			st := logCounts(line, "lost", "concealed", "recovered", "late", "shed")
			mu.Lock()
			t.Logf("the relay dropped %d packets; the mix pipeline: %v", dropped, st)
			mu.Unlock()
			if st["lost"] < 5 {
				t.Fatalf("the mix pipeline lost %d packets: the relay's loss did not reach it (%s)", st["lost"], line)
			}
			if st["concealed"]+st["recovered"] != st["lost"] {
				t.Errorf("of %d lost packets %d concealed and %d recovered from FEC: want every one filled", st["lost"], st["concealed"], st["recovered"])
			}
			if tc.fec {
				if st["recovered"] == 0 {
					t.Errorf("no lost packet recovered from the next one's in-band FEC (%v)", st)
				}
				return
			}
			mixData, err := os.ReadFile(objects[composition.MixFile])
			if err != nil {
				t.Fatal(err)
			}
			defer func() { // the recorder's log of the track
				if t.Failed() {
					for _, l := range s.stderr.Lines("track's") {
						t.Log(l)
					}
				}
			}()
			// The tone's level in each 20 ms window of the mix, from its
			// first window with the tone to its last; its steady level is
			// their median. A hole is a window 20 dB or more below it (or
			// silent): a dip of 12-14 dB in one window where two packets in
			// a row were lost is the concealment fading out over the
			// second, heard as a dip, not as a hole (-30/-32 dBFS against
			// -18 steady, -20..-24 beside it; 2 of 5 runs).
			pcm := wavSamples(t, mixData)
			on := toneBlocks(pcm, freq, 160)
			first, last := slices.Index(on, true), len(on)-1
			for last >= 0 && !on[last] {
				last--
			}
			if first < 0 || float64(last-first)/50 < 5 {
				t.Fatalf("the mix has the tone only from window %d to %d", first, last)
			}
			level := make([]float64, last+1)
			for k := first; k <= last; k++ {
				level[k] = mediatest.ToneLevel(pcm[160*k:160*(k+1)], 8000, freq)
			}
			sorted := slices.Sorted(slices.Values(level[first : last+1]))
			steady := sorted[len(sorted)/2]
			var holes, dips []string
			lowest := steady
			for k := first + 1; k < last; k++ {
				lowest = min(lowest, level[k])
				at := fmt.Sprintf("%.2f s (%.0f dBFS)", float64(k)/50, level[k])
				switch {
				case level[k] <= steady-20:
					holes = append(holes, at)
				case level[k] <= steady-6:
					dips = append(dips, at)
				}
			}
			_, _, _, trackHoles := trackVsMix(t, objects, man, freq)
			t.Logf("the mix has the tone from %.2f to %.2f s of %v recorded, steady at %.1f dBFS, lowest %.1f dBFS; %d windows 6-20 dB below it %v; the track file lacks the tone in %d windows (its lost packets)",
				float64(first)/50, float64(last+1)/50, man.Stopped.Sub(man.Started), steady, lowest, len(dips), dips, trackHoles)
			if trackHoles == 0 {
				t.Errorf("the track file has no hole where packets were lost: the loss was not heard, nothing shown concealed")
			}
			if len(holes) > 0 {
				t.Errorf("the mix has %d holes (a window 20 dB or more below the tone's steady %.1f dBFS) between its first and its last window with the tone, at %v", len(holes), steady, holes)
			}
		})
	}
}

// logCounts returns the integer values of keys in a log line of key=value
// fields (absent: 0).
func logCounts(line string, keys ...string) map[string]int {
	out := map[string]int{}
	for _, f := range strings.Fields(line) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		for _, want := range keys {
			if k == want {
				n, _ := strconv.Atoi(v)
				out[k] = n
			}
		}
	}
	return out
}
