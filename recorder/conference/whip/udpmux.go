package whip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/stun/v4"

	"github.com/rtcrec/recorder/recorder/conference"
)

// udpMux is the WHIP endpoint's ice.UDPMux: one UDP socket on each address
// it listens on, shared by every PeerConnection, each read by one goroutine
// in recvmmsg batches (udpbatch_linux.go). It replaces pion/ice's
// UDPMuxDefault, which copies every datagram into an 8 KiB buffer to queue
// it (30 KB per stream held at N=50: issue 16), takes two locks per datagram
// and runs, for every connection and address, a goroutine that only waits
// for its close. Here:
//   - a datagram is copied into a pooled buffer of its size (smallPacket
//     bytes for audio, RTCP and STUN; batchBuf for video and DTLS) and queued
//     on its connection's ring (muxRing slots) without a lock;
//   - a STUN request goes to the connection of its USERNAME's ufrag; any
//     other datagram is routed by its source address through a copy-on-write
//     map that the reader only loads; an address is added when a connection
//     first writes to it (as pion does: ICE answers a peer's checks before
//     any media comes);
//   - a connection's Close removes it at once (no goroutine waits for it).
//
// A connection whose ring is full (its reader, ICE's candidate goroutine,
// has not run for muxRing datagrams: a process starved of CPU for seconds)
// loses the datagram, counted in MuxQueueDrops; the kernel's receive buffer
// (udpMuxReadBuffer) is where a stalled process's backlog waits instead.
type udpMux struct {
	socks    []*muxSocket
	receipts *Receipts // nil: receive times are not kept

	mu         sync.Mutex // conns, every socket's routes (writers), muxConn.addrs, nextWorker
	conns      map[muxKey]*muxConn
	closed     bool
	nextWorker int            // the hand-over worker of the next direct-audio connection
	done       chan struct{}  // closed by Close: the hand-over workers stop
	wg         sync.WaitGroup // the sockets' readers and the hand-over workers
}

// muxKey names a connection: a PeerConnection's local ufrag on one socket.
type muxKey struct {
	ufrag string
	sock  int
}

// datagramConn is a mux socket: read a datagram at a time (valid until the
// next read), written to by address; Arrived is the receive time (Unix ns)
// of the datagram read last, 0 if not known; Dropped, the socket's count of
// datagrams the kernel dropped (its receive queue full) before it queued
// that one, 0 if not known; Buffered, how many datagrams the next reads
// return without a system call (the rest of a recvmmsg batch).
type datagramConn interface {
	ReadDatagram() ([]byte, netip.AddrPort, error)
	Arrived() int64
	Dropped() uint32
	Buffered() int
	WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error)
	LocalAddr() net.Addr
	Close() error
}

// muxSocket is one of the mux's sockets and its routes.
type muxSocket struct {
	mux    *udpMux
	index  int
	conn   datagramConn
	addr   *net.UDPAddr
	routes atomic.Pointer[map[netip.AddrPort]*muxConn] // written under mux.mu
	plain  [batchBuf]byte                              // a datagram decrypted here (directConn.take): the reader's
	queues []*handQueue                                // to each hand-over worker (handover.go); none: the reader hands over (tests)
}

// muxRing is how many datagrams a connection queues for its reader: 5 s of
// an Opus stream (50 a second), about 1 s of a 2.5 Mbit/s video. The ring
// costs 8 bytes a slot (2 KiB a connection); the datagrams in it, their
// pooled buffers.
const muxRing = 256

// smallPacket is the buffer size for a datagram of an audio packet (Opus at
// up to 128 kbit/s in 20 ms, with its RTP header, extensions and SRTP tag),
// an RTCP compound or a STUN message; a longer one takes batchBuf bytes.
const smallPacket = 512

// muxPacket is a queued datagram (a connection's ring), or a decrypted
// packet of direct audio (a hand-over queue: handover.go).
type muxPacket struct {
	from netip.AddrPort
	n    int
	buf  []byte
	dst  *conference.PushBuffer // the packet's track (a hand-over queue's)
}

var (
	smallPackets = sync.Pool{New: func() any { return &muxPacket{buf: make([]byte, smallPacket)} }}
	largePackets = sync.Pool{New: func() any { return &muxPacket{buf: make([]byte, batchBuf)} }}
)

func getPacket(n int) *muxPacket {
	if n <= smallPacket {
		return smallPackets.Get().(*muxPacket)
	}
	return largePackets.Get().(*muxPacket)
}

func putPacket(p *muxPacket) {
	if len(p.buf) == smallPacket {
		smallPackets.Put(p)
	} else {
		largePackets.Put(p)
	}
}

// muxQueueDrops counts datagrams dropped for a full connection ring, across
// every mux of the process.
var muxQueueDrops atomic.Uint64

// MuxQueueDrops returns how many datagrams the UDP mux dropped because
// their connection's queue was full (a reader that did not run for muxRing
// datagrams), since the process started.
func MuxQueueDrops() uint64 { return muxQueueDrops.Load() }

// newMux starts reading conns; it keeps the RTP packets' receive times in
// receipts, if not nil. Direct audio's packets are handed over by that
// many workers (handover.go), through queues of slots packets (a power of
// two), or by the socket's reader if none (tests).
func newMux(conns []datagramConn, receipts *Receipts, workers, slots int) *udpMux {
	m := &udpMux{conns: map[muxKey]*muxConn{}, receipts: receipts, done: make(chan struct{})}
	ws, queues := newHandWorkers(workers, len(conns), slots)
	for i, c := range conns {
		s := &muxSocket{mux: m, index: i, conn: c, addr: udpAddrOf(c.LocalAddr()), queues: queues[i]}
		empty := map[netip.AddrPort]*muxConn{}
		s.routes.Store(&empty)
		m.socks = append(m.socks, s)
	}
	for _, s := range m.socks {
		m.wg.Add(1)
		go s.read()
	}
	for _, w := range ws {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			w.run(m.done)
		}()
	}
	return m
}

func udpAddrOf(a net.Addr) *net.UDPAddr {
	if u, ok := a.(*net.UDPAddr); ok {
		return u
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return &net.UDPAddr{}
	}
	return net.UDPAddrFromAddrPort(ap)
}

// GetListenAddresses returns the sockets' addresses: ICE's host candidates.
func (m *udpMux) GetListenAddresses() []net.Addr {
	addrs := make([]net.Addr, len(m.socks))
	for i, s := range m.socks {
		addrs[i] = s.addr
	}
	return addrs
}

var (
	errMuxAddress = errors.New("whip: the UDP mux does not listen on that address")
	errMuxTwice   = errors.New("whip: the UDP mux already has a connection for that ufrag and address")
)

// GetConn returns the connection of ufrag on the socket listening on addr.
func (m *udpMux) GetConn(ufrag string, addr net.Addr) (net.PacketConn, error) {
	return m.getConn(ufrag, addr, nil)
}

// getConn is GetConn; the connection's socket reader decrypts and hands
// over audio's packets itself when audio is not nil (directaudio.go).
func (m *udpMux) getConn(ufrag string, addr net.Addr, audio *directAudio) (net.PacketConn, error) {
	want := addr.String()
	for _, s := range m.socks {
		if s.addr.String() != want {
			continue
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.closed {
			return nil, io.ErrClosedPipe
		}
		k := muxKey{ufrag, s.index}
		if _, ok := m.conns[k]; ok {
			return nil, errMuxTwice
		}
		c := &muxConn{sock: s, key: k, notify: make(chan struct{}, 1), closed: make(chan struct{})}
		if m.receipts != nil {
			c.arr = m.receipts.add(ufrag)
		}
		if audio != nil {
			c.direct = &directConn{audio: audio, done: m.done}
			if len(s.queues) > 0 {
				c.direct.queue = s.queues[m.nextWorker%len(s.queues)]
				m.nextWorker++
			}
		}
		m.conns[k] = c
		return c, nil
	}
	return nil, fmt.Errorf("%w: %s", errMuxAddress, want)
}

// RemoveConnByUfrag closes ufrag's connections.
func (m *udpMux) RemoveConnByUfrag(ufrag string) {
	m.mu.Lock()
	var cs []*muxConn
	for k, c := range m.conns {
		if k.ufrag == ufrag {
			cs = append(cs, c)
		}
	}
	m.mu.Unlock()
	if m.receipts != nil {
		m.receipts.remove(ufrag)
	}
	for _, c := range cs {
		_ = c.Close()
	}
}

// Close closes the sockets and every connection.
func (m *udpMux) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	cs := make([]*muxConn, 0, len(m.conns))
	for _, c := range m.conns {
		cs = append(cs, c)
	}
	m.mu.Unlock()
	var err error
	for _, s := range m.socks {
		err = errors.Join(err, s.conn.Close())
	}
	for _, c := range cs {
		_ = c.Close()
	}
	close(m.done)
	m.wg.Wait()
	return err
}

// read routes the socket's datagrams to their connections until the socket
// closes.
func (s *muxSocket) read() {
	defer s.mux.wg.Done()
	for {
		if s.conn.Buffered() == 0 {
			// The batch is read (the next read waits for the socket):
			// the hand-over workers take what it queued, woken once a
			// batch, not per packet.
			s.wakeWorkers()
		}
		d, from, err := s.conn.ReadDatagram()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			// An error of one datagram (ICMP unreachable reported on a
			// later read): keep reading; a closed socket ends.
			time.Sleep(time.Millisecond)
			continue
		}
		// A STUN request names its connection (USERNAME): it goes there
		// even from an address routed elsewhere (a port a closed
		// connection's peer used); anything else goes by its address.
		var c *muxConn
		if stun.IsMessage(d) {
			c = s.stunConn(d)
		}
		if c == nil {
			if c = (*s.routes.Load())[netip.AddrPortFrom(from.Addr().Unmap(), from.Port())]; c == nil {
				continue // not for any connection of ours
			}
		}
		if c.arr != nil {
			c.arr.note(d, s.conn.Arrived(), s.conn.Dropped())
		}
		if c.direct != nil && c.direct.take(d, s.plain[:]) {
			continue // decrypted and handed to its track, or queued for its worker
		}
		c.push(d, from)
	}
}

// wakeWorkers wakes the parked hand-over workers that the socket queued
// packets for.
func (s *muxSocket) wakeWorkers() {
	for _, q := range s.queues {
		if q.head.Load() != q.tail.Load() {
			q.worker.wakeUp()
		}
	}
}

// stunConn returns the connection a STUN message is for, by the first part
// of its USERNAME ("local:remote": our ufrag), or nil (a response, an
// indication, not ours). STUN comes a few times a second per connection
// at most (checks, consent), never with media.
func (s *muxSocket) stunConn(d []byte) *muxConn {
	ufrag := stunUfrag(d)
	if ufrag == nil {
		return nil
	}
	s.mux.mu.Lock()
	defer s.mux.mu.Unlock()
	return s.mux.conns[muxKey{string(ufrag), s.index}]
}

// stunUfrag returns the part before ':' of the USERNAME attribute of the
// STUN message d (RFC 8489 §14.3; RFC 8445 §7.2.2: "the receiver's ufrag:
// the sender's"), or nil when d has none or is malformed.
func stunUfrag(d []byte) []byte {
	const header, username = 20, 0x0006
	if len(d) < header {
		return nil
	}
	n := int(binary.BigEndian.Uint16(d[2:4]))
	if header+n > len(d) {
		return nil
	}
	for a := d[header : header+n]; len(a) >= 4; {
		typ, l := binary.BigEndian.Uint16(a[0:2]), int(binary.BigEndian.Uint16(a[2:4]))
		if 4+l > len(a) {
			return nil
		}
		if typ == username {
			v := a[4 : 4+l]
			if i := bytes.IndexByte(v, ':'); i >= 0 {
				v = v[:i]
			}
			return v
		}
		next := 4 + (l+3)&^3 // values are padded to 4 bytes
		if next > len(a) {
			return nil
		}
		a = a[next:]
	}
	return nil
}

// register routes datagrams from addr to c.
func (s *muxSocket) register(c *muxConn, addr netip.AddrPort) {
	m := s.mux
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conns[c.key] != c {
		return // closed
	}
	old := *s.routes.Load()
	routes := make(map[netip.AddrPort]*muxConn, len(old)+1)
	for a, o := range old {
		routes[a] = o
	}
	if prev := routes[addr]; prev != nil && prev != c {
		prev.addrs = removeAddr(prev.addrs, addr)
	}
	routes[addr] = c
	s.routes.Store(&routes)
	c.addrs = append(c.addrs, addr)
}

func removeAddr(addrs []netip.AddrPort, a netip.AddrPort) []netip.AddrPort {
	out := addrs[:0]
	for _, x := range addrs {
		if x != a {
			out = append(out, x)
		}
	}
	return out
}

// unregister forgets c and its routes.
func (s *muxSocket) unregister(c *muxConn) {
	m := s.mux
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conns[c.key] == c {
		delete(m.conns, c.key)
	}
	if len(c.addrs) == 0 {
		return
	}
	old := *s.routes.Load()
	routes := make(map[netip.AddrPort]*muxConn, len(old))
	for a, o := range old {
		if o != c {
			routes[a] = o
		}
	}
	s.routes.Store(&routes)
	c.addrs = nil
}

// muxConn is one PeerConnection's ICE connection on a mux socket: the
// socket's reader writes its datagrams into ring, and its one reader (the
// ICE candidate's goroutine) takes them out: a single-producer,
// single-consumer queue of atomics, with notify to wake a reader that
// waits.
type muxConn struct {
	sock *muxSocket
	key  muxKey

	ring    [muxRing]*muxPacket
	head    atomic.Uint32 // the next to read (the reader's)
	tail    atomic.Uint32 // the next to write (the socket reader's)
	waiting atomic.Bool
	notify  chan struct{}

	closeOnce sync.Once
	closed    chan struct{}

	addrs  []netip.AddrPort // the addresses routed here (under mux.mu)
	arr    *arrivals        // its RTP packets' receive times (Receipts); nil: not kept
	direct *directConn      // its audio decrypted by the socket's reader (Settings.DirectAudio); nil: all to ICE
}

// push queues a datagram (the socket reader's goroutine only).
func (c *muxConn) push(d []byte, from netip.AddrPort) {
	t := c.tail.Load()
	if t-c.head.Load() >= muxRing {
		muxQueueDrops.Add(1)
		return
	}
	p := getPacket(len(d))
	p.n = copy(p.buf, d)
	p.from = from
	c.ring[t%muxRing] = p
	c.tail.Store(t + 1)
	if c.waiting.Load() {
		select {
		case c.notify <- struct{}{}:
		default:
		}
	}
}

// ReadFromAddrPort returns the next datagram, waiting for one.
func (c *muxConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		h := c.head.Load()
		if h != c.tail.Load() {
			p := c.ring[h%muxRing]
			c.ring[h%muxRing] = nil
			c.head.Store(h + 1)
			var err error
			n := copy(b, p.buf[:p.n])
			if n < p.n {
				err = io.ErrShortBuffer
			}
			from := p.from
			putPacket(p)
			return n, from, err
		}
		// Empty: say so, then look again, so that a push between the two
		// either is seen here or sees waiting and notifies.
		c.waiting.Store(true)
		if c.head.Load() != c.tail.Load() {
			c.waiting.Store(false)
			continue
		}
		select {
		case <-c.notify:
			c.waiting.Store(false)
		case <-c.closed:
			c.waiting.Store(false)
			return 0, netip.AddrPort{}, io.EOF
		}
	}
}

// ReadFrom is ReadFromAddrPort for net.PacketConn (it allocates the address).
func (c *muxConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, a, err := c.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(a), nil
}

// WriteToAddrPort sends b to addr from the connection's socket, and routes
// addr's datagrams here from now on.
func (c *muxConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	select {
	case <-c.closed:
		return 0, io.ErrClosedPipe
	default:
	}
	key := netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	if (*c.sock.routes.Load())[key] != c {
		c.sock.register(c, key)
	}
	return c.sock.conn.WriteToAddrPort(b, addr)
}

// WriteTo is WriteToAddrPort for net.PacketConn.
func (c *muxConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	u, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, fmt.Errorf("whip: the UDP mux writes to UDP addresses, not %T", addr)
	}
	return c.WriteToAddrPort(b, u.AddrPort())
}

// Close stops the connection: its reader gets io.EOF, its datagrams go.
func (c *muxConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.sock.unregister(c)
	})
	return nil
}

// LocalAddr returns the socket's address.
func (c *muxConn) LocalAddr() net.Addr { return c.sock.addr }

// SetDeadline and the other deadlines are not kept (as in pion's mux: ICE
// closes the connection instead).
func (c *muxConn) SetDeadline(time.Time) error      { return nil }
func (c *muxConn) SetReadDeadline(time.Time) error  { return nil }
func (c *muxConn) SetWriteDeadline(time.Time) error { return nil }

var (
	_ ice.UDPMux               = (*udpMux)(nil)
	_ ice.AddrPortReaderWriter = (*muxConn)(nil)
	_ net.PacketConn           = (*muxConn)(nil)
)
