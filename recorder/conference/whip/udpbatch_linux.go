//go:build linux

package whip

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchSize is how many datagrams one recvmmsg call takes at most.
const batchSize = 32

// batchBuf is the size of one datagram's buffer: WebRTC keeps its UDP
// payloads below the path MTU (about 1200–1500 bytes); a longer datagram is
// dropped (MSG_TRUNC), as a full-size read buffer would not have it either.
const batchBuf = 2048

// mmsghdr is Linux's struct mmsghdr (sys/socket.h).
type mmsghdr struct {
	hdr syscall.Msghdr
	len uint32
	_   [4]byte
}

// batchConn is the UDP mux's socket read with recvmmsg(2): one system call
// takes every datagram queued (up to batchSize), and ReadDatagram hands
// them out one by one without allocating or copying. It has one reader, the
// mux socket's goroutine (udpmux.go); its other methods are the socket's.
type batchConn struct {
	*net.UDPConn
	rc    syscall.RawConn
	hdrs  [batchSize]mmsghdr
	iovs  [batchSize]syscall.Iovec
	names [batchSize]syscall.RawSockaddrInet6 // large enough for IPv4 too
	oobs  [batchSize][oobLen]byte             // each datagram's control messages: its receive time and drop count
	bufs  [batchSize][batchBuf]byte
	at    int64                 // the receive time of the datagram handed out last (Unix ns; 0: not known)
	drops uint32                // the socket's drop count when it was queued (SO_RXQ_OVFL)
	n     int                   // datagrams in the batch
	next  int                   // the next one to hand out
	recv  func(fd uintptr) bool // b.recvmmsg
	got   int                   // recvmmsg's result
	serr  error                 // recvmmsg's error
}

// oobLen is the control buffer of one datagram: room for an SCM_TIMESTAMPNS
// message (a struct timespec: 32 bytes on 64-bit Linux, 20 on 32-bit) and an
// SO_RXQ_OVFL one (a 32-bit count: 24 bytes on 64-bit Linux, 16 on 32-bit).
const oobLen = 56

func newBatchConn(c *net.UDPConn) (datagramConn, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	// The kernel stamps each datagram as it receives it (SO_TIMESTAMPNS):
	// when it arrived, however late the socket is read (Receipts).
	// And it gives each datagram the count of datagrams it dropped so far
	// for a full receive queue (SO_RXQ_OVFL; absent while none): two
	// packets whose counts differ straddle a drop (the stop's drain does
	// not wait for a packet the kernel may have dropped). A kernel without
	// it leaves the count at 0: no drop is ever seen.
	if unix.CmsgSpace(int(unsafe.Sizeof(unix.Timespec{})))+unix.CmsgSpace(4) > oobLen {
		return nil, errors.New("whip: no room for a receive timestamp and a drop count")
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1)
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}
	b := &batchConn{UDPConn: c, rc: rc}
	b.recv = b.recvmmsg
	for i := range b.hdrs {
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(batchBuf)
		b.hdrs[i].hdr.Iov = &b.iovs[i]
		b.hdrs[i].hdr.Iovlen = 1
		b.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		b.hdrs[i].hdr.Control = &b.oobs[i][0]
	}
	return b, nil
}

// fill reads the next batch, waiting (in the runtime's poller) for one.
func (b *batchConn) fill() error {
	for i := range b.hdrs {
		b.hdrs[i].hdr.Namelen = uint32(unsafe.Sizeof(b.names[i]))
		b.hdrs[i].hdr.SetControllen(oobLen)
		b.hdrs[i].hdr.Flags = 0
		b.hdrs[i].len = 0
	}
	b.got, b.serr = 0, nil
	err := b.rc.Read(b.recv)
	if err == nil {
		err = b.serr
	}
	if err != nil {
		return err
	}
	b.n, b.next = b.got, 0
	return nil
}

// recvmmsg is fill's syscall.RawConn.Read callback (a method value made
// once, so that a read allocates nothing): false asks the poller to wait.
//
// The call never blocks (MSG_DONTWAIT: it takes what the socket holds), so
// it is a raw one, which does not tell the scheduler that the goroutine may
// block. A Syscall6 does, and when the process comes out of idle that
// wakes the runtime's sysmon thread, which then looks every 20 µs for a P
// to take back from a blocked call: on one core at 100 streams, with the
// socket read ~1 600 times a second, sysmon ran 2 500 times a second and
// took a quarter of the recorder's CPU (BENCHMARKS.md, session 21).
func (b *batchConn) recvmmsg(fd uintptr) bool {
	r, _, e := syscall.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), batchSize, syscall.MSG_DONTWAIT, 0, 0)
	if e == syscall.EAGAIN || e == syscall.EINTR {
		return false
	}
	if e != 0 {
		b.serr = e
	}
	b.got = int(r)
	return true
}

// ReadDatagram returns the next datagram of the batch (valid until the next
// read), reading a new batch when it is used up.
func (b *batchConn) ReadDatagram() ([]byte, netip.AddrPort, error) {
	for {
		for b.next < b.n {
			i := b.next
			b.next++
			h := &b.hdrs[i]
			if h.hdr.Flags&syscall.MSG_TRUNC != 0 {
				continue
			}
			addr, ok := sockaddr(&b.names[i])
			if !ok {
				continue
			}
			b.at, b.drops = controlMessages(b.oobs[i][:h.hdr.Controllen])
			return b.bufs[i][:h.len], addr, nil
		}
		if err := b.fill(); err != nil {
			return nil, netip.AddrPort{}, err
		}
	}
}

// Arrived returns the kernel's receive time of the datagram ReadDatagram
// returned last (Unix ns), 0 if it gave none.
func (b *batchConn) Arrived() int64 { return b.at }

// Dropped returns the socket's count of datagrams the kernel dropped for a
// full receive queue before it queued the datagram ReadDatagram returned
// last (SO_RXQ_OVFL; modulo 2^32).
func (b *batchConn) Dropped() uint32 { return b.drops }

// Buffered returns how many datagrams of the batch are left to read.
func (b *batchConn) Buffered() int { return b.n - b.next }

// controlMessages reads a datagram's control messages: its SCM_TIMESTAMPNS
// receive time (Unix ns; 0: none) and its SO_RXQ_OVFL drop count (0: none:
// the kernel sends it once the count is not 0). It allocates nothing.
func controlMessages(oob []byte) (at int64, drops uint32) {
	h := int(unsafe.Sizeof(unix.Cmsghdr{}))
	for len(oob) >= h {
		c := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		n := int(c.Len)
		if n < h || n > len(oob) {
			break
		}
		switch {
		case c.Level != unix.SOL_SOCKET:
		case c.Type == unix.SCM_TIMESTAMPNS && n >= unix.CmsgLen(int(unsafe.Sizeof(unix.Timespec{}))):
			at = (*unix.Timespec)(unsafe.Pointer(&oob[unix.CmsgLen(0)])).Nano()
		case c.Type == unix.SO_RXQ_OVFL && n >= unix.CmsgLen(4):
			drops = *(*uint32)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))
		}
		oob = oob[min(unix.CmsgSpace(n-unix.CmsgLen(0)), len(oob)):]
	}
	return at, drops
}

// ReadFromAddrPort copies the next datagram into p.
func (b *batchConn) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	d, addr, err := b.ReadDatagram()
	return copy(p, d), addr, err
}

// ReadFrom is ReadFromAddrPort for net.PacketConn (it allocates the address).
func (b *batchConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, a, err := b.ReadFromAddrPort(p)
	if err != nil {
		return 0, nil, err
	}
	return n, net.UDPAddrFromAddrPort(a), nil
}

// WriteToAddrPort writes on the socket.
func (b *batchConn) WriteToAddrPort(p []byte, a netip.AddrPort) (int, error) {
	return b.UDPConn.WriteToUDPAddrPort(p, a)
}

// sockaddr reads an IPv4 or IPv6 socket address.
func sockaddr(sa *syscall.RawSockaddrInet6) (netip.AddrPort, bool) {
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
	switch sa.Family {
	case syscall.AF_INET:
		sa4 := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port), true
	case syscall.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port), true
	}
	return netip.AddrPort{}, false
}

// setReadBuffer asks for n bytes of receive buffer for c: SO_RCVBUFFORCE
// first (root or CAP_NET_ADMIN: past net.core.rmem_max), else SO_RCVBUF
// (capped at rmem_max). It returns what the socket got (the kernel reports
// twice what it was asked; halved here), 0 if not known.
func setReadBuffer(c *net.UDPConn, n int) int {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	got := 0
	_ = rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n) != nil {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, n)
		}
		if v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF); err == nil {
			got = v / 2
		}
	})
	return got
}
