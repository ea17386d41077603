package recorder

import (
	"context"
	"testing"
	"time"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/internal/synth"
)

// TestManager_MixNonePlacesTheFileWhereItsClockCutsIt: a recording without
// a mix places a track's file (its time zero, the manifest's mediaOffset)
// and cuts it at the stop by the same clock: where the track's packets were
// sent, by their receive times. The track's first 200 ms were sent before
// it joined (they waited in its socket), and from 0.75 s after it joined
// the network delivers it in bursts every 500 ms, each what was sent at
// least 550 ms before (0.55–1.05 s late: a relay starved of CPU,
// TestServe_StopKeepsTheAudioInFlight/starved/mix_none under load); the
// stop falls 250 ms after a burst. The file's time zero is where its first
// packet was sent, and its tone ends at the stop. Before, the time zero was
// not put before the track joined (the file placed 200 ms late: its tone
// ended 200 ms after the stop; under load the real binary's ended 34–88 ms
// after it), and the clock relation restarted at a packet more than a
// second late, so the stop's cut left out the last 0.55 s sent before it.
func TestManager_MixNonePlacesTheFileWhereItsClockCutsIt(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	m, fa, bucket, rec, tr, st := startStarvedMix(t, &config.MixSettings{None: true})
	ctx := context.Background()
	const (
		starved = 950 * time.Millisecond // since the first packet was sent
		every   = 500 * time.Millisecond
		lag     = 550 * time.Millisecond
	)
	st.network = func(sent time.Duration) time.Duration {
		if sent < starved {
			return 0
		}
		burst := starved + (sent+lag-starved+every-1)/every*every // the first burst at least lag after it was sent
		return burst - sent
	}
	const freq = 440
	st.sending(t, &synth.Tone{Freq: freq, Amplitude: 8000})
	time.Sleep(200 * time.Millisecond) // sent before the track joins: in its socket
	fa.sink("f").AddTrack(tr)
	first, ok := st.Arrival(1234, 0)
	if !ok {
		t.Fatal("the first packet was not sent before the track joined")
	}
	time.Sleep(time.Until(first.Add(starved + 4*every + every/2))) // 250 ms after a burst
	got, err := m.Stop(ctx, "org", "c", "rec1", rec.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	trk := uploadedTrack(t, got)
	pcm := readPCM(t, bucket, trk.Object.Key)
	end := time.Duration(0) // the end of the file's last 20 ms window with the tone
	for w := media8k(len(pcm)) / (20 * time.Millisecond); w > 0; w-- {
		if toneAmp(pcm, freq, (w-1)*20*time.Millisecond, w*20*time.Millisecond) > 1000 {
			end = w * 20 * time.Millisecond
			break
		}
	}
	zero, sent := trk.FirstPacket.Sub(got.Started), first.Sub(got.Started)
	recorded := got.Stopped.Sub(got.Started)
	t.Logf("the first packet sent at %v, the file's time zero at %v; the tone ends at %v in the file (%v placed), the recording at %v",
		sent, zero, end, zero+end, recorded)
	if d := zero - sent; d < -5*time.Millisecond || d > 5*time.Millisecond {
		t.Errorf("the file's time zero is %v after its first packet was sent", d)
	}
	if d := zero + end - recorded; d < -40*time.Millisecond || d > 40*time.Millisecond {
		t.Errorf("the file's tone ends %v from the stop (negative: before it), want within 40ms", d)
	}
}
