package recorder

import (
	"context"
	"testing"
	"time"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/media/mediatest"
)

// TestManager_MixWaitsForAReaderBehindItsSocket: a track's packets reach the
// machine in real time, each with its receive time known (as the UDP mux
// keeps them), while its reader, starved of CPU, reads nothing for 1.1 s, in
// a recording whose latency budget is 1 s. Every packet came within the
// budget; the reader reads the first ones 0.1 s after the budget for them
// passed. The mixer waits for a reader whose next packet came in time
// (media.InputOptions.Unread), so the mix holds the tone throughout, as the
// track's file does. Before, it wrote their frames without them once the
// budget passed, and dropped them as late when the reader read them: a
// 0.1 s hole (issue 10's busy-core case: readers 5-6 s behind their sockets
// beside two CPU hogs; TestServe_TooLateForTheMixIsShedNotShifted's 10
// packets too many).
func TestManager_MixWaitsForAReaderBehindItsSocket(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	m, fa, bucket, rec, tr, st := startStarvedMix(t, &config.MixSettings{Latency: time.Second})
	ctx := context.Background()
	fa.sink("f").AddTrack(tr)
	st.sending(t, &synth.Tone{Freq: 440, Amplitude: 8000})

	waitRead(t, m, 50) // recording, the reader in step: a second of it read
	held := time.Now()
	st.hold()
	time.Sleep(1100 * time.Millisecond) // the scenario: the reader starved (how long, is measured)
	st.release()
	released := time.Now()
	// The recording goes on until the sender sent its packet of 3.1 s
	// (the tone must span 2.5 s of the mix), however late it sends.
	st.waitArrived(t, 155)
	got, err := m.Stop(ctx, "org", "c", "rec1", rec.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	pcm := mixPCM(t, bucket, got)
	// The 20 ms windows from the first with the tone to the last: every one
	// holds it.
	var on []bool
	for i := 0; i+160 <= len(pcm); i += 160 {
		on = append(on, mediatest.ToneLevel(pcm[i:i+160], 8000, 440) > -30)
	}
	first, last := -1, -1
	for i, v := range on {
		if v {
			last = i
			if first < 0 {
				first = i
			}
		}
	}
	var lacks []float64
	for i := first + 1; i < last; i++ {
		if !on[i] {
			lacks = append(lacks, float64(i)/50)
		}
	}
	t.Logf("the reader held for %v; mix %.2f s, the tone from %.2f s to %.2f s", released.Sub(held).Round(time.Millisecond), float64(len(pcm))/8000, float64(first)/50, float64(last+1)/50)
	if first < 0 || float64(last-first)/50 < 2.5 {
		t.Fatalf("the tone spans %d windows of the mix, want about 3 s", last-first)
	}
	if len(lacks) > 0 {
		t.Errorf("the mix lacks the tone in %d windows, at %v s (the reader read them late; they reached the machine within the budget)", len(lacks), lacks)
	}
}
