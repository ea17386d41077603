package media

import (
	"time"

	"github.com/pion/rtp"
)

// Deferred decoding. While the mixer waits for a track that lags (up to the
// latency budget), every other track goes on arriving in step, and its ring
// would hold the whole budget of PCM: 80 KB per track for 5 s at 8 kHz, the
// peak of a recording's memory. A track whose reader can be woken
// (EnableDefer) keeps instead, for the part of its audio more than
// deferAhead beyond what the mixer has read (its ring's head), the packets
// themselves, undecoded and in arrival order, with their arrival times: a
// few KB a second. Each is processed exactly as it would have been on
// arrival (WriteRTP's path, with its own arrival time: lateness, reordering
// and all) once the mixer comes within deferAhead of it (checked at each
// packet and at each Tick, which the track's reader calls
// while packets are deferred (Deferred) and none comes (it reads with a
// deadline then), so a track that stalls after it queued audio that came in
// time still has that audio decoded before the mixer needs it). A sender
// report that comes meanwhile is queued behind them, in order, and applies
// to the packets after it, as on arrival (applied at once, a step of the
// sender's clock would move the packets queued before it: up to the budget
// before the step). A reader that knows it runs behind its socket
// (WriteRTPAt: the newest packet was read lag after it arrived) is short of
// CPU and may not run again for as long: it decodes that much further ahead
// (horizon), so that a starved reader loses nothing to deferring. The mixer
// never lags more than the budget (and readerWait, for a reader behind its
// socket: mixer.go), and claims a frame the budget after its end at the
// earliest, so from the moment a queued packet is due to the
// moment the mixer could give up waiting for it the reader has at least
// deferAhead (the join wait and deferLead: 1.01 s by default) to decode it. Pause,
// Resync, ResyncAt and Close process everything queued first (what they
// change applies to the packets after them), and so does a packet whose
// audio begins within deferAhead of what the mixer read (one that was
// missing there, and came late) before it is processed. A packet queue that is full
// (deferSlots packets or deferBytes of payload) has its oldest packet
// processed to make room: the ring then grows as it did before.
//
// The hot path stays as it was: no lock, no allocation per packet (the queue
// is allocated when the track begins to defer, and dropped once shrinkAfter
// packets in a row were not deferred: the lag is over).

// deferLead is how far beyond the mixer's join wait a track decodes
// ahead of what the mixer read: a track in step with the mixer is about
// the join wait ahead of it (the mixer stays that far behind wall time) and
// never defers; one more than deferAhead ahead (the mixer waits for
// another) does.
const deferLead = 250 * time.Millisecond

// deferSlots and deferBytes bound an Opus track's packet queue: 5.12 s of
// 20 ms packets, and 5 s of 40 kbit/s (speech with in-band FEC is 24-32
// kbit/s). A G.711 track's queue holds the budget's packets of 10 ms or
// more (g711Packet: the WHIP endpoint offers minptime=10) and the budget's
// payload at 64 kbit/s (half its decoded size at 8 kHz) and a packet: 500
// slots and 41.5 KB for 5 s.
const (
	deferSlots = 256
	deferBytes = 25 << 10
	g711Packet = 10 * time.Millisecond
)

// deferredPacket is a queued packet: its payload is buf[off:off+n], after
// pad bytes left unused at the end of buf (the payload did not fit there).
// Or a queued sender report (report): the sender's wall clock was at
// (a time.Duration after the recording's start) when its RTP clock showed
// ts.
type deferredPacket struct {
	at     uint64 // arrival position; of a report, its time (time.Duration)
	ssrc   uint32
	ts     uint32
	off    uint32
	seq    uint16
	n      uint16
	pad    uint16
	report bool
}

// deferQueue is a pipeline's queue of deferred packets (reader goroutine).
type deferQueue struct {
	on    bool
	slots int // the queue's size: packets, and bytes of payload (deferSlots, deferBytes)
	bytes int
	ahead uint64 // deferAhead in samples
	lag   uint64 // how late the newest packet was read after it arrived (WriteRTPAt), in samples
	q     []deferredPacket
	head  int // oldest entry
	n     int // entries
	buf   []byte
	w     int // where the next payload goes in buf
	used  int // bytes of buf in use, pads included
	idle  int // packets in a row not deferred since the queue emptied
}

// EnableDefer lets the pipeline defer decoding (see above). Call it before
// the first packet, and only when the track's reader calls Tick while
// Deferred is true and no packet comes (at least every tenth of a second).
// For G.711 too: its payload is half its decoded size at 8 kHz (a G.711
// track whose ring held the whole budget took 104.4 KB, over issue 10's
// 100 KB; deferring, 88.0 KB).
// Reader goroutine.
func (p *AudioPipeline) EnableDefer() {
	p.dq.on = true
	p.dq.ahead = p.mixer.joinWait + uint64(samples(deferLead, int(p.rate)))
	p.dq.slots, p.dq.bytes = deferSlots, deferBytes
	if p.g711 != nil {
		budget := p.mixer.cfg.Latency
		p.dq.slots = int((budget + g711Packet - 1) / g711Packet)
		p.dq.bytes = int(budget.Seconds()*8000) + maxPayload
	}
}

// Deferred reports whether packets are queued undecoded: the reader must
// call Tick while they are and no packet comes. Reader goroutine.
func (p *AudioPipeline) Deferred() bool { return p.dq.n > 0 }

// Tick processes the queued packets the mixer has come within deferAhead
// of. Reader goroutine.
func (p *AudioPipeline) Tick() {
	p.processDue(false)
}

// deferPacket queues pkt, arrived at now, if packets are queued already or
// its audio lies beyond the horizon, and reports whether it did.
func (p *AudioPipeline) deferPacket(pkt *rtp.Packet, now uint64) bool {
	d := &p.dq
	if d.n == 0 {
		pos, ok := p.PositionOf(pkt.Timestamp)
		if pkt.SSRC != p.ssrc || p.settling || !ok || pos <= p.horizon() {
			if d.q != nil {
				if d.idle++; d.idle >= shrinkAfter {
					d.q, d.buf = nil, nil // the lag is over: a track in step pays nothing for it
				}
			}
			return false
		}
		d.idle = 0
		if d.q == nil {
			d.q = make([]deferredPacket, d.slots)
			d.buf = make([]byte, d.bytes)
		}
	} else if pos, ok := p.PositionOf(pkt.Timestamp); ok && pos <= p.horizon() {
		// A packet for a place the mixer is about to need (one that was
		// missing, reordered or late): what came before it goes to the
		// ring first, in order, then it does.
		p.processDue(true)
		return false
	}
	n := len(pkt.Payload)
	for {
		off, pad := d.w, 0
		if off+n > len(d.buf) {
			off, pad = 0, len(d.buf)-d.w
		}
		if d.n < len(d.q) && d.used+pad+n <= len(d.buf) {
			copy(d.buf[off:], pkt.Payload)
			d.q[(d.head+d.n)%len(d.q)] = deferredPacket{at: now, ssrc: pkt.SSRC, ts: pkt.Timestamp, off: uint32(off), seq: pkt.SequenceNumber, n: uint16(n), pad: uint16(pad)}
			d.n++
			d.w, d.used = off+n, d.used+pad+n
			p.deferred.Add(1)
			if pos, ok := p.PositionOf(pkt.Timestamp); ok {
				p.input.deferEnd.Store(pos + uint64(p.samplesOf(pkt.Payload)))
			}
			return true
		}
		if d.n == 0 {
			return false // larger than the whole queue: processed now
		}
		p.processOne() // full: the oldest goes to the ring
	}
}

// deferReport queues a sender report behind the queued packets, if any,
// and reports whether it did (SenderReport).
func (p *AudioPipeline) deferReport(ssrc, rtpTS uint32, at time.Duration) bool {
	d := &p.dq
	if d.n == len(d.q) && d.n > 0 {
		p.processOne() // full: the oldest goes to the ring
	}
	if d.n == 0 {
		return false
	}
	d.q[(d.head+d.n)%len(d.q)] = deferredPacket{at: uint64(at), ssrc: ssrc, ts: rtpTS, report: true}
	d.n++
	return true
}

// horizon is how far the pipeline decodes: what the mixer read, deferAhead,
// and as much again as its reader is behind its socket (the newest packet
// was read lag after it arrived: WriteRTPAt). A reader that far behind is
// short of CPU and may not run again for about as long, and the mixer gives
// up on a frame the budget after its end, however much of it waits undecoded
// in the queue: starved, a reader keeps decoded what the mixer may need
// before it runs again, as it did before decoding was deferred.
func (p *AudioPipeline) horizon() uint64 {
	return p.ring.Head() + p.dq.ahead + p.dq.lag
}

// processDue processes queued packets in order, all of them with all, or
// those whose audio begins before the horizon (and the reports before
// them).
func (p *AudioPipeline) processDue(all bool) {
	d := &p.dq
	for d.n > 0 {
		if e := &d.q[d.head]; !all && !e.report {
			if pos, ok := p.PositionOf(e.ts); ok && e.ssrc == p.ssrc && pos > p.horizon() {
				return
			}
		}
		p.processOne()
	}
	if p.input.deferEnd.Load() != 0 {
		p.input.deferEnd.Store(0)
	}
}

// processOne processes the oldest queued packet as WriteRTP would have on
// its arrival, or the oldest report as SenderReport would have.
func (p *AudioPipeline) processOne() {
	d := &p.dq
	e := d.q[d.head]
	d.head = (d.head + 1) % len(d.q)
	d.n--
	d.used -= int(e.pad) + int(e.n)
	if d.n == 0 {
		d.w, d.used = 0, 0
	}
	if e.report {
		p.senderReport(e.ssrc, e.ts, time.Duration(e.at))
		return
	}
	// The payload stays in buf until the next deferPacket, which comes after.
	p.write(e.ssrc, e.seq, e.ts, d.buf[e.off:e.off+uint32(e.n)], e.at)
}
