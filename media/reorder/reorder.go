// Package reorder puts the RTP packets of one track back in sequence order
// before its file writer (media/oggwriter, media/wavwriter and, through
// media/internal/framer, the video writers), which place a packet by its
// timestamp and drop one that comes after a later packet was written.
//
// A Buffer passes a packet on at once while the sequence is whole: no copy,
// no delay. A packet that comes after a missing one is copied and held; the
// missing packet (a reordered, delayed or retransmitted one) is waited for
// until it comes or the wait budget has passed since the first packet after
// it arrived, and then given up on (Stats.Skipped). Everything leaves in
// sequence order. A packet whose place was given up on, or that was already
// passed on, is dropped (Stats.Late, Stats.Duplicates): the file writer would
// drop it too.
//
// Memory is bounded, and allocated on the first packet that must be held
// (a track that never sees reordering or loss costs the Buffer struct only):
// Config.Slots packets and Config.Bytes bytes of payload. When either is
// full the oldest gap is given up on early, so a long loss costs memory, not
// correctness. Once Slots packets in a row passed on in order after the
// last one held or given up on, the window is released (an audio track's
// 49 KiB: a lost packet would otherwise keep it for the rest of the
// recording) and allocated again at the next packet that must be held. Per
// packet the Buffer allocates nothing and takes no lock; it is owned by one
// goroutine (the track's reader). Stats may be read from any goroutine.
//
// Time is the caller's: every Push carries the packet's arrival, and only a
// Push (or Flush) releases packets, so a sender that stops sending leaves
// what is held until the next packet, Flush (stop, pause, track end) or the
// next Push.
package reorder

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// Sink receives the packets in sequence order. The packet and its payload
// are valid only during the call (a held packet's payload is the Buffer's
// memory); the sink copies what it keeps.
type Sink interface {
	WriteRTP(*rtp.Packet) error
}

// Config bounds a Buffer.
type Config struct {
	// Budget is the longest a missing packet is waited for, counted from the
	// arrival of the first packet held behind it (default 5 s).
	Budget time.Duration
	// Slots is the most packets held, a power of two (default 256: 5.12 s of
	// 20 ms packets). It is also the widest sequence distance waited across:
	// a packet further ahead gives up on the oldest gaps.
	Slots int
	// Bytes is the most payload bytes held (default 64 KiB: 5 s of Opus at
	// 100 kbit/s, of G.711 at 64 kbit/s with room to spare).
	Bytes int
}

// Stats counts what a Buffer did. Packets given up on are counted once.
type Stats struct {
	Reordered  uint64 // packets held behind a missing one and passed on in order
	Skipped    uint64 // sequence numbers given up on (budget passed, buffer full, flush)
	Duplicates uint64 // packets dropped because the same one was passed on or held
	Late       uint64 // packets dropped because their place was given up on
	Restarts   uint64 // new SSRCs and sequence jumps (the held packets are flushed first)
}

// resync is the sequence distance beyond which a jump is taken as a restart
// of the sender's numbering rather than loss or a late packet (as in
// media/internal/framer and RFC 3550 A.1's MAX_DROPOUT).
const resync = 3000

// maxLateRun is the number of consecutive packets behind the sequence but
// ahead of the last timestamp passed on after which the next one restarts
// the sequence (a sender that restarted its numbering backward by less than
// resync; its audio goes on). A packet behind in both is late, however many
// come: a span held in the network past the budget while the packets after
// it went on comes in one burst, all of it late.
const maxLateRun = 8

type slotState uint8

const (
	slotFree    slotState = iota // nothing known of this sequence number
	slotHeld                     // holds a packet waiting for its turn
	slotPassed                   // the packet was passed on
	slotSkipped                  // given up on
)

// slot is one sequence number's place in the window (32 bytes). The header
// fields kept are those the file writers read; CSRC and extensions are not
// kept, and the SSRC is the Buffer's (a new SSRC flushes first).
type slot struct {
	arrived int64 // unix ns
	start   int64 // arena position of the payload (monotonic)
	ts      uint32
	n       int32 // payload length
	seq     uint16
	pt      uint8
	marker  bool
	state   slotState
}

// sizeofSlot is the size of a slot, for Memory.
const sizeofSlot = 32

// Buffer is the reorder stage of one track.
type Buffer struct {
	out    Sink
	budget int64
	nslots int
	nbytes int

	// Allocated on the first packet held (or given up on), released
	// (freed) once quiet reached nslots.
	slots []slot
	mask  uint16
	arena []byte
	fifo  []uint16 // held sequence numbers in arrival order (stale ones popped lazily)
	fhead uint32   // next entry to pop; its index is fhead & (len(fifo)-1)
	ftail uint32   // next entry to push
	head  int64    // arena: next free position (monotonic)
	tail  int64    // arena: start of the oldest payload still held (monotonic)

	started bool
	ssrc    uint32
	next    uint16 // next sequence number to pass on
	first   uint16 // the sequence's first
	held    int    // packets held, all in [next, next+nslots)
	lastTS  uint32 // the timestamp of the last packet passed on (or the sequence's first)
	lateRun int
	pkt     rtp.Packet // the held packet being passed on
	// quiet counts the packets passed on in order since the last one held
	// or given up on: every one of [next-quiet, next) was passed on. freed:
	// the window was released; the nslots before next (from first on) were
	// passed on, and none before them is known (passedOn).
	quiet int
	freed bool
	keep  bool // tests: never release the window

	reordered, skipped, duplicates, late, restarts atomic.Uint64
}

// New returns the reorder stage writing to out. A zero Config field takes
// its default; Slots is rounded up to a power of two (at most 32768).
func New(out Sink, cfg Config) *Buffer {
	if cfg.Budget <= 0 {
		cfg.Budget = 5 * time.Second
	}
	if cfg.Slots <= 0 {
		cfg.Slots = 256
	}
	if cfg.Bytes <= 0 {
		cfg.Bytes = 64 << 10
	}
	n := 2
	for n < cfg.Slots && n < 1<<15 {
		n <<= 1
	}
	return &Buffer{out: out, budget: int64(cfg.Budget), nslots: n, nbytes: cfg.Bytes}
}

// Memory returns the bytes a Buffer allocates once it has held a packet: the
// slots, the arrival queue and the payload arena (the struct itself is
// about 200 bytes more).
func (b *Buffer) Memory() int {
	return b.nslots*sizeofSlot + 2*b.nslots*2 + b.nbytes
}

// Stats returns the counters so far.
func (b *Buffer) Stats() Stats {
	return Stats{Reordered: b.reordered.Load(), Skipped: b.skipped.Load(), Duplicates: b.duplicates.Load(),
		Late: b.late.Load(), Restarts: b.restarts.Load()}
}

// Held returns the number of packets held (owner goroutine only).
func (b *Buffer) Held() int { return b.held }

// Next returns the sequence number passed on next: every packet before it
// was passed on or given up on; ok is false before the first packet and
// after Flush (owner goroutine only).
func (b *Buffer) Next() (seq uint16, ok bool) { return b.next, b.started }

// errs keeps the first error of a sequence of calls.
type errs struct{ err error }

func (e *errs) keep(err error) {
	if e.err == nil {
		e.err = err
	}
}

// Push takes the packet p that arrived at now and passes on, in sequence
// order, every packet that is due: those behind a missing packet whose
// budget has passed, p itself when it is next, and the held packets it
// completes. p is not retained (its payload is copied when it must be held).
// The first error of the sink is returned; the Buffer goes on.
func (b *Buffer) Push(p *rtp.Packet, now time.Time) error {
	t := now.UnixNano()
	var e errs
	if b.started && p.SSRC != b.ssrc {
		b.restarts.Add(1)
		e.keep(b.Flush())
	}
	if !b.started {
		b.start(p)
	}
	e.keep(b.expire(t))
	switch d := int16(p.SequenceNumber - b.next); {
	case d < 0 && d > -resync && (b.lateRun < maxLateRun || int32(p.Timestamp-b.lastTS) <= 0):
		if int32(p.Timestamp-b.lastTS) > 0 {
			b.lateRun++
		}
		if b.passedOn(p.SequenceNumber) {
			b.duplicates.Add(1)
		} else {
			b.late.Add(1)
		}
		return e.err
	case d < 0 || d >= resync:
		b.restarts.Add(1)
		e.keep(b.Flush())
		b.start(p)
	}
	b.lateRun = 0
	// Too far ahead to wait across: give up on the oldest gaps until p is
	// in the window.
	for int(uint16(p.SequenceNumber-b.next)) >= b.nslots {
		e.keep(b.skipTo(p.SequenceNumber - uint16(b.nslots) + 1))
	}
	if p.SequenceNumber == b.next {
		e.keep(b.passNext(p))
	} else {
		e.keep(b.hold(p, t))
	}
	return e.err
}

// passedOn reports whether seq, behind next, is known to have been passed
// on (else it was given up on, or is too old to know).
func (b *Buffer) passedOn(seq uint16) bool {
	if b.slots == nil { // nothing was given up on (within the nslots before next, if freed)
		return int16(seq-b.first) >= 0 && (!b.freed || int(b.next-seq) <= b.nslots)
	}
	s := &b.slots[seq&b.mask]
	return s.seq == seq && s.state == slotPassed
}

// start begins a sequence at p.
func (b *Buffer) start(p *rtp.Packet) {
	b.started, b.ssrc, b.next, b.first, b.lateRun = true, p.SSRC, p.SequenceNumber, p.SequenceNumber, 0
	b.lastTS = p.Timestamp // a packet from before the first is behind it in time too
}

// Flush passes on everything held, in sequence order, giving up on the
// missing packets between; the next packet starts a new sequence (after a
// pause the gate dropped an unknown number of them).
func (b *Buffer) Flush() error {
	var e errs
	for b.held > 0 {
		e.keep(b.release())
	}
	b.fhead, b.ftail, b.head, b.tail = 0, 0, 0, 0
	b.started = false
	return e.err
}

// passNext passes on p, which is next, and the held packets it completes.
func (b *Buffer) passNext(p *rtp.Packet) error {
	if b.slots != nil {
		s := &b.slots[p.SequenceNumber&b.mask]
		s.seq, s.state = p.SequenceNumber, slotPassed
	}
	b.next, b.lastTS = b.next+1, p.Timestamp
	err := b.out.WriteRTP(p)
	if derr := b.drain(); err == nil {
		err = derr
	}
	if b.slots != nil {
		if b.quiet++; b.quiet >= b.nslots && b.held == 0 && !b.keep {
			b.free()
		}
	}
	return err
}

// free releases the window: the nslots packets before next were passed on
// (quiet), so passedOn knows them without it.
func (b *Buffer) free() {
	b.slots, b.arena, b.fifo = nil, nil, nil
	b.fhead, b.ftail, b.head, b.tail = 0, 0, 0, 0
	b.freed = true
}

// drain passes on the held packets that are next in sequence.
func (b *Buffer) drain() error {
	var e errs
	for b.held > 0 {
		s := &b.slots[b.next&b.mask]
		if s.state != slotHeld || s.seq != b.next {
			break
		}
		i := int(s.start % int64(len(b.arena)))
		b.pkt.Header = rtp.Header{Version: 2, Marker: s.marker, PayloadType: s.pt,
			SequenceNumber: s.seq, Timestamp: s.ts, SSRC: b.ssrc}
		b.pkt.Payload = b.arena[i : i+int(s.n)]
		s.state = slotPassed
		b.held--
		b.next, b.lastTS = b.next+1, s.ts
		b.reordered.Add(1)
		e.keep(b.out.WriteRTP(&b.pkt))
	}
	b.pkt.Payload = nil
	b.popStale()
	return e.err
}

// skipTo gives up on the missing packets from next on, up to limit or the
// first held packet, and passes on the run of held packets that follows.
func (b *Buffer) skipTo(limit uint16) error {
	b.allocate()
	b.quiet = 0
	for b.next != limit {
		s := &b.slots[b.next&b.mask]
		if s.state == slotHeld && s.seq == b.next {
			break
		}
		s.seq, s.state = b.next, slotSkipped
		b.skipped.Add(1)
		b.next++
	}
	return b.drain()
}

// release gives up on the missing packets before the first held one and
// passes on the run that follows. There is a held packet.
func (b *Buffer) release() error {
	return b.skipTo(b.next + uint16(b.nslots))
}

// expire releases the gaps whose wait began a budget or more before t: the
// oldest arrival among the held packets is when the first gap began.
func (b *Buffer) expire(t int64) error {
	var e errs
	for b.held > 0 && t-b.slots[b.fifo[b.fhead&uint32(len(b.fifo)-1)]&b.mask].arrived >= b.budget {
		e.keep(b.release())
	}
	return e.err
}

// allocate makes the window, if there is none. After free, the nslots
// before next (from first on) are marked passed on, as they were.
func (b *Buffer) allocate() {
	if b.slots != nil {
		return
	}
	b.slots = make([]slot, b.nslots)
	b.mask = uint16(b.nslots - 1)
	b.arena = make([]byte, b.nbytes)
	b.fifo = make([]uint16, 2*b.nslots)
	if b.freed {
		for seq := b.next - 1; int(b.next-seq) <= b.nslots && int16(seq-b.first) >= 0; seq-- {
			b.slots[seq&b.mask] = slot{seq: seq, state: slotPassed}
		}
		b.freed = false
	}
}

// hold copies p, which is ahead of next within the window, to wait for the
// packets before it.
func (b *Buffer) hold(p *rtp.Packet, t int64) error {
	b.allocate()
	b.quiet = 0
	s := &b.slots[p.SequenceNumber&b.mask]
	if s.seq == p.SequenceNumber && s.state == slotHeld {
		b.duplicates.Add(1)
		return nil
	}
	var e errs
	n := len(p.Payload)
	start := b.alloc(n)
	for start < 0 || b.ftail-b.fhead == uint32(len(b.fifo)) {
		// Full (or p can never fit): give up on the oldest gap before p,
		// which frees the oldest payloads.
		e.keep(b.skipTo(p.SequenceNumber))
		if p.SequenceNumber == b.next {
			e.keep(b.passNext(p))
			return e.err
		}
		start = b.alloc(n)
	}
	i := int(start % int64(len(b.arena)))
	copy(b.arena[i:i+n], p.Payload)
	b.head = start + int64(n)
	s.arrived, s.start, s.ts, s.n = t, start, p.Timestamp, int32(n)
	s.seq, s.pt, s.marker, s.state = p.SequenceNumber, p.PayloadType, p.Marker, slotHeld
	b.fifo[b.ftail&uint32(len(b.fifo)-1)] = p.SequenceNumber
	b.ftail++
	b.held++
	return e.err
}

// alloc returns the arena position for n contiguous bytes, or -1 when they
// do not fit now. A payload never wraps: the rest of the arena is skipped.
func (b *Buffer) alloc(n int) int64 {
	if b.held == 0 {
		b.fhead, b.ftail, b.head, b.tail = 0, 0, 0, 0
	}
	size := int64(len(b.arena))
	start := b.head
	if off := start % size; off+int64(n) > size {
		start += size - off
	}
	if start+int64(n)-b.tail > size {
		return -1
	}
	return start
}

// popStale drops the arrival-queue entries of packets no longer held and
// frees the arena up to the oldest payload still held.
func (b *Buffer) popStale() {
	if b.fifo == nil {
		return
	}
	m := uint32(len(b.fifo) - 1)
	for b.fhead != b.ftail {
		seq := b.fifo[b.fhead&m]
		if s := &b.slots[seq&b.mask]; s.seq == seq && s.state == slotHeld {
			b.tail = s.start
			return
		}
		b.fhead++
	}
	b.tail = b.head
}

// String describes the counters, for logs.
func (s Stats) String() string {
	return fmt.Sprintf("reordered %d, skipped %d, duplicates %d, late %d, restarts %d",
		s.Reordered, s.Skipped, s.Duplicates, s.Late, s.Restarts)
}
