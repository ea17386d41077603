package mp4writer

import (
	"bytes"
	"encoding/binary"
	"errors"
)

// NAL unit types (ITU-T H.264 Table 7-1) and RTP packet types (RFC 6184 §5.2).
const (
	nalSlice    = 1
	nalIDR      = 5
	nalSEI      = 6
	nalSPS      = 7
	nalPPS      = 8
	nalAUD      = 9
	nalFiller   = 12
	nalSTAPA    = 24
	nalFUA      = 28
	maxNALTypes = 23 // 1–23 travel as single NAL unit packets
)

var errPayload = errors.New("mp4writer: malformed or unsupported H.264 RTP payload")

// h264Codec depacketizes H.264 (RFC 6184, non-interleaved mode: single NAL
// unit packets, STAP-A, FU-A) into an access unit in AVC format (each NAL
// unit prefixed by its 4-byte big-endian length, ISO/IEC 14496-15), and
// remembers the latest SPS and PPS it has seen. It allocates only when a
// parameter set changes.
type h264Codec struct {
	fuStart  int // offset in the frame of the FU-A NAL unit being assembled, -1 if none
	sps, pps []byte
}

// Depacketize appends the NAL units of payload to frame. A packet "starts" a
// frame when its first NAL unit can begin an access unit (§7.4.1.2.3): an
// AUD, SEI, SPS or PPS, or the first slice of a picture (first_mb_in_slice 0,
// a leading 1 bit of the slice header's ue(v)).
func (c *h264Codec) Depacketize(frame, p []byte) ([]byte, bool, error) {
	if len(frame) == 0 {
		c.fuStart = -1
	}
	if len(p) < 2 {
		return frame, false, errPayload
	}
	switch typ := p[0] & 0x1F; {
	case typ >= 1 && typ <= maxNALTypes:
		c.fuStart = -1
		return appendNAL(frame, p), startsAU(p), nil
	case typ == nalSTAPA:
		// STAP-A (RFC 6184 §5.7.1): 16-bit size, NAL unit, repeated.
		c.fuStart = -1
		start := false
		for i, rest := 0, p[1:]; len(rest) > 0; i++ {
			if len(rest) < 2 {
				return frame, false, errPayload
			}
			n := int(binary.BigEndian.Uint16(rest))
			if n == 0 || len(rest) < 2+n {
				return frame, false, errPayload
			}
			if i == 0 {
				start = startsAU(rest[2 : 2+n])
			}
			frame = appendNAL(frame, rest[2:2+n])
			rest = rest[2+n:]
		}
		return frame, start, nil
	case typ == nalFUA:
		// FU-A (RFC 6184 §5.8): FU indicator (F, NRI, 28), FU header (S, E,
		// R, type), fragment. The NAL header is F|NRI|type.
		if len(p) < 3 {
			return frame, false, errPayload
		}
		s, e := p[1]&0x80 != 0, p[1]&0x40 != 0
		start := false
		if s {
			c.fuStart = len(frame)
			hdr := p[0]&0xE0 | p[1]&0x1F
			frame = append(frame, 0, 0, 0, 0, hdr)
			start = startsAU([]byte{hdr, p[2]})
		} else if c.fuStart < 0 {
			return frame, false, errPayload // its start was lost
		}
		frame = append(frame, p[2:]...)
		if e {
			binary.BigEndian.PutUint32(frame[c.fuStart:], uint32(len(frame)-c.fuStart-4))
			c.fuStart = -1
		}
		return frame, start, nil
	}
	return frame, false, errPayload
}

func appendNAL(frame, nal []byte) []byte {
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(nal)))
	return append(frame, nal...)
}

// startsAU reports whether the NAL unit nal can be the first of an access unit.
func startsAU(nal []byte) bool {
	switch nal[0] & 0x1F {
	case nalAUD, nalSEI, nalSPS, nalPPS:
		return true
	case nalSlice, nalIDR:
		return len(nal) > 1 && nal[1]&0x80 != 0
	}
	return false
}

// nals calls fn for each NAL unit of an AVC-format access unit, stopping
// early when fn returns false or at a malformed length.
func nals(au []byte, fn func(nal []byte) bool) {
	for len(au) >= 4 {
		n := binary.BigEndian.Uint32(au)
		if n == 0 || uint64(n) > uint64(len(au)-4) {
			return
		}
		if !fn(au[4 : 4+n]) {
			return
		}
		au = au[4+n:]
	}
}

// Keyframe reports whether an access unit holds an IDR picture and the
// parameter sets to decode it are known (from this access unit or an
// earlier one). An incomplete FU-A leaves an unpatched zero length, which
// makes the access unit malformed and not a keyframe.
func (c *h264Codec) Keyframe(au []byte) bool {
	idr := false
	nals(au, func(nal []byte) bool {
		switch nal[0] & 0x1F {
		case nalIDR:
			idr = true
		case nalSPS:
			if !bytes.Equal(c.sps, nal) {
				c.sps = append(c.sps[:0], nal...)
			}
		case nalPPS:
			if !bytes.Equal(c.pps, nal) {
				c.pps = append(c.pps[:0], nal...)
			}
		}
		return true
	})
	return idr && len(c.sps) > 0 && len(c.pps) > 0
}

// appendSample appends the NAL units of an access unit that belong in an
// 'avc1' sample: the parameter sets are dropped when they are those of the
// avcC box (sps, pps), as are access unit delimiters and filler data. When
// the access unit carries a parameter set that differs (a sender that
// changed resolution), all its parameter sets stay in the sample, where
// decoders pick them up (a new SPS invalidates the PPSs that refer to it).
func appendSample(dst, au, sps, pps []byte) []byte {
	same := true
	nals(au, func(nal []byte) bool {
		switch nal[0] & 0x1F {
		case nalSPS:
			same = bytes.Equal(nal, sps)
		case nalPPS:
			same = bytes.Equal(nal, pps)
		}
		return same
	})
	nals(au, func(nal []byte) bool {
		switch nal[0] & 0x1F {
		case nalAUD, nalFiller:
		case nalSPS, nalPPS:
			if !same {
				dst = appendNAL(dst, nal)
			}
		default:
			dst = appendNAL(dst, nal)
		}
		return true
	})
	return dst
}
