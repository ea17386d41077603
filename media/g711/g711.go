// Package g711 is the G.711 codec (ITU-T G.711, the PCMU and PCMA payloads of
// RFC 3551 §4.5.14): one 8 kHz sample per byte, µ-law or A-law companded.
// It is the one copy in the module: the live pipeline and the offline mix
// decode with it, and the synthetic senders of the demo and the tests encode
// with it.
package g711

// The decode tables are computed once and read-only afterwards.
var muLaw, aLaw = table(muLawExpand), table(aLawExpand)

func table(expand func(byte) int16) (t [256]int16) {
	for i := range t {
		t[i] = expand(byte(i))
	}
	return t
}

// MuLawTable returns the µ-law decode table: entry b is the linear sample of byte b.
func MuLawTable() [256]int16 { return muLaw }

// ALawTable returns the A-law decode table: entry b is the linear sample of byte b.
func ALawTable() [256]int16 { return aLaw }

// DecodeMuLaw expands one µ-law byte to a 16-bit linear sample.
func DecodeMuLaw(b byte) int16 { return muLaw[b] }

// DecodeALaw expands one A-law byte to a 16-bit linear sample.
func DecodeALaw(b byte) int16 { return aLaw[b] }

// muLawExpand expands one µ-law byte (G.711 §2: bias 0x84, sign in bit 7,
// bits inverted on the line).
func muLawExpand(b byte) int16 {
	b = ^b
	exp := (b >> 4) & 0x07
	mant := int32(b & 0x0F)
	mag := ((mant << 3) + muLawBias) << exp
	mag -= muLawBias
	if b&0x80 != 0 {
		return int16(-mag)
	}
	return int16(mag)
}

// aLawExpand expands one A-law byte (G.711 §3: 13-bit segments, even bits
// inverted on the line).
func aLawExpand(b byte) int16 {
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

const (
	muLawBias = 0x84
	muLawClip = 32635
)

// EncodeMuLaw compands one 16-bit linear sample to µ-law (G.711 §2).
func EncodeMuLaw(s int16) byte {
	v := int(s)
	sign := 0
	if v < 0 {
		v, sign = -v, 0x80
	}
	v = min(v, muLawClip) + muLawBias
	exp := 7
	for mask := 0x4000; v&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (v >> (exp + 3)) & 0x0F
	return ^byte(sign | exp<<4 | mant)
}

// EncodeALaw compands one 16-bit linear sample to A-law (G.711 §3).
func EncodeALaw(s int16) byte {
	v := int(s) >> 3
	mask := 0xD5
	if v < 0 {
		mask, v = 0x55, -v-1
	}
	seg := 0
	for end := 0x1F; seg < 8 && v > end; end = end<<1 | 1 {
		seg++
	}
	if seg >= 8 {
		return byte(0x7F ^ mask)
	}
	a := seg << 4
	if seg < 2 {
		a |= (v >> 1) & 0x0F
	} else {
		a |= (v >> seg) & 0x0F
	}
	return byte(a ^ mask)
}
