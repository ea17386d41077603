// SPDX-FileCopyrightText: 2026 The Pion community <https://pion.ly>
// SPDX-License-Identifier: MIT

package silkresample

// silkResamplerPrivateAR2 is libopus's silk_resampler_private_AR2. (Our
// change to pion/opus v0.1.0: the two state values are kept in locals over
// the loop, not stored and read back per sample, and the slices are checked
// once: the same arithmetic.)
func silkResamplerPrivateAR2(state []int32, outQ8 []int32, in []int16, aQ14 []int16) {
	st := (*[2]int32)(state)
	a0, a1 := int32(aQ14[0]), int32(aQ14[1])
	outQ8 = outQ8[:len(in)]
	s0, s1 := st[0], st[1]
	for k, x := range in {
		out32 := s0 + (int32(x) << 8)
		outQ8[k] = out32
		out32 <<= 2
		s0 = silkSMLAWB(s1, out32, a0)
		s1 = silkSMULWB(out32, a1)
	}
	st[0], st[1] = s0, s1
}
