package oggwriter

import "errors"

// errOpusPacket reports a payload that is not a well-formed Opus packet.
var errOpusPacket = errors.New("oggwriter: malformed Opus packet")

// frameSamples is the duration, in samples at 48 kHz, of one frame of each
// TOC configuration (RFC 6716 §3.1, Table 2): SILK-only configurations 0–11
// (10, 20, 40, 60 ms), hybrid 12–15 (10, 20 ms), CELT-only 16–31 (2.5, 5,
// 10, 20 ms).
var frameSamples = [32]uint32{
	480, 960, 1920, 2880, 480, 960, 1920, 2880, 480, 960, 1920, 2880,
	480, 960, 480, 960,
	120, 240, 480, 960, 120, 240, 480, 960, 120, 240, 480, 960, 120, 240, 480, 960,
}

// packetSamples returns the duration of an Opus packet in samples at 48 kHz
// from its TOC byte and, for code 3, its frame count byte (RFC 6716 §3.1–3.2).
func packetSamples(p []byte) (uint32, error) {
	if len(p) == 0 {
		return 0, errOpusPacket
	}
	per := frameSamples[p[0]>>3]
	frames := uint32(1)
	switch p[0] & 3 {
	case 1, 2:
		frames = 2
	case 3:
		if len(p) < 2 {
			return 0, errOpusPacket
		}
		frames = uint32(p[1] & 0x3F)
	}
	// A packet holds 1 to 48 frames and at most 120 ms (RFC 6716 §3.2.5).
	if frames == 0 || per*frames > 5760 {
		return 0, errOpusPacket
	}
	return per * frames, nil
}

// silenceFrames are CELT-only, mono, single-frame Opus packets that decode to
// digital silence, by duration: a TOC byte (configurations 28–31, fullband
// 2.5/5/10/20 ms, code 0) followed by the two range-coder bytes 0xFF 0xFE,
// which set CELT's silence flag (RFC 6716 §4.3, Table 56). They fill gaps so
// that every player, also one that ignores granule positions, keeps time.
var silenceFrames = [...]struct {
	samples uint32
	packet  [3]byte
}{
	{960, [3]byte{0xF8, 0xFF, 0xFE}},
	{480, [3]byte{0xF0, 0xFF, 0xFE}},
	{240, [3]byte{0xE8, 0xFF, 0xFE}},
	{120, [3]byte{0xE0, 0xFF, 0xFE}},
}
