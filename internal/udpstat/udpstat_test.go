package udpstat

import (
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

const table = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  312: 0100007F:A6C4 00000000:0000 07 00000000:00000300 00:00000000 00000000     0        0 5001 2 0000000000000000 7
  999: 0100007F:A6C5 00000000:0000 07 00000000:00010000 00:00000000 00000000     0        0 5002 2 0000000000000000 0
 1000: 0100007F:A6C6 00000000:0000 07 00000000:0000FFFF 00:00000000 00000000     0        0 6000 2 0000000000000000 40
 1001: garbage
`

func TestParse_SumsOnlyTheGivenSockets(t *testing.T) {
	st, err := parse(strings.NewReader(table), map[uint64]bool{5001: true, 5002: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Stats{Sockets: 2, Queued: 0x300 + 0x10000, Drops: 7}); st != want {
		t.Fatalf("got %+v, want %+v", st, want)
	}
}

// TestRead_SeesTheKernelDropDatagrams fills a real socket's receive buffer
// without reading it: Read must count the socket, the bytes queued and the
// datagrams the kernel dropped, and Of that socket alone.
func TestRead_SeesTheKernelDropDatagrams(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc/self/net/udp is Linux's")
	}
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	if err := rx.SetReadBuffer(4096); err != nil { // the kernel's minimum, about
		t.Fatal(err)
	}
	tx, err := net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	before, err := Read()
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, 200)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := tx.Write(msg); err != nil {
			t.Fatal(err)
		}
		st, err := Read()
		if err != nil {
			t.Fatal(err)
		}
		if st.Drops > before.Drops {
			if st.Queued == 0 || st.Sockets < 2 {
				t.Fatalf("dropped %d but %d bytes queued on %d sockets", st.Drops-before.Drops, st.Queued, st.Sockets)
			}
			one, err := Of(rx)
			if err != nil {
				t.Fatal(err)
			}
			if one.Sockets != 1 || one.Drops == 0 || one.Queued == 0 {
				t.Fatalf("Of(the full socket) = %+v: want it alone, with its drops and queue", one)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no drop seen in 10 s: %+v", st)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(table)
	f.Add("header\n 1: a b c d:e f g h i 5001 k l m\n")
	f.Fuzz(func(t *testing.T, s string) {
		st, err := parse(strings.NewReader(s), map[uint64]bool{5001: true, 5002: true, 6000: true})
		if err == nil && st.Sockets > strings.Count(s, "\n")+1 {
			t.Fatalf("%d sockets from %d lines", st.Sockets, strings.Count(s, "\n")+1)
		}
	})
}
