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

// resamplerPrivateHalfband decimates in by 2 into out (len(in)/2 samples)
// with the halfband lowpass halfband12Coefs, in float32, keeping the last
// halfbandOrder input samples in sFIR. (Our change to pion/opus v0.1.0: it
// replaces libopus's 2:1 down path, silk_resampler_private_AR2 and a 24-tap
// FIR in fixed point, for 16 → 8 kHz: about a third of its cost, and closer
// to an ideal lowpass in the band both pass; the decoder's resampler is not
// normative, RFC 6716 Section 4.2.9. Figures in internal/opus/README.md.)
func (r *Resampler) resamplerPrivateHalfband(s *scratch, out, in []int16) {
	buf := r.halfbandHistory(s, len(in))
	tail := buf[halfbandOrder:]
	for i, v := range in[:len(tail)] {
		tail[i] = float32(v)
	}
	r.halfbandRun(out[:len(in)/2], buf)
}

// halfbandHistory returns the filter's buffer (in s) for n input samples:
// the last halfbandOrder samples before them (sFIR), then room for them.
func (r *Resampler) halfbandHistory(s *scratch, n int) []float32 {
	if cap(s.halfband) < halfbandOrder+n {
		s.halfband = make([]float32, halfbandOrder+n)
	}
	buf := s.halfband[:halfbandOrder+n]
	for i, v := range r.sFIR[:halfbandOrder] {
		buf[i] = float32(v)
	}

	return buf
}

// halfbandRun filters buf (halfbandHistory's, filled) into out and keeps
// its last halfbandOrder samples in sFIR for the next call.
func (r *Resampler) halfbandRun(out []int16, buf []float32) {
	halfbandFilter(out, buf)
	for i, v := range buf[len(buf)-halfbandOrder:] {
		r.sFIR[i] = int32(v)
	}
}

// halfbandFilter sets out[k] to the halfband lowpass of buf around
// buf[2k+16], rounded half away from zero and saturated to 16 bits
// (len(buf) >= 2*len(out)+halfbandOrder). Each output sample reads one
// slice of the 33 it needs, the window moved by 2 samples each time, so
// that the constant indexes need no bounds check and no address arithmetic
// of their own (session 17; the same products and sums).
func halfbandFilter(out []int16, buf []float32) {
	c0, c1, c2, c3 := halfband12Coefs[0], halfband12Coefs[1], halfband12Coefs[2], halfband12Coefs[3]
	c4, c5, c6, c7 := halfband12Coefs[4], halfband12Coefs[5], halfband12Coefs[6], halfband12Coefs[7]
	for k := range out {
		b := buf[:halfbandOrder+1] // the window advances by 2: b is a register, its samples offsets from it
		buf = buf[2:]
		// two partial sums: half the chain of dependent additions
		s0 := 0.5*b[16] + c0*(b[15]+b[17]) + c2*(b[11]+b[21]) + c4*(b[7]+b[25]) + c6*(b[3]+b[29])
		s1 := c1*(b[13]+b[19]) + c3*(b[9]+b[23]) + c5*(b[5]+b[27]) + c7*(b[1]+b[31])
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
	buf := r.halfbandHistory(s, len(in))
	tail := buf[halfbandOrder:]
	for i, v := range in[:len(tail)] {
		tail[i] = float32(bitdepth.Float32ToSigned16(v))
	}
	r.halfbandRun(out[:len(in)/2], buf)
}
