package mediatest

import "math"

// Lay lays a file's samples (pcm, at rate Hz) on a recording's timeline,
// where at says each instant f of the file (seconds from its first sample)
// lies (seconds of the recording: composition.Track's Placement), in its
// first n samples (all of them for n <= 0): a step forward leaves silence,
// and after a step back a sample whose place already holds the file's audio
// is dropped (as the live mix drops audio that lands on what it decided).
// Samples placed before time zero or from n on are left out.
func Lay(pcm []int16, rate float64, at func(f float64) float64, n int) []int16 {
	var out []int16
	last := -1
	for i, v := range pcm {
		j := int(math.Round(at(float64(i)/rate) * rate))
		if j < 0 || j <= last || n > 0 && j >= n {
			continue
		}
		for len(out) <= j {
			out = append(out, 0)
		}
		out[j], last = v, j
	}
	return out
}
