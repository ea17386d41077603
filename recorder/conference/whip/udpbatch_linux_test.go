//go:build linux

package whip

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The UDP mux's socket gets the receive buffer asked for, or at least
// net.core.rmem_max of it (without the right to force more).
func TestSetReadBuffer_GetsWhatItAsks(t *testing.T) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Fatal(err)
	}
	rmemMax, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	const want = 16 << 20
	got := setReadBuffer(conn, want)
	if got < min(want, rmemMax) {
		t.Errorf("receive buffer %d bytes, asked %d (rmem_max %d)", got, want, rmemMax)
	}
	t.Logf("receive buffer %d bytes, asked %d (rmem_max %d)", got, want, rmemMax)
}

// Datagrams from several senders are read one by one, in order per sender,
// each with its sender's address, in batches, without allocating.
func TestBatchConn_ReadsEveryDatagram(t *testing.T) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Room for every datagram queued below, and no wait without end.
	if err := conn.SetReadBuffer(1 << 20); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	pc, err := newBatchConn(conn)
	if err != nil {
		t.Fatal(err)
	}
	bc := pc.(*batchConn)
	const senders, each = 3, 40
	var from [senders]*net.UDPConn
	for i := range from {
		if from[i], err = net.DialUDP("udp4", nil, conn.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
		defer from[i].Close()
	}
	// Queue them all first, so that reads come in full batches.
	for j := range each {
		for i, c := range from {
			if _, err := c.Write(fmt.Appendf(nil, "s%d-%03d", i, j)); err != nil {
				t.Fatal(err)
			}
		}
	}
	next := [senders]int{}
	buf := make([]byte, 1500)
	for range senders * each {
		n, addr, err := bc.ReadFromAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		i := -1
		for k, c := range from {
			if netip.MustParseAddrPort(c.LocalAddr().String()) == addr {
				i = k
			}
		}
		if i < 0 {
			t.Fatalf("a datagram from %v, not a sender", addr)
		}
		if want := fmt.Sprintf("s%d-%03d", i, next[i]); !bytes.Equal(buf[:n], []byte(want)) {
			t.Fatalf("read %q from sender %d, want %q", buf[:n], i, want)
		}
		next[i]++
	}
	if bc.n < 2 {
		t.Errorf("the last recvmmsg took %d datagram(s): not batched", bc.n)
	}
	// Reading allocates nothing: a batch of datagrams is read in each run.
	x := []byte("x")
	allocs := testing.AllocsPerRun(20, func() {
		for range batchSize {
			if _, err := from[0].Write(x); err != nil {
				t.Fatal(err)
			}
		}
		for range batchSize {
			if _, _, err := bc.ReadFromAddrPort(buf); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per batch of %d datagrams written and read, want 0", allocs, batchSize)
	}
	// A datagram longer than the batch buffer is dropped, the next one read.
	from[1].Write(make([]byte, batchBuf+1))
	from[1].Write([]byte("after"))
	if n, _, err := bc.ReadFromAddrPort(buf); err != nil || string(buf[:n]) != "after" {
		t.Errorf("after an oversized datagram: %q, %v; want \"after\"", buf[:n], err)
	}
}
