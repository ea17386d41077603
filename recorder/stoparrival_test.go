package recorder

import (
	"context"
	"testing"
	"time"

	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/media/wavwriter"
	"github.com/rtcrec/recorder/recorder/conference"
)

// TestManager_FileKeepsWhatArrivedBeforeTheStop: a track's sender report is
// stamped 90 ms late (Pion stamps a report by when its sender last wrote a
// packet: on a busy machine, one of a burst after the publisher's writes
// stalled), within what the mix takes for a first anchor (100 ms after the
// packet's arrival: the clocks may differ a little), so the mix places the
// track 90 ms later than its packets reach the machine. Its reader, starved
// of CPU, reads nothing from half a second before the stop until 300 ms after
// it: the packets that reached the machine in the stop's last 90 ms are read
// after the stop and placed after it. They were sent before the stop (they
// reached the machine before it): the file keeps every packet that reached
// the machine before the stop, however late a mapping places it. Before, the
// stop cut the file by the mix's mapping alone, and it lacked them (seen
// under a CPU hog in TestEndToEnd_Pause: a track's packet that reached the
// machine before the stop, placed after it; 'keptByArrival=1' since).
func TestManager_FileKeepsWhatArrivedBeforeTheStop(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	m, fa, bucket, rec, tr, st := startStarved(t)
	ctx := context.Background()
	start := time.Now()
	late := start.Add(90 * time.Millisecond) // the report: RTP 0 (the first packet, sent at start) at start+90 ms
	tr.SenderReport = func() (conference.SenderReport, bool) {
		return conference.SenderReport{SSRC: 1234, NTP: late, RTPTime: 0, Arrived: late}, true
	}
	quit := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		st.send(&synth.Tone{Freq: 440, Amplitude: 8000}, quit)
	}()
	defer func() { close(quit); <-sent }()
	fa.sink("f").AddTrack(tr)

	time.Sleep(2 * time.Second) // recording, the reader in step
	st.hold()
	time.Sleep(500 * time.Millisecond) // the reader starved: half a second of packets waits for it
	stopped := stopInBackground(ctx, t, m, rec.InstanceID)
	time.Sleep(300 * time.Millisecond) // still starved after the stop
	st.release()
	got := <-stopped
	if got == nil {
		t.FailNow()
	}
	if len(got.Streams) != 1 || len(got.Streams[0].Tracks) != 1 || got.Streams[0].Tracks[0].Object == nil {
		t.Fatalf("streams %+v: want one uploaded track", got.Streams)
	}
	wav, err := bucket.ReadAll(ctx, got.Streams[0].Tracks[0].Object.Key)
	if err != nil {
		t.Fatal(err)
	}
	h, err := wavwriter.ParseHeader(wav)
	if err != nil {
		t.Fatal(err)
	}
	written := (len(wav) - int(h.DataOffset)) / (160 * int(h.BitsPerSample) / 8)
	before := st.receivedBefore(got.Stopped)
	t.Logf("%d packets in the track's file, %d reached the machine before the stop", written, before)
	if written+1 < before { // the packet the stop falls in may go either way
		t.Errorf("the track's file holds %d packets, %d reached the machine before the stop", written, before)
	}
}
