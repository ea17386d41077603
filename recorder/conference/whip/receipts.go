package whip

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
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

// lookup returns the arrival lookup of the connection with local ICE ufrag,
// nil if the mux has none (the connection is not on the mux).
func (r *Receipts) lookup(ufrag string) func(ssrc uint32, seq uint16) (time.Time, bool) {
	r.mu.Lock()
	a := r.conns[ufrag]
	r.mu.Unlock()
	if a == nil {
		return nil
	}
	return a.arrival
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

// arrivals is one connection's receive times: written by the mux's socket
// reader, read by the tracks' readers, without a lock. Each SSRC's table is
// allocated when its first packet comes (once per stream, not per packet).
type arrivals struct {
	tabs [arrivalSSRCs]atomic.Pointer[arrivalTable]
}

// arrivalTable holds the receive times of one SSRC's packets: slot seq mod
// arrivalSlots holds seq<<48 | the receive time in microseconds since the
// Unix epoch, low 48 bits (8.9 years: restored near the reader's clock).
type arrivalTable struct {
	ssrc  uint32
	slots [arrivalSlots]atomic.Uint64
}

const usBits = 48

// note records the receive time at (Unix ns) of datagram d if it is an RTP
// packet (RFC 7983: first byte 128–191; RFC 5761: not RTCP, whose packet
// types 192–223 stand where RTP's marker and payload type do). The mux's
// socket reader only (one writer per connection at a time: the socket ICE
// selected); it allocates only for an SSRC's first packet.
func (a *arrivals) note(d []byte, at int64) {
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
			us := uint64(at/int64(time.Microsecond)) & (1<<usBits - 1)
			t.slots[seq%arrivalSlots].Store(uint64(seq)<<usBits | us)
			return
		}
	}
}

// arrival returns when the packet with ssrc and seq was received, if it is
// among the newest arrivalSlots of its SSRC; the receive time is restored
// as the nearest to now (never later). Any goroutine; it allocates nothing.
func (a *arrivals) arrival(ssrc uint32, seq uint16) (time.Time, bool) {
	for i := range a.tabs {
		t := a.tabs[i].Load()
		if t == nil || t.ssrc != ssrc {
			continue
		}
		v := t.slots[seq%arrivalSlots].Load()
		if v == 0 || uint16(v>>usBits) != seq {
			return time.Time{}, false
		}
		now := uint64(time.Now().UnixMicro())
		back := (now - v) & (1<<usBits - 1) // how long ago, modulo 2^48 µs
		if back > uint64(time.Hour/time.Microsecond) {
			return time.Time{}, false // the clock was set back (or a stale slot): not known
		}
		return time.UnixMicro(int64(now - back)), true
	}
	return time.Time{}, false
}

// localUfrag returns pc's local ICE username fragment: the key of its
// connections on the UDP mux.
func localUfrag(pc *webrtc.PeerConnection) (string, bool) {
	p, err := pc.SCTP().Transport().ICETransport().GetLocalParameters()
	if err != nil || p.UsernameFragment == "" {
		return "", false
	}
	return p.UsernameFragment, true
}
