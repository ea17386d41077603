// SPDX-FileCopyrightText: 2026 The Pion community <https://pion.ly>
// SPDX-License-Identifier: MIT

// Package silkresample ports the RFC 6716 SILK resampler.
package silkresample

import (
	"errors"

	"github.com/rtcrec/recorder/internal/lend"
	"github.com/rtcrec/recorder/internal/opus/internal/bitdepth"
)

const (
	maxFIROrder    = 36
	maxIIROrder    = 6
	maxBatchSizeMS = 10

	downOrderFIR0 = 18
	downOrderFIR2 = 36
	orderFIR12    = 8
)

const (
	resamplerCopy = iota
	resamplerUp2HQ
	resamplerIIRFIR
	resamplerDownFIR
	resamplerHalfband
)

var (
	errInvalidInputSampleRate  = errors.New("input sample rate must be 8000, 12000, or 16000")
	errInvalidOutputSampleRate = errors.New("output sample rate must be 8000, 12000, 16000, 24000, or 48000")
	errInvalidInputLength      = errors.New("input length must be at least 1 ms")
	errNonIntegralInputLength  = errors.New("input length must align to an integer output length")
	errOutBufferTooSmall       = errors.New("out buffer too small")
)

/*
 * Matrix of resampling methods used:
 *                                 Fs_out (kHz)
 *                        8      12     16     24     48
 *
 *               8        C      UF     U      UF     UF
 *              12        AF     C      UF     U      UF
 * Fs_in (kHz)  16        D      AF     C      UF     UF
 *
 * C   -> Copy (no resampling)
 * D   -> Allpass-based 2x downsampling
 * U   -> Allpass-based 2x upsampling
 * UF  -> Allpass-based 2x upsampling followed by FIR interpolation
 * AF  -> AR2 filter followed by FIR interpolation.
 */
var delayMatrixDec = [3][5]int{ //nolint:gochecknoglobals
	{4, 0, 2, 0, 0},
	{0, 9, 4, 7, 4},
	{0, 3, 12, 7, 7},
}

// Resampler converts one SILK decoder channel from 8/12/16 kHz to
// 8/12/16/24/48 kHz.
type Resampler struct {
	sIIR              [maxIIROrder]int32
	sFIR              [maxFIROrder]int32
	sFIRIIR           [orderFIR12]int16
	delayBuf          [48]int16
	resamplerFunction int
	batchSize         int
	invRatioQ16       int32
	firOrder          int
	firFracs          int
	fsInKHz           int
	fsOutKHz          int
	inputDelay        int
	coefs             []int16
}

// scratch is a resampling call's working memory: the input converted to
// 16 bits, the output, and the FIR filters' buffers. No state outlives a
// call in it, so resamplers borrow one from scratchPool for each call
// instead of holding about 1.6 KB each (our change to pion/opus v0.1.0:
// a recorder's mix holds one resampler per track, few of them resampling at
// once).
type scratch struct {
	in16, out16, iirFIR []int16
	downFIR             []int32
	halfband            []float32
}

// scratchPool lends scratch to resampling calls: no lock, and no
// allocation once the sets in use are made.
var scratchPool lend.Pool[scratch]

// Init initializes the resampler state for one decoder channel.
//
//nolint:cyclop
func (r *Resampler) Init(inputSampleRate, outputSampleRate int) error {
	*r = Resampler{}

	inputRateID, err := inputRateID(inputSampleRate)
	if err != nil {
		return err
	}
	outputRateID, err := outputRateID(outputSampleRate)
	if err != nil {
		return err
	}

	r.inputDelay = delayMatrixDec[inputRateID][outputRateID]
	r.fsInKHz = inputSampleRate / 1000
	r.fsOutKHz = outputSampleRate / 1000
	r.batchSize = r.fsInKHz * maxBatchSizeMS

	up2x := 0
	switch {
	case outputSampleRate > inputSampleRate:
		if outputSampleRate == inputSampleRate*2 {
			r.resamplerFunction = resamplerUp2HQ
		} else {
			r.resamplerFunction = resamplerIIRFIR
			up2x = 1
		}
	case outputSampleRate < inputSampleRate:
		r.resamplerFunction = resamplerDownFIR
		switch {
		case outputSampleRate*4 == inputSampleRate*3:
			r.firFracs = 3
			r.firOrder = downOrderFIR0
			r.coefs = resampler34Coefs[:]
		case outputSampleRate*3 == inputSampleRate*2:
			r.firFracs = 2
			r.firOrder = downOrderFIR0
			r.coefs = resampler23Coefs[:]
		case outputSampleRate*2 == inputSampleRate:
			r.resamplerFunction = resamplerHalfband // instead of libopus's AR2 + 24-tap FIR (halfband.go)
		case outputSampleRate*3 == inputSampleRate:
			r.firFracs = 1
			r.firOrder = downOrderFIR2
			r.coefs = resampler13Coefs[:]
		case outputSampleRate*4 == inputSampleRate:
			r.firFracs = 1
			r.firOrder = downOrderFIR2
			r.coefs = resampler14Coefs[:]
		case outputSampleRate*6 == inputSampleRate:
			r.firFracs = 1
			r.firOrder = downOrderFIR2
			r.coefs = resampler16Coefs[:]
		default:
			return errInvalidOutputSampleRate
		}
	default:
		r.resamplerFunction = resamplerCopy
	}

	r.invRatioQ16 = int32((int64(inputSampleRate)<<(14+up2x))/int64(outputSampleRate)) << 2 // #nosec G115
	for silkSMULWW(r.invRatioQ16, int32(outputSampleRate)) < int32(inputSampleRate<<up2x) { // #nosec G115
		r.invRatioQ16++
	}

	return nil
}

// CopyStateFrom copies filter state from src.
func (r *Resampler) CopyStateFrom(src *Resampler) {
	*r = *src
}

// Resample converts one non-interleaved channel to the configured output rate.
func (r *Resampler) Resample(in, out []float32) error {
	s, ticket := scratchPool.Get()
	defer scratchPool.Put(ticket)
	out16, err := r.resample(s, in, len(out))
	if err != nil {
		return err
	}
	for i, v := range out16 {
		out[i] = float32(v) / 32768.0
	}

	return nil
}

// ResampleToInt16 is Resample with 16-bit output: out[i] is Resample's
// out[i]*32768, which is exact (our change to pion/opus v0.1.0: a decoder
// whose output is 16-bit need not go through float32 and back).
func (r *Resampler) ResampleToInt16(in []float32, out []int16) error {
	s, ticket := scratchPool.Get()
	defer scratchPool.Put(ticket)
	if r.resamplerFunction == resamplerHalfband && r.inputDelay == 0 {
		outLen, err := r.outputLength(in, len(out))
		if err != nil {
			return err
		}
		r.halfbandToInt16(s, in, out[:outLen])

		return nil
	}
	out16, err := r.resample(s, in, len(out))
	if err != nil {
		return err
	}
	copy(out, out16)

	return nil
}

// outputLength returns the number of output samples for in, or resample's
// error for in and an output of outCap samples.
func (r *Resampler) outputLength(in []float32, outCap int) (int, error) {
	if r.fsInKHz == 0 {
		return 0, errInvalidInputSampleRate
	}
	if len(in) < r.fsInKHz {
		return 0, errInvalidInputLength
	}
	outLen := len(in) * r.fsOutKHz
	if outLen%r.fsInKHz != 0 {
		return 0, errNonIntegralInputLength
	}
	outLen /= r.fsInKHz
	if outCap < outLen {
		return 0, errOutBufferTooSmall
	}

	return outLen, nil
}

// resample runs the fixed-point resampler over in (converted to 16 bits)
// and returns its output, in s; outCap is the room the caller has.
//
//nolint:cyclop
func (r *Resampler) resample(s *scratch, in []float32, outCap int) ([]int16, error) {
	outLen, err := r.outputLength(in, outCap)
	if err != nil {
		return nil, err
	}
	if cap(s.in16) < len(in) {
		s.in16 = make([]int16, len(in))
	}
	in16 := s.in16[:len(in)]
	for i := range in {
		in16[i] = bitdepth.Float32ToSigned16(in[i])
	}

	if cap(s.out16) < outLen+r.fsOutKHz {
		s.out16 = make([]int16, outLen+r.fsOutKHz)
	}
	out16 := s.out16[:outLen+r.fsOutKHz]
	clear(out16)
	nSamples := r.fsInKHz - r.inputDelay
	remainingIn := in16[nSamples : len(in16)-r.inputDelay]
	copy(r.delayBuf[r.inputDelay:], in16[:nSamples])

	switch r.resamplerFunction {
	case resamplerUp2HQ:
		r.resamplerPrivateUp2HQ(out16, r.delayBuf[:r.fsInKHz])
		r.resamplerPrivateUp2HQ(out16[r.fsOutKHz:], remainingIn)
	case resamplerIIRFIR:
		r.resamplerPrivateIIRFIR(s, out16, r.delayBuf[:r.fsInKHz])
		r.resamplerPrivateIIRFIR(s, out16[r.fsOutKHz:], remainingIn)
	case resamplerDownFIR:
		r.resamplerPrivateDownFIR(s, out16, r.delayBuf[:r.fsInKHz])
		r.resamplerPrivateDownFIR(s, out16[r.fsOutKHz:], remainingIn)
	case resamplerHalfband:
		r.resamplerPrivateHalfband(s, out16, r.delayBuf[:r.fsInKHz])
		r.resamplerPrivateHalfband(s, out16[r.fsOutKHz:], remainingIn)
	default:
		copy(out16, r.delayBuf[:r.fsInKHz])
		copy(out16[r.fsOutKHz:], remainingIn)
	}

	copy(r.delayBuf[:], in16[len(in16)-r.inputDelay:])

	return out16[:outLen], nil
}

func inputRateID(sampleRate int) (int, error) {
	switch sampleRate {
	case 8000:
		return 0, nil
	case 12000:
		return 1, nil
	case 16000:
		return 2, nil
	default:
		return 0, errInvalidInputSampleRate
	}
}

func outputRateID(sampleRate int) (int, error) {
	switch sampleRate {
	case 8000:
		return 0, nil
	case 12000:
		return 1, nil
	case 16000:
		return 2, nil
	case 24000:
		return 3, nil
	case 48000:
		return 4, nil
	default:
		return 0, errInvalidOutputSampleRate
	}
}
