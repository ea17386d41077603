package media

import (
	"sync/atomic"
)

// cacheLine is the padding between fields written by different goroutines, so a
// producer store does not invalidate the consumer's cache line (false sharing).
// 128 bytes covers adjacent-line prefetch on amd64 and the 128-byte lines of
// arm64 server parts.
const cacheLine = 128

// busy is the bit of Ring.tail the producer sets while it writes slots at or
// beyond the decided frontier; the consumer never claims while it is set.
const busy = uint64(1) << 63

// Ring is a lock-free single-producer single-consumer ring of int16 PCM
// samples laid out on a track's timeline.
//
// The counters are ever-increasing 64-bit positions on the timeline, in
// samples (the slot of position x is x mod the capacity; a counter never
// wraps in practice: 2^63 samples at 48 kHz is millions of years):
//
//   - head is the consumer's position: positions below it were read, played
//     or skipped.
//   - tail is the decided frontier: every position below it is final (data,
//     or silence) and the consumer may read it. It is advanced by the
//     producer when it decides (the audio up to there is complete) and by the
//     consumer when it claims undecided positions as silence because it will
//     wait no longer (Play, and the mixer when the latency budget passed).
//   - end is the producer's written end: slots in [tail, end) hold samples
//     written ahead of the frontier (a packet that came before an earlier,
//     missing one) or zeros for the gaps between them. A late packet may
//     still fill such a gap until the frontier passes it.
//
// So the producer can place audio anywhere between the frontier and the
// ring's end, in any order, and every position is decided exactly once:
// samples written for a position below the frontier are dropped and counted.
//
// Races between the two sides are settled on tail alone, without a lock:
// the producer sets tail's busy bit (compare-and-swap) while it writes slots
// at or beyond the frontier, and the consumer claims with a compare-and-swap
// that fails while the bit is set or after the producer moved the frontier;
// the consumer then simply tries again at its next step. Neither side ever
// waits for the other.
//
// A ring made by NewGrowingRing starts small and grows (doubling, up to its
// maximum) when the producer places audio beyond it: a track whose mixer
// waits for another, lagging one, or that lags itself, holds up to the
// latency budget, while a track in step with the mixer needs only a
// fraction of a second. The producer grows it under the busy bit, copying
// what the consumer has not taken into the larger buffer, and never writes
// to the old one again; the consumer reads the buffer after tail, so the
// positions below the tail it sees are in the buffer it reads (the old
// buffer keeps its samples for a consumer still reading it). Once what the
// producer needs fits in three quarters of the initial size again for shrinkAfter writes
// in a row (the lag is over), it shrinks back to the initial size the same
// way, so a track pays for the budget only while it is in use.
//
// One goroutine may be the producer (Write, WriteAt, Put, Decide, ShiftBack)
// and one the consumer (Read, Play, Skip, take/release); Len, Head, Tail,
// End, Cap, Dropped and Missing may be called from any goroutine.
type Ring struct {
	_ [cacheLine]byte
	// head is the consumer's position. Stored by the consumer only.
	head atomic.Uint64
	_    [cacheLine - 8]byte
	// tail is the decided frontier, with the busy bit. See the type's
	// documentation.
	tail atomic.Uint64
	_    [cacheLine - 8]byte
	// end is the producer's written end; stored by the producer while it
	// holds the busy bit, read by the consumer after a successful claim.
	end atomic.Uint64
	_   [cacheLine - 8]byte
	// dropped counts samples the producer could not place: late (below the
	// frontier) or beyond the ring's end. Producer only.
	dropped atomic.Uint64
	// overflowed counts the part of dropped that lay beyond the ring's
	// capacity (the consumer too far behind), not below the frontier.
	overflowed atomic.Uint64
	_          [cacheLine - 16]byte
	// missing counts positions the consumer claimed as silence with nothing
	// written for them. Consumer only.
	missing atomic.Uint64
	_       [cacheLine - 8]byte
	// buf is the storage; the producer replaces it with a larger one
	// (grow) under the busy bit and never writes the old one again.
	buf atomic.Pointer[ringBuf]
	// max is the capacity buf may grow to, min the one it starts with and
	// shrinks back to. Set by the constructor.
	max, min uint64
	// small counts the producer's writes in a row whose span fitted in
	// 3/4 of min while the ring was larger than min (shrink). Producer only,
	// written only while the ring is grown.
	small int
}

// shrinkAfter is how many writes in a row must fit in 3/4 of a grown ring's
// initial size before it shrinks back to it: 5 s of 20 ms packets, so a
// track that lags now and then does not grow and shrink at every lag.
const shrinkAfter = 256

// ringBuf is a Ring's storage: the slot of position x is s[x % size].
type ringBuf struct {
	s    []int16
	size uint64
}

// NewRing returns a ring holding capacity samples (minimum 2).
func NewRing(capacity int) *Ring {
	return NewGrowingRing(capacity, capacity)
}

// NewGrowingRing returns a ring holding initial samples (minimum 2) that
// grows up to maxCap samples when the producer places audio beyond it.
func NewGrowingRing(initial, maxCap int) *Ring {
	initial = max(initial, 2)
	r := &Ring{max: uint64(max(maxCap, initial)), min: uint64(initial)}
	r.buf.Store(&ringBuf{s: make([]int16, initial), size: uint64(initial)})
	return r
}

// Cap returns the number of samples the ring can hold now.
func (r *Ring) Cap() int { return len(r.buf.Load().s) }

// MaxCap returns the number of samples the ring may grow to.
func (r *Ring) MaxCap() int { return int(r.max) }

// Len returns the number of decided samples the consumer has not taken yet.
func (r *Ring) Len() int {
	h := r.head.Load()
	t := r.tail.Load() &^ busy
	if t < h { // head advanced between the two loads
		return 0
	}
	return int(t - h)
}

// Head returns the consumer's position.
func (r *Ring) Head() uint64 { return r.head.Load() }

// Tail returns the decided frontier.
func (r *Ring) Tail() uint64 { return r.tail.Load() &^ busy }

// End returns the end of what the producer wrote (at least Tail).
func (r *Ring) End() uint64 { return max(r.end.Load(), r.Tail()) }

// Dropped returns the number of samples the producer dropped because their
// positions were already decided (late) or beyond the ring's capacity.
func (r *Ring) Dropped() uint64 { return r.dropped.Load() }

// Overflowed returns the part of Dropped that lay beyond the ring's
// capacity when it was written: the consumer was that far behind.
func (r *Ring) Overflowed() uint64 { return r.overflowed.Load() }

// Missing returns the number of positions the consumer claimed as silence
// with nothing written for them (loss, DTX, a stalled producer).
func (r *Ring) Missing() uint64 { return r.missing.Load() }

// Write appends p at the decided frontier and decides it; it returns the
// number of samples stored. Producer only.
func (r *Ring) Write(p []int16) int {
	pos := r.Tail()
	return r.write(pos, p, pos+uint64(len(p)))
}

// WriteAt places p at position pos and decides every position up to its end
// (a gap before pos becomes silence unless something was written there
// already). It returns the number of samples stored. Producer only.
func (r *Ring) WriteAt(pos uint64, p []int16) int {
	return r.write(pos, p, pos+uint64(len(p)))
}

// Put places p at position pos without deciding it: the audio before it may
// still come. It returns the number of samples stored. Producer only.
func (r *Ring) Put(pos uint64, p []int16) int {
	return r.write(pos, p, 0)
}

// Decide moves the decided frontier to upTo (as far as the ring reaches):
// what was not written up to there is silence. Producer only.
func (r *Ring) Decide(upTo uint64) {
	r.write(upTo, nil, upTo)
}

// write stores p at pos (the part below the frontier and beyond the ring's
// end is dropped and counted) and then moves the frontier to decide, if that
// is ahead of it. Producer only.
func (r *Ring) write(pos uint64, p []int16, decide uint64) int {
	for {
		t := r.tail.Load() // the producer holds no busy bit here
		data, dpos := p, pos
		if dpos < t { // already decided: late or duplicate
			skip := min(t-dpos, uint64(len(data)))
			data, dpos = data[skip:], dpos+skip
		}
		b := r.buf.Load()
		h := r.head.Load()
		limit := h + b.size // positions below limit have free slots
		want := max(dpos+uint64(len(data)), decide)
		if want > limit && b.size < r.max {
			if !r.tail.CompareAndSwap(t, t|busy) {
				continue
			}
			r.small = 0
			r.resize(b, h, t, r.grownSize(b.size, want-h))
			r.tail.Store(t)
			continue // again, with the larger buffer
		}
		if b.size > r.min && r.shrinks(h, max(want, r.end.Load(), t)) {
			if !r.tail.CompareAndSwap(t, t|busy) {
				continue
			}
			r.resize(b, h, t, r.min)
			r.tail.Store(t)
			continue // again, with the smaller buffer
		}
		stored := uint64(0)
		if dpos < limit {
			stored = min(uint64(len(data)), limit-dpos)
		}
		newTail := max(t, min(decide, limit))
		if stored == 0 && newTail == t {
			r.dropped.Add(uint64(len(p)))
			r.overflowed.Add(uint64(len(data)))
			return 0
		}
		if !r.tail.CompareAndSwap(t, t|busy) {
			continue // the consumer claimed meanwhile: recompute against it
		}
		// Slots in [t, e) were written in this lap of the ring; later ones
		// are stale and are zeroed where nothing is written over them.
		e := max(r.end.Load(), t)
		if stored > 0 {
			if dpos > e {
				b.zero(e, dpos)
			}
			b.copyIn(dpos, data[:stored])
			e = max(e, dpos+stored)
		}
		if newTail > e {
			b.zero(e, newTail)
			e = newTail
		}
		r.end.Store(e)
		r.tail.Store(newTail) // publish: slots are written before the busy bit clears
		if d := uint64(len(p)) - stored; d > 0 {
			r.dropped.Add(d)
			r.overflowed.Add(uint64(len(data)) - stored)
		}
		return int(stored)
	}
}

// grownSize returns the size a ring of size must grow to for span samples
// from the consumer's position: doubling, at most r.max.
func (r *Ring) grownSize(size, span uint64) uint64 {
	for size < span && size < r.max {
		size *= 2
	}
	return min(size, r.max)
}

// shrinks counts a write of a grown ring whose span, from the consumer's
// position h to end, fits in three quarters of the initial size, and
// reports whether shrinkAfter came in a row. Producer only. (A track in step
// spans the mixer's join wait, 760 ms, and a frame or two: a mixer
// input's ring starts at 1.25 s.)
func (r *Ring) shrinks(h, end uint64) bool {
	if end < h || end-h > r.min/4*3 { // end < h: the consumer moved on meanwhile
		r.small = 0
		return false
	}
	r.small++
	if r.small < shrinkAfter {
		return false
	}
	r.small = 0
	return true
}

// resize replaces b, the ring's buffer, with one of size samples holding
// the slots of [h, end): what the consumer has not taken (it may still be
// reading b: its slots stay as they are, the producer never writes b
// again). The producer holds the busy bit; tail is t; [h, end) fits in
// size.
func (r *Ring) resize(b *ringBuf, h, t, size uint64) {
	nb := &ringBuf{s: make([]int16, size), size: size}
	for pos, e := h, max(r.end.Load(), t); pos < e; pos++ {
		nb.s[pos%nb.size] = b.s[pos%b.size]
	}
	r.buf.Store(nb)
}

// ShiftBack moves what the producer wrote from position from on back by
// by samples, before any of it is decided: a track's first packets, placed
// at a late first arrival, moved to where the ones after them show they
// belong. What would land below the frontier (before the track joined the
// mix, or before the recording's time zero) is dropped and counted: the
// rest keeps its place relative to it, nothing is shifted past it. Producer
// only.
func (r *Ring) ShiftBack(from, by uint64) {
	for by > 0 {
		t := r.tail.Load()
		if from < t {
			return
		}
		if !r.tail.CompareAndSwap(t, t|busy) {
			continue
		}
		if e := max(r.end.Load(), t); from < e {
			b := r.buf.Load()
			src := from // the first position whose samples land at or above t
			if from-t < by {
				src = t + by
			}
			for pos := src; pos < e; pos++ {
				b.s[(pos-by)%b.size] = b.s[pos%b.size]
			}
			if src > from {
				r.dropped.Add(min(src, e) - from)
			}
			r.end.Store(max(e-min(e, by), t)) // the slots left behind are stale from now on
		}
		r.tail.Store(t)
		return
	}
}

// ShiftForward moves what the producer wrote from position from on forward
// by by samples, before any of it is decided, and leaves silence where it
// was: a track's audio placed early by a step of its sender's clock that was
// confirmed after it was written (AudioPipeline's hold). It reports whether
// it moved it: not if the consumer claimed a position at or after from, or
// the ring cannot grow to hold the moved end. Producer only.
func (r *Ring) ShiftForward(from, by uint64) bool {
	for {
		t := r.tail.Load()
		if from < t {
			return false
		}
		e := max(r.end.Load(), t)
		if by == 0 || from >= e {
			return true // nothing written there to move
		}
		b, h := r.buf.Load(), r.head.Load()
		if e+by > h+b.size {
			if b.size >= r.max {
				return false
			}
			if !r.tail.CompareAndSwap(t, t|busy) {
				continue
			}
			r.small = 0
			r.resize(b, h, t, r.grownSize(b.size, e+by-h))
			r.tail.Store(t)
			continue // again, with the larger buffer
		}
		if !r.tail.CompareAndSwap(t, t|busy) {
			continue // the consumer claimed meanwhile: check against it
		}
		for pos := e; pos > from; pos-- {
			b.s[(pos-1+by)%b.size] = b.s[(pos-1)%b.size]
		}
		b.zero(from, from+by)
		r.end.Store(e + by)
		r.tail.Store(t)
		return true
	}
}

// zero clears the slots of positions [from, to) (at most the whole buffer).
func (b *ringBuf) zero(from, to uint64) {
	if to <= from {
		return
	}
	n := min(to-from, b.size)
	i := from % b.size
	first := min(n, b.size-i)
	clear(b.s[i : i+first])
	clear(b.s[:n-first])
}

// copyIn copies p into the slots starting at position pos.
func (b *ringBuf) copyIn(pos uint64, p []int16) {
	i := pos % b.size
	c := copy(b.s[i:], p)
	copy(b.s, p[c:])
}

// Read moves up to len(p) decided samples into p and returns how many. It
// never waits and never passes the frontier. Consumer only.
func (r *Ring) Read(p []int16) int {
	n := min(uint64(r.Len()), uint64(len(p)))
	if n == 0 {
		return 0
	}
	a, b := r.buf.Load().slices(r.head.Load(), n) // the buffer after tail (Len)
	copy(p, a)
	copy(p[len(a):], b)
	r.head.Add(n) // slots are copied out before they are released
	return int(n)
}

// Play fills p with the next len(p) samples of the timeline and advances the
// consumer's position by len(p), claiming undecided positions as silence so
// samples arriving for them later are dropped. It returns the number of
// samples that were written (not claimed as silence). Should the producer be
// in the middle of a write, it tries again: that lasts one copy at most.
// Consumer only.
func (r *Ring) Play(p []int16) int {
	for {
		a, b, ok := r.take(uint64(len(p)), true)
		if !ok {
			continue
		}
		copy(p, a)
		copy(p[len(a):], b)
		n := len(a) + len(b)
		clear(p[n:])
		r.release(uint64(len(p)))
		return n
	}
}

// Skip discards the next n positions like Play, and returns the number of
// written samples among them. Consumer only.
func (r *Ring) Skip(n int) int {
	for {
		a, b, ok := r.take(uint64(max(n, 0)), true)
		if ok {
			r.release(uint64(max(n, 0)))
			return len(a) + len(b)
		}
	}
}

// take starts the consumer's next step over the positions [head, head+want).
// If they are all decided it returns their samples as up to two slices (the
// buffer wraps). Otherwise, with claim, it claims the undecided ones as
// silence and returns the samples written among them (positions beyond what
// the producer wrote are silence and not in the slices); without claim, or
// when the claim loses a race with the producer, ok is false and nothing
// changed. The slices stay valid until release(want), which must follow a
// successful take. Consumer only; it never waits.
func (r *Ring) take(want uint64, claim bool) (a, b []int16, ok bool) {
	h := r.head.Load()
	t := r.tail.Load()
	if t&busy == 0 && t >= h+want {
		// The buffer loaded after tail holds every position below it.
		a, b = r.buf.Load().slices(h, want)
		return a, b, true
	}
	if !claim || t&busy != 0 {
		return nil, nil, false
	}
	// The written end goes with tail t: loaded after t and before the swap,
	// which fails if the producer moved tail or holds the busy bit. Loaded
	// after the swap it could include what the producer writes next, beyond
	// h+want, and make stale slots below h+want look written.
	e := max(r.end.Load(), t)
	// The buffer is loaded after the end: the producer grows it before it
	// writes into the new one, so it holds every position below e (a growth
	// after the load leaves the old buffer's slots as they are).
	buf := r.buf.Load()
	if !r.tail.CompareAndSwap(t, h+want) {
		return nil, nil, false
	}
	// The producer is not writing and will write at or beyond h+want from now on.
	n := min(e, h+want) - h
	if n < want {
		r.missing.Add(want - n)
	}
	a, b = buf.slices(h, n)
	return a, b, true
}

// release ends the consumer's step begun by take(want): it moves head,
// handing the slots back to the producer.
func (r *Ring) release(want uint64) {
	r.head.Add(want)
}

// slices returns the slots of positions [pos, pos+n) as up to two slices.
func (b *ringBuf) slices(pos, n uint64) (x, y []int16) {
	i := pos % b.size
	first := min(n, b.size-i)
	return b.s[i : i+first], b.s[:n-first]
}
