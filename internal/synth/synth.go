// Package synth makes synthetic audio for the demo and the tests: sine tones
// encoded as G.711 µ-law (PCMU) or A-law (PCMA), the codecs simple enough to
// encode without a library, so the demo runs on a machine with nothing but
// Go. The WHIP publisher that sends them is whip/whiptest; Opus tones made
// with ffmpeg are mediatest.OpusTone.
package synth

import (
	"math"

	"github.com/rtcrec/recorder/media/g711"
)

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
		dst = append(dst, g711.EncodeMuLaw(int16(v)))
	}
	return dst
}

// NextPCMA appends the next 20 ms of the tone, A-law encoded, to dst.
func (t *Tone) NextPCMA(dst []byte) []byte {
	for i := 0; i < FrameSamples; i++ {
		v := t.Amplitude * math.Sin(2*math.Pi*t.Freq*float64(t.n)/8000)
		t.n++
		dst = append(dst, g711.EncodeALaw(int16(v)))
	}
	return dst
}
