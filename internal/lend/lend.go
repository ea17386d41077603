// Package lend lends working memory to calls: a decoder that needs a few KB
// only while it decodes borrows them for the call instead of holding them,
// so that many decoders, few of them decoding at any moment, share the few
// sets in use (internal/opus's decoders; media's audio pipelines).
//
// sync.Pool would do, but under the race detector it drops a quarter of
// what is put back on purpose, and the decoders' allocation tests (which CI
// runs with -race) would see the allocations that follow.
package lend

import "sync/atomic"

// slots is how many values a Pool keeps: more than the calls that run at
// once on any machine this decodes on (a call holds one only while it runs).
const slots = 64

// cacheLine pads each slot so that borrowers on different cores do not
// write the same cache line.
const cacheLine = 64

// Pool lends values of type T. Get takes a free slot's value (made at the
// slot's first use) by one compare-and-swap and Put frees it: no lock, and
// no allocation once the slots in use have their values. When every slot is
// taken, Get makes a value that Put forgets. The zero Pool is ready; a Pool
// must not be copied.
type Pool[T any] struct {
	slot [slots]struct {
		busy atomic.Bool
		v    *T // written only by the slot's borrower
		_    [cacheLine - 16]byte
	}
}

// Get returns a value for the caller's exclusive use and the ticket to give
// it back with (Put). The value keeps what the last borrower left in it.
func (p *Pool[T]) Get() (v *T, ticket int) {
	for i := range p.slot {
		s := &p.slot[i]
		if !s.busy.Load() && s.busy.CompareAndSwap(false, true) {
			if s.v == nil {
				s.v = new(T)
			}

			return s.v, i
		}
	}

	return new(T), -1
}

// Put gives back the value of ticket; the caller must not use it after.
func (p *Pool[T]) Put(ticket int) {
	if ticket >= 0 {
		p.slot[ticket].busy.Store(false)
	}
}
