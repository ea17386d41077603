//go:build !linux

package whip

import "net"

// newBatchConn is the socket itself where recvmmsg(2) is not available.
func newBatchConn(c *net.UDPConn) (net.PacketConn, error) { return c, nil }
