package conference

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

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

// PionTrack reads a Pion remote track for a Sink: the RTP reader every WebRTC
// adapter (whip, janus, whep) hands over as Track.Reader, and the sender
// reports of its receiver as Track.SenderReport.
type PionTrack struct {
	remote *webrtc.TrackRemote
	srs    *SenderReports // nil: none read
	push   *PushBuffer    // the buffer of remote's SRTP stream, if it pushes
	ended  atomic.Bool
	err    error // why pushing ended (the holder of push's busy state, then end)
}

// NewPionTrack returns the reader of remote; srs (may be nil) holds the
// sender reports of its receiver (see ReadSenderReports).
func NewPionTrack(remote *webrtc.TrackRemote, srs *SenderReports) *PionTrack {
	return &PionTrack{remote: remote, srs: srs}
}

// NewPushedPionTrack is NewPionTrack for a track whose SRTP stream has the
// buffer push (see PushBuffers): it implements RTPPusher. A nil push
// gives NewPionTrack's reader.
func NewPushedPionTrack(remote *webrtc.TrackRemote, srs *SenderReports, push *PushBuffer) *PionTrack {
	return &PionTrack{remote: remote, srs: srs, push: push}
}

// PushRTP implements RTPPusher: each packet of the SRTP stream is read
// through the track (remote.Read: the interceptors and the payload type
// check see it) as srtp's session goroutine decrypts it. A read that fails
// ends the track, as it ends ReadRTP's reader.
func (t *PionTrack) PushRTP(buf []byte, each func(pkt []byte), end func(err error)) bool {
	if t.push == nil {
		return false
	}
	t.push.Push(func() bool {
		n, _, err := t.remote.Read(buf)
		if err != nil {
			t.err = err
			return false
		}
		each(buf[:n])
		return true
	}, func() {
		if t.err == nil || t.ended.Load() {
			t.err = io.EOF
		}
		end(t.err)
	})
	return true
}

// Between implements RTPPusher.
func (t *PionTrack) Between(fn func()) bool {
	return t.push != nil && t.push.Between(fn)
}

// ReadRTP implements RTPReader. It reads into buf without allocating (unlike
// TrackRemote.ReadRTP) and gives io.EOF once End was called, ErrReadTimeout
// when a deadline given to SetReadDeadline passed.
func (t *PionTrack) ReadRTP(buf []byte) (int, error) {
	if t.ended.Load() {
		return 0, io.EOF
	}
	n, _, err := t.remote.Read(buf)
	if t.ended.Load() {
		return 0, io.EOF
	}
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return 0, ErrReadTimeout // Pion's packet buffer: a net.Error that timed out
	}
	return n, err
}

// SetReadDeadline implements DeadlineReader. A deadline set after End (it
// replaces End's, which wakes the reader) delays the end to it at most:
// ReadRTP checks End's flag before and after each read.
func (t *PionTrack) SetReadDeadline(d time.Time) error {
	if t.ended.Load() {
		return nil
	}
	return t.remote.SetReadDeadline(d)
}

// End makes ReadRTP return io.EOF from now on, waking a blocked reader,
// and ends the pushing, if PushRTP pushes.
func (t *PionTrack) End() {
	t.ended.Store(true)
	if t.push != nil {
		t.push.Stop()
	}
	_ = t.remote.SetReadDeadline(time.Now())
}

// SenderReport returns the latest sender report of the track's SSRC; see
// Track.SenderReport.
func (t *PionTrack) SenderReport() (SenderReport, bool) {
	return t.srs.Latest(uint32(t.remote.SSRC()))
}

// Fill sets ct's Reader and SenderReport to t, and for video its
// RequestKeyframe to a PLI sent on pc (see PLI).
func (t *PionTrack) Fill(ct *Track, pc *webrtc.PeerConnection, senderSSRC uint32) {
	ct.Reader = t
	if t.srs != nil {
		ct.SenderReport = t.SenderReport
	}
	if ct.Kind == KindVideo {
		ct.RequestKeyframe = PLI(pc, senderSSRC, uint32(t.remote.SSRC()))
	}
}

// REMB returns a sender of the RTCP Receiver Estimated Maximum Bitrate
// (draft-alvestrand-rmcat-remb) for the video of mediaSSRC, on pc: bitrate()
// bits per second, read at each send. It sends at most once a second; call
// it as often as is convenient (once at once, then on each RTCP packet that
// arrives, as the sender's reports come about once a second). Not safe for
// concurrent use.
func REMB(pc *webrtc.PeerConnection, bitrate func() uint64, mediaSSRC uint32) func() {
	var last time.Time
	return func() {
		if now := time.Now(); now.Sub(last) >= time.Second {
			last = now
			_ = pc.WriteRTCP([]rtcp.Packet{&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: float32(bitrate()), SSRCs: []uint32{mediaSSRC}}})
		}
	}
}

// PLI returns a keyframe request for the video of mediaSSRC: an RTCP Picture
// Loss Indication (RFC 4585 §6.3.1) from senderSSRC, sent on pc. Platforms
// differ in the sender SSRC they need (see each adapter).
func PLI(pc *webrtc.PeerConnection, senderSSRC, mediaSSRC uint32) func() error {
	return func() error {
		return pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{SenderSSRC: senderSSRC, MediaSSRC: mediaSSRC}})
	}
}

// SenderReports keeps the latest RTCP sender report (RFC 3550 §6.4.1) that
// arrived on one Pion receiver. The zero of a nil *SenderReports has none.
type SenderReports struct {
	last atomic.Pointer[SenderReport]
}

// ReadSenderReports reads recv's RTCP on a goroutine of its own until the
// receiver stops (the connection closed) and keeps the latest sender report.
// Read once per receiver: a second reader would take half of its packets.
func ReadSenderReports(recv *webrtc.RTPReceiver) *SenderReports {
	return ReadSenderReportsWith(recv, nil)
}

// ReadSenderReportsWith is ReadSenderReports that also calls each (when not
// nil) on the reading goroutine after every RTCP packet that arrives. A
// packet that does not parse is skipped: only the receiver's end ends the
// reading.
func ReadSenderReportsWith(recv *webrtc.RTPReceiver, each func()) *SenderReports {
	s := &SenderReports{}
	if recv == nil {
		return s
	}
	go func() {
		buf := make([]byte, 1500)
		for s.readOne(recv, buf, each) {
		}
	}()
	return s
}

// PushSenderReports is ReadSenderReportsWith for a receiver whose SRTCP
// stream has the buffer push (see PushBuffers): each RTCP packet is read on
// the goroutine that decrypts it (srtp's SRTCP session goroutine), and no
// goroutine waits for them. A nil push: ReadSenderReportsWith.
func PushSenderReports(recv *webrtc.RTPReceiver, push *PushBuffer, each func()) *SenderReports {
	if push == nil || recv == nil {
		return ReadSenderReportsWith(recv, each)
	}
	s := &SenderReports{}
	buf := make([]byte, 1500)
	push.Push(func() bool { return s.readOne(recv, buf, each) }, func() {})
	return s
}

// readOne reads one RTCP packet of recv into buf, calls each (when not
// nil) and keeps the packet's sender reports; it reports false when the
// receiver stopped. A packet that an interceptor cannot parse is skipped.
func (s *SenderReports) readOne(recv *webrtc.RTPReceiver, buf []byte, each func()) bool {
	n, _, err := recv.Read(buf)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) {
		return false
	}
	if each != nil {
		each()
	}
	if err == nil {
		s.record(buf[:n], time.Now())
	}
	return true
}

// record keeps the sender reports among the RTCP packets b. A packet that
// does not parse is skipped (RFC 3550 §6.4.2 lets a report carry extensions
// that pion/srtp passes on with a wrong length).
func (s *SenderReports) record(b []byte, arrived time.Time) {
	pkts, err := rtcp.Unmarshal(b) // about one a second: allocating is fine here
	if err != nil {
		return
	}
	for _, p := range pkts {
		if sr, ok := p.(*rtcp.SenderReport); ok {
			s.last.Store(&SenderReport{SSRC: sr.SSRC, NTP: NTPTime(sr.NTPTime), RTPTime: sr.RTPTime, Arrived: arrived})
		}
	}
}

// Latest returns the latest sender report of ssrc.
func (s *SenderReports) Latest(ssrc uint32) (SenderReport, bool) {
	if s == nil {
		return SenderReport{}, false
	}
	if sr := s.last.Load(); sr != nil && sr.SSRC == ssrc {
		return *sr, true
	}
	return SenderReport{}, false
}

// NTPTime converts a 64-bit NTP timestamp (RFC 5905: seconds since 1900 and a
// binary fraction) to a time.
func NTPTime(ntp uint64) time.Time {
	const unixFrom1900 = 2208988800
	secs := int64(ntp>>32) - unixFrom1900
	frac := (ntp & 0xFFFFFFFF) * uint64(time.Second) >> 32
	return time.Unix(secs, int64(frac)).UTC()
}

// Interface guards.
var (
	_ DeadlineReader = (*PionTrack)(nil)
	_ RTPPusher      = (*PionTrack)(nil)
)
