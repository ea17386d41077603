package recorder

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/media"
	"github.com/rtcrec/recorder/recorder/conference"
)

// roomKey identifies one conference of one tenant behind one adapter.
type roomKey struct {
	kind, org, conference string
}

// room is one conference as the recorder sees it: its live tracks and the
// sessions recording it. It is the conference.Sink its adapter delivers to. Each
// track has exactly one reader goroutine (run), which fans every packet out to
// the track's subscribers, one per session recording it, without a lock.
//
// Lock order: room.mu before Session.mu; never the other way round.
type room struct {
	m     *Manager
	key   roomKey
	mu    sync.Mutex
	live  []*roomTrack
	sess  []*Session
	leave func() // dial-out adapters: ends the Join; nil otherwise
}

// roomTrack is a live track and its subscribers.
type roomTrack struct {
	t    *conference.Track
	subs atomic.Pointer[[]*trackSub] // copy on write, under room.mu
	// last is the sequence number of the packet handed on last (1<<16 |
	// seq; 0: none yet): a new subscription notes it (trackSub.joinSeq), so
	// that the track's log says whether packets went missing between the
	// subscription and its first packet.
	last atomic.Uint32
}

// AddTrack implements conference.Sink: it starts the track's reader goroutine
// and subscribes every session recording the conference.
func (r *room) AddTrack(t *conference.Track) {
	rt := &roomTrack{t: t}
	rt.subs.Store(&[]*trackSub{})
	r.mu.Lock()
	r.live = append(r.live, rt)
	for _, s := range r.sess {
		if ts := s.subscribe(rt); ts != nil {
			ts.joinSeq = rt.last.Load()
			rt.add(ts)
		}
	}
	r.mu.Unlock()
	r.m.agentTrack(r.key.org, t, 1) // agents.go
	r.m.log.Info("track added", "conference", t.ConferenceID, "userId", t.UserID, "stream", t.StreamID,
		"track", t.TrackID, "kind", t.Kind, "codec", t.Codec.MimeType)
	r.m.wg.Add(1)
	go func() {
		defer r.m.wg.Done()
		r.run(rt)
	}()
}

// ConferenceEnded implements conference.Sink: every session recording the
// conference stops.
func (r *room) ConferenceEnded(err error) {
	r.mu.Lock()
	sess := append([]*Session(nil), r.sess...)
	r.mu.Unlock()
	r.m.log.Info("conference ended", "conference", r.key.conference, "err", err)
	for _, s := range sess {
		s.requestStop(stopReason{conferenceEnded: true, err: err})
	}
}

// run is the one reader goroutine of rt: read, parse into a reused packet, hand
// to every subscriber. It allocates nothing per packet. A track whose
// adapter pushes its packets (conference.RTPPusher) is handed over to push,
// and its reader goroutine ends there.
//
// While a subscriber's mix pipeline holds packets undecoded (deferred: the
// mixer waits for another track, media/deferred.go), the reader reads with a
// deadline tickEvery ahead, if its track's reader takes one
// (conference.DeadlineReader), and ticks every subscriber when it passes: a
// track that stalls after it deferred audio that came in time still has it
// decoded before the mixer needs it.
func (r *room) run(rt *roomTrack) {
	if p, ok := rt.t.Reader.(conference.RTPPusher); ok && r.push(rt, p) {
		return
	}
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	dr, _ := rt.t.Reader.(conference.DeadlineReader)
	armed := false
	for {
		n, err := rt.t.Reader.ReadRTP(buf)
		switch {
		case err == conference.ErrReadTimeout:
			rt.tick()
		case err != nil:
			r.endTrack(rt, err)
			return
		case pkt.Unmarshal(buf[:n]) != nil:
			continue // not RTP: counted nowhere, never logged per packet
		default:
			rt.write(&pkt)
		}
		if dr != nil {
			// A deadline that passed stays passed (every read times out)
			// until it is set again: re-armed while packets are deferred,
			// cleared once none is.
			if want := rt.deferred(); want && (!armed || err != nil) {
				if dr.SetReadDeadline(time.Now().Add(tickEvery)) != nil {
					dr = nil // the track is gone: its reads fail from now on
				}
				armed = true
			} else if !want && armed {
				_ = dr.SetReadDeadline(time.Time{})
				armed = false
			}
		}
	}
}

// push hands rt's packets to its subscribers as its adapter pushes them
// (conference.RTPPusher: on the adapter's goroutine, srtp's for WHIP), and
// reports whether it does; run's goroutine ends then. While a subscriber's
// mix pipeline holds packets undecoded, a timer ticks the subscribers every
// tickEvery, between packets (RTPPusher.Between), as run's read deadline
// does: a packet that finds a pipeline deferring sets it, if it is not set,
// and each tick sets it again while one still does.
func (r *room) push(rt *roomTrack, p conference.RTPPusher) bool {
	var (
		pkt   rtp.Packet
		armed bool // the timer is set; the packets' and ticks' own, which never run at once
		ended atomic.Bool
		timer *time.Timer
	)
	arm := func() {
		if !armed && rt.deferred() {
			armed = true
			timer.Reset(tickEvery)
		}
	}
	timer = time.AfterFunc(time.Hour, func() {
		ticked := p.Between(func() {
			armed = false
			rt.tick()
			arm()
		})
		if !ticked && !ended.Load() {
			timer.Reset(tickEvery) // a packet is being handed over: tick after it
		}
	})
	timer.Stop()
	return p.PushRTP(make([]byte, 1500), func(b []byte) {
		if pkt.Unmarshal(b) != nil {
			return // not RTP, as in run
		}
		rt.write(&pkt)
		arm()
	}, func(err error) {
		ended.Store(true)
		timer.Stop()
		r.endTrack(rt, err)
	})
}

// endTrack ends rt, whose reader returned err (io.EOF: the track's normal
// end): it leaves the room and every subscription ends.
func (r *room) endTrack(rt *roomTrack, err error) {
	if err != io.EOF {
		r.m.log.Debug("track reader ended", "track", rt.t.TrackID, "err", err)
	}
	r.mu.Lock()
	for i, x := range r.live {
		if x == rt {
			r.live = append(r.live[:i], r.live[i+1:]...)
			break
		}
	}
	subs := *rt.subs.Load()
	rt.subs.Store(&[]*trackSub{})
	r.mu.Unlock()
	for _, ts := range subs {
		ts.end()
	}
	r.m.agentTrack(r.key.org, rt.t, -1)
	r.m.log.Info("track ended", "conference", rt.t.ConferenceID, "userId", rt.t.UserID, "track", rt.t.TrackID)
	r.m.gcRoom(r)
}

// write hands p to every subscriber. The reader's (or pusher's) goroutine.
func (rt *roomTrack) write(p *rtp.Packet) {
	rt.last.Store(1<<16 | uint32(p.SequenceNumber))
	for _, ts := range *rt.subs.Load() {
		ts.write(p)
	}
}

// tick lets every subscriber process what it deferred. The reader's (or
// pusher's, between packets) goroutine.
func (rt *roomTrack) tick() {
	for _, ts := range *rt.subs.Load() {
		ts.tick()
	}
}

// tickEvery is how often a track's reader runs without a packet while a
// subscriber's mix pipeline holds packets undecoded (see run): well within
// the three quarters of a second the mixer leaves it (media/deferred.go).
const tickEvery = 50 * time.Millisecond

// deferred reports whether a subscriber's mix pipeline holds packets
// undecoded. The reader goroutine, or the pusher between packets.
func (rt *roomTrack) deferred() bool {
	for _, ts := range *rt.subs.Load() {
		if ts.in != nil && ts.in.Deferred() {
			return true
		}
	}
	return false
}

// add subscribes ts; the caller holds room.mu.
func (rt *roomTrack) add(ts *trackSub) {
	old := *rt.subs.Load()
	subs := make([]*trackSub, 0, len(old)+1)
	subs = append(append(subs, old...), ts)
	rt.subs.Store(&subs)
}

// remove unsubscribes ts; the caller holds room.mu.
func (rt *roomTrack) remove(ts *trackSub) {
	old := *rt.subs.Load()
	subs := make([]*trackSub, 0, len(old))
	for _, x := range old {
		if x != ts {
			subs = append(subs, x)
		}
	}
	rt.subs.Store(&subs)
}

// attach makes s record the conference: existing tracks first, then every new one.
func (r *room) attach(ctx context.Context, s *Session) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sess) == 0 && r.leave == nil {
		if a := r.m.adapters[r.key.kind]; a != nil {
			if _, listening := a.(conference.Listener); !listening {
				leave, err := a.Join(ctx, r.key.org, r.key.conference, r)
				if err != nil {
					return err
				}
				r.leave = leave
			}
		}
	}
	r.sess = append(r.sess, s)
	for _, rt := range r.live {
		if ts := s.subscribe(rt); ts != nil {
			ts.joinSeq = rt.last.Load()
			rt.add(ts)
		}
	}
	return nil
}

// detach stops s recording the conference and returns its subscriptions, which
// the session then closes.
func (r *room) detach(s *Session) []*trackSub {
	r.mu.Lock()
	var mine []*trackSub
	for i, x := range r.sess {
		if x == s {
			r.sess = append(r.sess[:i], r.sess[i+1:]...)
			break
		}
	}
	for _, rt := range r.live {
		for _, ts := range *rt.subs.Load() {
			if ts.s == s {
				rt.remove(ts)
				mine = append(mine, ts)
			}
		}
	}
	var leave func()
	if len(r.sess) == 0 && r.leave != nil {
		leave, r.leave = r.leave, nil
	}
	r.mu.Unlock()
	if leave != nil {
		leave()
	}
	r.m.gcRoom(r)
	return mine
}

// subsOf returns s's subscriptions to the live tracks, which stay subscribed.
func (r *room) subsOf(s *Session) []*trackSub {
	r.mu.Lock()
	defer r.mu.Unlock()
	var mine []*trackSub
	for _, rt := range r.live {
		for _, ts := range *rt.subs.Load() {
			if ts.s == s {
				mine = append(mine, ts)
			}
		}
	}
	return mine
}

// idle reports whether the room has neither tracks nor sessions.
func (r *room) idle() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.live) == 0 && len(r.sess) == 0
}

// The states of a trackSub; see write and close.
const (
	subIdle        = iota // no write in progress
	subBusy               // the reader goroutine is writing
	subClosed             // closed: no write ever again
	subBusyClosing        // a closer waits for the write in progress
)

// trackSub is one session's recording of one track: the per-track writer and,
// for audio, the pipeline into the session's mixer. Only the track's reader
// goroutine writes to it; state guards it against a concurrent close without a
// lock per packet.
type trackSub struct {
	s      *Session
	t      *conference.Track
	stream string // API stream id
	path   string // the track's file
	sink   packetSink
	in     *media.MixInput // the sink's mix input, if any (deferred)
	state  atomic.Int32
	quiet  chan struct{} // closed by write when a closer waits
	pkts   atomic.Uint64
	errs   atomic.Uint64
	// first is when the track file's time zero (the RTP timestamp of its
	// first packet written: not of one the sink dropped, as one that reached
	// the machine before the recording's start) arrived, in unix ns: the least of (arrival − RTP time since
	// the first packet) over the packets of the first zeroWindow, as the mix
	// anchors a track's audio (the least lateness while it settles), so a
	// first packet held up at connect or by a busy machine does not move the
	// track's video later than its audio. An arrival is when the packet
	// reached the machine if the UDP mux noted it (mediaSink.received: a
	// reader behind its socket reads it later), as the mix and the clock
	// relation that cuts a track without a mix at the stop take it.
	first atomic.Int64
	// joined is when the session subscribed (unix ns): a video track's time
	// zero is not moved before it. An audio track's is: its file holds the
	// audio sent before the track joined that waited in its socket (if it
	// reached the machine after the recording's start: mediaSink.notBefore),
	// and the mix, or without one the clock relation (stopPlace), places it
	// where it was sent. zeroTS and zeroUntil (unix ns) are the reader
	// goroutine's own.
	joined    int64
	joinSeq   uint32 // the track's last packet handed on before the subscription (roomTrack.last)
	firstSeq  uint16 // the first packet's sequence number (the first handed to the sink)
	arrived   int64  // when the file's first packet was read (unix ns; 0: none yet)
	settled   func() // called (on its own goroutine) once time zero is settled; may be nil
	zeroTS    uint32
	zeroUntil int64

	// Storing the timing of a running track (timingChanged).
	timingMu    sync.Mutex
	timingTimer *time.Timer // the store scheduled; nil: none
	timingAt    time.Time   // the last one
	timingEnded bool        // the track ended: trackEnded stores it
}

// zeroWindow is how long after its first packet a track's time zero is
// still refined (see trackSub.first).
const zeroWindow = time.Second

// packetSink consumes one track's packets on its reader goroutine.
type packetSink interface {
	WriteRTP(*rtp.Packet) error
	Close() error
}

// tick lets ts's sink process what it deferred (the reader's read with a
// deadline timed out).
func (ts *trackSub) tick() {
	t, ok := ts.sink.(interface{ tick() })
	if !ok || !ts.state.CompareAndSwap(subIdle, subBusy) {
		return
	}
	t.tick()
	if !ts.state.CompareAndSwap(subBusy, subIdle) {
		close(ts.quiet) // state is subBusyClosing: the closer waits
	}
}

func (ts *trackSub) write(p *rtp.Packet) {
	if !ts.state.CompareAndSwap(subIdle, subBusy) {
		return
	}
	if ts.sink.WriteRTP(p) != nil {
		ts.errs.Add(1)
	} else {
		if ts.pkts.Add(1) == 1 {
			ts.firstSeq = p.SequenceNumber
		}
		switch {
		case ts.arrived == 0 && ts.inFile():
			now := ts.s.m.now().UnixNano()
			ts.first.Store(ts.arrival(now))
			ts.arrived, ts.zeroTS, ts.zeroUntil = now, p.Timestamp, now+int64(zeroWindow)
		case ts.zeroUntil != 0:
			ts.refineZero(p.Timestamp)
		}
	}
	if !ts.state.CompareAndSwap(subBusy, subIdle) {
		close(ts.quiet) // state is subBusyClosing: the closer waits
	}
}

// inFile reports whether the sink's file holds a packet: its time zero is
// its first packet written, not one the sink dropped (sent before the
// recording started, paused, from after the stop). A sink that is not a
// mediaSink writes every packet.
func (ts *trackSub) inFile() bool {
	ms, ok := ts.sink.(*mediaSink)
	return !ok || ms.wrote.Load()
}

// refineZero moves the track's time zero earlier when a packet of the
// first zeroWindow shows that the first one arrived late.
func (ts *trackSub) refineZero(rtpTS uint32) {
	now := ts.s.m.now().UnixNano()
	if now > ts.zeroUntil || ts.t == nil || ts.t.Codec.ClockRate == 0 {
		ts.zeroUntil = 0
		if ts.settled != nil {
			go ts.settled()
		}
		return
	}
	since := int64(int32(rtpTS-ts.zeroTS)) * int64(time.Second) / int64(ts.t.Codec.ClockRate)
	at := ts.arrival(now) - since
	if ts.t.Kind == conference.KindVideo {
		at = max(at, ts.joined)
	}
	if at < ts.first.Load() {
		ts.first.Store(at)
	}
}

// arrival returns when the packet just written reached the machine (unix
// ns): when the UDP mux received it, if it noted that, else now (when it
// was read).
func (ts *trackSub) arrival(now int64) int64 {
	if ms, ok := ts.sink.(*mediaSink); ok && ms.received != 0 {
		return ms.received
	}
	return now
}

// close stops writes, waiting for one in progress; it reports whether this call
// closed ts (false: it was closed already).
func (ts *trackSub) close() bool {
	for {
		switch ts.state.Load() {
		case subIdle:
			if ts.state.CompareAndSwap(subIdle, subClosed) {
				return true
			}
		case subBusy:
			if ts.state.CompareAndSwap(subBusy, subBusyClosing) {
				<-ts.quiet
				ts.state.Store(subClosed)
				return true
			}
		default:
			return false
		}
	}
}

// end is called by the reader goroutine when the track ended.
func (ts *trackSub) end() {
	if ts.close() {
		ts.s.trackEnded(ts)
	}
}
