package whip

import (
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/transport/v4/packetio"

	"github.com/rtcrec/recorder/recorder/conference"
)

// pushedTrack is a stream buffer whose hand-over records the sequence
// numbers (the first two bytes of each packet) it is handed.
type pushedTrack struct {
	buf  *conference.PushBuffer
	mu   sync.Mutex
	seqs []uint16
	gate chan struct{} // when not nil, each hand-over waits for it to close
}

func newPushedTrack(bufs *conference.PushBuffers, ssrc uint32) *pushedTrack {
	t := &pushedTrack{buf: bufs.New(packetio.RTPBufferPacket, ssrc).(*conference.PushBuffer)}
	read := make([]byte, 1500)
	t.buf.Push(func() bool {
		n, err := t.buf.Read(read)
		if err != nil {
			return true
		}
		if t.gate != nil {
			<-t.gate
		}
		t.mu.Lock()
		t.seqs = append(t.seqs, binary.BigEndian.Uint16(read[:n]))
		t.mu.Unlock()
		return true
	}, func() {})
	return t
}

func (t *pushedTrack) handed() []uint16 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]uint16(nil), t.seqs...)
}

// waitFor waits until cond holds, polling (the workers report nothing
// else), or fails after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not in 20 s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// startWorkers runs workers until the test ends.
func startWorkers(t *testing.T, workers []*handWorker) chan struct{} {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(done)
		}()
	}
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			close(done)
		}
		wg.Wait()
	})
	return done
}

// TestHandWorkers_KeepEachTracksOrder: two sockets' readers push the
// packets of 8 tracks (each track on one socket, its worker chosen in
// turn) to 2 workers at once, faster than they are handed over at times
// (queues fill): every packet of every track is handed over once, in the
// order pushed.
func TestHandWorkers_KeepEachTracksOrder(t *testing.T) {
	const tracks, sockets, perTrack = 8, 2, 3000
	workers, queues := newHandWorkers(2, sockets, 512)
	done := startWorkers(t, workers)
	bufs := &conference.PushBuffers{}
	ts := make([]*pushedTrack, tracks)
	for i := range ts {
		ts[i] = newPushedTrack(bufs, uint32(i))
	}
	var wg sync.WaitGroup
	for s := range sockets {
		wg.Add(1)
		go func() { // socket s's reader: tracks s, s+sockets, ...
			defer wg.Done()
			p := make([]byte, 100)
			for seq := range perTrack {
				for i := s; i < tracks; i += sockets {
					binary.BigEndian.PutUint16(p, uint16(seq))
					q := queues[s][i/sockets%len(workers)]
					if !q.push(ts[i].buf, p, done) {
						t.Error("push refused before the close")
						return
					}
					if seq%16 == 0 { // a batch read: the reader wakes the workers
						q.worker.wakeUp()
					}
				}
			}
			for _, q := range queues[s] {
				q.worker.wakeUp()
			}
		}()
	}
	wg.Wait()
	for i, tr := range ts {
		waitFor(t, "every packet handed over", func() bool { return len(tr.handed()) >= perTrack })
		got := tr.handed()
		if len(got) != perTrack {
			t.Fatalf("track %d: %d packets handed over, want %d", i, len(got), perTrack)
		}
		for j, s := range got {
			if s != uint16(j) {
				t.Fatalf("track %d: packet %d is %d: lost or reordered", i, j, s)
			}
		}
	}
}

// TestHandQueue_FullWaitsAndLosesNothing: a worker stuck in a hand-over
// (its track's writer blocked) lets its queue fill; the reader then waits
// for room instead of dropping, and goes on once the worker does: every
// packet handed over, in order. Closing the mux releases a waiting reader.
func TestHandQueue_FullWaitsAndLosesNothing(t *testing.T) {
	const handSlots = 512
	workers, queues := newHandWorkers(1, 1, handSlots)
	done := startWorkers(t, workers)
	q := queues[0][0]
	tr := newPushedTrack(&conference.PushBuffers{}, 1)
	tr.gate = make(chan struct{})
	const n = handSlots + 100
	pushed := make(chan int, 1)
	go func() {
		p := make([]byte, 100)
		i := 0
		for ; i < n; i++ {
			binary.BigEndian.PutUint16(p, uint16(i))
			if !q.push(tr.buf, p, done) {
				break
			}
			q.worker.wakeUp()
		}
		pushed <- i
	}()
	// The worker holds packet 0 in its hand-over; handSlots more fill
	// the queue: the reader waits.
	waitFor(t, "the queue full and the reader waiting", func() bool {
		return q.full.Load() && q.tail.Load()-q.head.Load() == handSlots
	})
	select {
	case i := <-pushed:
		t.Fatalf("the reader pushed %d packets into a full queue of %d", i, handSlots)
	default:
	}
	close(tr.gate)
	if i := <-pushed; i != n {
		t.Fatalf("pushed %d, want %d", i, n)
	}
	waitFor(t, "every packet handed over", func() bool { return len(tr.handed()) == n })
	for j, s := range tr.handed() {
		if s != uint16(j) {
			t.Fatalf("packet %d is %d: lost or reordered", j, s)
		}
	}

	// A reader waiting on a full queue when the mux closes gives up.
	_, queues = newHandWorkers(1, 1, handSlots)
	closing := make(chan struct{})
	q = queues[0][0] // its worker never runs
	for i := range handSlots {
		if !q.push(tr.buf, []byte{0, byte(i)}, closing) {
			t.Fatal("push refused with room")
		}
	}
	go func() { pushed <- boolInt(q.push(tr.buf, []byte{1, 0}, closing)) }()
	waitFor(t, "the reader waiting", q.full.Load)
	close(closing)
	if <-pushed != 0 {
		t.Error("a push into a full queue succeeded after the close")
	}
}

// encryptedPayload returns an SRTP packet of ssrc from sender with
// sequence number seq and a payload of n bytes.
func encryptedPayload(t testing.TB, sender *srtp.Context, ssrc uint32, seq uint16, n int) []byte {
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: uint32(seq) * 960, SSRC: ssrc},
		Payload: make([]byte, n)}
	raw, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sender.EncryptRTP(nil, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// BenchmarkHandQueue: the reader's and the worker's cost per packet
// through a queue, on two goroutines at once (ns/op: the slower of the
// two, with their switches).
func BenchmarkHandQueue(b *testing.B) {
	workers, queues := newHandWorkers(1, 1, handQueueSlots(0, 1))
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		workers[0].run(done)
		close(finished)
	}()
	buf := conference.NewPushBuffer()
	read := make([]byte, 1500)
	buf.Push(func() bool { _, _ = buf.Read(read); return true }, func() {})
	p := make([]byte, 120)
	q := queues[0][0]
	b.ReportAllocs()
	for b.Loop() {
		q.push(buf, p, done)
		q.worker.wakeUp()
	}
	for q.head.Load() != q.tail.Load() {
		time.Sleep(time.Millisecond)
	}
	close(done)
	<-finished
}
