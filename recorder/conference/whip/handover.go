package whip

import (
	"runtime"
	"sync/atomic"

	"github.com/rtcrec/recorder/recorder/conference"
)

// Direct audio's hand-over workers. The recorder's work on a packet it is
// handed (conference.PushBuffer: reorder, track file, the mix's Opus
// decode) costs ten to forty times the socket reader's own (recvmmsg,
// routing, decrypting). So each socket's reader only decrypts a packet into
// a queue and goes on reading, and worker goroutines, one per core
// (GOMAXPROCS of them, at least one), hand the queued packets to their
// tracks. A connection's packets always go to the same worker (chosen in
// turn as connections come), through one queue per socket and worker, so
// each track's packets are handed over in the order they came.
//
// The queues are where a recorder short of CPU keeps its backlog, as
// Pion's path keeps it in its connections' rings (udpMux's muxRing: 5 s of
// a stream each): the reader's work per packet is small, so when the
// process runs again after a stall it empties the socket into the queues
// before the workers catch up. Handing over on the reader instead (one
// core: session 14) left the socket's receive buffer (about 1.6 s of 400
// streams) as the only slack, and a starved recorder lost packets there
// that Pion's path kept (issue 16, case 5). A queue holds handSlotsPerStream
// packets of each of the streams it is sized for (Pion's 5 s), as pointers
// to pooled buffers (8 bytes a slot, as Pion's rings): the memory of a
// packet is taken only while it waits.
//
// A full queue (its worker has not run for 5 s of its streams: a track's
// writer blocked on its disk, a process starved of CPU for that long)
// makes its reader wait for room: nothing is dropped here; the socket's
// receive buffer holds the backlog then.

// handSlotsPerStream is how many packets a queue holds per stream it is
// sized for: Pion's ring of a connection (muxRing, 5 s of 50 packets a
// second).
const handSlotsPerStream = muxRing

// handStreams is how many streams the queues are sized for when the
// instance's capacity is not set (Settings.Streams): what one core
// carries with the mix (BENCHMARKS.md).
const handStreams = 400

// handQueueSlots is the length of one queue (a power of two) for
// streams streams (0: handStreams) spread over workers workers: 1 MiB of
// slots for 400 streams on one worker.
func handQueueSlots(streams, workers int) int {
	if streams <= 0 {
		streams = handStreams
	}
	n := streams * handSlotsPerStream / max(workers, 1)
	slots := 1024
	for slots < n && slots < 1<<24 {
		slots <<= 1
	}
	return slots
}

// directWorkers is how many hand-over workers a mux with direct audio
// runs: one per core Go runs goroutines on, and one on one core (the
// reader then only reads, as on many).
func directWorkers() int {
	return max(runtime.GOMAXPROCS(0), 1)
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
	mask  uint32        // len(slots) - 1
	slots []*muxPacket  // each with its track's buffer (muxPacket.dst)
}

// handWorker hands the packets of its queues (one per socket) to their
// tracks, on its own goroutine.
type handWorker struct {
	queues  []*handQueue
	waiting atomic.Bool   // parked: the readers wake it
	wake    chan struct{} // capacity 1
}

// newHandWorkers makes n workers with a queue of slots packets (a power of
// two) on each of sockets sockets: queues[s][w] is socket s's queue to
// worker w.
func newHandWorkers(n, sockets, slots int) (workers []*handWorker, queues [][]*handQueue) {
	workers = make([]*handWorker, n)
	for w := range workers {
		workers[w] = &handWorker{wake: make(chan struct{}, 1)}
	}
	queues = make([][]*handQueue, sockets)
	for s := range queues {
		queues[s] = make([]*handQueue, n)
		for w, wk := range workers {
			q := &handQueue{worker: wk, room: make(chan struct{}, 1), mask: uint32(slots - 1), slots: make([]*muxPacket, slots)}
			queues[s][w] = q
			wk.queues = append(wk.queues, q)
		}
	}
	return workers, queues
}

// push queues a copy of packet p of buf for the worker, waiting for room
// while the queue is full; false when done closed first (the packet is
// dropped: the mux is closing). The reader's goroutine only; no lock, no
// allocation (the copy's buffer is pooled). It does not wake the worker
// (but to make room): the reader wakes it once a batch of datagrams is
// read (muxSocket.wakeWorkers), not per packet.
func (q *handQueue) push(buf *conference.PushBuffer, p []byte, done <-chan struct{}) bool {
	t := q.tail.Load()
	for t-q.head.Load() > q.mask {
		q.full.Store(true)
		if t-q.head.Load() <= q.mask { // made room before it saw full
			break
		}
		q.worker.wakeUp()
		select {
		case <-q.room:
		case <-done:
			return false
		}
	}
	c := getPacket(len(p))
	c.n = copy(c.buf, p)
	c.dst = buf
	q.slots[t&q.mask] = c
	q.tail.Store(t + 1)
	return true
}

// queued returns how many packets wait in q.
func (q *handQueue) queued() int { return int(q.tail.Load() - q.head.Load()) }

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
			p := q.slots[h&q.mask]
			q.slots[h&q.mask] = nil
			_, _ = p.dst.Write(p.buf[:p.n]) // a stopped stream's buffer refuses it
			p.dst = nil
			putPacket(p)
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
