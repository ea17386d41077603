// SPDX-FileCopyrightText: 2026 The Pion community <https://pion.ly>
// SPDX-License-Identifier: MIT

package rangecoding

import "math/bits"

// Decoder implements rfc6716#section-4.1
// Opus uses an entropy coder based on range coding [RANGE-CODING]
// [MARTIN79], which is itself a rediscovery of the FIFO arithmetic code
// introduced by [CODING-THESIS].  It is very similar to arithmetic
// encoding, except that encoding is done with digits in any base
// instead of with bits, so it is faster when using larger bases (i.e.,
// a byte).  All of the calculations in the range coder must use bit-
// exact integer arithmetic.
//
// Symbols may also be coded as "raw bits" packed directly into the
// bitstream, bypassing the range coder.  These are packed backwards
// starting at the end of the frame, as illustrated in Figure 12.  This
// reduces complexity and makes the stream more resilient to bit errors,
// as corruption in the raw bits will not desynchronize the decoding
// process, unlike corruption in the input to the range decoder.  Raw
// bits are only used in the CELT layer.
//
//	          0                   1                   2                   3
//	          0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	         +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	         | Range coder data (packed MSB to LSB) ->                       :
//	         +                                                               +
//	         :                                                               :
//	         +     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	         :     | <- Boundary occurs at an arbitrary bit position         :
//	         +-+-+-+                                                         +
//	         :                          <- Raw bits data (packed LSB to MSB) |
//	         +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
//		Legend:
//
//		LSB = Least Significant Bit
//		MSB = Most Significant Bit
//
//		     Figure 12: Illustrative Example of Packing Range Coder
//		                        and Raw Bits Data
//
// Each symbol coded by the range coder is drawn from a finite alphabet
// and coded in a separate "context", which describes the size of the
// alphabet and the relative frequency of each symbol in that alphabet.
//
// Suppose there is a context with n symbols, identified with an index
// that ranges from 0 to n-1.  The parameters needed to encode or decode
// symbol k in this context are represented by a three-tuple
// (fl[k], fh[k], ft), all 16-bit unsigned integers, with
// 0 <= fl[k] < fh[k] <= ft <= 65535.  The values of this tuple are
// derived from the probability model for the symbol, represented by
// traditional "frequency counts".  Because Opus uses static contexts,
// those are not updated as symbols are decoded.  Let f[i] be the
// frequency of symbol i.  Then, the three-tuple corresponding to symbol
// k is given by the following:
//
//	        k-1                                   n-1
//	        __                                    __
//	fl[k] = \  f[i],  fh[k] = fl[k] + f[k],  ft = \  f[i]
//	        /_                                    /_
//	        i=0                                   i=0
//
// The range decoder extracts the symbols and integers encoded using the
// range encoder in Section 5.1.  The range decoder maintains an
// internal state vector composed of the two-tuple (val, rng), where val
// represents the difference between the high end of the current range
// and the actual coded value, minus one, and rng represents the size of
// the current range.  Both val and rng are 32-bit unsigned integer
// values.
type Decoder struct {
	data        []byte
	bitsRead    uint
	rawBitsRead uint
	nbitsTotal  uint

	rangeSize              uint32 // rng in RFC 6716
	highAndCodedDifference uint32 // val in RFC 6716
}

const (
	maxUniformRangeCoderBits = 8
	laplaceTotal             = 32768
	laplaceMinProbability    = 1
	laplaceGuaranteedDeltas  = 16
)

// Init sets the state of the Decoder
// Let b0 be an 8-bit unsigned integer containing first input byte (or
// containing zero if there are no bytes in this Opus frame).  The
// decoder initializes rng to 128 and initializes val to (127 -
//
//	(b0>>1)), where (b0>>1) is the top 7 bits of the first input byte.
//
// It saves the remaining bit, (b0&1), for use in the renormalization
// procedure described in Section 4.1.2.1, which the decoder invokes
// immediately after initialization to read additional bits and
// establish the invariant that rng > 2**23.
//
// https://datatracker.ietf.org/doc/html/rfc6716#section-4.1.1
func (r *Decoder) Init(data []byte) {
	r.data = data
	r.bitsRead = 0
	r.rawBitsRead = 0
	r.nbitsTotal = 9

	r.rangeSize = 128
	r.highAndCodedDifference = 127 - r.getBits(7)
	r.normalize()
}

// SetStorageSize adjusts the logical frame size without resetting decoder
// state. Opus hybrid redundancy removes tail bytes from the CELT range coder
// after the shared decoder has already consumed SILK symbols.
func (r *Decoder) SetStorageSize(size int) {
	if size < 0 {
		size = 0
	}
	if size < len(r.data) {
		r.data = r.data[:size]
	}
}

// DecodeSymbolWithICDF decodes a single symbol
// with a table-based context of up to 8 bits.
//
// (Our change to pion/opus v0.1.0: the interval update and the
// renormalization are written out here, with a byte read that does not go
// bit by bit, as this is the decoder's most frequent call, and a
// power-of-two total (every Opus table: SILK's 256, CELT's 4 to 32768)
// gives the scale by a shift, not a division; the arithmetic is upstream's,
// bit for bit: TestDecodeSymbolWithICDF_SameAsUpstream.)
//
// https://datatracker.ietf.org/doc/html/rfc6716#section-4.1.3.3
func (r *Decoder) DecodeSymbolWithICDF(cumulativeDistributionTable []uint) uint32 {
	t := cumulativeDistributionTable
	total := uint32(t[0]) //nolint:gosec // G115
	rng, val := r.rangeSize, r.highAndCodedDifference

	var scale uint32
	switch {
	case total == 256: // every SILK table
		scale = rng >> 8
	case total&(total-1) == 0: // every other Opus table: a shift instead of a division
		scale = rng >> bits.TrailingZeros32(total)
	default:
		scale = rng / total
	}
	// The symbol is the first k whose interval starts at or below val,
	// scale*(total-cdf[k]) <= val, among those of non-zero probability
	// (cdf[k] > 0; only leading symbols can have cdf[k] == 0, as cdf
	// ascends): libopus's ec_dec_icdf, a product per symbol tried instead
	// of upstream's division of val by scale (the same k: see
	// TestDecodeSymbolWithICDF_SameAsUpstream). k indexes t, whose first
	// entry is the total: symbol k-1.
	k := 1
	for t[k] == 0 {
		k++
	}
	// (Session 17: as ec_dec_icdf, the search keeps the bound of the symbol
	// before, so that the update is two subtractions: for the first symbol of
	// non-zero probability (fl == 0) rng takes the remainder, rng - s; for a
	// later one scale*(fh-fl), which is the bound before less s.)
	before := rng
	bound := scale * (total - uint32(t[k])) //nolint:gosec // G115
	for val < bound {
		k++
		before, bound = bound, scale*(total-uint32(t[k])) //nolint:gosec // G115
	}
	val -= bound
	rng = before - bound
	for rng <= minRangeSize {
		rng <<= 8
		val = r.shiftIn(val)
	}
	r.rangeSize, r.highAndCodedDifference = rng, val

	return uint32(k - 1) //nolint:gosec // G115: k indexes a table
}

// DecodeICDF8 is DecodeSymbolWithICDF for a table of total 256 whose first
// symbol has non-zero probability, given as libopus's ec_dec_icdf takes it:
// icdf[k] = 256 - cdf[k] (ICDF8 makes it from DecodeSymbolWithICDF's form).
// The same symbol and state, without the total's load and test, the
// leading-zero loop and a subtraction per symbol tried.
func (r *Decoder) DecodeICDF8(icdf []uint8) uint32 {
	rng, val := r.rangeSize, r.highAndCodedDifference
	scale := rng >> 8
	k := 0
	before, bound := rng, scale*uint32(icdf[0])
	for val < bound {
		k++
		before, bound = bound, scale*uint32(icdf[k])
	}
	val -= bound
	rng = before - bound
	for rng <= minRangeSize { // at most twice: rng >= 2**15 here
		rng <<= 8
		val = r.shiftIn(val)
	}
	r.rangeSize, r.highAndCodedDifference = rng, val

	return uint32(k) //nolint:gosec // G115
}

// Table8 is a table of total 256 whose first symbol has non-zero
// probability, of at most 64 symbols, in DecodeTable8's form: ICDF8's, and
// the symbol for each quotient val/(rng>>8) (NewTable8). 320 bytes.
type Table8 struct {
	icdf   [64]uint8  // ICDF8's form, zeros after its end
	symbol [256]uint8 // the symbol where val/(rng>>8) is q (q >= 255: 0)
}

// NewTable8 returns DecodeTable8's form of a DecodeSymbolWithICDF table of
// total 256 whose first symbol has non-zero probability, of at most 64
// symbols; it panics on another.
func NewTable8(t []uint) *Table8 {
	icdf := ICDF8(t)
	if len(icdf) > 64 {
		panic("rangecoding: a table of more than 64 symbols")
	}
	var tt Table8
	copy(tt.icdf[:], icdf)
	for q := range tt.symbol {
		for _, c := range icdf { // the symbols whose interval starts above q
			if int(c) > q {
				tt.symbol[q]++
			}
		}
	}

	return &tt
}

// DecodeTable8 is DecodeICDF8 for a table in Table8's form: the same symbol
// and state (TestDecodeTable8_SameAsDecodeICDF8). (Session 20: the symbol
// by one division and a lookup instead of DecodeICDF8's search. Symbol k is
// the number of entries with val < scale*icdf[j], which for an integer
// icdf[j] is icdf[j] > floor(val/scale): a long table's search (SILK's
// gains, LSF stage 1, pitch lags and LTP filters, 8 to 41 symbols) took
// as many steps as its symbol and mispredicted its exit. The division's
// quotient is below 2**9: scale > 2**15 and val < rng < 2**31.)
func (r *Decoder) DecodeTable8(t *Table8) uint32 {
	k, rng, val := t.step(r.rangeSize, r.highAndCodedDifference)
	for rng <= minRangeSize { // at most twice: rng >= 2**15 here
		rng <<= 8
		val = r.shiftIn(val)
	}
	r.rangeSize, r.highAndCodedDifference = rng, val

	return uint32(k)
}

// step is DecodeTable8's symbol and interval update, before the
// renormalization.
func (t *Table8) step(rng, val uint32) (k uint8, rng2, val2 uint32) {
	scale := rng >> 8 // > 2**15: rng > 2**23
	k = t.symbol[min(val/scale, 255)]
	bound := scale * uint32(t.icdf[k&63])
	before := scale * uint32(t.icdf[(k-1)&63]) // k-1 wraps where k is 0: then rng
	if k == 0 {
		before = rng
	}

	return k, before - bound, val - bound
}

// DecodeTable8Run decodes symbols of table t into out in turn, as many
// calls of DecodeTable8 would, until out is full or after a symbol k in
// the set stop (bit k), and returns how many it decoded: the same symbols
// and state (TestDecodeTable8Run_SameAsDecodeTable8). (Session 21: a run
// of symbols of one table in one call, with the state in registers: SILK's
// pulse counts, a run of up to 20 that only the escape 17 stops.)
func (r *Decoder) DecodeTable8Run(t *Table8, out []uint8, stop uint64) int {
	rng, val := r.rangeSize, r.highAndCodedDifference
	n := 0
	for n < len(out) {
		var k uint8
		k, rng, val = t.step(rng, val)
		for rng <= minRangeSize { // at most twice: rng >= 2**15 here
			rng <<= 8
			val = r.shiftIn(val)
		}
		out[n] = k
		n++
		if stop>>(k&63)&1 != 0 {
			break
		}
	}
	r.rangeSize, r.highAndCodedDifference = rng, val

	return n
}

// DecodeTable8Each is DecodeTable8Run with a table of its own per symbol:
// symbol i of tables[i], into out[i] (len(out) >= len(tables)), until the
// tables end or after a symbol in stop; the same symbols and state as
// DecodeTable8 with each table in turn (TestDecodeTable8Run_SameAsDecodeTable8).
// (Session 21: SILK's LSF stage 2, 10 or 16 symbols that only the escapes
// 0 and 8 stop.)
func (r *Decoder) DecodeTable8Each(tables []*Table8, out []uint8, stop uint64) int {
	rng, val := r.rangeSize, r.highAndCodedDifference
	out = out[:len(tables)]
	n := 0
	for n < len(tables) {
		var k uint8
		k, rng, val = tables[n].step(rng, val)
		for rng <= minRangeSize { // at most twice: rng >= 2**15 here
			rng <<= 8
			val = r.shiftIn(val)
		}
		out[n] = k
		n++
		if stop>>(k&63)&1 != 0 {
			break
		}
	}
	r.rangeSize, r.highAndCodedDifference = rng, val

	return n
}

// DecodeBits8 decodes n (at most 32) symbols of one two-symbol table, {p,
// 0} in DecodeICDF8's form (p = 256 - cdf of symbol 0, 1 to 255), and
// returns them as bits, the first symbol in bit 0: the same symbols and
// state as n calls of DecodeICDF8 (TestDecodeBits8_SameAsDecodeICDF8).
// (Session 19: without a branch on the symbol: symbol 1 where val <
// (rng>>8)*p, both updates computed and one picked by a mask. A two-symbol
// SILK symbol, such as an excitation sign, is about a coin toss, so the
// exit of DecodeICDF8's search mispredicts about every other symbol; here
// only the renormalization branches, about every eighth symbol. One call
// for n symbols.)
func (r *Decoder) DecodeBits8(p uint8, n int) uint32 {
	rng, val := r.rangeSize, r.highAndCodedDifference
	var out uint32
	for i := range n {
		bound := (rng >> 8) * uint32(p)
		// val < bound: both are below 2**31 (rng <= 2**31 and val < rng), so
		// the sign bit of their difference is the comparison
		bit := (val - bound) >> 31
		out |= bit << (i & 31)
		zero := bit - 1 // all ones for symbol 0, else 0
		// symbol 0: val -= bound, rng -= bound; symbol 1: rng = bound
		val -= bound & zero
		rng = (rng-bound)&zero | bound&^zero
		for rng <= minRangeSize { // at most twice: rng >= 2**15 here
			rng <<= 8
			val = r.shiftIn(val)
		}
	}
	r.rangeSize, r.highAndCodedDifference = rng, val

	return out
}

// DecodeEachBit8 is DecodeBits8 with a table of its own per symbol:
// symbol i of the two-symbol table {p[i], 0}, returned in bit len(p)-1-i,
// the first symbol the highest (len(p) at most 32); the same symbols and
// state as DecodeICDF8 with each table in turn
// (TestDecodeBits8_SameAsDecodeICDF8). (Session 19: SILK's single pulse in
// a shell block partition, whose halves are coin tosses. Its own loop, as
// DecodeBits8 and DecodeICDF8 have theirs: one function for both bit
// decoders, the table picked as p[i*step], measured +2.1 % of the decode's
// instructions. Session 21: the first symbol highest, so that the pulse's
// position is the symbols' complement, not their reversal.)
func (r *Decoder) DecodeEachBit8(p []uint8) uint32 {
	rng, val := r.rangeSize, r.highAndCodedDifference
	var out uint32
	for _, q := range p {
		bound := (rng >> 8) * uint32(q)
		bit := (val - bound) >> 31 // val < bound: DecodeBits8 says why
		out = out<<1 | bit
		zero := bit - 1
		val -= bound & zero
		rng = (rng-bound)&zero | bound&^zero
		for rng <= minRangeSize { // at most twice: rng >= 2**15 here
			rng <<= 8
			val = r.shiftIn(val)
		}
	}
	r.rangeSize, r.highAndCodedDifference = rng, val

	return out
}

// ICDF8 returns DecodeICDF8's form of a DecodeSymbolWithICDF table of total
// 256 whose first symbol has non-zero probability; it panics on another.
func ICDF8(t []uint) []uint8 {
	if t[0] != 256 || t[1] == 0 {
		panic("rangecoding: not a table of total 256 with a first symbol")
	}
	icdf := make([]uint8, len(t)-1)
	for k, c := range t[1:] {
		icdf[k] = uint8(256 - c) //nolint:gosec // G115: c in 1..256
	}

	return icdf
}

// shiftIn returns val with the next 8 bits of range coder data shifted in,
// one step of the renormalization (RFC 6716 Section 4.1.2.1, below), and
// moves the read position: the caller shifts rng. (Session 21: one step
// that the inliner takes, shared by every decoder, instead of a loop over
// getBits(8)'s general read written out in five of them: about 15
// instructions a byte instead of 35. The range coder reads whole bytes after
// Init's 7 bits, so its position is 7 bits into a byte, bitsRead%8 == 7, or
// at or past the end of data (clamped there, or left past it by
// SetStorageSize): the byte step needs no bit offset, and the two bytes it
// takes the 8 bits from are data[i] and data[i+1], zeros past the end.
// The same bits and position as getBits(8): TestShiftIn_SameAsGetBits.)
func (r *Decoder) shiftIn(val uint32) uint32 {
	r.nbitsTotal += 8
	i, n := r.bitsRead>>3, uint(len(r.data))
	var w uint32 // the next two bytes; the bits are 1 to 8 of them
	if i+1 < n {
		w = uint32(r.data[i])<<8 | uint32(r.data[i+1])
		r.bitsRead += 8
	} else if i < n { // the last byte's last bit
		w = uint32(r.data[i]) << 8
		r.bitsRead++
	}

	return (val<<8 | (^w>>1)&0xFF) & 0x7FFFFFFF // (val<<8) + (255 - sym)
}

func (r *Decoder) decodeUniformSymbol(total uint32) uint32 {
	scale := r.rangeSize / total
	symbol := r.highAndCodedDifference/scale + 1

	return total - uint32(localMin(uint(symbol), uint(total))) //nolint:gosec // G115: symbol is clamped to total.
}

func (r *Decoder) decodeAndUpdateUniformSymbol(total uint32) uint32 {
	symbol := r.decodeUniformSymbol(total)
	r.update(r.rangeSize/total, symbol, symbol+1, total)

	return symbol
}

// DecodeCumulative decodes the cumulative frequency index used by CELT's
// custom range-coded symbols. Call UpdateCumulative with the selected interval.
func (r *Decoder) DecodeCumulative(total uint32) uint32 {
	return r.decodeUniformSymbol(total)
}

// UpdateCumulative commits a custom cumulative interval previously selected
// from DecodeCumulative.
func (r *Decoder) UpdateCumulative(low, high, total uint32) {
	r.update(r.rangeSize/total, low, high, total)
}

// DecodeUniform decodes an RFC 6716 Section 4.1.5 ec_dec_uint() symbol.
//
// It returns false when the decoded raw-bit suffix produces a value outside
// [0,total), in which case the saturated value matches the reference decoder.
func (r *Decoder) DecodeUniform(total uint32) (uint32, bool) {
	if total == 0 {
		return 0, false
	}
	if total == 1 {
		return 0, true
	}

	limit := total - 1
	bitCount := bits.Len32(limit)
	if bitCount <= maxUniformRangeCoderBits {
		return r.decodeAndUpdateUniformSymbol(total), true
	}

	rawBitCount := bitCount - maxUniformRangeCoderBits
	rangeTotal := (limit >> rawBitCount) + 1
	symbol := r.decodeAndUpdateUniformSymbol(rangeTotal)
	value := (symbol << rawBitCount) | r.DecodeRawBits(uint(rawBitCount))
	if value <= limit {
		return value, true
	}

	return limit, false
}

func laplaceFirstDecayFrequency(fs0 uint32, decay uint32) uint32 {
	frequencyTotal := uint32(laplaceTotal) - laplaceMinProbability*(2*laplaceGuaranteedDeltas) - fs0

	return frequencyTotal * (16384 - decay) >> 15
}

// DecodeLaplace decodes the ec_laplace_decode() symbol used by the CELT layer.
//
// RFC 6716 Section 4.3.2.1 describes coarse energy deltas as Laplace-distributed
// prediction errors; the reference implementation decodes them with this helper.
func (r *Decoder) DecodeLaplace(fs0 uint32, decay uint32) int {
	value := 0
	symbol := r.decodeUniformSymbol(laplaceTotal)
	low := uint32(0)
	frequency := fs0

	if symbol >= frequency {
		value++
		low = frequency
		frequency = laplaceFirstDecayFrequency(fs0, decay) + laplaceMinProbability
		for frequency > laplaceMinProbability && symbol >= low+2*frequency {
			frequency *= 2
			low += frequency
			frequency = ((frequency - 2*laplaceMinProbability) * decay) >> 15
			frequency += laplaceMinProbability
			value++
		}
		if frequency <= laplaceMinProbability {
			extra := (symbol - low) >> 1
			value += int(extra)
			low += 2 * extra * laplaceMinProbability
		}
		if symbol < low+frequency {
			value = -value
		} else {
			low += frequency
		}
	}

	high := min(low+frequency, uint32(laplaceTotal))
	r.update(r.rangeSize/laplaceTotal, low, high, laplaceTotal)

	return value
}

// DecodeSymbolLogP decodes a single binary symbol.
// The context is described by a single parameter, logp, which
// is the absolute value of the base-2 logarithm of the probability of a
// "1".
//
// https://datatracker.ietf.org/doc/html/rfc6716#section-4.1.3.2
func (r *Decoder) DecodeSymbolLogP(logp uint) uint32 {
	scale := r.rangeSize >> logp
	symbol := uint32(0)

	if r.highAndCodedDifference >= scale {
		r.highAndCodedDifference -= scale
		r.rangeSize -= scale
	} else {
		r.rangeSize = scale
		symbol = 1
	}
	r.normalize()

	return symbol
}

func (r *Decoder) getBit() uint32 {
	index := r.bitsRead / 8
	offset := r.bitsRead % 8

	if index >= uint(len(r.data)) {
		return 0
	}

	r.bitsRead++

	return uint32((r.data[index] >> (7 - offset)) & 1)
}

func (r *Decoder) getBits(n int) uint32 {
	if n > 0 && n <= 8 && r.bitsRead+uint(n) <= uint(len(r.data))*8 {
		byteIndex := r.bitsRead / 8
		offset := r.bitsRead % 8
		combined := uint32(r.data[byteIndex]) << 8
		if byteIndex+1 < uint(len(r.data)) {
			combined |= uint32(r.data[byteIndex+1])
		}
		r.bitsRead += uint(n)

		return combined >> (16 - offset - uint(n)) & ((1 << n) - 1)
	}

	bits := uint32(0)

	for i := range n {
		if i != 0 {
			bits <<= 1
		}

		bits |= r.getBit()
	}

	return bits
}

func (r *Decoder) getRawBit() uint32 {
	index := r.rawBitsRead / 8
	offset := r.rawBitsRead % 8
	r.rawBitsRead++
	r.nbitsTotal++
	if index >= uint(len(r.data)) {
		return 0
	}

	byteIndex := len(r.data) - 1 - int(index) //nolint:gosec // G115: index is bounded by len(r.data) above.

	return uint32((r.data[byteIndex] >> offset) & 1)
}

func (r *Decoder) getRawBits(n uint) uint32 {
	var bits uint32

	for i := uint(0); i < n && i < 32; i++ {
		bits |= r.getRawBit() << i
	}
	for i := uint(32); i < n; i++ {
		_ = r.getRawBit()
	}

	return bits
}

// minRangeSize is the minimum allowed size for rng.
// It's equal to math.Pow(2, 23).
const minRangeSize = 1 << 23

// To normalize the range, the decoder repeats the following process,
// implemented by ec_dec_normalize() (entdec.c), until rng > 2**23.  If
// rng is already greater than 2**23, the entire process is skipped.
// First, it sets rng to (rng<<8).  Then, it reads the next byte of the
// Opus frame and forms an 8-bit value sym, using the leftover bit
// buffered from the previous byte as the high bit and the top 7 bits of
// the byte just read as the other 7 bits of sym.  The remaining bit in
// the byte just read is buffered for use in the next iteration.  If no
// more input bytes remain, it uses zero bits instead.  See
// Section 4.1.1 for the initialization used to process the first byte.
// Then, it sets
//
// val = ((val<<8) + (255-sym)) & 0x7FFFFFFF
//
// https://datatracker.ietf.org/doc/html/rfc6716#section-4.1.2.1
func (r *Decoder) normalize() {
	for r.rangeSize <= minRangeSize {
		r.rangeSize <<= 8
		r.highAndCodedDifference = r.shiftIn(r.highAndCodedDifference)
	}
}

func (r *Decoder) update(scale, low, high, total uint32) {
	r.highAndCodedDifference -= scale * (total - high)
	if low != 0 {
		r.rangeSize = scale * (high - low)
	} else {
		r.rangeSize -= scale * (total - high)
	}

	r.normalize()
}

// SetInternalValues is used when using the RangeDecoder when testing.
func (r *Decoder) SetInternalValues(data []byte, bitsRead uint, rangeSize uint32, highAndCodedDifference uint32) {
	r.data = data
	r.bitsRead = bitsRead
	r.rawBitsRead = 0
	r.nbitsTotal = bitsRead
	r.rangeSize = rangeSize
	r.highAndCodedDifference = highAndCodedDifference
}

// DecodeRawBits decodes raw bits packed from the end of the frame.
// RFC 6716 Section 4.1.4 defines this LSB-first tail packing for CELT.
func (r *Decoder) DecodeRawBits(n uint) uint32 {
	return r.getRawBits(n)
}

// Tell returns a conservative upper bound, in whole bits, of how many bits
// have been consumed from the current frame, per RFC 6716 Section 4.1.6.1.
func (r *Decoder) Tell() uint {
	lg := uint(bits.Len32(r.rangeSize)) //nolint:gosec // G115: bits.Len32 returns 0..32.
	if lg == 0 {
		return r.nbitsTotal
	}
	if r.nbitsTotal <= lg {
		return 0
	}

	return r.nbitsTotal - lg
}

// TellFrac returns a conservative upper bound in 1/8 bit units.
// This follows the ec_tell_frac() construction in RFC 6716 Section 4.1.6.2.
func (r *Decoder) TellFrac() uint {
	lg := uint(bits.Len32(r.rangeSize)) //nolint:gosec // G115: bits.Len32 returns 0..32.
	if lg == 0 {
		return r.nbitsTotal * 8
	}
	if lg < 24 {
		return r.Tell() * 8
	}

	rQ15 := uint64(r.rangeSize >> (lg - 16))
	for range 3 {
		rQ15 = (rQ15 * rQ15) >> 15
		bit := rQ15 >> 16
		lg = 2*lg + uint(bit)
		if bit != 0 {
			rQ15 >>= 1
		}
	}

	total := r.nbitsTotal * 8
	if total <= lg {
		return 0
	}

	return total - lg
}

// RemainingBits reports a conservative estimate of the unread payload bits.
// RFC 6716 Section 4.1.4 allows range and raw-bit cursor overlap.
func (r *Decoder) RemainingBits() int {
	return len(r.data)*8 - int(r.bitsRead) - int(r.rawBitsRead) //nolint:gosec // G115: decode cursors are frame-sized.
}

// FinalRange exposes the current range coder range state for tests.
func (r *Decoder) FinalRange() uint32 {
	return r.rangeSize
}

func localMin(a, b uint) uint {
	if a < b {
		return a
	}

	return b
}
