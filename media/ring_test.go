package media

import (
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

func TestNewRing_RoundsCapacityUp(t *testing.T) {
	tests := []struct{ in, want int }{{-1, 2}, {0, 2}, {1, 2}, {2, 2}, {3, 4}, {160, 256}, {1024, 1024}, {1025, 2048}}
	for _, tt := range tests {
		if got := NewRing(tt.in).Cap(); got != tt.want {
			t.Errorf("NewRing(%d).Cap() = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestRing_WriteReadWrapsAndDropsOnOverflow(t *testing.T) {
	r := NewRing(8)
	if n := r.Write([]int16{1, 2, 3, 4, 5, 6}); n != 6 {
		t.Fatalf("Write = %d, want 6", n)
	}
	got := make([]int16, 4)
	if n := r.Read(got); n != 4 || !slices.Equal(got, []int16{1, 2, 3, 4}) {
		t.Fatalf("Read = %d %v", n, got)
	}
	// 2 buffered, 6 free: 7 offered, 6 stored across the wrap, 1 dropped.
	if n := r.Write([]int16{7, 8, 9, 10, 11, 12, 13}); n != 6 {
		t.Fatalf("Write = %d, want 6", n)
	}
	got = make([]int16, 10)
	if n := r.Read(got); n != 8 || !slices.Equal(got[:8], []int16{5, 6, 7, 8, 9, 10, 11, 12}) {
		t.Fatalf("Read = %d %v", n, got)
	}
	if r.Dropped() != 1 || r.Written() != 13 || r.ReadCount() != 12 || r.Len() != 0 {
		t.Errorf("dropped %d written %d read %d len %d", r.Dropped(), r.Written(), r.ReadCount(), r.Len())
	}
}

func TestRing_PlayClaimsSilenceAndDropsLateSamples(t *testing.T) {
	r := NewRing(16)
	out := make([]int16, 4)
	// Position 0..3 arrive, 4..7 do not arrive in time.
	r.WriteAt(0, []int16{1, 2, 3, 4})
	if n := r.Play(out); n != 4 || !slices.Equal(out, []int16{1, 2, 3, 4}) {
		t.Fatalf("Play = %d %v", n, out)
	}
	if n := r.Play(out); n != 0 || !slices.Equal(out, []int16{0, 0, 0, 0}) {
		t.Fatalf("Play = %d %v, want silence", n, out)
	}
	// The frame for 4..7 is late and dropped; of 6..9 only 8..9 is kept.
	if n := r.WriteAt(4, []int16{5, 6, 7, 8}); n != 0 {
		t.Fatalf("late WriteAt stored %d, want 0", n)
	}
	if n := r.WriteAt(6, []int16{7, 8, 9, 10}); n != 2 {
		t.Fatalf("half-late WriteAt stored %d, want 2", n)
	}
	// Gap 10..11 becomes silence, 12..13 data.
	r.WriteAt(12, []int16{13, 14})
	if n := r.Play(out); n != 4 || !slices.Equal(out, []int16{9, 10, 0, 0}) {
		t.Fatalf("Play = %d %v", n, out)
	}
	if n := r.Play(out); n != 2 || !slices.Equal(out, []int16{13, 14, 0, 0}) {
		t.Fatalf("Play = %d %v", n, out)
	}
	if r.Head() != 16 || r.Tail() != 16 || r.Missing() != 6 {
		t.Errorf("head %d tail %d missing %d", r.Head(), r.Tail(), r.Missing())
	}
	checkRingInvariant(t, r)
}

func TestRing_WriteAtGapLargerThanRing(t *testing.T) {
	r := NewRing(8)
	// The gap fills the whole ring; the data has no room and is dropped.
	if n := r.WriteAt(100, []int16{1, 2}); n != 0 {
		t.Fatalf("stored %d, want 0", n)
	}
	if r.Len() != 8 || r.Dropped() != 2 {
		t.Fatalf("len %d dropped %d", r.Len(), r.Dropped())
	}
	out := make([]int16, 8)
	for range 12 { // play through the gap
		r.Play(out)
	}
	if n := r.WriteAt(100, []int16{1, 2}); n != 2 {
		t.Fatalf("stored %d, want 2", n)
	}
	if n := r.Skip(4); n != 4 { // the gap 96..99 is buffered silence
		t.Fatalf("Skip(4) = %d, want 4", n)
	}
	if n := r.Play(out[:3]); n != 2 || !slices.Equal(out[:3], []int16{1, 2, 0}) {
		t.Fatalf("Play = %d %v", n, out[:3])
	}
	checkRingInvariant(t, r)
}

func checkRingInvariant(t *testing.T, r *Ring) {
	t.Helper()
	if w, rd, d, l := r.Written(), r.ReadCount(), r.Dropped(), uint64(r.Len()); w != rd+d+l {
		t.Errorf("written %d != read %d + dropped %d + len %d", w, rd, d, l)
	}
}

// TestRing_StressSPSC runs one producer and one consumer at full speed (run it
// with -race). The producer records which samples each Write stored; the
// consumer must read exactly those, in order, and every sample written is
// either read or dropped.
func TestRing_StressSPSC(t *testing.T) {
	const total = 1_000_000
	r := NewRing(1024)
	got := make([]int16, 0, total)
	done := make(chan struct{})
	var producerDone atomic.Bool
	go func() {
		defer close(done)
		buf := make([]int16, 97)
		for {
			finished := producerDone.Load() // before the read: nothing may follow
			n := r.Read(buf)
			got = append(got, buf[:n]...)
			if n == 0 && finished {
				return
			}
		}
	}()
	want := make([]int16, 0, total)
	chunk := make([]int16, 160)
	for next := 0; next < total; {
		n := min(len(chunk)-next%7, total-next)
		for i := range n {
			chunk[i] = int16(next + i)
		}
		// Three writes in four wait for room; the fourth may overflow.
		for next/160%4 != 0 && r.Len()+n > r.Cap() {
			runtime.Gosched()
		}
		stored := r.Write(chunk[:n])
		want = append(want, chunk[:stored]...)
		next += n
	}
	producerDone.Store(true)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("consumer did not finish")
	}
	if !slices.Equal(got, want) {
		t.Fatalf("consumer read %d samples, producer stored %d: sequences differ", len(got), len(want))
	}
	// The sides' own tallies against the ring's counters: written == read +
	// dropped (nothing is left buffered).
	if r.Written() != total || r.ReadCount() != uint64(len(got)) || r.Len() != 0 {
		t.Fatalf("ring: written %d read %d len %d; tallies: written %d read %d", r.Written(), r.ReadCount(), r.Len(), total, len(got))
	}
	if uint64(total) != uint64(len(got))+r.Dropped() {
		t.Fatalf("written %d != read %d + dropped %d", total, len(got), r.Dropped())
	}
	t.Logf("written %d read %d dropped %d", r.Written(), r.ReadCount(), r.Dropped())
}

// TestRing_StressTimeline runs a producer placing frames at timeline positions
// with gaps against a consumer playing at its own pace (-race): every sample
// played is either silence or the value written for that position, and the
// counters balance.
func TestRing_StressTimeline(t *testing.T) {
	const frames = 40_000
	const frame = 40
	r := NewRing(512)
	value := func(pos uint64) int16 { return int16(pos%30000) + 1 } // never 0
	done := make(chan string, 1)
	stop := make(chan struct{})
	go func() {
		buf := make([]int16, 32)
		for {
			select {
			case <-stop:
				done <- ""
				return
			default:
			}
			pos := r.Head()
			r.Play(buf)
			for i, v := range buf {
				if v != 0 && v != value(pos+uint64(i)) {
					done <- "wrong sample at a position"
					return
				}
			}
		}
	}()
	p := make([]int16, frame)
	for f := range uint64(frames) {
		if f%5 == 3 { // a lost frame: the next write leaves a gap
			continue
		}
		pos := f * frame
		for i := range p {
			p[i] = value(pos + uint64(i))
		}
		r.WriteAt(pos, p)
		runtime.Gosched()
	}
	close(stop)
	select {
	case msg := <-done:
		if msg != "" {
			t.Fatal(msg)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("consumer did not finish")
	}
	checkRingInvariant(t, r)
	t.Logf("written %d read %d dropped %d missing %d", r.Written(), r.ReadCount(), r.Dropped(), r.Missing())
}

func TestRing_ZeroAllocs(t *testing.T) {
	r := NewRing(1024)
	in := make([]int16, 160)
	out := make([]int16, 160)
	allocs := testing.AllocsPerRun(1000, func() {
		r.Write(in)
		r.Read(out)
		r.WriteAt(r.Tail()+80, in)
		r.Play(out)
		r.Play(out)
		r.Skip(10)
	})
	if allocs != 0 {
		t.Errorf("ring operations allocate %.1f times per run, want 0", allocs)
	}
}

// ringModel is the slice model of Ring used by FuzzRing.
type ringModel struct {
	size                           int
	queue                          []int16 // buffered samples, from head
	head                           uint64
	written, nread, dropped, missd uint64
}

func (m *ringModel) tail() uint64 { return m.head + uint64(len(m.queue)) }

func (m *ringModel) writeAt(pos uint64, p []int16) int {
	m.written += uint64(len(p))
	t := m.tail()
	if pos < t {
		skip := min(t-pos, uint64(len(p)))
		m.dropped += skip
		p, pos = p[skip:], pos+skip
	}
	if len(p) == 0 {
		return 0
	}
	gap := min(int(pos-t), m.size-len(m.queue))
	m.written += uint64(gap)
	m.queue = append(m.queue, make([]int16, gap)...)
	room := min(len(p), m.size-len(m.queue))
	m.queue = append(m.queue, p[:room]...)
	m.dropped += uint64(len(p) - room)
	return room
}

func (m *ringModel) read(n int) []int16 {
	n = min(n, len(m.queue))
	out := slices.Clone(m.queue[:n])
	m.queue = m.queue[n:]
	m.head += uint64(n)
	m.nread += uint64(n)
	return out
}

func (m *ringModel) play(n int) []int16 {
	out := m.read(n)
	m.missd += uint64(n - len(out))
	m.head += uint64(n - len(out))
	return append(out, make([]int16, n-len(out))...)
}

// FuzzRing drives a Ring and a slice model with the same operations and
// compares every result and counter.
func FuzzRing(f *testing.F) {
	f.Add([]byte{0, 10, 1, 5, 2, 3, 3, 9, 4, 2})
	f.Add([]byte{3, 20, 0, 7, 1, 7, 0, 30, 0, 30, 2, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		r := NewRing(16)
		m := &ringModel{size: 16}
		var v int16
		next := func(n int) []int16 {
			p := make([]int16, n)
			for i := range p {
				v++
				p[i] = v
			}
			return p
		}
		for len(ops) >= 2 {
			op, arg := ops[0]%5, int(ops[1]%40)
			ops = ops[2:]
			switch op {
			case 0: // Write
				p := next(arg)
				got, want := r.Write(p), m.writeAt(m.tail(), p)
				if got != want {
					t.Fatalf("Write(%d) = %d, model %d", arg, got, want)
				}
			case 1: // WriteAt relative to head: -8..+31
				pos := int64(m.head) + int64(arg) - 8
				pos = max(pos, 0)
				p := next(arg % 9)
				got, want := r.WriteAt(uint64(pos), p), m.writeAt(uint64(pos), p)
				if got != want {
					t.Fatalf("WriteAt(%d, %d) = %d, model %d", pos, len(p), got, want)
				}
			case 2: // Read
				p := make([]int16, arg)
				n := r.Read(p)
				if want := m.read(arg); !slices.Equal(p[:n], want) {
					t.Fatalf("Read(%d) = %v, model %v", arg, p[:n], want)
				}
			case 3: // Play
				p := make([]int16, arg)
				r.Play(p)
				if want := m.play(arg); !slices.Equal(p, want) {
					t.Fatalf("Play(%d) = %v, model %v", arg, p, want)
				}
			case 4: // Skip
				want := min(arg, len(m.queue))
				m.play(arg)
				if got := r.Skip(arg); got != want {
					t.Fatalf("Skip(%d) = %d, model %d", arg, got, want)
				}
			}
			if r.Head() != m.head || r.Tail() != m.tail() || r.Len() != len(m.queue) ||
				r.Written() != m.written || r.ReadCount() != m.nread || r.Dropped() != m.dropped || r.Missing() != m.missd {
				t.Fatalf("ring head %d tail %d len %d w %d r %d d %d m %d; model head %d tail %d len %d w %d r %d d %d m %d",
					r.Head(), r.Tail(), r.Len(), r.Written(), r.ReadCount(), r.Dropped(), r.Missing(),
					m.head, m.tail(), len(m.queue), m.written, m.nread, m.dropped, m.missd)
			}
			checkRingInvariant(t, r)
		}
	})
}

func BenchmarkRing_WriteRead(b *testing.B) {
	r := NewRing(4096)
	in := make([]int16, 160)
	out := make([]int16, 160)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)) * 2)
	for b.Loop() {
		r.Write(in)
		r.Read(out)
	}
}

func BenchmarkRing_WriteAtPlay(b *testing.B) {
	r := NewRing(4096)
	in := make([]int16, 160)
	out := make([]int16, 160)
	var pos uint64
	b.ReportAllocs()
	b.SetBytes(int64(len(in)) * 2)
	for b.Loop() {
		r.WriteAt(pos, in)
		r.Play(out)
		pos += 160
	}
}
