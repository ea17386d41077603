package testenv

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// UDPDrops returns how many datagrams the kernel dropped for the UDP socket
// bound to 127.0.0.1:port (Linux's /proc/net/udp, its drops column): its
// receive queue full, mostly.
func UDPDrops(t testing.TB, port int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		Missing(t, "no /proc/net/udp: "+err.Error())
	}
	local := fmt.Sprintf("0100007F:%04X", port)
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 13 && f[1] == local {
			n, err := strconv.Atoi(f[len(f)-1])
			if err != nil {
				t.Fatalf("/proc/net/udp: %q: %v", l, err)
			}
			return n
		}
	}
	t.Fatalf("no socket %s in /proc/net/udp", local)
	return 0
}
