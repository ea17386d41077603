// Package mediatest holds small helpers for tests that check audio by content:
// tone generation and single-frequency detection with the Goertzel algorithm.
//
// They are meant for tests anywhere in the module (media, recorder end-to-end
// tests): make a tone with Sine, run it through the system, and check the output
// with Goertzel or ToneLevel rather than by file existence or size.
package mediatest

import (
	"math"
)

// Sine returns n samples of a sine tone at freq Hz sampled at sampleRate Hz with
// the given peak amplitude (full scale is 32767).
func Sine(freq float64, sampleRate, n int, amplitude int16) []int16 {
	out := make([]int16, n)
	SineInto(out, freq, sampleRate, 0, amplitude)
	return out
}

// SineInto fills out with a sine tone at freq Hz sampled at sampleRate Hz, starting
// at sample index start of the tone (so consecutive calls continue the phase).
func SineInto(out []int16, freq float64, sampleRate, start int, amplitude int16) {
	w := 2 * math.Pi * freq / float64(sampleRate)
	for i := range out {
		out[i] = int16(math.Round(float64(amplitude) * math.Sin(w*float64(start+i))))
	}
}

// Goertzel returns the estimated peak amplitude, in sample units, of the
// component at freq Hz in samples taken at sampleRate Hz. A pure sine of peak
// amplitude A at freq yields about A (exactly A when the window holds a whole
// number of periods); other frequencies yield little. Use windows of at least a
// few hundred samples so neighbouring test tones are resolved.
func Goertzel(samples []int16, sampleRate int, freq float64) float64 {
	n := len(samples)
	if n == 0 || sampleRate <= 0 {
		return 0
	}
	w := 2 * math.Pi * freq / float64(sampleRate)
	coeff := 2 * math.Cos(w)
	var s1, s2 float64
	for _, x := range samples {
		s0 := float64(x) + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	power := s1*s1 + s2*s2 - coeff*s1*s2
	if power < 0 {
		power = 0
	}
	return 2 * math.Sqrt(power) / float64(n)
}

// ToneLevel returns the level of the component at freq Hz in dBFS (0 dBFS is a
// full-scale sine of peak 32767); silence yields -Inf.
func ToneLevel(samples []int16, sampleRate int, freq float64) float64 {
	return DBFS(Goertzel(samples, sampleRate, freq))
}

// DBFS converts a peak amplitude in sample units to dBFS.
func DBFS(amplitude float64) float64 {
	return 20 * math.Log10(amplitude/32767)
}

// RMS returns the root mean square of samples in sample units.
func RMS(samples []int16) float64 {
	if len(samples) == 0 {
		return 0
	}
	var sum float64
	for _, x := range samples {
		sum += float64(x) * float64(x)
	}
	return math.Sqrt(sum / float64(len(samples)))
}

// Channel returns channel ch (0-based) of interleaved samples with the given
// channel count.
func Channel(interleaved []int16, channels, ch int) []int16 {
	if channels <= 0 || ch < 0 || ch >= channels {
		return nil
	}
	out := make([]int16, 0, len(interleaved)/channels)
	for i := ch; i < len(interleaved); i += channels {
		out = append(out, interleaved[i])
	}
	return out
}

// Add returns the sample-wise sum of a and b clamped to int16, as long as the
// longer of the two.
func Add(a, b []int16) []int16 {
	if len(b) > len(a) {
		a, b = b, a
	}
	out := make([]int16, len(a))
	for i := range a {
		s := int32(a[i])
		if i < len(b) {
			s += int32(b[i])
		}
		out[i] = int16(max(-32768, min(32767, s)))
	}
	return out
}
