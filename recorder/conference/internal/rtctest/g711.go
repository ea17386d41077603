package rtctest

// G.711 µ-law (ITU-T G.711, the PCMU payload of RFC 3551): 14-bit linear PCM
// companded to 8 bits, bias 0x84, sign in bit 7, bits inverted on the wire.

const (
	muLawBias = 0x84
	muLawClip = 32635
)

// MuLawEncode compands one 16-bit linear sample to G.711 µ-law.
func MuLawEncode(x int16) byte {
	v := int(x)
	sign := 0
	if v < 0 {
		v = -v
		sign = 0x80
	}
	if v > muLawClip {
		v = muLawClip
	}
	v += muLawBias
	exp := 7
	for mask := 0x4000; v&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (v >> (exp + 3)) & 0x0f
	return ^byte(sign | exp<<4 | mant)
}

// MuLawDecode expands one G.711 µ-law byte to 16-bit linear PCM.
func MuLawDecode(b byte) int16 {
	u := ^b
	exp := int(u>>4) & 0x07
	mant := int(u & 0x0f)
	v := ((mant << 3) + muLawBias) << exp
	v -= muLawBias
	if u&0x80 != 0 {
		return int16(-v)
	}
	return int16(v)
}

// MuLawDecodeInto appends the linear samples of a µ-law payload to dst.
func MuLawDecodeInto(dst []int16, payload []byte) []int16 {
	for _, b := range payload {
		dst = append(dst, MuLawDecode(b))
	}
	return dst
}
