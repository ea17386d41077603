package media

import (
	"errors"
	"fmt"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/pion/opus"
	"github.com/pion/rtp"
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
	// ReorderWindow is the reorder window in packets (rounded up to a power
	// of two, at most 1024): up to ReorderWindow-1 packets after a missing
	// one are held to restore sequence order; default 8. Held packets are released as soon as the missing
	// one arrives, or in time for the mixer to play them.
	ReorderWindow int
	// MaxJump is the largest RTP timestamp step kept as a gap; a larger jump,
	// forward or back, re-anchors the timeline. Default 5 s.
	MaxJump time.Duration
	// LateStreak is how many packets in a row may arrive slightly late (by
	// less than the cushion: the sender's clock runs slower than ours) before
	// the timeline is re-anchored; default 10. Packets late by more (a network
	// stall) are dropped and re-anchor only after 5×LateStreak in a row.
	LateStreak int
}

// PipelineStats are an AudioPipeline's counters.
type PipelineStats struct {
	Packets      uint64 // packets given to WriteRTP
	Decoded      uint64 // packets decoded and written to the ring
	Lost         uint64 // sequence numbers skipped (never arrived in time)
	Duplicates   uint64 // packets dropped as duplicate or too old for the reorder window
	Late         uint64 // packets whose position the mixer had already played (fully or partly)
	DecodeErrors uint64 // packets the decoder rejected (played as silence)
	Reanchors    uint64 // timeline re-anchors: new SSRC, timestamp jump, late streak
}

// heldPacket is a packet kept by the reorder window; payload is a copy.
type heldPacket struct {
	valid   bool
	seq     uint16
	ts      uint32
	payload []byte // cap maxPayload, reused
}

// AudioPipeline decodes one audio track's RTP packets to PCM at the mix rate
// and places them on the track's timeline in its mixer input's ring (see the
// package documentation for the timeline design). WriteRTP and Close belong
// to one goroutine, the track's reader; Stats may be called from any.
type AudioPipeline struct {
	codec   Codec
	clock   int64
	rate    int64
	input   *MixInput
	ring    *Ring
	maxJump int64 // in RTP ticks
	streak  int

	opus   opus.Decoder
	g711   *[256]int16
	factor int   // G.711 output samples per input sample
	prev   int16 // G.711 interpolation state
	pcm    []int16

	started  bool   // a packet was emitted (sequence state valid)
	ssrc     uint32 // current source
	nextSeq  uint16 // next sequence number to emit
	held     []heldPacket
	nheld    int
	anchored bool   // the timestamp mapping is valid
	lastTS   uint32 // RTP timestamp of the last emitted packet
	extTS    int64  // lastTS extended to 64 bits
	baseTS   int64  // extended timestamp at the anchor
	basePos  uint64 // ring position at the anchor
	lateRun  int    // consecutive late packets
	driftRun int    // consecutive packets late by less than the cushion
	closed   bool

	packets, decoded, lost, dups, late, decodeErrs, reanchors atomic.Uint64
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
	if cfg.ReorderWindow <= 0 {
		cfg.ReorderWindow = 8
	}
	// A power of two divides 2^16, so seq%window stays unique across the
	// sequence number wrap.
	cfg.ReorderWindow = min(1<<bits.Len(uint(cfg.ReorderWindow-1)), 1024)
	if cfg.MaxJump <= 0 {
		cfg.MaxJump = 5 * time.Second
	}
	if cfg.LateStreak <= 0 {
		cfg.LateStreak = 10
	}
	p := &AudioPipeline{
		codec:   cfg.Codec,
		clock:   int64(cfg.ClockRate),
		rate:    int64(cfg.SampleRate),
		input:   cfg.Input,
		ring:    cfg.Input.ring,
		maxJump: int64(cfg.MaxJump) * int64(cfg.ClockRate) / int64(time.Second),
		streak:  cfg.LateStreak,
		held:    make([]heldPacket, cfg.ReorderWindow),
	}
	for i := range p.held {
		p.held[i].payload = make([]byte, 0, maxPayload)
	}
	switch cfg.Codec {
	case CodecOpus:
		dec, err := opus.NewDecoderWithOutput(cfg.SampleRate, 1)
		if err != nil {
			return nil, fmt.Errorf("%w: opus at %d Hz: %v", ErrCodec, cfg.SampleRate, err)
		}
		p.opus = dec
		p.pcm = make([]int16, samples(maxOpusDuration, cfg.SampleRate))
	case CodecPCMU, CodecPCMA:
		if cfg.SampleRate%8000 != 0 {
			return nil, fmt.Errorf("%w: G.711 needs a mix rate that is a multiple of 8000 Hz, not %d", ErrCodec, cfg.SampleRate)
		}
		p.factor = cfg.SampleRate / 8000
		p.g711 = &g711.ulaw
		if cfg.Codec == CodecPCMA {
			p.g711 = &g711.alaw
		}
		p.pcm = make([]int16, maxPayload*p.factor)
	default:
		return nil, fmt.Errorf("%w: %v", ErrCodec, cfg.Codec)
	}
	if cfg.ClockRate <= 0 {
		return nil, fmt.Errorf("%w: no clock rate", ErrCodec)
	}
	return p, nil
}

// Stats returns the pipeline's counters. Safe from any goroutine.
func (p *AudioPipeline) Stats() PipelineStats {
	return PipelineStats{
		Packets:      p.packets.Load(),
		Decoded:      p.decoded.Load(),
		Lost:         p.lost.Load(),
		Duplicates:   p.dups.Load(),
		Late:         p.late.Load(),
		DecodeErrors: p.decodeErrs.Load(),
		Reanchors:    p.reanchors.Load(),
	}
}

// WriteRTP decodes pkt and places its audio on the track's timeline. The
// packet is not retained (its payload is copied when it must be held). It
// allocates nothing. Errors: ErrClosed after Close; a decode failure is
// counted, not returned, since one bad packet must not end a recording.
func (p *AudioPipeline) WriteRTP(pkt *rtp.Packet) error {
	if p.closed {
		return ErrClosed
	}
	p.packets.Add(1)
	if len(pkt.Payload) == 0 || len(pkt.Payload) > maxPayload {
		return nil // padding-only or oversized: nothing to decode
	}
	seq := pkt.SequenceNumber
	if !p.started || pkt.SSRC != p.ssrc {
		p.flush()
		if p.started { // a new source: new timestamps, a new encoder
			p.anchored = false
			p.reanchors.Add(1)
			if p.codec == CodecOpus {
				_ = p.opus.Init(int(p.rate), 1) // the rate was accepted by NewDecoderWithOutput
			}
		}
		p.started, p.ssrc, p.nextSeq = true, pkt.SSRC, seq
	}
	d := int16(seq - p.nextSeq) // serial-number arithmetic: wraps at 2^16
	w := len(p.held)
	switch {
	case d == 0:
		p.emit(pkt.Timestamp, pkt.Payload)
		p.nextSeq++
		p.drain()
	case d < 0 && d >= -100:
		p.dups.Add(1) // already emitted, or given up on
	case d > 0 && int(d) < w:
		h := &p.held[int(seq)%w]
		if h.valid && h.seq == seq {
			p.dups.Add(1)
			return nil
		}
		if h.valid { // cannot happen (the window's seqs differ mod w); keep the count right
			h.valid = false
			p.nheld--
			p.lost.Add(1)
		}
		h.valid, h.seq, h.ts = true, seq, pkt.Timestamp
		h.payload = append(h.payload[:0], pkt.Payload...)
		p.nheld++
		p.releaseIfDue()
	default:
		// Far ahead or far behind: a sequence discontinuity. Give up on
		// what is missing and carry on from this packet.
		p.flush()
		if gap := int16(seq - p.nextSeq); gap > 0 {
			p.lost.Add(uint64(gap))
		}
		p.nextSeq = seq
		p.emit(pkt.Timestamp, pkt.Payload)
		p.nextSeq++
	}
	return nil
}

// drain emits held packets that are next in sequence.
func (p *AudioPipeline) drain() {
	for p.nheld > 0 {
		h := &p.held[int(p.nextSeq)%len(p.held)]
		if !h.valid || h.seq != p.nextSeq {
			return
		}
		p.emitHeld(h)
	}
}

// emitHeld emits a held packet and advances the sequence past it.
func (p *AudioPipeline) emitHeld(h *heldPacket) {
	h.valid = false
	p.nheld--
	p.emit(h.ts, h.payload)
	p.nextSeq = h.seq + 1
}

// skipToOldestHeld gives up on the missing packets before the oldest held
// packet and emits from there.
func (p *AudioPipeline) skipToOldestHeld() {
	for i := 1; i < len(p.held); i++ {
		seq := p.nextSeq + uint16(i)
		if h := &p.held[int(seq)%len(p.held)]; h.valid && h.seq == seq {
			p.lost.Add(uint64(i))
			p.emitHeld(h)
			p.drain()
			return
		}
	}
}

// releaseIfDue gives up waiting for the missing packet when the window is
// full or the oldest held packet is about to be played.
func (p *AudioPipeline) releaseIfDue() {
	for p.nheld > 0 {
		if p.nheld < len(p.held)-1 && !p.heldDue() {
			return
		}
		p.skipToOldestHeld()
	}
}

// heldDue reports whether the oldest held packet's position is within one
// cushion of the playout position, so waiting longer would make it late.
func (p *AudioPipeline) heldDue() bool {
	if !p.anchored {
		return false
	}
	for i := 1; i < len(p.held); i++ {
		seq := p.nextSeq + uint16(i)
		if h := &p.held[int(seq)%len(p.held)]; h.valid && h.seq == seq {
			ext := p.extTS + int64(int32(h.ts-p.lastTS))
			pos := int64(p.basePos) + (ext-p.baseTS)*p.rate/p.clock
			return pos < int64(p.ring.Head())+int64(p.input.cushion)/2
		}
	}
	return false
}

// flush emits every held packet in sequence order, skipping what is missing.
func (p *AudioPipeline) flush() {
	for p.nheld > 0 {
		p.skipToOldestHeld()
	}
}

// emit decodes one packet, in sequence order, and writes it to the ring at
// the position its timestamp gives.
func (p *AudioPipeline) emit(ts uint32, payload []byte) {
	pos, ok := p.place(ts)
	n, err := p.decode(payload)
	if err != nil {
		p.decodeErrs.Add(1)
		return // the gap stays silence
	}
	if n == 0 {
		return
	}
	head := p.ring.Head()
	if ok && pos+uint64(n) > head+uint64(p.ring.Cap()) {
		// Further ahead than the ring holds: a timestamp jump without the
		// time passing (within MaxJump). Writing it would overflow the
		// ring and lose the audio until the mixer got there.
		p.reanchor(ts)
		pos = p.basePos
	}
	if !ok || pos < head {
		p.late.Add(1)
		p.lateRun++
		if ok && head-pos < uint64(p.input.cushion) {
			p.driftRun++
		} else {
			p.driftRun = 0
		}
		if p.driftRun >= p.streak || p.lateRun >= 5*p.streak {
			// Consistently late: re-anchor so the track plays again.
			p.reanchor(ts)
			pos = p.basePos
		} else if !ok || pos+uint64(n) <= head {
			return // entirely late
		}
	} else {
		p.lateRun, p.driftRun = 0, 0
	}
	p.ring.WriteAt(pos, p.pcm[:n])
	p.decoded.Add(1)
}

// place maps an RTP timestamp to a ring position. It anchors the timeline on
// the first packet and re-anchors after a new source or a jump. ok is false
// when the position lies before the ring's start (a packet from before the
// anchor).
func (p *AudioPipeline) place(ts uint32) (pos uint64, ok bool) {
	if !p.anchored {
		p.reanchor(ts)
		return p.basePos, true
	}
	step := int64(int32(ts - p.lastTS)) // wraps at 2^32
	if step > p.maxJump || -step > p.maxJump {
		p.reanchor(ts)
		return p.basePos, true
	}
	p.extTS += step
	p.lastTS = ts
	off := int64(p.basePos) + (p.extTS-p.baseTS)*p.rate/p.clock
	if off < 0 {
		return 0, false
	}
	return uint64(off), true
}

// reanchor maps ts to the playout position plus the cushion (or the end of
// what is already written, if later), the latency a new track starts with.
func (p *AudioPipeline) reanchor(ts uint32) {
	if p.anchored { // a new source was counted in WriteRTP
		p.reanchors.Add(1)
	}
	p.anchored = true
	p.lateRun, p.driftRun = 0, 0
	p.lastTS = ts
	p.extTS = int64(ts)
	p.baseTS = p.extTS
	p.basePos = max(p.ring.Tail(), p.ring.Head()+uint64(p.input.cushion))
}

// decode decodes payload into p.pcm and returns the number of samples.
func (p *AudioPipeline) decode(payload []byte) (int, error) {
	if p.g711 != nil {
		n, prev := decodeG711(p.g711, payload, p.pcm, p.factor, p.prev)
		p.prev = prev
		return n, nil
	}
	return p.opus.DecodeToInt16(payload, p.pcm)
}

// Close releases held packets to the ring; later WriteRTP calls return
// ErrClosed. It is idempotent. The input stays in the mixer until
// RemoveInput.
func (p *AudioPipeline) Close() error {
	if p.closed {
		return nil
	}
	p.flush()
	p.closed = true
	return nil
}
