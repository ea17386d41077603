// SPDX-FileCopyrightText: 2026 The Pion community <https://pion.ly>
// SPDX-License-Identifier: MIT

package silkresample

import (
	"math"
	"math/rand/v2"
	"testing"
)

// tone16k returns n samples of a sine of freq Hz at 16 kHz, amplitude amp
// (of full scale), as the SILK layer's float output.
func tone16k(freq, amp float64, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(amp * math.Sin(2*math.Pi*freq*float64(i)/16000))
	}
	return x
}

// level returns the amplitude of freq Hz in x (8 kHz) by correlation, as a
// fraction of full scale.
func level(x []int16, freq float64) float64 {
	var re, im float64
	for i, v := range x {
		re += float64(v) * math.Cos(2*math.Pi*freq*float64(i)/8000)
		im += float64(v) * math.Sin(2*math.Pi*freq*float64(i)/8000)
	}
	return 2 * math.Hypot(re, im) / float64(len(x)) / 32768
}

// resample16to8 resamples x in 20 ms frames, as the decoder does.
func resample16to8(t *testing.T, r *Resampler, x []float32) []int16 {
	t.Helper()
	out := make([]int16, len(x)/2)
	for f := 0; f+320 <= len(x); f += 320 {
		if err := r.ResampleToInt16(x[f:f+320], out[f/2:f/2+160]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestResampler_16to8PassesTheBandAndStopsAliases: the 2:1 decimation
// (halfband.go) keeps tones of the telephone band at their level, and a tone
// above 5 kHz, which would fold into the band, comes out at least 55 dB
// down: by content, a second of each, past the filter's first frame.
func TestResampler_16to8PassesTheBandAndStopsAliases(t *testing.T) {
	for _, c := range []struct {
		freq, alias  float64 // Hz at 16 kHz; where it lands at 8 kHz
		minDB, maxDB float64
	}{
		{300, 300, -0.1, 0.1},
		{1000, 1000, -0.1, 0.1},
		{3000, 3000, -0.2, 0.1},
		{3400, 3400, -1, 0},
		{5500, 2500, -200, -55},
		{7000, 1000, -200, -55},
	} {
		var r Resampler
		if err := r.Init(16000, 8000); err != nil {
			t.Fatal(err)
		}
		out := resample16to8(t, &r, tone16k(c.freq, 0.5, 16000+320))[160:]
		db := 20 * math.Log10(level(out, c.alias)/0.5)
		if db < c.minDB || db > c.maxDB {
			t.Errorf("%.0f Hz: %.2f dB at %.0f Hz, want %.1f to %.1f", c.freq, db, c.alias, c.minDB, c.maxDB)
		}
	}
}

// TestResampler_16to8KeepsTheWaveform: tones across the telephone band
// (as a voice's harmonics) and one above it come out as an ideal decimation
// would give them: the band's tones, unchanged in level and phase, delayed
// alike, within 60 dB (halfband.go is linear-phase; libopus's AR2 + FIR
// gave 14 dB here, its IIR section delaying each frequency differently).
func TestResampler_16to8KeepsTheWaveform(t *testing.T) {
	freqs := []float64{300, 800, 1500, 2400, 3000}
	amps := []float64{0.15, 0.15, 0.1, 0.08, 0.05}
	band := func(i float64) float64 { // the band's tones at input sample i
		v := 0.0
		for k, f := range freqs {
			v += amps[k] * math.Sin(2*math.Pi*f*i/16000+float64(k))
		}
		return v
	}
	x := tone16k(5500, 0.05, 16000) // folds to 2.5 kHz unless stopped
	for i := range x {
		x[i] += float32(band(float64(i)))
	}
	var r Resampler
	if err := r.Init(16000, 8000); err != nil {
		t.Fatal(err)
	}
	out := resample16to8(t, &r, x)
	best, delay := math.Inf(-1), 0
	for d := 0; d <= 80; d++ { // the delay, in input samples
		var sig, noise float64
		for m := 400; m < len(out); m++ { // past the first 50 ms
			want := 32768 * band(float64(2*m-d))
			e := float64(out[m]) - want
			sig += want * want
			noise += e * e
		}
		if snr := 10 * math.Log10(sig/noise); snr > best {
			best, delay = snr, d
		}
	}
	t.Logf("%.1f dB from an ideal decimation, %d input samples later", best, delay)
	if best < 60 {
		t.Errorf("%.1f dB from an ideal decimation (at its best delay, %d input samples), want 60 or more", best, delay)
	}
}

// TestResampler_16to8FramesJoin: resampling in 20 ms frames gives what one
// call over the whole signal gives (the filter's history carries over).
func TestResampler_16to8FramesJoin(t *testing.T) {
	x := tone16k(440, 0.7, 3200)
	for i := range x {
		x[i] += float32(0.2 * math.Sin(float64(i)*1.7)) // a second tone, 4.3 kHz
	}
	var framed, whole Resampler
	_ = framed.Init(16000, 8000)
	_ = whole.Init(16000, 8000)
	a := resample16to8(t, &framed, x)
	b := make([]int16, len(x)/2)
	if err := whole.ResampleToInt16(x, b); err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("sample %d: %d framed, %d in one call", i, a[i], b[i])
		}
	}
}

// TestResampler_16to8SameAsTwoPasses: ResampleToInt16's one pass at 16 →
// 8 kHz (halfbandToInt16) gives, sample for sample and state for state, what
// the general path gives (resample: the input to 16 bits, the delay buffer,
// two filter calls, the copy), for frames of 10, 20 and 60 ms of speech-like,
// clipping, tiny and signed-zero samples.
func TestResampler_16to8SameAsTwoPasses(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	var one, two Resampler
	_ = one.Init(16000, 8000)
	_ = two.Init(16000, 8000)
	var s scratch
	for frame := range 400 {
		in := make([]float32, []int{160, 320, 960}[frame%3])
		for i := range in {
			switch rnd.IntN(8) {
			case 0:
				in[i] = float32(rnd.NormFloat64() * 2) // clips
			case 1:
				in[i] = float32(math.Copysign(0, -1))
			case 2:
				in[i] = float32(rnd.IntN(7)-3) / 65536 // half an LSB and around it
			default:
				in[i] = float32(rnd.NormFloat64() * 0.2)
			}
		}
		a := make([]int16, len(in)/2+3)
		if err := one.ResampleToInt16(in, a); err != nil {
			t.Fatal(err)
		}
		b, err := two.resample(&s, in, len(in)/2)
		if err != nil {
			t.Fatal(err)
		}
		for i := range b {
			if a[i] != b[i] {
				t.Fatalf("frame %d sample %d: %d in one pass, %d in two", frame, i, a[i], b[i])
			}
		}
		if one.sFIR != two.sFIR {
			t.Fatalf("frame %d: filter state differs", frame)
		}
	}
	if err := one.ResampleToInt16(make([]float32, 320), make([]int16, 159)); err != errOutBufferTooSmall {
		t.Errorf("short output: %v", err)
	}
	if err := one.ResampleToInt16(make([]float32, 15), make([]int16, 8)); err != errInvalidInputLength {
		t.Errorf("short input: %v", err)
	}
}

// BenchmarkResampler_16to8 resamples 20 ms frames of wideband SILK output to
// 8 kHz, as the mix's decoder does for every wideband packet: ns/op is per
// frame (320 samples in, 160 out).
func BenchmarkResampler_16to8(b *testing.B) {
	x := tone16k(440, 0.5, 16000)
	for i := range x {
		x[i] += float32(0.1 * math.Sin(float64(i)*1.7))
	}
	var r Resampler
	if err := r.Init(16000, 8000); err != nil {
		b.Fatal(err)
	}
	out := make([]int16, 160)
	b.ReportAllocs()
	f := 0
	for b.Loop() {
		if err := r.ResampleToInt16(x[f:f+320], out); err != nil {
			b.Fatal(err)
		}
		f = (f + 320) % len(x)
	}
}
