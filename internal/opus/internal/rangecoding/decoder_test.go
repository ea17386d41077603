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
		if x != y || a.rangeSize != b.rangeSize || a.highAndCodedDifference != b.highAndCodedDifference ||
			a.bitsRead != b.bitsRead || a.nbitsTotal != b.nbitsTotal {
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
		data := make([]byte, 1+rnd.IntN(80))
		for i := range data {
			data[i] = byte(rnd.Uint32())
		}
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

// TestNextByte_SameAsGetBits: nextByte reads what getBits(8) reads and
// moves the read position as it does, from every bit position of data of
// 0 to 4 bytes, the last bytes and past the end included.
func TestNextByte_SameAsGetBits(t *testing.T) {
	rnd := rand.New(rand.NewPCG(15, 16))
	for n := range 5 {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(rnd.Uint32())
		}
		for pos := uint(0); pos <= uint(n)*8+12; pos++ {
			a := Decoder{data: data, bitsRead: pos}
			b := a
			if x, y := a.nextByte(), b.getBits(8); x != y || a.bitsRead != b.bitsRead {
				t.Fatalf("%d bytes, bit %d: %#x at %d, getBits %#x at %d", n, pos, x, a.bitsRead, y, b.bitsRead)
			}
		}
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
		data := make([]byte, 1+rnd.IntN(60))
		for i := range data {
			data[i] = byte(rnd.Uint32())
		}
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
			if x != y || a.rangeSize != b.rangeSize || a.highAndCodedDifference != b.highAndCodedDifference ||
				a.bitsRead != b.bitsRead || a.nbitsTotal != b.nbitsTotal {
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
		data := make([]byte, 1+rnd.IntN(80))
		for i := range data {
			data[i] = byte(rnd.Uint32())
		}
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
				y |= b.DecodeICDF8([]uint8{p[k], 0}) << k
			}
			if x != y || a.rangeSize != b.rangeSize || a.highAndCodedDifference != b.highAndCodedDifference ||
				a.bitsRead != b.bitsRead || a.nbitsTotal != b.nbitsTotal {
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
		data := make([]byte, 1+rnd.IntN(60))
		for i := range data {
			data[i] = byte(rnd.Uint32())
		}
		var a, b Decoder
		a.Init(data)
		b.Init(data)
		for i := range 200 {
			j := rnd.IntN(len(tables))
			x, y := a.DecodeTable8(forms[j]), b.DecodeICDF8(icdfs[j])
			if x != y || a.rangeSize != b.rangeSize || a.highAndCodedDifference != b.highAndCodedDifference ||
				a.bitsRead != b.bitsRead || a.nbitsTotal != b.nbitsTotal {
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
