// SPDX-FileCopyrightText: 2026 The Pion community <https://pion.ly>
// SPDX-License-Identifier: MIT

//go:build amd64 && !purego

package silk

import "golang.org/x/sys/cpu"

// predictionGainSSE41 picks predictionGainRecurrence4, which needs SSE4.1
// (PMULDQ: signed 32x32 -> 64-bit products; PBLENDW, PTEST); without it (an
// amd64 from before 2008, or a virtual CPU that hides it)
// predictionGainRecurrenceGo.
var predictionGainSSE41 = cpu.X86.HasSSE41

// predictionGainRecurrence is predictionGainRecurrenceGo, in SSE4.1 where
// the CPU has it (session 20): predictionGainRecurrence4 (lpcgain_amd64.s),
// each row's values four at a time with predictionGainStep's arithmetic in
// each lane, the per-row reflection coefficient, rcMult2 and gain in
// scalar code, in one call for all rows. The same gain
// (TestPredictionGainRecurrence_SameAsGo).
func predictionGainRecurrence(rows *[2]predictionGainRows, order int) int32 {
	if predictionGainSSE41 {
		return predictionGainRecurrence4(rows, order)
	}

	return predictionGainRecurrenceGo(rows, order)
}

//go:noescape
func predictionGainRecurrence4(rows *[2]predictionGainRows, order int) int32
