// SPDX-FileCopyrightText: 2026 The Pion community <https://pion.ly>
// SPDX-License-Identifier: MIT

package silkresample

import "math"

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
	n := halfbandOrder
	if cap(s.halfband) < n+len(in) {
		s.halfband = make([]float32, n+len(in))
	}
	buf := s.halfband[:n+len(in)]
	for i, v := range r.sFIR[:n] {
		buf[i] = float32(v)
	}
	for i, v := range in {
		buf[n+i] = float32(v)
	}
	c := &halfband12Coefs
	out = out[:len(in)/2]
	for k := range out {
		b := (*[halfbandOrder + 1]float32)(buf[2*k : 2*k+halfbandOrder+1])
		// two partial sums: half the chain of dependent additions
		s0 := 0.5*b[16] + c[0]*(b[15]+b[17]) + c[2]*(b[11]+b[21]) + c[4]*(b[7]+b[25]) + c[6]*(b[3]+b[29])
		s1 := c[1]*(b[13]+b[19]) + c[3]*(b[9]+b[23]) + c[5]*(b[5]+b[27]) + c[7]*(b[1]+b[31])
		v := s0 + s1
		out[k] = silkSAT16(int32(v + float32(math.Copysign(0.5, float64(v))))) // rounded half away from zero
	}
	for i, v := range buf[len(buf)-n:] {
		r.sFIR[i] = int32(v)
	}
}
