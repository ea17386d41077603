// Package udpstat reads what the kernel says about this process's UDP
// sockets: how many datagrams it dropped because a socket's receive buffer
// was full (they never reached the process), and how many bytes wait in
// the receive queues now. Linux only (/proc/self/net/udp, udp6 and
// /proc/self/fd); elsewhere Read returns ErrUnsupported.
package udpstat

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrUnsupported is returned where /proc does not describe the sockets.
var ErrUnsupported = errors.New("udpstat: /proc/self/net/udp is not available")

// Stats sums the UDP sockets this process has open now. A socket's counters
// go with it when it closes: Drops is a gauge over the open sockets, not a
// total since the process started.
type Stats struct {
	Sockets int    // open UDP sockets (IPv4 and IPv6)
	Queued  uint64 // bytes waiting in their receive queues (kernel memory, rx_queue)
	Drops   uint64 // datagrams the kernel dropped on them (receive buffer full, among others)
}

// Read returns the Stats of this process's open UDP sockets.
func Read() (Stats, error) {
	inodes, err := socketInodes("/proc/self/fd")
	if err != nil {
		return Stats{}, err
	}
	return read(inodes)
}

// Of returns the Stats of the one UDP socket c (a *net.UDPConn).
func Of(c syscall.Conn) (Stats, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return Stats{}, err
	}
	var inode uint64
	found := false
	if err := rc.Control(func(fd uintptr) {
		l, err := os.Readlink("/proc/self/fd/" + strconv.FormatUint(uint64(fd), 10))
		if v, ok := strings.CutPrefix(l, "socket:["); ok && err == nil {
			inode, err = strconv.ParseUint(strings.TrimSuffix(v, "]"), 10, 64)
			found = err == nil
		}
	}); err != nil {
		return Stats{}, err
	}
	if !found {
		return Stats{}, ErrUnsupported
	}
	return read(map[uint64]bool{inode: true})
}

// read sums the open UDP sockets whose inode is in inodes.
func read(inodes map[uint64]bool) (Stats, error) {
	var st Stats
	found := false
	for _, name := range []string{"/proc/self/net/udp", "/proc/self/net/udp6"} {
		f, err := os.Open(name)
		if err != nil {
			continue // no IPv6, for one
		}
		s, err := parse(f, inodes)
		f.Close()
		if err != nil {
			return Stats{}, err
		}
		found = true
		st.Sockets += s.Sockets
		st.Queued += s.Queued
		st.Drops += s.Drops
	}
	if !found {
		return Stats{}, ErrUnsupported
	}
	return st, nil
}

// socketInodes returns the inodes of the sockets among the file descriptors
// listed in dir ("socket:[12345]" links).
func socketInodes(dir string) (map[uint64]bool, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, ErrUnsupported
	}
	inodes := make(map[uint64]bool, len(ents))
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if v, ok := strings.CutPrefix(l, "socket:["); ok {
			if n, err := strconv.ParseUint(strings.TrimSuffix(v, "]"), 10, 64); err == nil {
				inodes[n] = true
			}
		}
	}
	return inodes, nil
}

// parse sums the sockets of a /proc/net/udp table whose inode is in inodes.
// A line is "sl local rem st tx_queue:rx_queue tr:when retrnsmt uid timeout
// inode ref pointer drops" (net/ipv4/udp.c, udp4_format_sock), the queues
// in hexadecimal; lines that do not parse are skipped.
func parse(r io.Reader, inodes map[uint64]bool) (Stats, error) {
	var st Stats
	sc := bufio.NewScanner(r)
	first := true
	for sc.Scan() {
		if first { // the header
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 13 {
			continue
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil || !inodes[inode] {
			continue
		}
		_, rx, ok := strings.Cut(f[4], ":")
		if !ok {
			continue
		}
		queued, err1 := strconv.ParseUint(rx, 16, 64)
		drops, err2 := strconv.ParseUint(f[len(f)-1], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		st.Sockets++
		st.Queued += queued
		st.Drops += drops
	}
	return st, sc.Err()
}
