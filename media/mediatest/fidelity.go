package mediatest

import "math"

// Fidelity compares a decode with a reference decode of the same packets
// (a full decode against one that skips or changes something).
type Fidelity struct {
	SNRSpeech     float64 // dB, over the 20 ms frames whose reference is above -40 dBFS
	SNRAll        float64 // dB, over everything
	LoudestSkip   float64 // dBFS: the loudest reference frame where the other decode is silent
	Onsets        int     // speech onsets (a frame above -40 dBFS after at least 200 ms below)
	OnsetShiftMax float64 // ms: the largest difference in where an onset first passes -40 dBFS
}

// CompareDecodes measures how far other is from ref, both sampled at rate
// Hz, over the 20 ms frames both hold.
func CompareDecodes(ref, other []int16, rate int) Fidelity {
	frame := rate / 50
	thr := 32768 * math.Pow(10, -40.0/20) // -40 dBFS
	n := min(len(ref), len(other))
	var f Fidelity
	var sigSpeech, errSpeech, sigAll, errAll float64
	quiet := 0
	for i := 0; i+frame <= n; i += frame {
		var s, e, peak float64
		for j := i; j < i+frame; j++ {
			x, y := float64(ref[j]), float64(other[j])
			s += x * x
			e += (x - y) * (x - y)
			peak = max(peak, math.Abs(y))
		}
		sigAll += s
		errAll += e
		rms := math.Sqrt(s / float64(frame))
		if peak == 0 && rms > 0 {
			f.LoudestSkip = max(f.LoudestSkip, rms)
		}
		if rms <= thr {
			quiet++
			continue
		}
		sigSpeech += s
		errSpeech += e
		if quiet >= 10 { // an onset: find where each decode first passes the threshold
			first := func(x []int16) int {
				for j := i - frame; j < i+frame; j++ {
					if math.Abs(float64(x[j])) > thr {
						return j
					}
				}
				return i + frame
			}
			f.Onsets++
			f.OnsetShiftMax = max(f.OnsetShiftMax, math.Abs(float64(first(ref)-first(other)))*1000/float64(rate))
		}
		quiet = 0
	}
	f.SNRSpeech = 10 * math.Log10(sigSpeech/max(errSpeech, 1e-9))
	f.SNRAll = 10 * math.Log10(sigAll/max(errAll, 1e-9))
	f.LoudestSkip = 20 * math.Log10(max(f.LoudestSkip, 1e-9)/32768)
	return f
}
