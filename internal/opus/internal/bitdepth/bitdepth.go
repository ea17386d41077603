// SPDX-FileCopyrightText: 2026 The Pion community <https://pion.ly>
// SPDX-License-Identifier: MIT

// Package bitdepth provides utilities to convert between different audio bitdepths
package bitdepth

import (
	"errors"
	"math"
)

var (
	errInvalidChannelCount  = errors.New("channel count must be positive")
	errInvalidInputLength   = errors.New("input length must be divisible by channel count")
	errInvalidResampleCount = errors.New("resample count must be positive")
	errOutBufferTooSmall    = errors.New("out isn't large enough")
)

// Float32ToSigned16 quantizes a float32 PCM sample to signed 16-bit PCM:
// sample*32768 rounded half away from zero (math.Round), saturated.
//
// It adds ±0.5 and truncates instead of calling math.Round: the same value,
// since sample*32768 is a float32 (24 significant bits), so x ± 0.5 is exact
// in float64 wherever the result is not 0 (TestFloat32ToSigned16). The ±0.5
// takes x's sign by math.Copysign, not by a branch (session 8; -0 gives
// -0.5 there and +0.5 by the branch, 0 either way).
func Float32ToSigned16(sample float32) int16 {
	x := float64(sample * 32768)
	switch {
	case x >= 32767.5:
		return 32767
	case x <= -32768.5:
		return -32768
	default: // x ± 0.5 by x's sign without a branch: audio's sign is as good as random
		return int16(int32(x + math.Copysign(0.5, x)))
	}
}

// ConvertFloat32LittleEndianToSigned16LittleEndian converts a f32le to s16le.
func ConvertFloat32LittleEndianToSigned16LittleEndian(
	in []float32,
	out []byte,
	channelCount int,
	resampleCount int,
) error {
	if channelCount <= 0 {
		return errInvalidChannelCount
	}
	if resampleCount <= 0 {
		return errInvalidResampleCount
	}
	if len(in)%channelCount != 0 {
		return errInvalidInputLength
	}
	if len(in)*resampleCount*2 > len(out) {
		return errOutBufferTooSmall
	}

	if resampleCount == 1 {
		currIndex := 0
		for _, sample := range in {
			res := Float32ToSigned16(sample)

			out[currIndex] = byte(res & 0b11111111)
			currIndex++

			out[currIndex] = byte(uint16(res) >> 8) // #nosec G115,G602 -- output length was checked above
			currIndex++
		}

		return nil
	}

	currIndex := 0
	for i := 0; i < len(in); i += channelCount {
		for j := resampleCount; j > 0; j-- {
			for k := range channelCount {
				res := Float32ToSigned16(in[i+k])

				out[currIndex] = byte(res & 0b11111111)
				currIndex++

				out[currIndex] = byte(uint16(res) >> 8) // #nosec G115
				currIndex++
			}
		}
	}

	return nil
}
