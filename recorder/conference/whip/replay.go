package whip

import (
	"encoding/binary"
	"io"

	"github.com/pion/transport/v4/packetio"
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

// Pion's path. pion/webrtc takes only a replay window's size for its SRTP
// contexts (SettingEngine.SetSRTPReplayProtectionWindow): srtp's own
// detector, whose 4096-bit mask shifted per packet was 3.2 % of the
// recorder's CPU with its mix at 200 streams (session 18). So the receive
// API turns srtp's detector off (ReceiveAPI.NewPeerConnection) and each SRTP
// stream's buffer decides instead (replayBuffer): srtp writes a packet to
// its stream's buffer once it authenticated, which is when srtp's detector
// would have accepted it (srtp checks a packet's index before it
// authenticates it and accepts it after), so the same replayRing over the
// same index drops the same packets. The index is srtp's: the rollover
// counter guessed as srtp guesses it (srtpIndex), from the same packets.

// srtpIndex guesses the SRTP packet index (ROC<<16 | SEQ) of a stream's
// packets as srtp does (srtpSSRCState.nextRolloverCount and
// updateRolloverCount, RFC 3711 §3.3.1 and Appendix A), from the packets
// that authenticated, in the order srtp decrypted them.
type srtpIndex struct {
	index   uint64 // the highest index seen
	started bool
}

// next returns the index of the packet with sequence number seq and how far
// past the highest it is (srtp's difference; 0 or less: not past it).
func (s *srtpIndex) next(seq uint16) (index uint64, diff int64) {
	const seqMax, median = 1 << 16, 1 << 15
	if !s.started {
		return uint64(seq), 0
	}
	roc := uint32(s.index >> 16)
	local, q := int32(s.index&(seqMax-1)), int32(seq)
	guess := roc
	d := q - local
	if s.index > median {
		switch {
		case local < median && q-local > median:
			guess, d = roc-1, q-local-seqMax
		case local >= median && local-median > q:
			guess, d = roc+1, q-local+seqMax
		}
	}
	return uint64(guess)<<16 | uint64(seq), int64(d)
}

// update takes the packet of seq, whose difference next gave.
func (s *srtpIndex) update(seq uint16, diff int64) {
	switch {
	case !s.started:
		s.index |= uint64(seq)
		s.started = true
	case diff > 0:
		s.index += uint64(diff)
	}
}

// replayBuffer is the buffer of one SRTP stream on Pion's path (see above):
// a conference.PushBuffer that drops a packet srtp's replay detector would
// have. Only srtp's session goroutine writes to it (direct audio writes to
// the PushBuffer itself, after its own context's detector).
type replayBuffer struct {
	*conference.PushBuffer
	seq  srtpIndex
	ring replayRing
}

// Write hands the decrypted packet b to the PushBuffer unless it is a
// replay, or older than the window, which srtp would have refused (and
// dropped). It takes no lock and allocates nothing.
func (r *replayBuffer) Write(b []byte) (int, error) {
	if len(b) < 4 {
		return r.PushBuffer.Write(b) // srtp decrypts no such packet
	}
	seq := binary.BigEndian.Uint16(b[2:4])
	index, diff := r.seq.next(seq)
	if !r.ring.check(index) {
		return len(b), nil
	}
	r.ring.accept(index)
	r.seq.update(seq, diff)
	return r.PushBuffer.Write(b)
}

// replayBuffers is a connection's SettingEngine.BufferFactory with srtp's
// replay detector off: bufs makes the buffers, and each SRTP stream's
// checks for replays (replayBuffer) and counts the packets read from it in
// rr's statistics (nil: none).
func replayBuffers(bufs *conference.PushBuffers, rr *rrInterceptor) func(packetio.BufferPacketType, uint32) io.ReadWriteCloser {
	return func(t packetio.BufferPacketType, ssrc uint32) io.ReadWriteCloser {
		b := bufs.New(t, ssrc)
		if t != packetio.RTPBufferPacket {
			return b
		}
		pb := b.(*conference.PushBuffer)
		if rr != nil {
			pb.SetCount(rr.counter(ssrc))
		}
		return &replayBuffer{PushBuffer: pb, ring: replayRing{max: 1<<48 - 1}}
	}
}
