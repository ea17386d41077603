package media

import (
	"errors"
	"fmt"
	"strings"
)

// Codec is an audio codec the pipeline decodes.
type Codec int

// The codecs AudioPipeline decodes.
const (
	CodecUnknown Codec = iota
	CodecOpus          // Opus (RFC 6716, RTP payload RFC 7587)
	CodecPCMU          // G.711 µ-law (RFC 3551 §4.5.14)
	CodecPCMA          // G.711 A-law (RFC 3551 §4.5.14)
)

// ErrCodec is returned for a codec the pipeline cannot decode.
var ErrCodec = errors.New("media: unsupported codec")

// String returns the codec's name as in an SDP rtpmap ("opus", "PCMU", "PCMA").
func (c Codec) String() string {
	switch c {
	case CodecOpus:
		return "opus"
	case CodecPCMU:
		return "PCMU"
	case CodecPCMA:
		return "PCMA"
	}
	return fmt.Sprintf("Codec(%d)", int(c))
}

// ClockRate returns the codec's RTP clock rate: 48000 for Opus (RFC 7587 §4.1,
// whatever the audio bandwidth), 8000 for G.711.
func (c Codec) ClockRate() int {
	switch c {
	case CodecOpus:
		return 48000
	case CodecPCMU, CodecPCMA:
		return 8000
	}
	return 0
}

// CodecFromMime returns the codec for a MIME type such as "audio/opus" or a
// bare encoding name such as "PCMU", compared case-insensitively (GStreamer
// sends "audio/OPUS").
func CodecFromMime(mime string) (Codec, error) {
	name := mime
	if kind, sub, ok := strings.Cut(mime, "/"); ok {
		if !strings.EqualFold(kind, "audio") {
			return CodecUnknown, fmt.Errorf("%w: %q", ErrCodec, mime)
		}
		name = sub
	}
	for _, c := range []Codec{CodecOpus, CodecPCMU, CodecPCMA} {
		if strings.EqualFold(name, c.String()) {
			return c, nil
		}
	}
	return CodecUnknown, fmt.Errorf("%w: %q", ErrCodec, mime)
}
