package whip

import (
	"net"
	"net/netip"
	"sync"

	"github.com/pion/ice/v4"
	"github.com/pion/transport/v4"
)

// A publisher that hangs up without a DELETE (a browser tab closed,
// PeerConnection.Close) sends a DTLS close_notify alert. The endpoint's
// Pion connections ignore it (NewAPIs: DisableCloseByDTLS, so that what
// the recorder has not read yet is not lost), and Pion tells no one: the
// session would wait until ICE fails, 25–30 s later. So each connection's
// sockets (or its share of the UDP mux) look at the first byte of each
// datagram they pass to ICE, and tell the session of the first DTLS alert
// after the handshake: the publisher left, as with a DELETE.
//
// The alert is encrypted, so it may also be a fatal alert; either way the
// publisher's DTLS is over. Its MAC is not checked here: a datagram forged
// with the publisher's address and port ends the session as its DELETE
// would (what came before is kept).

// isDTLSAlert reports whether datagram d is a DTLS record (RFC 6347 §4.1:
// content type, version 254.x, epoch) of an alert (content type 21) under
// the keys the handshake agreed (epoch 1 or later). RFC 7983 §7 sends
// first bytes 20–63 to DTLS.
func isDTLSAlert(d []byte) bool {
	return len(d) >= 13 && d[0] == 21 && d[1] == 254 && d[3]|d[4] != 0
}

// alertWatch calls closed, once, for the first DTLS alert after the
// handshake that any of a connection's sockets reads.
type alertWatch struct {
	once   sync.Once
	closed func()
}

// look looks at a datagram read.
func (w *alertWatch) look(d []byte) {
	if isDTLSAlert(d) {
		w.once.Do(w.closed)
	}
}

// watchedMux is the UDP mux as one connection sees it: its share (GetConn)
// is watched by w.
type watchedMux struct {
	ice.UDPMux
	w *alertWatch
}

// GetConn implements ice.UDPMux.
func (m watchedMux) GetConn(ufrag string, addr net.Addr) (net.PacketConn, error) {
	c, err := m.UDPMux.GetConn(ufrag, addr)
	if err != nil {
		return nil, err
	}
	return &watchedPacketConn{PacketConn: c, ap: addrPortConn(c), w: m.w}, nil
}

// watchedNet is the network as one connection sees it: the UDP sockets its
// ICE agent opens are watched by w.
type watchedNet struct {
	transport.Net
	w *alertWatch
}

// ListenUDP implements transport.Net.
func (n watchedNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	return &watchedUDPConn{UDPConn: c, ap: addrPortConn(c), w: n.w}, nil
}

// addrPortConn returns c's reads and writes by netip.AddrPort, which ICE
// uses when a connection has them (they allocate no address), or nil.
func addrPortConn(c net.PacketConn) ice.AddrPortReaderWriter {
	if u, ok := c.(*net.UDPConn); ok {
		return udpAddrPortConn{u}
	}
	ap, _ := c.(ice.AddrPortReaderWriter)
	return ap
}

// udpAddrPortConn is a *net.UDPConn's ice.AddrPortReaderWriter.
type udpAddrPortConn struct{ *net.UDPConn }

func (c udpAddrPortConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	return c.ReadFromUDPAddrPort(b)
}

func (c udpAddrPortConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return c.WriteToUDPAddrPort(b, addr)
}

// watchedPacketConn is a connection's share of the UDP mux, watched.
type watchedPacketConn struct {
	net.PacketConn
	ap ice.AddrPortReaderWriter // nil: PacketConn has none
	w  *alertWatch
}

// ReadFrom implements net.PacketConn.
func (c *watchedPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, a, err := c.PacketConn.ReadFrom(b)
	c.w.look(b[:n])
	return n, a, err
}

// ReadFromAddrPort implements ice.AddrPortReaderWriter.
func (c *watchedPacketConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, a, err := readFromAddrPort(c.PacketConn, c.ap, b)
	c.w.look(b[:n])
	return n, a, err
}

// WriteToAddrPort implements ice.AddrPortReaderWriter.
func (c *watchedPacketConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return writeToAddrPort(c.PacketConn, c.ap, b, addr)
}

// watchedUDPConn is a connection's own UDP socket, watched.
type watchedUDPConn struct {
	transport.UDPConn
	ap ice.AddrPortReaderWriter // nil: UDPConn has none
	w  *alertWatch
}

// ReadFrom implements net.PacketConn.
func (c *watchedUDPConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, a, err := c.UDPConn.ReadFrom(b)
	c.w.look(b[:n])
	return n, a, err
}

// ReadFromAddrPort implements ice.AddrPortReaderWriter.
func (c *watchedUDPConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, a, err := readFromAddrPort(c.UDPConn, c.ap, b)
	c.w.look(b[:n])
	return n, a, err
}

// WriteToAddrPort implements ice.AddrPortReaderWriter.
func (c *watchedUDPConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return writeToAddrPort(c.UDPConn, c.ap, b, addr)
}

// readFromAddrPort reads a datagram from ap, or from c when ap is nil.
func readFromAddrPort(c net.PacketConn, ap ice.AddrPortReaderWriter, b []byte) (int, netip.AddrPort, error) {
	if ap != nil {
		return ap.ReadFromAddrPort(b)
	}
	n, a, err := c.ReadFrom(b)
	if u, ok := a.(*net.UDPAddr); ok {
		return n, u.AddrPort(), err
	}
	return n, netip.AddrPort{}, err
}

// writeToAddrPort writes a datagram by ap, or by c when ap is nil.
func writeToAddrPort(c net.PacketConn, ap ice.AddrPortReaderWriter, b []byte, addr netip.AddrPort) (int, error) {
	if ap != nil {
		return ap.WriteToAddrPort(b, addr)
	}
	return c.WriteTo(b, net.UDPAddrFromAddrPort(addr))
}

// Interface guards.
var (
	_ ice.UDPMux               = watchedMux{}
	_ transport.Net            = watchedNet{}
	_ ice.AddrPortReaderWriter = (*watchedPacketConn)(nil)
	_ ice.AddrPortReaderWriter = (*watchedUDPConn)(nil)
	_ transport.UDPConn        = (*watchedUDPConn)(nil)
)
