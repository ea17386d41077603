package media

import (
	"sync/atomic"

	"github.com/rtcrec/recorder/internal/opus"
)

// rewarmFrames is how many of the inactive packets skipped last are decoded
// (output discarded) before the first active one, so that the decoder's
// state (SILK's LPC and pitch history, CELT's energy prediction, the
// resampler) is that of the signal just before the onset, not of the end of
// the last talk spurt. One is enough: against two, speech frames keep 55 dB
// or more and no onset moves (TestOpusDecoder_Golden's note), for half the
// re-warm's cost.
const rewarmFrames = 1

// rewarmPayload is the largest inactive packet kept for the re-warm; a larger
// one is decoded, not skipped (inactive packets are a few dozen bytes).
const rewarmPayload = 256

// opusDecoder is pion/opus's decoder that skips the work of inactive
// packets: a packet whose SILK voice-activity flags are all clear (RFC 6716
// §4.2.3: the first header bits of a SILK-only or hybrid frame), and a DTX
// packet (1–2 bytes: no frame data, RFC 6716 §3.2.1), plays as digital
// silence of its duration without being decoded. Before the first active
// packet after a run of skipped ones it decodes the last rewarmFrames of
// them, discarding the output. CELT-only packets carry no VAD flag and are
// always decoded. Stereo packets are always decoded (their side channel's
// flags follow the mid channel's LBRR flag).
//
// At a rate of 16 kHz or less it can also skip the CELT layer of hybrid
// frames (SetSkipHybridCELT, our change in internal/opus,
// the fork of pion/opus): that layer codes only 8 kHz and up, which such an
// output cannot hold, and its synthesis is about half of a hybrid frame's
// cost. With both skips off it decodes everything in full.
//
// It belongs to the pipeline's reader goroutine; Skipped may be read from
// any goroutine.
type opusDecoder struct {
	dec     opus.Decoder
	rate    int  // output samples per second
	skip    bool // skip inactive packets
	held    [rewarmFrames][]byte
	nheld   int // skipped packets since the last decode (held: the last rewarmFrames)
	skipped atomic.Uint64
}

// newOpusDecoder returns a mono decoder to rate (8000, 12000, 16000, 24000 or
// 48000 Hz) that skips inactive packets (skipInactive) and the CELT layer of
// hybrid frames at rates of 16 kHz or less (skipHybridCELT).
func newOpusDecoder(rate int, skipInactive, skipHybridCELT bool) (*opusDecoder, error) {
	dec, err := opus.NewDecoderWithOutput(rate, 1)
	if err != nil {
		return nil, err
	}
	dec.SetSkipHybridCELT(skipHybridCELT)
	d := &opusDecoder{dec: dec, rate: rate, skip: skipInactive}
	for i := range d.held {
		d.held[i] = make([]byte, 0, rewarmPayload)
	}
	return d, nil
}

// Reset starts the decoder afresh (a new stream).
func (d *opusDecoder) Reset() error {
	d.nheld = 0
	return d.dec.Init(d.rate, 1)
}

// Skipped returns the packets played as silence without being decoded.
func (d *opusDecoder) Skipped() uint64 { return d.skipped.Load() }

// DecodeToInt16 decodes payload into out (mono at the decoder's rate) and
// returns the number of samples, as opus.Decoder.DecodeToInt16 does.
func (d *opusDecoder) DecodeToInt16(payload []byte, out []int16) (int, error) {
	if d.skip && len(payload) <= rewarmPayload {
		if n := opusSamples(payload, d.rate); n > 0 && n <= len(out) && opusInactive(payload) {
			h := &d.held[d.nheld%rewarmFrames]
			*h = append((*h)[:0], payload...)
			d.nheld++
			d.skipped.Add(1)
			clear(out[:n])
			return n, nil
		}
	}
	d.rewarm(out)
	return d.dec.DecodeToInt16(payload, out)
}

// rewarm decodes the last skipped packets, oldest first, before an active
// one; their output is not used (out is scratch).
func (d *opusDecoder) rewarm(out []int16) {
	if d.nheld == 0 {
		return
	}
	for i := max(d.nheld-rewarmFrames, 0); i < d.nheld; i++ {
		if p := d.held[i%rewarmFrames]; len(p) > 2 {
			_, _ = d.dec.DecodeToInt16(p, out)
		}
	}
	d.nheld = 0
}

// DecodeFEC decodes, from payload, the audio of the packet lost just before
// it into out, and returns the number of samples: the in-band FEC that SILK
// carries as LBRR frames (RFC 6716 §2.1.7), the lost packet's audio coded
// again at a lower rate, which browsers send since they negotiate
// useinbandfec=1. It is 0 when payload carries none this decoder can use
// (opus.Decoder.DecodeFECToInt16: CELT-only, stereo, several frames, no LBRR,
// a mode change); the caller conceals the loss instead. Call it before
// payload's own DecodeToInt16: the decoder's state then runs through the
// lost packet, as libopus's does. It allocates nothing.
func (d *opusDecoder) DecodeFEC(payload []byte, out []int16) int {
	d.rewarm(out)
	n, ok := d.dec.DecodeFECToInt16(payload, out)
	if !ok {
		return 0
	}
	return n
}

// opusSamples returns the duration of an Opus packet in samples at rate, from
// its TOC byte and frame count (RFC 6716 §3.1, §3.2); 0 when malformed.
func opusSamples(p []byte, rate int) int {
	if len(p) == 0 {
		return 0
	}
	cfg := int(p[0] >> 3)
	var tenths int // frame duration in tenths of a millisecond
	switch {
	case cfg < 12: // SILK-only: 10, 20, 40, 60 ms
		tenths = [4]int{100, 200, 400, 600}[cfg&3]
	case cfg < 16: // hybrid: 10, 20 ms
		tenths = [2]int{100, 200}[cfg&1]
	default: // CELT-only: 2.5, 5, 10, 20 ms
		tenths = [4]int{25, 50, 100, 200}[cfg&3]
	}
	frames := 1
	switch p[0] & 3 {
	case 1, 2:
		frames = 2
	case 3:
		if len(p) < 2 {
			return 0
		}
		frames = int(p[1] & 0x3F)
	}
	if frames == 0 || frames*tenths > 1200 {
		return 0
	}
	return frames * tenths * rate / 10000
}

// opusInactive reports whether a packet carries no voice: a DTX packet (at
// most 2 bytes: a TOC and no frame, or a code-3 header with no frame data), or
// a mono SILK-only or hybrid packet of one frame (code 0) or two equal
// frames (code 1) whose every SILK frame has its VAD flag clear. A SILK
// frame's header bits are coded with probability one half and are the first
// of its range-coded data, so they are the top bits of its first byte, as
// WebRTC reads them (WebRtcOpus_PacketHasVoiceActivity): one VAD flag per 20
// ms of SILK (1 for a 10 or 20 ms frame, 2 for 40 ms, 3 for 60 ms), then the
// LBRR flag.
func opusInactive(p []byte) bool {
	if len(p) <= 2 {
		return true
	}
	toc := p[0]
	cfg := int(toc >> 3)
	if cfg >= 16 || toc&0x04 != 0 { // CELT-only: no VAD flag; stereo: decoded
		return false
	}
	silkFrames := 1
	if cfg < 12 {
		silkFrames = [4]int{1, 1, 2, 3}[cfg&3]
	}
	var frames [2][]byte
	switch toc & 3 {
	case 0:
		frames[0] = p[1:]
	case 1:
		if (len(p)-1)%2 != 0 {
			return false
		}
		half := (len(p) - 1) / 2
		frames[0], frames[1] = p[1:1+half], p[1+half:]
	default: // code 2 and 3: decoded (browsers send code 0)
		return false
	}
	for _, f := range frames {
		if f == nil {
			continue
		}
		if len(f) == 0 {
			return false
		}
		if f[0]>>(8-silkFrames) != 0 { // a VAD flag set
			return false
		}
	}
	return true
}
