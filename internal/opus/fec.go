// SPDX-FileCopyrightText: 2026 The Pion community <https://pion.ly>
// SPDX-License-Identifier: MIT

package opus

import "github.com/rtcrec/recorder/internal/opus/internal/silk"

// DecodeFECToInt16 decodes, from packet in, the audio of the packet lost just
// before it: the in-band FEC (RFC 6716 Section 2.1.7) that SILK carries as
// LBRR frames in in's frame, for one frame's duration, into out as
// DecodeToInt16 does. It decodes with the decoder's state, as libopus's
// opus_decode with decode_fec set does; decode in itself next. ok is false,
// with nothing decoded, when in carries no FEC this decoder can use: a
// CELT-only packet, a mode other than the last one decoded, a stereo stream,
// more than one frame (code 1, 2 or 3), a frame without LBRR, or a hybrid
// packet at an output rate above 16 kHz or without SetSkipHybridCELT (its
// CELT layer would need loss concealment, which this decoder does not have).
// It allocates nothing once the decoder has decoded a packet of in's size.
// (Our change to pion/opus v0.1.0: see README.md.)
func (d *Decoder) DecodeFECToInt16(in []byte, out []int16) (n int, ok bool) {
	if len(in) < 2 || len(in)-1 > maxOpusFrameSize || d.sampleRate == 0 || d.channels == 0 {
		return 0, false
	}
	toc := tableOfContentsHeader(in[0])
	cfg := toc.configuration()
	mode := cfg.mode()
	switch {
	case toc.isStereo() || toc.frameCode() != frameCodeOneFrame || mode != d.previousMode:
		return 0, false
	case mode == configurationModeHybrid && (!d.skipHybridCELT || d.sampleRate > 16000):
		return 0, false
	case mode != configurationModeSilkOnly && mode != configurationModeHybrid:
		return 0, false
	}
	took := d.borrow()
	defer d.release(took)
	d.clearSilkRedundancyTransitions()
	d.rangeDecoder.Init(in[1:])
	nanoseconds := cfg.frameDuration().nanoseconds()
	bandwidth, rate, samples := cfg.bandwidth(), d.sampleRate, 0
	if mode == configurationModeSilkOnly {
		samples = cfg.silkFrameSampleCount()
		buf := resizeFloat32Buffer(&d.scratch.silk, samples)
		if ok, err := d.silkDecoder.DecodeFECWithRange(&d.rangeDecoder, buf, false, nanoseconds, silk.Bandwidth(bandwidth)); !ok || err != nil {
			return 0, false
		}
		rate = bandwidth.SampleRate()
	} else {
		frameSamples := cfg.hybridFrameSampleCount()
		silkInternal := resizeFloat32Buffer(&d.scratch.hybridSilk, frameSamples*BandwidthWideband.SampleRate()/celtSampleRate)
		if ok, err := d.silkDecoder.DecodeFECWithRange(&d.rangeDecoder, silkInternal, false, nanoseconds, silk.Bandwidth(BandwidthWideband)); !ok || err != nil {
			return 0, false
		}
		samples = sampleCountAtRate(frameSamples, d.sampleRate)
		silkPCM := resizeFloat32Buffer(&d.scratch.hybridSilkPCM, samples)
		if err := d.resampleHybridSilk(silkInternal, silkPCM, 1); err != nil {
			return 0, false
		}
		buf := resizeFloat32Buffer(&d.scratch.silk, samples*d.channels)
		clear(buf)
		d.addHybridSilk(buf, silkPCM, 1, d.channels, samples)
		samples *= d.channels
		d.celtStale = true // its CELT layer is not decoded (SetSkipHybridCELT)
	}
	if cap(d.scratch.float) < len(out) {
		d.scratch.float = make([]float32, len(out))
	}
	d.scratch.float = d.scratch.float[:len(out)]
	channels := 1
	if mode == configurationModeHybrid {
		channels = d.channels
	}
	n, err := d.finishDecodeToFloat32(d.scratch.float, bandwidth, rate, samples, channels)
	if err != nil {
		return 0, false
	}
	float32ToInt16(d.scratch.float, out, n*d.channels)

	return n, true
}
