//go:build linux

package whip

import (
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// grantedReadBuffer is what the kernel grants a request for size bytes of
// receive buffer: capped at net.core.rmem_max, then doubled (socket(7)).
func grantedReadBuffer(t *testing.T, size int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Fatal(err)
	}
	max, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return 2 * min(size, max)
}

// udpReadBuffers returns the receive buffer of every UDP socket this
// process has open.
func udpReadBuffers(t *testing.T) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err != nil || !strings.HasPrefix(l, "socket:") {
			continue
		}
		if typ, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TYPE); err != nil || typ != syscall.SOCK_DGRAM {
			continue
		}
		if dom, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_DOMAIN); err != nil || dom != syscall.AF_INET && dom != syscall.AF_INET6 {
			continue
		}
		if n, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF); err == nil {
			sizes = append(sizes, n)
		}
	}
	return sizes
}

func TestReadBufferNet_AsksForTheBuffer(t *testing.T) {
	n, err := newReadBufferNet(connReadBuffer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := n.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := c.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	raw.Control(func(fd uintptr) { got, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF) })
	if want := grantedReadBuffer(t, connReadBuffer); err != nil || got != want {
		t.Fatalf("receive buffer %d (%v), want %d", got, err, want)
	}
	if ifs, err := n.Interfaces(); err != nil || len(ifs) == 0 {
		t.Fatalf("interfaces: %v, %v", ifs, err)
	}
}

// TestAdapter_ConnectionSocketsGetTheReadBuffer publishes through the real
// endpoint: the UDP sockets the connection opened (the endpoint's and the
// client's, both built by settingEngine) have connReadBuffer, where a
// default socket has net.core.rmem_default.
func TestAdapter_ConnectionSocketsGetTheReadBuffer(t *testing.T) {
	want := grantedReadBuffer(t, connReadBuffer)
	count := func() (n int) {
		for _, s := range udpReadBuffers(t) {
			if s == want {
				n++
			}
		}
		return n
	}
	before := count()
	_, srv, _ := newEndpointWith(t, Settings{LoopbackOnly: true, UDP4Only: true})
	api, closeFn, err := NewAPI(Settings{LoopbackOnly: true, UDP4Only: true})
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	track, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "a", "s")
	pub, err := (&Client{API: api, Token: "k1"}).Publish(ctx, Endpoint(srv.URL, "buf", "u", "MIC"), track)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(context.Background())
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	if got := count() - before; got < 2 {
		t.Fatalf("%d new UDP sockets with a %d-byte receive buffer, want 2 at least (endpoint and client); all: %v",
			got, want, udpReadBuffers(t))
	}
}
