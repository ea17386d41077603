// SPDX-FileCopyrightText: 2026 The Pion community <https://pion.ly>
// SPDX-License-Identifier: MIT

package silkresample

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rtcrec/recorder/internal/opus/internal/bitdepth"
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

// halfbandFilterInterleaved is halfbandFilter before session 18, on the
// input as one buffer (buf[2k+16] the centre of out[k]): the reference for
// the even/odd split.
func halfbandFilterInterleaved(out []int16, buf []float32) {
	c0, c1, c2, c3 := halfband12Coefs[0], halfband12Coefs[1], halfband12Coefs[2], halfband12Coefs[3]
	c4, c5, c6, c7 := halfband12Coefs[4], halfband12Coefs[5], halfband12Coefs[6], halfband12Coefs[7]
	for k := range out {
		b := buf[:halfbandOrder+1]
		buf = buf[2:]
		s0 := 0.5*b[16] + c0*(b[15]+b[17]) + c2*(b[11]+b[21]) + c4*(b[7]+b[25]) + c6*(b[3]+b[29])
		s1 := c1*(b[13]+b[19]) + c3*(b[9]+b[23]) + c5*(b[5]+b[27]) + c7*(b[1]+b[31])
		v := s0 + s1
		half := math.Float32frombits(math.Float32bits(v)&(1<<31) | math.Float32bits(0.5))
		out[k] = silkSAT16(int32(v + half))
	}
}

// halfbandTestInput returns n samples for the filter: mostly 16-bit values as
// the decoder gives it, with clipping sums, tiny and signed-zero values,
// infinities and NaNs (the lanes must treat every float as the scalar code).
func halfbandTestInput(rnd *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		switch rnd.IntN(16) {
		case 0:
			x[i] = float32(rnd.IntN(2)*2-1) * 32767 // full scale: sums past 16 bits
		case 1:
			x[i] = float32(math.Copysign(0, -1))
		case 2:
			x[i] = float32(rnd.NormFloat64()) // fractions: rounding's halves
		case 3:
			x[i] = []float32{float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 3e38, -3e38}[rnd.IntN(5)]
		default:
			x[i] = float32(int16(rnd.NormFloat64() * 6000))
		}
	}
	return x
}

// TestHalfbandFilter_SameAsGo: halfbandFilter (four outputs at a time in
// SSE2 on amd64) gives halfbandFilterGo's outputs bit for bit, for every
// output length from 0 to 41 and a 20 ms frame; and halfbandFilterGo on the
// even/odd split gives what the filter on the interleaved buffer gave
// before session 18.
func TestHalfbandFilter_SameAsGo(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 8))
	for round := range 2000 {
		n := round % 42
		if round%42 == 41 {
			n = 160
		}
		buf := halfbandTestInput(rnd, halfbandOrder+2*n)
		even := make([]float32, halfbandOrder/2+n)
		odd := make([]float32, halfbandOrder/2+n)
		for m := range even {
			even[m], odd[m] = buf[2*m], buf[2*m+1]
		}
		want, goOut, got := make([]int16, n), make([]int16, n), make([]int16, n+1)
		got[n] = 12345 // written past the end?
		halfbandFilterInterleaved(want, buf)
		halfbandFilterGo(goOut, even, odd)
		halfbandFilter(got[:n], even, odd)
		for k := range want {
			if goOut[k] != want[k] {
				t.Fatalf("round %d (%d outputs), output %d: %d split, %d interleaved", round, n, k, goOut[k], want[k])
			}
			if got[k] != want[k] {
				t.Fatalf("round %d (%d outputs), output %d: %d by halfbandFilter, %d by halfbandFilterGo", round, n, k, got[k], want[k])
			}
		}
		if got[n] != 12345 {
			t.Fatalf("round %d: halfbandFilter wrote past its %d outputs", round, n)
		}
	}
}

// TestHalfbandInput_SameAsFloat32ToSigned16: halfbandInput (eight samples
// at a time in SSE2 on amd64, halfbandInput4) rounds each sample to 16 bits
// as bitdepth.Float32ToSigned16 does and splits them into even and odd, for
// every length to 41 pairs, on random samples and on the edges of its
// rounding and saturation: each x.5 and the floats next to it, ±32767.5,
// ±32768.5, infinities, NaNs and signed zeros; and writes nothing past
// the pairs it reports.
func TestHalfbandInput_SameAsFloat32ToSigned16(t *testing.T) {
	var edges []float32
	for _, x := range []float32{0.5, 1.5, 2.5, 100.5, 16383.5, 16384.5, 32766.5, 32767.5, 32768.5, 32769, 1e9} {
		for _, v := range []float32{x, math.Nextafter32(x, 0), math.Nextafter32(x, 1e38)} {
			edges = append(edges, v/32768, -v/32768)
		}
	}
	edges = append(edges, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), float32(math.Copysign(0, -1)), 0,
		math.SmallestNonzeroFloat32, 0.49999997/32768, -0.49999997/32768)
	rnd := rand.New(rand.NewPCG(9, 10))
	for round := range 3000 {
		pairs := round % 42
		in := make([]float32, 2*pairs)
		for i := range in {
			if rnd.IntN(3) == 0 {
				in[i] = edges[rnd.IntN(len(edges))]
			} else {
				in[i] = float32(rnd.NormFloat64() * 0.3)
			}
		}
		even, odd := make([]float32, pairs+1), make([]float32, pairs+1)
		even[pairs], odd[pairs] = 1234, 1234
		n := halfbandInput(even[:pairs], odd[:pairs], in)
		if n > pairs || even[pairs] != 1234 || odd[pairs] != 1234 {
			t.Fatalf("round %d: %d pairs reported of %d, or written past them", round, n, pairs)
		}
		for i := range n {
			for _, c := range []struct {
				got float32
				x   float32
			}{{even[i], in[2*i]}, {odd[i], in[2*i+1]}} {
				if want := float32(bitdepth.Float32ToSigned16(c.x)); math.Float32bits(c.got) != math.Float32bits(want) {
					t.Fatalf("round %d, pair %d: %g (%#x) gives %g, want %g", round, i, c.x, math.Float32bits(c.x), c.got, want)
				}
			}
		}
	}
}
