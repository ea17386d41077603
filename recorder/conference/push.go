package conference

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/transport/v4/packetio"
)

// pushBufferLimit bounds what a PushBuffer holds, as Pion bounds its own
// buffers of an SRTP stream (1 MB).
const pushBufferLimit = 1000 * 1000

// The states of a PushBuffer.
const (
	pushIdle     = iota // pushing, no packet being handed over
	pushBusy            // a packet is being handed over, or a tick runs (Between), or Push has not been called yet
	pushStopping        // stopped while busy: the holder of busy ends the buffer
	pushStopped         // ended: end was called (or will be, by the holder that saw pushStopping)
)

// PushBuffer is the buffer of one SRTP or SRTCP stream of a Pion
// connection (made by PushBuffers, its SettingEngine.BufferFactory) that can
// hand every packet over on the goroutine that writes it, srtp's session
// goroutine, instead of holding it for a reader goroutine.
//
// Until Push is called it is a packetio.Buffer: Write holds the packet and
// Read waits for one. Push first hands over what it holds, then every packet
// written: Write makes the packet readable (Read returns it) and calls
// Push's next, which reads it back through Pion (its track or receiver, so
// that the interceptors and the payload type check see every packet as
// before) and hands it on. No lock is taken and nothing allocated per
// packet: a state word (idle, busy, stopping, stopped) taken by
// compare-and-swap keeps one hand-over at a time. A packet written while
// another goroutine is busy (Between, the hand-over of what was held, or
// another writer: srtp's goroutine and the UDP mux's reader while whip's
// direct audio takes a stream over) is held, and whoever ends a hand-over
// first hands on what was held, in order. Stoppers never wait: the holder of the busy state finishes and
// calls end.
type PushBuffer struct {
	state   atomic.Int32
	pending atomic.Int32     // packets held in held
	held    *packetio.Buffer // packets not handed over yet
	cur     []byte           // the packet being handed over: the holder of busy only
	next    func() bool      // set by Push
	end     func()           // set by Push
	count   func(pkt []byte) // SetCount's: sees every packet Read returns
}

// SetCount makes Read call count with each packet it returns, on the
// reading goroutine: the stream's receive statistics (whip's receiver
// reports), which then need no interceptor reading the stream through
// Pion's track. Call it before the buffer is read.
func (p *PushBuffer) SetCount(count func(pkt []byte)) { p.count = count }

// Counted reports whether SetCount gave the buffer a count.
func (p *PushBuffer) Counted() bool { return p.count != nil }

// NewPushBuffer returns a buffer that holds packets until Push.
func NewPushBuffer() *PushBuffer {
	p := &PushBuffer{held: packetio.NewBuffer()}
	p.held.SetLimitSize(pushBufferLimit)
	p.state.Store(pushBusy) // taken over by Push
	return p
}

// Write implements io.Writer for srtp: it hands b over (see PushBuffer), or
// holds a copy when another goroutine is handing one over or Push was not
// called yet. Safe from several goroutines (srtp's session goroutine, the
// UDP mux's reader); b is not kept.
func (p *PushBuffer) Write(b []byte) (int, error) {
	if p.state.CompareAndSwap(pushIdle, pushBusy) {
		if p.pending.Load() == 0 {
			p.handOver(b)
		} else if _, err := p.hold(b); err != nil {
			p.release()
			return 0, err
		}
		p.release()
		return len(b), nil
	}
	n, err := p.hold(b)
	if err == nil && p.state.CompareAndSwap(pushIdle, pushBusy) {
		p.release() // the holder finished before it saw this packet: hand it on
	}
	return n, err
}

// hold keeps a copy of b for later. A full buffer drops it, as Pion's does.
func (p *PushBuffer) hold(b []byte) (int, error) {
	n, err := p.held.Write(b)
	switch {
	case err == nil:
		p.pending.Add(1)
	case errors.Is(err, packetio.ErrFull):
		return len(b), nil
	}
	return n, err
}

// Read implements io.Reader: the packet being handed over, if any, else one
// held (waiting for one until Push).
func (p *PushBuffer) Read(b []byte) (int, error) {
	if c := p.cur; c != nil {
		p.cur = nil
		if len(c) > len(b) {
			return 0, io.ErrShortBuffer
		}
		n := copy(b, c)
		if p.count != nil {
			p.count(b[:n])
		}
		return n, nil
	}
	n, err := p.held.Read(b)
	if err == nil || errors.Is(err, io.ErrShortBuffer) {
		p.pending.Add(-1)
	}
	if err == nil && p.count != nil {
		p.count(b[:n])
	}
	return n, err
}

// current returns the payload type of the packet being handed over; false
// when none is (Read would read a held one). The holder of busy only.
func (p *PushBuffer) current() (pt uint8, ok bool) {
	if len(p.cur) < 2 {
		return 0, false
	}
	return p.cur[1] & 0x7f, true
}

// SetReadDeadline makes a Read that waits for a held packet return a
// timeout at t (for the readers before Push).
func (p *PushBuffer) SetReadDeadline(t time.Time) error { return p.held.SetReadDeadline(t) }

// Close implements io.Closer for srtp (the stream closed): the buffer
// stops, and held packets can still be read, then io.EOF.
func (p *PushBuffer) Close() error {
	p.Stop()
	return p.held.Close()
}

// Push hands over what the buffer holds on the caller's goroutine, then
// every packet written on the writer's: next reads one packet (Read) and
// hands it on; it reports false when the stream cannot be read any more,
// which stops the buffer. end is called once, on a goroutine of its own,
// when the buffer stopped (Stop, Close, next), after the last next returned.
// Call Push once.
func (p *PushBuffer) Push(next func() bool, end func()) {
	p.next, p.end = next, end
	// The busy state the buffer started in is the caller's. What it
	// holds is handed over even if it stopped meanwhile (its stream
	// closed before this): it came before the stop.
	for p.pending.Load() > 0 {
		if !p.next() {
			p.finish()
			return
		}
	}
	p.release()
}

// Between runs fn if no packet is being handed over and the buffer has not
// stopped, and reports whether it ran: fn and next never run at once. A
// packet written meanwhile is handed over after fn.
func (p *PushBuffer) Between(fn func()) bool {
	if !p.state.CompareAndSwap(pushIdle, pushBusy) {
		return false
	}
	fn()
	p.release()
	return true
}

// Stop stops the buffer: no packet is handed over once the one in progress,
// if any, is, and end is called. It never waits. Safe from any goroutine;
// idempotent.
func (p *PushBuffer) Stop() {
	for {
		switch p.state.Load() {
		case pushIdle:
			if p.state.CompareAndSwap(pushIdle, pushStopped) {
				go p.end()
				return
			}
		case pushBusy:
			if p.state.CompareAndSwap(pushBusy, pushStopping) {
				return // the holder ends it
			}
		default:
			return
		}
	}
}

// Stopped reports whether the buffer stopped.
func (p *PushBuffer) Stopped() bool { return p.state.Load() >= pushStopping }

// handOver hands b over through next; the holder of busy only. Pion may
// return a packet it read before (the one it peeked at to learn the
// track's payload type) first: next is then called again.
func (p *PushBuffer) handOver(b []byte) {
	p.cur = b
	for p.cur != nil {
		if !p.next() {
			p.cur = nil
			p.finish()
			return
		}
	}
}

// release ends the holder's turn: it hands over what was held meanwhile,
// then gives the busy state back (or ends the buffer, if it was stopped).
func (p *PushBuffer) release() {
	for {
		for p.pending.Load() > 0 && p.state.Load() == pushBusy {
			if !p.next() {
				p.finish()
				return
			}
		}
		if !p.state.CompareAndSwap(pushBusy, pushIdle) {
			p.finish() // stopping (or stopped by finish)
			return
		}
		// A packet held after the last check and before the state was
		// given back is handed over by its writer, unless it saw the
		// state still busy: then here.
		if p.pending.Load() == 0 || !p.state.CompareAndSwap(pushIdle, pushBusy) {
			return
		}
	}
}

// finish ends the buffer; the holder of busy only, once.
func (p *PushBuffer) finish() {
	if p.state.Swap(pushStopped) != pushStopped {
		go p.end()
	}
}

// PushBuffers makes the PushBuffers of one Pion connection (its
// SettingEngine.BufferFactory) and finds them by SSRC. Safe for concurrent
// use; a lock is taken only when a stream opens or an SRTCP stream is
// looked up: RTP looks up without one (the UDP mux's reader does, for each
// packet it hands over itself: whip's direct audio).
type PushBuffers struct {
	mu   sync.Mutex
	rtp  atomic.Pointer[map[uint32]*PushBuffer] // copied on write, under mu
	rtcp map[uint32]*PushBuffer
}

// New makes the buffer of a stream; it is a SettingEngine.BufferFactory.
func (bs *PushBuffers) New(t packetio.BufferPacketType, ssrc uint32) io.ReadWriteCloser {
	b := NewPushBuffer()
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if t == packetio.RTCPBufferPacket {
		if bs.rtcp == nil {
			bs.rtcp = map[uint32]*PushBuffer{}
		}
		bs.rtcp[ssrc] = b
		return b
	}
	m := map[uint32]*PushBuffer{ssrc: b}
	if old := bs.rtp.Load(); old != nil {
		for s, o := range *old {
			if s != ssrc {
				m[s] = o
			}
		}
	}
	bs.rtp.Store(&m)
	return b
}

// RTP returns the buffer of the SRTP stream of ssrc, nil if none opened. It
// takes no lock and allocates nothing.
func (bs *PushBuffers) RTP(ssrc uint32) *PushBuffer {
	if m := bs.rtp.Load(); m != nil {
		return (*m)[ssrc]
	}
	return nil
}

// RTCP returns the buffer of the SRTCP stream of ssrc, nil if none opened.
func (bs *PushBuffers) RTCP(ssrc uint32) *PushBuffer {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	return bs.rtcp[ssrc]
}
