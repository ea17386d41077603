package recorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/media"
	"github.com/rtcrec/recorder/media/format"
	"github.com/rtcrec/recorder/media/pause"
	"github.com/rtcrec/recorder/media/reorder"
	"github.com/rtcrec/recorder/media/wavwriter"
	"github.com/rtcrec/recorder/media/webmwriter"
	"github.com/rtcrec/recorder/recorder/conference"
)

// sessionMedia is one recording's media graph: the mixer goroutine writing
// mix.wav, and a constructor of per-track sinks (file writer plus, for audio,
// the decoding pipeline into a mixer input). A recording without a mix
// (MixSettings.None) has no mixer, no mix.wav and no pipelines: its tracks
// are only written, and nothing is decoded.
type sessionMedia struct {
	log    *slog.Logger
	mix    *wavwriter.Writer
	sink   *guardedMix // mix behind the guard of retroactive edits
	mixer  *media.Mixer
	cancel context.CancelFunc
	done   chan error
	failed chan error // buffered 1: the mixer's write error, as soon as it stops on one
	path   string     // of mix.wav
	closed bool
	// latency is the recording's latency budget: how long a track's
	// reorder stage waits for a missing packet (media/reorder).
	latency time.Duration
	// stopAt is the stop's timeline position + 1 once the recording stops
	// (0 before): audio from after it reaches no file (drain). stopWall is
	// the stop's instant (unix ns; 0 before) for the tracks the mix does not
	// place (video, and audio without a mix), which their clock relation
	// places.
	stopAt   atomic.Uint64
	stopWall atomic.Int64
	// started is the recording's start: its time zero, the mix's and the
	// track files' alike (mediaSink.notBefore).
	started time.Time
}

func newSessionMedia(rec *Recording, started time.Time, mixPath string, log *slog.Logger) (*sessionMedia, error) {
	if rec.Mix.None {
		return &sessionMedia{log: log, failed: make(chan error, 1), latency: rec.Mix.Latency, started: started}, nil
	}
	pb, err := pause.ParseBehavior(string(rec.PauseBehavior))
	if err != nil {
		return nil, err
	}
	w, err := wavwriter.New(mixPath, wavwriter.WithSampleRate(rec.Mix.SampleRate), wavwriter.WithChannels(rec.Mix.Channels))
	if err != nil {
		return nil, fmt.Errorf("recorder: create mix: %w", err)
	}
	sink := &guardedMix{w: w}
	mixer := media.NewMixer(media.MixConfig{SampleRate: rec.Mix.SampleRate, Channels: rec.Mix.Channels,
		Latency: rec.Mix.Latency, PauseBehavior: pb, Start: started}, sink)
	ctx, cancel := context.WithCancel(context.Background())
	sm := &sessionMedia{path: mixPath, log: log, mix: w, sink: sink, mixer: mixer, cancel: cancel, done: make(chan error, 1),
		failed: make(chan error, 1), latency: rec.Mix.Latency, started: started}
	go func() {
		err := mixer.Run(ctx)
		if err != nil {
			sm.failed <- err
		}
		sm.done <- err
	}()
	return sm, nil
}

// close stops the mixer goroutine, which first writes the rest of the mix
// (everything the tracks delivered, up to at least the instant at: the
// stop; zero: now), and closes mix.wav; it returns the frames written.
func (sm *sessionMedia) close(at ...time.Time) (int64, error) {
	if sm.mixer == nil {
		return 0, nil
	}
	if sm.closed {
		return sm.mixer.Frames(), nil
	}
	sm.closed = true
	if len(at) > 0 && !at[0].IsZero() {
		sm.mixer.SetEnd(at[0])
	}
	sm.cancel()
	err := <-sm.done
	var cerr error
	sm.sink.guard.edit(func() { cerr = sm.mix.Close() })
	if err == nil {
		err = cerr
	}
	sm.log.Info("mix finished", "lengthMs", sm.mixer.Position().Milliseconds(), "writtenMs", sm.mixer.Duration(sm.mixer.Written()).Milliseconds(),
		"expiredFrames", sm.mixer.Expired(), "err", err)
	return sm.mixer.Frames(), err
}

// trackSink returns the sink of one track: its file at path and, for audio,
// the pipeline into a new mixer input.
func (sm *sessionMedia) trackSink(t *conference.Track, path string, offset time.Duration) (packetSink, error) {
	file, err := newTrackWriter(t, path)
	if err != nil {
		return nil, err
	}
	ts := &mediaSink{file: file, sr: t.SenderReport, path: path, log: sm.log.With("track", t.TrackID), notBefore: sm.started.UnixNano()}
	if t.SenderReport != nil {
		ts.srs = &senderClock{rate: float64(t.Codec.ClockRate)}
	}
	ts.order = reorder.New((*trackFile)(ts), reorderConfig(t.Kind, sm.latency))
	ts.receipts, _ = t.Reader.(conference.ArrivalReader)
	if t.Kind == conference.KindAudio && sm.mixer != nil {
		var opts media.InputOptions
		if ts.receipts != nil {
			opts.Unread = ts.unread // the mixer waits for a reader behind its socket
		}
		in := sm.mixer.AddInput(t.StreamID+"/"+t.TrackID, opts)
		pipe, err := newAudioPipeline(t, in)
		if err != nil {
			sm.mixer.RemoveInput(in)
			file.Close()
			return nil, err
		}
		_, deadline := t.Reader.(conference.DeadlineReader)
		if _, pushed := t.Reader.(conference.RTPPusher); deadline || pushed {
			// Its reader ticks while packets are deferred (room.run,
			// room.push): the budget's audio waits undecoded while the
			// mixer waits for another track (media/deferred.go).
			pipe.EnableDefer()
		}
		ts.audio, ts.in, ts.mixer = pipe, in, sm.mixer
		ts.codec, _ = media.CodecFromMime(t.Codec.MimeType) // newAudioPipeline accepted it
		clock := max(float64(t.Codec.ClockRate), 1)
		ts.logPlacement(pipe, float64(sm.mixer.Config().SampleRate)/clock)
		ts.moves = &mixMoves{rate: float64(sm.mixer.Config().SampleRate), clock: clock}
		ts.stopAt = &sm.stopAt
	}
	ts.stopWall = &sm.stopWall
	if t.Kind == conference.KindAudio {
		ts.drained = make(chan struct{}) // the drain waits for audio only
	}
	return ts, nil
}

// Reorder stages of the track files (media/reorder). Audio waits the
// recording's latency budget for a missing packet, as the mix does: 256
// packets (5.12 s of 20 ms packets) and 40 KiB of payload (5 s at 64 kbit/s;
// a higher rate gives up on a gap sooner), 49 KiB per track from a packet
// that has to be held until 256 packets passed on in order after the last
// (media/reorder releases it then). Video waits at most videoHold: a gap it gives up on is a
// broken frame, and the writer asks for a keyframe only then, so a long wait
// would freeze the video for as long; a reordered packet comes within tens
// of milliseconds and a NACKed one within a round trip. 1024 packets and
// 256 KiB (videoHold at 4 Mbit/s): 292 KiB per video track while held (and
// for 1024 packets after).
const videoHold = 500 * time.Millisecond

func reorderConfig(kind conference.Kind, latency time.Duration) reorder.Config {
	if latency <= 0 {
		latency = media.DefaultLatency
	}
	if kind == conference.KindVideo {
		return reorder.Config{Budget: min(latency, videoHold), Slots: 1024, Bytes: 256 << 10}
	}
	return reorder.Config{Budget: latency, Slots: 256, Bytes: 40 << 10}
}

// mediaSink writes a track's packets to its file, in sequence order through
// its reorder stage, and, for audio, to its pipeline (which places reordered
// packets itself, by their arrival).
type mediaSink struct {
	file  packetSink
	order *reorder.Buffer // before file; nil: packets go to the file as they come (tests)
	// arrival is the instant the packet being written arrived (the reader's
	// or pusher's goroutine; the file writes of Push and Flush run under it): when it
	// reached the machine if receipts knows (a reader behind its socket
	// reads it later), otherwise when it was read.
	arrival  time.Time
	receipts conference.ArrivalReader // nil: packets arrive when read
	audio    packetSink
	in       *media.MixInput
	mixer    *media.Mixer
	gate     *gate // pause and blackout; nil: everything passes
	// Retroactive blackouts: the file's writer behind a guard, the clock
	// relation of its timestamps, its path in the recording and on disk;
	// for audio with a mix, its codec and where its file lies on the mix's
	// timeline (written under the guard).
	guard   editGuard
	clk     *clockRelation
	relPath string
	path    string
	codec   media.Codec
	plog    *placementLog
	moves   *mixMoves // where the mix placed the track's file (audio with a mix)
	shifts  uint64    // the pipeline's Shifted count placed so far (placed)
	settles uint64    // the pipeline's Settled count placed so far (placed)
	// wroteTS is the timestamp (as written) of the last packet the file
	// writer took, once wroteAny (filePos). Reader goroutine, under the guard.
	wroteTS  uint32
	wroteAny bool
	// silenced: a retroactive blackout silenced the file from RTP timestamp
	// silencedFrom (as written); set in an edit, read and cleared by the
	// reader goroutine under the guard.
	silenced     bool
	silencedFrom uint32
	log          *slog.Logger
	// stopAt and stopWall are the session's (sessionMedia): stopAt for
	// audio with a mix, stopWall for the other tracks. drained is closed
	// once a packet from after the stop came (drain); audio only.
	stopAt      *atomic.Uint64
	stopWall    *atomic.Int64
	drained     chan struct{}
	drainClosed bool   // reader goroutine only
	pastStop    bool   // reader goroutine only: a packet from after the stop came
	stopSeq     uint16 // reader goroutine only: the lowest sequence number from after the stop
	// gap names the packets a track past the stop misses from before it
	// (drain): 1<<32 | its reorder stage's next sequence number<<16 | the
	// first from after the stop; 0: none missing. The reader goroutine
	// stores it, the drain reads it.
	gap atomic.Uint64
	// behind is how late (ns) the track's last packet from before the stop
	// was read after its place on the recording's timeline: a reader that
	// far behind has packets from before the stop still to read (drain).
	behind atomic.Int64
	// lastRead is the SSRC and sequence number of the packet read last
	// (1<<48 | ssrc<<16 | seq; 0: none), kept when receipts knows receive
	// times: the drain looks up whether the next one reached the machine
	// before the stop (unreadBefore). Stored by the reader goroutine.
	lastRead atomic.Uint64
	// resumed: the gate just reopened; the first packet after it logs where
	// it landed in the file and in the mix (reader goroutine only).
	resumed            bool
	fileLast, fileStep uint32 // the file's last timestamp before the cut and its step
	mixEnd             uint64 // the track's ring end before the first packet
	// gated: the gate dropped the last packet, so the next one that passes
	// re-anchors the track's timeline at its arrival (reader goroutine only).
	gated bool
	// sr is the track's latest RTCP sender report (nil: the adapter reads
	// none); srArrived, when the one the pipeline has came. Reader goroutine.
	sr        func() (conference.SenderReport, bool)
	srArrived time.Time
	srs       *senderClock // the reports whose mapping moved (nil: no reports)
	// zeroTS is the RTP timestamp of the first packet written to the file
	// (its time zero), valid once wrote is set (atomic: read at track end).
	zeroTS uint32
	wrote  atomic.Bool
	// Where the packets that reached the track went, besides the reorder
	// stage's own counters (written by the reader goroutine, read by the
	// metrics at any time): written to the file; dropped on purpose by the
	// gate (pause, blackout) or a retroactive blackout; from after the stop.
	written, paused, afterStop atomic.Uint64
	// keptByArrival counts the packets kept because they reached the
	// machine before the stop, though the track's mapping placed them after
	// it (stopPlace).
	keptByArrival atomic.Uint64
	// firstReceived is when the first packet reached the machine (unix ns;
	// 0: not known), by receipts; received, when the packet WriteRTP took
	// last did (0: not known, or the gate dropped it). Reader goroutine.
	firstReceived, received int64
	// notBefore is the recording's start (unix ns): a packet that reached
	// the machine before it, by receipts, was sent before the recording
	// and is in no file (a track that was live before the recording, whose
	// reader runs behind its socket, reads it after the subscription); the
	// mix places it before its time zero and leaves it out alike.
	// beforeStart counts them.
	notBefore   int64
	beforeStart atomic.Uint64
}

// fileStats returns where the packets of the track went so far.
func (m *mediaSink) fileStats() (st MediaStats) {
	st.Written, st.DroppedPaused, st.DroppedAfterStop = m.written.Load(), m.paused.Load(), m.afterStop.Load()
	if m.order != nil {
		rs := m.order.Stats()
		st.Missing, st.DroppedDuplicate, st.DroppedLate = rs.Skipped, rs.Duplicates, rs.Late
	}
	return st
}

// timing is what places a track's file on the recording's clock: the RTP
// timestamp of its first packet and the sender's latest sender report.
func (m *mediaSink) timing() (zeroTS uint32, sr conference.SenderReport, ok, srOK bool) {
	if !m.wrote.Load() {
		return 0, sr, false, false
	}
	if m.sr != nil {
		sr, srOK = m.sr()
	}
	return m.zeroTS, sr, true, srOK
}

// trackTiming returns what places the track's file on the recording's
// clock so far (Track.Timing; nil before its first packet): the timestamp
// of its first packet, the sender's latest report, the reports kept and,
// for audio in the mix, where the mix placed it and the sender's instant it
// put at the first sample (MixSent). Any goroutine.
func (m *mediaSink) trackTiming(clockRate uint32) *composition.TrackTiming {
	zero, sr, ok, srOK := m.timing()
	if !ok {
		return nil
	}
	timing := &composition.TrackTiming{ClockRate: clockRate, RTPZero: zero}
	if srOK {
		timing.SenderReportNTP, timing.SenderReportRTP = &sr.NTP, sr.RTPTime
	}
	timing.Mappings = m.srs.mappings()
	timing.Moves, timing.MixPlaced = m.moves.steps(), m.moves != nil
	if pipe, ok := m.audio.(*media.AudioPipeline); ok {
		if sent, ok := pipe.OriginSent(); ok {
			timing.MixSent = &sent
		}
	}
	return timing
}

// videoFrames returns the frames a video track's writer wrote; video is false
// for audio tracks.
func (m *mediaSink) videoFrames() (frames uint64, video bool) {
	if v, ok := m.file.(interface{ Stats() webmwriter.Stats }); ok { // mp4writer.Stats is the same type
		return v.Stats().Frames, true
	}
	return 0, false
}

// origin returns the instant on the recording's timeline where the mix
// placed an audio track's first packet (zero for video, or before a packet).
func (m *mediaSink) origin() time.Time {
	if p, ok := m.audio.(*media.AudioPipeline); ok {
		if pos, ok := p.Origin(); ok {
			return m.mixer.TimeAt(pos)
		}
	}
	return time.Time{}
}

// tick lets the mix pipeline decode the packets it deferred that the mixer
// is about to need (room.run: the reader's read with a deadline timed out).
// Reader goroutine.
func (m *mediaSink) tick() {
	if pipe, ok := m.audio.(*media.AudioPipeline); ok {
		pipe.Tick()
	}
}

// WriteRTP takes one packet of the track as it arrives: one sent before the
// recording started is dropped (notBefore), then the gate (pause, blackout),
// then the reorder stage into the file, and the pipeline.
func (m *mediaSink) WriteRTP(p *rtp.Packet) error {
	m.received = 0
	if m.receipts != nil {
		m.lastRead.Store(1<<48 | uint64(p.SSRC)<<16 | uint64(p.SequenceNumber))
	}
	pipe, _ := m.audio.(*media.AudioPipeline)
	// When it reached the machine, if receipts knows (a reader behind its
	// socket reads it later), otherwise when it is read.
	arrival, received := time.Now(), false
	if m.receipts != nil {
		if at, ok := m.receipts.Arrival(p.SSRC, p.SequenceNumber); ok && at.Before(arrival) {
			arrival, received = at, true
		}
	}
	if received && arrival.UnixNano() < m.notBefore {
		m.beforeStart.Add(1)
		return nil // sent before the recording started
	}
	skipEnded := false
	if m.gate != nil {
		var pos uint64
		known := false
		switch {
		case pipe != nil && received:
			pos, known = pipe.PlaceAt(p.Timestamp, arrival) // where its audio is, however late it is read
		case pipe != nil:
			pos, known = pipe.PlaceOf(p.Timestamp)
		}
		if m.gate.dropAt(pos, known, m.gated) {
			m.paused.Add(1)
			if m.gated {
				return nil // paused or blacked out: nothing reaches any file
			}
			// The cut: what passed before it goes to the file and the mix now.
			m.gated = true
			m.gate.closed(pos, known)
			if pipe != nil {
				pipe.Pause()
				if known && m.in != nil && m.gate.quietAt(pos) {
					m.in.Gate(pos) // the mixer need not wait for the track until it resumes
				}
			}
			return m.flush()
		}
		if m.gate.straggler(pos, known, m.gated) {
			// Audio from before the cut, read late: kept where it is, and
			// not a resume (nothing is placed anew: Resync would put it at
			// its arrival, within the cut).
			m.gated = false
		} else {
			skipEnded = m.gate.skipEnded()
		}
	}
	if m.gated || skipEnded {
		m.gated = false
		if m.in != nil {
			m.in.Ungate() // the mixer waits for the track again
		}
		m.gate.reopened()
		ferr := m.flush() // nothing held, unless a skipped pause dropped no packet
		m.guard.enter()
		m.silenced = false // the gate reopened: a retroactive blackout ended
		m.guard.leave()
		if m.log != nil {
			m.resumed, m.fileLast, m.fileStep = true, m.gate.last, m.gate.lastDelta
			if m.in != nil {
				m.mixEnd = m.in.Ring().End()
			}
		}
		if skipEnded {
			m.gate.closeGap() // the file: this packet follows the last one before the pause
		}
		if pipe != nil {
			// The mix: after a skipped pause where the track's audio before
			// the cut ended (ResyncAt), otherwise by timestamp if that fits
			// the arrival.
			if from, to, ok := m.mixer.LastCut(); skipEnded && ok && to != math.MaxUint64 {
				pipe.ResyncAt(from, to)
			} else {
				pipe.Resync()
			}
		}
		if m.clk != nil {
			m.clk.reset()
		}
		if ferr != nil {
			return ferr
		}
	}
	m.arrival = arrival // flush (above) wrote what it held with arrival now
	if received {
		m.received = arrival.UnixNano()
		if m.firstReceived == 0 {
			m.firstReceived = m.received
		}
	}
	switch m.stopPlace(p, pipe) {
	case afterStop:
		if !m.pastStop && pipe != nil {
			// The stop is a cut for the mix: what the pipeline holds for
			// a missing packet, or defers, is placed now, not when the
			// track closes, after the drain, which may wait longer than
			// the mixer waits for the track (the latency budget): that
			// audio came before the stop. A missing packet that still
			// comes (the drain waits for those that reached the machine
			// before the stop) is placed where it belongs, decoded out of
			// order: nothing is given up here (PlaceHeld, not Pause:
			// packets reordered around the stop were lost from the mix,
			// not from the file).
			pipe.PlaceHeld()
		}
		if !m.pastStop || int16(p.SequenceNumber-m.stopSeq) < 0 {
			m.pastStop, m.stopSeq = true, p.SequenceNumber // the first packet from after the stop
		}
		m.drainDone()
		m.afterStop.Add(1)
		return nil // sent after the stop: neither the file nor the mix
	case unplacedAfterStop:
		m.afterStop.Add(1)
		return nil // nothing says it is from before the stop: not kept, and no sign the track is complete
	}
	if !m.wrote.Load() {
		m.zeroTS = p.Timestamp
		m.wrote.Store(true)
	}
	if m.sr != nil {
		if sr, ok := m.sr(); ok && !sr.Arrived.Equal(m.srArrived) {
			m.srArrived = sr.Arrived
			shift := uint32(0)
			if m.gate != nil {
				shift = m.gate.shift
			}
			m.srs.report(sr, m.zeroTS, shift)
			if pipe != nil {
				pipe.SenderReport(sr.SSRC, sr.NTP, sr.RTPTime)
			}
		}
	}
	var err error
	if m.order != nil {
		err = m.order.Push(p, m.arrival)
	} else {
		err = (*trackFile)(m).WriteRTP(p)
	}
	if m.audio != nil {
		var aerr error
		if pipe != nil && received {
			aerr = pipe.WriteRTPAt(p, m.arrival)
		} else {
			aerr = m.audio.WriteRTP(p)
		}
		if err == nil {
			err = aerr
		}
	}
	if m.resumed {
		m.resumed = false
		m.logResume()
	}
	if m.pastStop {
		m.drainDone()
	}
	return err
}

// stopPlacing says where a packet lies against the recording's stop.
type stopPlacing int

const (
	beforeStop        stopPlacing = iota // kept: before the stop, or no stop yet
	afterStop                            // its audio begins at or after the stop
	unplacedAfterStop                    // the stop began and nothing places the packet
)

// stopPlace says whether the media of p begins at or after the instant the
// recording stops: where the mix places it (pipe), or, for video and audio
// without a mix, where the track's clock relation does (the least-late
// arrival of its recent packets, so a packet read late, by a busy reader or
// after a stall, is placed where it was sent). A packet that reached the
// machine before the stop (m.arrival) was sent before it, wherever a
// mapping places it: it is kept (keptByArrival counts those a mapping
// placed after the stop: a mapping later than the packets' arrivals, as
// after a late-stamped sender report, would otherwise cut the file's last
// packets before the stop). Once the stop began, a packet
// that neither can place (for the mix: a new source, the first after a cut,
// a timestamp more than the pipeline's MaxJump from the last, as after a
// reader so far behind that its socket dropped seconds of packets) is not
// known to be from before the stop, so it is not kept: the mix would
// re-anchor at its arrival, after the stop, and take it. For a packet from
// before the stop it records how late it was read (behind). Reader
// goroutine only.
func (m *mediaSink) stopPlace(p *rtp.Packet, pipe *media.AudioPipeline) stopPlacing {
	if pipe != nil {
		if m.stopAt == nil {
			return beforeStop
		}
		end := m.stopAt.Load()
		pos, ok := pipe.PositionOf(p.Timestamp)
		switch {
		case !ok && end != 0:
			return unplacedAfterStop
		case !ok:
			return beforeStop
		case end != 0 && pos+1 >= end:
			return m.arrivedBeforeStop()
		}
		now := m.mixer.Now()
		m.behind.Store(int64(m.mixer.Duration(now - min(pos, now))))
		return beforeStop
	}
	if m.stopWall == nil || m.clk == nil {
		return beforeStop
	}
	ts := p.Timestamp // as the file has it: the clock relation observes the file
	if m.gate != nil {
		ts -= m.gate.shift
	}
	stop := m.stopWall.Load()
	at, ok := m.clk.instantOf(ts)
	switch {
	case !ok && stop != 0:
		return unplacedAfterStop
	case !ok:
		return beforeStop
	case stop != 0 && at >= stop:
		return m.arrivedBeforeStop()
	}
	m.behind.Store(max(time.Now().UnixNano()-at, 0))
	return beforeStop
}

// arrivedBeforeStop places a packet that a mapping placed at or after the
// stop: before it if it reached the machine before the stop (see
// stopPlace). Reader goroutine only.
func (m *mediaSink) arrivedBeforeStop() stopPlacing {
	if stop := m.stopWall.Load(); stop != 0 && m.arrival.UnixNano() < stop {
		m.keptByArrival.Add(1)
		return beforeStop
	}
	return afterStop
}

// unreadBefore reports whether the track's next packet, not read yet,
// reached the machine before stop, by its receive time (receipts: the UDP
// mux noted it, and its reader has not read it): a reader starved of CPU
// still has audio from before the stop to read, however long it has not
// run. A lost next packet is looked past, two at most; unknown is false.
// Any goroutine.
func (m *mediaSink) unreadBefore(stop time.Time) bool {
	at, ok := m.unread()
	return ok && at.Before(stop)
}

// unread returns when the track's next packet, not read yet, reached the
// machine, by its receive time (see unreadBefore); false if it did not or
// that is not known. Any goroutine; it allocates nothing
// (media.InputOptions.Unread).
func (m *mediaSink) unread() (time.Time, bool) {
	v := m.lastRead.Load()
	if m.receipts == nil || v == 0 {
		return time.Time{}, false
	}
	ssrc, seq := uint32(v>>16), uint16(v)
	for d := uint16(1); d <= 3; d++ {
		if at, ok := m.receipts.Arrival(ssrc, seq+d); ok {
			return at, true
		}
	}
	return time.Time{}, false
}

// gapState is what may still fill a track's gap before the stop (drain).
type gapState int

const (
	gapFilled   gapState = iota // nothing missing can come: every packet that reached the machine was read
	gapDropped                  // nothing missing can come but packets the kernel may have dropped (kernelDropped)
	gapQueued                   // a missing packet reached the machine before the stop, not read yet
	gapInFlight                 // the socket was read past the stop and a missing packet is not there, or came after it
	gapUnknown                  // no receive times: it may still come
)

// gapMax is how many missing sequence numbers gapState looks up: a reorder
// stage holds at most 256 audio packets (reorderConfig).
const gapMax = 512

// gapState says, by the receive times (receipts), what may still fill the
// track's gap before the stop (gap: the reader read a packet from after
// the stop, and the reorder stage misses some before it). The path from
// the UDP mux's socket to the track's reader keeps the socket's order, so
// a missing packet received no later than the packet read last was lost
// on its way (a full queue) or is held by the reorder stage: it never
// comes. One received later and before the stop waits for the reader
// (gapQueued). One not received at all that the kernel may have dropped
// (kernelDropped) never comes either (gapDropped). Any other one not
// received, once the packet read last came after the stop (the socket was
// read past it, in its order), had not reached the machine at the stop: it
// was lost, or is still in the network (gapInFlight). Without receive
// times it may be anywhere (gapUnknown). Any goroutine.
func (m *mediaSink) gapState(stop time.Time) gapState {
	g, v := m.gap.Load(), m.lastRead.Load()
	if g == 0 {
		return gapFilled
	}
	next, end := uint16(g>>16), uint16(g)
	if m.receipts == nil || v == 0 || end-next > gapMax {
		return gapUnknown
	}
	ssrc := uint32(v >> 16)
	last, lastKnown := m.receipts.Arrival(ssrc, uint16(v))
	st := gapFilled
	dropped, runEnd := false, next // whether the kernel may have dropped the run of packets not received up to runEnd
	for seq := next; seq != end; seq++ {
		at, ok := m.receipts.Arrival(ssrc, seq)
		if !ok && int16(seq-runEnd) >= 0 {
			dropped, runEnd = m.kernelDropped(ssrc, seq) // the first of a run
		}
		switch {
		case ok && lastKnown && !at.After(last):
			// read, or lost on its way: it never comes
		case ok && at.Before(stop):
			return gapQueued
		case !ok && dropped:
			st = max(st, gapDropped)
		case ok || lastKnown && !last.Before(stop):
			st = gapInFlight
		default:
			return gapUnknown
		}
	}
	return st
}

// kernelDropped reports whether the kernel may have dropped the packet seq,
// never received, and those after it up to runEnd, the next one received
// (its socket's queue full: a recorder short of CPU). The drop count comes
// with each datagram (conference.DropReader), per socket: the received
// packets of the SSRC on either side of the run straddle a drop if their
// counts differ, and the run may be among the datagrams dropped (of any
// sender) if they are at least as many as the packets missing between the
// two. When fewer, some of those missing were not dropped by the kernel
// (lost, or delayed in the network, as a 1 s delay spike is): none is told
// apart, and every one may still come. Any goroutine.
func (m *mediaSink) kernelDropped(ssrc uint32, seq uint16) (dropped bool, runEnd uint16) {
	received := func(s uint16) bool { _, ok := m.receipts.Arrival(ssrc, s); return ok }
	before, after := seq-1, seq+1
	for ; !received(after); after++ {
		if after-seq > gapMax {
			return false, after
		}
	}
	dr, ok := m.receipts.(conference.DropReader)
	if !ok {
		return false, after
	}
	for ; !received(before); before-- {
		if seq-before > gapMax {
			return false, after
		}
	}
	n, ok := dr.DroppedBetween(ssrc, before, after)
	return ok && n >= int(after-before-1), after
}

// drainDone tells the stop's drain that the track is complete up to the stop:
// a packet from after it came and none before it is missing (the reorder
// stage holds nothing). Reader goroutine only.
func (m *mediaSink) drainDone() {
	if m.drainClosed || m.drained == nil { // video: not waited for
		return
	}
	if m.order != nil {
		// Every packet before the first one from after the stop is in the
		// file: the reorder stage waits for none and has reached it (the
		// packets from after the stop never enter it).
		if next, ok := m.order.Next(); m.order.Held() > 0 || ok && next != m.stopSeq {
			m.gap.Store(1<<32 | uint64(next)<<16 | uint64(m.stopSeq))
			return
		}
	}
	m.drainClosed = true
	close(m.drained)
}

// logResume logs where the first packet after the gate reopened landed: in
// the file, the gap after the last packet before the cut; in the mix, its
// ring position against the track's end before it and the last skip cut.
func (m *mediaSink) logResume() {
	ms := func(ticks int32) float64 { return float64(ticks) * 1000 / float64(m.gate.clock) }
	args := []any{"fileGapMs", ms(int32(m.gate.last - m.fileLast - m.fileStep)), "fileShift", m.gate.shift}
	if m.in != nil {
		pos := func(x uint64) float64 { return float64(m.mixer.Duration(x)) / 1e6 }
		args = append(args, "mixEndBeforeMs", pos(m.mixEnd), "mixEndAfterMs", pos(m.in.Ring().End()),
			"arrivalMs", pos(m.mixer.Now()))
		if from, to, ok := m.mixer.LastCut(); ok {
			args = append(args, "cutFromMs", pos(from), "cutToMs", pos(to))
		}
	}
	m.log.Info("track resumed after a cut", args...)
}

// flush writes what the reorder stage holds to the file (the missing packets
// between are given up on).
func (m *mediaSink) flush() error {
	if m.order == nil {
		return nil
	}
	m.arrival = time.Now()
	return m.order.Flush()
}

// trackFile is a mediaSink as the reorder stage's sink: it writes one packet,
// in sequence order, to the track's file.
type trackFile mediaSink

func (f *trackFile) WriteRTP(p *rtp.Packet) error {
	m := (*mediaSink)(f)
	m.guard.enter()
	defer m.guard.leave()
	if m.gate == nil {
		err := m.file.WriteRTP(p)
		if err == nil {
			m.written.Add(1)
			m.wroteTS, m.wroteAny = p.Timestamp, true
		}
		return err
	}
	orig := p.Timestamp
	p.Timestamp = m.gate.timestamp(p) // shifted after a skipped pause; p is shared: restore
	if m.silenced && int32(p.Timestamp-m.silencedFrom) >= 0 {
		p.Timestamp = orig
		m.paused.Add(1)
		return nil // held back by the reorder stage past a retroactive blackout's start
	}
	err := m.file.WriteRTP(p)
	if err == nil {
		m.written.Add(1)
		m.wroteTS, m.wroteAny = p.Timestamp, true
	}
	if m.clk != nil {
		m.clk.observe(p.Timestamp, m.arrival.UnixNano())
	}
	p.Timestamp = orig
	return err
}

// Close writes what the reorder stage holds and closes the file and the
// pipeline. The reader goroutine writes no more (trackSub.close).
func (m *mediaSink) Close() error {
	err := m.flush()
	m.guard.edit(func() { err = errors.Join(err, m.file.Close()) })
	if m.audio != nil {
		err = errors.Join(err, m.audio.Close())
		m.mixer.RemoveInput(m.in)
	}
	return err
}

// newTrackWriter creates the per-track file writer of t's codec (the
// media/format table): no transcoding.
func newTrackWriter(t *conference.Track, path string) (packetSink, error) {
	c := format.ForCodec(t.Codec.MimeType)
	if c == nil {
		return nil, fmt.Errorf("recorder: no writer for codec %s", t.Codec.MimeType)
	}
	return c.New(path, keyframer(t))
}

// keyframer returns a non-blocking keyframe request for t's writer: it sends
// the PLI on its own goroutine, at most one at a time.
func keyframer(t *conference.Track) func() {
	if t.RequestKeyframe == nil {
		return func() {}
	}
	var busy atomic.Bool
	return func() {
		if busy.Swap(true) {
			return
		}
		go func() {
			defer busy.Store(false)
			t.RequestKeyframe()
		}()
	}
}

// newAudioPipeline returns the decoder of t's codec writing into in.
func newAudioPipeline(t *conference.Track, in *media.MixInput) (*media.AudioPipeline, error) {
	codec, err := media.CodecFromMime(t.Codec.MimeType)
	if err != nil {
		return nil, err
	}
	return media.NewAudioPipeline(media.AudioPipelineConfig{Codec: codec, ClockRate: int(t.Codec.ClockRate), Input: in})
}

// drainMax bounds how long a stop waits for audio still on its way to a
// track that writes nothing meanwhile.
const drainMax = 300 * time.Millisecond

// drainStep is the most a tick of the stop's drain counts of its wait for a
// track that writes nothing (drainMax): a tick that comes later came after
// the recorder was starved of CPU (or stopped), whose readers had no time to
// read what reached the machine meanwhile.
const drainStep = 50 * time.Millisecond

// drain is the first step of a stop at instant stop (Session.finish, before
// the tracks are detached): audio sent before the stop that is still in the
// network, or delayed by the sender or this machine, still reaches the
// track files and the mix. It waits until every audio track that is
// recording (its gate open, packets written, a mix mapping) has received a
// packet from after the stop, as its mix mapping places it, and every packet
// before that (its reorder stage waits for none), as long as one of these
// holds (drainReason; the log says how long each held, and which one
// ended the wait):
//   - writing: it wrote a packet from before the stop within drainMax
//     (300 ms: a round trip and jitter; past it, a publisher that stopped
//     sending) plus how late that packet was read (behind: a recorder
//     starved of CPU reads its sockets seconds behind, in bursts as its
//     readers get the CPU), for up to twice the latency budget; the
//     300 ms are the drain's running time (drainStep: a recorder starved
//     of CPU, or stopped, read nothing meanwhile);
//   - unread: its next packet reached the machine (unreadBefore: the UDP
//     mux's receive times), however long its reader has not run, for up
//     to twice the budget: what waits for a starved reader arrived before
//     the stop, or on its way within the wait, and belongs in the files.
//
// Once it read a packet from after the stop, only a packet missing before
// it may still come (gapState): one that reached the machine before the
// stop and waits for the reader is waited for up to twice the budget
// (gapQueued); one that had not reached the machine at the stop (lost, or
// still in the network: a packet delayed 1 s comes 1 s late, and it
// belongs in the files) up to the budget, as long as its reorder stage
// would wait, after which the track counts as complete: the packet did not
// come (gapInFlight); without receive times, up to the budget too, then
// it is given up on (gap). One the kernel may have dropped (its socket's
// queue full: a recorder short of CPU) is not waited for (gapDropped: the
// socket's drop count, SO_RXQ_OVFL, grew between its neighbours by at least
// as many packets as they miss), and the track counts as complete
// (kernelDropped). Nothing is waited for when the recording is paused.
// From the stop on, packets from after it reach neither the file nor the
// mix. A recording without a mix drains the same way, its tracks placing
// their packets by their clock relation (stopPlace). Video tracks are not
// waited for; what they read meanwhile is kept up to the stop, as their
// clock relation places it (stopPlace): a stop is one instant for every
// track.
func (s *Session) drain(stop time.Time) {
	s.mu.Lock()
	sm := s.media
	s.mu.Unlock()
	if sm == nil || s.lc.paused.Load() {
		return
	}
	sm.stopWall.Store(stop.UnixNano()) // first: a reader that sees stopAt keeps what arrived before it (stopPlace)
	if sm.mixer != nil {
		sm.stopAt.Store(sm.mixer.PosAt(stop) + 1)
		sm.mixer.SetEnd(stop) // the mix writes nothing past the stop while the drain waits
	}
	var wait []*mediaSink
	for _, ts := range s.room.subsOf(s) {
		if ms, ok := ts.sink.(*mediaSink); ok && ms.drained != nil && ms.wrote.Load() && (ms.gate == nil || !ms.gate.black.Load()) {
			wait = append(wait, ms)
		}
	}
	if len(wait) == 0 {
		return
	}
	start := time.Now()
	budget := sm.latency
	if budget <= 0 {
		budget = media.DefaultLatency
	}
	behindEnd := start.Add(max(2*budget, drainMax))
	until := [drainReasons]time.Time{drainWriting: behindEnd, drainUnread: behindEnd, drainGapQueued: behindEnd,
		drainGapInFlight: start.Add(max(budget, drainMax)), drainGap: start.Add(max(budget, drainMax))}
	var waited [drainReasons]time.Duration
	notArrived := 0    // tracks complete but for packets that had not reached the machine at the stop
	kernelDropped := 0 // tracks complete but for packets the kernel may have dropped
	log := func(msg string, why ...any) {
		args := append([]any{"tracks", len(wait), "wait", time.Since(start).Round(time.Millisecond)}, why...)
		for r, d := range waited {
			if d > 0 {
				args = append(args, drainReason(r).String(), d.Round(time.Millisecond))
			}
		}
		s.log.Info(msg, args...)
	}
	// Each track's packets written so far, and how long the drain ran
	// since that last grew.
	written := make([]uint64, len(wait))
	quiet := make([]time.Duration, len(wait))
	for i, ms := range wait {
		written[i] = ms.written.Load()
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	last := start
	for i, ms := range wait {
	waiting:
		for {
			select {
			case <-ms.drained:
				break waiting
			case <-tick.C:
				now := time.Now() // not the tick's: a drain short of CPU reads it late
				// A tick that came late counts drainStep at most: the
				// recorder was starved of CPU, and its readers, and the UDP
				// mux that notes receive times, did not run either.
				step := min(now.Sub(last), drainStep)
				for j, other := range wait[i:] {
					if w := other.written.Load(); w != written[i+j] {
						written[i+j], quiet[i+j] = w, 0
					} else {
						quiet[i+j] += step
					}
				}
				why := ms.drainReason(stop, quiet[i], now)
				switch {
				case why == drainFilled:
					break waiting // every missing packet that reached the machine was read or lost on its way
				case why == drainDropped:
					kernelDropped++
					break waiting // and those that did not, the kernel may have dropped
				case why == drainGapInFlight && !now.Before(until[why]):
					notArrived++
					break waiting
				case why == drainQuiet || !now.Before(until[why]):
					log("stop: audio still missing after the drain", "reason", why.String())
					return
				}
				waited[why] += now.Sub(last)
				last = now
			}
		}
	}
	log("stop: drained the audio on its way", "notArrived", notArrived, "kernelDropped", kernelDropped)
}

// drainReason says why the stop's drain waits for a track, or why it
// stopped waiting (drain).
type drainReason int

const (
	drainWriting     drainReason = iota // it wrote a packet from before the stop lately (drainMax + behind)
	drainUnread                         // its next packet reached the machine, not read yet (unreadBefore)
	drainGapQueued                      // a packet it misses reached the machine before the stop (gapQueued)
	drainGapInFlight                    // a packet it misses had not reached the machine at the stop (gapInFlight)
	drainGap                            // it misses a packet, and no receive times say where it is (gapUnknown)
	drainQuiet                          // none of these: it wrote nothing for drainMax
	drainFilled                         // it misses nothing that may still come (gapFilled)
	drainDropped                        // it misses nothing that may still come but what the kernel may have dropped (gapDropped)
	drainReasons                        // how many there are
)

func (r drainReason) String() string {
	return [...]string{"writing", "unread", "gapQueued", "gapInFlight", "gap", "quiet", "filled", "dropped"}[r]
}

// drainReason says why the stop's drain (at stop) still waits for the
// track at now, whose writes the drain has not seen grow for quietFor of its
// running time (drainStep). Once it read a packet from after the stop, only
// a missing one may still come (gapState). Before, it waits while the track
// wrote lately (writing: drainMax plus how late it was read), and then while
// its next packet, not read yet, is on the machine (unread: it reached it
// before now): a packet that came within the wait and waits for a reader
// starved of CPU is read, not given up with the reader's silence taken for
// the sender's.
func (m *mediaSink) drainReason(stop time.Time, quietFor time.Duration, now time.Time) drainReason {
	if m.gap.Load() != 0 {
		switch m.gapState(stop) {
		case gapQueued:
			return drainGapQueued
		case gapInFlight:
			return drainGapInFlight
		case gapUnknown:
			return drainGap
		case gapDropped:
			return drainDropped
		}
		return drainFilled
	}
	switch {
	case quietFor < drainMax+time.Duration(m.behind.Load()):
		return drainWriting
	case m.unreadBefore(now):
		return drainUnread
	}
	return drainQuiet
}
