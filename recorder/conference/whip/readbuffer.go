package whip

import (
	"net"

	"github.com/pion/transport/v4"
	"github.com/pion/transport/v4/stdnet"
)

// connReadBuffer is the receive buffer asked for each connection's own UDP
// socket (without a UDP mux). A recorder that falls behind (starved of CPU
// for a while) finds the packets that came meanwhile queued in its sockets;
// once a socket's buffer is full the kernel drops them, and they never reach
// a track file. The default (net.core.rmem_default, 208 KiB on most
// systems) holds about 250 Opus datagrams on loopback (832 bytes of kernel
// memory each) but only 50–100 from a network card (2–4 KiB each): one or
// two seconds. 1 MiB (the kernel doubles it for its bookkeeping) holds the
// latency budget's 5 s of a stream from any interface. The kernel caps the
// request at net.core.rmem_max (208 KiB by default on most distributions:
// raise it with sysctl to get more); memory is used only while packets
// wait.
const connReadBuffer = 1 << 20

// readBufferNet is the host's network for Pion's ICE agents, with
// connReadBuffer on every UDP socket they open. Interfaces are read afresh
// on each call, as a new stdnet.Net per agent (Pion's default) would.
type readBufferNet struct {
	*stdnet.Net
	size int
}

func newReadBufferNet(size int) (*readBufferNet, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return &readBufferNet{Net: n, size: size}, nil
}

// ListenUDP opens a UDP socket and asks for the receive buffer.
func (n *readBufferNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err == nil {
		_ = c.SetReadBuffer(n.size) // capped by the kernel, never refused
	}
	return c, err
}

// ListenPacket opens a packet socket and, for UDP, asks for the receive
// buffer.
func (n *readBufferNet) ListenPacket(network, address string) (net.PacketConn, error) {
	c, err := n.Net.ListenPacket(network, address)
	if u, ok := c.(*net.UDPConn); ok && err == nil {
		_ = u.SetReadBuffer(n.size)
	}
	return c, err
}

// Interfaces returns the host's interfaces now.
func (n *readBufferNet) Interfaces() ([]*transport.Interface, error) {
	fresh, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return fresh.Interfaces()
}

// InterfaceByIndex returns the interface with that index now.
func (n *readBufferNet) InterfaceByIndex(index int) (*transport.Interface, error) {
	fresh, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return fresh.InterfaceByIndex(index)
}

// InterfaceByName returns the interface with that name now.
func (n *readBufferNet) InterfaceByName(name string) (*transport.Interface, error) {
	fresh, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return fresh.InterfaceByName(name)
}

var _ transport.Net = (*readBufferNet)(nil)
