package whip

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtcrec/recorder/recorder/conference"
)

// Receipts keeps when the UDP mux's socket received each RTP packet (the
// kernel's receive timestamp, SO_TIMESTAMPNS), by connection, so that a track's
// reader that runs seconds behind its socket (a recorder starved of CPU) still
// knows when each packet it reads arrived: the mix places audio by arrival
// where it has nothing better, and a reader's lag read as arrival time looks
// like a sender's clock running slow (issue 10, case 5). Give the same
// Receipts to Settings (the mux records) and Options (the endpoint's tracks
// look up). Without the mux nothing is recorded and tracks read at their own
// time.
type Receipts struct {
	mu    sync.Mutex
	conns map[string]*arrivals // by the connection's local ICE ufrag
}

// NewReceipts returns an empty Receipts.
func NewReceipts() *Receipts { return &Receipts{conns: map[string]*arrivals{}} }

// add returns ufrag's table, made on its first connection (the mux's
// GetConn; every socket's connection of one ufrag shares it).
func (r *Receipts) add(ufrag string) *arrivals {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.conns[ufrag]
	if a == nil {
		a = &arrivals{}
		r.conns[ufrag] = a
	}
	return a
}

// remove forgets ufrag's table (its connections closed).
func (r *Receipts) remove(ufrag string) {
	r.mu.Lock()
	delete(r.conns, ufrag)
	r.mu.Unlock()
}

// lookup returns the receipts of the connection with local ICE ufrag, nil
// if the mux has none (the connection is not on the mux).
func (r *Receipts) lookup(ufrag string) *arrivals {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns[ufrag]
}

// arrivalSSRCs is how many SSRCs of a connection get their packets' arrivals
// kept (the first to come): a WHIP publisher sends an audio and a video
// stream; a third (video retransmissions) is read at its reader's time.
const arrivalSSRCs = 2

// arrivalSlots is how many of an SSRC's newest packets have their arrival
// kept: 10.24 s of 20 ms audio packets (4 KB per SSRC). A reader further
// behind than that reads at its own time. Case 5 (a recorder starved of CPU,
// issue 10) showed readers 7–9 s behind their sockets at shutdown; 256
// slots (5.1 s) were too few for them.
const arrivalSlots = 512

// arrivals is one connection's receive times (conference.Arrivals): written
// by the mux's socket reader, read by the tracks' readers and the stop's
// drain, without a lock. Each SSRC's table is allocated when its first
// packet comes (once per stream, not per packet).
type arrivals struct {
	tabs [arrivalSSRCs]atomic.Pointer[arrivalTable]
}

// arrivalTable holds the receipts of one SSRC's packets: slot seq mod
// arrivalSlots holds, in one word, seq<<48 | the socket's drop count when
// the packet was queued, low dropBits bits, <<usBits | the receive time in
// microseconds since the Unix epoch, low usBits bits (19 hours: restored
// near the reader's clock, and only within the hour).
type arrivalTable struct {
	ssrc  uint32
	slots [arrivalSlots]atomic.Uint64
}

const (
	usBits   = 36
	dropBits = 12
	usMask   = 1<<usBits - 1
	dropMask = 1<<dropBits - 1
)

// note records the receive time at (Unix ns) and the socket's drop count
// drops (datagramConn.Dropped) of datagram d if it is an RTP packet (RFC
// 7983: first byte 128–191; RFC 5761: not RTCP, whose packet types 192–223
// stand where RTP's marker and payload type do). The mux's socket reader
// only (one writer per connection at a time: the socket ICE selected); it
// allocates only for an SSRC's first packet.
func (a *arrivals) note(d []byte, at int64, drops uint32) {
	if len(d) < 12 || d[0] < 128 || d[0] > 191 || d[1] >= 192 && d[1] <= 223 || at <= 0 {
		return
	}
	ssrc := binary.BigEndian.Uint32(d[8:12])
	seq := binary.BigEndian.Uint16(d[2:4])
	for i := range a.tabs {
		t := a.tabs[i].Load()
		if t == nil {
			t = &arrivalTable{ssrc: ssrc}
			if !a.tabs[i].CompareAndSwap(nil, t) {
				t = a.tabs[i].Load()
			}
		}
		if t.ssrc == ssrc {
			us := uint64(at/int64(time.Microsecond)) & usMask
			t.slots[seq%arrivalSlots].Store(uint64(seq)<<48 | uint64(drops&dropMask)<<usBits | us)
			return
		}
	}
}

// slot returns the receipt of the packet with ssrc and seq (arrivalTable),
// if it is among the newest arrivalSlots of its SSRC.
func (a *arrivals) slot(ssrc uint32, seq uint16) (uint64, bool) {
	for i := range a.tabs {
		if t := a.tabs[i].Load(); t != nil && t.ssrc == ssrc {
			v := t.slots[seq%arrivalSlots].Load()
			return v, v != 0 && uint16(v>>48) == seq
		}
	}
	return 0, false
}

// Arrival returns when the packet with ssrc and seq was received, if it is
// among the newest arrivalSlots of its SSRC; the receive time is restored
// as the nearest to now (never later). Any goroutine; it allocates nothing.
func (a *arrivals) Arrival(ssrc uint32, seq uint16) (time.Time, bool) {
	v, ok := a.slot(ssrc, seq)
	if !ok {
		return time.Time{}, false
	}
	now := uint64(time.Now().UnixMicro())
	back := (now - v&usMask) & usMask // how long ago, modulo 2^usBits µs
	if back > uint64(time.Hour/time.Microsecond) {
		return time.Time{}, false // the clock was set back (or a stale slot): not known
	}
	return time.UnixMicro(int64(now - back)), true
}

// DroppedBetween returns how many datagrams, at least, the kernel dropped
// from the socket's full receive queue between receiving the packets with
// ssrc and sequence numbers a and b (a first), by the drop counts they were
// queued with: the count is the socket's, of any sender, modulo 2^dropBits
// (a multiple of 4096 more is not seen). False if either is not among its
// SSRC's newest arrivalSlots. Any goroutine; it allocates nothing.
func (a *arrivals) DroppedBetween(ssrc uint32, first, second uint16) (int, bool) {
	v, ok := a.slot(ssrc, first)
	w, ok2 := a.slot(ssrc, second)
	if !ok || !ok2 {
		return 0, false
	}
	return int((w>>usBits&dropMask - v>>usBits&dropMask) & dropMask), true
}

var _ conference.Arrivals = (*arrivals)(nil)

// localUfrag returns pc's local ICE username fragment: the key of its
// connections on the UDP mux.
func localUfrag(pc *webrtc.PeerConnection) (string, bool) {
	p, err := pc.SCTP().Transport().ICETransport().GetLocalParameters()
	if err != nil || p.UsernameFragment == "" {
		return "", false
	}
	return p.UsernameFragment, true
}
