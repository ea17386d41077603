package silk

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestDecodeLSFStageTwoIndices_SameAsBefore: the stage-2 indices read in
// runs up to each escape (DecodeTable8Each, session 21) are the indices
// read a symbol at a time before (lsfStageTwoBefore, below), the range
// decoder at the same place after: every stage-1 index of every bandwidth
// over random data, escapes to both sides included.
func TestDecodeLSFStageTwoIndices_SameAsBefore(t *testing.T) {
	rnd := rand.New(rand.NewPCG(33, 34))
	escapes := map[int8]int{}
	for trial := range 6000 {
		bandwidth := []Bandwidth{BandwidthNarrowband, BandwidthMediumband, BandwidthWideband}[trial%3]
		stageOneIndex := uint32(rnd.IntN(32))
		data := make([]byte, 1+rnd.IntN(40))
		for i := range data {
			data[i] = byte(rnd.Uint32())
		}
		var a, b Decoder
		a.rangeDecoder.Init(data)
		b.rangeDecoder.Init(data)
		for range 3 { // three frames' in a row
			got := slices.Clone(a.decodeLSFStageTwoIndices(bandwidth, stageOneIndex))
			want := lsfStageTwoBefore(&b, bandwidth, stageOneIndex)
			a.release()
			if !slices.Equal(got, want) {
				t.Fatalf("trial %d (bandwidth %d, I1 %d): %v, want %v", trial, bandwidth, stageOneIndex, got, want)
			}
			if a.rangeDecoder.TellFrac() != b.rangeDecoder.TellFrac() || a.rangeDecoder.FinalRange() != b.rangeDecoder.FinalRange() {
				t.Fatalf("trial %d: the range decoder is elsewhere after the indices", trial)
			}
			for _, index := range want {
				if index <= -4 || index >= 4 {
					escapes[min(max(index, -5), 5)]++
				}
			}
		}
	}
	if escapes[-4] < 100 || escapes[-5] < 100 || escapes[4] < 100 || escapes[5] < 100 {
		t.Errorf("escapes %v: not every kind", escapes)
	}
}

// lsfStageTwoBefore is decodeLSFStageTwoIndices before session 21: the
// reference of the test above.
func lsfStageTwoBefore(d *Decoder, bandwidth Bandwidth, stageOneIndex uint32) []int8 {
	codebook := codebookNormalizedLSFStageTwoIndexNarrowbandOrMediumband
	if bandwidth == BandwidthWideband {
		codebook = codebookNormalizedLSFStageTwoIndexWideband
	}
	I2 := make([]int8, len(codebook[0]))
	for i := range I2 {
		I2[i] = int8(d.rangeDecoder.DecodeSymbolWithICDF(icdfNormalizedLSFStageTwoIndex[codebook[stageOneIndex][i]])) - 4
		if I2[i] == -4 {
			I2[i] -= int8(d.rangeDecoder.DecodeSymbolWithICDF(icdfNormalizedLSFStageTwoIndexExtension))
		} else if I2[i] == 4 {
			I2[i] += int8(d.rangeDecoder.DecodeSymbolWithICDF(icdfNormalizedLSFStageTwoIndexExtension))
		}
	}

	return I2
}

// TestDecodePulseAndLSBCounts_SameAsBefore: the pulse counts read in runs up
// to each 17 (DecodeTable8Run, session 21) are the counts and LSB counts
// read a block at a time before (pulseCountsBefore, below), the range
// decoder at the same place after: every rate level, 1 to 20 blocks, over
// random data, blocks with extra LSBs included.
func TestDecodePulseAndLSBCounts_SameAsBefore(t *testing.T) {
	rnd := rand.New(rand.NewPCG(35, 36))
	withLSBs := 0
	for trial := range 6000 {
		rateLevel := uint32(trial % 9)
		shellblocks := 1 + rnd.IntN(20)
		data := make([]byte, 1+rnd.IntN(60))
		for i := range data {
			data[i] = byte(rnd.Uint32())
		}
		var a, b Decoder
		a.rangeDecoder.Init(data)
		b.rangeDecoder.Init(data)
		pulses, lsbs := a.decodePulseAndLSBCounts(shellblocks, rateLevel)
		pulses, lsbs = slices.Clone(pulses), slices.Clone(lsbs)
		a.release()
		wantPulses, wantLSBs := pulseCountsBefore(&b, shellblocks, rateLevel)
		if !slices.Equal(pulses, wantPulses) || !slices.Equal(lsbs, wantLSBs) {
			t.Fatalf("trial %d (rate level %d): %v %v, want %v %v", trial, rateLevel, pulses, lsbs, wantPulses, wantLSBs)
		}
		if a.rangeDecoder.TellFrac() != b.rangeDecoder.TellFrac() || a.rangeDecoder.FinalRange() != b.rangeDecoder.FinalRange() {
			t.Fatalf("trial %d: the range decoder is elsewhere after the counts", trial)
		}
		for _, n := range wantLSBs {
			if n > 0 {
				withLSBs++
			}
		}
	}
	if withLSBs < 200 {
		t.Errorf("%d blocks with extra LSBs", withLSBs)
	}
}

// pulseCountsBefore is decodePulseAndLSBCounts before session 21: the
// reference of the test above.
func pulseCountsBefore(d *Decoder, shellblocks int, rateLevel uint32) (pulsecounts []uint8, lsbcounts []uint8) {
	pulsecounts = make([]uint8, shellblocks)
	lsbcounts = make([]uint8, shellblocks)
	for i := range shellblocks {
		pulsecounts[i] = uint8(d.rangeDecoder.DecodeSymbolWithICDF(icdfPulseCount[rateLevel]))
		if pulsecounts[i] == 17 {
			lsbcount := uint8(0)
			for ; pulsecounts[i] == 17 && lsbcount < 10; lsbcount++ {
				pulsecounts[i] = uint8(d.rangeDecoder.DecodeSymbolWithICDF(icdfPulseCount[9]))
			}
			lsbcounts[i] = lsbcount
			if lsbcount == 10 {
				pulsecounts[i] = uint8(d.rangeDecoder.DecodeSymbolWithICDF(icdfPulseCount[10]))
			}
		}
	}

	return pulsecounts, lsbcounts
}
