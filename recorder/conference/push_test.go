package conference

import (
	"encoding/binary"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// seqPacket returns a packet numbered i (its first four bytes).
func seqPacket(i uint32) []byte {
	b := make([]byte, 100)
	binary.BigEndian.PutUint32(b, i)
	return b
}

// pushRecorder is the consumer of a PushBuffer in these tests: next reads
// one packet and records its number; end counts its calls.
type pushRecorder struct {
	p      *PushBuffer
	buf    []byte
	got    []uint32
	inNext atomic.Bool // next runs: Between's fn must not
	ends   atomic.Int32
	ended  chan struct{}
}

func newPushRecorder(p *PushBuffer) *pushRecorder {
	return &pushRecorder{p: p, buf: make([]byte, 1500), ended: make(chan struct{})}
}

func (r *pushRecorder) next() bool {
	if !r.inNext.CompareAndSwap(false, true) {
		panic("two calls of next at once")
	}
	defer r.inNext.Store(false)
	n, err := r.p.Read(r.buf)
	if err != nil {
		return false
	}
	r.got = append(r.got, binary.BigEndian.Uint32(r.buf[:n]))
	return true
}

func (r *pushRecorder) end() {
	if r.ends.Add(1) == 1 {
		close(r.ended)
	}
}

// inOrder fails unless got is first, first+1, … first+n-1.
func inOrder(t *testing.T, got []uint32, first uint32, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%d packets handed over, want %d", len(got), n)
	}
	for i, g := range got {
		if g != first+uint32(i) {
			t.Fatalf("packet %d is %d, want %d (lost or reordered)", i, g, first+uint32(i))
		}
	}
}

// TestPushBuffer_HoldsUntilPush: before Push the buffer holds packets for
// Read (Pion's reads before a track is handed over); Push hands over the
// rest, then every packet as it is written, in order; Close stops it and
// end is called once.
func TestPushBuffer_HoldsUntilPush(t *testing.T) {
	p := NewPushBuffer()
	for i := range uint32(10) {
		if n, err := p.Write(seqPacket(i)); n != 100 || err != nil {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	buf := make([]byte, 1500)
	if n, err := p.Read(buf); err != nil || binary.BigEndian.Uint32(buf[:n]) != 0 {
		t.Fatalf("read before Push: %v, packet %d; want packet 0", err, binary.BigEndian.Uint32(buf))
	}
	r := newPushRecorder(p)
	p.Push(r.next, r.end)
	inOrder(t, r.got, 1, 9) // held, handed over by Push on this goroutine
	for i := uint32(10); i < 20; i++ {
		p.Write(seqPacket(i))
	}
	inOrder(t, r.got, 1, 19) // pushed by Write
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	<-r.ended
	p.Write(seqPacket(20))
	if len(r.got) != 19 || r.ends.Load() != 1 {
		t.Fatalf("after Close: %d packets, end called %d times; want 19, once", len(r.got), r.ends.Load())
	}
}

// TestPushBuffer_WriteAllocatesNothing: handing a packet over, and a tick
// between packets, allocate nothing.
func TestPushBuffer_WriteAllocatesNothing(t *testing.T) {
	p := NewPushBuffer()
	buf := make([]byte, 1500)
	n := 0
	p.Push(func() bool {
		if _, err := p.Read(buf); err != nil {
			return false
		}
		n++
		return true
	}, func() {})
	pkt := seqPacket(1)
	fn := func() {}
	if a := testing.AllocsPerRun(1000, func() {
		p.Write(pkt)
		p.Between(fn)
	}); a != 0 {
		t.Errorf("%v allocations per packet and tick, want 0", a)
	}
	if n < 1000 {
		t.Errorf("%d packets handed over, want at least 1000", n)
	}
}

// TestPushBuffer_StopNeverWaits: Stop while a packet is being handed over
// returns at once; end is called after that hand-over returns, once, and no
// packet is handed over after it.
func TestPushBuffer_StopNeverWaits(t *testing.T) {
	p := NewPushBuffer()
	r := newPushRecorder(p)
	inside, release := make(chan struct{}), make(chan struct{})
	p.Push(func() bool {
		ok := r.next()
		if len(r.got) == 1 {
			close(inside)
			<-release
		}
		return ok
	}, r.end)
	go p.Write(seqPacket(0))
	<-inside
	p.Stop() // does not wait for the hand-over in progress
	p.Stop()
	select {
	case <-r.ended:
		t.Fatal("end was called while a packet was being handed over")
	default:
	}
	if p.Between(func() { t.Error("Between ran after Stop") }) {
		t.Error("Between reported it ran after Stop")
	}
	close(release)
	<-r.ended
	p.Write(seqPacket(1))
	p.Close()
	if len(r.got) != 1 || r.ends.Load() != 1 {
		t.Fatalf("%d packets handed over, end called %d times; want 1, once", len(r.got), r.ends.Load())
	}
}

// TestPushBuffer_NextFailsEndsIt: a read that fails (next false), while
// Push hands over what was held or on a later packet, ends the buffer:
// end is called once, next never again.
func TestPushBuffer_NextFailsEndsIt(t *testing.T) {
	for _, failAt := range []int{2, 7} { // held: packets 0-4; pushed: 5-9
		p := NewPushBuffer()
		calls := 0
		ends := make(chan struct{}, 2)
		for i := range uint32(5) {
			p.Write(seqPacket(i))
		}
		p.Push(func() bool {
			calls++
			return calls <= failAt
		}, func() { ends <- struct{}{} })
		for i := uint32(5); i < 10; i++ {
			p.Write(seqPacket(i))
		}
		<-ends
		p.Stop()
		p.Close()
		if calls != failAt+1 || len(ends) != 0 {
			t.Errorf("failing at call %d: next called %d times, end %d more times; want %d, none", failAt+1, calls, len(ends), failAt+1)
		}
	}
}

// TestPushBuffer_WriterRacesTheSwitch: a writer writes 2000 packets while
// Push starts and another goroutine ticks (Between) all along: every
// packet is handed over once, in order, and never while a tick runs; 50
// times.
func TestPushBuffer_WriterRacesTheSwitch(t *testing.T) {
	const packets = 2000
	for round := range 50 {
		p := NewPushBuffer()
		r := newPushRecorder(p)
		var wg sync.WaitGroup
		wg.Add(2)
		written := make(chan struct{})
		go func() { // srtp's session goroutine
			defer wg.Done()
			defer close(written)
			for i := range uint32(packets) {
				p.Write(seqPacket(i))
			}
		}()
		ticks := 0
		go func() { // the deferred decoding's ticks
			defer wg.Done()
			for {
				select {
				case <-written:
					return
				default:
				}
				p.Between(func() {
					if r.inNext.Load() {
						panic("a tick ran while a packet was handed over")
					}
					ticks++
				})
			}
		}()
		for range round * 10 { // the switch comes later in each round
			p.Between(func() {})
		}
		p.Push(r.next, r.end)
		wg.Wait()
		inOrder(t, r.got, 0, packets) // none left held
		if !p.Between(func() {}) {
			t.Fatal("the buffer is busy once the writer and the ticks are done")
		}
		p.Close()
		<-r.ended
		if r.ends.Load() != 1 {
			t.Fatalf("end called %d times", r.ends.Load())
		}
	}
}

// TestPushBuffer_EndOnce: Stop, Close and a failing read at once call end
// exactly once.
func TestPushBuffer_EndOnce(t *testing.T) {
	for range 200 {
		p := NewPushBuffer()
		var ends atomic.Int32
		endCalled := make(chan struct{}, 3)
		fail := atomic.Bool{}
		buf := make([]byte, 1500)
		p.Push(func() bool {
			if _, err := p.Read(buf); err != nil || fail.Load() {
				return false
			}
			return true
		}, func() { ends.Add(1); endCalled <- struct{}{} })
		var wg sync.WaitGroup
		wg.Add(3)
		go func() { defer wg.Done(); fail.Store(true); p.Write(seqPacket(1)) }()
		go func() { defer wg.Done(); p.Stop() }()
		go func() { defer wg.Done(); p.Close() }()
		wg.Wait()
		<-endCalled
		// A second end would have been started by now (each call starts
		// it before it returns); give it a moment to show.
		select {
		case <-endCalled:
			t.Fatal("end called twice")
		case <-time.After(time.Millisecond):
		}
		if ends.Load() != 1 {
			t.Fatalf("end called %d times", ends.Load())
		}
	}
}

var _ io.ReadWriteCloser = (*PushBuffer)(nil)
