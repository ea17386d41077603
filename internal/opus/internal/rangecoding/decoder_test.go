// SPDX-FileCopyrightText: 2026 The Pion community <https://pion.ly>
// SPDX-License-Identifier: MIT

package rangecoding

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// upstreamDecodeSymbolWithICDF is pion/opus v0.1.0's DecodeSymbolWithICDF
// with its update and normalize: the reference.
func upstreamDecodeSymbolWithICDF(r *Decoder, cumulativeDistributionTable []uint) uint32 {
	total := uint32(cumulativeDistributionTable[0])
	cumulativeDistributionTable = cumulativeDistributionTable[1:]
	scale := r.rangeSize / total
	symbol := r.highAndCodedDifference/scale + 1
	symbol = total - uint32(localMin(uint(symbol), uint(total)))
	symbolIndex := uint32(0)
	for uint32(cumulativeDistributionTable[symbolIndex]) <= symbol {
		symbolIndex++
	}
	high := uint32(cumulativeDistributionTable[symbolIndex])
	low := uint32(0)
	if symbolIndex != 0 {
		low = uint32(cumulativeDistributionTable[symbolIndex-1])
	}
	r.highAndCodedDifference -= scale * (total - high)
	if low != 0 {
		r.rangeSize = scale * (high - low)
	} else {
		r.rangeSize -= scale * (total - high)
	}
	for r.rangeSize <= minRangeSize {
		r.rangeSize <<= 8
		r.nbitsTotal += 8
		r.highAndCodedDifference = ((r.highAndCodedDifference << 8) + (255 - r.getBits(8))) & 0x7FFFFFFF
	}
	return symbolIndex
}

// randomTable returns a cumulative table with a total of 2 to 32768 (a
// power of two, as every Opus table has, or any other) and up to 30
// symbols, some of probability zero (leading ones included, as SILK's LBRR
// flag tables have).
func randomTable(rnd *rand.Rand) []uint {
	total := uint(1) << (1 + rnd.IntN(15))
	if rnd.IntN(4) == 0 {
		total = uint(2 + rnd.IntN(32767))
	}
	n := 1 + rnd.IntN(30)
	cdf := make([]uint, 0, n+1)
	cdf = append(cdf, total)
	for i := 0; i < n-1; i++ {
		cdf = append(cdf, uint(rnd.IntN(int(total)+1)))
	}
	cdf = append(cdf, total)
	body := cdf[1:]
	for i := 1; i < len(body); i++ { // sort ascending (insertion: small)
		for j := i; j > 0 && body[j] < body[j-1]; j-- {
			body[j], body[j-1] = body[j-1], body[j]
		}
	}
	if len(body) > 1 && rnd.IntN(4) == 0 {
		body[0] = 0
	}
	return cdf
}

// sameAsUpstream decodes symbols from data with DecodeSymbolWithICDF and
// upstream's form side by side and fails at the first symbol or state that
// differs.
func sameAsUpstream(t testing.TB, data []byte, tables [][]uint) {
	var a, b Decoder
	a.Init(data)
	b.Init(data)
	for i, cdf := range tables {
		x, y := a.DecodeSymbolWithICDF(cdf), upstreamDecodeSymbolWithICDF(&b, cdf)
		if x != y || !sameState(&a, &b) {
			t.Fatalf("symbol %d (table %v): %d (rng %d val %d), upstream %d (rng %d val %d)",
				i, cdf, x, a.rangeSize, a.highAndCodedDifference, y, b.rangeSize, b.highAndCodedDifference)
		}
	}
}

// TestDecodeSymbolWithICDF_SameAsUpstream: the decoder gets the symbols and
// the state (range, value, bits read) of pion/opus v0.1.0's decoder, for
// random data (short, so that reads run past the end) and random tables,
// tables with zero-probability symbols, and edge tables.
func TestDecodeSymbolWithICDF_SameAsUpstream(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		data := randomData(rnd, 80)
		tables := make([][]uint, 200)
		for i := range tables {
			tables[i] = randomTable(rnd)
		}
		sameAsUpstream(t, data, tables)
	}
	// A table whose last symbols are near-certain: val lands in the
	// rounding remainder that goes to the first symbol.
	for _, data := range [][]byte{{0}, {0xFF, 0xFF, 0xFF}, {0x80, 0x00, 0x01}} {
		sameAsUpstream(t, data, [][]uint{{256, 1, 256}, {256, 0, 0, 255, 256}, {32768, 32767, 32768}, {4, 2, 3, 4}})
	}
}

func FuzzDecodeSymbolWithICDF(f *testing.F) {
	f.Add([]byte{0x12, 0x34, 0x56}, uint64(1))
	f.Add([]byte{0xFF, 0xFF}, uint64(7))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		rnd := rand.New(rand.NewPCG(seed, 0))
		tables := make([][]uint, 64)
		for i := range tables {
			tables[i] = randomTable(rnd)
		}
		sameAsUpstream(t, data, tables)
	})
}

// BenchmarkDecodeSymbolWithICDF decodes symbols from SILK-like 256-total
// tables of 18 and 8 symbols, against upstream's form.
func BenchmarkDecodeSymbolWithICDF(b *testing.B) {
	rnd := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 1275)
	for i := range data {
		data[i] = byte(rnd.Uint32())
	}
	tables := [][]uint{
		{256, 7, 9, 10, 11, 12, 22, 46, 54, 55, 56, 59, 82, 174, 197, 200, 201, 202, 256},
		{256, 32, 96, 160, 200, 230, 245, 252, 256},
	}
	for _, form := range []struct {
		name   string
		decode func(*Decoder, []uint) uint32
	}{{"ours", (*Decoder).DecodeSymbolWithICDF}, {"upstream", upstreamDecodeSymbolWithICDF}} {
		b.Run(form.name, func(b *testing.B) {
			var d Decoder
			n := 0
			for b.Loop() {
				if n%1000 == 0 {
					d.Init(data)
				}
				form.decode(&d, tables[n&1])
				n++
			}
		})
	}
}

// TestShiftIn_SameAsGetBits: shiftIn shifts in what getBits(8) reads and
// moves the read position and the bit count as getBits(8) and normalize
// do, from every position the range coder's reads can be at in data of 0
// to 5 bytes: 7 bits into a byte, at the end, and past it (SetStorageSize).
func TestShiftIn_SameAsGetBits(t *testing.T) {
	rnd := rand.New(rand.NewPCG(15, 16))
	tried := 0
	for n := range 6 {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(rnd.Uint32())
		}
		for pos := uint(0); pos <= uint(n)*8+12; pos++ {
			if pos%8 != 7 && pos < uint(n)*8 {
				continue // not a position of the range coder (TestReadPosition_SevenBitsIntoAByte)
			}
			tried++
			val := rnd.Uint32() & 0x7FFFFF // val < rng <= 2**23 when a byte is shifted in
			a := Decoder{data: data, bitsRead: pos, nbitsTotal: pos + 2}
			b := a
			x := a.shiftIn(val)
			b.nbitsTotal += 8
			y := ((val << 8) + (255 - b.getBits(8))) & 0x7FFFFFFF
			if x != y || a.bitsRead != b.bitsRead || a.nbitsTotal != b.nbitsTotal {
				t.Fatalf("%d bytes, bit %d: %#x at %d (%d bits), getBits %#x at %d (%d bits)",
					n, pos, x, a.bitsRead, a.nbitsTotal, y, b.bitsRead, b.nbitsTotal)
			}
		}
	}
	if tried < 60 {
		t.Errorf("%d positions tried", tried)
	}
}

// TestReadPosition_SevenBitsIntoAByte: shiftIn's premise. After Init, and
// after any symbols of any decoder, its storage shrunk by SetStorageSize
// (hybrid redundancy) or not, the range coder's read position is 7 bits
// into a byte or at or past the end of its data; and the decoder has the
// symbols and state of upstream's, whose bytes are read by getBits(8) from
// any position.
func TestReadPosition_SevenBitsIntoAByte(t *testing.T) {
	rnd := rand.New(rand.NewPCG(29, 30))
	shrunk := 0
	for range 2000 {
		data := make([]byte, rnd.IntN(40))
		for i := range data {
			data[i] = byte(rnd.Uint32())
		}
		var a, b Decoder
		a.Init(data)
		for i := range 100 {
			if a.bitsRead%8 != 7 && a.bitsRead < 8*uint(len(a.data)) {
				t.Fatalf("%d bytes, symbol %d: read position %d", len(data), i, a.bitsRead)
			}
			if rnd.IntN(30) == 0 {
				size := rnd.IntN(len(a.data) + 1)
				a.SetStorageSize(size)
				shrunk++
			}
			switch rnd.IntN(3) {
			case 0: // a table's symbol, and upstream's from the same state
				b = a
				cdf := randomTable(rnd)
				x, y := a.DecodeSymbolWithICDF(cdf), upstreamDecodeSymbolWithICDF(&b, cdf)
				if x != y || !sameState(&a, &b) {
					t.Fatalf("%d bytes, symbol %d (table %v): %d, upstream %d", len(data), i, cdf, x, y)
				}
			case 1:
				a.DecodeSymbolLogP(uint(1 + rnd.IntN(15)))
			default:
				a.DecodeUniform(uint32(2 + rnd.IntN(1000)))
			}
		}
	}
	if shrunk < 1000 {
		t.Errorf("storage shrunk %d times", shrunk)
	}
}

// TestDecodeICDF8_SameAsDecodeSymbolWithICDF: DecodeICDF8 with ICDF8's
// form of a table decodes the same symbols to the same state as
// DecodeSymbolWithICDF with the table, for random tables of total 256
// whose first symbol has non-zero probability (SILK's) over random data,
// short enough to read past its end.
func TestDecodeICDF8_SameAsDecodeSymbolWithICDF(t *testing.T) {
	rnd := rand.New(rand.NewPCG(19, 20))
	for range 3000 {
		data := randomData(rnd, 60)
		var a, b Decoder
		a.Init(data)
		b.Init(data)
		for i := range 200 {
			n := 2 + rnd.IntN(17)
			table := []uint{256}
			for k := 0; k < n-1; k++ {
				table = append(table, uint(1+rnd.IntN(255)))
			}
			table = append(table, 256)
			body := table[1:]
			for j := 1; j < len(body); j++ { // ascending
				for m := j; m > 0 && body[m] < body[m-1]; m-- {
					body[m], body[m-1] = body[m-1], body[m]
				}
			}
			x, y := a.DecodeICDF8(ICDF8(table)), b.DecodeSymbolWithICDF(table)
			if x != y || !sameState(&a, &b) {
				t.Fatalf("symbol %d (table %v): %d (rng %d val %d), DecodeSymbolWithICDF %d (rng %d val %d)",
					i, table, x, a.rangeSize, a.highAndCodedDifference, y, b.rangeSize, b.highAndCodedDifference)
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("ICDF8 took a table with a zero-probability first symbol")
		}
	}()
	ICDF8([]uint{256, 0, 128, 256})
}

// TestDecodeBits8_SameAsDecodeICDF8: DecodeBits8(p, n) and DecodeEachBit8(p)
// decode the same symbols to the same state as DecodeICDF8 with the tables
// {p, 0} n times, or {p[i], 0} in turn, for random p (1 to 255) and n (0 to
// 32) over random data, short enough to read past its end, between other
// tables' symbols.
func TestDecodeBits8_SameAsDecodeICDF8(t *testing.T) {
	rnd := rand.New(rand.NewPCG(23, 24))
	for trial := range 4000 {
		data := randomData(rnd, 80)
		var a, b Decoder
		a.Init(data)
		b.Init(data)
		for i := range 40 {
			q := uint8(2 + rnd.IntN(254)) // another table's symbol, on both
			a.DecodeICDF8([]uint8{q, q / 2, 0})
			b.DecodeICDF8([]uint8{q, q / 2, 0})
			p := make([]uint8, rnd.IntN(33))
			for k := range p {
				p[k] = uint8(1 + rnd.IntN(255))
				if trial%2 == 0 { // DecodeBits8: one table
					p[k] = p[0]
				}
			}
			var x uint32
			if trial%2 == 0 && len(p) > 0 {
				x = a.DecodeBits8(p[0], len(p))
			} else {
				x = a.DecodeEachBit8(p)
			}
			var y uint32
			for k := range p {
				bit := b.DecodeICDF8([]uint8{p[k], 0})
				if trial%2 == 0 && len(p) > 0 {
					y |= bit << k // DecodeBits8: the first symbol in bit 0
				} else {
					y |= bit << (len(p) - 1 - k) // DecodeEachBit8: the first symbol highest
				}
			}
			if x != y || !sameState(&a, &b) {
				t.Fatalf("trial %d, call %d (p %v): %#x (rng %d val %d at %d), DecodeICDF8 %#x (rng %d val %d at %d)",
					trial, i, p, x, a.rangeSize, a.highAndCodedDifference, a.bitsRead, y, b.rangeSize, b.highAndCodedDifference, b.bitsRead)
			}
		}
	}
}

// TestDecodeTable8_SameAsDecodeICDF8: DecodeTable8 with NewTable8's form of
// a table decodes the same symbols to the same state as DecodeICDF8 with
// ICDF8's, for random tables of total 256 whose first symbol has non-zero
// probability, of 2 to 64 symbols (some of zero probability, some
// near-certain), over random data short enough to read past its end.
func TestDecodeTable8_SameAsDecodeICDF8(t *testing.T) {
	rnd := rand.New(rand.NewPCG(25, 26))
	tables := make([][]uint, 300)
	for i := range tables {
		n := 2 + rnd.IntN(63)
		table := []uint{256}
		for k := 0; k < n-1; k++ {
			table = append(table, uint(1+rnd.IntN(255)))
			if rnd.IntN(8) == 0 { // near-certain last symbols
				table[len(table)-1] = 255
			}
		}
		table = append(table, 256)
		slices.Sort(table[1:])
		tables[i] = table
	}
	tables = append(tables, []uint{256, 1, 256}, []uint{256, 255, 256}, []uint{256, 1, 2, 3, 256})
	forms := make([]*Table8, len(tables))
	icdfs := make([][]uint8, len(tables))
	for i, table := range tables {
		forms[i], icdfs[i] = NewTable8(table), ICDF8(table)
	}
	symbols := make([]int, 65)
	for range 3000 {
		data := randomData(rnd, 60)
		var a, b Decoder
		a.Init(data)
		b.Init(data)
		for i := range 200 {
			j := rnd.IntN(len(tables))
			x, y := a.DecodeTable8(forms[j]), b.DecodeICDF8(icdfs[j])
			if x != y || !sameState(&a, &b) {
				t.Fatalf("symbol %d (table %v): %d (rng %d val %d), DecodeICDF8 %d (rng %d val %d)",
					i, tables[j], x, a.rangeSize, a.highAndCodedDifference, y, b.rangeSize, b.highAndCodedDifference)
			}
			symbols[x]++
		}
	}
	if symbols[0] < 1000 || symbols[10] < 100 || symbols[40] < 10 {
		t.Errorf("symbols decoded: %v: not every kind", symbols)
	}
}

// TestDecodeTable8Run_SameAsDecodeTable8: DecodeTable8Run (one table) and
// DecodeTable8Each (a table per symbol) decode the same symbols to the same
// state as DecodeTable8 with the tables in turn, and stop where a loop of
// it that stops after a symbol in the set would: random tables of 2 to 64
// symbols, random stop sets (none, a symbol, symbols 0 and 8, the last),
// runs of 0 to 20 over random data short enough to read past its end.
func TestDecodeTable8Run_SameAsDecodeTable8(t *testing.T) {
	rnd := rand.New(rand.NewPCG(31, 32))
	tables := make([]*Table8, 200)
	sizes := make([]int, len(tables))
	for i := range tables {
		n := 2 + rnd.IntN(63)
		if i%2 == 0 {
			n = 2 + rnd.IntN(17) // SILK's: pulse counts 18, LSF stage 2 9 symbols
		}
		table := []uint{256}
		for k := 0; k < n-1; k++ {
			table = append(table, uint(1+rnd.IntN(255)))
		}
		table = append(table, 256)
		slices.Sort(table[1:])
		tables[i], sizes[i] = NewTable8(table), n
	}
	stopped, full := 0, 0
	for trial := range 4000 {
		data := randomData(rnd, 60)
		var a, b Decoder
		a.Init(data)
		b.Init(data)
		for call := range 30 {
			j := rnd.IntN(len(tables))
			var stop uint64
			switch rnd.IntN(4) {
			case 1:
				stop = 1 << rnd.IntN(sizes[j])
			case 2:
				stop = 1<<0 | 1<<8
			case 3:
				stop = 1 << (sizes[j] - 1)
			}
			run := make([]*Table8, rnd.IntN(21))
			for k := range run {
				run[k] = tables[j]
				if trial%2 == 1 { // DecodeTable8Each: a table of its own per symbol
					run[k] = tables[rnd.IntN(len(tables))]
				}
			}
			got := make([]uint8, len(run))
			var n int
			if trial%2 == 0 {
				n = a.DecodeTable8Run(tables[j], got, stop)
			} else {
				n = a.DecodeTable8Each(run, got, stop)
			}
			want := make([]uint8, 0, len(run))
			for _, table := range run {
				k := b.DecodeTable8(table)
				want = append(want, uint8(k))
				if stop>>k&1 != 0 {
					break
				}
			}
			if n != len(want) || !slices.Equal(got[:n], want) || !sameState(&a, &b) {
				t.Fatalf("trial %d, call %d (stop %#x): %v (rng %d val %d at %d), DecodeTable8 %v (rng %d val %d at %d)",
					trial, call, stop, got[:n], a.rangeSize, a.highAndCodedDifference, a.bitsRead, want, b.rangeSize, b.highAndCodedDifference, b.bitsRead)
			}
			if n < len(run) {
				stopped++
			} else if n > 1 {
				full++
			}
		}
	}
	if stopped < 1000 || full < 1000 {
		t.Errorf("runs stopped early %d times, ran to the end %d: not both kinds", stopped, full)
	}
}

// randomData returns 1 to max random bytes: a range coder's data, often
// short enough that the decodes read past its end.
func randomData(rnd *rand.Rand, max int) []byte {
	data := make([]byte, 1+rnd.IntN(max))
	for i := range data {
		data[i] = byte(rnd.Uint32())
	}
	return data
}

// sameState says whether two decoders are in the same state: the same
// range, value and read position.
func sameState(a, b *Decoder) bool {
	return a.rangeSize == b.rangeSize && a.highAndCodedDifference == b.highAndCodedDifference &&
		a.bitsRead == b.bitsRead && a.nbitsTotal == b.nbitsTotal
}
