package media

// G.711 decoding (ITU-T G.711): each payload byte is one 8 kHz sample.

import itu "github.com/rtcrec/recorder/media/g711"

// g711Tables holds the 256-entry decode tables of both laws.
type g711Tables struct {
	ulaw, alaw [256]int16
}

// g711 holds copies of package g711's tables, read-only, so the decode loop
// indexes an array it points at.
var g711 = &g711Tables{ulaw: itu.MuLawTable(), alaw: itu.ALawTable()}

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
