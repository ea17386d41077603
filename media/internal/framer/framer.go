// Package framer assembles video frames from RTP packets for the video file
// writers (media/webmwriter, media/mp4writer). It follows sequence numbers
// (RFC 3550 §5.1, with 16-bit wrap-around), finds frame boundaries (a start
// reported by the codec's payload descriptor, the marker bit at the end),
// drops frames that lost a packet, waits for a keyframe at the start, after
// a loss and after an SSRC change, and asks for one through a callback (the
// caller sends a PLI).
package framer

import (
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/media/internal/rtptime"
)

// Codec depacketizes one codec's RTP payloads.
type Codec interface {
	// Depacketize appends the frame data carried by payload to frame and
	// reports whether payload can be the first packet of a frame (it is
	// only consulted for the first packet after a complete or dropped
	// frame). On error the packet is treated as lost.
	Depacketize(frame, payload []byte) (out []byte, start bool, err error)
	// Keyframe reports whether a complete frame can be decoded on its own.
	Keyframe(frame []byte) bool
}

// Frame is one complete frame.
type Frame struct {
	// Data is the frame as the codec assembled it. It aliases the Framer's
	// buffer and is valid until the next call to Push.
	Data      []byte
	Timestamp uint32 // RTP timestamp
	SSRC      uint32
	Keyframe  bool
	// Time is the frame's place on the track's timeline, in RTP clock
	// ticks: time zero is the first packet pushed (even if its frame was
	// dropped), so a track that starts before its first keyframe keeps its
	// start; gaps keep their length, and jumps beyond MaxGap and SSRC
	// changes continue without a gap (media/internal/rtptime).
	Time int64
}

// Stats counts what a Framer saw.
type Stats struct {
	Frames           uint64 // frames returned
	DroppedFrames    uint64 // incomplete frames and frames skipped while waiting for a keyframe
	Losses           uint64 // sequence number gaps
	KeyframeRequests uint64
}

// Framer turns the RTP packets of one video track into frames. It is owned
// by one goroutine (the track's reader). The zero value is not usable: set
// Codec and ClockRate.
type Framer struct {
	// Codec depacketizes the payloads.
	Codec Codec
	// ClockRate is the RTP clock rate (90000 for video, RFC 3551), used to
	// repeat an unanswered keyframe request once a second of RTP time.
	ClockRate uint32
	// OnKeyframeRequest, when set, is called (on the Push goroutine) when a
	// keyframe is needed: at the start, after a loss or an SSRC change, and
	// again every second while none has arrived.
	OnKeyframeRequest func()
	// MaxGap is the longest timestamp gap, in ticks, kept on the timeline.
	MaxGap uint32
	// Now is the wall clock that bridges longer jumps (rtptime.Timeline.Now).
	Now func() time.Time

	Stats Stats

	started  bool
	ssrc     uint32
	expected uint16 // next sequence number
	inFrame  bool   // buf holds the beginning of a frame
	broken   bool   // the frame in buf (or about to start) lost a packet
	ts       uint32 // RTP timestamp of the frame in buf
	buf      []byte
	needKey  bool
	reqTS    uint32 // RTP timestamp of the last keyframe request

	anchor rtp.Header // the first packet: time zero
	placed bool       // anchor placed on tl
	tl     rtptime.Timeline
}

// resync is the sequence distance beyond which a jump is taken as a restart
// of the sender's numbering rather than a loss or a late packet.
const resync = 3000

// Push takes one packet and returns a frame when the packet completes one
// that is whole and decodable.
func (f *Framer) Push(p *rtp.Packet) (Frame, bool) {
	switch d := int16(p.SequenceNumber - f.expected); {
	case !f.started || p.SSRC != f.ssrc:
		if !f.started {
			f.anchor = p.Header
		}
		f.started, f.ssrc = true, p.SSRC
		f.inFrame = false
		f.needKey = true
		f.request(p.Timestamp)
	case d < 0 && d > -resync:
		return Frame{}, false // duplicate or too late: its frame is gone
	case d != 0:
		f.Stats.Losses++
		f.broken = true
		if !f.needKey {
			f.needKey = true
			f.request(p.Timestamp)
		}
	}
	f.expected = p.SequenceNumber + 1

	if f.inFrame && p.Timestamp != f.ts {
		// A new timestamp without the previous frame's marker: that frame
		// lost its end.
		f.drop()
	}
	if !f.inFrame {
		f.buf = f.buf[:0]
		f.ts = p.Timestamp
	}
	out, start, err := f.Codec.Depacketize(f.buf, p.Payload)
	switch {
	case err != nil:
		f.broken = true
	case !f.inFrame && start:
		// Packets lost just before a frame's first packet belonged to an
		// earlier frame. Within a frame, start means nothing more (H.264
		// reports every NAL unit that may begin an access unit).
		f.broken = false
	case !f.inFrame:
		f.broken = true // the frame's first packet is missing
	}
	if err == nil {
		f.buf = out
	}
	f.inFrame = true

	if !p.Marker {
		return Frame{}, false
	}
	if f.broken {
		f.drop()
		return Frame{}, false
	}
	key := f.Codec.Keyframe(f.buf)
	if f.needKey && !key {
		f.drop()
		if p.Timestamp-f.reqTS >= f.ClockRate {
			f.request(p.Timestamp)
		}
		return Frame{}, false
	}
	f.inFrame = false
	if !f.placed {
		f.placed = true
		f.tl.MaxGap, f.tl.Rate, f.tl.Now = f.MaxGap, f.ClockRate, f.Now
		f.tl.Place(f.anchor.SSRC, f.anchor.Timestamp, 0)
	}
	if _, ok := f.tl.Place(f.ssrc, f.ts, 0); !ok {
		f.Stats.DroppedFrames++ // older than the previous frame
		return Frame{}, false
	}
	if key {
		f.needKey = false
	}
	f.Stats.Frames++
	return Frame{Data: f.buf, Timestamp: f.ts, SSRC: f.ssrc, Keyframe: key, Time: f.tl.Position()}, true
}

// drop discards the frame in progress.
func (f *Framer) drop() {
	f.Stats.DroppedFrames++
	f.inFrame, f.broken = false, false
	f.buf = f.buf[:0]
}

func (f *Framer) request(ts uint32) {
	f.reqTS = ts
	f.Stats.KeyframeRequests++
	if f.OnKeyframeRequest != nil {
		f.OnKeyframeRequest()
	}
}
