package media

import (
	"math/bits"
	"sync/atomic"
)

// cacheLine is the padding between fields written by different goroutines, so a
// producer store does not invalidate the consumer's cache line (false sharing).
// 128 bytes covers adjacent-line prefetch on amd64 and the 128-byte lines of
// arm64 server parts.
const cacheLine = 128

// Ring is a lock-free single-producer single-consumer ring of int16 PCM samples.
//
// The model is the Go runtime's runqput and sync/poolqueue: a power-of-two
// buffer indexed by ever-increasing 64-bit counters (the slot of position x is
// x&mask), the counters on their own cache lines, and the samples written before
// the counter that publishes them. A counter never wraps in practice (2^64
// samples at 48 kHz is millions of years).
//
// The counters are positions on the track's timeline in samples: tail is the
// end of the decided part of the timeline, head the consumer's playout
// position, and tail-head samples are buffered. Two modes of use:
//
//   - Stream: Write appends at tail and Read takes what is buffered.
//   - Timeline: the producer places samples at absolute positions with WriteAt
//     (a gap before the position becomes silence) and the consumer plays a
//     fixed amount per tick with Play. When Play finds fewer samples buffered
//     than it needs it claims the missing positions as silence by advancing
//     tail itself with a compare-and-swap; samples that arrive later for a
//     claimed position are dropped and counted. Every position is thus decided
//     exactly once, as data or as silence, so the track's length equals the
//     number of samples played: wall-clock time when the consumer plays at
//     wall-clock pace.
//
// One goroutine may be the producer (Write, WriteAt) and one the consumer
// (Read, Play, Skip); Len, Head, Tail, Dropped, Written, ReadCount and Missing
// may be called from any goroutine. The producer never blocks: on overflow it
// drops the newest samples and counts them.
type Ring struct {
	_ [cacheLine]byte
	// head is the consumer's position: positions below it have been read or
	// played. Stored by the consumer only; loaded by the producer to find free
	// slots and late positions.
	head atomic.Uint64
	_    [cacheLine - 8]byte
	// tail is the end of the decided timeline: positions below it hold
	// published samples (or were claimed as silence by Play). Advanced by the
	// producer when it publishes and by the consumer, with compare-and-swap
	// only, when it claims silence; so tail >= head always.
	tail atomic.Uint64
	_    [cacheLine - 8]byte
	// dropped counts samples the producer could not place: overflow, and data
	// for positions already decided. Producer only (atomic for readers);
	// touched only when something is dropped.
	dropped atomic.Uint64
	_       [cacheLine - 8]byte
	// missing counts positions the consumer claimed as silence because
	// nothing was buffered for them. Consumer only (atomic for readers);
	// touched only when something is missing.
	//
	// The other counters follow from these, so the hot path pays for one
	// atomic store or compare-and-swap per call: every position below tail
	// was published by the producer or claimed (missing), every position
	// below head was read or missing.
	missing atomic.Uint64
	_       [cacheLine - 8]byte
	// buf and mask are set by NewRing and never change.
	buf  []int16
	mask uint64
}

// NewRing returns a ring holding at least capacity samples; the capacity is
// rounded up to a power of two (minimum 2).
func NewRing(capacity int) *Ring {
	if capacity < 2 {
		capacity = 2
	}
	size := uint64(1) << bits.Len64(uint64(capacity-1))
	return &Ring{buf: make([]int16, size), mask: size - 1}
}

// Cap returns the number of samples the ring can buffer.
func (r *Ring) Cap() int { return len(r.buf) }

// Len returns the number of samples buffered.
func (r *Ring) Len() int {
	h := r.head.Load()
	t := r.tail.Load()
	if t < h { // head advanced between the two loads
		return 0
	}
	return int(t - h)
}

// Head returns the consumer's position: samples read, played or skipped.
func (r *Ring) Head() uint64 { return r.head.Load() }

// Tail returns the end of the decided timeline.
func (r *Ring) Tail() uint64 { return r.tail.Load() }

// Written returns the number of samples the producer has handled: every sample
// passed to Write and WriteAt plus the gap silence WriteAt inserted. Like
// ReadCount it is derived from several counters and exact once both sides are
// idle; then Written() == ReadCount() + Dropped() + Len().
func (r *Ring) Written() uint64 {
	m := r.missing.Load()
	return r.tail.Load() - m + r.dropped.Load()
}

// ReadCount returns the number of samples the consumer has taken from the
// buffer (by Read, Play or Skip).
func (r *Ring) ReadCount() uint64 {
	m := r.missing.Load()
	return r.head.Load() - m
}

// Dropped returns the number of samples the producer dropped: on overflow, and
// in WriteAt for positions already decided (played as silence, or written).
func (r *Ring) Dropped() uint64 { return r.dropped.Load() }

// Missing returns the number of positions Play filled with silence because no
// samples were buffered for them (loss, DTX, a late or stalled producer).
func (r *Ring) Missing() uint64 { return r.missing.Load() }

// Write appends p at the end of the timeline and returns the number of samples
// stored; the rest is dropped and counted. Producer only.
func (r *Ring) Write(p []int16) int {
	return r.WriteAt(r.tail.Load(), p)
}

// WriteAt places p at timeline position pos and returns the number of samples
// stored. Positions between the current tail and pos are filled with silence
// as far as the consumer has not already passed them. Samples for positions
// already decided (below tail, because they were written before or played as
// silence) and samples that do not fit are dropped and counted. Producer only.
func (r *Ring) WriteAt(pos uint64, p []int16) int {
	size := uint64(len(r.buf))
	for {
		t := r.tail.Load()
		data, dpos := p, pos
		if dpos < t { // already decided: duplicate or late
			skip := min(t-dpos, uint64(len(data)))
			data, dpos = data[skip:], dpos+skip
		}
		if len(data) == 0 {
			if len(p) > 0 {
				r.dropped.Add(uint64(len(p)))
			}
			return 0
		}
		limit := r.head.Load() + size // positions below limit have free slots
		gapEnd := min(dpos, limit)
		r.zero(t, gapEnd)
		dataEnd := min(dpos+uint64(len(data)), limit)
		stored := uint64(0)
		if dataEnd > dpos {
			stored = dataEnd - dpos
			r.copyIn(dpos, data[:stored])
		}
		newTail := max(gapEnd, dataEnd)
		// Publish: slots are filled before the counter moves. The swap fails
		// only if the consumer claimed silence meanwhile; then retry against
		// the new tail, which turns the claimed positions into late ones.
		if r.tail.CompareAndSwap(t, newTail) {
			if d := uint64(len(p)) - stored; d > 0 {
				r.dropped.Add(d)
			}
			return int(stored)
		}
	}
}

// zero clears the slots of positions [from, to) (at most the whole buffer).
func (r *Ring) zero(from, to uint64) {
	if to <= from {
		return
	}
	n := min(to-from, uint64(len(r.buf)))
	i := from & r.mask
	first := min(n, uint64(len(r.buf))-i)
	clear(r.buf[i : i+first])
	clear(r.buf[:n-first])
}

// copyIn copies p into the slots starting at position pos.
func (r *Ring) copyIn(pos uint64, p []int16) {
	i := pos & r.mask
	c := copy(r.buf[i:], p)
	copy(r.buf, p[c:])
}

// copyOut copies the samples at positions [pos, pos+len(p)) into p.
func (r *Ring) copyOut(pos uint64, p []int16) {
	i := pos & r.mask
	c := copy(p, r.buf[i:])
	copy(p[c:], r.buf)
}

// Read moves up to len(p) buffered samples into p and returns how many. It
// never waits and never passes the producer. Consumer only.
func (r *Ring) Read(p []int16) int {
	h := r.head.Load()
	n := min(r.tail.Load()-h, uint64(len(p)))
	if n == 0 {
		return 0
	}
	r.copyOut(h, p[:n])
	r.head.Store(h + n) // slots are copied out before they are released
	return int(n)
}

// Play fills p with the next len(p) samples of the timeline and always
// advances the playout position by len(p). Buffered samples come first; the
// positions nothing was buffered for are claimed as silence (zeros in p,
// counted by Missing) so samples arriving for them later are dropped. It
// returns the number of buffered samples used. Consumer only.
func (r *Ring) Play(p []int16) int {
	return r.advance(uint64(len(p)), p)
}

// Skip discards the next n positions of the timeline like Play without
// copying them out, and returns the number of buffered samples discarded.
// Consumer only.
func (r *Ring) Skip(n int) int {
	return r.advance(uint64(max(n, 0)), nil)
}

// advance moves head by want positions, copying buffered samples into p when
// p is not nil and claiming the rest as silence.
func (r *Ring) advance(want uint64, p []int16) int {
	a, b := r.acquire(want)
	n := len(a) + len(b)
	if p != nil {
		copy(p, a)
		copy(p[len(a):], b)
		clear(p[n:])
	}
	r.release(want)
	return n
}

// acquire starts the consumer's next step of want positions: it claims the
// positions nothing is buffered for as silence and returns the buffered
// samples among them, in order, as up to two slices (the buffer wraps). The
// slices are valid until release(want), which must follow. Consumer only.
func (r *Ring) acquire(want uint64) (a, b []int16) {
	h := r.head.Load()
	for {
		t := r.tail.Load()
		n := min(t-h, want)
		// Claim the missing positions; if the producer published meanwhile
		// the swap fails and the loop uses what it published.
		if n == want || r.tail.CompareAndSwap(t, h+want) {
			if n < want {
				r.missing.Add(want - n)
			}
			i := h & r.mask
			first := min(n, uint64(len(r.buf))-i)
			return r.buf[i : i+first], r.buf[:n-first]
		}
	}
}

// release ends the consumer's step begun by acquire(want): it moves head,
// handing the slots back to the producer.
func (r *Ring) release(want uint64) {
	r.head.Store(r.head.Load() + want)
}
