package whip

import (
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
)

// rrInterval is how often a receiver report is sent for each video stream
// that receives packets (as Pion's report interceptor does, and libwebrtc's
// receivers for video); rrAudioInterval, for each audio stream, as
// libwebrtc's receivers send them for audio (its RTCPSender's default
// report interval: 5 s for audio, 1 s for video), so that a browser's audio
// sender hears from the recorder as from a browser. Each report is an SRTCP
// packet sent (0.07 of the 0.13 s of samples the reports took in the quiet
// profile of session 18 at N=200: 1.2 % of the recorder's CPU with its mix).
const (
	rrInterval      = time.Second
	rrAudioInterval = 5 * time.Second
)

// rrInterceptor is the WHIP endpoint's RTCP receiver-report interceptor
// for one PeerConnection (RFC 3550 §6.4.2: loss, highest sequence number,
// jitter, LSR/DLSR), which senders use for loss-based rate control. Pion's
// (interceptor/pkg/report) parses every packet's header into an allocated
// rtp.Header in a new attribute map, takes a lock per packet and runs a
// goroutine with a ticker per connection: about a sixth of a `mix: none`
// recorder's CPU. This one reads the sequence number and timestamp from the
// packet's bytes as its stream's buffer returns it to the reader
// (conference.PushBuffer.SetCount: the buffers the connection's
// BufferFactory makes, replayBuffers), so that no interceptor reads the
// stream through Pion's track; it sends each report from there when one is
// due (a stream that stops sending gets none, as it has nothing to learn),
// and takes no lock and allocates nothing per packet: one report
// allocates, once a second (video) or every 5 s (audio: rrAudioInterval).
// A sender report (a second goroutine, the RTCP reader's) reaches the
// stream through an atomic pointer. Each
// PeerConnection has its own (ReceiveAPI.NewPeerConnection): its buffers
// count into it.
type rrInterceptor struct {
	interceptor.NoOp
	writer  atomic.Pointer[interceptor.RTCPWriter]
	streams sync.Map // SSRC → *rrStream
}

// rrFactory gives a PeerConnection's interceptor registry its rrInterceptor.
type rrFactory struct{ rr *rrInterceptor }

// NewInterceptor implements interceptor.Factory.
func (f rrFactory) NewInterceptor(string) (interceptor.Interceptor, error) { return f.rr, nil }

// BindRTCPWriter keeps the connection's RTCP writer for the reports.
func (r *rrInterceptor) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	r.writer.Store(&w)
	return w
}

// BindRemoteStream makes the stream's statistics; its buffer counts the
// packets (counter), not the reader, which is returned as it is.
func (r *rrInterceptor) BindRemoteStream(info *interceptor.StreamInfo, reader interceptor.RTPReader) interceptor.RTPReader {
	every := rrInterval
	if strings.HasPrefix(strings.ToLower(info.MimeType), "audio/") {
		every = rrAudioInterval
	}
	r.streams.Store(info.SSRC, &rrStream{ssrc: info.SSRC, clockRate: info.ClockRate, reporter: rand.Uint32(), every: every})
	return reader
}

// counter returns the count of the stream of ssrc (PushBuffer.SetCount):
// each packet read counts in its statistics, and sends a report when one is
// due. Until Pion binds the stream (BindRemoteStream, before its first
// packet is read) a packet counts nowhere.
func (r *rrInterceptor) counter(ssrc uint32) func(pkt []byte) {
	var s *rrStream
	return func(b []byte) {
		if len(b) < 12 {
			return
		}
		if s == nil {
			v, ok := r.streams.Load(ssrc)
			if !ok {
				return
			}
			s = v.(*rrStream)
		}
		now := time.Now()
		s.packet(binary.BigEndian.Uint16(b[2:4]), binary.BigEndian.Uint32(b[4:8]), now)
		if now.Sub(s.lastReport) >= s.every {
			s.lastReport = now
			if w := r.writer.Load(); w != nil {
				_, _ = (*w).Write([]rtcp.Packet{s.report(now)}, nil)
			}
		}
	}
}

// UnbindRemoteStream forgets the stream.
func (r *rrInterceptor) UnbindRemoteStream(info *interceptor.StreamInfo) {
	r.streams.Delete(info.SSRC)
}

// BindRTCPReader notes the arrival of every sender report (for the LSR and
// DLSR of the next receiver report).
func (r *rrInterceptor) BindRTCPReader(reader interceptor.RTCPReader) interceptor.RTCPReader {
	return interceptor.RTCPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := reader.Read(b, a)
		if err == nil {
			r.senderReports(b[:n], time.Now())
		}
		return n, a, err
	})
}

// senderReports walks a compound RTCP packet for sender reports (RFC 3550
// §6.4.1: packet type 200, the sender's SSRC at byte 4, its NTP time at 8).
func (r *rrInterceptor) senderReports(b []byte, now time.Time) {
	for len(b) >= 4 {
		size := (int(binary.BigEndian.Uint16(b[2:4])) + 1) * 4
		if size > len(b) {
			return
		}
		if b[1] == 200 && size >= 16 {
			if v, ok := r.streams.Load(binary.BigEndian.Uint32(b[4:8])); ok {
				ntp := binary.BigEndian.Uint64(b[8:16])
				v.(*rrStream).sr.Store(&lastSR{lsr: uint32(ntp >> 16), at: now})
			}
		}
		b = b[size:]
	}
}

// rrStream is the reception statistics of one stream (RFC 3550 A.3, A.8),
// written by its reader goroutine only.
type rrStream struct {
	ssrc, clockRate, reporter uint32
	every                     time.Duration // how often a report is sent
	started                   bool
	start                     time.Time // the first packet's arrival
	baseSeq                   uint32    // the first sequence number
	maxSeq                    uint16
	cycles                    uint32 // sequence number wraps, << 16
	received                  uint32
	expectedPrior             uint32 // at the last report
	receivedPrior             uint32
	transit                   uint32  // the last packet's relative transit time, in timestamp units
	jitter                    float64 // in timestamp units
	lastReport                time.Time
	sr                        atomic.Pointer[lastSR]
}

// lastSR is the last sender report of a stream: the middle 32 bits of its
// NTP time, and when it arrived.
type lastSR struct {
	lsr uint32
	at  time.Time
}

// packet counts one packet of sequence number seq and timestamp ts that
// arrived at now.
func (s *rrStream) packet(seq uint16, ts uint32, now time.Time) {
	if !s.started {
		s.started, s.start, s.lastReport = true, now, now
		s.baseSeq, s.maxSeq, s.received = uint32(seq), seq, 1
		s.transit = 0 - ts // arrival 0
		return
	}
	arrival := uint32(int64(now.Sub(s.start)/time.Microsecond) * int64(s.clockRate) / 1e6)
	s.received++
	if d := seq - s.maxSeq; d != 0 && d < 0x8000 { // later than the highest (else late or a duplicate)
		if seq < s.maxSeq {
			s.cycles += 1 << 16
		}
		s.maxSeq = seq
	}
	transit := arrival - ts
	d := int32(transit - s.transit)
	s.transit = transit
	if d < 0 {
		d = -d
	}
	s.jitter += (float64(d) - s.jitter) / 16
}

// report is the stream's reception report at now, and starts the next
// interval.
func (s *rrStream) report(now time.Time) *rtcp.ReceiverReport {
	extended := s.cycles + uint32(s.maxSeq)
	expected := extended - s.baseSeq + 1
	lost := int64(expected) - int64(s.received)
	lostInterval := int64(expected-s.expectedPrior) - int64(s.received-s.receivedPrior)
	var fraction uint8
	if e := int64(expected - s.expectedPrior); e > 0 && lostInterval > 0 {
		fraction = uint8(min(255, lostInterval<<8/e))
	}
	s.expectedPrior, s.receivedPrior = expected, s.received
	rr := rtcp.ReceptionReport{
		SSRC: s.ssrc, FractionLost: fraction, TotalLost: uint32(min(max(lost, 0), 0x7fffff)),
		LastSequenceNumber: extended, Jitter: uint32(s.jitter),
	}
	if sr := s.sr.Load(); sr != nil {
		rr.LastSenderReport = sr.lsr
		rr.Delay = uint32(now.Sub(sr.at).Seconds() * 65536)
	}
	return &rtcp.ReceiverReport{SSRC: s.reporter, Reports: []rtcp.ReceptionReport{rr}}
}
