package media

import (
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

func TestNewRing_Capacity(t *testing.T) {
	tests := []struct{ in, want int }{{-1, 2}, {0, 2}, {1, 2}, {2, 2}, {3, 3}, {160, 160}, {42000, 42000}}
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
	if r.Dropped() != 1 || r.Len() != 0 {
		t.Errorf("dropped %d len %d", r.Dropped(), r.Len())
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
	if r.Head() != 16 || r.Tail() != 16 || r.Missing() != 6 || r.Dropped() != 6 {
		t.Errorf("head %d tail %d missing %d dropped %d", r.Head(), r.Tail(), r.Missing(), r.Dropped())
	}
}

// TestRing_PutOutOfOrder writes a later packet before an earlier one: both
// land at their places, the frontier waits for the earlier one, and the
// consumer cannot take undecided audio without claiming it.
func TestRing_PutOutOfOrder(t *testing.T) {
	r := NewRing(32)
	r.WriteAt(0, []int16{1, 2, 3, 4})
	r.Put(8, []int16{9, 10, 11, 12}) // 4..7 missing so far
	if r.Tail() != 4 || r.End() != 12 {
		t.Fatalf("tail %d end %d", r.Tail(), r.End())
	}
	r.Read(make([]int16, 4))
	if _, _, ok := r.take(8, false); ok {
		t.Fatal("took undecided positions without claiming")
	}
	r.Put(4, []int16{5, 6, 7, 8}) // the late one, within the budget
	r.Decide(12)
	out := make([]int16, 10)
	if n := r.Play(out); n != 8 || !slices.Equal(out, []int16{5, 6, 7, 8, 9, 10, 11, 12, 0, 0}) {
		t.Fatalf("Play = %d %v", n, out)
	}
	if r.Missing() != 2 || r.Dropped() != 0 {
		t.Errorf("missing %d dropped %d", r.Missing(), r.Dropped())
	}
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
	if n := r.Skip(4); n != 4 { // the gap 96..99 is decided silence
		t.Fatalf("Skip(4) = %d, want 4", n)
	}
	if n := r.Play(out[:3]); n != 2 || !slices.Equal(out[:3], []int16{1, 2, 0}) {
		t.Fatalf("Play = %d %v", n, out[:3])
	}
}

// TestRing_StressSPSC runs one producer and one consumer at full speed (run it
// with -race). The producer records which samples each Write stored; the
// consumer must read exactly those, in order.
func TestRing_StressSPSC(t *testing.T) {
	t.Run("fixed", func(t *testing.T) { stressSPSC(t, NewRing(1000)) })
	t.Run("growing", func(t *testing.T) { stressSPSC(t, NewGrowingRing(10, 1000)) })
}

func stressSPSC(t *testing.T, r *Ring) {
	const total = 1_000_000
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
		for next/160%4 != 0 && r.Len()+n > r.MaxCap() {
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
	if uint64(total) != uint64(len(got))+r.Dropped() {
		t.Fatalf("written %d != read %d + dropped %d", total, len(got), r.Dropped())
	}
}

// TestRing_StressTimeline runs a producer placing frames out of order (pairs
// swapped, some lost) against a consumer that claims at its own pace (-race):
// every sample played is either silence or the value written for that
// position.
func TestRing_StressTimeline(t *testing.T) {
	t.Run("fixed", func(t *testing.T) { stressTimeline(t, NewRing(500)) })
	t.Run("growing", func(t *testing.T) { stressTimeline(t, NewGrowingRing(8, 500)) })
}

func stressTimeline(t *testing.T, r *Ring) {
	const frames = 40_000
	const frame = 40
	value := stressValue
	stop := make(chan struct{})
	done := playChecked(r, 32, stop)
	p := make([]int16, frame)
	put := func(f uint64) {
		pos := f * frame
		for i := range p {
			p[i] = value(pos + uint64(i))
		}
		r.Put(pos, p)
	}
	for f := uint64(0); f < frames; f += 2 {
		if f%10 != 4 { // a lost frame
			put(f + 1)
		}
		put(f)
		r.Decide((f + 2) * frame)
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
	t.Logf("dropped %d missing %d", r.Dropped(), r.Missing())
}

// stressValue is the sample the stress tests write at pos: never 0.
func stressValue(pos uint64) int16 { return int16(pos%30000) + 1 }

// playChecked plays r, n samples at a time, on a goroutine until stop is
// closed, and checks that every sample played is silence or stressValue of
// its position. done gets "" at the stop, or the first wrong sample.
func playChecked(r *Ring, n int, stop <-chan struct{}) (done <-chan string) {
	out := make(chan string, 1)
	go func() {
		buf := make([]int16, n)
		for {
			select {
			case <-stop:
				out <- ""
				return
			default:
			}
			pos := r.Head()
			r.Play(buf)
			for i, v := range buf {
				if want := stressValue(pos + uint64(i)); v != 0 && v != want {
					out <- fmt.Sprintf("position %d holds %d, want %d or silence", pos+uint64(i), v, want)
					return
				}
			}
		}
	}()
	return out
}

// TestGrowingRing_GrowsWhenTheProducerRunsAhead: a ring of 100 samples
// that may hold 1000 takes audio placed 500 samples ahead of its consumer
// (it grows to 800: doubling), keeps what was written before, plays it all
// back in place, and drops only what lies beyond its maximum.
func TestGrowingRing_GrowsWhenTheProducerRunsAhead(t *testing.T) {
	r := NewGrowingRing(100, 1000)
	if r.Cap() != 100 || r.MaxCap() != 1000 {
		t.Fatalf("Cap %d, MaxCap %d", r.Cap(), r.MaxCap())
	}
	early := make([]int16, 50)
	for i := range early {
		early[i] = int16(1000 + i)
	}
	if n := r.Put(20, early); n != 50 {
		t.Fatalf("Put(20) stored %d", n)
	}
	ahead := make([]int16, 100)
	for i := range ahead {
		ahead[i] = int16(5000 + i)
	}
	if n := r.Put(500, ahead); n != 100 || r.Cap() != 800 {
		t.Fatalf("Put(500) stored %d, Cap %d; want 100 and 800", n, r.Cap())
	}
	if n := r.Put(1500, ahead); n != 0 || r.Cap() != 1000 || r.Dropped() != 100 {
		t.Fatalf("Put(1500) stored %d, Cap %d, dropped %d; want 0, 1000 (the maximum), 100", n, r.Cap(), r.Dropped())
	}
	r.Decide(600)
	out := make([]int16, 600)
	if n := r.Play(out); n != 600 {
		t.Fatalf("played %d written samples, want 600", n)
	}
	for i, v := range out {
		want := int16(0)
		switch {
		case i >= 20 && i < 70:
			want = early[i-20]
		case i >= 500:
			want = ahead[i-500]
		}
		if v != want {
			t.Fatalf("position %d: %d, want %d", i, v, want)
		}
	}
}

// TestGrowingRing_ShrinksWhenTheLagEnds: a ring that grew while its
// producer ran ahead shrinks back to its initial size once shrinkAfter
// writes in a row fit in three quarters of it, keeping what the consumer has not
// taken; one write that does not fit starts the count again.
func TestGrowingRing_ShrinksWhenTheLagEnds(t *testing.T) {
	r := NewGrowingRing(100, 1000)
	value := func(pos uint64) int16 { return int16(pos%30000) + 1 }
	frame := make([]int16, 20)
	write := func(pos uint64) {
		for i := range frame {
			frame[i] = value(pos + uint64(i))
		}
		if n := r.WriteAt(pos, frame); n != len(frame) {
			t.Fatalf("WriteAt(%d) stored %d", pos, n)
		}
	}
	write(600) // the lag: 620 samples ahead of the consumer
	if r.Cap() != 800 {
		t.Fatalf("Cap %d after a write 620 ahead, want 800", r.Cap())
	}
	out := make([]int16, 610)
	r.Play(out)
	pos := uint64(620)
	for i := range shrinkAfter - 1 { // in step: the span is 30 at most
		write(pos)
		pos += 20
		if i == 10 {
			write(pos + 40) // one not in step (80 ahead): the count starts again
			pos += 60
			r.Play(out[:60])
		}
		r.Play(out[:20])
	}
	if r.Cap() != 800 {
		t.Fatalf("Cap %d before shrinkAfter writes in step, want 800", r.Cap())
	}
	for r.Cap() != 100 {
		if pos > 620+20*2*shrinkAfter {
			t.Fatalf("Cap %d after %d writes in step, want 100", r.Cap(), 2*shrinkAfter)
		}
		write(pos)
		pos += 20
		r.Play(out[:20])
	}
	// What was not played yet moved to the smaller buffer.
	write(pos)
	h := r.Head()
	got := make([]int16, pos+20-h)
	if n := r.Read(got); uint64(n) != pos+20-h {
		t.Fatalf("read %d after the shrink, want %d", n, pos+20-h)
	}
	for i, v := range got {
		if v != value(h+uint64(i)) {
			t.Fatalf("position %d: %d after the shrink, want %d", h+uint64(i), v, value(h+uint64(i)))
		}
	}
}

// TestGrowingRing_StressGrowth grows many rings while their consumer plays
// (-race): each starts at 4 samples, and the producer places frames up to
// 1500 samples ahead of the frontier (out of order, some lost), so every
// ring grows several times under the consumer. Every sample played is
// either silence or the value written for that position.
func TestGrowingRing_StressGrowth(t *testing.T) {
	const frame = 40
	value := stressValue
	p := make([]int16, frame)
	for round := range 300 {
		r := NewGrowingRing(4, 4096)
		stop := make(chan struct{})
		done := playChecked(r, 16, stop)
		for f := uint64(0); f < 200; f += 4 {
			for _, k := range []uint64{3, 1, 0} { // f+2 is lost; the rest out of order
				pos := (f+k)*frame + 1500*(k%2) // every other one far ahead: growth
				for i := range p {
					p[i] = value(pos + uint64(i))
				}
				r.Put(pos, p)
			}
			r.Decide((f + 4) * frame)
		}
		close(stop)
		if msg := <-done; msg != "" {
			t.Fatalf("round %d: %s", round, msg)
		}
	}
}

// TestGrowingRing_StressGrowAndShrink grows and shrinks rings while their
// consumer reads (-race): the producer runs up to 1500 samples ahead (the
// ring grows), then writes in step with the consumer until it shrinks back,
// three times per ring. The consumer reads every decided sample: each is
// the value written for its position, or silence where nothing was.
func TestGrowingRing_StressGrowAndShrink(t *testing.T) {
	const frame = 16
	value := func(pos uint64) int16 { return int16(pos%30000) + 1 } // never 0
	p := make([]int16, frame)
	fill := func(pos uint64) []int16 {
		for i := range p {
			p[i] = value(pos + uint64(i))
		}
		return p
	}
	for round := range 50 {
		r := NewGrowingRing(64, 4096)
		done := make(chan string, 1)
		stop := make(chan struct{})
		go func() {
			buf := make([]int16, 24)
			for {
				pos := r.Head()
				n := r.Read(buf)
				for i, v := range buf[:n] {
					if v != 0 && v != value(pos+uint64(i)) {
						done <- fmt.Sprintf("round %d: position %d holds %d, want %d or silence", round, pos+uint64(i), v, value(pos+uint64(i)))
						return
					}
				}
				if n == 0 {
					select {
					case <-stop:
						done <- ""
						return
					default:
						runtime.Gosched()
					}
				}
			}
		}()
		pos := uint64(0)
		for range 3 {
			for range 20 { // ahead: a frame 1500 samples on, then the frontier moves up to it
				r.Put(pos+1500, fill(pos+1500))
				r.WriteAt(pos, fill(pos))
				pos += frame
			}
			r.Decide(pos + 1500 + frame)
			pos += 1500 + frame
			for i := 0; r.Cap() != 64; i++ { // in step: wait for the consumer, then write
				if i > 2*shrinkAfter+200 {
					close(stop)
					t.Fatalf("round %d: Cap %d after %d writes in step, want 64", round, r.Cap(), i)
				}
				for r.Head()+frame < pos {
					runtime.Gosched()
				}
				r.WriteAt(pos, fill(pos))
				pos += frame
			}
		}
		close(stop)
		if msg := <-done; msg != "" {
			t.Fatal(msg)
		}
	}
}

func TestRing_ZeroAllocs(t *testing.T) {
	r := NewRing(1024)
	in := make([]int16, 160)
	out := make([]int16, 160)
	allocs := testing.AllocsPerRun(1000, func() {
		r.Write(in)
		r.Read(out)
		r.Put(r.Tail()+80, in)
		r.WriteAt(r.Tail()+80, in)
		r.Play(out)
		r.Play(out)
		r.Skip(10)
	})
	if allocs != 0 {
		t.Errorf("ring operations allocate %.1f times per run, want 0", allocs)
	}
}

// ringModel is the ideal timeline FuzzRing compares the Ring with: a map of
// position to sample, with no capacity but the ring's rules.
type ringModel struct {
	size             uint64
	head, tail, end  uint64
	v                map[uint64]int16
	dropped, missing uint64
}

func (m *ringModel) write(pos uint64, p []int16, decide uint64) int {
	data, dpos := p, pos
	if dpos < m.tail {
		skip := min(m.tail-dpos, uint64(len(data)))
		data, dpos = data[skip:], dpos+skip
	}
	limit := m.head + m.size
	stored := uint64(0)
	if dpos < limit {
		stored = min(uint64(len(data)), limit-dpos)
	}
	newTail := max(m.tail, min(decide, limit))
	if stored == 0 && newTail == m.tail {
		m.dropped += uint64(len(p))
		return 0
	}
	for i := range stored {
		m.v[dpos+i] = data[i]
	}
	if stored > 0 {
		m.end = max(m.end, dpos+stored)
	}
	m.end = max(m.end, newTail, m.tail)
	m.tail = newTail
	m.dropped += uint64(len(p)) - stored
	return int(stored)
}

func (m *ringModel) play(n uint64, decidedOnly bool) ([]int16, int) {
	if decidedOnly {
		n = min(n, m.tail-m.head)
	}
	out := make([]int16, n)
	w := min(max(m.end, m.tail), m.head+n) - m.head
	for i := range w {
		out[i] = m.v[m.head+i]
	}
	if m.head+n > m.tail {
		m.missing += n - w
		m.tail = m.head + n
	}
	for i := range n {
		delete(m.v, m.head+i)
	}
	m.head += n
	return out, int(w)
}

// FuzzRing drives a Ring and the ideal model with the same operations and
// compares every result and counter.
func FuzzRing(f *testing.F) {
	f.Add([]byte{0, 10, 1, 5, 2, 3, 3, 9, 4, 2})
	f.Add([]byte{3, 20, 0, 7, 1, 7, 0, 30, 0, 30, 2, 1, 5, 12, 6, 20})
	f.Fuzz(func(t *testing.T, ops []byte) {
		r := NewRing(16)
		m := &ringModel{size: 16, v: map[uint64]int16{}}
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
			op, arg := ops[0]%7, int(ops[1]%40)
			ops = ops[2:]
			pos := uint64(max(int64(m.head)+int64(arg)-8, 0)) // -8..+31 from head
			switch op {
			case 0: // Write
				p := next(arg)
				got, want := r.Write(p), m.write(m.tail, p, m.tail+uint64(arg))
				if got != want {
					t.Fatalf("Write(%d) = %d, model %d", arg, got, want)
				}
			case 1: // WriteAt
				p := next(arg % 9)
				if got, want := r.WriteAt(pos, p), m.write(pos, p, pos+uint64(len(p))); got != want {
					t.Fatalf("WriteAt(%d, %d) = %d, model %d", pos, len(p), got, want)
				}
			case 5: // Put
				p := next(arg % 9)
				if got, want := r.Put(pos, p), m.write(pos, p, 0); got != want {
					t.Fatalf("Put(%d, %d) = %d, model %d", pos, len(p), got, want)
				}
			case 6: // Decide
				r.Decide(pos)
				m.write(pos, nil, pos)
			case 2: // Read
				p := make([]int16, arg)
				n := r.Read(p)
				if want, _ := m.play(uint64(arg), true); !slices.Equal(p[:n], want) {
					t.Fatalf("Read(%d) = %v, model %v", arg, p[:n], want)
				}
			case 3: // Play
				p := make([]int16, arg)
				n := r.Play(p)
				if want, w := m.play(uint64(arg), false); !slices.Equal(p, want) || n != w {
					t.Fatalf("Play(%d) = %d %v, model %d %v", arg, n, p, w, want)
				}
			case 4: // Skip
				_, w := m.play(uint64(arg), false)
				if got := r.Skip(arg); got != w {
					t.Fatalf("Skip(%d) = %d, model %d", arg, got, w)
				}
			}
			if r.Head() != m.head || r.Tail() != m.tail || r.End() != max(m.end, m.tail) || r.Dropped() != m.dropped || r.Missing() != m.missing {
				t.Fatalf("ring head %d tail %d end %d d %d m %d; model head %d tail %d end %d d %d m %d",
					r.Head(), r.Tail(), r.End(), r.Dropped(), r.Missing(), m.head, m.tail, m.end, m.dropped, m.missing)
			}
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
