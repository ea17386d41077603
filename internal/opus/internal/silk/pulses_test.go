package silk

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/rtcrec/recorder/internal/opus/internal/slicetools"
)

// TestDecodePulseLocation_SameAsBefore: placing the pulses by halves down to
// pairs (splitPulses8, splitPulses4; a single pulse's splits in one call,
// onePulse, session 19) reads the same symbols and places the
// same pulses as the loops before session 17 (pulseLocationBefore, below),
// the range decoder at the same place after: random pulse counts (0 to 16
// per block, up to 20 blocks) over random data.
func TestDecodePulseLocation_SameAsBefore(t *testing.T) {
	rnd := rand.New(rand.NewPCG(13, 14))
	for trial := range 5000 {
		pulsecounts := make([]uint8, 1+rnd.IntN(20))
		for i := range pulsecounts {
			if rnd.IntN(3) > 0 {
				pulsecounts[i] = uint8(1 + rnd.IntN(16))
			}
		}
		data := make([]byte, 1+rnd.IntN(60))
		for i := range data {
			data[i] = byte(rnd.Uint32())
		}
		var a, b Decoder
		a.rangeDecoder.Init(data)
		b.rangeDecoder.Init(data)
		got := slices.Clone(a.decodePulseLocation(pulsecounts))
		want := slices.Clone(pulseLocationBefore(&b, pulsecounts))
		a.release()
		b.release()
		if !slices.Equal(got, want) {
			t.Fatalf("trial %d, counts %v: %v, want %v", trial, pulsecounts, got, want)
		}
		if a.rangeDecoder.TellFrac() != b.rangeDecoder.TellFrac() || a.rangeDecoder.FinalRange() != b.rangeDecoder.FinalRange() {
			t.Fatalf("trial %d: the range decoder is elsewhere after the pulses", trial)
		}
	}
}

// pulseLocationBefore is decodePulseLocation before session 17: the
// reference of the test above.
func pulseLocationBefore(d *Decoder, pulsecounts []uint8) (eRaw []int32) {
	eRaw = slicetools.ResizeZero(&d.buffers().eRaw, len(pulsecounts)*pulsecountLargestPartitionSize)
	for i := range pulsecounts {
		// This process skips partitions without any pulses, i.e., where
		// the initial pulse count from Section 4.2.7.8.2 was zero, or where the
		// split in the prior level indicated that all of the pulses fell on the
		// other side.  These partitions have nothing to code, so they require
		// no PDF.
		if pulsecounts[i] == 0 {
			continue
		}

		// (Our change to pion/opus v0.1.0: the halves without pulses are
		// skipped at once, their coefficients left at zero, instead of
		// being split down to single coefficients: the same symbols in the
		// same order.)
		e := eRaw[pulsecountLargestPartitionSize*i : pulsecountLargestPartitionSize*(i+1)]
		left16 := splitPulsesBefore(d, icdfPulseCountSplit16SamplePartitions, pulsecounts[i])
		for j, count8 := range [2]uint8{left16, pulsecounts[i] - left16} {
			if count8 == 0 {
				continue
			}
			left8 := splitPulsesBefore(d, icdfPulseCountSplit8SamplePartitions, count8)
			for k, count4 := range [2]uint8{left8, count8 - left8} {
				if count4 == 0 {
					continue
				}
				left4 := splitPulsesBefore(d, icdfPulseCountSplit4SamplePartitions, count4)
				for l, count2 := range [2]uint8{left4, count4 - left4} {
					if count2 == 0 {
						continue
					}
					left2 := splitPulsesBefore(d, icdfPulseCountSplit2SamplePartitions, count2)
					at := 8*j + 4*k + 2*l
					e[at] = int32(left2)
					e[at+1] = int32(count2 - left2)
				}
			}
		}
	}

	return eRaw
}

// splitPulsesBefore is splitPulses with DecodeSymbolWithICDF's tables.
func splitPulsesBefore(d *Decoder, icdf [][]uint, block uint8) uint8 {
	return uint8(d.rangeDecoder.DecodeSymbolWithICDF(icdf[block-1]))
}
