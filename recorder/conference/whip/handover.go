package whip

import (
	"runtime"
	"sync/atomic"

	"github.com/rtcrec/recorder/recorder/conference"
)

// Direct audio's hand-over workers. The recorder's work on a packet it is
// handed (conference.PushBuffer: reorder, track file, the mix's Opus
// decode) costs ten to forty times the socket reader's own (recvmmsg,
// routing, decrypting). Done on the reader, it would put every direct
// stream of a socket on one goroutine: one core. So each socket's reader
// only decrypts a packet into a slot of a queue and goes on reading; a
// worker goroutine per core (GOMAXPROCS of them) hands the queued packets
// to their tracks. A connection's packets always go to the same worker
// (chosen in turn as connections come), through one queue per socket and
// worker, so each track's packets are handed over in the order they came.
//
// On one core (GOMAXPROCS 1) there is nothing to spread: the reader hands
// packets over itself, as a worker would, without the goroutine switches.
//
// A full queue (its worker has not run for handSlots packets: a track's
// writer blocked on its disk, a process starved of CPU) makes its reader
// wait for room, as it would wait if it handed the packets over itself:
// nothing is dropped here; the socket's receive buffer holds the backlog.

// handSlots is how many packets a queue holds: 51 ms of 400 Opus streams
// (50 packets a second each) for one worker of two.
const handSlots = 512

// directWorkers is how many hand-over workers a mux with direct audio
// runs: one per core Go runs goroutines on, none on one core.
func directWorkers() int {
	if n := runtime.GOMAXPROCS(0); n > 1 {
		return n
	}
	return 0
}

// handSlot is a queued packet: its bytes and the buffer of its track.
type handSlot struct {
	buf  *conference.PushBuffer
	n    int
	data [smallPacket]byte
}

// handQueue is one socket reader's queue to one worker: a single-producer
// (the reader), single-consumer (the worker) ring of atomics, after
// sync/poolqueue: indices that only grow, the slot written before tail
// publishes it, head moved on only once the packet was handed over.
type handQueue struct {
	worker *handWorker

	tail atomic.Uint32 // the next slot to write: the reader's
	_    [60]byte      // tail and head on their own cache lines
	head atomic.Uint32 // the next slot to hand over: the worker's
	_    [60]byte

	full  atomic.Bool   // the reader waits for room
	room  chan struct{} // the worker tells the waiting reader there is room
	slots [handSlots]handSlot
}

// handWorker hands the packets of its queues (one per socket) to their
// tracks, on its own goroutine.
type handWorker struct {
	queues  []*handQueue
	waiting atomic.Bool   // parked: the readers wake it
	wake    chan struct{} // capacity 1
}

// newHandWorkers makes n workers with a queue on each of sockets sockets:
// queues[s][w] is socket s's queue to worker w.
func newHandWorkers(n, sockets int) (workers []*handWorker, queues [][]*handQueue) {
	workers = make([]*handWorker, n)
	for w := range workers {
		workers[w] = &handWorker{wake: make(chan struct{}, 1)}
	}
	queues = make([][]*handQueue, sockets)
	for s := range queues {
		queues[s] = make([]*handQueue, n)
		for w, wk := range workers {
			q := &handQueue{worker: wk, room: make(chan struct{}, 1)}
			queues[s][w] = q
			wk.queues = append(wk.queues, q)
		}
	}
	return workers, queues
}

// push queues packet p of buf for the worker, waiting for room while the
// queue is full; false when done closed first (the packet is dropped: the
// mux is closing). The reader's goroutine only; no lock, no allocation.
// A packet longer than a slot must not be pushed. It does not wake the
// worker (but to make room): the reader wakes it once a batch of
// datagrams is read (muxSocket.wakeWorkers), not per packet.
func (q *handQueue) push(buf *conference.PushBuffer, p []byte, done <-chan struct{}) bool {
	t := q.tail.Load()
	for t-q.head.Load() >= handSlots {
		q.full.Store(true)
		if t-q.head.Load() < handSlots { // made room before it saw full
			break
		}
		q.worker.wakeUp()
		select {
		case <-q.room:
		case <-done:
			return false
		}
	}
	s := &q.slots[t%handSlots]
	s.buf = buf
	s.n = copy(s.data[:], p)
	q.tail.Store(t + 1)
	return true
}

// wakeUp makes a parked worker run.
func (w *handWorker) wakeUp() {
	if w.waiting.Load() {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// run hands packets over until done is closed.
func (w *handWorker) run(done <-chan struct{}) {
	for {
		if w.handOver() {
			continue
		}
		// Empty: say so, then look again, so that a push between the
		// two is either seen here or sees waiting and wakes it.
		w.waiting.Store(true)
		if w.pending() {
			w.waiting.Store(false)
			continue
		}
		select {
		case <-w.wake:
			w.waiting.Store(false)
		case <-done:
			return
		}
	}
}

// handOver hands every queued packet to its track, and reports whether
// there was any.
func (w *handWorker) handOver() bool {
	handed := false
	for _, q := range w.queues {
		for h := q.head.Load(); h != q.tail.Load(); h++ {
			s := &q.slots[h%handSlots]
			_, _ = s.buf.Write(s.data[:s.n]) // a stopped stream's buffer refuses it
			s.buf = nil
			q.head.Store(h + 1)
			if q.full.Load() && q.full.CompareAndSwap(true, false) {
				select {
				case q.room <- struct{}{}:
				default:
				}
			}
			handed = true
		}
	}
	return handed
}

// pending reports whether a queue of w holds a packet.
func (w *handWorker) pending() bool {
	for _, q := range w.queues {
		if q.head.Load() != q.tail.Load() {
			return true
		}
	}
	return false
}
