package silk

import (
	"math/rand/v2"
	"testing"
)

// signsEveryCoefficient is decodeExcitationSign as it was before session 17
// (every coefficient tested for zero): the reference.
func signsEveryCoefficient(d *Decoder, eRaw []int32, pdfs *[7][]uint, pulsecounts []uint8) {
	for block, count := range pulsecounts {
		pdf := pdfs[min(count, 6)]
		coefficients := eRaw[block*pulsecountLargestPartitionSize : (block+1)*pulsecountLargestPartitionSize]
		for i, e := range coefficients {
			if e == 0 {
				continue
			}
			if d.rangeDecoder.DecodeSymbolWithICDF(pdf) == 0 {
				coefficients[i] = -e
			}
		}
	}
}

// TestDecodeExcitationSign_SameAsEveryCoefficient: visiting a block's
// non-zero coefficients by a mask reads the same signs as testing every
// coefficient, with the range decoder at the same place after: random
// blocks, a third of them empty and some with LSBs but no pulses (their
// coefficients are signed with the zero-pulse PDF, as libopus's
// silk_decode_signs does), magnitudes up to 2^30, over random data.
func TestDecodeExcitationSign_SameAsEveryCoefficient(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 8))
	for trial := range 3000 {
		blocks := 1 + rnd.IntN(20)
		pulsecounts := make([]uint8, blocks)
		eRaw := make([]int32, blocks*pulsecountLargestPartitionSize)
		for b := range blocks {
			kind := rnd.IntN(3)
			if kind == 0 { // empty
				continue
			}
			if kind == 2 { // pulses; otherwise LSBs only
				pulsecounts[b] = uint8(1 + rnd.IntN(16))
			}
			for i := range pulsecountLargestPartitionSize {
				if rnd.IntN(3) == 0 {
					eRaw[b*pulsecountLargestPartitionSize+i] = int32(1 + rnd.IntN(1<<(1+rnd.IntN(30))))
				}
			}
		}
		data := make([]byte, 1+rnd.IntN(40))
		for i := range data {
			data[i] = byte(rnd.Uint32())
		}
		signal := []frameSignalType{frameSignalTypeInactive, frameSignalTypeUnvoiced, frameSignalTypeVoiced}[trial%3]
		offset := []frameQuantizationOffsetType{frameQuantizationOffsetTypeLow, frameQuantizationOffsetTypeHigh}[trial/3%2]
		pdfs := map[frameSignalType]*[7][]uint{
			frameSignalTypeInactive: &icdfExcitationSignInactive[quantizationOffsetTypeIndex(offset)],
			frameSignalTypeUnvoiced: &icdfExcitationSignUnvoiced[quantizationOffsetTypeIndex(offset)],
			frameSignalTypeVoiced:   &icdfExcitationSignVoiced[quantizationOffsetTypeIndex(offset)],
		}[signal]

		var a, b Decoder
		a.rangeDecoder.Init(data)
		b.rangeDecoder.Init(data)
		got, want := append([]int32(nil), eRaw...), append([]int32(nil), eRaw...)
		a.decodeExcitationSign(got, signal, offset, pulsecounts)
		signsEveryCoefficient(&b, want, pdfs, pulsecounts)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("trial %d, coefficient %d: %d, want %d", trial, i, got[i], want[i])
			}
		}
		if a.rangeDecoder.TellFrac() != b.rangeDecoder.TellFrac() || a.rangeDecoder.FinalRange() != b.rangeDecoder.FinalRange() {
			t.Fatalf("trial %d: the range decoder is elsewhere after the signs", trial)
		}
	}
}
