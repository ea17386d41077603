// Package synth makes synthetic audio for the demo and the tests: sine tones
// encoded as G.711 µ-law (PCMU), the one codec simple enough to encode
// without a library, so the demo runs on a machine with nothing but Go.
package synth

import "math"

// Tone is a sine tone at 8000 Hz, read 20 ms (160 samples) at a time with a
// continuous phase.
type Tone struct {
	Freq      float64 // Hz
	Amplitude float64 // peak, 0..32767
	n         int     // samples produced so far
}

// FrameSamples is the number of samples in one 20 ms PCMU frame.
const FrameSamples = 160

// NextPCMU appends the next 20 ms of the tone, µ-law encoded, to dst.
func (t *Tone) NextPCMU(dst []byte) []byte {
	for i := 0; i < FrameSamples; i++ {
		v := t.Amplitude * math.Sin(2*math.Pi*t.Freq*float64(t.n)/8000)
		t.n++
		dst = append(dst, MuLaw(int16(v)))
	}
	return dst
}

// NextPCMA appends the next 20 ms of the tone, A-law encoded, to dst.
func (t *Tone) NextPCMA(dst []byte) []byte {
	for i := 0; i < FrameSamples; i++ {
		v := t.Amplitude * math.Sin(2*math.Pi*t.Freq*float64(t.n)/8000)
		t.n++
		dst = append(dst, ALaw(int16(v)))
	}
	return dst
}

// ALaw encodes one linear sample as G.711 A-law (ITU-T G.711: 13-bit
// segments, even bits inverted).
func ALaw(s int16) byte {
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

// ALawDecode decodes one A-law byte (for tests of ALaw).
func ALawDecode(b byte) int16 {
	b ^= 0x55
	t := int(b&0x0F) << 4
	switch seg := int(b&0x70) >> 4; seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t = (t + 0x108) << (seg - 1)
	}
	if b&0x80 != 0 {
		return int16(t)
	}
	return int16(-t)
}

// MuLaw encodes one linear sample as G.711 µ-law (ITU-T G.711, bias 0x84).
func MuLaw(s int16) byte {
	const bias, clip = 0x84, 32635
	v := int(s)
	sign := 0
	if v < 0 {
		v, sign = -v, 0x80
	}
	v = min(v, clip) + bias
	exp := 7
	for mask := 0x4000; v&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (v >> (exp + 3)) & 0x0F
	return ^byte(sign | exp<<4 | mant)
}

// MuLawDecode decodes one µ-law byte (for tests of MuLaw).
func MuLawDecode(b byte) int16 {
	b = ^b
	sign, exp, mant := b&0x80, int(b>>4)&7, int(b&0x0F)
	v := ((mant << 3) + 0x84) << exp
	v -= 0x84
	if sign != 0 {
		return int16(-v)
	}
	return int16(v)
}
