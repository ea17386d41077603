package main

import (
	"context"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtcrec/recorder/api"
	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/media/mediatest"
)

// TestServe_StopKeepsTheAudioInFlight stops a recording while the last
// audio its publisher sent has not reached the recorder yet, and the track
// file and the mix must hold the tone up to the stop, not up to what had
// arrived by then:
//   - stall: the last 100 ms are still in the network (the relay holds every
//     packet from 100 ms before the stop until 150 ms after it);
//   - behind: the recorder reads the track at half its real rate for the
//     last second (what a recorder starved of CPU does: the packets wait in
//     its socket), so at the stop the last 330 ms are still queued and come
//     over the next 0.5 s, one by one;
//   - starved: the recorder reads the track in bursts every 500 ms, each
//     burst what was sent at least 400 ms before it (a reader that gets the
//     CPU now and then, 0.4–0.9 s behind), and the stop falls 250 ms after
//     a burst: nothing is read for longer than a publisher that stopped
//     sending would take (300 ms), yet the last 0.65 s before the stop are
//     still to come (issue 10, case 5: the drain gave up after 300 ms).
//
// Each also without a mix ("mix": "none"): the track file alone must hold it.
func TestServe_StopKeepsTheAudioInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	const freq = 660.0
	opus, err := mediatest.OpusTone(testenv.LookPath(t, "ffmpeg"), t.TempDir(), freq, 8)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		// impair is the relay's delay of a packet at now, given when the
		// impairment began (unix ns; 0: not yet).
		impair func(now, from int64) time.Duration
		lead   time.Duration // how long before the stop it begins
	}{
		{"stall", func(now, from int64) time.Duration {
			return max(time.Duration(from+int64(250*time.Millisecond)-now), 0)
		}, 100 * time.Millisecond},
		{"behind", func(now, from int64) time.Duration { return time.Duration(now-from) / 2 }, time.Second},
		{"starved", func(now, from int64) time.Duration {
			const lag, every = int64(400 * time.Millisecond), int64(500 * time.Millisecond)
			burst := from + (now+lag-from+every-1)/every*every // the first burst at least lag after it was sent
			return time.Duration(burst - now)
		}, 2250 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) { stopKeepsTheAudioInFlight(t, opus, freq, tc.impair, tc.lead, false) })
		t.Run(tc.name+"/mix_none", func(t *testing.T) { stopKeepsTheAudioInFlight(t, opus, freq, tc.impair, tc.lead, true) })
	}
}

func stopKeepsTheAudioInFlight(t *testing.T, opus [][]byte, freq float64, impair func(now, from int64) time.Duration, lead time.Duration, mixNone bool) {
	dir := t.TempDir()
	s := serveProcess(t, dir)
	key := readKey(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var from atomic.Int64 // unix ns
	stop := publishOnSchedule(t, ctx, s, key, "inflight", "o", opus, time.Time{}, 20*time.Millisecond, func(int, time.Duration) (time.Duration, bool, bool) {
		if f := from.Load(); f != 0 {
			return impair(time.Now().UnixNano(), f), false, false
		}
		return 0, false, false
	})
	defer stop()
	var ev api.RecordingDataEvent
	req := api.StartRecording{ApplicationID: "a", ConferenceID: "inflight", ConversationID: "inflight"}
	if mixNone {
		req.Mix = &config.MixSettings{None: true}
	}
	if st := call(t, "POST", s.url+"/api/recordings/start", key, req, &ev); st != 200 {
		t.Fatalf("start: %d", st)
	}
	time.Sleep(3*time.Second - lead)
	from.Store(time.Now().UnixNano())
	time.Sleep(lead)
	var r api.RecordingDataEvent
	if st := call(t, "POST", s.url+"/api/recordings/inflight/"+ev.RecorderID+"/"+ev.InstanceID+"/stop", key, nil, &r); st != 200 {
		t.Fatalf("stop: %d", st)
	}
	objects, man := recordingFiles(t, dir, ev.InstanceID)
	var ogg composition.Track
	for _, tr := range man.Tracks {
		if strings.HasSuffix(tr.File, ".ogg") {
			ogg = tr
		}
	}
	recorded := man.Stopped.Sub(man.Started)
	last := func(on []bool) time.Duration { // end of the last 20 ms window with the tone
		for k := len(on) - 1; k >= 0; k-- {
			if on[k] {
				return time.Duration(k+1) * 20 * time.Millisecond
			}
		}
		return 0
	}
	trackEnd := time.Duration(fileZero(t, ogg)*float64(time.Second)) + last(toneBlocks(mediatest.Decode(t, objects[ogg.File], 8000), freq, 160))
	ends := map[string]time.Duration{"track file": trackEnd}
	if mixNone {
		if _, ok := objects[composition.MixFile]; ok {
			t.Error(`"mix": "none" wrote a mix`)
		}
		t.Logf("stopped %v after the start; the tone ends at %v in the track file (no mix)", recorded, trackEnd)
	} else {
		mixData, err := os.ReadFile(objects[composition.MixFile])
		if err != nil {
			t.Fatal(err)
		}
		mix := wavSamples(t, mixData)
		ends["mix"] = last(toneBlocks(mix, freq, 160))
		t.Logf("stopped %v after the start; the tone ends at %v in the mix, at %v in the track file", recorded, ends["mix"], trackEnd)
		// The mix lasts as long as the recording, to the sample (it ended
		// with the frame that held the tracks' latest audio, up to 40 ms
		// past the stop: the packet the stop falls in, and its frame).
		if d := time.Duration(len(mix))*time.Second/8000 - recorded; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("the mix lasts %v, the recording %v", recorded+d, recorded)
		}
	}
	defer func() { // the recorder's log of the stop
		if t.Failed() || os.Getenv("MIXDEBUG") != "" {
			for _, l := range s.stderr.Lines("stop") {
				t.Log(l)
			}
		}
	}()
	// The tone was sent until the stop; it ends within two windows of it
	// (a 20 ms packet and the window it straddles). Without the stop's
	// drain both lack the last 100 ms. Nor does it go on past the stop:
	// the publisher keeps sending, and what it sends after the stop is not
	// the recording's.
	for what, end := range ends {
		if end < recorded-40*time.Millisecond {
			t.Errorf("the tone ends %v before the stop in the %s: the audio in flight at the stop is lost", recorded-end, what)
		}
		if end > recorded+40*time.Millisecond {
			t.Errorf("the tone ends %v after the stop in the %s: audio sent after the stop was recorded", end-recorded, what)
		}
	}
}
