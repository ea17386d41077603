// SPDX-FileCopyrightText: 2026 The Pion community <https://pion.ly>
// SPDX-License-Identifier: MIT

//go:build !amd64 || purego

package silk

// rewhiten16 does none of rewhitenRange's samples (simd_amd64.go does four
// at a time): the loop in Go does them all.
func rewhiten16(_, _ []float32, _ *[16]float32) int { return 0 }

// ltpFilterBlocks does none of ltpFilter's samples (simd_amd64.go does four
// at a time): the loop in Go does them all.
func ltpFilterBlocks(_, _ []float32, _ *[5]float32) int { return 0 }

// lpcSynthesis16 is lpcSynthesis16Go (simd_amd64.go has the older products
// and the clamp four at a time).
func lpcSynthesis16(out []float32, a *[16]float32, res, lpc, history []float32, gain float32) {
	lpcSynthesis16Go(out, a, res, lpc, history, gain)
}

// scaleBlocks does none of scaleInto's samples (simd_amd64.go does four at
// a time): the loop in Go does them all.
func scaleBlocks(_, _ []float32, _ float32) int { return 0 }

// excitationBlocks does none of decodeExcitation's reconstruction
// (simd_amd64.go does four samples at a time): the loop in Go does it all.
func excitationBlocks(_ []float32, _ []int32, seed uint32, _ int32) (int, uint32) { return 0, seed }

// nonzeroMasks computes no masks (simd_amd64.go does) and returns false:
// decodeExcitationSign finds each block's non-zero coefficients itself.
func nonzeroMasks(_ []uint16, _ []int32) bool { return false }
