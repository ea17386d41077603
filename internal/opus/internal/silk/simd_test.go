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

// excitationReference is excitationResidual one sample at a time, as
// before session 18: the reference.
func excitationReference(res []float32, eRaw []int32, seed uint32, offsetQ23 int32) {
	for i, e := range eRaw {
		signTimes20 := ((e >> 31) | int32(uint32(-e)>>31)) * 20
		q := (e << 8) - signTimes20 + offsetQ23
		seed = 196314165*seed + 907633515
		invert := int32(seed) >> 31
		eQ23 := (q ^ invert) - invert
		res[i] = float32(eQ23) / 8388608.0
		seed += uint32(e)
	}
}

// TestExcitationResidual_SameAsGo: excitationResidual (four samples at a
// time on amd64, the seed's chain scalar) gives the reference's residual
// bit for bit, for every length from 0 to 41 and a WB frame's 320, with
// pulses of SILK's range (mostly zero, small, up to 2**14, both signs), every
// offset of Table 53, random seeds, and e_raw over all of int32 (wrapping
// as the Go arithmetic does); it writes nothing past res.
func TestExcitationResidual_SameAsGo(t *testing.T) {
	rnd := rand.New(rand.NewPCG(17, 18))
	for round := range 4000 {
		n := round % 42
		if round%42 == 41 {
			n = 320
		}
		eRaw := make([]int32, n)
		for i := range eRaw {
			switch rnd.IntN(8) {
			case 0, 1, 2, 3:
			case 4:
				eRaw[i] = int32(rnd.Uint32())
			case 5:
				eRaw[i] = int32(rnd.IntN(1<<15) - 1<<14)
			default:
				eRaw[i] = int32(rnd.IntN(9) - 4)
			}
		}
		if round%100 == 7 && n > 0 {
			eRaw[0], eRaw[n-1] = math.MinInt32, math.MaxInt32
		}
		seed, offset := rnd.Uint32(), []int32{8, 25, 60}[rnd.IntN(3)]
		got, want := make([]float32, n+1), make([]float32, n+1)
		got[n], want[n] = 1234, 1234
		excitationResidual(got[:n], eRaw, seed, offset)
		excitationReference(want[:n], eRaw, seed, offset)
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("round %d (%d samples), sample %d (e_raw %d): %g, want %g", round, n, i, eRaw[min(i, n-1)], got[i], want[i])
			}
		}
	}
}
