// SPDX-FileCopyrightText: 2026 The Pion community <https://pion.ly>
// SPDX-License-Identifier: MIT

package silk

import (
	"math"
	"math/rand/v2"
	"testing"
)

// simdSample returns a sample for the SIMD filters' tests: mostly of
// speech-like scale, with full-scale, clipping, tiny, signed-zero and NaN
// values (the lanes must treat every float as the Go loop does).
func simdSample(rnd *rand.Rand) float32 {
	switch rnd.IntN(16) {
	case 0:
		return float32(rnd.IntN(2)*2 - 1) // ±1, the clamp's bounds
	case 1:
		return float32(math.Copysign(0, -1))
	case 2:
		return float32(rnd.NormFloat64() * 4) // clips
	case 3:
		return float32(rnd.NormFloat64() * 1e-30)
	case 4:
		if rnd.IntN(8) == 0 {
			return float32(math.NaN())
		}
	}

	return float32(rnd.NormFloat64() * 0.2)
}

// sameFloat32 reports whether a and b are the same float32, bit for bit, or
// both NaN.
func sameFloat32(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b) //nolint:gocritic // NaN
}

// TestRewhiten16_SameAsGo: rewhitenRange for d_LPC 16 (four samples at a
// time in SSE2 on amd64, rewhiten16) gives bit for bit what summing each
// sample's products with dot in its reversed order gives, for every length
// from 0 to 41 and a WB subframe's 80, the last block's reads at the very
// end of src, and writes nothing past dst.
func TestRewhiten16_SameAsGo(t *testing.T) {
	rnd := rand.New(rand.NewPCG(11, 12))
	for round := range 3000 {
		n := round % 42
		if round%42 == 41 {
			n = 80
		}
		var a [16]float32
		for k := range a {
			a[k] = float32(rnd.NormFloat64() * 0.5)
		}
		src := make([]float32, n+16)
		for i := range src {
			src[i] = simdSample(rnd)
		}
		dst := make([]float32, n+1)
		dst[n] = 1234
		rewhitenRange(dst[:n], src, &a, 16)
		for i := range n {
			want := clampNegativeOneToOne(src[16+i] - dot(src[i:i+16], a[:], true))
			if !sameFloat32(dst[i], want) {
				t.Fatalf("round %d (%d samples), sample %d: %g (%#x), want %g (%#x)",
					round, n, i, dst[i], math.Float32bits(dst[i]), want, math.Float32bits(want))
			}
		}
		if dst[n] != 1234 {
			t.Fatalf("round %d: wrote past its %d samples", round, n)
		}
	}
}

// TestLTPFilter_SameAsGo: ltpFilter (four samples at a time in SSE2 on
// amd64) gives bit for bit what ltpFilterGo gives, on a past of its own and
// on res itself lag+2 behind (as ltpPredict calls it, lags 6 to 40: each
// block must read only final samples), for every length from 0 to 41 and
// a WB subframe's 80.
func TestLTPFilter_SameAsGo(t *testing.T) {
	rnd := rand.New(rand.NewPCG(13, 14))
	for round := range 3000 {
		n := round % 42
		if round%42 == 41 {
			n = 80
		}
		var b [5]float32
		for k := range b {
			b[k] = float32(rnd.NormFloat64() * 0.4)
		}
		lag := 6 + rnd.IntN(35)
		buf := make([]float32, lag+2+n+1)
		for i := range buf {
			buf[i] = simdSample(rnd)
		}
		buf[len(buf)-1] = 1234
		want := append([]float32(nil), buf...)
		if round%2 == 0 { // a past of its own (resLag)
			past := make([]float32, n+4)
			for i := range past {
				past[i] = simdSample(rnd)
			}
			ltpFilter(buf[:n], past, &b)
			ltpFilterGo(want[:n], past, &b)
		} else { // res itself, lag+2 behind
			ltpFilter(buf[lag+2:lag+2+n], buf[:n+4], &b)
			ltpFilterGo(want[lag+2:lag+2+n], want[:n+4], &b)
		}
		for i := range buf {
			if !sameFloat32(buf[i], want[i]) {
				t.Fatalf("round %d (%d samples, lag %d), sample %d: %g, want %g", round, n, lag, i, buf[i], want[i])
			}
		}
	}
}

// TestScaleInto_SameAsGo: scaleInto (four samples at a time in SSE2 on
// amd64) gives each product as the loop in Go does, into another slice and
// in place, for positive and negative ranges of every length from 0 to 41,
// and writes nothing outside its range.
func TestScaleInto_SameAsGo(t *testing.T) {
	rnd := rand.New(rand.NewPCG(15, 16))
	for round := range 3000 {
		const size = 50
		n := round % 42
		from := rnd.IntN(size - n + 1)
		to := from + n
		if round%2 == 1 { // negative: from the end, as resLag's
			from, to = from-size, to-size
		}
		scale := simdSample(rnd) * 3
		src := make([]float32, size)
		for i := range src {
			src[i] = simdSample(rnd)
		}
		dst := make([]float32, size)
		for i := range dst {
			dst[i] = 1234
		}
		want := append([]float32(nil), dst...)
		inPlace := append([]float32(nil), src...)
		lo := from
		if to <= 0 && n > 0 {
			lo = size + from
		}
		for i := lo; i < lo+n; i++ {
			want[i] = src[i] * scale
		}
		scaleInto(dst, src, from, to, scale)
		scaleInto(inPlace, inPlace, from, to, scale)
		for i := range dst {
			wantInPlace := src[i]
			if i >= lo && i < lo+n {
				wantInPlace = want[i]
			}
			if !sameFloat32(dst[i], want[i]) || !sameFloat32(inPlace[i], wantInPlace) {
				t.Fatalf("round %d ([%d, %d)), sample %d: %g and %g in place, want %g and %g",
					round, from, to, i, dst[i], inPlace[i], want[i], wantInPlace)
			}
		}
	}
}
