package reorder

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// capture is a Sink that records what it got and checks every payload is
// the one made for its sequence number and timestamp.
type capture struct {
	t    testing.TB
	seqs []uint16
	tss  []uint32
	mark []bool
	err  error // returned by every write
}

func (c *capture) WriteRTP(p *rtp.Packet) error {
	if !slices.Equal(p.Payload, payloadOf(p.SequenceNumber, p.Timestamp, len(p.Payload))) {
		c.t.Errorf("packet %d: payload %x is not its own", p.SequenceNumber, p.Payload)
	}
	c.seqs = append(c.seqs, p.SequenceNumber)
	c.tss = append(c.tss, p.Timestamp)
	c.mark = append(c.mark, p.Marker)
	return c.err
}

// payloadOf is the payload of packet seq: n bytes that say which packet it is.
func payloadOf(seq uint16, ts uint32, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(int(seq)*7 + int(ts>>3) + i)
	}
	return b
}

func pkt(seq uint16, n int) *rtp.Packet {
	ts := uint32(seq) * 960
	return &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: ts, SSRC: 1, Marker: seq%3 == 0},
		Payload: payloadOf(seq, ts, n)}
}

var t0 = time.Unix(1_700_000_000, 0)

// at is an arrival: seq at ms after t0.
type at struct {
	seq uint16
	ms  int
}

// TestBuffer_LateBurstIsNoRestart: a span of packets held in the network
// past the budget while the packets after it went on (given up on, then
// delivered in one burst, 75 of them) is late, all of it, and the packets
// after the burst pass on; a sender that restarted its numbering backward,
// its timestamps going on, restarts the sequence after maxLateRun of them.
// Before, the ninth late packet of the burst restarted the sequence: the
// rest of the burst was passed on after newer audio (a file writer drops
// or re-anchors it) and the packets after the burst were held as ahead of
// it, then skipped (TestServe_TooLateForTheMixIsShedNotShifted: the track
// file lacked 180 packets).
func TestBuffer_LateBurstIsNoRestart(t *testing.T) {
	push := func(b *Buffer, seq uint16, ts uint32, ms int) {
		t.Helper()
		p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: ts, SSRC: 1},
			Payload: payloadOf(seq, ts, 100)}
		if err := b.Push(p, t0.Add(time.Duration(ms)*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	c := &capture{t: t}
	b := New(c, Config{Budget: time.Second})
	ms := 0
	for seq := uint16(0); seq < 100; seq++ { // 0-99, with 20-94 held in the network
		if seq < 20 || seq >= 95 {
			push(b, seq, uint32(seq)*960, ms)
		}
		ms += 20
	}
	for seq := uint16(100); seq < 200; seq++ { // 2 s on: the gap was given up on
		push(b, seq, uint32(seq)*960, ms)
		ms += 20
	}
	for seq := uint16(20); seq < 95; seq++ { // the burst
		push(b, seq, uint32(seq)*960, ms)
	}
	for seq := uint16(200); seq < 210; seq++ {
		push(b, seq, uint32(seq)*960, ms)
		ms += 20
	}
	want := Stats{Skipped: 75, Reordered: 50, Late: 75}
	if got := b.Stats(); got != want || len(c.seqs) != 135 || c.seqs[len(c.seqs)-1] != 209 {
		t.Errorf("stats %v, want %v; passed on %d packets, the last %d: want 135, the last 209", got, want, len(c.seqs), c.seqs[len(c.seqs)-1])
	}

	// A sender that restarted its numbering 1000 back, its audio going on.
	c = &capture{t: t}
	b = New(c, Config{})
	push(b, 5000, 0, 0)
	for i := range 10 {
		push(b, 4000+uint16(i), uint32(i+1)*960, 20*(i+1))
	}
	if want := []uint16{5000, 4008, 4009}; !slices.Equal(c.seqs, want) {
		t.Errorf("a restarted numbering: passed on %v, want %v", c.seqs, want)
	}
	if got, want := b.Stats(), (Stats{Late: 8, Restarts: 1}); got != want {
		t.Errorf("a restarted numbering: stats %v, want %v", got, want)
	}
}

func TestBuffer_Order(t *testing.T) {
	tests := []struct {
		name  string
		in    []at
		flush bool
		want  []uint16
		stats Stats
		held  int
	}{
		{name: "in order passes at once", in: []at{{1, 0}, {2, 20}, {3, 40}}, want: []uint16{1, 2, 3}},
		{name: "one reordered", in: []at{{1, 0}, {3, 20}, {2, 25}, {4, 40}}, want: []uint16{1, 2, 3, 4}, stats: Stats{Reordered: 1}},
		{name: "a gap is held within the budget", in: []at{{1, 0}, {3, 20}, {4, 40}, {5, 4900}},
			want: []uint16{1}, held: 3},
		{name: "a gap is given up on once the budget passed", in: []at{{1, 0}, {3, 20}, {4, 40}, {5, 5020}},
			want: []uint16{1, 3, 4, 5}, stats: Stats{Skipped: 1, Reordered: 2}},
		{name: "a packet 4.9 s late still lands", in: []at{{1, 0}, {3, 20}, {4, 40}, {2, 4910}, {5, 4920}},
			want: []uint16{1, 2, 3, 4, 5}, stats: Stats{Reordered: 2}},
		{name: "late after the gap was given up on", in: []at{{1, 0}, {3, 20}, {4, 5100}, {2, 5110}},
			want: []uint16{1, 3, 4}, stats: Stats{Skipped: 1, Reordered: 1, Late: 1}},
		{name: "duplicates dropped", in: []at{{1, 0}, {1, 1}, {3, 20}, {3, 21}, {2, 30}, {2, 31}, {4, 40}},
			want: []uint16{1, 2, 3, 4}, stats: Stats{Duplicates: 3, Reordered: 1}},
		{name: "flush passes everything held", in: []at{{1, 0}, {4, 20}, {3, 40}, {6, 60}}, flush: true,
			want: []uint16{1, 3, 4, 6}, stats: Stats{Skipped: 2, Reordered: 3}},
		{name: "wrap around", in: []at{{65534, 0}, {0, 20}, {65535, 25}, {1, 40}}, want: []uint16{65534, 65535, 0, 1},
			stats: Stats{Reordered: 1}},
		{name: "a jump restarts", in: []at{{1, 0}, {3, 20}, {9000, 40}, {9001, 60}},
			want: []uint16{1, 3, 9000, 9001}, stats: Stats{Skipped: 1, Reordered: 1, Restarts: 1}},
		{name: "a run of late packets is late", in: []at{{5000, 0}, {4000, 20}, {4001, 40}, {4002, 60}, {4003, 80}, {4004, 100},
			{4005, 120}, {4006, 140}, {4007, 160}, {4008, 180}, {4009, 200}, {5001, 220}},
			want: []uint16{5000, 5001}, stats: Stats{Late: 10}},
		{name: "further ahead than the window gives up on the oldest gaps", in: []at{{1, 0}, {3, 20}, {300, 40}, {2, 60}},
			want: []uint16{1, 3}, held: 1, stats: Stats{Skipped: 1 + 41, Reordered: 1, Late: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &capture{t: t}
			b := New(c, Config{})
			for _, a := range tc.in {
				if err := b.Push(pkt(a.seq, 100), t0.Add(time.Duration(a.ms)*time.Millisecond)); err != nil {
					t.Fatal(err)
				}
			}
			if tc.flush {
				if err := b.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			if !slices.Equal(c.seqs, tc.want) {
				t.Errorf("passed on %v, want %v", c.seqs, tc.want)
			}
			if got := b.Stats(); got != tc.stats {
				t.Errorf("stats %v, want %v", got, tc.stats)
			}
			if b.Held() != tc.held {
				t.Errorf("held %d, want %d", b.Held(), tc.held)
			}
			for i, s := range c.seqs {
				if c.tss[i] != uint32(s)*960 || c.mark[i] != (s%3 == 0) {
					t.Errorf("packet %d: timestamp %d marker %v, not its own", s, c.tss[i], c.mark[i])
				}
			}
		})
	}
}

// TestBuffer_NewSSRCFlushes: a new source passes on the old one's packets
// first, then starts at its own first packet.
func TestBuffer_NewSSRCFlushes(t *testing.T) {
	c := &capture{t: t}
	b := New(c, Config{})
	b.Push(pkt(1, 10), t0)
	b.Push(pkt(3, 10), t0)
	p := pkt(500, 10)
	p.SSRC = 2
	b.Push(p, t0)
	if want := []uint16{1, 3, 500}; !slices.Equal(c.seqs, want) {
		t.Errorf("passed on %v, want %v", c.seqs, want)
	}
	if s := b.Stats(); s.Restarts != 1 || s.Skipped != 1 {
		t.Errorf("stats %v, want a restart and 1 skipped", s)
	}
}

// TestBuffer_FullGivesUpEarly: when the payload bytes are full the oldest gap
// is given up on, and nothing held is lost.
func TestBuffer_FullGivesUpEarly(t *testing.T) {
	c := &capture{t: t}
	b := New(c, Config{Bytes: 1000})
	b.Push(pkt(1, 300), t0)
	for _, s := range []uint16{3, 4, 5, 7, 8, 9} { // 2 and 6 are missing; 300 bytes each
		b.Push(pkt(s, 300), t0)
	}
	// 3 fits, 4, 5 (900 bytes); 7 forces 2 out (3, 4, 5 pass); 8, 9 held
	if want := []uint16{1, 3, 4, 5}; !slices.Equal(c.seqs, want) {
		t.Errorf("passed on %v, want %v", c.seqs, want)
	}
	if b.Held() != 3 {
		t.Errorf("held %d, want 3", b.Held())
	}
	b.Push(pkt(6, 300), t0)
	if want := []uint16{1, 3, 4, 5, 6, 7, 8, 9}; !slices.Equal(c.seqs, want) {
		t.Errorf("passed on %v, want %v", c.seqs, want)
	}
	// A payload larger than the arena can never be held: it passes, after
	// what it waited for is given up on.
	b.Push(pkt(12, 300), t0)
	b.Push(pkt(11, 2000), t0)
	if want := []uint16{1, 3, 4, 5, 6, 7, 8, 9, 11, 12}; !slices.Equal(c.seqs, want) {
		t.Errorf("passed on %v, want %v", c.seqs, want)
	}
	if s := b.Stats(); s.Skipped != 2 {
		t.Errorf("stats %v, want 2 skipped (2 and 10)", s)
	}
}

// TestBuffer_SinkErrorReturned: the sink's error comes back, and the Buffer
// goes on passing packets.
func TestBuffer_SinkErrorReturned(t *testing.T) {
	c := &capture{t: t, err: fmt.Errorf("disk full")}
	b := New(c, Config{})
	if err := b.Push(pkt(1, 10), t0); err == nil {
		t.Error("no error from the sink")
	}
	b.Push(pkt(3, 10), t0)
	if err := b.Push(pkt(2, 10), t0); err == nil {
		t.Error("no error from the sink for the held packet")
	}
	if want := []uint16{1, 2, 3}; !slices.Equal(c.seqs, want) {
		t.Errorf("passed on %v, want %v", c.seqs, want)
	}
}

// TestBuffer_RandomReorderAllArrive: under heavy random reordering within
// the budget, every packet is passed on once, in order.
func TestBuffer_RandomReorderAllArrive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	c := &capture{t: t}
	b := New(c, Config{})
	type arrival struct {
		seq uint16
		t   time.Duration
	}
	var in []arrival
	const n = 5000
	for i := range n {
		d := time.Duration(i) * 20 * time.Millisecond
		switch r.IntN(7) {
		case 0:
			d += 50 * time.Millisecond // the relay's reorder case
		case 1:
			d += time.Duration(r.IntN(2000)) * time.Millisecond
		}
		in = append(in, arrival{uint16(65000 + i), d}) // wraps
	}
	slices.SortStableFunc(in, func(a, b arrival) int { return int(a.t - b.t) })
	for _, a := range in {
		b.Push(pkt(a.seq, 20+int(a.seq)%200), t0.Add(a.t))
	}
	b.Flush()
	if len(c.seqs) != n {
		t.Fatalf("passed on %d packets, want %d (%v)", len(c.seqs), n, b.Stats())
	}
	for i, s := range c.seqs {
		if s != uint16(65000+i) {
			t.Fatalf("packet %d is %d, want %d", i, s, uint16(65000+i))
		}
	}
	if s := b.Stats(); s.Skipped != 0 || s.Late != 0 || s.Reordered == 0 {
		t.Errorf("stats %v", s)
	}
}

type nullSink struct{ n int }

func (s *nullSink) WriteRTP(*rtp.Packet) error { s.n++; return nil }

// TestBuffer_AllocatesNothingPerPacket: in order, reordered, duplicated,
// given up on: no allocation per packet once the window exists.
func TestBuffer_AllocatesNothingPerPacket(t *testing.T) {
	b := New(&nullSink{}, Config{})
	pk := pkt(0, 160)
	seq, ms := uint16(0), 0
	step := func(s uint16) {
		pk.SequenceNumber, pk.Timestamp = s, uint32(s)*960
		b.Push(pk, t0.Add(time.Duration(ms)*time.Millisecond))
	}
	b.Push(pkt(5, 10), t0) // a first hold allocates the window
	b.Flush()
	allocs := testing.AllocsPerRun(1000, func() {
		// 10 packets: 2 swapped, one duplicated, one lost (given up on later).
		for _, d := range []uint16{0, 2, 1, 3, 3, 4, 6, 7, 8, 9} {
			step(seq + d)
		}
		seq += 10
		ms += 200
	})
	if allocs != 0 {
		t.Errorf("%v allocations per 10 packets, want 0", allocs)
	}
}

// TestBuffer_MemoryBounded: the memory a Buffer allocates is what Memory
// says, whatever it is fed.
func TestBuffer_MemoryBounded(t *testing.T) {
	for _, cfg := range []Config{{}, {Slots: 1024, Bytes: 512 << 10}} {
		b := New(&nullSink{}, cfg)
		b.Push(pkt(1, 10), t0)
		b.Push(pkt(3, 10), t0)
		got := cap(b.arena) + cap(b.slots)*sizeofSlot + cap(b.fifo)*2
		if got != b.Memory() {
			t.Errorf("%+v: allocated %d, Memory says %d", cfg, got, b.Memory())
		}
		t.Logf("Config %+v: %d bytes once a packet is held", cfg, b.Memory())
	}
}

func BenchmarkBuffer_InOrder(b *testing.B) {
	buf := New(&nullSink{}, Config{})
	p := pkt(0, 160)
	var seq uint16
	b.ReportAllocs()
	for b.Loop() {
		p.SequenceNumber = seq
		buf.Push(p, t0)
		seq++
	}
}

func BenchmarkBuffer_OneInSevenReordered(b *testing.B) {
	buf := New(&nullSink{}, Config{})
	p := pkt(0, 160)
	var seq uint16
	b.ReportAllocs()
	for b.Loop() {
		for _, d := range []uint16{0, 2, 1, 3, 4, 5, 6} {
			p.SequenceNumber = seq + d
			buf.Push(p, t0)
		}
		seq += 7
	}
}

// FuzzBuffer feeds arbitrary arrivals (sequence steps, arrival steps,
// payload sizes, flushes) and checks what leaves: each packet with its own
// payload, in sequence order and at most once between flushes and restarts,
// the memory within its bounds, and every packet pushed either passed on or
// counted as a duplicate or late.
func FuzzBuffer(f *testing.F) {
	f.Add([]byte{1, 0, 10, 2, 5, 10, 0xff, 1, 10})
	f.Add([]byte{3, 200, 100, 0xfe, 1, 1, 200, 0, 0, 7, 40, 255})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &capture{t: t}
		b := New(c, Config{Slots: 16, Bytes: 2000, Budget: time.Second})
		var seq uint16
		now := t0
		pushed := 0
		var from int // first output of the current run (no flush or restart since)
		check := func(to int) {
			seen := map[uint16]bool{}
			for i := from; i < to; i++ {
				if seen[c.seqs[i]] {
					t.Fatalf("%d passed on twice (%v)", c.seqs[i], c.seqs)
				}
				seen[c.seqs[i]] = true
				if i > from && int16(c.seqs[i]-c.seqs[i-1]) <= 0 {
					t.Fatalf("out of order: %d after %d (%v)", c.seqs[i], c.seqs[i-1], c.seqs)
				}
			}
		}
		for len(data) >= 3 {
			op, dt, size := data[0], data[1], data[2]
			data = data[3:]
			now = now.Add(time.Duration(dt) * 10 * time.Millisecond)
			before, restarts := len(c.seqs), b.Stats().Restarts
			if op == 0xff {
				b.Flush()
				check(len(c.seqs))
				from = len(c.seqs)
				continue
			}
			seq += uint16(int8(op))
			if op == 0xfe {
				seq += 4000 // a jump
			}
			p := pkt(seq, int(size)*12)
			p.Timestamp = uint32(op)<<8 | uint32(dt) // any timestamp: the payload follows it
			p.Payload = payloadOf(seq, p.Timestamp, len(p.Payload))
			b.Push(p, now)
			pushed++
			if b.Stats().Restarts != restarts {
				// Flushed the old run and began a new one within this push.
				check(before)
				from = len(c.seqs) // what this push passed on may straddle both
			}
			if b.Held() > 16 || len(b.arena) > 2000 || len(b.fifo) > 32 {
				t.Fatalf("held %d, arena %d, fifo %d: beyond the bounds", b.Held(), len(b.arena), len(b.fifo))
			}
		}
		b.Flush()
		check(len(c.seqs))
		if b.Held() != 0 {
			t.Fatalf("held %d after Flush", b.Held())
		}
		if st := b.Stats(); uint64(pushed) != uint64(len(c.seqs))+st.Duplicates+st.Late {
			t.Fatalf("pushed %d, passed on %d + %v: some packet is unaccounted for", pushed, len(c.seqs), st)
		}
	})
}
