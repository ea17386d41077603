// SPDX-FileCopyrightText: 2026 The Pion community <https://pion.ly>
// SPDX-License-Identifier: MIT

package bitdepth

import (
	"math"
	"testing"
)

// roundSaturate is Float32ToSigned16 as upstream writes it (math.Round,
// then saturation): the reference.
func roundSaturate(sample float32) int16 {
	sample64 := math.Round(float64(sample * 32768))
	if sample64 < -32768 {
		sample64 = -32768
	} else if sample64 > 32767 {
		sample64 = 32767
	}
	return int16(sample64)
}

// TestFloat32ToSigned16: the same value as math.Round and saturation for
// float32s of magnitude 2^-30 to 40000/32768 (one bit pattern in 61: a
// sample of every exponent and mantissa region), for every half k/2 of
// ±35000 (where rounding decides) and the float32 either side of it, and
// for tiny values, infinities and NaN.
func TestFloat32ToSigned16(t *testing.T) {
	check := func(f float32) {
		if got, want := Float32ToSigned16(f), roundSaturate(f); got != want {
			t.Fatalf("Float32ToSigned16(%g) = %d, want %d", f, got, want)
		}
	}
	for _, sign := range []float32{1, -1} {
		lo, hi := math.Float32bits(1.0/(1<<30)), math.Float32bits(40000.0/32768)
		for b := lo; b <= hi; b += 61 {
			check(sign * math.Float32frombits(b))
		}
		for k := -70000; k <= 70000; k++ { // the halves, and a step either side
			h := float32(k) / 2 / 32768
			check(sign * h)
			check(sign * math.Nextafter32(h, 2))
			check(sign * math.Nextafter32(h, -2))
		}
	}
	for _, f := range []float32{0, float32(math.Copysign(0, -1)), 1e-38, -1e-38, 1e-45, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())} {
		check(f)
	}
}
