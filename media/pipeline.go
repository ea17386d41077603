package media

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/internal/lend"
)

// ErrClosed is returned by WriteRTP after Close.
var ErrClosed = errors.New("media: pipeline closed")

// maxPayload is the largest RTP payload the pipeline keeps (an Ethernet MTU).
const maxPayload = 1500

// maxOpusDuration is the longest Opus packet (RFC 6716 §3.2.5): 120 ms.
const maxOpusDuration = 120 * time.Millisecond

// AudioPipelineConfig configures an AudioPipeline. Zero values mean defaults.
type AudioPipelineConfig struct {
	// Codec is the track's codec (see CodecFromMime). Required.
	Codec Codec
	// ClockRate is the RTP clock rate; default the codec's (48000 for Opus,
	// 8000 for G.711).
	ClockRate int
	// SampleRate is the rate decoded to: the mix rate. Default the rate of
	// Input's mixer. Opus decodes natively at 8000, 12000, 16000, 24000 or
	// 48000 Hz; G.711 at 8000 Hz or a multiple of it (linear interpolation).
	SampleRate int
	// Input is the mixer input the decoded audio goes to. Required.
	Input *MixInput
	// MaxJump is the largest RTP timestamp step kept as a gap; a larger jump,
	// forward or back, re-anchors the timeline. Default 5 s.
	MaxJump time.Duration
	// MaxSkew is the largest sender clock error absorbed by resampling;
	// default 5 % (the issue asks for 0.5 %; real senders stay far below).
	MaxSkew float64
	// DecodeAll decodes every Opus packet in full; by default inactive ones
	// (SILK VAD flags clear, DTX) play as silence undecoded, and at 16 kHz or
	// less the CELT layer of hybrid frames is not decoded (opusdec.go).
	DecodeAll bool
}

// PipelineStats are an AudioPipeline's counters.
type PipelineStats struct {
	Packets      uint64 // packets given to WriteRTP
	Decoded      uint64 // packets decoded and written to the ring
	Lost         uint64 // sequence numbers given up on: their place was decided without them (each once)
	Concealed    uint64 // lost packets whose place was filled by concealment
	Recovered    uint64 // lost Opus packets decoded from the next packet's in-band FEC
	Duplicates   uint64 // packets dropped as duplicates
	Late         uint64 // packets that arrived after their place was written: (partly) dropped
	Shed         uint64 // packets dropped whole without being decoded: their place was written (Late or BeforeStart)
	DecodeErrors uint64 // packets the decoder rejected (silence)
	Skipped      uint64 // inactive Opus packets played as silence undecoded (counted in Decoded too)
	Reanchors    uint64 // timeline re-anchors: new SSRC, timestamp jump, resume
	BySR         uint64 // anchors placed by the sender's RTCP sender report, not by arrival
	Deferred     uint64 // packets queued undecoded while the mixer waited for another track (deferred.go)
	// BeforeStart counts packets whose audio (partly) maps before the
	// track's start in the mix: before the recording's time zero, or before
	// what the mix had written when the track joined (captured before the
	// recording, or a backlog older than the join wait). That audio is left
	// out of the mix, never shifted; the track's file keeps it.
	BeforeStart uint64
	// Resampled counts the packets decoded and written at a ratio other
	// than 1: stretched or squeezed (the sender's clock, or an offset caught
	// up), a pitch shift. A good clock's should be 0.
	Resampled uint64
}

// seqWindow is the number of packets tracked after the oldest undecided one:
// 5 s of 20 ms packets, the default budget. A missing packet is given up once
// seqWindow packets came after it, even within the budget.
const seqWindow = 256

// maxDropout is the longest forward jump of sequence numbers counted as lost
// packets (RFC 3550 A.1: MAX_DROPOUT); a longer one restarts the sequence.
const maxDropout = 3000

// heldSlots is the decoder's reorder window in packets: a packet that comes
// after a missing one is held (up to heldPayload bytes) so Opus decodes in
// sequence order, for at most holdTime.
const (
	heldSlots   = 8
	heldPayload = 512
	holdTime    = 200 * time.Millisecond
	settleTime  = 500 * time.Millisecond // at most half the budget
)

// heldPacket is a packet kept by the reorder window; payload is a copy.
type heldPacket struct {
	valid   bool
	seq     uint16
	ts      uint32
	at      uint64 // arrival position
	payload []byte // cap heldPayload, reused
}

// windowLen is the length of one drift measurement window, in arrival time.
const windowLen = time.Second

// AudioPipeline decodes one audio track's RTP packets to PCM at the mix rate
// and places each at its own position on the recording's timeline in its
// mixer input's ring (see the package documentation). WriteRTP, Resync and
// Close belong to one goroutine, the track's reader; Stats may be called from
// any.
type AudioPipeline struct {
	codec   Codec
	clock   float64 // RTP ticks per second
	rate    float64 // mix samples per second
	input   *MixInput
	ring    *Ring
	mixer   *Mixer
	maxJump int64 // in RTP ticks
	maxSkew float64

	opus   *opusDecoder
	g711   *[256]int16
	factor int   // G.711 output samples per input sample
	prev   int16 // G.711 interpolation state
	maxPCM int   // the most samples a packet decodes to (the size of scratch.pcm)

	// Sequence state: packets are written as they arrive; the timeline is
	// decided up to the end of the in-sequence run.
	started   bool
	ssrc      uint32
	decSeq    uint16 // next sequence number the decoder expects
	held      [heldSlots]heldPacket
	nheld     int
	heldIdle  int               // packets decoded in order, none held, since the held payloads' block was last needed
	holdFor   uint64            // longest wait for a missing packet before decoding on, in samples
	seen      [seqWindow]uint32 // seq|1<<16 of the packets received, by seq mod seqWindow
	nextSeq   uint16            // oldest sequence number not yet decided
	maxSeq    uint16            // newest sequence number written
	arrived   [seqWindow / 64]uint64
	starts    [seqWindow]uint32
	ends      [seqWindow]uint32 // positions of the arrived packets, low 32 bits (see near)
	pending   int               // arrived packets at or after nextSeq
	resync    bool              // the next packet starts a new sequence (Resync)
	recheck   bool              // the next packet keeps the mapping only if it fits its arrival (Resync)
	resumeAt  bool              // the next packet's first sample goes at resumePos (ResyncAt)
	resumePos uint64
	cutFrom   uint64 // the skipped cut's start (ResyncAt)
	// The bridge over a skipped cut (see anchor): what the mapping places in
	// [bridgeFrom, bridgeTo) goes bridgeBy (the cut's length) earlier, to
	// just before the cut, where the track's own audio before it ended.
	bridgeFrom, bridgeTo, bridgeBy uint64

	// Timeline mapping: position(ext) = basePos + (ext-baseExt)·rate/clock·ratio.
	anchored bool
	lastTS   uint32
	ext      int64 // lastTS extended to 64 bits
	baseExt  int64
	basePos  float64
	ratio    float64
	origExt  int64 // extended timestamp at the anchor: nominal positions count from it

	// Drift measurement: per window of arrival time, the least lateness of
	// a packet (arrival minus mapped position): network delay only adds to
	// it, so its trend is the sender's clock against ours.
	winEnd   uint64  // arrival position ending the current window
	winMin   float64 // least lateness in the current window
	winNom   float64 // nominal (unresampled) position of that packet
	winAt    float64 // its arrival position
	havePrev bool    // the previous window's least lateness
	prevMin  float64
	prevNom  float64
	prevAt   float64
	haveBase bool
	base     float64 // the reference lateness the offset is steered to (see measure)
	baseMin  float64 // the least lateness of the slope's reference window
	baseNom  float64 // its nominal position
	baseAt   float64 // its arrival
	pulling  bool    // the ratio pulls a track placed late back to on time (measure)
	// arrGap: since the reference window, a packet came more than
	// reportStep later than the one before by their timestamps, and the
	// packets did not catch up to within reportStep of their lateness
	// before it (arrGapLate): a step, not a clock rate (rateByArrival).
	arrGap     bool
	arrGapLate float64
	// arrRate: the sender's clock rate (our samples per nominal one) by
	// the packets' arrivals, as rateByArrival found it and measure's slope
	// since; 1 (not found: measure's drift within ±1 % as before).
	arrRate float64
	// arrPull: rateByArrival found the rate with the track more than
	// pullFar early: the offset is caught up at up to MaxSkew till within
	// pullFar (measure).
	arrPull bool

	// Concealment: the last decoded packet, repeated into a short gap.
	last    []int16
	lastN   int
	lastSeq uint16
	lastEnd int64
	haveLst bool

	// Settling: a new anchor's first packets are written but not decided
	// until settleEnd (arrival time), so that the anchor can still move back
	// by the least lateness seen meanwhile (the first packet came late:
	// queued at connect, a backlog, jitter).
	settling    bool
	settleEnd   uint64
	settleMin   float64
	settleFrom  uint64
	settleFloor uint64 // what was written before the anchor: the shift stops there
	// settleFirst: the track's first anchor. Its shift does not stop at
	// the floor (the input's start): what it moves before it is dropped.
	settleFirst bool

	// byArrival: the anchor is the settled arrival (not a sender report or
	// a skipped cut's end), so lateness 0 is on time: the drift reference
	// is at most 0 (see measure).
	byArrival bool

	closed bool

	dq deferQueue // packets whose decoding is deferred (deferred.go)

	onPlace func(ts uint32) // OnPlace

	// A run of newest packets later than the budget (catchingUp): since
	// arrival lateAt, when the track's audio was at timeline position
	// latePos. lateSince: the first of the run's arrivals (catchingUp's
	// windows do not move it), when srCount was lateSR (reportKeeps).
	lateRun   bool
	lateAt    uint64
	latePos   float64
	lateLong  bool
	lateSince uint64
	lateSR    uint64

	// The latest RTCP sender report (SenderReport): position srPos on the
	// timeline was the sender's wall clock at RTP timestamp srTS.
	srValid bool
	srSSRC  uint32
	srTS    uint32
	srPos   float64
	srCount uint64 // the reports given so far
	// Following the sender's reports (followReport): srNew, a report not
	// yet checked against a packet; srFollow, the mapping follows them
	// (measure does not steer it by arrival) since the arrival srAt of the
	// last one followed, which placed the packet with timestamp srLastExt
	// at srLastPos and found the sender's clock at srSlope (our samples per
	// nominal one) since the reference (srExt at srRefPos: the first report
	// followed or the last step); srLeast, the least lateness of a packet
	// by that report since.
	srNew     bool
	srFollow  bool
	srAt      uint64
	srExt     int64
	srRefPos  float64
	srSlope   float64
	srLastExt int64
	srLastPos float64
	srLeast   float64
	// srLineLeast: srLeast when the last report followed was followed
	// (its trial's least lateness by it): how well that report fits the
	// packets, whatever they did since (see followReport).
	srLineLeast float64
	// srBaseLeast: the least lateness by the line followed of the packets
	// of its report's trial and of those that came till srBaseEnd
	// (reportTrial after it was followed): the packets' floor where the
	// line begins, before the sender's clock drifted from it (see
	// followReport's take-back).
	srBaseLeast float64
	srBaseEnd   uint64
	srOff       float64 // where the reports place a packet, less where the mapping does, at the first one followed
	// srFirst: the last report followed is the first (since srFollow
	// began); srFirstEarly, the least lateness of a packet by it as
	// stamped (negative: it placed packets after their receipt, so it was
	// stamped late); srFirstOrigin, its srOff is OriginSent's. The next
	// report followed checks its stamp (followReport).
	srFirst       bool
	srFirstEarly  float64
	srFirstOrigin bool

	// srTrial: the latest report is on trial until the arrival srTrialEnd
	// (reportTrial), and srTrialLeast is the least lateness of a packet by
	// it as stamped so far: see followReport.
	srTrial      bool
	srTrialEnd   uint64
	srTrialLeast float64
	// srTrialRef is the least lateness of a trial's packet by the
	// reference's line (srExt, srRefPos, on at srSlope), and srRefLeast
	// that of the packets by it when it became the reference: how much
	// later the packets come now is the sender's drift as their arrivals
	// show it (followReport's first slope).
	srTrialRef float64
	srRefLeast float64
	// srRefTrial: srRefLeast is a trial's least lateness (300 ms of
	// packets), not one packet's (a step confirmed at once): only then do
	// the arrivals since the reference tell a drift (driftShown, steer).
	srRefTrial bool
	// srGap: since the reference, a packet came more than reportStep
	// later than the one before by their timestamps (watchGap): a step of
	// the sender's clock, or a write that lagged, not a clock rate
	// (rateShown).
	srGap bool
	// hiLate: the newest packets' lateness, high-water, falling as they
	// go (watchGap): one that came at once much earlier than it is a step
	// back (srGap).
	hiLate float64
	// srRepExt, srRepPos: the reference's own report, where it placed the
	// packet with its own timestamp (extended), less srOff (srOwn): two
	// reports' own points give the clock's rate (rateShown), where their
	// lines at the slope then in use, taken at packets after them, do not.
	srRepExt int64
	srRepPos float64
	// srDrifted: the nominal samples the mapping ran at the nominal rate,
	// from its anchor by arrival to the first report followed (its own
	// timestamp: srOff is its own point's offset; 0: not so anchored).
	// srOff took in what the clock drifted meanwhile; the first rate shown
	// gives it back (followReport).
	srDrifted float64

	// srCatchUp: the ratio catches up an offset from the reports' line
	// until the newest packet's extended timestamp reaches srCatchEnd
	// (catchUp).
	srCatchUp  bool
	srCatchEnd int64
	// srPull: a clock rate shown with the mapping placing the audio more
	// than pullFar late (a clock running fast: see followReport); the
	// offset is caught up at up to MaxSkew till within pullFar (catchUp).
	srPull bool
	// extEnd: where the newest packet's audio ends, in extended timestamp
	// (it was placed whole at the ratio then in use).
	extEnd int64
	// srBack: a confirmed step back not taken yet, in samples (0: none):
	// the mapping places the audio that much later than the reports'
	// line, and goes back by it in the next silence, dropping as much of
	// it (takeBackInSilence), or, if none came by the arrival
	// srBackUntil, by catching it up (catchUp). See followReport.
	srBack      float64
	srBackUntil uint64
	// srSloped: the reports followed showed the sender's clock rate
	// (srSlope measured over 2 s of them), since they are followed.
	srSloped bool
	// srLeftGood: srSlope left a good clock's band (goodClock) since the
	// reference (see stepSlope).
	srLeftGood bool
	// srCandOne: a far candidate is pending with the ratio at 1 (see
	// candOne); the next report followed puts it back at the slope's.
	srCandOne bool
	// srRefMoved: how far the confirmed step that set the reference moved
	// the reports from the line before it, in samples (0: the reference is
	// no step: the first report followed, a rate shown). See stepSlope.
	srRefMoved float64
	// srGoodShown: the reports since the reference that showed a good
	// clock over 2 s of them (driftShown). srLeave: a report since left
	// its slope at once, placing the newest packet srLeaveOff samples off
	// its line; the slope is left once a later one moved on that way
	// (movedOn, driftShown), and steer does not catch up that much of an
	// offset meanwhile.
	srGoodShown int
	srLeave     bool
	srLeaveOff  float64

	// A report that moved from the line of the last one followed (a step
	// candidate, see followReport): it placed the packet with timestamp
	// srCandExt at srCandPos. The next report says whether it is a step.
	// srCandNear: it moved by srCandMoved, up to reportStep, and was
	// followed as drift meanwhile; srCandSlope was the slope before it.
	srCand      bool
	srCandExt   int64
	srCandPos   float64
	srCandNear  bool
	srCandMoved float64
	srCandSlope float64
	// srCandRepExt, srCandRepPos: a far candidate's own point (srOwn): one
	// on the line of a rate rateShown finds since is no step (followReport).
	srCandRepExt int64
	srCandRepPos float64

	// The hold (see watchGap): the audio from ring position holdFrom on,
	// which begins with the packet with timestamp holdTS, is written but not
	// decided (what advance would decide is holdUpTo) while a step of the
	// sender's clock may be pending: the packets came holdGap later than
	// their timestamps say (holdLate: the first one's lateness by the
	// mapping). newestAt and newestExt are the newest packet's arrival and
	// extended timestamp, to see such a gap. shifts counts the holds moved
	// by a confirmed step, the latest from shiftTS on (Shifted).
	holding   bool
	holdFrom  uint64
	holdTS    uint32
	holdLate  float64
	holdGap   float64
	holdUpTo  uint64
	holdSR    uint64 // srCount when it began: a report after it ends it
	newestAt  uint64
	newestExt int64
	shiftTS   uint32
	shifts    uint64
	// settles counts the later anchors whose settling moved the audio
	// placed since them back, the latest one's first packet with timestamp
	// settledTS now beginning at timeline position settledPos (Settled).
	settledTS  uint32
	settledPos float64
	settles    uint64

	// origin is the timeline position of the first packet's first sample
	// (negative: before the recording's time zero), valid once originOK is
	// set: where the track's file begins on the recording's timeline. Stored
	// by the reader goroutine (at the first packet, and when settling moves
	// it), loaded by any.
	origin   atomic.Int64
	originOK atomic.Bool
	// followed is srOff (math.Float64bits) of the first report the
	// mapping followed, valid once followedOK is set (OriginSent). Stored
	// by the reader goroutine, loaded by any.
	followed   atomic.Uint64
	followedOK atomic.Bool

	packets, decoded, lost, concealed, recovered, dups, late, shed, decodeErrs, reanchors, bySR, beforeStart, deferred, resampled atomic.Uint64
}

// NewAudioPipeline returns a pipeline for one track.
func NewAudioPipeline(cfg AudioPipelineConfig) (*AudioPipeline, error) {
	if cfg.Input == nil {
		return nil, errors.New("media: AudioPipelineConfig.Input is required")
	}
	if cfg.ClockRate <= 0 {
		cfg.ClockRate = cfg.Codec.ClockRate()
	}
	if cfg.SampleRate <= 0 {
		cfg.SampleRate = cfg.Input.rate
	}
	if cfg.SampleRate != cfg.Input.rate {
		return nil, fmt.Errorf("media: pipeline rate %d Hz differs from the mix rate %d Hz", cfg.SampleRate, cfg.Input.rate)
	}
	if cfg.MaxJump <= 0 {
		cfg.MaxJump = 5 * time.Second
	}
	if cfg.MaxSkew <= 0 || cfg.MaxSkew > 0.2 {
		cfg.MaxSkew = 0.05
	}
	p := &AudioPipeline{
		codec:   cfg.Codec,
		clock:   float64(cfg.ClockRate),
		rate:    float64(cfg.SampleRate),
		input:   cfg.Input,
		ring:    cfg.Input.ring,
		mixer:   cfg.Input.m,
		maxJump: int64(cfg.MaxJump) * int64(cfg.ClockRate) / int64(time.Second),
		maxSkew: cfg.MaxSkew,
		ratio:   1,
		arrRate: 1,
		holdFor: uint64(samples(holdTime, cfg.SampleRate)),
	}
	switch cfg.Codec {
	case CodecOpus:
		dec, err := newOpusDecoder(cfg.SampleRate, !cfg.DecodeAll, !cfg.DecodeAll)
		if err != nil {
			return nil, fmt.Errorf("%w: opus at %d Hz: %v", ErrCodec, cfg.SampleRate, err)
		}
		p.opus = dec
		p.maxPCM = samples(maxOpusDuration, cfg.SampleRate)
	case CodecPCMU, CodecPCMA:
		if cfg.SampleRate%8000 != 0 {
			return nil, fmt.Errorf("%w: G.711 needs a mix rate that is a multiple of 8000 Hz, not %d", ErrCodec, cfg.SampleRate)
		}
		p.factor = cfg.SampleRate / 8000
		p.g711 = &g711.ulaw
		if cfg.Codec == CodecPCMA {
			p.g711 = &g711.alaw
		}
		p.maxPCM = maxPayload * p.factor
	default:
		return nil, fmt.Errorf("%w: %v", ErrCodec, cfg.Codec)
	}
	if cfg.ClockRate <= 0 {
		return nil, fmt.Errorf("%w: no clock rate", ErrCodec)
	}
	p.last = make([]int16, samples(3*maxOpusDuration/6, cfg.SampleRate)) // 60 ms: a packet to repeat
	return p, nil
}

// Stats returns the pipeline's counters. Safe from any goroutine.
func (p *AudioPipeline) Stats() PipelineStats {
	return PipelineStats{
		Packets:      p.packets.Load(),
		Decoded:      p.decoded.Load(),
		Lost:         p.lost.Load(),
		Concealed:    p.concealed.Load(),
		Recovered:    p.recovered.Load(),
		Duplicates:   p.dups.Load(),
		Late:         p.late.Load(),
		Shed:         p.shed.Load(),
		DecodeErrors: p.decodeErrs.Load(),
		Skipped:      p.skipped(),
		Reanchors:    p.reanchors.Load(),
		BySR:         p.bySR.Load(),
		Deferred:     p.deferred.Load(),
		BeforeStart:  p.beforeStart.Load(),
		Resampled:    p.resampled.Load(),
	}
}

func (p *AudioPipeline) skipped() uint64 {
	if p.opus == nil {
		return 0
	}
	return p.opus.Skipped()
}

// Origin returns the timeline position of the track's first sample: where
// the first packet was placed (after settling), so the track's own file,
// which begins with that packet, lines up with the mix there. It is
// negative when the sender captured it before the recording's time zero
// (the mix leaves that part out). ok is false before the first packet. Safe
// from any goroutine.
func (p *AudioPipeline) Origin() (pos int64, ok bool) {
	if !p.originOK.Load() {
		return 0, false
	}
	return p.origin.Load(), true
}

// OriginSent returns when the track's first sample (Origin) was sent, on
// its sender's wall clock, by the sender's reports as the pipeline follows
// them: the instant of the sender's clock that the mix puts at Origin. The
// mapping follows the reports from the first one it follows on, as far off
// them as it was then (srOff; see followReport), so the sender's instant
// w is at Origin + (w - OriginSent) on the timeline all along: a picture
// the sender stamped by the same clock goes there with its sound. A
// report the pipeline does not follow (one that does not fit the packets'
// arrival, as a first report stamped 455 ms late by a publisher's lagging
// write) is not in it, where the raw first report would be. ok is false
// until the pipeline followed a report. Safe from any goroutine.
func (p *AudioPipeline) OriginSent() (time.Time, bool) {
	origin, ok := p.Origin()
	if !ok || !p.followedOK.Load() {
		return time.Time{}, false
	}
	off := math.Float64frombits(p.followed.Load())
	return p.mixer.cfg.Start.Add(time.Duration((float64(origin) + off) / p.rate * float64(time.Second))), true
}

// Ratio returns the resampling ratio in use: mix samples per nominal sample
// of the sender (1 when its clock agrees with ours).
func (p *AudioPipeline) Ratio() float64 { return p.ratio }

// bit returns the arrival bit of seq: word and mask.
func (p *AudioPipeline) bit(seq uint16) (*uint64, uint64) {
	i := int(seq) % seqWindow
	return &p.arrived[i/64], 1 << (i % 64)
}

// WriteRTP decodes pkt and places its audio on the recording's timeline. The
// packet is not retained (its payload is copied when it must be held). It
// allocates nothing. Errors: ErrClosed after Close; a decode failure is
// counted, not returned, since one bad packet must not end a recording.
func (p *AudioPipeline) WriteRTP(pkt *rtp.Packet) error {
	now := p.mixer.Now()
	return p.writeRTP(pkt, now, now)
}

// WriteRTPAt is WriteRTP for a packet that reached the machine at arrived
// (the kernel's receive time of its datagram), however late its reader reads
// it: the mapping and its drift measurement take its lateness from there, so
// a reader that runs behind its socket (starved of CPU) is not taken for a
// sender whose clock runs slow. Whether the mixer wrote its place already is
// judged now, as for any packet. An arrival in the future counts as now.
func (p *AudioPipeline) WriteRTPAt(pkt *rtp.Packet, arrived time.Time) error {
	read := p.mixer.Now()
	return p.writeRTP(pkt, min(p.mixer.PosAt(arrived), read), read)
}

// writeRTP takes a packet that arrived at now, read at read.
func (p *AudioPipeline) writeRTP(pkt *rtp.Packet, now, read uint64) error {
	if p.closed {
		return ErrClosed
	}
	p.packets.Add(1)
	if len(pkt.Payload) == 0 || len(pkt.Payload) > maxPayload {
		return nil // padding-only or oversized: nothing to decode
	}
	p.dq.lag = read - now // how far behind its socket the reader is (deferred.go)
	if p.dq.on && (p.dq.n > 0 || p.started) {
		if p.deferPacket(pkt, now) {
			p.processDue(false)
			return nil
		}
	}
	p.write(pkt.SSRC, pkt.SequenceNumber, pkt.Timestamp, pkt.Payload, now)
	return nil
}

// write processes one packet that arrived at now (WriteRTP, or a deferred
// packet later: deferred.go).
func (p *AudioPipeline) write(ssrc uint32, seq uint16, ts uint32, payload []byte, now uint64) {
	if !p.started || ssrc != p.ssrc {
		if p.started { // a new source: new timestamps, a new encoder
			p.flushHeld(now)
			p.finishSeq()
			p.anchored = false
			p.reanchors.Add(1)
			if p.codec == CodecOpus {
				_ = p.opus.Reset() // the rate was accepted by newOpusDecoder
			}
			clear(p.seen[:])
		}
		p.started, p.ssrc, p.resync = true, ssrc, false
		p.nextSeq, p.decSeq, p.maxSeq = seq, seq, seq-1
	}
	if p.resync {
		// After a pause: what is missing before it is given up; the packets
		// the gate dropped meanwhile were not lost.
		p.resync = false
		p.flushHeld(now)
		p.finishSeq()
		p.nextSeq, p.decSeq, p.maxSeq = seq, seq, seq-1
	}
	tag := uint32(seq) | 1<<16
	if p.seen[int(seq)%seqWindow] == tag {
		p.dups.Add(1)
		return
	}
	p.seen[int(seq)%seqWindow] = tag
	d := int16(seq - p.decSeq) // serial-number arithmetic: wraps at 2^16
	switch {
	case d < 0 && (d >= -seqWindow/2 || d > -seqWindow && int32(ts-p.lastTS) < 0):
		// After the decoder gave up on it: placed at its own position if
		// the mix has not been written there yet (decoded out of order).
		// Up to the sequence window behind while its timestamp is behind
		// the newest too: a span held back on its path for seconds (up to
		// 5.1 s of 20 ms packets), not a sequence that went back with its
		// timestamps going on (a restart).
		p.emit(seq, ts, payload, now)
	case d < 0 || d >= seqWindow/2:
		// A sequence discontinuity: give up on what is missing. A forward
		// jump up to maxDropout is a loss (RFC 3550 A.1); a longer one or
		// a step back is a restart of the sequence.
		p.flushHeld(now)
		p.finishSeq()
		if gap := int(int16(seq-p.maxSeq)) - 1; d > 0 && gap > 0 && gap < maxDropout {
			p.lost.Add(uint64(gap))
		}
		p.nextSeq, p.decSeq, p.maxSeq = seq, seq, seq-1
		p.emit(seq, ts, payload, now)
		p.decSeq++
	case d == 0:
		p.emit(seq, ts, payload, now)
		p.decSeq++
		p.drainHeld(now)
		if p.nheld == 0 && p.held[0].payload != nil {
			if p.heldIdle++; p.heldIdle >= shrinkAfter {
				p.freeHeld()
			}
		}
	case p.codec == CodecOpus && int(d) < len(p.held) && len(payload) <= heldPayload:
		if p.held[0].payload == nil {
			p.allocHeld() // the first packet held (G.711 decodes in any order: never)
		}
		p.heldIdle = 0
		h := &p.held[int(seq)%len(p.held)]
		h.valid, h.seq, h.ts, h.at = true, seq, ts, now
		h.payload = append(h.payload[:0], payload...)
		p.nheld++
	default:
		// Beyond the hold window: decode what is held and this packet now;
		// the missing ones may still come and be placed.
		p.flushHeld(now)
		p.decSeq = seq
		p.emit(seq, ts, payload, now)
		p.decSeq++
	}
	p.releaseDue(now)
	if p.onPlace != nil {
		p.onPlace(ts)
	}
}

// allocHeld gives the reorder window its payload buffers, in one block: a
// track that never has a packet to hold (most do not) never pays for them,
// and one whose last held packet is shrinkAfter packets (5 s) back gives
// them up (freeHeld) until the next: a loss cost 4 KB per track for the rest
// of the recording before.
func (p *AudioPipeline) allocHeld() {
	block := make([]byte, len(p.held)*heldPayload)
	for i := range p.held {
		p.held[i].payload = block[i*heldPayload : i*heldPayload : (i+1)*heldPayload]
	}
}

// freeHeld drops the held payloads' block; nothing is held.
func (p *AudioPipeline) freeHeld() {
	for i := range p.held {
		p.held[i].payload = nil
	}
	p.heldIdle = 0
}

// drainHeld decodes held packets that are next in sequence.
func (p *AudioPipeline) drainHeld(now uint64) {
	for p.nheld > 0 {
		h := &p.held[int(p.decSeq)%len(p.held)]
		if !h.valid || h.seq != p.decSeq {
			return
		}
		h.valid = false
		p.nheld--
		p.emit(h.seq, h.ts, h.payload, h.at) // its lateness is measured at its own arrival
		p.decSeq++
	}
}

// oldestHeld returns the held packet with the lowest sequence number.
func (p *AudioPipeline) oldestHeld() *heldPacket {
	for i := 1; i < len(p.held); i++ {
		if h := &p.held[int(p.decSeq+uint16(i))%len(p.held)]; h.valid && h.seq == p.decSeq+uint16(i) {
			return h
		}
	}
	return nil
}

// releaseDue stops waiting for a missing packet once the hold window is
// nearly full or the oldest held packet waited holdFor: the decoder moves on
// (the missing packet may still arrive and be placed).
func (p *AudioPipeline) releaseDue(now uint64) {
	for p.nheld > 0 {
		h := p.oldestHeld()
		if h == nil {
			return
		}
		if p.nheld < len(p.held)-1 && now < h.at+p.holdFor {
			return
		}
		p.decSeq = h.seq
		p.drainHeld(now)
	}
}

// flushHeld decodes every held packet in sequence order.
func (p *AudioPipeline) flushHeld(now uint64) {
	for p.nheld > 0 {
		h := p.oldestHeld()
		if h == nil {
			return
		}
		p.decSeq = h.seq
		p.drainHeld(now)
	}
}

// emit decodes one packet and writes it at the position its timestamp gives,
// then decides the timeline as far as the sequence is complete.
func (p *AudioPipeline) emit(seq uint16, ts uint32, payload []byte, now uint64) {
	// Placed by its duration before it is decoded: a packet whose place the
	// mixer has written already (it came later than the budget: a network
	// stall, a reader that fell behind) is dropped undecoded, so a reader
	// short of CPU sheds the decode and catches up sooner.
	prevLast := p.lastTS // place moves it on for the newest packet
	n := p.samplesOf(payload)
	newest := int16(seq-p.maxSeq) > 0
	start, end, ok := p.place(ts, n, now, newest)
	if !ok { // an old packet from before a jump of the timestamps: nowhere to go
		p.late.Add(1)
		return
	}
	s, ticket := scratchPool.Get()
	defer scratchPool.Put(ticket)
	s.size(p.maxPCM)
	fec := 0
	if n > 0 && end <= int64(p.ring.Tail()) {
		if start < int64(p.input.start) {
			p.beforeStart.Add(1) // before the track joined the mix (or time zero): left out
		} else {
			p.late.Add(1)
		}
		p.shed.Add(1)
		n = 0
		if newest {
			p.haveLst = false // nothing to conceal with or to recover into
		}
	} else {
		// One Opus packet lost just before this one, which followed the
		// packet before it: its audio from this one's in-band FEC, into
		// p.last, decoded before this one (the decoder runs through the
		// lost packet, as libopus's does).
		if p.opus != nil && p.haveLst && seq == p.maxSeq+2 && p.lastSeq == p.maxSeq {
			if d := opusSamples(payload, int(p.clock)); d > 0 && int32(ts-prevLast) == int32(2*d) && n <= len(p.last) {
				fec = p.opus.DecodeFEC(payload, p.last)
			}
		}
		dn, err := p.decode(payload, s.pcm)
		if err != nil {
			p.decodeErrs.Add(1)
			dn = 0 // its place stays silence; the sequence still advances
		}
		if dn != n { // the decoder disagrees with the packet's header: its count
			n, end = dn, start+int64(math.Ceil(float64(dn)*p.ratio))
		}
	}
	if !p.originOK.Load() {
		p.origin.Store(start)
		p.originOK.Store(true)
	}
	if seq == p.maxSeq+1 && p.haveLst && start != p.lastEnd && start+2 >= p.lastEnd && start <= p.lastEnd+2 {
		// Contiguous with the previous packet but for rounding: no sample
		// overlaps and no sample of silence between.
		start, end = p.lastEnd, end+p.lastEnd-start
	}
	var skip int64 // silence the mapping's step back drops (takeBackInSilence)
	if newest && n > 0 && p.srBack > 0 {
		skip = p.takeBackInSilence(payload, s.pcm[:n], end-start)
		end -= skip
	}
	if n > 0 {
		if gap := int16(seq - p.maxSeq); gap >= 2 && gap <= 4 && p.haveLst && p.lastSeq == p.maxSeq && start > p.lastEnd {
			// A loss (not DTX: sequence numbers are missing).
			if gap == 2 && fec > 0 && start-p.lastEnd <= int64(2*fec) {
				p.recoverFEC(s, p.lastEnd, start, fec)
			} else {
				p.conceal(s, p.lastEnd, start, uint64(gap-1))
			}
		}
		out := s.pcm[:n]
		if p.ratio != 1 {
			p.resampled.Add(1)
			out = s.res[:min(uint64(end+skip-start), uint64(len(s.res)))]
			stretch(out, s.pcm[:n])
		}
		out = out[skip:]
		if stored := p.put(start, out); start < int64(p.input.start) {
			p.beforeStart.Add(1) // before the track joined the mix (or time zero): left out
		} else if stored < len(out) {
			p.late.Add(1)
		}
		p.decoded.Add(1)
		if newest {
			p.lastN = copy(p.last, s.pcm[:n])
			p.lastSeq, p.lastEnd, p.haveLst = seq, end, p.lastN == n // longer packets are not repeated
		}
	}
	if newest {
		p.maxSeq = seq
	}
	if d := int16(seq - p.nextSeq); d >= seqWindow {
		p.makeRoom(seq)
	}
	if d := int16(seq - p.nextSeq); d >= 0 && int(d) < seqWindow {
		w, b := p.bit(seq)
		*w |= b
		p.starts[int(seq)%seqWindow], p.ends[int(seq)%seqWindow] = uint32(start), uint32(end) // low 32 bits, also of a negative one
		p.pending++
	}
	if p.settling && now >= p.settleEnd {
		p.settleNow() // decides
		return
	}
	p.advance()
}

// silentPeak is the largest sample of a decoded packet that is silence
// (-54 dBFS), for takeBackInSilence.
const silentPeak = 64

// takeBackInSilence takes a step back still pending (srBack: see
// followReport) at the newest packet, span samples long by the mapping, if
// it is silence: an inactive Opus packet (no voice by its VAD flags, played
// as digital silence), or one whose decoded samples (pcm) stay within
// silentPeak. The mapping goes back by the step (by all but a sample of
// the packet at most; the rest at the next silence), so the packet's first
// samples land on the end of the audio before it: those, silence, are
// dropped, and it returns how many. Jumped back at once, the audio after
// the step landed there and was dropped, whatever it held; taken in
// silence, no sound of the track is lost, and its pitch is kept. (The file's
// placement (Placement, the recorder's moves) moves back at this packet,
// and the offline mix drops the same samples.)
func (p *AudioPipeline) takeBackInSilence(payload []byte, pcm []int16, span int64) int64 {
	if p.opus == nil || !opusInactive(payload) {
		for _, v := range pcm {
			if v > silentPeak || v < -silentPeak {
				return 0
			}
		}
	}
	skip := int64(min(p.srBack, float64(span-1)))
	if skip <= 0 {
		return 0
	}
	p.basePos -= float64(skip)
	p.srBack -= float64(skip)
	if p.srBack < 1 {
		p.srBack = 0 // within a sample: emit's contiguity takes the rest
	}
	return skip
}

// samplesOf returns the duration of payload in samples at the mix rate,
// from its header (Opus) or its length (G.711), without decoding it.
func (p *AudioPipeline) samplesOf(payload []byte) int {
	if p.opus != nil {
		return opusSamples(payload, int(p.rate))
	}
	return len(payload) * p.factor
}

// recoverFEC fills [from, to) with the lost packet's audio that the next
// packet's in-band FEC carried (n samples in p.last), stretched to fit (in
// s.res) when the timeline's rate differs; a missing packet that arrives
// later still overwrites it.
func (p *AudioPipeline) recoverFEC(s *scratch, from, to int64, n int) {
	out := p.last[:n]
	if to-from != int64(n) {
		out = s.res[:min(to-from, int64(len(s.res)))]
		stretch(out, p.last[:n])
	}
	p.put(from, out)
	p.recovered.Add(1)
}

// conceal fills [from, to) with the last decoded packet repeated (through
// s.res), full for one packet and fading out over the next two; missing
// packets that arrive later still overwrite it. Only short gaps (up to three
// packets) are concealed; a longer one is silence.
func (p *AudioPipeline) conceal(s *scratch, from, to int64, missing uint64) {
	n := p.lastN
	if n == 0 || to-from > int64(3*n) {
		return
	}
	for pos := from; pos < to; {
		k := min(int64(n), to-pos)
		chunk := s.res[:k]
		copy(chunk, p.last[:k])
		for i := range chunk {
			// full for the first packet, then a linear fade to zero
			at := pos - from + int64(i)
			if at >= int64(n) {
				g := 1 - float64(at-int64(n))/float64(2*n)
				chunk[i] = int16(float64(chunk[i]) * max(g, 0))
			}
		}
		p.put(pos, chunk)
		pos += k
	}
	p.concealed.Add(missing)
}

// advance decides the timeline up to the end of the in-sequence run, and
// gives up on missing packets whose place the mixer has already written.
func (p *AudioPipeline) advance() {
	if p.settling {
		return
	}
	if p.holding && p.ring.Tail() > p.holdFrom {
		p.endHold() // the mixer wrote into it: the budget passed
	}
	var decide int64
	tail := p.ring.Tail()
	for p.pending > 0 {
		if w, b := p.bit(p.nextSeq); *w&b != 0 {
			*w &^= b
			decide = max(decide, near(p.ends[int(p.nextSeq)%seqWindow], tail))
			p.pending--
			p.nextSeq++
			continue
		}
		// A hole: given up once the mixer wrote past the next packet's start.
		next, ok := p.nextArrived()
		if !ok || near(p.starts[int(next)%seqWindow], tail) > int64(tail) {
			break
		}
		p.lost.Add(uint64(next - p.nextSeq))
		p.nextSeq = next
	}
	if decide > 0 {
		if p.holding {
			p.holdUpTo = max(p.holdUpTo, uint64(decide))
			decide = min(decide, int64(p.holdFrom))
		}
		p.decide(uint64(decide))
	}
}

// near returns the position whose low 32 bits are x nearest to ref (the
// positions of the packets in the sequence window are within 2^31 samples of
// the ring's frontier); negative before the recording's time zero.
func near(x uint32, ref uint64) int64 {
	return int64(ref) + int64(int32(x-uint32(ref)))
}

// nextArrived returns the first arrived sequence number after nextSeq.
func (p *AudioPipeline) nextArrived() (uint16, bool) {
	for i := uint16(1); int(i) < seqWindow; i++ {
		s := p.nextSeq + i
		if w, b := p.bit(s); *w&b != 0 {
			return s, true
		}
		if s == p.maxSeq {
			break
		}
	}
	return 0, false
}

// makeRoom gives up the oldest missing packets until seq is within the
// sequence window: a hole is waited for while at most seqWindow packets
// come after it.
func (p *AudioPipeline) makeRoom(seq uint16) {
	p.settleNow()
	p.endHold()
	var decide int64
	tail := p.ring.Tail()
	for int(uint16(seq-p.nextSeq)) >= seqWindow {
		if w, b := p.bit(p.nextSeq); *w&b != 0 {
			*w &^= b
			decide = max(decide, near(p.ends[int(p.nextSeq)%seqWindow], tail))
			p.pending--
		} else {
			p.lost.Add(1)
		}
		p.nextSeq++
	}
	if decide > 0 {
		p.decide(uint64(decide))
	}
}

// finishSeq gives up on every packet still missing up to the newest one
// written, decides everything written and forgets the sequence state.
func (p *AudioPipeline) finishSeq() {
	p.settleNow()
	p.endHold()
	for s := p.nextSeq; int16(p.maxSeq-s) >= 0; s++ {
		if w, b := p.bit(s); *w&b != 0 {
			*w &^= b
		} else {
			p.lost.Add(1)
		}
	}
	p.nextSeq, p.pending = p.maxSeq+1, 0
	p.ring.Decide(p.ring.End())
}

// place maps an RTP timestamp to the span of ring positions of n decoded
// samples. It anchors the timeline at the packet's arrival on the first
// packet, after a new source, a jump or a resume, measures the lateness of
// the packet and, once per window, adjusts the resampling ratio. A packet
// older than the newest (reordered, late) is placed by the mapping as it is
// and never moves it: ok is false if its timestamp is too far from the
// newest's to mean anything. A span may begin before the recording's time
// zero (negative): put leaves that part out.
func (p *AudioPipeline) place(ts uint32, n int, now uint64, newest bool) (start, end int64, ok bool) {
	k := p.rate / p.clock
	if !newest && p.anchored {
		step := int64(int32(ts - p.lastTS))
		if step > p.maxJump || -step > p.maxJump {
			return 0, 0, false
		}
		pos := p.basePos + float64(p.ext+step-p.baseExt)*k*p.ratio
		start = int64(math.Ceil(pos))
		return start, start + int64(math.Ceil(float64(n)*p.ratio)), true
	}
	if p.anchored {
		step := int64(int32(ts - p.lastTS)) // wraps at 2^32
		if step > p.maxJump || -step > p.maxJump {
			p.anchored = false
			p.reanchors.Add(1)
		} else {
			p.ext += step
			p.lastTS = ts
		}
	}
	if !p.anchored {
		p.anchored = true
		p.anchor(ts, now)
	}
	if p.srCatchUp && p.ext >= p.srCatchEnd {
		// Caught up with the reports' line there: on at the clock's rate
		// from there (catchUp), but from the end of the packet before at
		// the earliest: it was placed whole at the catch-up ratio, and
		// re-based within it the mapping put this packet up to 4 samples
		// over its end, already decided: dropped as Late (12-19 packets
		// in two hours of Chromium's reports, TwoHoursOfDrift).
		p.srCatchUp = false
		p.setRatioAt(max(p.srCatchEnd, p.baseExt, min(p.extEnd, p.ext)), p.resampleAt(p.srSlope))
	}
	if p.srBack > 0 && now >= p.srBackUntil {
		// A step back that found no silence to be taken in (a tone, music,
		// a speaker who does not pause): caught up, at most maxCatchUp
		// beyond the clock's rate (a pitch the issue's drift allows),
		// from this packet on.
		p.catchUp(-p.srBack)
		p.srBack = 0
	}
	p.extEnd = p.ext + int64(math.Round(float64(n)/k))
	pos := p.basePos + float64(p.ext-p.baseExt)*k*p.ratio
	ahead, behind := p.rate, float64(p.mixer.budget)
	rechecked := p.recheck
	if p.recheck {
		// The first packet after a pause: the sender's clock ran on, so its
		// timestamp still places it, unless that is before what was
		// decided, more than 100 ms ahead of its arrival, or later than
		// half the budget (a sender whose timestamps stood still) while
		// its sender's reports do not place it there (resumeKeeps).
		p.recheck = false
		ahead = p.rate / 10
		switch {
		case pos < float64(p.ring.Tail()):
			pos = -2 * behind // re-anchor below
		case !p.resumeKeeps(ts, pos, now):
			behind /= 2
		}
		if pos >= float64(p.ring.Tail()) && p.srNew && p.srFollow && !p.settling {
			pos = p.resumeOnReport(pos, now)
		}
	}
	switch f := float64(now); {
	case pos+behind < f && !rechecked && (p.catchingUp(pos, now) || p.reportKeeps(ts, pos, now)):
		// Later than the budget, from a track that is catching up (a
		// network stall delivered in a burst, a reader that fell behind
		// reading its socket) or whose sender's reports place it where
		// the mapping does (a reader that stays behind on a starved
		// machine): its place was written without it. The mapping stays,
		// so what comes within the budget again lands where it belongs;
		// emit drops this one undecoded if the mixer wrote its whole
		// span. Its lateness is no measure of the sender's clock.
		start = int64(math.Ceil(pos))
		return start, start + int64(math.Ceil(float64(n)*p.ratio)), true
	case pos > f+ahead || pos+behind < f:
		// More than a second ahead of its arrival, or later than the
		// budget without catching up: the timestamps lost touch with
		// time (a sender that jumped without sending, or stopped and
		// went on where it was).
		p.reanchors.Add(1)
		p.settleNow()
		p.anchor(ts, now)
		pos = p.basePos
	default:
		p.lateRun, p.lateLong = false, false
	}
	p.watchGap(pos, now)
	if p.srNew && !p.settling {
		p.srNew, p.srTrial, p.srTrialLeast, p.srTrialRef = false, false, math.Inf(1), math.Inf(1)
		if want, ok := p.srPosition(p.lastTS, now); ok && p.srFollow && p.confirms(want-p.srOff) {
			pos = p.followReport(pos, now) // a step's confirmation: taken at once
			p.holdWhileCandidate()
		} else {
			p.srTrial, p.srTrialEnd = true, now+uint64(reportTrial.Seconds()*p.rate)
		}
	}
	if p.srTrial {
		if want, ok := p.srPlace(p.lastTS); ok {
			p.srTrialLeast = min(p.srTrialLeast, float64(now)-want)
		}
		if p.srFollow {
			p.srTrialRef = min(p.srTrialRef, float64(now)-p.srRefPos-float64(p.ext-p.srExt)*k*p.srSlope)
		}
	}
	if p.srFollow {
		p.srLeast = min(p.srLeast, float64(now)-p.srLine(p.ext))
		if now < p.srBaseEnd {
			p.srBaseLeast = min(p.srBaseLeast, float64(now)-p.srLine(p.ext))
		}
	}
	if p.srTrial && now >= p.srTrialEnd && !p.settling {
		p.srTrial = false
		pos = p.followReport(pos, now)
		p.holdWhileCandidate()
	}
	if p.settling {
		p.settleMin = min(p.settleMin, float64(now)-pos)
	}
	p.measure(pos, float64(p.ext-p.origExt)*k, now)
	start = int64(math.Ceil(pos))
	// The end by the mapping at the timestamp after the packet's, as the
	// next packet's start is: pos + n·ratio, rounded another way, ended
	// some packets a sample after where the next one begins (a ratio of
	// 25/24 puts every third end on a whole sample), and emit's shift to
	// the end before crept on by as much: 3 samples over decided audio
	// every 9 packets (Late).
	end = int64(math.Ceil(p.basePos + float64(p.ext+int64(math.Round(float64(n)/k))-p.baseExt)*k*p.ratio))
	if p.ratio == 1 {
		end = start + int64(n)
	}
	return start, end, true
}

// catchUpWindow is how long, in arrival time, a track whose packets come
// later than the budget has to show that it is catching up (its audio
// advancing at least 5 % faster than its arrivals) before each next window,
// or it re-anchors: a stall or a reader behind delivers faster than real
// time until it caught up; a sender whose timestamps stood still (they
// lost touch with time) delivers at real time, as late as ever.
const catchUpWindow = time.Second

// catchingUp takes a newest packet at timeline position pos that arrived at
// now, later than the budget, and reports whether its track is catching up
// (see catchUpWindow).
func (p *AudioPipeline) catchingUp(pos float64, now uint64) bool {
	if !p.lateLong {
		p.lateLong, p.lateSince, p.lateSR = true, now, p.srCount
	}
	if !p.lateRun {
		p.lateRun, p.lateAt, p.latePos = true, now, pos
		return true
	}
	w := uint64(catchUpWindow.Seconds() * p.rate)
	if now < p.lateAt+w {
		return true
	}
	if pos-p.latePos < float64(now-p.lateAt)*1.05 {
		p.lateRun = false
		return false
	}
	p.lateAt, p.latePos = now, pos
	return true
}

// reportWait is how long, in arrival time, a track whose packets keep
// coming later than the budget without catching up keeps its mapping while
// it waits for its sender's next report (reportKeeps): libwebrtc sends one
// every 5 s for audio.
const reportWait = 5 * time.Second

// reportKeeps takes a newest packet with timestamp ts, at timeline position
// pos by the mapping, that arrived at now later than the budget from a
// track that is not catching up, and reports whether the sender's reports
// say the mapping is right: a report that came since the run of packets
// later than the budget began places the packet nearer pos than its
// arrival. Then the track is read late (a recorder starved of CPU reads its
// sockets seconds behind, and stays behind: its packets come at real time,
// as late as ever), not sent with timestamps that lost touch with time: a
// sender whose timestamps stood still reports its clock at the packets'
// arrival. While no report came since the run began, a sender that sent
// reports before is waited for up to reportWait. A track without reports is
// told by its arrivals only: it re-anchors (place).
func (p *AudioPipeline) reportKeeps(ts uint32, pos float64, now uint64) bool {
	if !p.srValid || p.srSSRC != p.ssrc {
		return false
	}
	if p.srCount == p.lateSR {
		return now < p.lateSince+uint64(reportWait.Seconds()*p.rate)
	}
	want := p.srPos + float64(int32(ts-p.srTS))*p.rate/p.clock
	return math.Abs(want-pos) < (float64(now)-pos)/2
}

// resumeKeeps takes the first packet after a pause (Resync), with
// timestamp ts, at timeline position pos by the mapping, that arrived at
// now, and reports whether its sender's reports place it there: the latest
// report of its source places it nearer pos than its arrival (as
// reportKeeps judges a packet later than the budget). Then a packet later
// than half the budget was delivered late (a publisher starved of CPU, a
// network stall released in a burst), not sent with timestamps that stood
// still through the pause (a report made after such a standstill places
// the packet near its arrival; one made before it is stepped by the next,
// followReport, as a capture stall is): it keeps its place, as in its track
// file and the offline mix, within the budget. A track without reports
// keeps the half-budget rule (nothing tells the two apart).
func (p *AudioPipeline) resumeKeeps(ts uint32, pos float64, now uint64) bool {
	want, ok := p.srPlace(ts)
	return ok && math.Abs(want-pos) < (float64(now)-pos)/2
}

// anchor maps ts to where the sender's latest sender report places it, if
// that fits the packet's arrival; otherwise to the arrival now (or the end of
// what was written, if later), and starts settling. For the track's first
// anchor a report may place it anywhere, before the track's start in the mix
// or the recording's time zero too (that part is left out of the mix); a
// later one (a new source, a jump) goes no earlier than the track's audio
// written so far ends. A report never places it after its receipt (nor after
// the track's start in the mix for a packet that reached the machine before
// it: a backlog in its socket): audio is captured before it reaches the
// machine, so such a report was stamped late (Pion stamps a report by when
// its sender last wrote a packet: on a busy machine, up to the 100 ms
// srPosition allows). Placed by it, the
// track's file and its mix held that much audio from after a pause's instant
// (the gate keeps what came before it), where the mix is cut at the instant:
// the file's cut and the mix's differed by as much. It is placed by its
// arrival instead, and its report is checked by the next one
// (followReport).
func (p *AudioPipeline) anchor(ts uint32, now uint64) {
	p.settleNow()
	p.endHold()
	p.lastTS, p.ext, p.baseExt, p.origExt = ts, int64(ts), int64(ts), int64(ts)
	p.newestAt, p.newestExt = now, int64(ts)
	end := p.ring.End()
	first := !p.originOK.Load()
	p.ratio = 1
	p.haveBase, p.havePrev, p.winEnd = false, false, 0
	p.bridgeBy, p.byArrival, p.lateRun, p.lateLong, p.srFollow, p.srCand, p.srCatchUp = 0, false, false, false, false, false, false
	p.pulling, p.arrRate, p.arrGap, p.arrPull, p.hiLate = false, 1, false, false, math.Inf(-1)
	p.srBack = 0
	if p.resumeAt {
		// After a skipped pause: at the cut's end, where the audio before
		// the cut ends in the mix (ResyncAt); nothing to settle.
		p.resumeAt = false
		p.basePos = float64(max(p.resumePos, end))
		if d := p.cutFrom - end; end < p.cutFrom && p.cutFrom <= p.resumePos {
			// The cut begins where another track's audio before it
			// ended, this track's ended d earlier (one cut for all
			// tracks): it resumes where its own audio ended. Its first d
			// samples go to [end, cutFrom), the rest after the cut.
			p.basePos = float64(p.resumePos - d)
			p.bridgeFrom, p.bridgeTo, p.bridgeBy = p.resumePos-d, p.resumePos, p.resumePos-p.cutFrom
		}
		return
	}
	if pos, ok := p.srPosition(ts, now); ok && (first || pos >= float64(end)) && pos <= float64(now) {
		p.basePos = pos
		p.bySR.Add(1)
		return // the sender's clock places it: nothing to settle
	}
	from := max(now, end)
	p.basePos, p.byArrival = float64(from), true
	p.settling, p.settleFrom, p.settleFloor, p.settleMin, p.settleFirst = true, from, end, 0, first
	p.settleEnd = now + min(uint64(samples(settleTime, int(p.rate))), p.mixer.budget/2)
}

// settleNow ends settling: if packets came earlier than the anchor placed
// them, everything written since the anchor moves back by the most any was
// early (the least-late packet defines the mapping, not the first one read),
// and the timeline is decided. For the track's first anchor what moves
// before the track's start in the mix (the join wait before it was added, or
// the recording's time zero) is dropped and counted, never shifted; a later
// anchor moves back no further than the track's own audio before it ends.
func (p *AudioPipeline) settleNow() {
	if !p.settling {
		return
	}
	p.settling = false
	floor := max(p.ring.Tail(), p.settleFloor)
	early := -p.settleMin
	if pos, ok := p.srPosition(uint32(p.baseExt), p.settleFrom); ok && p.ratio == 1 && float64(p.settleFrom)-pos >= early {
		// A sender report came while settling: it places the anchor,
		// unless after the least-late packet's receipt (stamped late, see
		// anchor).
		early = float64(p.settleFrom) - pos
		if early > 0 && (p.settleFirst || p.settleFrom-uint64(math.Ceil(early)) >= floor) {
			p.bySR.Add(1)
			p.byArrival = false
		}
	}
	if early > 0 && (p.settleFirst || p.settleFrom > floor) {
		shift := uint64(math.Ceil(early))
		if !p.settleFirst {
			shift = min(shift, p.settleFrom-floor)
			// The audio placed since a later anchor moved back, from its
			// first packet on (Settled; the track's first anchor moves its
			// origin with it: nothing moved against its file).
			p.settledTS, p.settledPos = uint32(p.baseExt), float64(p.settleFrom)-float64(shift)
			p.settles++
		}
		p.ring.ShiftBack(p.settleFrom, shift)
		if o := p.origin.Load(); p.originOK.Load() && o >= int64(p.settleFrom) { // the first packet moves too
			p.origin.Store(o - int64(shift))
		}
		p.basePos -= float64(shift)
		p.lastEnd -= int64(shift)
		start := int64(p.input.start)
		for s := p.nextSeq; s != p.maxSeq+1; s++ {
			if w, b := p.bit(s); *w&b != 0 {
				i := int(s) % seqWindow
				was := near(p.starts[i], p.settleFrom)
				p.starts[i] -= uint32(shift)
				p.ends[i] -= uint32(shift)
				if was >= start && was-int64(shift) < start {
					p.beforeStart.Add(1) // moved before the track's start: left out of the mix
				}
			}
		}
	}
	p.haveBase, p.havePrev, p.winEnd = false, false, 0 // lateness counts from the settled anchor
	p.advance()
}

// Following the sender's reports. A track whose sender sends RTCP sender
// reports is placed by them, as the offline mix and the composite place its
// file (composition.TrackTiming.Steps): at each report the mapping moves by
// as much as the reports moved, measured against the line of the last report
// followed at the sender's clock rate (the slope). What a step is, the live
// mix and the offline placement (recorder's senderClock keeps the reports
// the file is placed by) share: a report that moved more than
// composition.MappingMoved (10 ms, composition.ReportMoved) is a step
// candidate (a capture that stalled, a clock that was set), and a step once
// the next report confirms it (it has not moved from the candidate's line).
// Less is the sender's clock drifting, or a report's jitter: it is absorbed
// by resampling, at the clock's rate, with the mapping's offset from the
// reports' line caught up (at each drift window's end, see measure).
//
// How the mapping goes meanwhile depends on the move. A candidate of up to
// reportStep is followed as drift (it may be one: a clock 0.5 % slow moves
// 15 ms between reports 3 s apart), unless it moved more than maxCatchUp of
// the time since the last report followed off the rate the reports showed
// before it (no drift: it waits for the next report as a far one does);
// and if confirmed, the slope goes back to the one before it and the
// mapping jumps what remains of the step forward: the audio after it is
// where the offline placement has it. What remains of a step back is not
// jumped (the audio after it would land on the end of the audio before it,
// decided, and drop it): it is taken in the next silence, dropping as much
// of it, or caught up if none comes within a second (srBack). (When
// the live mix took a move of up to 20 ms for drift, a 19.6 ms step of
// Chromium's reports, which the file's placement took at once, was read as
// a clock rate: the mix overshot, and beeps after it were 23 ms off the
// file's.) A larger candidate is not followed until the next report
// confirms it, then the mapping jumps forward (silence), and back in the
// next silence as a near one does.
// Either way, between the candidate and the confirmation the live mix
// places the audio (about) where it was before the step, the offline
// placement after it (up to one report interval), but for a step forward
// that the hold (see watchGap) moves back to where it began. A candidate
// that the next report does not confirm was not the sender's clock: Pion
// stamps a report by when it last wrote a packet, so a stalled write makes
// one report late by the stall, and the packets written after it come late
// by as much (following it, then the next, stepped the mix forward and
// back, dropping the stall's length of audio). Three reports on one line
// whose slope is within MaxSkew (the middle one a candidate) are a clock
// rate, not a step:
// drift at that slope (a clock 4 % slow moves 40 ms between reports a
// second apart). A report is on trial for reportTrial (one that confirms a
// step is taken at once, as the offline placement takes it): if a packet
// that came meanwhile arrived earlier by it, by more than reportLate, than
// the least lateness of the packets by the report followed before (since
// that one came, the trial's too; for the first report followed, its
// trial's: one packet may have come late, and against it the next reports,
// on time, looked 5 ms early and were taken back, hiding a slipping clock's
// drift), it is stamped late, and it is taken back by as much before it is
// followed. That is Pion's report, stamped by when
// the sender last wrote a packet: on a busy machine a publisher's writes
// lag tens of ms now and then, and a report made meanwhile comes late by as
// much, each by another amount; the packets written after it lag as well
// (one packet does not tell), but not all of them. Followed as stamped, the
// mix took that jitter for the sender's clock: it resampled a good clock by
// 1-5 % (a 660 Hz tone at 651 Hz in TestEndToEnd_RetroactiveBlackout) and
// took pairs of late reports for steps (20 ms holes). A report that comes
// while another is on trial replaces it. A report that would place the
// packet earlier than it could have arrived (later than its arrival by more
// than reportEarly beyond the least lateness of the packets by the report
// before) is not followed either. A sender whose reports do not fit the
// arrivals at all (its wall clock off by more than srPosition allows) is
// placed by arrival (measure), as is one whose reports stop for reportsGone.
const (
	reportStep  = 20 * time.Millisecond
	reportEarly = 10 * time.Millisecond
	reportTrial = 300 * time.Millisecond
	reportLate  = 5 * time.Millisecond
	// reportTakeBack: a report is taken back from this late on (d in
	// followReport: never more than it moved later, as the packets never
	// come earlier than the least-late since). From 5 ms (reportLate), a
	// Pion report 5 ms late, followed at the first slope (3 s of reports),
	// set a good clock's slope 0.17 % off: the line ran on at it, every
	// report after it taken back to it, the beeps 33 ms late by 20 s, and
	// a catch-up at 0.68 %.
	reportTakeBack = 2 * time.Millisecond
	reportsGone    = 15 * time.Second // three of a low-rate audio sender's RTCP intervals (5 s)
)

// followReport applies the latest sender report to the mapping (see above),
// for the newest packet, at timeline position pos by the mapping, that
// arrived at now; it returns the packet's position. Reader goroutine, once
// per report: it allocates nothing.
func (p *AudioPipeline) followReport(pos float64, now uint64) float64 {
	p.srNew = false
	want, ok := p.srPosition(p.lastTS, now)
	if !ok {
		return pos
	}
	if !p.srFollow {
		// The first report followed (or the first after they stopped, or
		// after a re-anchor): the mapping stays where it is against it. The
		// offline mix and the composite place the track's file as the live
		// mix placed it (mediaOffset and its moves); the composite places
		// the sender's video by how far off the first one the mapping is
		// (OriginSent).
		// Its clock is taken as good until the reports show its rate
		// (measure's window end stops a resampling it began).
		// The least lateness by it is its trial's, not this packet's
		// alone: the next report's trial is measured against it.
		p.srOff = want - pos
		p.srFirst, p.srFirstEarly, p.srFirstOrigin = true, p.srTrialLeast, !p.followedOK.Load()
		if p.srFirstOrigin {
			p.followed.Store(math.Float64bits(p.srOff))
			p.followedOK.Store(true)
		}
		p.srFollow, p.srAt, p.srExt, p.srRefPos, p.srSlope, p.srCand, p.srCatchUp, p.srGap, p.srPull = true, now, p.ext, pos, 1, false, false, false, false
		p.srLeftGood, p.srCandOne, p.srRefMoved = false, false, 0
		p.srLeave, p.srGoodShown = false, 0
		p.srRepExt, p.srRepPos = p.srOwn()
		p.srDrifted = 0
		if p.byArrival && p.ratio == 1 {
			p.srDrifted = float64(p.srRepExt-p.origExt) * p.rate / p.clock
		}
		p.srBack = 0
		p.srSloped = false
		p.srLastExt, p.srLastPos, p.srLeast = p.ext, pos, min(float64(now)-pos, p.srTrialLeast+p.srOff)
		p.srRefLeast, p.srLineLeast = p.srLeast, p.srLeast
		p.srRefTrial = !math.IsInf(p.srTrialLeast, 0)
		p.srBaseLeast, p.srBaseEnd = p.srLeast, now+uint64(reportTrial.Seconds()*p.rate)
		return pos
	}
	if p.srCandOne {
		p.srCandOne = false
		p.setRatio(p.resampleAt(p.srSlope))
	}
	want -= p.srOff
	trialLeast := p.srTrialLeast + p.srOff // by the report, as the mapping follows the reports
	first := p.srFirst
	p.srFirst = false
	k := p.rate / p.clock
	span := float64(p.ext-p.srExt) * k // nominal samples since the reference
	// A far move the packets show as a clock rate (rateShown) is taken as
	// stamped: against the line it moved from, the packets since the last
	// report followed came later and later (a clock running slow), and
	// their least lateness, that of the first ones, made it look stamped
	// late (taken back by 21 ms at 0.83 s of a clock 4 % slow). The rate
	// is that of the reports' own points, and the packet is placed by it
	// from this one's (at the nominal rate from its instant to the packet's
	// arrival after its trial, 300 ms, it was 12 ms early).
	moved := want - p.srLine(p.ext)
	repExt, repPos := p.srOwn()
	repSpan := float64(repExt-p.srRepExt) * k
	rate := (repPos - p.srRepPos) / repSpan
	// A far candidate before it (one not shown: a gap came just before
	// its trial ended, of a write that lagged and caught up right after)
	// must be on the rate's line.
	candOnLine := !p.srCand || !p.srCandNear && !p.reportMoved(p.srCandRepPos-(p.srRepPos+float64(p.srCandRepExt-p.srRepExt)*k*rate))
	shown := math.Abs(moved) > reportStep.Seconds()*p.rate && candOnLine && p.rateShown(rate, repSpan, moved)
	if shown && p.srDrifted != 0 {
		// Placed by its arrival at first, at the nominal rate till the
		// first report followed, the mapping was what the clock drifted
		// meanwhile off where its arrival placed it, and srOff took that
		// in: a clock 4 % slow followed 33 ms early for good, its first
		// report followed 1.1 s after the anchor (the real binary's
		// Pion publisher: 27-33 ms). It is given back, and OriginSent
		// with it.
		d := (rate - 1) * p.srDrifted
		p.moveOff(-d)
		trialLeast -= d
		repExt, repPos = p.srOwn()
		p.srDrifted = 0
	}
	if shown {
		want = repPos + float64(p.ext-repExt)*k*rate
	}
	if l := max(p.srLeast, trialLeast); !shown && l < -pullFar.Seconds()*p.rate && !p.srCand {
		// The packets since the last report followed came before the
		// line followed places them, and those of this report's trial
		// before this report does (a fast clock's drift moves the first
		// only; a report stamped late, the second only), by more than
		// participants may be apart, and no clock rate explains it: it
		// is late (jitter only ever makes them later). The mapping
		// took its offset from the reports (srOff) where the first report
		// followed found it, anchored by the arrival of packets that all
		// came late (a reader, or a publisher, starved while the track
		// settled): placed 400 ms late for good, where the packets came
		// on time from a second on (TestAudioPipeline_LateStartPulledBack),
		// and at the stop the track's file kept what reached the machine
		// before it but the mapping placed after it: past the mix's end
		// (TestServe_MixHoldsTheTrackUnderImpairments, 9 windows). The
		// line moves back onto the least-late packet's arrival, and the
		// mapping is caught up by resampling (a jump back drops what was
		// written) at up to MaxSkew while beyond pullFar (srPull). At
		// any report followed, not the second alone: the least of a
		// 300 ms trial's jitter may fall short of pullFar there (19.7 ms
		// in TwoHoursOfDrift's 1.005 clock with Pion's reports, 25-28 ms
		// at every report after), and the track sat 30 ms late for 2 h.
		p.shiftLine(-l)
		want += l
		trialLeast -= l
		p.srPull = true
		// The line begins on that arrival now: the packets' floor where
		// it begins is lateness 0 by it (srBaseLeast), not that of the
		// first report's trial. When that trial was read as late as the
		// anchor (the reader still starved at the first report), the
		// take-back below read the same lateness again as this report
		// stamped late, and the track went as far early as it had been
		// late: 100 and 400 ms before its arrival for good
		// (TestAudioPipeline_LateStartPulledBack).
		p.srBaseLeast = 0
		// So is the reference's floor (srRefLeast), the arrivals' word
		// on a drift since it (driftShown, steer): where it was read as
		// late as the anchor, the packets since would look as much
		// earlier than at the reference, a drift the reports never show,
		// and a clock 0.5 % slow kept ratio 1 after the pull, 5 ms a
		// second off for good (LateStartPulledBack's 0.995 cases: -20 to
		// -41 ms from 7 s on). A floor earlier than that arrival (a
		// drift the packets showed) stays.
		p.srRefLeast = min(p.srRefLeast, 0)
	}
	// d: how much earlier the trial's packets came by this report than
	// the packets where the line followed begins came by it (srBaseLeast:
	// its report's trial and the trial after it was followed). Against
	// the least lateness of every packet since (srLeast, the trial's too),
	// a sender's clock running fast (its packets coming 5 ms a second
	// earlier by a line at its nominal rate, before its slope is known)
	// had its drift in that least lateness already, and a report stamped
	// late was taken back onto the drifted packets: the drift eaten at
	// every report, the slope never seen (beeps 57-87 ms off by 20 s).
	switch d, tol := p.srBaseLeast-trialLeast, reportLate.Seconds()*p.rate; {
	case shown:
	case d > reportTakeBack.Seconds()*p.rate:
		// A packet of the trial came earlier by it than the packets since
		// the last report followed came by that one: it is stamped late,
		// by about d. Taken back by d, it says what the sender's clock
		// did (a step, a drift) as far as the arrivals show it.
		// d is what the report moved later than the line followed
		// (moved: the report alone) and what the packets came earlier by
		// that line than where it begins (d-moved: the arrivals alone: a
		// clock running fast, by up to maxCatchUp of the time since the
		// last report followed within the ±0.5 % the issue absorbs). A
		// recorder's reader that lagged (starved of CPU: every packet
		// read late, then a burst) moves the arrivals only, of every
		// track at once, never a report: when the packets came earlier
		// by more than such a clock drifts, the line's floor
		// (srBaseLeast) was taken while they were read late, and the
		// report is taken back by no more than it moved. Else the report
		// after the reader caught up, on time and on the line, looked
		// stamped late by the lag: a good clock stepped back by it for
		// good (24 ms with Pion's reports; 100 ms, before its capture,
		// with Chromium's, the first while its reader lagged 100 ms:
		// TestAudioPipeline_AReaderLagIsNoReportStampedLate).
		if moved := want - p.srLine(p.ext); d-moved > maxCatchUp*float64(p.ext-p.srLastExt)*k {
			d = min(d, moved)
		}
		if d > reportTakeBack.Seconds()*p.rate {
			want -= d
			trialLeast += d
		}
	case first && d < -tol && p.srFirstEarly < -tol:
		// The packets of the trial came later by it than they came by
		// the first report followed, and that one placed packets after
		// their receipt: it was stamped late, by about -d, and srOff took
		// that in (the track is placed by its arrival, see anchor). Kept,
		// every report after it would look -d early: followed as a step
		// back, the mix would jump -d earlier than the packets' arrival
		// (with a 20 ms report step, 2 s in), and a clock 0.5 % slow,
		// whose reports move 5 ms a second, would look good for seconds
		// (Slips' beep 2, 17 ms early). srOff gives it back, and so does
		// OriginSent if it is that report's.
		p.moveOff(d)
		want -= d
		trialLeast += d
	default:
		// The line followed was stamped late, if this report places the
		// packets earlier than it by more than the packets came earlier
		// by it since (a clock running fast, a step back: the packets
		// come earlier with the reports). A report is only ever late
		// (stamped by a write that lagged), never early beyond its
		// jitter: the least-late one is the sender's clock, as the
		// least-late packet is its arrival. The line was placed by the
		// reports followed before, every one of them late by as much or
		// taken back to it (the first one after one stamped late, and a
		// publisher's writes that lag at every report): kept, this
		// report would look early by r, followed as a step back (the
		// mix jumped back 23-41 ms, dropping what it had written: Late)
		// or as a clock running fast (a good clock resampled by 1.4 %:
		// carol's 880 Hz at 867 Hz in TestEndToEnd_RetroactiveBlackout).
		// srOff gives r back, and so does OriginSent if it is its: the
		// mapping stays, on this report's line. Less than reportEarly is
		// a report's jitter (Chromium's: up to 7 ms either way).
		moved := want - p.srLine(p.ext)
		if r := moved + (p.srLineLeast - p.srLeast); r < -reportEarly.Seconds()*p.rate && !(p.srCand && p.confirms(want)) {
			p.moveOff(r)
			want -= r
			trialLeast += r
		}
	}
	late := float64(now) - want
	if late < p.srLeast-reportEarly.Seconds()*p.rate && !shown {
		// Earlier than the packets since the last report followed came by
		// it allows.
		return pos
	}
	if p.srCand && p.srCandNear {
		// A candidate followed as drift: a step if this report is on its
		// line at the slope before it, and as far from the line before.
		confirmed := p.confirms(want)
		p.srCand = false
		if confirmed {
			// Confirmed: a step, taken as a far one is (below): the
			// mapping jumps what remains of it, and the clock's rate is
			// the one before it (the move was no drift), measured from
			// here. The offline placement of the track's file takes it
			// at once too (composition.TrackTiming.Steps); caught up by
			// resampling instead, it needed 2 % or more to be where the
			// file's placement is a report interval later, a pitch a
			// listener hears, and within maxCatchUp it took seconds.
			// A step back is not jumped: the jump put the audio after it
			// over the end of the audio before it, decided, and dropped
			// that (Late: up to 20 ms of the track the mix did not hold).
			// It is taken in the next silence instead, or caught up if
			// none comes within a second (a report stamped late and
			// taken back only in part, a first slope's jitter, a
			// publisher's writes that lagged and came back on time: see
			// takeBackInSilence).
			pos = p.stepTo(want, pos, now)
			p.srSlope, p.srExt, p.srRefPos, p.srGap, p.srLeftGood = p.stepSlope(p.srCandSlope, want, span, p.srCandMoved), p.ext, want, false, false
			p.srRefMoved = p.srCandMoved
			p.srLeave, p.srGoodShown = false, 0
			p.srRepExt, p.srRepPos = p.ext, want
			p.setRatio(p.resampleAt(p.srSlope))
			p.srCatchUp = false
			p.srAt, p.srLastExt, p.srLastPos, p.srLeast = now, p.ext, want, min(late, trialLeast)
			p.srRefLeast, p.srLineLeast = p.srLeast, p.srLeast
			p.srRefTrial = !math.IsInf(trialLeast, 0)
			p.srBaseLeast, p.srBaseEnd = p.srLeast, now+uint64(reportTrial.Seconds()*p.rate)
			p.haveBase, p.havePrev, p.winEnd = false, false, 0
			return pos
		}
	}
	moved = want - p.srLine(p.ext)
	slope := p.srSlope
	near := false // a candidate followed as drift meanwhile
	firstSlope := false
	if math.Abs(moved) > reportStep.Seconds()*p.rate {
		cand, confirmed := p.srCand, p.confirms(want)
		p.srCand = false
		s := (want - p.srRefPos) / span
		switch {
		case shown:
			// A clock rate, shown by the packets too (rateShown): followed
			// from here, at once (below).
			slope = rate
		case !cand:
			// A step candidate: the next report says whether it is one.
			p.srCand, p.srCandNear, p.srCandExt, p.srCandPos = true, false, p.ext, want
			p.srCandRepExt, p.srCandRepPos = repExt, repPos
			p.candOne(want, span, moved)
			return pos
		case confirmed:
			// Confirmed: the mapping jumps, at the clock's rate it had;
			// the slope is measured from here. A step forward moves what
			// was held since the gap before it (see watchGap).
			if p.holding && want > pos {
				p.shiftHold(want - pos)
			}
			pos = p.stepTo(want, pos, now) // back: in the next silence, as a near one (above)
			// A slope that came from a lag goes, as at a near one
			// (stepSlope), if this report and the candidate lie on a
			// good clock's line rather than on the slope's: the
			// candidate's report alone does not tell a lag's end from a
			// clock 0.5 % slow whose reference was a lag's start (a far
			// step forward), its first slope measured within the lag,
			// 22 ms of lag ending 4.5 s on (0.5 % of it); the next
			// report does, a second on by 5 ms.
			if dt := float64(p.ext-p.srCandExt) * k; math.Abs(want-(p.srCandPos+dt)) < math.Abs(want-(p.srCandPos+dt*slope)) {
				slope = p.stepSlope(slope, want, span, moved)
			}
			p.srSlope, p.srExt, p.srRefPos, p.srGap, p.srLeftGood, p.srRefMoved = slope, p.ext, want, false, false, moved
			p.srLeave, p.srGoodShown = false, 0
			p.srRepExt, p.srRepPos = p.ext, want
			p.setRatio(p.resampleAt(slope))
			p.srCatchUp = false
			p.srAt, p.srLastExt, p.srLastPos, p.srLeast = now, p.ext, want, min(late, trialLeast)
			p.srRefLeast, p.srLineLeast = p.srLeast, p.srLeast
			p.srRefTrial = !math.IsInf(trialLeast, 0)
			p.srBaseLeast, p.srBaseEnd = p.srLeast, now+uint64(reportTrial.Seconds()*p.rate)
			p.haveBase, p.havePrev, p.winEnd = false, false, 0
			return pos
		}
		// Not confirmed: on one line with the candidate and the
		// reference, a clock rate; otherwise this one is the candidate.
		if !shown {
			if span < 2*p.rate || math.Abs(s-1) > p.maxSkew ||
				p.reportMoved(p.srCandPos-(p.srRefPos+float64(p.srCandExt-p.srExt)*k*s)) {
				p.srCand, p.srCandNear, p.srCandExt, p.srCandPos = true, false, p.ext, want
				p.srCandRepExt, p.srCandRepPos = repExt, repPos
				p.candOne(want, span, moved)
				return pos
			}
			slope = s
		}
	} else {
		near = p.reportMoved(moved)
		// How far a drift moves this report from the line: not at all
		// once the reports showed the clock's rate (the line runs at
		// it); before, as far as the rate the reports followed since the
		// reference show, once they span a second.
		gap := float64(p.ext-p.srLastExt) * k // nominal samples since the last report followed
		expect, known, bound := 0.0, p.srSloped, maxCatchUp*gap
		if prev := float64(p.srLastExt-p.srExt) * k; !known && prev >= 0.9*p.rate {
			expect, known = ((p.srLastPos-p.srRefPos)/prev-1)*gap, true
		} else if !known && prev == 0 && p.srRefTrial {
			// The second report followed: no rate shown yet, so a good
			// clock's, within twice maxCatchUp of it (a clock 0.5 % slow
			// moves 15 ms between reports 3 s apart). A publisher whose
			// writes lagged 12 ms as its track began (a busy machine)
			// moved it 12 ms in a second: followed as drift, a good clock
			// was resampled by 0.5 % till the next report confirmed it.
			known, bound = true, 2*maxCatchUp*gap
		}
		if near && known && math.Abs(moved-expect) > bound {
			// Moved more than that by over maxCatchUp of the time since
			// the last report followed (Pion's reports, a second apart,
			// 10-20 ms off where the ones before put it): no drift (a
			// clock 1.2 % off moves 12 ms a second at every report, from
			// the first). A step candidate, not followed
			// till the next report says (confirms), as a far one. A
			// publisher whose every write lags for seconds (its goroutine
			// scheduled 12 ms late on a loaded machine) stamps each
			// report made meanwhile as late as its packets, so no trial
			// takes it back: followed as drift, a good clock was
			// resampled by 0.8-1.3 % (the slope with it, and a catch-up)
			// before the next report confirmed the step. By the reports'
			// word and the packets' it is one (and a step back when the
			// writes catch up): both are taken as the offline placement
			// takes them (composition.ReportMoved), at ratio 1.
			p.srCand, p.srCandNear, p.srCandExt, p.srCandPos, p.srCandMoved, p.srCandSlope = true, true, p.ext, want, moved, p.srSlope
			return pos
		}
		// Two reports a second apart span 2 s of the sender's clock, less
		// nominal time when it runs slow (1.99 s at 0.5 %: the slope then
		// waited for a fourth report).
		spans := 2 * p.rate * (1 - p.maxSkew)
		firstSlope = span >= spans && float64(p.srLastExt-p.srExt)*k < spans
		if span >= spans {
			// Drift: the sender's clock against ours is the slope of the
			// reports' placement since the reference (the first report
			// followed, or the last step), once it spans 2 s (a report's
			// jitter, a few ms with Chromium, is then a small part of it).
			if s := min(max((want-p.srRefPos)/span, 1-p.maxSkew), 1+p.maxSkew); p.driftShown(s, want, span) {
				slope, p.srLeave = s, false
			}
			p.srSloped = true
		}
	}
	steady := p.steady(want, span)
	p.srCand, p.srCandNear = near, near
	if near {
		p.srCandExt, p.srCandPos, p.srCandMoved, p.srCandSlope = p.ext, want, moved, p.srSlope
	}
	refLine := p.srRefPos + span*p.srSlope // the reference's line, at the slope the trial's arrivals were measured by
	p.srLeftGood = p.srLeftGood || goodClock(p.srSlope) && !goodClock(slope)
	p.srAt, p.srSlope = now, slope
	p.srLastExt, p.srLastPos, p.srLeast = p.ext, want, min(late, trialLeast)
	p.srLineLeast = p.srLeast
	p.srBaseLeast, p.srBaseEnd = p.srLeast, now+uint64(reportTrial.Seconds()*p.rate)
	off, drift := want-(pos-p.srBack), p.srTrialRef-p.srRefLeast // by the reports (a step back still to take taken), by the arrivals, since the reference
	arrOff := drift - (pos - p.srBack - refLine)                 // by the arrivals, against the mapping (steer)
	if shown && off > pullFar.Seconds()*p.rate {
		// The mapping, at the nominal rate since the reference, placed
		// the audio early, by more than participants may be apart: a
		// clock running slow by more than the ±0.5 % the issue has
		// absorbed by resampling (and a catch-up beyond it, maxCatchUp),
		// whose drift resampling within MaxSkew could not catch up in
		// time (a clock 4 % slow leaves 0.8 %: 50 ms in 6 s). It goes
		// on the reports' line at once, forward: silence, and nothing
		// written is dropped.
		p.basePos, p.baseExt = want, p.ext
		pos, off = want, 0
		p.srBack = 0
		p.setRatio(p.resampleAt(slope))
	}
	if shown && off < -pullFar.Seconds()*p.rate {
		// Placed late, by more than participants may be apart (a clock
		// running fast): a jump back would drop what was written, so it
		// is caught up by resampling, at up to MaxSkew (the pitch yields
		// to the placement, as measure's pull-back) till within pullFar,
		// then at maxCatchUp beyond the clock's rate: a clock 4 % fast
		// was 50 ms late for 5 s with Pion's reports, 210 ms for good
		// with libwebrtc's.
		p.srPull = true
	}
	if shown {
		// The slope is measured from this report's own point on.
		p.srExt, p.srRefPos, p.srRepExt, p.srRepPos, p.srGap = repExt, repPos, repExt, repPos, false
		p.srLeftGood, p.srRefMoved = false, 0
		p.srLeave, p.srGoodShown = false, 0
		p.srRefLeast = p.srLeast
		p.srRefTrial = !math.IsInf(trialLeast, 0)
	}
	if least := reportLate.Seconds() * p.rate; firstSlope && math.Abs(off) >= least && math.Abs(drift) >= least && off*drift > 0 && !math.IsInf(drift, 0) && steady {
		// The first slope: what the clock drifted while it was unknown
		// (since the first report followed, 2-3 s) is caught up from
		// 5 ms, not from steer's 10, when the packets' arrivals show a
		// drift that way too (one report's jitter does not move them):
		// a clock 0.5 % slow is 7-10 ms behind the reports' line by
		// then, and with steer's rule it waited another report, a beep
		// between them 10 ms early. On the reports' word alone a good
		// clock with one report 6-7 ms off was resampled by up to 1 %.
		p.catchUp(off)
	} else {
		if !shown && p.srRefTrial && !math.IsInf(arrOff, 0) && !(off*arrOff > 0 && math.Abs(arrOff) >= math.Abs(off)/2) {
			// The packets' arrivals against the mapping do not show the
			// offset (at least half of it, that way): the reports'
			// jitter, not the audio's place. Pion's reports on a busy
			// machine are off by up to reportEarly without a trial
			// taking them back (a report is stamped by one write, the
			// trial measures 300 ms of them): a good clock's first
			// reports 10 and 7.6 ms late made its line 10 ms early, and
			// the catch-up resampled it by 0.5 % (carol's 880 Hz at
			// 876-882 Hz in TestEndToEnd_RetroactiveBlackout).
			off = 0
		}
		if p.srLeave && off*p.srLeaveOff > 0 {
			// The reports left a good clock's slope and did not move on
			// (driftShown): as far as they left it, a lag in the
			// publisher's writes (its reports and packets alike), which
			// ends, not the audio's place. Caught up, a lag of 8 ms with
			// two reports 2 ms later still resampled a good clock by 0.5 %
			// for 2 s, and back when the lag ended.
			off -= math.Copysign(min(math.Abs(off), math.Abs(p.srLeaveOff)), off)
		}
		p.steer(off)
	}
	p.haveBase, p.havePrev, p.winEnd = false, false, 0 // a window from here: its end steers again
	return pos
}

// driftShown reports whether the slope s the reports followed show since the
// reference (the report placing the newest packet at want, span nominal
// samples after it) is the sender's clock rate: one a good clock plays at
// (resampleAt's band) always; leaving that band, only once the reports
// drifted reportLate off the nominal rate; and a drift off the slope in use,
// only if the packets' arrivals since the reference show it too (that way,
// at least half of it) and the report before was on its way (steady). On a
// busy machine Pion's reports and the packets alike come up to 10 ms off
// now and then: over the 2-4 s of a first slope that is 0.02-0.5 %, and a
// good clock was resampled at it from the next step or catch-up on.
// Otherwise the slope in use stays.
//
// A good clock's slope that a report since the reference showed (within
// reportLate of its line over 2 s of reports: srGoodShown), left at once
// (the report before was not on its way: a step, or a lag), is left only
// once a later report moved on that way, reportLate further off its line
// than the one that left it (srLeave): only time tells a lag from a drift.
// A publisher whose writes lag 6-11 ms for seconds on a busy machine (its
// reports, stamped by them, and its packets alike) moves its reports at
// once, then no further: the second report in the lag showed a drift of
// 0.2 % since the reference that the arrivals showed too, with the report
// before on its way, and the slope was taken and the offset from it caught
// up: a good clock resampled by 0.7 %, and back at 0.5 % when the lag ended
// (TestAudioPipeline_AGoodClockIsNotResampledForALag,
// TestServe_AGoodClockPlaysAtRatioOneThroughALag; bob's in
// TestEndToEnd_RetroactiveBlackout under load). A clock that drifts moves
// on: its slope waits for another reportLate of drift (5 s for a clock
// 0.1 % off), steer catching up its offset meanwhile.
func (p *AudioPipeline) driftShown(s, want, span float64) bool {
	if goodClock(s) {
		p.srGoodShown, p.srLeave = p.srGoodShown+1, false
		return true
	}
	good := goodClock(p.srSlope)
	if good && math.Abs(s-1)*span < reportLate.Seconds()*p.rate {
		p.srGoodShown, p.srLeave = p.srGoodShown+1, false
		return false
	}
	rd := want - (p.srRefPos + span*p.srSlope)
	if good && p.srGoodShown > 0 {
		switch {
		case p.srLeave:
			if !p.movedOn(rd) {
				return false
			}
		case !p.steady(want, span):
			p.srLeave, p.srLeaveOff = true, rd // left at once: a step, or a lag
			return false
		}
	}
	drift := p.srTrialRef - p.srRefLeast
	if !good && math.Abs(rd) < goodClockBand*span || !p.srRefTrial || math.IsInf(drift, 0) {
		return true
	}
	return rd*drift > 0 && math.Abs(drift) >= math.Abs(rd)/2 && p.steady(want, span)
}

// movedOn reports whether a report that places the newest packet rd samples
// off the line of a good clock's slope shown before moved on that way:
// reportLate further than the report that left it at once (srLeaveOff; if
// it left it the other way, this one is that report now; if it came
// reportLate back, the lag ended: srLeave ends). See driftShown.
func (p *AudioPipeline) movedOn(rd float64) bool {
	switch d := math.Abs(rd) - math.Abs(p.srLeaveOff); {
	case rd*p.srLeaveOff <= 0:
		p.srLeaveOff = rd
	case d <= -reportLate.Seconds()*p.rate:
		p.srLeave = false // came back: a lag that ended
	default:
		return d >= reportLate.Seconds()*p.rate
	}
	return false
}

// stepSlope returns the slope (our samples per nominal one) to go on at
// after a confirmed step of the reports (a near one, followed as drift
// first, or a far one) of step samples that places the newest packet at
// want, span nominal samples after the reference: slope, the one in use,
// unless it left a good clock's band since the reference (srLeftGood) and
// the reports with the step lie on a good clock's line from the reference
// (within reportLate). Then the step
// undid what that slope drifted: a publisher whose writes (and so its
// reports, stamped by them, and its packets alike) lag 9 ms for seconds on
// a busy machine shows a drift of 0.14 % that the arrivals show too, and
// when its writes come back on time its reports step back by the lag.
// Kept, the slope resampled a good clock from the step to the end
// (TestAudioPipeline_AGoodClockIsNotResampledForOneReportsJitter, 0.12 %).
// Followed through a pause (a blackout: no report is followed meanwhile),
// the line ran on at the lag's slope, and the lag's end came as a far step
// back, the lag and what the slope drifted: 20-30 ms
// (TestAudioPipeline_ALagSlopeIsDroppedAtAFarStepBack; bob's 660 Hz at
// 658 Hz, 1.00286, after api TestEndToEnd_RetroactiveBlackout's blackout
// under load).
// A clock whose slope was off before the reference keeps it (a slow clock
// whose writes lagged 15 ms for 2.5 s: TestAudioPipeline_AStepBack-
// DropsNothing), and so does one whose reference was itself a step that
// this one undoes (within reportLate: srRefMoved): a lag's start and end,
// the slope measured within the lag, the clock's (a clock 0.5 % slow whose
// writes lagged 22 ms for 4.5 s, 0.5 % of it: dropped, it played at ratio
// 1 till the next slope, beeps 10 ms early after it: TestAudioPipeline_-
// ASlowClockKeepsItsSlopeAcrossALagsStepBack).
func (p *AudioPipeline) stepSlope(slope, want, span, step float64) float64 {
	tol := reportLate.Seconds() * p.rate
	if p.srLeftGood && !goodClock(slope) && span > 0 && math.Abs(want-(p.srRefPos+span)) < tol && !(p.srRefMoved != 0 && math.Abs(step+p.srRefMoved) < tol) {
		return 1
	}
	return slope
}

// candOne plays the track at ratio 1 from a far candidate (the report
// placing the newest packet at want, span nominal samples after the
// reference) till the next report says, if its step, confirmed, would drop
// the slope (stepSlope): the reports with it are back on a good clock's
// line from the reference, so the slope was a lag's. Kept at the slope till
// the confirmation, a good clock was resampled for another report interval
// after a pause (the candidate is the first report after it: 0.4-0.7 s of
// TestEndToEnd_RetroactiveBlackout's range after the blackout). The next
// report followed puts the ratio back at the slope's (srCandOne) unless it
// confirms the step. Not when the reference was itself a step (srRefMoved):
// the candidate may be the end of the lag that step began, the slope
// measured within it the clock's, and its report alone cannot tell (see the
// far step's confirmation in followReport): a clock 0.5 % slow played at
// ratio 1 till the next report.
func (p *AudioPipeline) candOne(want, span, moved float64) {
	if p.ratio != 1 && p.srRefMoved == 0 && p.stepSlope(p.srSlope, want, span, moved) == 1 {
		p.setRatio(1)
		p.srCatchUp, p.srCandOne = false, true
	}
}

// resumeOnReport takes the first packet after a pause (Resync), at
// timeline position pos by the mapping, that arrived at now, with a report
// made during the pause (srNew): if that report places it a step back of
// the line followed (more than composition.MappingMoved earlier, as the
// offline placement takes a step), the pause's cut takes the step: the
// mapping goes where the report places it at once, at ratio 1, and the
// reports are followed anew from there (the report is the first, after its
// trial). Nothing after the cut is written yet, so none of it is dropped,
// and no catch-up resamples it. It returns the packet's position.
//
// A report is only ever late (stamped by a write that lagged), so a step
// back is the line's lateness ending: a publisher's writes lagged before
// the pause, its reports and packets alike, and the mapping followed them
// (a lag that grew: a slope of 0.2-0.3 %, and its offset caught up); they
// came back on time during it. Followed as any other step, the line ran on
// at that slope after the resume till the report's trial ended (0.3-0.6 s),
// the next report confirmed the step a second later, and the step back
// (5-30 ms), finding no silence in a tone, was caught up at maxCatchUp for
// 1-6 s (TestAudioPipeline_ALagIsLeftAtAResume; TestServe_AGoodClock-
// PlaysAtRatioOneAfterALagsBlackout: 660 Hz at 663.4 Hz for seconds, the
// blackout's end 26-35 ms late in the mix).
//
// The mapping moves with the line only on evidence (a confirmed step, a
// catch-up the arrivals show): where the line alone was late, the report
// places the packet about where the mapping does, and nothing moves. But
// while only the first report was followed (srFirst) the mapping's offset
// from the reports (srOff) is that report's: stamped late, a report on time
// places the packet that much before the mapping, which is right (placed by
// the packets' arrival). Then the step is taken only if the packet came
// earlier by the line than every packet since that report did (srLeast,
// beyond reportTakeBack); otherwise followReport gives it back to srOff
// (TestAudioPipeline_FirstReportStampedLate, paused before the next
// report). One packet's arrival is no evidence otherwise: on a busy
// machine it comes later than a 30 ms step as often as not.
//
// A clock's slope is kept, and the step taken as before: the slope must be
// a good clock's, or one that came from a lag (stepSlope drops it), and
// not measured from a reference that was itself a step (srRefMoved, see
// candOne; TestAudioPipeline_ASlowClockKeepsItsSlopeAtAResume). Nor is a
// step taken that the cut cannot take (back before what the mix decided).
func (p *AudioPipeline) resumeOnReport(pos float64, now uint64) float64 {
	want, ok := p.srPosition(p.lastTS, now)
	if !ok || math.IsInf(p.srLeast, 0) {
		return pos
	}
	want -= p.srOff
	line := p.srLine(p.ext)
	step := want - line
	if step >= 0 || !p.reportMoved(step) || want < float64(p.ring.Tail()) ||
		p.srFirst && float64(now)-line-p.srLeast > -reportTakeBack.Seconds()*p.rate {
		return pos
	}
	span := float64(p.ext-p.srExt) * p.rate / p.clock
	if !goodClock(p.srSlope) && (p.srRefMoved != 0 || p.stepSlope(p.srSlope, want, span, step) != 1) {
		return pos
	}
	p.setRatio(1)
	p.basePos, p.baseExt = want, p.ext
	p.srBack = 0
	p.srFollow, p.srCand, p.srCatchUp, p.srCandOne = false, false, false, false
	p.haveBase, p.havePrev, p.winEnd = false, false, 0
	return want
}

// steady reports whether the report followed before this one (which places
// the newest packet at want, span nominal samples after the reference) was
// on its way there from the reference, at least half as far off the line
// in use as time went: a drift grows with time, a step (a publisher's
// writes that begin to lag 6 ms just before the first slope) comes at once,
// and caught up from 5 ms as the first slope's drift it resampled a good
// clock by 0.7 %.
func (p *AudioPipeline) steady(want, span float64) bool {
	k := p.rate / p.clock
	prev := float64(p.srLastExt-p.srExt) * k
	if prev < 0.9*p.rate || span <= prev {
		return true
	}
	rd := want - (p.srRefPos + span*p.srSlope)
	po := p.srLastPos - (p.srRefPos + prev*p.srSlope)
	return po*rd > 0 && math.Abs(po) >= math.Abs(rd)*prev/span/2
}

// shiftLine moves the line of the reports followed d samples earlier (srOff
// d larger), and what is kept on it with it: the reference, the last report
// followed, a candidate, and the packets' least lateness by them.
func (p *AudioPipeline) shiftLine(d float64) {
	p.moveOff(d)
	p.srRefPos -= d
	p.srRepPos -= d
	p.srLastPos -= d
	p.srCandPos -= d
	p.srCandRepPos -= d
	p.srLeast += d
	p.srLineLeast += d
	p.srRefLeast += d
	p.srTrialRef += d
	p.srBaseLeast += d
}

// srOwn returns where the latest report places the packet with its own
// timestamp (extended from the newest packet's), less srOff: its own point
// on the line the mapping follows.
func (p *AudioPipeline) srOwn() (int64, float64) {
	return p.ext + int64(int32(p.srTS-p.lastTS)), p.srPos - p.srOff
}

// rateShown reports whether a report that moved far (more than reportStep)
// from the line of the reports followed shows the sender's clock rate,
// rate (our samples per nominal one, from the reference's own report to
// this one's, span nominal samples apart), rather than a step or a report
// stamped late: a clock off by more than twice maxCatchUp (beyond the ±0.5 %
// of drift the issue has absorbed by resampling, and that followReport's
// slope follows from a third report) whose reports moved at least half a
// second apart, with the packets showing it too. A clock 4 % slow drifts
// 40 ms a second: shown at the third report, it was placed up to 160 ms
// early for seconds with Pion's reports (a second apart), 400 ms with
// libwebrtc's (5 s apart), then jumped onto their line (issue 10:
// participants within 20 ms). The packets show a rate when those of this
// report's trial came later (or earlier) by the reference's line than the
// reference's own did, the way the report moved, by at least half the move
// (a report stamped late by a lagging write moves alone), and none came
// more than reportStep later than the one before since the reference: a
// step of the sender's clock (a capture that stalled) or a write that
// lagged makes such a gap, a drift does not. A lag less than that gap moves
// a report (stamped by the lagging write) and the packets alike, so the
// rate must pass twice maxCatchUp with that much of its move left out: a
// clock 0.5 % slow with one report 18 ms late, or 1.4 s of writes 18 ms
// late, showed 1.1-1.4 % over the 2-3 s since the reference, and was
// jumped 31 ms forward onto that line (beeps 22-34 ms late); a clock 4 %
// slow shows 4 % at the second report (Pion's: a second, 3.1 % needed).
func (p *AudioPipeline) rateShown(rate, span, moved float64) bool {
	drift := p.srTrialRef - p.srRefLeast
	return span >= p.rate/2 && math.Abs(rate-1)*span > 2*maxCatchUp*span+reportStep.Seconds()*p.rate && math.Abs(rate-1) <= p.maxSkew && !p.srGap &&
		!math.IsInf(drift, 0) && drift*moved > 0 && math.Abs(drift) >= math.Abs(moved)/2
}

// stepTo takes a confirmed step of the reports for the newest packet, at
// timeline position pos by the mapping, that arrived at now: onto where
// they place it, want, and returns its position. Forward (or back by a
// rounding's 2 samples) the mapping jumps there (silence); further back it
// is pending (srBack: taken in the next silence, or caught up).
func (p *AudioPipeline) stepTo(want, pos float64, now uint64) float64 {
	if back := pos - want; back > 2 {
		p.srBack, p.srBackUntil = back, now+uint64(windowLen.Seconds()*p.rate)
		return pos
	}
	p.basePos, p.baseExt = want, p.ext
	p.srBack = 0
	return want
}

// moveOff moves srOff by d (a report followed, or the line of those
// followed, found stamped late: see followReport), and OriginSent with it
// if it is the first report's.
func (p *AudioPipeline) moveOff(d float64) {
	p.srOff += d
	if p.srFirstOrigin {
		p.followed.Store(math.Float64bits(p.srOff))
	}
}

// confirms reports whether a report that places the newest packet at want
// (on the reports' line followed) confirms the step candidate (see
// followReport): a candidate followed as drift, if it is on its line at the
// slope before it and as far from the line before; another, if it moved as
// far from the line followed and is on the candidate's line.
func (p *AudioPipeline) confirms(want float64) bool {
	if !p.srCand {
		return false
	}
	k := p.rate / p.clock
	if p.srCandNear {
		off := want - (p.srCandPos + float64(p.ext-p.srCandExt)*k*p.srCandSlope)
		return !p.reportMoved(off) && p.reportMoved(p.srCandMoved+off)
	}
	return math.Abs(want-p.srLine(p.ext)) > reportStep.Seconds()*p.rate &&
		!p.reportMoved(want-(p.srCandPos+float64(p.ext-p.srCandExt)*k*p.srSlope))
}

// The hold: a capture that stalls (a sender's device or thread that stopped
// for 100 ms) loses samples, so its RTP time falls behind its wall clock by
// the stall; its reports show that as a step, a candidate at the first
// report after the stall and a step once the next confirms it (followReport),
// one or two report intervals later (Pion: a second; libwebrtc: 5 s). Its
// packets show it at once: they come the stall later than their timestamps
// say, and stay so (watchGap). From that gap on the pipeline holds its
// audio: written, not decided, so the mixer waits for it up to the budget.
// If the step is confirmed while it holds, what it wrote since the gap moves
// forward by the step (Ring.ShiftForward), silence where it was: every
// sample after the stall lies where the sender's clock places it, where the
// mapping placed it the step early before (a beep in it 100 ms early in the
// mix and, placed as the mix placed it, in the composite). A hold ends, and
// its audio is decided where it is, when the packets catch up (a write that
// lagged and then sent in a burst: no stall), when the report after the gap
// is no far candidate (it did not move, or moved up to reportStep) or the
// next does not confirm it, at a pause, a re-anchor, the stop (PlaceHeld) or
// the end, and once the mixer wrote into it (the budget passed: with libwebrtc's reports 5 s
// apart the step comes too late, and the audio before it stays where it
// is). A candidate with no gap before it holds nothing (a clock 4 % slow
// makes one at every report: held from each, the mix lacked its last 100
// ms at the stop). Only a step forward moves held audio; one back is taken
// as before.

// watchGap takes the newest packet, at timeline position pos by the
// mapping, that arrived at now: the arrivals' gap that begins a hold, or
// the packets' catching up that ends one (see the hold above).
func (p *AudioPipeline) watchGap(pos float64, now uint64) {
	dt := float64(p.ext-p.newestExt) * p.rate / p.clock
	gap := float64(now) - float64(p.newestAt) - dt
	p.newestAt, p.newestExt = now, p.ext
	late := float64(now) - pos
	if gap > reportStep.Seconds()*p.rate {
		p.srGap = true
		if !p.arrGap {
			p.arrGap, p.arrGapLate = true, late-gap
		}
	} else if p.arrGap && late <= p.arrGapLate+reportStep.Seconds()*p.rate {
		p.arrGap = false // caught up: a write or the network that lagged
	}
	// The packets' lateness, high-water, falling 10 % of their time (a
	// clock within MaxSkew drifts less): one that came more than
	// reportStep earlier than it, not catching up a hold's gap, came
	// earlier at once: a write lag's end (one that spanned a report), a
	// step back, not a drift (rateShown). A publisher's writes 30 ms late
	// for 3 s ended so, and the report after, back on the line, was taken
	// for a clock 3 % fast: a good clock resampled at up to 5 %.
	hi := p.hiLate - dt/10
	if !p.holding && late < hi-reportStep.Seconds()*p.rate {
		p.srGap = true
	}
	p.hiLate = max(late, hi)
	switch step := reportStep.Seconds() * p.rate; {
	case p.holding && late < p.holdLate-p.holdGap/2:
		// Caught up, as a write that lagged does, all the way (no stall)
		// or to where a stall meanwhile leaves it.
		before := p.holdLate - p.holdGap // the packets' lateness before the gap
		if late-before <= step {
			// No step: a write that lagged (or the network), not a gap
			// that tells a step from a drift (rateShown), unless a report
			// came meanwhile (stamped by a lagging write: see hiLate).
			p.endHold()
			p.hiLate = late
			if p.srCount == p.holdSR {
				p.srGap = false
			}
			return
		}
		p.holdLate, p.holdGap = late, late-before
	case !p.holding && gap > step && p.srFollow:
		p.hold(pos, now, gap)
	}
}

// hold begins a hold at the newest packet, at timeline position pos by the
// mapping, that arrived at now, gap samples later than its timestamp says
// (see the hold above). Not while settling, across a skipped cut's bridge,
// or where the mixer wrote already.
func (p *AudioPipeline) hold(pos float64, now uint64, gap float64) {
	if p.settling || p.bridgeBy != 0 || math.Ceil(pos) < float64(p.ring.Tail()) {
		return
	}
	p.holding, p.holdFrom, p.holdTS, p.holdUpTo, p.holdSR = true, uint64(math.Ceil(pos)), p.lastTS, 0, p.srCount
	p.holdLate, p.holdGap = float64(now)-pos, gap
}

// holdWhileCandidate ends a hold once a report that came after it began
// was followed and left no far step candidate pending (see the hold above).
// One that came before it (on trial across the gap) says nothing of it.
func (p *AudioPipeline) holdWhileCandidate() {
	if p.srCount > p.holdSR && (!p.srCand || p.srCandNear) {
		p.endHold()
	}
}

// endHold ends a hold: what it held is decided where it is.
func (p *AudioPipeline) endHold() {
	if !p.holding {
		return
	}
	p.holding = false
	if p.holdUpTo > 0 {
		p.decide(p.holdUpTo)
	}
}

// shiftHold moves what the hold wrote forward by by samples (a confirmed
// step: see the hold above), and the packets still pending with it.
func (p *AudioPipeline) shiftHold(by float64) {
	n := uint64(math.Round(by))
	if !p.ring.ShiftForward(p.holdFrom, n) {
		return
	}
	p.lastEnd += int64(n)
	for s := p.nextSeq; s != p.maxSeq+1; s++ {
		if w, b := p.bit(s); *w&b != 0 {
			if i := int(s) % seqWindow; near(p.starts[i], p.holdFrom) >= int64(p.holdFrom) {
				p.starts[i] += uint32(n)
				p.ends[i] += uint32(n)
			}
		}
	}
	if p.holdUpTo > p.holdFrom {
		p.holdUpTo += n
	}
	p.shiftTS = p.holdTS
	p.shifts++
}

// reportMoved reports whether a report that places the audio d samples
// later than a line of reports (earlier if negative) moved from it
// (composition.ReportMoved).
func (p *AudioPipeline) reportMoved(d float64) bool {
	return composition.ReportMoved(time.Duration(d / p.rate * float64(time.Second)))
}

// srLine returns where the reports followed place the packet with extended
// timestamp ext: the last one's placement, on at the sender's clock rate.
func (p *AudioPipeline) srLine(ext int64) float64 {
	return p.srLastPos + float64(ext-p.srLastExt)*p.rate/p.clock*p.srSlope
}

// steer sets the ratio for a track that follows its sender's reports, off
// samples behind where they place its newest packet: the clock's rate
// (srSlope), and the offset caught up (catchUp: at most maxCatchUp beyond
// that rate). Not for an offset within the reports' jitter: resampling
// starts once it passed 10 ms, and stops when the clock is within 0.02 %
// and the offset within 5 ms.
func (p *AudioPipeline) steer(off float64) {
	switch {
	case math.Abs(off) >= 0.010*p.rate || p.ratio != 1 && math.Abs(off) >= 0.005*p.rate:
		p.catchUp(off)
	case p.ratio != 1:
		p.setRatio(p.resampleAt(p.srSlope))
		p.srCatchUp = false
	}
}

// maxCatchUp is how far from its sender's clock rate steer resamples a track
// to catch up an offset from its reports' line: 0.5 %, the pitch a drift
// within issue 10's ±0.5 % is absorbed by. An offset caught up over a second
// however large made the pitch after a resume wrong by 1-2 %: no report is
// followed while a recording is paused, so the mapping runs on at the rate
// it had (a clock whose slope was not known yet: at its nominal rate) and
// the first report after the resume finds it 10-20 ms off (a 440 Hz tone at
// 447 Hz for 0.6 s in TestEndToEnd_Pause; 2 % in
// TestAudioPipeline_SlippingClockFollowedAcrossAPause), as a first slope
// did (1.4-1.6 %).
const maxCatchUp = 0.005

// catchUp resamples a track that follows its sender's reports, off samples
// behind where they place its newest packet, at the clock's rate (srSlope)
// and off faster: caught up over the next second, or, if that needs more
// than maxCatchUp beyond the clock's rate (MaxSkew while srPull and off is
// beyond pullFar; MaxSkew in all), at that: longer. From the timestamp
// where it caught up, place maps at the clock's rate: by the track's own
// time, so a pause meanwhile (no packets, and no window end of measure to
// stop it) does not carry the mapping past the reports' line (it ended 5-9
// ms past it after a 1 s pause, and the slipping clock's beeps were 11-14
// ms off).
func (p *AudioPipeline) catchUp(off float64) {
	limit := maxCatchUp
	if p.srPull && math.Abs(off) > pullFar.Seconds()*p.rate {
		limit = p.maxSkew
	} else {
		p.srPull = false
	}
	ratio := p.srSlope + min(max(off/p.rate, -limit), limit)
	ratio = min(max(ratio, 1-p.maxSkew), 1+p.maxSkew)
	p.setRatio(ratio)
	p.srCatchUp = false
	if gain := (ratio - p.srSlope) * p.rate / p.clock; gain != 0 { // samples gained per tick of the RTP clock
		p.srCatchUp, p.srCatchEnd = true, p.ext+int64(math.Ceil(off/gain))
	}
}

// goodClockBand is how far a sender clock's slope (our samples per nominal
// one) may be off 1 and still be a good clock's, played at ratio 1: 0.02 %.
const goodClockBand = 2e-4

// goodClock reports whether a slope is within goodClockBand of 1.
func goodClock(slope float64) bool { return math.Abs(slope-1) < goodClockBand }

// resampleAt returns the ratio for a sender clock of slope (our samples per
// nominal one): exactly 1 within goodClockBand, so a good clock is not
// resampled.
func (p *AudioPipeline) resampleAt(slope float64) float64 {
	if goodClock(slope) {
		return 1
	}
	return slope
}

// setRatio changes the resampling ratio from the newest packet on, re-based
// so that the mapping stays continuous.
func (p *AudioPipeline) setRatio(ratio float64) { p.setRatioAt(p.ext, ratio) }

// setRatioAt changes the resampling ratio from extended timestamp ext on
// (not before the mapping's base), re-based there so that the mapping stays
// continuous.
func (p *AudioPipeline) setRatioAt(ext int64, ratio float64) {
	if ratio != p.ratio {
		p.basePos += float64(ext-p.baseExt) * p.rate / p.clock * p.ratio
		p.baseExt = ext
		p.ratio = ratio
	}
}

// pullFar is the offset from on time beyond which measure pulls a track
// placed late back faster than maxCatchUp beyond its clock's rate: the
// pitch yields to the placement (issue 10: participants within 20 ms of the
// truth). Pulled over 2 s however small, a track 100 ms late was resampled
// by 5, 2.5, 1.25 and 0.625 % for a second each (a 440 Hz tone at 463, 451,
// 446 and 443 Hz): the last within 20 ms, now at most 0.5 % (442 Hz).
const pullFar = 20 * time.Millisecond

// measure takes the lateness of a packet placed at pos (nominal position
// nom, without resampling) that arrived at now, and at the end of each
// window steers the ratio: to the slope of the least lateness since the
// reference window (the sender's clock rate against ours), corrected by the
// offset from the reference lateness over 10 s. The reference window is the
// first one, or a later one whose least lateness fell by more than any
// sender clock within MaxSkew explains (a step: the packets before it came
// late, a reader or a sender that caught up), or the one a pull-back to on
// time begins in (see below). The reference lateness is the first
// window's, but for a track placed by arrival at most 0 (on time: its
// settled anchor). It starts resampling once the offset passed 10 ms, and
// stops when the slope is within 0.02 % and the offset within 5 ms:
// otherwise the ratio is exactly 1 (no resampling).
func (p *AudioPipeline) measure(pos, nom float64, now uint64) {
	late := float64(now) - pos
	if p.winEnd == 0 {
		p.winEnd = now + uint64(windowLen.Seconds()*p.rate)
		p.winMin, p.winNom, p.winAt = late, nom, float64(now)
		return
	}
	if now < p.winEnd {
		if late < p.winMin {
			p.winMin, p.winNom, p.winAt = late, nom, float64(now)
		}
		return
	}
	// The window ended: use the least lateness of it and the window before
	// (two seconds of packets: one window may lack a packet that came
	// through the network without queueing), start the next with this
	// packet.
	winMin, winNom, winAt := p.winMin, p.winNom, p.winAt
	if p.havePrev && p.prevMin < winMin {
		winMin, winNom, winAt = p.prevMin, p.prevNom, p.prevAt
	}
	p.havePrev, p.prevMin, p.prevNom, p.prevAt = true, p.winMin, p.winNom, p.winAt
	p.winEnd = now + uint64(windowLen.Seconds()*p.rate)
	p.winMin, p.winNom, p.winAt = late, nom, float64(now)
	if p.srFollow {
		p.pulling = false
		if now < p.srAt+uint64(reportsGone.Seconds()*p.rate) {
			// The sender's reports steer the mapping (followReport):
			// while it resamples, at the clock's rate, with what remains
			// of the offset from their line caught up over the next
			// second (a resampling at MaxSkew may need more than one).
			if p.ratio != 1 {
				p.steer(p.srLine(p.ext) - (pos - p.srBack))
			}
			return
		}
		p.srFollow, p.srCatchUp = false, false // they stopped: by arrival from here
	}
	if !p.haveBase {
		// The reference: the first window's least lateness, or, for an
		// anchor placed by arrival, on time (lateness 0, the settled
		// anchor's least-late packet) if this window came earlier than that:
		// the packets read while settling were all late (a reader or a
		// sender that stayed behind for longer), so the mapping is late and
		// is pulled back to on time by resampling.
		base := winMin
		if p.byArrival {
			base = max(winMin, 0)
		}
		p.haveBase, p.base, p.baseMin, p.baseNom, p.baseAt = true, base, winMin, winNom, winAt
		p.arrGap = p.arrGap && p.arrGapLate+reportStep.Seconds()*p.rate < winMin // one not caught up yet stays
		return
	}
	// This window's least lateness (not the two windows': the one before
	// was placed by the ratio before), moved on by the ratio in use since
	// against the clock's rate as known (arrRate), against the reference
	// lateness.
	p.rateByArrival()
	off := p.prevMin + (p.arrRate-p.ratio)*(float64(now)-p.prevAt) - p.base
	// A track placed by arrival whose packets came more than 20 ms before
	// the mapping places them (jitter only ever makes them later) is placed
	// late (a step, or a sender clock running fast): it is pulled back,
	// till within 5 ms.
	pull := p.byArrival && (off < -0.02*p.rate || p.pulling && off < -0.005*p.rate)
	span := winNom - p.baseNom
	if pull && !p.pulling || p.baseMin-winMin > p.maxSkew*span+0.01*p.rate {
		// A step no sender clock explains, or a pull-back begins (after a
		// step as likely as with a fast clock; a step smaller than MaxSkew
		// over the span, as a reader 100 ms behind that caught up, read as
		// a slope, was pulled back twice: by the slope and by the offset,
		// ending up to 100 ms early): the slope is measured from here (the
		// offset to the reference lateness is still caught up).
		p.baseMin, p.baseNom, p.baseAt = winMin, winNom, winAt
		span = 0
	}
	slope := p.arrRate // our samples per sender sample: 1 till a slope shows
	if span >= 3*p.rate {
		slope = (winAt - p.baseAt) / span
		if p.arrRate != 1 {
			p.arrRate = slope // rateByArrival's, measured on
		}
	}
	var ratio float64
	switch {
	case pull:
		// Caught up within seconds, the offset over 2 s at most MaxSkew,
		// without waiting for a slope, while it is more than pullFar (a
		// placement the issue's 20 ms between participants does not
		// allow); from there at most maxCatchUp beyond the slope, a pitch
		// within the ±0.5 % a drift is absorbed by.
		c := off / (2 * p.rate)
		if off > -pullFar.Seconds()*p.rate {
			c = max(c, -maxCatchUp)
		}
		ratio = min(max(slope+c, 1-p.maxSkew), 1+p.maxSkew)
	case p.pulling && span < 3*p.rate:
		// Pulled back to within 5 ms. Resampling on at the pull-back's
		// ratio till a slope shows would pull on past on time.
		ratio = slope // 1 (or rateByArrival's): no slope yet
	case p.arrPull && off > pullFar.Seconds()*p.rate:
		// rateByArrival found the rate with the track placed early:
		// the offset from on time is caught up over 2 s at up to MaxSkew
		// while beyond pullFar (as the pull-back above, the other way).
		ratio = min(max(slope+off/(2*p.rate), 1-p.maxSkew), 1+p.maxSkew)
	case p.arrRate != 1 && span < 3*p.rate:
		// rateByArrival's rate, with what is left of the offset caught
		// up at most maxCatchUp beyond it, till a slope shows.
		p.arrPull = false
		ratio = min(max(slope+min(max(off/(2*p.rate), -maxCatchUp), maxCatchUp), 1-p.maxSkew), 1+p.maxSkew)
	case span < 3*p.rate:
		return // too short a baseline for a slope
	default:
		offset := (winMin - p.base) / (10 * p.rate) // catch up the offset in 10 s
		ratio = min(max(slope+offset, 1-p.maxSkew), 1+p.maxSkew)
		// Jitter makes the slope noisy: start resampling once the offset
		// has grown past 10 ms, stop once the slope is within 0.02 % and
		// the offset within 5 ms.
		drift := math.Abs(winMin - p.base)
		if p.ratio == 1 && drift < 0.01*p.rate || p.ratio != 1 && goodClock(slope) && drift < 0.005*p.rate {
			ratio = 1
		}
	}
	p.setRatio(ratio)
	p.pulling = pull
}

// rateByArrival takes the end of a drift window of a track placed by its
// arrival whose clock's rate is not known yet (not resampled, not pulled
// back), and takes the rate the window just ended shows, if any: the
// packets' least lateness in it against the reference window's, a second
// before, grew at a rate beyond twice maxCatchUp (the ±0.5 % of drift the
// issue has absorbed by resampling, and that measure's slope follows from
// 3 s of windows) and within MaxSkew, by more than pullFar, with no gap
// since the reference window that the packets did not catch up (a step: a
// capture that stalled). A clock 4 % slow drifts 40 ms a second: before its
// slope showed (3 s of windows) it was placed 160-260 ms early against its
// arrivals (issue 10: participants within 20 ms). From here measure
// resamples at that rate, and catches up the offset from on time (the
// settled anchor's: lateness 0) at up to MaxSkew while beyond pullFar;
// never by a jump, which leaves silence in a continuous sound.
func (p *AudioPipeline) rateByArrival() {
	span := p.prevNom - p.baseNom
	if !p.byArrival || p.ratio != 1 || p.arrRate != 1 || p.pulling || p.arrGap || span < windowLen.Seconds()*p.rate*(1-p.maxSkew) {
		return
	}
	rate := (p.prevAt - p.baseAt) / span // our samples per nominal one
	if math.Abs(rate-1) <= 2*maxCatchUp || math.Abs(rate-1) > p.maxSkew || p.prevMin-p.baseMin <= pullFar.Seconds()*p.rate {
		return
	}
	p.arrRate, p.base, p.arrPull = rate, 0, true
}

// stretch fills out with in stretched to its length by linear interpolation
// (silence if in is empty).
func stretch(out, in []int16) {
	if len(in) == 0 {
		clear(out)
		return
	}
	step := float64(len(in)) / float64(len(out))
	for j := range out {
		x := float64(j) * step
		i := int(x)
		if i >= len(in)-1 {
			out[j] = in[len(in)-1]
			continue
		}
		f := x - float64(i)
		out[j] = int16(float64(in[i]) + (float64(in[i+1])-float64(in[i]))*f)
	}
}

// decode decodes payload into pcm (maxPCM samples) and returns the number
// of samples.
func (p *AudioPipeline) decode(payload []byte, pcm []int16) (int, error) {
	if p.g711 != nil {
		n, prev := decodeG711(p.g711, payload, pcm, p.factor, p.prev)
		p.prev = prev
		return n, nil
	}
	return p.opus.DecodeToInt16(payload, pcm)
}

// scratch is emit's working memory: the decoded packet (pcm) and its
// resampled or concealing copy (res, a quarter longer for a stretch by up to
// MaxSkew and rounding). Only the packet being emitted needs them, so a
// pipeline borrows them for the call (scratchPool) instead of holding them:
// 4.2 KB less per track at 8 kHz (internal/lend; no lock, and no
// allocation once the pool's sets in use have their size).
type scratch struct {
	pcm, res []int16
}

// scratchPool lends scratch to emit calls.
var scratchPool lend.Pool[scratch]

// size makes s hold a packet of up to maxPCM samples (at the first borrow of
// a set, or by a pipeline at a higher rate than its last borrowers).
func (s *scratch) size(maxPCM int) {
	if len(s.pcm) < maxPCM {
		s.pcm = make([]int16, maxPCM)
		s.res = make([]int16, maxPCM+maxPCM/4+2)
	}
}

// SenderReport gives the pipeline the sender's latest RTCP sender report
// (RFC 3550 §6.4.1): its wall clock was at, on the recording's timeline,
// when its RTP clock showed rtpTS. The next anchor places the track by it
// (see the package documentation). While packets are queued undecoded it
// is queued behind them (deferred.go): it applies to the packets that came
// after it. Reader goroutine only; it allocates nothing.
func (p *AudioPipeline) SenderReport(ssrc uint32, at time.Time, rtpTS uint32) {
	d := at.Sub(p.mixer.cfg.Start)
	if p.deferReport(ssrc, rtpTS, d) {
		return
	}
	p.senderReport(ssrc, rtpTS, d)
}

// senderReport takes a sender report (SenderReport): the sender's wall
// clock was d after the recording's start when its RTP clock showed rtpTS.
func (p *AudioPipeline) senderReport(ssrc, rtpTS uint32, d time.Duration) {
	p.srValid, p.srSSRC, p.srTS = true, ssrc, rtpTS
	p.srPos = d.Seconds() * p.rate
	p.srCount++
	p.srNew = true // the next packet checks it and the mapping follows it (followReport)
}

// srPosition returns the timeline position of RTP timestamp ts by the
// latest sender report of the current source, on from the report at the
// sender's clock rate as the reports followed show it (srSlope; nominal
// before), so that a report taken a while after it came (at a resume) is
// not off by the clock's drift meanwhile (5 ms a second at 0.5 %), if it
// fits a packet with that timestamp arriving at now: not more than 100 ms after its arrival (the
// clocks may differ a little) and not more than a second before it (network
// delay). A sender whose wall clock is off by more is placed by arrival.
func (p *AudioPipeline) srPosition(ts uint32, now uint64) (float64, bool) {
	pos, ok := p.srPlace(ts)
	if !ok {
		return 0, false
	}
	if late := float64(now) - pos; late < -p.rate/10 || late > p.rate {
		return 0, false
	}
	return pos, true // before the recording's time zero too: that part is left out of the mix
}

// srPlace returns the timeline position of RTP timestamp ts by the latest
// sender report of the current source (srPosition), whether it fits the
// packet's arrival or not: a report on trial is measured by every packet
// (place). By those that fit only (placed at most 100 ms after their
// arrival), a report stamped 140 ms late was taken back by 108 ms, and the
// 12 ms left were followed as drift.
func (p *AudioPipeline) srPlace(ts uint32) (float64, bool) {
	if !p.srValid || p.srSSRC != p.ssrc {
		return 0, false
	}
	k := p.rate / p.clock
	if p.srFollow {
		k *= p.srSlope
	}
	return p.srPos + float64(int32(ts-p.srTS))*k, true
}

// Resync tells the pipeline that packets were dropped on purpose before the
// next one (a pause or blackout): they are not lost, and the next packet is
// placed by its timestamp only if that fits its arrival (the sender's clock
// ran on through the gap, as the track's file assumes); otherwise it
// re-anchors the timeline at its arrival. Reader goroutine only.
func (p *AudioPipeline) Resync() {
	p.processDue(true) // what came before the gap first
	p.resync = p.started
	p.recheck = p.anchored
}

// PositionOf returns the timeline position where a packet with RTP
// timestamp ts would begin under the current mapping; ok is false before the
// first packet, after a new source and after Resync (no mapping yet) or for a
// timestamp more than MaxJump from the last one. Reader goroutine only.
func (p *AudioPipeline) PositionOf(ts uint32) (pos uint64, ok bool) {
	if !p.anchored || p.resync || p.resumeAt {
		return 0, false
	}
	step := int64(int32(ts - p.lastTS))
	if step > p.maxJump || -step > p.maxJump {
		return 0, false
	}
	x := p.basePos + float64(p.ext+step-p.baseExt)*(p.rate/p.clock)*p.ratio
	return uint64(max(math.Ceil(x), 0)), true
}

// PlaceOf is PositionOf for a packet that arrives now, when the mapping fits
// its arrival as place keeps it: not more than a second ahead of it and not
// later than the budget (otherwise the timestamps may have lost touch with
// time, and the packet may re-anchor the timeline at its arrival). Where a
// packet's audio begins on the timeline, not when it was read, is what a cut
// (pause, blackout, stop) keeps it by: a reader that fell behind reads audio
// from before a cut after it, up to the budget late. Reader goroutine only.
func (p *AudioPipeline) PlaceOf(ts uint32) (pos uint64, ok bool) {
	return p.placeAt(ts, p.mixer.Now())
}

// PlaceAt is PlaceOf for a packet that reached the machine at arrived, as
// WriteRTPAt places it: its lateness counts from there, not from when it
// is read, so a reader seconds behind its socket (starved of CPU) reads
// audio that is still placed. Reader goroutine only.
func (p *AudioPipeline) PlaceAt(ts uint32, arrived time.Time) (pos uint64, ok bool) {
	return p.placeAt(ts, min(p.mixer.PosAt(arrived), p.mixer.Now()))
}

// placeAt is PlaceOf for a packet that arrived at timeline position now.
func (p *AudioPipeline) placeAt(ts uint32, now uint64) (pos uint64, ok bool) {
	pos, ok = p.PositionOf(ts)
	if !ok || pos > now+uint64(p.rate) || pos+p.mixer.budget < now {
		return 0, false
	}
	return pos, true
}

// ResyncAt is Resync after a skipped pause (Mixer.Cut from, to): the track
// resumes in the mix exactly where its audio before the cut ended, as it
// does in its file, whatever the packet's timestamp and arrival. For the
// track whose audio ended last the cut begins there (Mixer.Uncut), and the
// next packet's first sample goes at to, the cut's end. A track whose audio
// ended d earlier than from resumes at to-d: its first d samples go just
// before the cut, where its audio ended, and the rest after it (a bridge
// over the cut), so every track is seamless. The mapping, and the drift
// measurement, start anew there. Reader goroutine only.
func (p *AudioPipeline) ResyncAt(from, to uint64) {
	p.Resync()
	if p.started {
		p.recheck, p.anchored = false, false
		p.resumeAt, p.resumePos, p.cutFrom = true, to, from
	}
}

// put writes out at timeline position pos as the mapping places it; the part
// within the bridge over a skipped cut goes to just before the cut (see
// anchor), the part before the recording's time zero nowhere. It returns the
// samples stored.
func (p *AudioPipeline) put(at int64, out []int16) int {
	if at < 0 {
		out = out[min(-at, int64(len(out))):]
		at = 0
	}
	pos := uint64(at)
	end := pos + uint64(len(out))
	if p.bridgeBy == 0 || pos >= p.bridgeTo || end <= p.bridgeFrom {
		return p.ring.Put(pos, out)
	}
	k := int(min(end, p.bridgeTo) - pos) // the part before the cut's end
	n := p.ring.Put(pos-p.bridgeBy, out[:k])
	if k < len(out) {
		n += p.ring.Put(p.bridgeTo, out[k:])
	}
	return n
}

// decide decides the ring up to position x as the mapping places it (see
// put).
func (p *AudioPipeline) decide(x uint64) {
	if p.bridgeBy != 0 && x > p.bridgeFrom && x <= p.bridgeTo {
		x -= p.bridgeBy
	}
	p.ring.Decide(x)
}

// Pause tells the pipeline that the gate closed (a pause or a blackout
// begins): the packets held for reordering are decoded and placed now and
// everything written is decided, so the track's audio before the cut is
// all in the ring (Ring.End) while the gate is closed. Reader goroutine only.
func (p *AudioPipeline) Pause() {
	if p.closed || !p.started {
		return
	}
	p.PlaceHeld()
	p.finishSeq()
}

// PlaceHeld decodes and places now what the pipeline holds: the packets
// held behind a missing one, and the deferred ones. Unlike Pause it gives
// up on no missing packet: one that still comes is placed where it belongs,
// as long as the mixer has not written its place (the recording's stop: a
// packet from after it came first, and the drain waits on for the ones
// before it that reached the machine). Reader goroutine only.
func (p *AudioPipeline) PlaceHeld() {
	if p.closed || !p.started {
		return
	}
	p.processDue(true)
	p.flushHeld(p.mixer.Now())
	p.endHold() // no report can move audio from before the stop now: the mix ends with it
}

// Close decides everything written (the mixer stops waiting for the track);
// later WriteRTP calls return ErrClosed. It is idempotent. The input stays
// in the mixer until RemoveInput.
func (p *AudioPipeline) Close() error {
	if p.closed {
		return nil
	}
	p.processDue(true)
	p.flushHeld(p.mixer.Now())
	p.finishSeq()
	p.closed = true
	return nil
}
