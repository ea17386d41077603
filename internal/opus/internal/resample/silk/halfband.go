// SPDX-FileCopyrightText: 2026 The Pion community <https://pion.ly>
// SPDX-License-Identifier: MIT

package silkresample

import (
	"math"

	"github.com/rtcrec/recorder/internal/opus/internal/bitdepth"
)

// halfbandOrder is the history the 2:1 halfband decimator keeps: its 33 taps
// less one.
const halfbandOrder = 32

// halfband12Coefs are the taps at odd offsets ±1, ±3, …, ±15 from the centre
// of a 33-tap halfband lowpass (a Kaiser-windowed sinc, β 5.6, cut at a
// quarter of the input rate); its centre tap is 1/2 and its other even taps
// are 0. At 16 kHz in: flat to 3 kHz, −0.4 dB at 3.4 kHz, −6 dB at 4 kHz,
// −26 dB at 4.6 kHz, −60 dB and lower from 5 kHz.
var halfband12Coefs = [8]float32{ //nolint:gochecknoglobals
	0.315267771, -0.097015053, 0.0494337939, -0.0273687001,
	0.0148415687, -0.007414883, 0.00317683304, -0.000999167794,
}

// resamplerPrivateHalfband decimates in by 2 into out (len(in)/2 samples;
// len(in) is even) with the halfband lowpass halfband12Coefs, in float32,
// keeping the last halfbandOrder input samples in sFIR. (Our change to
// pion/opus v0.1.0: it replaces libopus's 2:1 down path,
// silk_resampler_private_AR2 and a 24-tap FIR in fixed point, for 16 → 8
// kHz: about a third of its cost, and closer to an ideal lowpass in the band
// both pass; the decoder's resampler is not normative, RFC 6716 Section
// 4.2.9. Figures in internal/opus/README.md.)
func (r *Resampler) resamplerPrivateHalfband(s *scratch, out, in []int16) {
	even, odd := r.halfbandHistory(s, len(in))
	newEven, newOdd := even[halfbandOrder/2:], odd[halfbandOrder/2:]
	for i := range newEven {
		newEven[i], newOdd[i] = float32(in[2*i]), float32(in[2*i+1])
	}
	r.halfbandRun(out[:len(in)/2], even, odd)
}

// halfbandHistory returns the filter's buffer (in s) for n input samples
// (n even) as its even and its odd samples: each the halfbandOrder/2 of
// the last halfbandOrder samples before them (sFIR), then room for n/2.
// (Session 18: split, so that the samples a tap reads for consecutive
// outputs are consecutive: halfbandFilter computes four outputs at once.)
func (r *Resampler) halfbandHistory(s *scratch, n int) (even, odd []float32) {
	half := halfbandOrder/2 + n/2
	if cap(s.halfband) < 2*half {
		s.halfband = make([]float32, 2*half)
	}
	even, odd = s.halfband[:half], s.halfband[half:2*half]
	for m := range halfbandOrder / 2 {
		even[m], odd[m] = float32(r.sFIR[2*m]), float32(r.sFIR[2*m+1])
	}

	return even, odd
}

// halfbandRun filters even and odd (halfbandHistory's, filled) into out and
// keeps their last halfbandOrder samples in sFIR for the next call.
func (r *Resampler) halfbandRun(out []int16, even, odd []float32) {
	halfbandFilter(out, even, odd)
	even, odd = even[len(even)-halfbandOrder/2:], odd[len(odd)-halfbandOrder/2:]
	for m := range halfbandOrder / 2 {
		r.sFIR[2*m], r.sFIR[2*m+1] = int32(even[m]), int32(odd[m])
	}
}

// halfbandFilterGo sets out[k] to the halfband lowpass of the input around
// its sample 2k+halfbandOrder/2 (even[k+8]), rounded half away from zero and
// saturated to 16 bits: its odd-offset taps read odd[k:k+16], its centre
// even[k+8] (len(even) >= len(out)+8, len(odd) >= len(out)+15). This is
// the filter's definition, on every platform; halfbandFilter computes the
// same, four outputs at a time where it can (session 18).
func halfbandFilterGo(out []int16, even, odd []float32) {
	c0, c1, c2, c3 := halfband12Coefs[0], halfband12Coefs[1], halfband12Coefs[2], halfband12Coefs[3]
	c4, c5, c6, c7 := halfband12Coefs[4], halfband12Coefs[5], halfband12Coefs[6], halfband12Coefs[7]
	even = even[8 : len(out)+8]
	for k := range out {
		o := odd[:halfbandOrder/2] // the window advances by 1: o is a register, its samples offsets from it
		odd = odd[1:]
		// two partial sums: half the chain of dependent additions
		s0 := 0.5*even[k] + c0*(o[7]+o[8]) + c2*(o[5]+o[10]) + c4*(o[3]+o[12]) + c6*(o[1]+o[14])
		s1 := c1*(o[6]+o[9]) + c3*(o[4]+o[11]) + c5*(o[2]+o[13]) + c7*(o[0]+o[15])
		v := s0 + s1
		// rounded half away from zero: v + 0.5 with v's sign (math.Copysign's)
		half := math.Float32frombits(math.Float32bits(v)&(1<<31) | math.Float32bits(0.5))
		out[k] = silkSAT16(int32(v + half))
	}
}

// halfbandToInt16 is resample with resamplerHalfband followed by the copy
// to out, in one pass (session 17): the input is rounded to 16 bits
// straight into the filter's float32 buffer (Float32ToSigned16, as resample
// does into in16) and the filter writes out directly, instead of going
// through in16, the delay buffer (no delay at 16 → 8 kHz), two calls of
// resamplerPrivateHalfband and out16. The same values
// (TestResampler_16to8SameAsTwoPasses).
func (r *Resampler) halfbandToInt16(s *scratch, in []float32, out []int16) {
	even, odd := r.halfbandHistory(s, len(in))
	newEven, newOdd := even[halfbandOrder/2:], odd[halfbandOrder/2:]
	for i := halfbandInput(newEven, newOdd, in); i < len(newEven); i++ { // eight at a time where SIMD can (session 18)
		newEven[i] = float32(bitdepth.Float32ToSigned16(in[2*i]))
		newOdd[i] = float32(bitdepth.Float32ToSigned16(in[2*i+1]))
	}
	r.halfbandRun(out[:len(in)/2], even, odd)
}
