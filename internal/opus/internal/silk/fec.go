// SPDX-FileCopyrightText: 2026 The Pion community <https://pion.ly>
// SPDX-License-Identifier: MIT

package silk

import "github.com/rtcrec/recorder/internal/opus/internal/rangecoding"

// DecodeFECWithRange decodes the low bit-rate redundancy (LBRR, RFC 6716
// Sections 4.2.4 and 4.2.5) of a mono SILK frame into out: the previous
// packet's audio, coded again at a lower rate (in-band FEC), for a packet that
// was lost. It decodes with this decoder's state, which then continues from
// the recovered audio, as the RFC's reference decoder does for a lost packet
// (silk_Decode with lostFlag FLAG_DECODE_LBRR); the packet's own frames are
// decoded next, from the start of the packet again. ok is false, with nothing
// decoded and the state unchanged, when the frame is stereo or does not carry
// LBRR for each of its SILK frames. (Our change to pion/opus v0.1.0: see
// internal/opus/README.md.)
func (d *Decoder) DecodeFECWithRange(
	rangeDecoder *rangecoding.Decoder,
	out []float32,
	isStereo bool,
	nanoseconds int,
	bandwidth Bandwidth,
) (ok bool, err error) {
	if rangeDecoder == nil {
		return false, errOutBufferTooSmall
	}
	frameCount := silkFrameCount(nanoseconds)
	silkFrameNanoseconds := min(nanoseconds, nanoseconds20Ms)
	sfCount := subframeCount(silkFrameNanoseconds)
	frameSampleCount := d.samplesInSubframe(bandwidth) * sfCount
	switch {
	case frameCount == 0 || sfCount == 0:
		return false, errUnsupportedSilkFrameDuration
	case frameSampleCount*frameCount > len(out):
		return false, errOutBufferTooSmall
	case isStereo:
		return false, nil
	}
	defer d.release()
	d.rangeDecoder = *rangeDecoder
	_, present := d.decodeHeaderBitsInto(&d.buffers().midVoiceActivity, frameCount)
	flags := d.decodeLowBitrateRedundancyFlagsInto(&d.buffers().midLBRRFlags, frameCount, present)
	for _, coded := range flags {
		if !coded {
			return false, nil
		}
	}
	for i := range flags {
		// LBRR frames are coded as active; each after the first is coded
		// conditionally on the one before (every one is coded here).
		if err := d.decodeFrame(out[i*frameSampleCount:(i+1)*frameSampleCount], true, silkFrameNanoseconds, bandwidth, i == 0, false); err != nil {
			return false, err
		}
	}
	d.delayMono(out[:frameSampleCount*frameCount])
	*rangeDecoder = d.rangeDecoder

	return true, nil
}
