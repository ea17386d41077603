// SPDX-FileCopyrightText: 2026 The Pion community <https://pion.ly>
// SPDX-License-Identifier: MIT

//go:build !amd64 || purego

package silk

// predictionGainRecurrence is predictionGainRecurrenceGo (lpcgain_amd64.go
// has it in SSE4.1).
func predictionGainRecurrence(rows *[2]predictionGainRows, order int) int32 {
	return predictionGainRecurrenceGo(rows, order)
}
