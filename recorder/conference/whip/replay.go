package whip

import (
	"github.com/pion/transport/v4/replaydetector"

	"github.com/rtcrec/recorder/recorder/conference"
)

// replayRing is the SRTP replay detector of direct audio's contexts
// (directConn.take): the same decisions as srtp's own
// (replaydetector.New(window, 2^48-1) over the packet index ROC<<16|SEQ,
// RFC 3711 §3.3.2), with the window kept as a ring of bits indexed by the
// packet index modulo its size instead of a mask shifted at every newer
// packet. srtp's shift of its 4096-bit mask (conference.SRTPReplayWindow: 64
// words) for each packet was 2.6 % of the recorder's CPU with its mix (200
// streams, direct audio); here a packet one newer than the last clears one
// bit. No lock, no allocation per packet (CheckAccepter: srtp calls CheckSeq
// and Accept, not Check's closure).
//
// Its bits are in the struct, not behind a slice: the detector of a stream is
// touched once per packet, 20 ms apart, and its lines are cold by then (200
// streams' decoders ran meanwhile); a pointer to chase would be one more miss.
type replayRing struct {
	latest uint64
	max    uint64                    // the largest index
	bits   [replayWindow / 64]uint64 // bit i%replayWindow: index i in (latest-replayWindow, latest] was accepted
}

// replayWindow is the window in packets (conference.SRTPReplayWindow, a power
// of two that divides 2^16).
const replayWindow = conference.SRTPReplayWindow

// newReplayRing returns a detector of replayWindow packets for indexes up to
// max (max+1 a multiple of replayWindow).
func newReplayRing(max uint64) *replayRing {
	return &replayRing{max: max}
}

func (r *replayRing) bit(i uint64) (*uint64, uint64) {
	i &= replayWindow - 1
	return &r.bits[i/64], 1 << (i % 64)
}

func (r *replayRing) check(seq uint64) bool {
	if seq > r.max {
		return false
	}
	if seq <= r.latest {
		if r.latest >= replayWindow+seq {
			return false // older than the window
		}
		if w, b := r.bit(seq); *w&b != 0 {
			return false // a replay
		}
	}
	return true
}

// accept marks seq received and reports whether it is the newest, as
// srtp's detector does (which also says so for index 0).
func (r *replayRing) accept(seq uint64) bool {
	latest := seq == 0
	if seq > r.latest {
		if k := seq - r.latest; k >= replayWindow {
			clear(r.bits[:])
		} else {
			for i := r.latest + 1; i != seq+1; i++ {
				w, b := r.bit(i) // the index window places before this one: out of the window now
				*w &^= b
			}
		}
		r.latest, latest = seq, true
	}
	w, b := r.bit(seq)
	*w |= b
	return latest
}

// Check implements replaydetector.ReplayDetector.
func (r *replayRing) Check(seq uint64) (func() bool, bool) {
	if !r.check(seq) {
		return func() bool { return false }, false
	}
	return func() bool { return r.accept(seq) }, true
}

// CheckSeq implements replaydetector.CheckAccepter.
func (r *replayRing) CheckSeq(seq uint64) replaydetector.Token {
	if !r.check(seq) {
		return replaydetector.Rejected(seq)
	}
	return replaydetector.Passed(seq)
}

// Accept implements replaydetector.CheckAccepter.
func (r *replayRing) Accept(tok replaydetector.Token) bool {
	if !tok.Passed() {
		return false
	}
	return r.accept(tok.Seq())
}
