package media

// G.711 decoding (ITU-T G.711): each payload byte is one 8 kHz sample.

// g711Tables holds the 256-entry decode tables of both laws.
type g711Tables struct {
	ulaw, alaw [256]int16
}

// g711 is computed once; the tables are read-only afterwards.
var g711 = newG711Tables()

func newG711Tables() *g711Tables {
	t := new(g711Tables)
	for i := range 256 {
		t.ulaw[i] = decodeULaw(byte(i))
		t.alaw[i] = decodeALaw(byte(i))
	}
	return t
}

// decodeULaw expands one µ-law byte (G.711 §2, bits inverted on the line).
func decodeULaw(b byte) int16 {
	b = ^b
	exp := (b >> 4) & 0x07
	mant := int32(b & 0x0F)
	mag := ((mant << 3) + 0x84) << exp
	mag -= 0x84
	if b&0x80 != 0 {
		return int16(-mag)
	}
	return int16(mag)
}

// decodeALaw expands one A-law byte (G.711 §3, even bits inverted on the line).
func decodeALaw(b byte) int16 {
	b ^= 0x55
	exp := (b >> 4) & 0x07
	mant := int32(b & 0x0F)
	var mag int32
	if exp == 0 {
		mag = (mant << 4) + 8
	} else {
		mag = ((mant << 4) + 0x108) << (exp - 1)
	}
	if b&0x80 != 0 {
		return int16(mag)
	}
	return int16(-mag)
}

// decodeG711 expands payload with table into out at factor output samples
// per input sample (factor = mix rate / 8000), interpolating linearly from
// prev, the last sample of the previous packet. It returns the number of
// samples written and the new prev. out must hold len(payload)*factor.
func decodeG711(table *[256]int16, payload []byte, out []int16, factor int, prev int16) (int, int16) {
	if factor == 1 {
		for i, b := range payload {
			out[i] = table[b]
		}
		if len(payload) > 0 {
			prev = out[len(payload)-1]
		}
		return len(payload), prev
	}
	n := 0
	p := int32(prev)
	f := int32(factor)
	for _, b := range payload {
		s := int32(table[b])
		for k := int32(1); k <= f; k++ {
			out[n] = int16(p + (s-p)*k/f)
			n++
		}
		p = s
	}
	return n, int16(p)
}
