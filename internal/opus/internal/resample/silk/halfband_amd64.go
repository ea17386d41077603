// SPDX-FileCopyrightText: 2026 The Pion community <https://pion.ly>
// SPDX-License-Identifier: MIT

//go:build amd64 && !purego

package silkresample

// halfbandFilter is halfbandFilterGo, four outputs at a time in SSE2
// (halfbandFilter4, halfband_amd64.s: each of four lanes does one output's
// products and sums in halfbandFilterGo's order, so the outputs are the
// same bit for bit; TestHalfbandFilter_SameAsGo), the last len(out)%4 in Go.
// (Session 18: about a quarter of the instructions.)
func halfbandFilter(out []int16, even, odd []float32) {
	n := len(out) &^ 3
	if len(even) < len(out)+8 || len(odd) < len(out)+15 {
		panic("silkresample: halfband input shorter than its output")
	}
	halfbandFilter4(out[:n], even, odd)
	halfbandFilterGo(out[n:], even[n:], odd[n:])
}

// halfbandFilter4 is halfbandFilterGo for len(out) a multiple of 4, the
// lengths checked by its caller.
//
//go:noescape
func halfbandFilter4(out []int16, even, odd []float32)

// halfbandInput does halfbandToInt16's rounding of its input to 16 bits
// and split into even and odd samples for the first len(even)&^3 pairs,
// eight samples at a time in SSE2 (halfbandInput4: the same values as
// Float32ToSigned16, TestHalfbandInput_SameAsFloat32ToSigned16), and
// returns how many pairs it did (session 18).
func halfbandInput(even, odd, in []float32) int {
	n := len(even) &^ 3
	if n > 0 {
		_, _ = odd[n-1], in[2*n-1]
		halfbandInput4(even[:n], odd, in)
	}

	return n
}

//go:noescape
func halfbandInput4(even, odd, in []float32)
