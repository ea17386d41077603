package whip

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/pion/srtp/v3"
	"github.com/pion/transport/v4/packetio"

	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/recorder/conference"
)

// starvedPackets is how many packets of each stream a starved recorder's
// backlog holds in TestDirectAudio_AStarvedRecorderKeepsWhatPionsPathKeeps:
// 5 s of an Opus stream, what Pion's path keeps per connection (muxRing).
const starvedPackets = 250

// starvedRcvbuf is the mux socket's receive buffer in that test (the kernel
// doubles it): a few dozen datagrams, far fewer than the backlog.
const starvedRcvbuf = 16 << 10

// heldTrack is a direct-audio stream whose hand-over (the recorder's work)
// waits for hold to close, and records the sequence numbers it is handed.
type heldTrack struct {
	buf  *conference.PushBuffer
	mu   sync.Mutex
	seqs []uint16
}

// TestDirectAudio_AStarvedRecorderKeepsWhatPionsPathKeeps: while the
// recorder's work on the packets gets no CPU (every hand-over held, as in a
// process starved by a busy neighbour: issue 16's case 5), 8 direct-audio
// streams send 5 s of packets each (250) to a mux socket whose receive
// buffer holds a few dozen. Pion's path keeps them all: its socket reader
// only queues each datagram on its connection's ring (256 slots, 5 s),
// which the subtest "pion" shows with the same burst. Direct audio must
// keep them too, on one core and on two: the socket's reader takes every
// datagram while the work is held, and once it runs every packet reaches
// its track, in order, none dropped by the kernel.
//
// On main 659c846 it fails: on one core the reader handed over itself and
// so waited in the held work with the backlog in the kernel (1 of 2000
// taken; the kernel dropped 1953), on two its workers' queues held 512
// packets each (51 ms of 400 streams) and the reader then waited (the
// kernel dropped 929).
func TestDirectAudio_AStarvedRecorderKeepsWhatPionsPathKeeps(t *testing.T) {
	for _, procs := range []int{1, 2} {
		t.Run(fmt.Sprintf("direct/GOMAXPROCS=%d", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			starvedBurst(t, true)
		})
	}
	t.Run("pion", func(t *testing.T) { starvedBurst(t, false) })
}

// starvedBurst runs the burst of TestDirectAudio_AStarvedRecorderKeepsWhat
// PionsPathKeeps through direct-audio connections (direct) or plain ones
// whose rings nobody reads (Pion's ICE readers starved).
func starvedBurst(t *testing.T, direct bool) {
	const streams = 8
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.SetReadBuffer(starvedRcvbuf); err != nil {
		t.Fatal(err)
	}
	bc, err := newBatchConn(conn)
	if err != nil {
		t.Fatal(err)
	}
	workers := 0
	if direct {
		workers = directWorkers() // as newUDPMux makes them
	}
	m := newMux([]datagramConn{bc}, nil, workers, handQueueSlots(streams, workers))
	t.Cleanup(func() { m.Close() })
	addr := conn.LocalAddr().(*net.UDPAddr)
	port := addr.Port

	key, salt := bytes.Repeat([]byte{7}, 16), bytes.Repeat([]byte{9}, 12)
	hold := make(chan struct{})
	released := false
	t.Cleanup(func() {
		if !released {
			close(hold)
		}
	})
	tracks := make([]*heldTrack, streams)
	muxConns := make([]*muxConn, streams)
	senders := make([]*net.UDPConn, streams)
	ctxs := make([]*srtp.Context, streams)
	for i := range streams {
		var audio *directAudio
		if direct {
			bufs := &conference.PushBuffers{}
			audio = newDirectAudio(bufs)
			audio.keys.Store(&srtpKeys{key: key, salt: salt, profile: srtp.ProtectionProfileAeadAes128Gcm})
			tr := &heldTrack{buf: bufs.New(packetio.RTPBufferPacket, uint32(100+i)).(*conference.PushBuffer)}
			read := make([]byte, 1500)
			tr.buf.Push(func() bool {
				n, err := tr.buf.Read(read)
				<-hold // the recorder's work waits for the CPU
				if err == nil && n >= 4 {
					tr.mu.Lock()
					tr.seqs = append(tr.seqs, binary.BigEndian.Uint16(read[2:4]))
					tr.mu.Unlock()
				}
				return true
			}, func() {})
			tracks[i] = tr
		}
		pc, err := m.getConn(fmt.Sprint("u", i), addr, audio)
		if err != nil {
			t.Fatal(err)
		}
		muxConns[i] = pc.(*muxConn)
		if senders[i], err = net.DialUDP("udp4", nil, addr); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { senders[i].Close() })
		// ICE answers a peer before media comes: the route to it.
		if _, err := muxConns[i].WriteToAddrPort([]byte("check"), senders[i].LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
			t.Fatal(err)
		}
		if ctxs[i], err = srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm); err != nil {
			t.Fatal(err)
		}
	}

	// taken counts what the socket's reader took: decrypted and queued
	// (direct), or queued on a connection's ring (Pion's path).
	directBefore := DirectPackets()
	taken := func() int {
		if direct {
			return int(DirectPackets() - directBefore)
		}
		n := 0
		for _, c := range muxConns {
			n += int(c.tail.Load() - c.head.Load())
		}
		return n
	}
	dropsBefore := testenv.UDPDrops(t, port)

	// The burst, a packet of each stream at a time; after each round the
	// reader is given time to take it (it only reads), up to 5 s: past
	// that it is held up (waiting in the held work, or for room) and the
	// rest is sent without waiting, as the publishers would.
	sent := 0
	pacing := true
	for seq := range starvedPackets {
		for i := range streams {
			d := encryptedPayload(t, ctxs[i], uint32(100+i), uint16(seq), 100)
			if _, err := senders[i].Write(d); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		if !pacing {
			continue
		}
		for deadline := time.Now().Add(5 * time.Second); taken() < sent; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Logf("round %d: the socket's reader took %d of %d datagrams in 5 s: held up", seq, taken(), sent)
				pacing = false
				break
			}
		}
	}
	t.Logf("sent %d datagrams while the work was held; the reader took %d", sent, taken())

	close(hold)
	released = true
	// Every datagram is then handed over, or was dropped by the kernel.
	handed := func() int {
		n := 0
		for _, tr := range tracks {
			if tr != nil {
				tr.mu.Lock()
				n += len(tr.seqs)
				tr.mu.Unlock()
			}
		}
		return n
	}
	if !direct {
		handed = taken
	}
	var drops int
	waitFor(t, "every datagram handed over or dropped", func() bool {
		drops = testenv.UDPDrops(t, port) - dropsBefore
		return handed()+drops >= sent
	})
	if drops != 0 {
		t.Fatalf("the kernel dropped %d of %d datagrams (%d handed over): a starved recorder lost what Pion's path keeps (%d per connection)",
			drops, sent, handed(), muxRing)
	}
	if got := handed(); got != sent {
		t.Fatalf("%d of %d handed over", got, sent)
	}
	for i, tr := range tracks {
		if tr == nil {
			continue
		}
		for j, s := range tr.seqs {
			if s != uint16(j) {
				t.Fatalf("stream %d: packet %d is %d: lost or reordered", i, j, s)
			}
		}
	}
}
