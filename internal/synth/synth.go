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
