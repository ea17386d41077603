// Package rtptime places RTP packets on a file's media timeline by their RTP
// timestamps (RFC 3550 §5.1), so that the file's duration equals RTP time:
// gaps (loss, DTX, a caller that stopped writing during a pause) stay gaps,
// duplicates and late packets are dropped, and a timestamp jump or a new SSRC
// re-anchors the timeline instead of inserting minutes of silence.
//
// With a wall clock (Timeline.Now) a jump is bridged by the wall-clock time
// that passed instead: a pause longer than MaxGap, during which the caller
// wrote nothing, keeps its length even if the sender's timestamps jumped or
// its SSRC changed. A forward jump within MaxGap of the wall-clock time that
// passed is no jump: the sender's clock ran on through a pause, and its
// timestamps place the packet exactly, where the wall clock between two
// writes also holds how late each was written (a reader seconds behind its
// socket before the pause and not after it).
//
// It is shared by the file writers (media/wavwriter, media/oggwriter and,
// through media/internal/framer, the video writers).
package rtptime

import "time"

// MaxLateRun is the number of consecutive late packets after which the next
// one is taken as a backward timestamp jump (a sender that reset its clock
// by less than MaxGap) and re-anchors, instead of dropping everything until
// the timestamps catch up. Late and duplicate packets come alone or in short
// runs; a reset makes every later packet "late".
const MaxLateRun = 8

// Timeline maps the 32-bit, wrapping RTP timestamps of one track to a
// monotonic 64-bit position in ticks of the RTP clock. The zero value is
// ready to use with MaxGap 0 (every forward gap re-anchors); set MaxGap.
// A Timeline is owned by one goroutine (the track's writer).
type Timeline struct {
	// MaxGap is the largest forward timestamp gap, in ticks, kept as a gap,
	// and with Now the most a longer one may differ from the wall-clock time
	// that passed to be kept too. A larger jump (forward, or backward by
	// more than MaxGap) re-anchors: the packet is placed directly after the
	// previous one, or, with Now, after the wall-clock time that passed
	// since it.
	MaxGap uint32
	// Rate is the RTP clock rate in Hz; it converts wall-clock time when
	// Now is set.
	Rate uint32
	// Now, when set, is read at every placed packet (time.Now in live
	// use; nil for offline conversion, where arrival times mean nothing).
	Now func() time.Time

	last    time.Time // wall-clock time of the last placed packet
	lastDur uint32
	late    int // packets dropped as late since the last placed one

	started bool
	ssrc    uint32
	next    uint32 // RTP timestamp expected next: last timestamp + its duration
	pos     int64  // timeline position of next, in ticks

	// Dropped counts packets dropped as duplicate or late.
	Dropped uint64
	// Reanchors counts timestamp jumps and SSRC changes.
	Reanchors uint64
}

// Place decides where a packet of the given SSRC, RTP timestamp ts and
// duration dur (in ticks) goes. When ok is true the caller writes gap ticks of
// silence followed by the packet; the timeline then stands after the packet.
// When ok is false the packet is a duplicate or arrived too late (its start
// lies before the end of what was written) and must be dropped.
func (t *Timeline) Place(ssrc, ts, dur uint32) (gap uint32, ok bool) {
	var now time.Time
	if t.Now != nil {
		now = t.Now()
	}
	switch {
	case !t.started:
		t.started = true
	case ssrc != t.ssrc:
		t.Reanchors++
		gap = t.wallGap(now)
	default:
		// Serial-number arithmetic on the 32-bit timestamp handles wrap-around.
		delta := int32(ts - t.next)
		switch {
		case delta >= 0 && uint32(delta) <= t.MaxGap:
			gap = uint32(delta)
		case delta < 0 && uint32(-int64(delta)) <= t.MaxGap && t.late < MaxLateRun:
			t.Dropped++
			t.late++
			return 0, false
		case delta > 0 && t.Now != nil && t.Rate != 0 && abs(int64(delta)-int64(t.wallGap(now))) <= int64(t.MaxGap):
			gap = uint32(delta) // the sender's clock ran on through a pause: no jump
		default:
			t.Reanchors++
			gap = t.wallGap(now)
		}
	}
	t.last, t.lastDur, t.late = now, dur, 0
	t.ssrc = ssrc
	t.next = ts + dur
	t.pos += int64(gap) + int64(dur)
	return gap, true
}

// wallGap returns the ticks of wall-clock time between the end of the last
// placed packet and now, or 0 without a clock.
func (t *Timeline) wallGap(now time.Time) uint32 {
	if t.Now == nil || t.Rate == 0 {
		return 0
	}
	ticks := int64(now.Sub(t.last)) * int64(t.Rate) / int64(time.Second)
	ticks -= int64(t.lastDur)
	return uint32(max(0, min(ticks, 1<<32-1)))
}

// Position returns the timeline position, in ticks, after the last placed
// packet: the duration of everything written so far, gaps included.
func (t *Timeline) Position() int64 { return t.pos }

// PosOf returns the timeline position, in ticks, of RTP timestamp ts of the
// current anchor (the last placed packet's): before it for a timestamp
// before the expected next one. It is at least 0 and at most Position().
func (t *Timeline) PosOf(ts uint32) int64 {
	if !t.started {
		return 0
	}
	return min(max(0, t.pos+int64(int32(ts-t.next))), t.pos)
}

func abs(x int64) int64 { return max(x, -x) }
