// SPDX-FileCopyrightText: 2026 The Pion community <https://pion.ly>
// SPDX-License-Identifier: MIT

//go:build !amd64 || purego

package silkresample

// halfbandFilter is halfbandFilterGo (halfband_amd64.go has four outputs
// at a time).
func halfbandFilter(out []int16, even, odd []float32) {
	halfbandFilterGo(out, even, odd)
}

// halfbandInput does none of halfbandToInt16's pairs (halfband_amd64.go
// has eight samples at a time): the loop in Go does them all.
func halfbandInput(_, _, _ []float32) int { return 0 }
