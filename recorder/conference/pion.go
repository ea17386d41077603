package conference

import "github.com/pion/webrtc/v4"

// CodecOf describes a codec negotiated by Pion, as every WebRTC adapter
// (whip, janus, whep) reports it to the Session.
func CodecOf(c webrtc.RTPCodecParameters) Codec {
	return Codec{
		MimeType:    c.MimeType,
		ClockRate:   c.ClockRate,
		Channels:    c.Channels,
		SDPFmtpLine: c.SDPFmtpLine,
		PayloadType: uint8(c.PayloadType),
	}
}
