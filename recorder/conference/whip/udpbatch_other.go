//go:build !linux

package whip

import (
	"net"
	"net/netip"
	"time"
)

// plainConn is a mux socket read a datagram at a time where recvmmsg(2) is
// not available.
type plainConn struct {
	*net.UDPConn
	buf [batchBuf]byte
	at  int64 // when the last datagram was read (Unix ns)
}

// batchBuf is the largest datagram the mux reads.
const batchBuf = 2048

// newBatchConn is the socket itself, read one datagram at a time.
func newBatchConn(c *net.UDPConn) (datagramConn, error) { return &plainConn{UDPConn: c}, nil }

// ReadDatagram reads the next datagram (valid until the next read).
func (c *plainConn) ReadDatagram() ([]byte, netip.AddrPort, error) {
	n, a, err := c.ReadFromUDPAddrPort(c.buf[:])
	c.at = time.Now().UnixNano()
	return c.buf[:n], a, err
}

// Arrived returns when the last datagram was read (no kernel receive time
// here).
func (c *plainConn) Arrived() int64 { return c.at }

// Dropped returns 0: the kernel's drop count is not read here.
func (c *plainConn) Dropped() uint32 { return 0 }

// Buffered returns 0: each read is a system call.
func (c *plainConn) Buffered() int { return 0 }

// WriteToAddrPort writes on the socket.
func (c *plainConn) WriteToAddrPort(p []byte, a netip.AddrPort) (int, error) {
	return c.WriteToUDPAddrPort(p, a)
}

// setReadBuffer asks for n bytes of receive buffer for c and returns n (what
// the socket got is not known here).
func setReadBuffer(c *net.UDPConn, n int) int {
	_ = c.SetReadBuffer(n)
	return n
}
