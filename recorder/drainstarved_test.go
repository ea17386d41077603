package recorder

import (
	"context"
	"io"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/media/wavwriter"
	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/memstore"
)

// TestManager_DrainWaitsForWhatReachedTheMachineBeforeTheStop: a track's
// packets reach the machine in real time, each with its receive time known
// (conference.ArrivalReader, as the UDP mux keeps them), while its reader,
// starved of CPU, reads nothing from 1 s before the stop until 1.2 s after
// it (case 5: readers that do not run for seconds at a time). The second of
// audio that waits for it reached the machine before the stop and belongs in
// the track's file: the drain waits for it however long the reader does not
// run. Before, the drain gave up 300 ms after the reader last wrote (plus how
// late that packet was read: not at all) and the file lacked its last second
// (seen: 102 packets in the file of 150 received before the stop).
func TestManager_DrainWaitsForWhatReachedTheMachineBeforeTheStop(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	m, fa, bucket, rec, tr, st := startStarved(t)
	ctx := context.Background()
	fa.sink("f").AddTrack(tr)
	st.sending(t, &synth.Tone{Freq: 440, Amplitude: 8000})

	waitRead(t, m, 100) // recording, the reader in step: two seconds of it read
	st.hold()
	time.Sleep(time.Second) // the scenario: the reader starved, a second of packets waits for it (how many, is measured)
	stopped := stopInBackground(ctx, t, m, rec.InstanceID)
	time.Sleep(1200 * time.Millisecond) // the scenario: still starved after the stop
	st.release()
	got := <-stopped
	if got == nil {
		t.FailNow()
	}
	if len(got.Streams) != 1 || len(got.Streams[0].Tracks) != 1 {
		t.Fatalf("streams %+v", got.Streams)
	}
	trk := got.Streams[0].Tracks[0]
	if trk.Object == nil {
		t.Fatalf("track %+v: not uploaded", trk)
	}
	wav, err := bucket.ReadAll(ctx, trk.Object.Key)
	if err != nil {
		t.Fatal(err)
	}
	h, err := wavwriter.ParseHeader(wav)
	if err != nil {
		t.Fatal(err)
	}
	written := (len(wav) - int(h.DataOffset)) / (160 * int(h.BitsPerSample) / 8)
	before := st.receivedBefore(got.Stopped)
	t.Logf("%d packets in the track's file, %d received before the stop (%v after the start), %d read", written, before, got.Stopped.Sub(got.Started).Round(time.Millisecond), trk.Packets)
	if written+1 < before { // the packet the stop falls in may go either way
		t.Errorf("the track's file holds %d packets, %d reached the machine before the stop", written, before)
	}
}

// TestManager_DrainWaitsForWhatReachedTheMachineWithinItsWait: the network
// holds a track's packets from 100 ms before the stop until 150 ms after it
// (a stall: they come in a burst), and its reader, starved of CPU, reads
// nothing from the stall's start until 500 ms after the stop. The burst
// reached the machine within the 300 ms the stop waits for audio still on
// its way (drainMax), and waits in the socket: the drain waits for the
// reader to read it, and the track's file (and the mix) hold the audio up
// to the stop. Before, the drain counted its 300 ms by what the reader
// wrote, not by what reached the machine, and gave up ("quiet") with the
// burst unread: the file lacked the last 100 ms sent before the stop
// (cmd/recorder TestServe_StopKeepsTheAudioInFlight/stall/mix_none in CI,
// session 16: the drain ended on quiet with the recorder starved).
func TestManager_DrainWaitsForWhatReachedTheMachineWithinItsWait(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	for _, tc := range []struct {
		name string
		mix  *config.MixSettings
	}{{"mix", nil}, {"mix_none", &config.MixSettings{None: true}}} {
		t.Run(tc.name, func(t *testing.T) {
			m, fa, bucket, rec, tr, st := startStarvedMix(t, tc.mix)
			ctx := context.Background()
			const (
				stall   = 2 * time.Second // since the first packet was sent
				release = stall + 250*time.Millisecond
			)
			st.network = func(sent time.Duration) time.Duration {
				if sent >= stall && sent < release {
					return release - sent
				}
				return 0
			}
			const freq = 440
			st.sending(t, &synth.Tone{Freq: freq, Amplitude: 8000})
			fa.sink("f").AddTrack(tr)
			first, ok := st.Arrival(1234, 0)
			for ; !ok; first, ok = st.Arrival(1234, 0) {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(time.Until(first.Add(stall)))
			st.hold()
			time.Sleep(time.Until(first.Add(stall + 100*time.Millisecond)))
			stopped := stopInBackground(ctx, t, m, rec.InstanceID)
			time.Sleep(time.Until(first.Add(stall + 600*time.Millisecond))) // the reader starved until 500 ms after the stop
			st.release()
			got := <-stopped
			if got == nil {
				t.FailNow()
			}
			written := len(readPCM(t, bucket, uploadedTrack(t, got).Object.Key)) / 160
			sentBefore := int((got.Stopped.Sub(first) + 20*time.Millisecond - 1) / (20 * time.Millisecond))
			burst, _ := st.Arrival(1234, uint16(stall/(20*time.Millisecond)))
			t.Logf("stopped %v after the first packet; the stall's packets reached the machine %v after the stop; %d packets in the track's file, %d sent before the stop",
				got.Stopped.Sub(first).Round(time.Millisecond), burst.Sub(got.Stopped).Round(time.Millisecond), written, sentBefore)
			if written+1 < sentBefore { // the packet the stop falls in may go either way
				t.Errorf("the track's file holds %d packets, %d were sent before the stop", written, sentBefore)
			}
			if tc.mix != nil {
				return
			}
			mix := mixPCM(t, bucket, got)
			recorded := got.Stopped.Sub(got.Started)
			if toneAmp(mix, freq, recorded-60*time.Millisecond, recorded-40*time.Millisecond) < 1000 {
				t.Errorf("the mix lacks the tone 40-60 ms before the stop (at %v)", recorded)
			}
		})
	}
}

// uploadedTrack returns the one track of a stopped recording, uploaded.
func uploadedTrack(t *testing.T, got *Recording) *Track {
	t.Helper()
	if len(got.Streams) != 1 || len(got.Streams[0].Tracks) != 1 || got.Streams[0].Tracks[0].Object == nil {
		t.Fatalf("streams %+v: want one uploaded track", got.Streams)
	}
	return got.Streams[0].Tracks[0]
}

// stopInBackground stops the recording instanceID (conversation "c" of
// "org") on its own goroutine; the channel gives the stopped recording, nil
// if the stop failed (reported on t).
func stopInBackground(ctx context.Context, t *testing.T, m *Manager, instanceID string) <-chan *Recording {
	stopped := make(chan *Recording, 1)
	go func() {
		r, err := m.Stop(ctx, "org", "c", "rec1", instanceID)
		if err != nil {
			t.Error(err)
		}
		stopped <- r
	}()
	return stopped
}

// starvedTrack is a PCMU track whose packets reach the machine every 20 ms
// (send), their receive times known by sequence number (Arrival: it is a
// conference.ArrivalReader), while its reader reads them only when not held
// (a reader starved of CPU: they wait, as in a socket).
type starvedTrack struct {
	ch chan []byte
	// network, if set, is how long the packet sent at sent (since the
	// first) takes to reach the machine: a network that holds it.
	network func(sent time.Duration) time.Duration

	mu      sync.Mutex
	arrived map[uint16]time.Time
	gate    chan struct{} // closed while the reader may read
}

func newStarvedTrack() *starvedTrack {
	open := make(chan struct{})
	close(open)
	return &starvedTrack{ch: make(chan []byte, 4096), arrived: map[uint16]time.Time{}, gate: open}
}

// capturedSource is a source of PCMU frames whose sound depends on when a
// frame was captured (phases): the instant its timestamp stands for.
type capturedSource interface {
	CapturedPCMU(b []byte, at time.Time) []byte
}

// send sends a tone (a synth.Tone, or any source of PCMU frames), a packet
// every 20 ms on the wall clock, until quit. A capturedSource is asked for
// the frame captured at the packet's instant (start + 20 ms × its index),
// however late the sender gets to send it.
func (s *starvedTrack) send(tone interface{ NextPCMU([]byte) []byte }, quit chan struct{}) {
	start := time.Now()
	for i := 0; ; i++ {
		at := start.Add(time.Duration(i) * 20 * time.Millisecond)
		select {
		case <-quit:
			return
		case <-time.After(time.Until(s.reaches(start, time.Duration(i)*20*time.Millisecond))):
		}
		var payload []byte
		if c, ok := tone.(capturedSource); ok {
			payload = c.CapturedPCMU(nil, at)
		} else {
			payload = tone.NextPCMU(nil)
		}
		p := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: 160 * uint32(i), SSRC: 1234},
			Payload: payload}
		b, _ := p.Marshal()
		s.mu.Lock()
		s.arrived[uint16(i)] = time.Now()
		s.mu.Unlock()
		s.ch <- b
	}
}

// reaches returns when the packet sent at sent after start reaches the
// machine.
func (s *starvedTrack) reaches(start time.Time, sent time.Duration) time.Time {
	if s.network != nil {
		sent += s.network(sent)
	}
	return start.Add(sent)
}

// sending sends tone (send) until the test ends.
func (s *starvedTrack) sending(t *testing.T, tone interface{ NextPCMU([]byte) []byte }) {
	quit, sent := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sent)
		s.send(tone, quit)
	}()
	t.Cleanup(func() { close(quit); <-sent })
}

// hold stops the reader; release lets it read again.
func (s *starvedTrack) hold() {
	s.mu.Lock()
	s.gate = make(chan struct{})
	s.mu.Unlock()
}

func (s *starvedTrack) release() {
	s.mu.Lock()
	close(s.gate)
	s.mu.Unlock()
}

// receivedBefore returns how many packets reached the machine before t.
func (s *starvedTrack) receivedBefore(t time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, at := range s.arrived {
		if at.Before(t) {
			n++
		}
	}
	return n
}

func (s *starvedTrack) ReadRTP(buf []byte) (int, error) {
	held := func() {
		s.mu.Lock()
		gate := s.gate
		s.mu.Unlock()
		<-gate
	}
	held()
	b, ok := <-s.ch
	if !ok {
		return 0, io.EOF
	}
	held() // a packet that came while the reader waited for it, once held, waits too
	return copy(buf, b), nil
}

// waitArrived waits until packet seq reached the machine (was sent).
func (s *starvedTrack) waitArrived(t *testing.T, seq uint16) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, ok := s.Arrival(1234, seq); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("packet %d not sent in 30 s", seq)
		}
	}
}

// waitRead waits until m's recorded tracks have received n packets in all.
func waitRead(t *testing.T, m *Manager, n uint64) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if got := m.MediaStats().Packets; got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the recorded tracks received %d packets in 30 s, want %d", m.MediaStats().Packets, n)
		}
	}
}

// Arrival implements conference.ArrivalReader.
func (s *starvedTrack) Arrival(_ uint32, seq uint16) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.arrived[seq]
	return at, ok
}

// TestMediaSink_GapStateByReceiveTimes: what the drain may still wait for
// in a track's gap before the stop (it read packet 110, the first from
// after the stop, and its reorder stage misses 100–109), by the receive
// times of the UDP mux (arrived: seq → ms from the stop; absent: none).
func TestMediaSink_GapStateByReceiveTimes(t *testing.T) {
	stop := time.Unix(1000, 0)
	held := map[uint16]int{101: -90, 102: -70, 103: -50, 104: -30, 105: -10, 106: -6, 107: -5, 108: -4, 109: -3}
	with := func(m map[uint16]int, kv ...int) map[uint16]int {
		out := maps.Clone(m)
		for i := 0; i+1 < len(kv); i += 2 {
			out[uint16(kv[i])] = kv[i+1]
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		arrived map[uint16]int // nil: no receive times at all
		want    gapState
	}{
		{"no receive times", nil, gapUnknown},
		{"lost before the machine, the socket read past the stop", with(held, 110, 5), gapInFlight},
		{"not there, the socket not read past the stop yet", with(held, 110, -1), gapUnknown},
		{"not there, the packet read last not known", held, gapUnknown},
		{"reached the machine before the stop, after the packet read last", with(held, 110, -2, 100, -1), gapQueued},
		{"reached the machine after the stop, not read yet", with(held, 110, 5, 100, 8), gapInFlight},
		{"reached the machine before the packet read last: lost on its way", with(held, 110, 5, 100, -100), gapFilled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &mediaSink{}
			if tc.arrived != nil {
				m.receipts = receiveTimes{at: tc.arrived, stop: stop}
			}
			m.lastRead.Store(1<<48 | 1234<<16 | 110)
			m.gap.Store(1<<32 | 100<<16 | 110)
			if got := m.gapState(stop); got != tc.want {
				t.Errorf("gapState %d, want %d", got, tc.want)
			}
		})
	}
	m := &mediaSink{}
	if got := m.gapState(stop); got != gapFilled {
		t.Errorf("no gap: gapState %d, want gapFilled (%d)", got, gapFilled)
	}
	// With the socket's drop counts (conference.DropReader; drops: seq →
	// the count it came with): a run of packets never received may be the
	// kernel's drops, and is not waited for, when the count grew between
	// its received neighbours by at least as many as the run misses.
	held99 := with(held, 99, -110, 110, 5)
	without101 := maps.Clone(held99)
	delete(without101, 101)
	for _, tc := range []struct {
		name    string
		arrived map[uint16]int
		drops   map[uint16]int // absent: 0
		want    gapState
	}{
		{"the count did not grow: in the network", held99, nil, gapInFlight},
		{"the count grew across the one missing", held99, map[uint16]int{101: 1, 102: 1, 110: 9}, gapDropped},
		{"the count grew by one, two missing: one was not the kernel's", without101, map[uint16]int{102: 1, 110: 9}, gapInFlight},
		{"the count grew by two, two missing", without101, map[uint16]int{102: 2, 110: 9}, gapDropped},
		{"the count grew, the socket not read past the stop yet", with(held99, 110, -1), map[uint16]int{101: 3, 110: 3}, gapDropped},
		{"the count grew after the gap, not across it", held99, map[uint16]int{110: 1}, gapInFlight},
		{"the neighbour before the gap not known", with(held, 110, 5), map[uint16]int{101: 1}, gapInFlight},
		{"dropped, and one received after the stop not read yet", with(held99, 105, 8), map[uint16]int{101: 1, 105: 1, 106: 1, 110: 1}, gapInFlight},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &mediaSink{receipts: socketReceipts{receiveTimes{at: tc.arrived, stop: stop}, tc.drops}}
			m.lastRead.Store(1<<48 | 1234<<16 | 110)
			m.gap.Store(1<<32 | 100<<16 | 110)
			if got := m.gapState(stop); got != tc.want {
				t.Errorf("gapState %d, want %d", got, tc.want)
			}
		})
	}
}

// socketReceipts is receiveTimes with the socket's drop count each packet
// came with (a conference.DropReader): drops by sequence number, 0 if absent.
type socketReceipts struct {
	receiveTimes
	drops map[uint16]int
}

func (r socketReceipts) DroppedBetween(ssrc uint32, a, b uint16) (int, bool) {
	_, okA := r.Arrival(ssrc, a)
	_, okB := r.Arrival(ssrc, b)
	return r.drops[b] - r.drops[a], okA && okB
}

// receiveTimes is a conference.ArrivalReader of SSRC 1234's packets: at
// holds their receive times in ms from stop.
type receiveTimes struct {
	at   map[uint16]int
	stop time.Time
}

func (receiveTimes) ReadRTP([]byte) (int, error) { return 0, io.EOF }

func (r receiveTimes) Arrival(ssrc uint32, seq uint16) (time.Time, bool) {
	ms, ok := r.at[seq]
	if ssrc != 1234 || !ok {
		return time.Time{}, false
	}
	return r.stop.Add(time.Duration(ms) * time.Millisecond), true
}

// startStarved starts an audio recording of conference f on a test manager
// whose uploads go to a memstore bucket, and gives a track whose reader is
// a starvedTrack, not yet added to the conference.
func startStarved(t *testing.T) (*Manager, *fakeAdapter, *storage.Bucket, *Recording, *conference.Track, *starvedTrack) {
	t.Helper()
	return startStarvedMix(t, nil)
}

// startStarvedMix is startStarved with the recording's mix settings (nil:
// the defaults).
func startStarvedMix(t *testing.T, mix *config.MixSettings) (*Manager, *fakeAdapter, *storage.Bucket, *Recording, *conference.Track, *starvedTrack) {
	t.Helper()
	bucket := storage.NewBucket(memstore.New(memstore.Options{Name: "test"}))
	m, fa, _ := newTestManager(t, func(o *Options) {
		o.OpenBucket = func(context.Context, string, *config.StorageProfile) (*storage.Bucket, error) { return bucket, nil }
	})
	rec, err := m.Start(context.Background(), "org", StartRequest{ApplicationID: "app", ConferenceID: "f", ConversationID: "c", Audio: true, Mix: mix})
	if err != nil {
		t.Fatal(err)
	}
	tr, _ := newTrack("f", "u1")
	st := newStarvedTrack()
	tr.Reader = st
	return m, fa, bucket, rec, tr, st
}
