package conference

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// SRTPReplayWindow is the SRTP replay window every WebRTC adapter's
// connections use, in packets: how far behind the newest packet of its
// stream a packet may come and still be decrypted. Pion's default is 64
// packets (1.28 s of 20 ms audio): a packet reordered further (a span held
// by a stalled path while newer ones went on) was dropped as a replay,
// though it came well within the recording's latency budget and belongs in
// the track file and the mix. 4096 packets is 82 s of 20 ms audio (the
// budget is at most 60 s) and 16 s of a 2.5 Mbit/s video stream; the
// window costs 512 bytes per stream, and in srtp's detector a 64-word shift
// per packet (the WHIP endpoint's streams keep it as a ring of bits
// instead: whip/replay.go).
const SRTPReplayWindow = 4096

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
	ssrc   uint32         // remote's, read once: TrackRemote.SSRC takes its lock (0: read it each time)
	srs    *SenderReports // nil: none read
	push   *PushBuffer    // the buffer of remote's SRTP stream, if it pushes
	ended  atomic.Bool
	err    error // why pushing ended (the holder of push's busy state, then end)
	// arrivals looks up a packet's receive time (SetArrivals); nil: not known.
	arrivals Arrivals
	// leftAt is when the participant left (Leave; unix ns, 0: not yet);
	// done is closed once ReadRTP gave io.EOF after it.
	leftAt     atomic.Int64
	done       chan struct{}
	doneOnce   sync.Once
	doneTimer  atomic.Pointer[time.Timer] // closes done leaveMax after Leave
	quietTimer atomic.Pointer[time.Timer] // a pushed track's: ends it once quiet after Leave (endIfQuiet)

	// Reader goroutine only (a pushed track's: the holder of push's busy
	// state): the deadline SetReadDeadline gave, when the last packet was
	// read (unix ns), and how late the packets are read.
	deadline time.Time
	lastRead int64
	late     lateness
	// A pushed audio track whose buffer counts its packets (PushBuffer.
	// SetCount: no interceptor reads them) may read the packet being
	// handed over from the buffer itself (bare), past Pion's
	// TrackRemote.Read (its locks, select and interceptor chain: 6 % of the
	// recorder's CPU with its mix at N=200), once Pion has read one such
	// packet: the packets Pion peeked at to make the track are read, and
	// pt is the track's payload type. A packet of another payload type is
	// read through Pion (the track's codec changes, or the read fails, as
	// before). The pusher only.
	canBare, bare bool
	pt            uint8
}

// NewPionTrack returns the reader of remote; srs (may be nil) holds the
// sender reports of its receiver (see ReadSenderReports).
func NewPionTrack(remote *webrtc.TrackRemote, srs *SenderReports) *PionTrack {
	return &PionTrack{remote: remote, ssrc: uint32(remote.SSRC()), srs: srs, done: make(chan struct{}), late: lateness{clock: int64(max(remote.Codec().ClockRate, 1))}}
}

// NewPushedPionTrack is NewPionTrack for a track whose SRTP stream has the
// buffer push (see PushBuffers): it implements RTPPusher. A nil push
// gives NewPionTrack's reader.
func NewPushedPionTrack(remote *webrtc.TrackRemote, srs *SenderReports, push *PushBuffer) *PionTrack {
	t := NewPionTrack(remote, srs)
	t.push = push
	return t
}

// PushRTP implements RTPPusher: each packet of the SRTP stream is read
// through the track (remote.Read: the interceptors and the payload type
// check see it), or from its buffer when the track reads bare (see
// PionTrack.bare), as srtp's session goroutine decrypts it. A read that fails
// ends the track, as it ends ReadRTP's reader; after Leave, the track ends
// as ReadRTP's does (see leaveQuiet), and Done is closed once end returned.
func (t *PionTrack) PushRTP(buf []byte, each func(pkt []byte), end func(err error)) bool {
	if t.push == nil {
		return false
	}
	t.canBare = t.push.Counted() && t.remote.Kind() == webrtc.RTPCodecTypeAudio
	t.push.Push(func() bool {
		n, err := t.readPushed(buf)
		if err != nil {
			t.err = err
			return false
		}
		if t.received(buf[:n]) {
			t.ended.Store(true) // sent after the participant left: not its
			return false
		}
		each(buf[:n])
		return true
	}, func() {
		if t.err == nil || t.ended.Load() {
			t.err = io.EOF
		}
		end(t.err)
		t.closeDone()
	})
	return true
}

// readPushed reads the next packet of the pushed track into buf: the one
// being handed over from the buffer itself when the track reads bare (see
// PionTrack.bare), else through Pion's track.
func (t *PionTrack) readPushed(buf []byte) (int, error) {
	pt, handing := t.push.current()
	if handing && t.bare && pt == t.pt {
		return t.push.Read(buf)
	}
	n, _, err := t.remote.Read(buf)
	if _, still := t.push.current(); err == nil && t.canBare && handing && !still {
		t.bare, t.pt = true, uint8(t.remote.PayloadType()) // Pion read the packet handed over: nothing peeked is left
	}
	return n, err
}

// Between implements RTPPusher.
func (t *PionTrack) Between(fn func()) bool {
	return t.push != nil && t.push.Between(fn)
}

// Leaving a track. When its participant leaves (a WHIP DELETE), what the
// recorder received before, and has not read yet, is still the
// participant's: a recorder short of CPU reads its sockets seconds behind.
// So after Leave the track's reader reads on, and ReadRTP gives io.EOF once
// it reads a packet its sender sent more than leaveMargin after the leave
// (by the sender's RTCP report: a publisher that goes on sending after its
// DELETE; a reader that is behind reads the packets it sent before the
// leave, however late), or
// no packet came for leaveQuiet (a round trip and jitter) plus how late the
// last one was read (a reader that far behind may find nothing for as long
// while what waits for it is on its way up), and at the latest leaveMax
// after Leave. The adapter closes the connection after that
// (Done), not at once. A track read by PushRTP ends the same way: a timer
// (endIfQuiet) ends it once quiet, between two packets.
const (
	leaveQuiet = 300 * time.Millisecond
	leaveMax   = 10 * time.Second // twice the default latency budget, as a stop's drain
	// leaveMargin is how long after the leave a packet must have been sent,
	// by its sender's report, to end the track: the report maps RTP time to
	// the sender's clock only as well as the sender kept its schedule when
	// it made it (tens of ms on a busy machine), and the DELETE comes a
	// little after the last packet.
	leaveMargin = time.Second
)

// ReadRTP implements RTPReader. It reads into buf without allocating (unlike
// TrackRemote.ReadRTP) and gives io.EOF once End was called, or once the
// packets received before Leave are read; ErrReadTimeout when a deadline
// given to SetReadDeadline passed.
func (t *PionTrack) ReadRTP(buf []byte) (int, error) {
	for {
		if t.ended.Load() {
			return 0, io.EOF
		}
		left := t.leftAt.Load()
		if left != 0 {
			until := t.leaveEnd(left)
			if !time.Now().Before(until) {
				t.closeDone()
				return 0, io.EOF
			}
			if !t.deadline.IsZero() && t.deadline.Before(until) {
				until = t.deadline
			}
			_ = t.remote.SetReadDeadline(until)
		}
		n, _, err := t.remote.Read(buf)
		if t.ended.Load() {
			return 0, io.EOF
		}
		var ne net.Error
		if errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
			// Pion's packet buffer: a net.Error that timed out. Leave's
			// wake-up, or its quiet time passed: look again.
			if t.leftAt.Load() != 0 && (t.deadline.IsZero() || time.Now().Before(t.deadline)) {
				continue
			}
			return 0, ErrReadTimeout
		}
		if err == nil && t.received(buf[:n]) {
			t.closeDone()
			return 0, io.EOF // sent after the participant left: not its
		}
		return n, err
	}
}

// received notes that the packet pkt was read now, and reports whether its
// sender sent it after its participant left (sentAfter): the track ends
// before it. The reader goroutine (or the pusher's).
func (t *PionTrack) received(pkt []byte) (afterLeave bool) {
	if len(pkt) < 12 {
		return false
	}
	now := time.Now().UnixNano()
	t.lastRead = now
	ts := binary.BigEndian.Uint32(pkt[4:8])
	t.late.observe(ts, now)
	left := t.leftAt.Load()
	return left != 0 && t.sentAfter(ts, left)
}

// sentAfter reports whether the sender sent the packet with timestamp ts
// leaveMargin or more after left (unix ns), by its latest RTCP sender report;
// false without one. A sender whose wall clock is ahead of ours (the report's time later
// than its arrival) is taken back by as much: its packets from before the
// leave are never judged after it.
func (t *PionTrack) sentAfter(ts uint32, left int64) bool {
	if t.srs == nil {
		return false
	}
	sr, ok := t.srs.Latest(t.ssrcOf())
	if !ok {
		return false
	}
	sent := sr.NTP.UnixNano() + t.late.ns(int64(int32(ts-sr.RTPTime))) - max(sr.NTP.Sub(sr.Arrived).Nanoseconds(), 0)
	return sent >= left+int64(leaveMargin)
}

// leaveEnd returns when ReadRTP ends the track that left at left (unix ns):
// leaveQuiet and how late the last packet was read after the later of the
// last packet and the leave, and leaveMax after the leave at the latest.
func (t *PionTrack) leaveEnd(left int64) time.Time {
	quiet := int64(leaveQuiet) + t.late.behind
	return time.Unix(0, min(max(t.lastRead, left)+quiet, left+int64(leaveMax)))
}

// SetArrivals gives the track where its packets' receive times are kept (see
// ArrivalReader and DropReader; nil: none). Call it before the track is
// handed over.
func (t *PionTrack) SetArrivals(arrivals Arrivals) {
	t.arrivals = arrivals
}

// Arrival implements ArrivalReader.
func (t *PionTrack) Arrival(ssrc uint32, seq uint16) (time.Time, bool) {
	if t.arrivals == nil {
		return time.Time{}, false
	}
	return t.arrivals.Arrival(ssrc, seq)
}

// DroppedBetween implements DropReader.
func (t *PionTrack) DroppedBetween(ssrc uint32, a, b uint16) (int, bool) {
	if t.arrivals == nil {
		return 0, false
	}
	return t.arrivals.DroppedBetween(ssrc, a, b)
}

// SetReadDeadline implements DeadlineReader. A deadline set after End (it
// replaces End's, which wakes the reader) delays the end to it at most:
// ReadRTP checks End's flag before and after each read.
func (t *PionTrack) SetReadDeadline(d time.Time) error {
	t.deadline = d
	if t.ended.Load() {
		return nil
	}
	err := t.remote.SetReadDeadline(d)
	if t.leftAt.Load() != 0 {
		_ = t.remote.SetReadDeadline(time.Now()) // Leave's wake-up, which d may have replaced
	}
	return err
}

// End makes ReadRTP return io.EOF from now on, waking a blocked reader,
// and ends the pushing, if PushRTP pushes. After Leave, it closes Done
// (a pushed track's once PushRTP's end returned).
func (t *PionTrack) End() {
	t.ended.Store(true)
	if t.push != nil {
		t.push.Stop()
	}
	_ = t.remote.SetReadDeadline(time.Now())
	if t.push == nil && t.leftAt.Load() != 0 {
		t.closeDone()
	}
}

// Leave tells the track that its participant left: ReadRTP returns the
// packets received before, then io.EOF (see leaveQuiet), and Done is closed;
// PushRTP pushes them, then ends. Safe from any goroutine; idempotent.
func (t *PionTrack) Leave() {
	if !t.leftAt.CompareAndSwap(0, time.Now().UnixNano()) {
		return
	}
	t.doneTimer.Store(time.AfterFunc(leaveMax, t.closeDone))
	if t.push != nil {
		// Not the read deadline: a pushed packet that waits in the
		// buffer is read through it, and a passed deadline fails that read.
		tm := time.AfterFunc(time.Hour, t.endIfQuiet)
		tm.Stop()
		t.quietTimer.Store(tm) // before it can run
		tm.Reset(leaveQuiet)
		return
	}
	_ = t.remote.SetReadDeadline(time.Now()) // wakes a blocked reader, which sets its own
}

// LeftAt is when the participant left (Leave), zero while it has not. The
// track's media ends there: its reader reads on after it only for what
// arrived before.
func (t *PionTrack) LeftAt() time.Time {
	if ns := t.leftAt.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// endIfQuiet ends a pushed track that left once ReadRTP would (leaveEnd),
// or sets its timer again for then. It looks between two packets
// (PushBuffer.Between: the pusher's lastRead and lateness are its own
// then); while one is handed over (or the pushing has not started), it
// looks again leaveQuiet later, and ends the track leaveMax after the leave
// in any case. The timer's goroutine.
func (t *PionTrack) endIfQuiet() {
	left := t.leftAt.Load()
	var wait time.Duration
	looked := t.push.Between(func() {
		if wait = time.Until(t.leaveEnd(left)); wait <= 0 {
			t.End()
		}
	})
	switch {
	case looked && wait <= 0, t.push.Stopped():
		return
	case !looked && time.Now().UnixNano() >= left+int64(leaveMax):
		t.End()
		return
	case !looked:
		wait = leaveQuiet
	}
	t.quietTimer.Load().Reset(wait)
}

// closeDone closes Done, once, and stops its timer (which would keep the
// track, and through it the connection, reachable until it fires).
func (t *PionTrack) closeDone() {
	t.doneOnce.Do(func() {
		close(t.done)
		if tm := t.doneTimer.Load(); tm != nil {
			tm.Stop()
		}
		if tm := t.quietTimer.Load(); tm != nil {
			tm.Stop()
		}
	})
}

// Done is closed once ReadRTP gave io.EOF after Leave (the track's reader
// has read what was received before its participant left), or PushRTP's
// end returned, or leaveMax after Leave at the latest (a reader that
// stopped reading).
func (t *PionTrack) Done() <-chan struct{} { return t.done }

// lateness tells how late a track's packets are read: how much later than
// the least late one of the last 5 to 10 s (its arrival less its RTP time:
// network delay and a busy reader only add to it). A timestamp step of more
// than maxStep, either way, starts anew (a new timeline). Reader goroutine.
type lateness struct {
	clock    int64 // RTP clock rate
	have     bool
	last     uint32
	ext      int64 // last, unwrapped
	window   int64 // when the current window began (unix ns)
	cur, old int64 // least offsets (ns) of the current and the previous window
	behind   int64 // how late (ns) the last packet was read
}

// maxStep is the longest RTP timestamp step that continues a timeline.
const maxStep = 5 * time.Second

// observe takes a packet with timestamp ts read at now (unix ns).
func (l *lateness) observe(ts uint32, now int64) {
	step := int64(int32(ts - l.last))
	if !l.have || step > int64(maxStep.Seconds())*l.clock || -step > int64(maxStep.Seconds())*l.clock {
		l.have, l.ext, l.last = true, int64(ts), ts
		l.window, l.cur, l.old = now, now-l.ns(l.ext), now-l.ns(l.ext)
		l.behind = 0
		return
	}
	l.ext += step
	l.last = ts
	off := now - l.ns(l.ext)
	if now-l.window >= int64(5*time.Second) {
		l.window, l.old, l.cur = now, l.cur, off
	}
	l.cur = min(l.cur, off)
	l.behind = off - min(l.cur, l.old)
}

// ns converts RTP ticks to nanoseconds without overflow.
func (l *lateness) ns(ticks int64) int64 {
	return ticks/l.clock*int64(time.Second) + ticks%l.clock*int64(time.Second)/l.clock
}

// ssrcOf returns the track's SSRC, without a lock once known (the mix
// pipeline looks its sender report up at every packet).
func (t *PionTrack) ssrcOf() uint32 {
	if t.ssrc != 0 {
		return t.ssrc
	}
	return uint32(t.remote.SSRC())
}

// SenderReport returns the latest sender report of the track's SSRC; see
// Track.SenderReport.
func (t *PionTrack) SenderReport() (SenderReport, bool) {
	return t.srs.Latest(t.ssrcOf())
}

// Fill sets ct's Reader and SenderReport to t, and for video its
// RequestKeyframe to a PLI sent on pc (see PLI).
func (t *PionTrack) Fill(ct *Track, pc *webrtc.PeerConnection, senderSSRC uint32) {
	ct.Reader = t
	if t.srs != nil {
		ct.SenderReport = t.SenderReport
	}
	if ct.Kind == KindVideo {
		ct.RequestKeyframe = PLI(pc, senderSSRC, t.ssrcOf())
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
	_ DropReader     = (*PionTrack)(nil)
)
