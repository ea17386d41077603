package silk

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// TestLPCSynthesisSteadyState_SameAsDot: the LPC synthesis of a subframe
// after the first, which sums inline and takes the newest history samples
// from registers (lpcSynthesis16, lpcSynthesis10), gives bit for bit what
// summing each sample's d_LPC products over the stored history gives: with
// dot for NB/MB (d_LPC 10), in newestLast16's order for WB (16; session 19),
// on random coefficients, residuals and histories of speech-like scale.
func TestLPCSynthesisSteadyState_SameAsDot(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, dLPC := range []int{10, 16} {
		for trial := range 200 {
			const n = 80
			reversed, res := randomSubframe(rnd, dLPC, n, 0.4)
			gain := float32(rnd.Float64() * 2)
			history := make([]float32, dLPC+n)
			for i := range dLPC {
				history[i] = float32(rnd.NormFloat64() * 0.1)
			}
			want := append([]float32(nil), history...)
			for i := range n { // the reference, over the stored history
				want[dLPC+i] = steadyStateReference(want[i:i+dLPC], &reversed, gain*res[i])
			}

			out := make([]float32, n)
			lpcSynthesisSteadyState(out, dLPC, reversed, res, history[dLPC:], history, gain)
			for i := range n {
				if got := history[dLPC+i]; math.Float32bits(got) != math.Float32bits(want[dLPC+i]) {
					t.Fatalf("d_LPC %d, trial %d, sample %d: %g, want %g", dLPC, trial, i, got, want[dLPC+i])
				}
				if c := clampNegativeOneToOne(want[dLPC+i]); math.Float32bits(out[i]) != math.Float32bits(c) {
					t.Fatalf("d_LPC %d, trial %d, out[%d]: %g, want %g", dLPC, trial, i, out[i], c)
				}
			}
		}
	}
}

// steadyStateReference is a sample of the LPC synthesis after a subframe's
// first from its d_LPC predecessors x (oldest first), its coefficients
// (reversed: reversed[k] multiplies x[k]) and gain*res: dot's sum for
// d_LPC 10, newestLast16's for 16.
func steadyStateReference(x []float32, reversed *[16]float32, gainRes float32) float32 {
	if len(x) == 16 {
		return newestLast16(x, reversed, gainRes)
	}

	return gainRes + dot(x, reversed[:len(x)], false)
}

// newestLast16 is the sum of lpcSynthesis16 (session 19) written plainly:
// the twelve oldest products in four partial sums from 0 (lane l takes
// x[l], x[4+l], x[8+l]), older = (s0+s2) + (s1+s3); then from gain*res
// the products of x[12], x[13] and x[14], older, and last the newest
// sample's product, so that the recursion's chain is one product and one
// addition.
func newestLast16(x []float32, a *[16]float32, gainRes float32) float32 {
	var s [4]float32
	for k := range 12 {
		s[k%4] += x[k] * a[k]
	}
	older := (s[0] + s[2]) + (s[1] + s[3])
	t := gainRes
	t += x[12] * a[12]
	t += x[13] * a[13]
	t += x[14] * a[14]
	t += older

	return t + x[15]*a[15]
}

// TestLPCSynthesis16_SameAsGo: lpcSynthesis16 (on amd64 the SSE2 kernel
// lpcSynthesis16x, whose clamp is a pass of its own, four samples at a
// time) gives bit for bit what lpcSynthesis16Go gives, lpc and out, for
// every length from 0 to 41 and a subframe's 80, on samples with clipping,
// tiny, signed-zero and NaN values, and writes nothing past out or lpc.
func TestLPCSynthesis16_SameAsGo(t *testing.T) {
	rnd := rand.New(rand.NewPCG(25, 26))
	for _, n := range append([]int{80}, func() (l []int) {
		for n := range 42 {
			l = append(l, n)
		}
		return l
	}()...) {
		for trial := range 50 {
			var a [16]float32
			for k := range a {
				a[k] = simdSample(rnd) * 0.5
			}
			res := make([]float32, n)
			for i := range res {
				res[i] = simdSample(rnd)
			}
			gain := float32(rnd.Float64() * 2)
			history := make([]float32, 16+n+1)
			for i := range 16 {
				history[i] = simdSample(rnd)
			}
			history[16+n] = 7 // past lpc's end
			wantHistory := append([]float32(nil), history...)
			out, wantOut := make([]float32, n+1), make([]float32, n+1)
			out[n], wantOut[n] = 9, 9 // past out's end
			lpcSynthesis16(out[:n], &a, res, history[16:16+n], history[:16+n], gain)
			lpcSynthesis16Go(wantOut[:n], &a, res, wantHistory[16:16+n], wantHistory[:16+n], gain)
			for i := range n + 1 {
				if !sameFloat32(history[16+i], wantHistory[16+i]) || !sameFloat32(out[i], wantOut[i]) {
					t.Fatalf("n %d, trial %d, sample %d: lpc %g out %g, want %g and %g", n, trial, i, history[16+i], out[i], wantHistory[16+i], wantOut[i])
				}
			}
		}
	}
}

// BenchmarkLPCSynthesisSteadyState synthesizes one WB (d_LPC 16) or NB/MB
// (10) subframe of 80 samples after the first; cpu-ns/subframe is the
// thread's CPU time.
func BenchmarkLPCSynthesisSteadyState(b *testing.B) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, dLPC := range []int{10, 16} {
		b.Run(fmt.Sprintf("dLPC=%d", dLPC), func(b *testing.B) {
			const n = 80
			reversed, res := randomSubframe(rnd, dLPC, n, 0.1)
			history := make([]float32, dLPC+n)
			out := make([]float32, n)
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			c0, ok0 := threadCPU()
			i := 0
			for b.Loop() {
				lpcSynthesisSteadyState(out, dLPC, reversed, res, history[dLPC:], history, 0.5)
				copy(history[:dLPC], history[n:]) // the next subframe's history
				i++
			}
			if c1, ok1 := threadCPU(); ok0 && ok1 && i > 0 {
				b.ReportMetric(float64(c1-c0)/float64(i), "cpu-ns/subframe")
			}
		})
	}
}

// randomSubframe returns d_LPC random LPC coefficients of the given scale
// (reversed, as lpcSynthesisSteadyState takes them) and n residual samples
// of speech-like scale.
func randomSubframe(rnd *rand.Rand, dLPC, n int, scale float64) (reversed [16]float32, res []float32) {
	for k := range dLPC {
		reversed[k] = float32(rnd.NormFloat64() * scale)
	}
	res = make([]float32, n)
	for i := range res {
		res[i] = float32(rnd.NormFloat64() * 0.01)
	}

	return reversed, res
}

// TestLPCSynthesisFirstSubframe_SameAsBefore: the LPC synthesis of a
// frame's first subframe (its first d_LPC samples reach into the previous
// frame's, the rest sum inline: lpcFirstSubframeTail10; for d_LPC 16 all
// of it is lpcSynthesis16's, session 19) gives bit for bit what the loop
// before it gave (firstSubframeReference; for d_LPC 16 newestLast16's sum
// over the previous frame's values and the subframe's), for NB/MB (d_LPC
// 10, 40 and 60 samples) and WB (16, 80), on random coefficients, residuals
// and previous samples of speech-like scale.
func TestLPCSynthesisFirstSubframe_SameAsBefore(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct{ dLPC, n int }{{10, 40}, {10, 60}, {16, 80}} {
		for trial := range 200 {
			reversed, res := randomSubframe(rnd, c.dLPC, c.n, 0.4)
			var normalized [16]float32
			for k := range c.dLPC {
				normalized[k] = reversed[c.dLPC-1-k]
			}
			gain := float32(rnd.Float64() * 2)
			// the previous frame's d_LPC values; none (the first frame) or
			// 10 at a switch to WB in a few trials
			count := c.dLPC
			if trial%10 == 0 {
				count = 0
			} else if trial%10 == 1 && c.dLPC == 16 {
				count = 10
			}
			d := &Decoder{previousLPCCount: count}
			for i := range count {
				d.previousLPC[i] = float32(rnd.NormFloat64() * 0.1)
			}
			wantLPC, wantOut := make([]float32, c.n), make([]float32, c.n)
			firstSubframeReference(d, wantOut, c.dLPC, normalized, res, wantLPC, gain)
			lpc, out := make([]float32, c.n), make([]float32, c.n)
			d.lpcSynthesisFirstSubframe(out, c.dLPC, normalized, res, lpc, gain)
			for i := range c.n {
				if math.Float32bits(lpc[i]) != math.Float32bits(wantLPC[i]) || math.Float32bits(out[i]) != math.Float32bits(wantOut[i]) {
					t.Fatalf("d_LPC %d, n %d, trial %d, sample %d: lpc %g out %g, want %g and %g", c.dLPC, c.n, trial, i, lpc[i], out[i], wantLPC[i], wantOut[i])
				}
			}
		}
	}
}

// firstSubframeReference is lpcSynthesisFirstSubframe as it was before its
// inline sums (session 8): the reference of the test above; for d_LPC 16
// every sample in newestLast16's order over the previous frame's last 16
// values (zeros where it has fewer) and the subframe's own (session 19).
func firstSubframeReference(d *Decoder, out []float32, dLPC int, normalizedAQ12 [16]float32, subframeRes, subframeLPC []float32, gain float32) {
	var currentLPCVal float32
	var reversed [16]float32
	for k := range dLPC {
		reversed[k] = normalizedAQ12[dLPC-1-k]
	}
	if dLPC == 16 {
		window := make([]float32, 16+len(out))
		copy(window[16-d.previousLPCCount:16], d.previousLPC[:d.previousLPCCount])
		for i := range out {
			window[16+i] = newestLast16(window[i:i+16], &reversed, gain*subframeRes[i])
			subframeLPC[i] = window[16+i]
			out[i] = clampNegativeOneToOne(window[16+i])
		}

		return
	}
	for sampleIndex := range out {
		lpcVal := gain * subframeRes[sampleIndex]
		if sampleIndex >= dLPC {
			history := subframeLPC[sampleIndex-dLPC : sampleIndex]
			lpcVal += dot(history, normalizedAQ12[:dLPC], true)
			subframeLPC[sampleIndex] = lpcVal
			out[sampleIndex] = clampNegativeOneToOne(lpcVal)

			continue
		}
		for coefficientIndex := range dLPC {
			if lpcIndex := sampleIndex - coefficientIndex - 1; lpcIndex >= 0 {
				currentLPCVal = subframeLPC[lpcIndex]
			} else if previousIndex := d.previousLPCCount - 1 + (sampleIndex - coefficientIndex); previousIndex >= 0 {
				currentLPCVal = d.previousLPC[previousIndex]
			} else {
				currentLPCVal = 0
			}
			lpcVal += currentLPCVal * normalizedAQ12[coefficientIndex]
		}
		subframeLPC[sampleIndex] = lpcVal
		out[sampleIndex] = clampNegativeOneToOne(lpcVal)
	}
}

// TestLTPPredict_SameAsPerSample: the LTP prediction in three runs (lagged
// samples all in resLag, mixed, all in res: ltpPredict) gives bit for bit
// what the loop before session 17 gave, choosing resLag or res per product,
// for every subframe of 10 and 20 ms frames at NB and WB and lags from the
// smallest to the largest (a lag shorter than a subframe reads samples the
// subframe wrote).
func TestLTPPredict_SameAsPerSample(t *testing.T) {
	rnd := rand.New(rand.NewPCG(9, 10))
	for _, c := range []struct{ n, lagMin, lagMax int }{{40, 16, 144}, {80, 32, 288}} {
		for range 400 {
			lag := c.lagMin + rnd.IntN(c.lagMax-c.lagMin+1)
			s := rnd.IntN(4)
			j := s * c.n
			var b [5]float32
			for k := range b {
				b[k] = float32(rnd.IntN(256)-128) / 128
			}
			resLag := make([]float32, c.lagMax+2)
			res := make([]float32, 4*c.n)
			for i := range resLag {
				resLag[i] = float32(rnd.NormFloat64() * 0.3)
			}
			for i := range res {
				res[i] = float32(rnd.NormFloat64() * 0.3)
			}
			want := append([]float32(nil), res...)
			for i := j; i < j+c.n; i++ { // the reference
				resSum := want[i]
				for k := range b {
					var resVal float32
					if resIndex := i - lag + 2 - k; resIndex < 0 {
						resVal = resLag[len(resLag)+resIndex]
					} else {
						resVal = want[resIndex]
					}
					resSum += resVal * b[k]
				}
				want[i] = resSum
			}
			ltpPredict(res, resLag, &b, lag, j, j+c.n)
			for i := range res {
				if math.Float32bits(res[i]) != math.Float32bits(want[i]) {
					t.Fatalf("n %d, lag %d, subframe %d: res[%d] = %g, want %g", c.n, lag, s, i, res[i], want[i])
				}
			}
		}
	}
}

// TestLPCSynthesis_SignedZerosAsDot: the LPC synthesis's partial sums begin
// with their first product, not 0 + it as dot's do (session 18); they
// differ only where that product is -0, and only in the sign of a zero,
// which gain*res + sum drops as long as gain*res is not -0. Here every
// product is -0 or +0 (a silent history, coefficients negative and
// positive; in a third of the trials all negative, so that every partial
// sum of a silent stretch is -0) and the residual is 0 on most samples,
// with speech between:
// the synthesized samples are dot's bit for bit (from 0-started partial
// sums; for d_LPC 16 newestLast16's, session 19), in the first subframe
// (d_LPC 10 and 16) and after it. It fails with gain*res computed as -0.
func TestLPCSynthesis_SignedZerosAsDot(t *testing.T) {
	rnd := rand.New(rand.NewPCG(19, 20))
	for _, c := range []struct{ dLPC, n int }{{10, 40}, {16, 80}} {
		for trial := range 200 {
			var reversed, normalized [16]float32
			for k := range c.dLPC {
				reversed[k] = float32(rnd.IntN(3)-1) * float32(rnd.Float64()+0.1)
				if trial%3 == 0 { // every product of the silent history -0
					reversed[k] = -float32(rnd.Float64() + 0.1)
				}
			}
			for k := range c.dLPC {
				normalized[k] = reversed[c.dLPC-1-k]
			}
			res := make([]float32, c.n)
			for i := range res {
				if rnd.IntN(4) == 0 && trial%2 == 1 {
					res[i] = float32(rnd.NormFloat64() * 0.1)
				}
			}
			gain := float32(rnd.Float64() + 0.01)
			// the first subframe, after a silent previous frame
			d := &Decoder{previousLPCCount: c.dLPC}
			wantLPC, wantOut := make([]float32, c.n), make([]float32, c.n)
			firstSubframeReference(d, wantOut, c.dLPC, normalized, res, wantLPC, gain)
			lpc, out := make([]float32, c.n), make([]float32, c.n)
			d.lpcSynthesisFirstSubframe(out, c.dLPC, normalized, res, lpc, gain)
			// a subframe after it, from a silent history
			history := make([]float32, c.dLPC+c.n)
			want := append([]float32(nil), history...)
			for i := range c.n {
				want[c.dLPC+i] = steadyStateReference(want[i:i+c.dLPC], &reversed, gain*res[i])
			}
			lpcSynthesisSteadyState(make([]float32, c.n), c.dLPC, reversed, res, history[c.dLPC:], history, gain)
			for i := range c.n {
				if math.Float32bits(lpc[i]) != math.Float32bits(wantLPC[i]) || math.Float32bits(out[i]) != math.Float32bits(wantOut[i]) {
					t.Fatalf("first subframe, d_LPC %d, trial %d, sample %d: lpc %g (%#x), want %g (%#x)", c.dLPC, trial, i, lpc[i], math.Float32bits(lpc[i]), wantLPC[i], math.Float32bits(wantLPC[i]))
				}
				if got := history[c.dLPC+i]; math.Float32bits(got) != math.Float32bits(want[c.dLPC+i]) {
					t.Fatalf("steady state, d_LPC %d, trial %d, sample %d: %g (%#x), want %g (%#x)", c.dLPC, trial, i, got, math.Float32bits(got), want[c.dLPC+i], math.Float32bits(want[c.dLPC+i]))
				}
			}
		}
	}
}
