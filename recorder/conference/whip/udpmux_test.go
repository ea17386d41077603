package whip

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// newTestMux is a mux on one IPv4 loopback socket.
func newTestMux(t *testing.T) (*udpMux, *net.UDPAddr) {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	bc, err := newBatchConn(conn)
	if err != nil {
		t.Fatal(err)
	}
	m := newMux([]datagramConn{bc}, nil, 0, 0)
	t.Cleanup(func() { m.Close() })
	return m, conn.LocalAddr().(*net.UDPAddr)
}

// bindingRequest is a STUN binding request with USERNAME "to:from".
func bindingRequest(t *testing.T, to, from string) []byte {
	t.Helper()
	msg, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername(to+":"+from))
	if err != nil {
		t.Fatal(err)
	}
	return msg.Raw
}

// readWithin reads one datagram from c, failing after 10 s.
func readWithin(t *testing.T, c *muxConn) ([]byte, netip.AddrPort) {
	t.Helper()
	type result struct {
		b    []byte
		from netip.AddrPort
		err  error
	}
	got := make(chan result, 1)
	go func() {
		b := make([]byte, 1500)
		n, from, err := c.ReadFromAddrPort(b)
		got <- result{b[:n], from, err}
	}()
	select {
	case r := <-got:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.b, r.from
	case <-time.After(10 * time.Second):
		t.Fatal("no datagram in 10 s")
	}
	return nil, netip.AddrPort{}
}

// The mux routes a STUN request from a new address by its ufrag, and every
// datagram from an address its connection has written to, to that
// connection; other datagrams from unknown addresses go nowhere; Close
// ends a waiting read with io.EOF and forgets the routes.
func TestUDPMux_RoutesByUfragThenAddress(t *testing.T) {
	m, addr := newTestMux(t)
	if got := m.GetListenAddresses(); len(got) != 1 || got[0].String() != addr.String() {
		t.Fatalf("listen addresses %v, want [%v]", got, addr)
	}
	if _, err := m.GetConn("a", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: addr.Port}); !errors.Is(err, errMuxAddress) {
		t.Fatalf("GetConn on an address the mux does not listen on: %v", err)
	}
	pa, err := m.GetConn("ufragA", addr)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := m.GetConn("ufragB", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.GetConn("ufragA", addr); !errors.Is(err, errMuxTwice) {
		t.Fatalf("a second GetConn for the same ufrag: %v", err)
	}
	a, b := pa.(*muxConn), pb.(*muxConn)

	peerA, err := net.DialUDP("udp4", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer peerA.Close()
	peerB, err := net.DialUDP("udp4", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer peerB.Close()

	// Media from an address no connection knows yet is dropped; a STUN
	// check finds its connection by ufrag.
	peerB.Write([]byte("early media"))
	peerB.Write(bindingRequest(t, "ufragB", "remote"))
	d, from := readWithin(t, b)
	if !stun.IsMessage(d) || from.String() != peerB.LocalAddr().String() {
		t.Fatalf("b read %q from %v, want the STUN request from %v", d, from, peerB.LocalAddr())
	}
	// Once b answers, the address's media is b's.
	if _, err := b.WriteToAddrPort([]byte("response"), from); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	peerB.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := peerB.Read(buf); err != nil || string(buf[:n]) != "response" {
		t.Fatalf("peer B read %q, %v", buf[:n], err)
	}
	peerB.Write([]byte("media B"))
	if d, _ := readWithin(t, b); string(d) != "media B" {
		t.Fatalf("b read %q, want media B", d)
	}
	// a sees none of it; it gets its own.
	peerA.Write(bindingRequest(t, "ufragA", "remote"))
	if d, _ := readWithin(t, a); !stun.IsMessage(d) {
		t.Fatalf("a read %q, want its STUN request", d)
	}
	if a.tail.Load() != 1 {
		t.Fatalf("a queued %d datagrams, want 1", a.tail.Load())
	}
	// A STUN request goes by its ufrag even from an address routed to
	// another connection (a port reused by a new peer while the old
	// connection still holds it).
	peerB.Write(bindingRequest(t, "ufragA", "new peer"))
	if d, from := readWithin(t, a); !stun.IsMessage(d) || from.String() != peerB.LocalAddr().String() {
		t.Fatalf("a read %q from %v, want the STUN request from %v", d, from, peerB.LocalAddr())
	}
	if b.tail.Load() != 2 {
		t.Fatalf("b queued %d datagrams, want 2 (its STUN request and media)", b.tail.Load())
	}

	// Close: a waiting read ends; the routes go.
	done := make(chan error, 1)
	go func() {
		_, _, err := b.ReadFromAddrPort(buf)
		done <- err
	}()
	m.RemoveConnByUfrag("ufragB")
	select {
	case err := <-done:
		if !errors.Is(err, io.EOF) {
			t.Fatalf("a read across Close: %v, want io.EOF", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a read waits on after Close")
	}
	if n := len(*m.socks[0].routes.Load()); n != 0 {
		t.Fatalf("%d routes after b closed, want 0 (a never wrote)", n)
	}
	m.mu.Lock()
	_, still := m.conns[muxKey{"ufragB", 0}]
	m.mu.Unlock()
	if still {
		t.Fatal("b's connection is still in the mux after RemoveConnByUfrag")
	}
	if _, err := b.WriteToAddrPort([]byte("x"), from); err == nil {
		t.Fatal("a closed connection wrote")
	}
}

// A connection whose reader does not read keeps muxRing datagrams and
// drops (and counts) the rest; its reader then gets the first muxRing in
// order. Queueing and reading a datagram allocate nothing.
func TestUDPMux_FullRingDropsAndCounts(t *testing.T) {
	m, addr := newTestMux(t)
	pc, err := m.GetConn("u", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := pc.(*muxConn)
	from := netip.MustParseAddrPort("127.0.0.1:5000")
	before := MuxQueueDrops()
	for i := range muxRing + 10 {
		c.push(fmt.Appendf(nil, "p%04d", i), from)
	}
	if got := MuxQueueDrops() - before; got != 10 {
		t.Errorf("%d drops counted, want 10", got)
	}
	buf := make([]byte, 1500)
	for i := range muxRing {
		n, a, err := c.ReadFromAddrPort(buf)
		if err != nil || a != from || string(buf[:n]) != fmt.Sprintf("p%04d", i) {
			t.Fatalf("read %d: %q from %v, %v", i, buf[:n], a, err)
		}
	}
	// A datagram longer than smallPacket takes a large buffer, whole.
	long := make([]byte, 1400)
	long[1399] = 7
	c.push(long, from)
	if n, _, err := c.ReadFromAddrPort(buf); err != nil || n != 1400 || buf[1399] != 7 {
		t.Fatalf("a 1400-byte datagram read as %d bytes, %v", n, err)
	}
	// Short buffers are reported, not silently cut.
	c.push(long, from)
	if _, _, err := c.ReadFromAddrPort(buf[:100]); !errors.Is(err, io.ErrShortBuffer) {
		t.Fatalf("a 1400-byte datagram into 100 bytes: %v", err)
	}
	d := []byte("an Opus packet of about this size, with its RTP header and SRTP tag...................")
	allocs := testing.AllocsPerRun(1000, func() {
		c.push(d, from)
		if _, _, err := c.ReadFromAddrPort(buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per datagram queued and read, want 0", allocs)
	}
}

// A reader and the socket's reader running at once lose nothing and keep
// the order (run with -race).
func TestUDPMux_ReaderAndWriterConcurrently(t *testing.T) {
	m, addr := newTestMux(t)
	pc, err := m.GetConn("u", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := pc.(*muxConn)
	from := netip.MustParseAddrPort("127.0.0.1:5000")
	const total = 20000
	go func() {
		for i := 0; i < total; {
			if c.tail.Load()-c.head.Load() >= muxRing {
				time.Sleep(time.Microsecond) // never drop here: the test counts every datagram
				continue
			}
			c.push(fmt.Appendf(nil, "%d", i), from)
			i++
		}
	}()
	buf := make([]byte, 64)
	for i := range total {
		n, _, err := c.ReadFromAddrPort(buf)
		if err != nil || string(buf[:n]) != fmt.Sprint(i) {
			t.Fatalf("read %d: %q, %v", i, buf[:n], err)
		}
	}
}

// stunUfrag finds the same USERNAME as pion/stun's decoder in every message
// that decoder takes, and never panics on any input.
func FuzzStunUfrag(f *testing.F) {
	req, _ := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername("abcd:efgh"),
		stun.NewSoftware("x"), stun.Fingerprint)
	f.Add(req.Raw)
	noColon, _ := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewSoftware("odd length"), stun.NewUsername("ufrag"))
	f.Add(noColon.Raw)
	resp, _ := stun.Build(stun.TransactionID, stun.BindingSuccess, &stun.XORMappedAddress{IP: net.IPv4(10, 0, 0, 1), Port: 9})
	f.Add(resp.Raw)
	f.Add(req.Raw[:len(req.Raw)-5])
	f.Add([]byte{0, 1, 0, 4, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 6, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, d []byte) {
		got := stunUfrag(d)
		m := &stun.Message{Raw: append([]byte(nil), d...)}
		if m.Decode() != nil {
			return
		}
		user, err := m.Get(stun.AttrUsername)
		if err != nil {
			if got != nil {
				t.Fatalf("ufrag %q where pion finds no USERNAME", got)
			}
			return
		}
		want, _, _ := strings.Cut(string(user), ":")
		if got == nil || string(got) != want {
			t.Fatalf("ufrag %q, pion's USERNAME %q", got, user)
		}
	})
}
