//go:build !linux

package whip

import "net"

// newBatchConn is the socket itself where recvmmsg(2) is not available.
func newBatchConn(c *net.UDPConn) (net.PacketConn, error) { return c, nil }

// setReadBuffer asks for n bytes of receive buffer for c and returns n (what
// the socket got is not known here).
func setReadBuffer(c *net.UDPConn, n int) int {
	_ = c.SetReadBuffer(n)
	return n
}
