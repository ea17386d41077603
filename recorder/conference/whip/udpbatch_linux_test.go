//go:build linux

package whip

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/rtcrec/recorder/internal/testenv"
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

// TestBatchConn_ReceiveTimeIsWhenTheKernelGotIt: a datagram read 300 ms
// after it was sent (a reader starved of CPU) carries the kernel's receive
// time, not the read's; and the read stays allocation-free. The kernel
// stamps datagrams as they arrive only once a socket asked for it and its
// deferred work turned stamping on (net_enable_timestamp schedules
// netstamp_work): until then a datagram is stamped when read. The first
// socket of the machine to ask (this test, alone) waits for that.
func TestBatchConn_ReceiveTimeIsWhenTheKernelGotIt(t *testing.T) {
	bc, from := batchPair(t, 0)
	awaitReceiveStamps(t, bc, from)
	for i := range 3 {
		before := time.Now()
		if _, err := from.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		after := time.Now()
		time.Sleep(300 * time.Millisecond) // the reader is late: the condition under test, not a wait for a state
		if _, _, err := bc.ReadDatagram(); err != nil {
			t.Fatal(err)
		}
		read := time.Now()
		at := time.Unix(0, bc.Arrived())
		if at.Before(before.Add(-time.Millisecond)) || at.After(after.Add(50*time.Millisecond)) || read.Sub(at) < 290*time.Millisecond {
			t.Errorf("datagram %d: received %v, sent between %v and %v, read %v: not the kernel's time",
				i, at.Format(time.StampMicro), before.Format(time.StampMicro), after.Format(time.StampMicro), read.Format(time.StampMicro))
		}
	}
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := from.Write([]byte{1}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := bc.ReadDatagram(); err != nil {
			t.Fatal(err)
		}
		_ = bc.Arrived()
	})
	if allocs > 1 { // the write's own
		t.Errorf("%.1f allocations per datagram written and read", allocs)
	}
}

// awaitReceiveStamps returns once the kernel stamps the datagrams bc reads
// when they arrive (see TestBatchConn_ReceiveTimeIsWhenTheKernelGotIt): a
// datagram read 20 ms after it was sent carries a time at least 20 ms before
// the read; stamped at the read it would carry the read's.
func awaitReceiveStamps(t *testing.T, bc *batchConn, from *net.UDPConn) {
	t.Helper()
	for start := time.Now(); time.Since(start) < 10*time.Second; {
		if _, err := from.Write([]byte{0}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // a late reader: the condition probed
		if _, _, err := bc.ReadDatagram(); err != nil {
			t.Fatal(err)
		}
		if time.Since(time.Unix(0, bc.Arrived())) >= 20*time.Millisecond {
			return
		}
		t.Logf("a datagram stamped when read: the kernel does not stamp on arrival yet")
	}
	t.Fatal("the kernel did not stamp datagrams on arrival within 10 s")
}

// TestBatchConn_CountsTheKernelsDrops: a burst overflows a socket with the
// least receive buffer the kernel allows while nothing reads it; the
// datagrams it queued carry a drop count of 0, and the next one, queued
// once it was read, the count of those the kernel dropped: as many as the
// burst lost, and what the kernel's table of sockets says.
func TestBatchConn_CountsTheKernelsDrops(t *testing.T) {
	bc, from := batchPair(t, 1) // raised to the kernel's least (SOCK_MIN_RCVBUF: a few datagrams)
	const burst = 100
	for i := range burst {
		if _, err := from.Write(fmt.Appendf(nil, "%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := from.Write([]byte("end")); err != nil { // dropped too: the queue is still full
		t.Fatal(err)
	}
	// Read what was queued (the burst's first datagrams, in order) up to
	// the marker, sent once the queue is empty.
	received := 0
	for marker := false; ; {
		d, _, err := bc.ReadDatagram()
		if err != nil {
			t.Fatal(err)
		}
		if string(d) == "last" {
			break
		}
		if want := fmt.Sprintf("%03d", received); string(d) != want {
			t.Fatalf("read %q, want %q", d, want)
		}
		if n := bc.Dropped(); n != 0 {
			t.Errorf("datagram %s queued with a drop count of %d, before any drop", d, n)
		}
		received++
		if !marker && bc.next == bc.n { // the batch read: the queue is empty
			if _, err := from.Write([]byte("last")); err != nil {
				t.Fatal(err)
			}
			marker = true
		}
	}
	dropped := burst + 1 - received
	if received == 0 || received >= burst {
		t.Fatalf("%d of %d datagrams queued: the burst did not overflow the queue", received, burst)
	}
	if n := bc.Dropped(); int(n) != dropped {
		t.Errorf("the datagram after the burst came with a drop count of %d; %d were sent, %d read", n, burst+1, received)
	}
	if n := testenv.UDPDrops(t, bc.LocalAddr().(*net.UDPAddr).Port); n != dropped {
		t.Errorf("/proc/net/udp: %d dropped, want %d", n, dropped)
	}
	t.Logf("%d datagrams queued, %d dropped", received, dropped)
}

// batchPair returns a batchConn on a socket of 127.0.0.1 with a receive
// buffer of rcvbuf bytes (0: the default), whose reads fail after 20 s, and
// a socket that sends to it; both close when the test ends.
func batchPair(t *testing.T, rcvbuf int) (*batchConn, *net.UDPConn) {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if rcvbuf > 0 {
		if err := conn.SetReadBuffer(rcvbuf); err != nil {
			t.Fatal(err)
		}
	}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	pc, err := newBatchConn(conn)
	if err != nil {
		t.Fatal(err)
	}
	from, err := net.DialUDP("udp4", nil, conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { from.Close() })
	return pc.(*batchConn), from
}

// cmsg returns a control message of level SOL_SOCKET, type typ and data,
// padded as the kernel lays it out (CMSG_SPACE).
func cmsg(typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.SOL_SOCKET, typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

// controlMessages reads the receive time and the drop count in either
// order, each alone, and neither from what is not one of them.
func TestControlMessages_ReadsTheTimeAndTheDropCount(t *testing.T) {
	ts := unix.NsecToTimespec(1_700_000_000_123_456_789)
	stamp := cmsg(unix.SCM_TIMESTAMPNS, unsafe.Slice((*byte)(unsafe.Pointer(&ts)), unsafe.Sizeof(ts)))
	drops := cmsg(unix.SO_RXQ_OVFL, binary.NativeEndian.AppendUint32(nil, 77))
	other := cmsg(unix.SO_MARK, binary.NativeEndian.AppendUint32(nil, 5))
	for _, tc := range []struct {
		name  string
		oob   []byte
		at    int64
		drops uint32
	}{
		{"both", append(slices.Clip(stamp), drops...), ts.Nano(), 77},
		{"the drop count first", append(slices.Clip(drops), stamp...), ts.Nano(), 77},
		{"no drop yet", stamp, ts.Nano(), 0},
		{"another message between", append(append(slices.Clip(stamp), other...), drops...), ts.Nano(), 77},
		{"none", nil, 0, 0},
		{"cut short", append(slices.Clip(stamp), drops[:len(drops)-8]...), ts.Nano(), 0},
	} {
		if at, n := controlMessages(tc.oob); at != tc.at || n != tc.drops {
			t.Errorf("%s: %d, %d; want %d, %d", tc.name, at, n, tc.at, tc.drops)
		}
	}
}

func FuzzControlMessages(f *testing.F) {
	ts := unix.NsecToTimespec(1)
	stamp := cmsg(unix.SCM_TIMESTAMPNS, unsafe.Slice((*byte)(unsafe.Pointer(&ts)), unsafe.Sizeof(ts)))
	f.Add(append(stamp, cmsg(unix.SO_RXQ_OVFL, []byte{1, 0, 0, 0})...))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1, 0, 0, 0, 0x28, 0, 0, 0})
	f.Fuzz(func(t *testing.T, oob []byte) {
		controlMessages(oob)
	})
}
