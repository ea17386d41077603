// SPDX-FileCopyrightText: 2026 The Pion community <https://pion.ly>
// SPDX-License-Identifier: MIT

//go:build amd64 && !purego

package silk

// rewhiten16 does rewhitenRange's first len(dst)&^3 samples for d_LPC 16
// (src holds len(dst)+16 samples) four at a time in SSE2
// (rewhiten16x4, simd_amd64.s: the same products and sums in each lane) and
// returns how many it did (session 18).
func rewhiten16(dst, src []float32, a *[16]float32) int {
	n := len(dst) &^ 3
	if n > 0 {
		_ = src[n+15] // the last block reads src[n-4 .. n+15]
		rewhiten16x4(dst[:n], src, a)
	}

	return n
}

// ltpFilterBlocks does ltpFilter's first len(res)&^3 samples four at a time
// in SSE2 (ltpFilter4, simd_amd64.s: the same products and sums in each
// lane) and returns how many it did (session 18). past holds len(res)+4
// samples; where it is res itself it lies at least 8 samples behind, so
// that the four samples a block reads are final.
func ltpFilterBlocks(res, past []float32, b *[5]float32) int {
	n := len(res) &^ 3
	if n > 0 {
		_ = past[n+3] // the last block reads past[n-4 .. n+3]
		ltpFilter4(res[:n], past, b)
	}

	return n
}

// lpcSynthesis16 is lpcSynthesisSteadyState for d_LPC 16: history holds
// the 16 samples before the subframe, then its own (written as lpc, which
// is history[16:]). On amd64 it is lpcSynthesis16x (simd_amd64.s): the
// twelve older products four at a time (session 18), the newer four from
// registers in lpcSynthesis16Go's order, the newest last (session 19), and
// the clamp four at a time after the recursion: the same products and sums
// (TestLPCSynthesis16_SameAsGo).
func lpcSynthesis16(out []float32, a *[16]float32, res, lpc, history []float32, gain float32) {
	if len(out) == 0 {
		return
	}
	if len(res) < len(out) || len(history) < len(out)+16 || len(lpc) < len(out) || &lpc[0] != &history[16] {
		lpcSynthesis16Go(out, a, res, lpc, history, gain)

		return
	}
	lpcSynthesis16x(out, a, res, history, gain)
}

//go:noescape
func lpcSynthesis16x(out []float32, a *[16]float32, res, history []float32, gain float32)

// scaleBlocks sets dst[i] = src[i]*scale for the first len(dst)&^3
// samples, four at a time in SSE2 (scale4, simd_amd64.s), and returns how
// many it did (session 18). src is as long as dst; dst may be src.
func scaleBlocks(dst, src []float32, scale float32) int {
	n := len(dst) &^ 3
	if n > 0 {
		scale4(dst[:n], src[:n], scale)
	}

	return n
}

// excitationBlocks does decodeExcitation's reconstruction of e_Q23 into
// res for the first len(res)&^3 samples, four at a time (excitation4,
// simd_amd64.s: the seed's chain scalar, the rest in SSE2; the same
// values), and returns how many it did and the seed after them (session
// 18).
func excitationBlocks(res []float32, eRaw []int32, seed uint32, offsetQ23 int32) (int, uint32) {
	n := len(res) &^ 3
	if n > 0 {
		_ = eRaw[n-1]
		seed = excitation4(res[:n], eRaw, seed, offsetQ23)
	}

	return n, seed
}

//go:noescape
func excitation4(res []float32, eRaw []int32, seed uint32, offsetQ23 int32) uint32

// nonzeroMasks sets masks[b] to the bits i where eRaw[16b+i] != 0 for
// each block b of masks, in SSE2 (nonzero16, simd_amd64.s), and returns
// true; eRaw holds 16*len(masks) coefficients (session 18).
func nonzeroMasks(masks []uint16, eRaw []int32) bool {
	if len(masks) > 0 {
		_ = eRaw[16*len(masks)-1]
		nonzero16(masks, eRaw)
	}

	return true
}

//go:noescape
func nonzero16(masks []uint16, eRaw []int32)

//go:noescape
func scale4(dst, src []float32, scale float32)

//go:noescape
func rewhiten16x4(dst, src []float32, a *[16]float32)

//go:noescape
func ltpFilter4(res, past []float32, b *[5]float32)
