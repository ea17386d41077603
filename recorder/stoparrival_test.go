package recorder

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/media/mediatest"
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

	waitRead(t, m, 100) // recording, the reader in step: two seconds of it read
	st.hold()
	time.Sleep(500 * time.Millisecond) // the scenario: the reader starved, half a second of packets waits for it (how many, is measured)
	stopped := stopInBackground(ctx, t, m, rec.InstanceID)
	time.Sleep(300 * time.Millisecond) // the scenario: still starved after the stop
	st.release()
	got := <-stopped
	if got == nil {
		t.FailNow()
	}
	wav, err := bucket.ReadAll(ctx, uploadedTrack(t, got).Object.Key)
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

// TestManager_MixKeepsWhatCameAfterAPacketFromAfterTheStop: a reader
// starved of CPU from 400 ms before the stop reads the queued packets in a
// burst whose order the network mixed up around the stop: 8 packets sent
// before the stop come after the next one and after a packet sent after
// the stop. The drain waits for them (they reached the machine before the
// stop), and the mix, like the track file, holds the tone up to the stop.
// Before, the first packet from after the stop made the mix's pipeline give
// up every packet it still missed (Pause): the 8 came later and were
// dropped as late, 160 ms the file holds were silent in the mix
// (TestServe_StopKeepsTheAudioInFlight/starved under load, session 14: the
// mix 95–142 ms short, 'lost=6 concealed=6 late=6', the file whole).
func TestManager_MixKeepsWhatCameAfterAPacketFromAfterTheStop(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	m, fa, bucket, rec, tr, st := startStarved(t)
	ctx := context.Background()
	fa.sink("f").AddTrack(tr)
	quit := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		st.send(&synth.Tone{Freq: 440, Amplitude: 8000}, quit)
	}()

	waitRead(t, m, 100) // recording, the reader in step: two seconds of it read
	st.hold()
	time.Sleep(400 * time.Millisecond) // the scenario: the reader starved (the stop checks what was queued)
	called := time.Now()               // every packet that reached the machine before this is from before the stop
	stopped := stopInBackground(ctx, t, m, rec.InstanceID)
	for !m.Finishing(rec.InstanceID) { // the stop's instant is taken
		time.Sleep(time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // the packets sent after it queue too
	close(quit)
	<-sent
	missed := st.reorderQueued(t, called)
	st.release()
	got := <-stopped
	if got == nil {
		t.FailNow()
	}
	mix := mixPCM(t, bucket, got)
	recorded := got.Stopped.Sub(got.Started)
	t.Logf("stopped %v after the start; the packets %v (sent before it) came after one sent after it", recorded.Round(time.Millisecond), missed)
	// Every 20 ms of the mix from 1 s up to the 20 ms before the stop (the
	// packet the stop falls in may go either way) holds the tone.
	var silent []string
	for at := time.Second; at+40*time.Millisecond <= recorded; at += 20 * time.Millisecond {
		from := int(int64(at) * 8000 / int64(time.Second))
		if from+160 > len(mix) {
			t.Fatalf("the mix lasts %v, the recording %v", time.Duration(len(mix))*time.Second/8000, recorded)
		}
		if mediatest.Goertzel(mix[from:from+160], 8000, 440) < 2000 {
			silent = append(silent, fmt.Sprintf("%.2f", at.Seconds()))
		}
	}
	if len(silent) > 0 {
		t.Errorf("the mix lacks the tone at %v s (the stop at %.3f s): audio sent before the stop, read after a packet from after it", silent, recorded.Seconds())
	}
}

// reorderQueued mixes up the packets queued for the held reader as a burst
// around the stop may come: of those that reached the machine before
// before, the last is followed by the newest queued packet (sent after the
// stop) and then by the 8 packets before that last one; the rest come in
// order. It returns the sequence numbers of the 8.
func (s *starvedTrack) reorderQueued(t *testing.T, before time.Time) []uint16 {
	t.Helper()
	var q [][]byte
	for len(s.ch) > 0 {
		q = append(q, <-s.ch)
	}
	seq := func(b []byte) uint16 { return uint16(b[2])<<8 | uint16(b[3]) }
	s.mu.Lock()
	k := 0 // q[:k] reached the machine before before
	for k < len(q) && s.arrived[seq(q[k])].Before(before) {
		k++
	}
	s.mu.Unlock()
	if k < 10 || k == len(q) {
		t.Fatalf("%d packets queued for the held reader, %d of them before the stop: want 10 or more before it and one after", len(q), k)
	}
	run := q[k-9 : k-1]
	order := append(append(append(append(append([][]byte(nil), q[:k-9]...), q[k-1]), q[len(q)-1]), run...), q[k:len(q)-1]...)
	var missed []uint16
	for _, b := range run {
		missed = append(missed, seq(b))
	}
	for _, b := range order {
		s.ch <- b
	}
	return missed
}
