// SPDX-FileCopyrightText: 2026 The Pion community <https://pion.ly>
// SPDX-License-Identifier: MIT

//go:build amd64 && !purego

package silk

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// TestPredictionGainRecurrence_SameAsGo: predictionGainRecurrence4 (SSE4.1)
// gives predictionGainRecurrenceGo's gain for rows of every order (1 to 16)
// made as lpcInversePredictionGain makes them (Q12 coefficients << 12, from
// nearly flat to unstable) and of Q24 values up to the limit and past it,
// with some of the full 32 bits, so that stable filters, the limit test,
// the saturated difference and the overflow of a row (both signs) are all
// reached (counted by recurrenceCases); and where the recurrence ends by
// a value past the limit or a stable filter, the last row it made (whose
// values are all computed) is the Go's: a saturated value that overflows
// nothing shows there (a small last coefficient with 32-bit values before
// it).
func TestPredictionGainRecurrence_SameAsGo(t *testing.T) {
	if !predictionGainSSE41 {
		t.Skip("no SSE4.1: predictionGainRecurrence is predictionGainRecurrenceGo")
	}
	rnd := rand.New(rand.NewPCG(27, 28))
	var cases [5]int
	for trial := range 400000 {
		order := []int{10, 16, 1 + rnd.IntN(16)}[trial%3]
		var rows [2]predictionGainRows
		for i := range rows[0] { // garbage where the rows hold no values
			rows[0][i], rows[1][i] = int32(rnd.Uint32()), int32(rnd.Uint32()) //nolint:gosec // G115
		}
		row := &rows[order&1]
		if trial%8 == 7 {
			order = 2 + 2*rnd.IntN(8)
			row = &rows[order&1]
		}
		switch trial / 3 % 4 {
		case 0: // Q12 coefficients as the decoder has them
			scale := []float64{50, 300, 1000, 3000, 8000}[rnd.IntN(5)]
			for k := range order {
				row[4+k] = int32(max(min(rnd.NormFloat64()*scale/float64(k+1), math.MaxInt16), math.MinInt16)) << 12
			}
		case 1: // Q24 values up to the limit (16773022) and a little past it
			for k := range order {
				row[4+k] = rnd.Int32N(2*16800000) - 16800000
			}
		case 2: // large coefficients, the last near the limit: the rows saturate and overflow
			for k := range order {
				row[4+k] = rnd.Int32N(2*30000*4096) - 30000*4096
			}
			row[4+order-1] = rnd.Int32N(2*16773022) - 16773022
		case 3: // values near ±2^31 and the last small: saturated differences
			for k := range order {
				switch rnd.IntN(3) {
				case 0:
					row[4+k] = math.MaxInt32 - rnd.Int32N(1<<17)
				case 1:
					row[4+k] = math.MinInt32 + rnd.Int32N(1<<17)
				default:
					row[4+k] = int32(rnd.Uint32()) //nolint:gosec // G115
				}
			}
			row[4+order-1] = rnd.Int32N(1024) - 512
		}
		if trial%8 == 7 {
			overflowIntoTheLimit(rnd, row, order)
		}
		a, b := rows, rows
		got, want := predictionGainRecurrence4(&a, order), predictionGainRecurrenceGo(&b, order)
		if got != want {
			t.Fatalf("order %d, %v: %d, Go %d", order, row[4:4+order], got, want)
		}
		end, last, k, saturated := recurrenceCases(rows, order)
		cases[end]++
		if end != 2 && !slices.Equal(a[last][4:4+k], b[last][4:4+k]) {
			t.Fatalf("order %d, %v: last row %v, Go %v", order, row[4:4+order], a[last][4:4+k], b[last][4:4+k])
		}
		if end != 2 && saturated {
			cases[3]++
		}
		if want == 0 && recurrenceIgnoringOverflow(rows, order) != 0 {
			cases[4]++
		}
	}
	t.Logf("stable %d, past the limit %d, overflowed %d; a saturated value in the last row compared %d; "+
		"stable but for an overflow %d", cases[0], cases[1], cases[2], cases[3], cases[4])
	for c, n := range cases {
		if n < 500 {
			t.Errorf("case %d reached %d times: not every case tried (%v)", c, n, cases)
		}
	}
}

// recurrenceCases says how predictionGainRecurrenceGo ends for rows (0
// stable, 1 a value past the limit, 2 a row overflowed), which row it made
// last and how many values that has, and whether a difference saturated
// in it.
func recurrenceCases(rows [2]predictionGainRows, order int) (end, last, k int, saturated bool) {
	aNew := &rows[order&1]
	last = order & 1
	for k = order - 1; k >= 0; k-- {
		if aNew[4+k] > 16773022 || aNew[4+k] < -16773022 {
			return 1, last, k + 1, saturated
		}
		if k == 0 {
			break
		}
		rc := -(aNew[4+k] << 7)
		rcMult1 := int32(1<<30) - smmul(rc, rc)
		mult2Q := 32 - clz32(absInt32(rcMult1))
		saturated = false
		for n := range k {
			p := int64(aNew[4+k-1-n]) * int64(rc)
			if d := int64(aNew[4+n]) - int64(int32(((p>>30)+1)>>1)); d != int64(int32(d)) { //nolint:gosec // G115
				saturated = true
			}
		}
		aOld := aNew
		aNew, last = &rows[k&1], k&1
		m2 := int64(inverse32VarQ(rcMult1, mult2Q+30))
		for n := range k {
			x := predictionGainStep(int64(aOld[4+n]), int64(aOld[4+k-1-n]), int64(rc), m2, uint(mult2Q-1)) //nolint:gosec // G115
			if x != int64(int32(x)) {                                                                      //nolint:gosec // G115
				return 2, last, k, saturated
			}
			aNew[4+n] = int32(x) //nolint:gosec // G115
		}
	}

	return 0, last, 1, saturated
}

// overflowIntoTheLimit makes the first row of the recurrence (k =
// order-1, odd: an even order) overflow in its middle value n = (k-1)/2
// (any lane of its block), by a value whose low 32 bits are
// within the limit, as a recurrence that missed the overflow would take
// it: the last coefficient near the limit (a gain of 10 or more), the
// middle value set for a result near 2^32.
func overflowIntoTheLimit(rnd *rand.Rand, row *predictionGainRows, order int) {
	k := order - 1
	n := (k - 1) / 2
	for i := range order {
		row[4+i] = rnd.Int32N(1<<21) - 1<<20
	}
	row[4+k] = 16000000 + rnd.Int32N(773022)
	if rnd.IntN(2) == 0 {
		row[4+k] = -row[4+k]
	}
	rc := int64(-(row[4+k] << 7))
	rcMult1 := int32(1<<30) - smmul(int32(rc), int32(rc)) //nolint:gosec // G115
	mult2Q := 32 - clz32(absInt32(rcMult1))
	m2 := int64(inverse32VarQ(rcMult1, mult2Q+30))
	sh := uint(mult2Q - 1) //nolint:gosec // G115
	gain := (1 - float64(rc)/(1<<31)) * float64(m2) / float64(int64(1)<<(sh+1))
	o := int64((1 << 32) / gain * []float64{1, -1}[rnd.IntN(2)])
	for d := range int64(1000) {
		x := predictionGainStep(o+d, o+d, rc, m2, sh)
		if x != int64(int32(x)) && int32(x) > -1<<23 && int32(x) < 1<<23 { //nolint:gosec // G115
			row[4+n] = int32(o + d) //nolint:gosec // G115

			return
		}
	}
}

// recurrenceIgnoringOverflow is predictionGainRecurrenceGo taking an
// overflowed value's low 32 bits instead of returning 0.
func recurrenceIgnoringOverflow(rows [2]predictionGainRows, order int) int32 {
	aNew := &rows[order&1]
	invGainQ30 := int32(1 << 30)
	for k := order - 1; k >= 0; k-- {
		if aNew[4+k] > 16773022 || aNew[4+k] < -16773022 {
			return 0
		}
		rc := -(aNew[4+k] << 7)
		rcMult1 := int32(1<<30) - smmul(rc, rc)
		invGainQ30 = smmul(invGainQ30, rcMult1) << 2
		if k == 0 {
			break
		}
		mult2Q := 32 - clz32(absInt32(rcMult1))
		m2 := int64(inverse32VarQ(rcMult1, mult2Q+30))
		aOld := aNew
		aNew = &rows[k&1]
		for i := range k {
			aNew[4+i] = int32(predictionGainStep(int64(aOld[4+i]), int64(aOld[4+k-1-i]), int64(rc), m2, uint(mult2Q-1))) //nolint:gosec // G115
		}
	}

	return invGainQ30
}

// TestLPCInversePredictionGain_SameWithoutSSE41: the gain with
// predictionGainRecurrenceGo (as without SSE4.1) equals the gain with
// predictionGainRecurrence4, for TestLPCInversePredictionGain_SameAsBefore's
// kind of sets (real filters by bandwidth expansion).
func TestLPCInversePredictionGain_SameWithoutSSE41(t *testing.T) {
	if !predictionGainSSE41 {
		t.Skip("no SSE4.1")
	}
	rnd := rand.New(rand.NewPCG(29, 30))
	for trial := range 50000 {
		order := []int{10, 16}[trial%2]
		scale := []float64{50, 300, 1000, 3000, 8000}[trial/2%5]
		a := make([]int16, order)
		for k := range a {
			a[k] = int16(max(min(rnd.NormFloat64()*scale/float64(k+1), math.MaxInt16), math.MinInt16))
		}
		for range 4 {
			x := lpcInversePredictionGain(a)
			predictionGainSSE41 = false
			y := lpcInversePredictionGain(a)
			predictionGainSSE41 = true
			if x != y {
				t.Fatalf("%v: %d with SSE4.1, %d without", a, x, y)
			}
			for k := range a {
				a[k] = int16(float64(a[k]) * math.Pow(0.9, float64(k+1)))
			}
		}
	}
}

// BenchmarkLPCInversePredictionGain computes the gain of 256 WB (d_LPC 16)
// filters in turn, most of them stable (as the decoder's are: its first
// call per set decides), with predictionGainRecurrenceGo and with
// predictionGainRecurrence4; cpu-ns/call is the thread's CPU time per gain.
func BenchmarkLPCInversePredictionGain(b *testing.B) {
	rnd := rand.New(rand.NewPCG(31, 32))
	sets := make([][]int16, 0, 256)
	for len(sets) < cap(sets) {
		a := make([]int16, 16)
		for k := range a {
			a[k] = int16(max(min(rnd.NormFloat64()*2000/float64(k+1), math.MaxInt16), math.MinInt16))
		}
		if lpcInversePredictionGain(a) != 0 || rnd.IntN(8) == 0 {
			sets = append(sets, a)
		}
	}
	for _, simd := range []bool{false, true} {
		b.Run(map[bool]string{false: "go", true: "sse41"}[simd], func(b *testing.B) {
			if simd && !predictionGainSSE41 {
				b.Skip("no SSE4.1")
			}
			defer func(v bool) { predictionGainSSE41 = v }(predictionGainSSE41)
			predictionGainSSE41 = simd
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			c0, ok0 := threadCPU()
			i := 0
			for b.Loop() {
				lpcInversePredictionGain(sets[i&255])
				i++
			}
			if c1, ok1 := threadCPU(); ok0 && ok1 && i > 0 {
				b.ReportMetric(float64(c1-c0)/float64(i), "cpu-ns/call")
			}
		})
	}
}
