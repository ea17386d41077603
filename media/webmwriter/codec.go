package webmwriter

import (
	"encoding/binary"
	"fmt"

	"github.com/pion/rtp/codecs"
	"github.com/pion/rtp/codecs/vp9"
)

// Codec is a video codec this package writes.
type Codec int

// Supported codecs.
const (
	VP8 Codec = iota + 1
	VP9
)

// String returns the codec's name.
func (c Codec) String() string {
	switch c {
	case VP8:
		return "VP8"
	case VP9:
		return "VP9"
	}
	return fmt.Sprintf("Codec(%d)", int(c))
}

// codecID returns the Matroska CodecID.
func (c Codec) codecID() string {
	if c == VP9 {
		return "V_VP9"
	}
	return "V_VP8"
}

// depacketizer is a framer.Codec that also reads frame dimensions.
type depacketizer interface {
	Depacketize(frame, payload []byte) ([]byte, bool, error)
	Keyframe(frame []byte) bool
	// Size returns the dimensions a keyframe declares.
	Size(keyframe []byte) (width, height int)
}

// vp8Codec depacketizes VP8 (RFC 7741) with pion's payload descriptor parser.
type vp8Codec struct{ pkt codecs.VP8Packet }

func (c *vp8Codec) Depacketize(frame, payload []byte) ([]byte, bool, error) {
	b, err := c.pkt.Unmarshal(payload)
	if err != nil {
		return frame, false, err
	}
	// S=1 with partition index 0 marks the first packet of a frame (RFC 7741 §4.2).
	return append(frame, b...), c.pkt.S == 1 && c.pkt.PID == 0, nil
}

// Keyframe reads the VP8 frame tag (RFC 6386 §9.1): bit 0 of the first byte
// is 0 for a key frame, which carries the start code 9d 01 2a at byte 3.
func (*vp8Codec) Keyframe(f []byte) bool {
	return len(f) >= 10 && f[0]&1 == 0 && f[3] == 0x9d && f[4] == 0x01 && f[5] == 0x2a
}

// Size reads the 14-bit width and height after the key frame start code
// (RFC 6386 §9.1; the top 2 bits are the scaling mode).
func (*vp8Codec) Size(f []byte) (int, int) {
	if len(f) < 10 {
		return 0, 0
	}
	return int(binary.LittleEndian.Uint16(f[6:]) & 0x3FFF), int(binary.LittleEndian.Uint16(f[8:]) & 0x3FFF)
}

// vp9Codec depacketizes VP9 (RFC 9628) with pion's payload descriptor
// parser. Of a spatially scalable stream only the base layer (SID 0) is
// kept: it decodes on its own, while higher layers would need superframes.
type vp9Codec struct {
	pkt codecs.VP9Packet
	hdr vp9.Header
}

func (c *vp9Codec) Depacketize(frame, payload []byte) ([]byte, bool, error) {
	// pion's parser appends the picture group of every scalability structure
	// to these without resetting them: reset them so they do not grow.
	c.pkt.PGTID, c.pkt.PGU = c.pkt.PGTID[:0], c.pkt.PGU[:0]
	b, err := c.pkt.Unmarshal(payload)
	if err != nil {
		return frame, false, err
	}
	if c.pkt.L && c.pkt.SID > 0 {
		return frame, false, nil
	}
	// B marks the first packet of a layer frame (RFC 9628 §4.2).
	return append(frame, b...), c.pkt.B, nil
}

// Keyframe reads the start of the VP9 uncompressed header (VP9 bitstream
// specification §6.2): frame_marker 2, profile, show_existing_frame 0,
// frame_type 0 (key frame), show_frame, error_resilient_mode, then the
// frame sync code 0x49 0x83 0x42. It allocates nothing, unlike pion's full
// header parser, which Size uses.
func (c *vp9Codec) Keyframe(f []byte) bool {
	bit := func(i int) uint32 {
		if i/8 >= len(f) {
			return 1
		}
		return uint32(f[i/8]>>(7-i%8)) & 1
	}
	if len(f) == 0 || f[0]>>6 != 2 {
		return false
	}
	pos := 4 // after frame_marker and the two profile bits
	if f[0]>>4&3 == 3 {
		pos++ // profile 3 has a reserved bit
	}
	if bit(pos) != 0 || bit(pos+1) != 0 {
		return false
	}
	var sync uint32
	for i := pos + 4; i < pos+4+24; i++ {
		sync = sync<<1 | bit(i)
	}
	return sync == 0x498342
}

func (c *vp9Codec) Size(f []byte) (int, int) {
	if !c.Keyframe(f) || c.hdr.Unmarshal(f) != nil {
		return 0, 0
	}
	return int(c.hdr.Width()), int(c.hdr.Height())
}
