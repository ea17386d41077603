package media

import (
	"fmt"
	"math"
)

// Re-mixing a range already written (a blackout decided after the fact):
// the caller decodes each track's file over the range with a Decoder (the
// pipeline's own decoding), places the samples on the timeline where the
// pipeline placed them (AudioPipeline.Placement), and Mixer.Remix sums them
// as a step does (each input's channel and mutes, int32 sum clamped to int16,
// cuts left out), giving the samples that replace the mix file's range.

// Decoder decodes one track's packets to mono PCM at the mix rate exactly as
// an AudioPipeline does (without DecodeAll): Opus with its inactive packets
// and, at 16 kHz or less, the CELT layer of hybrid frames skipped
// (opusdec.go), G.711 with the same interpolation to the mix rate. It is not
// safe for concurrent use.
type Decoder struct {
	codec  Codec
	rate   int
	opus   *opusDecoder
	g711   *[256]int16
	factor int
	prev   int16
	pcm    []int16
}

// NewDecoder returns a decoder of codec to rate Hz (see AudioPipelineConfig
// for the rates each codec decodes to).
func NewDecoder(codec Codec, rate int) (*Decoder, error) {
	d := &Decoder{codec: codec, rate: rate}
	switch codec {
	case CodecOpus:
		dec, err := newOpusDecoder(rate, true, true) // as a pipeline without DecodeAll
		if err != nil {
			return nil, fmt.Errorf("%w: opus at %d Hz: %v", ErrCodec, rate, err)
		}
		d.opus = dec
		d.pcm = make([]int16, samples(maxOpusDuration, rate))
	case CodecPCMU, CodecPCMA:
		if rate <= 0 || rate%8000 != 0 {
			return nil, fmt.Errorf("%w: G.711 needs a rate that is a multiple of 8000 Hz, not %d", ErrCodec, rate)
		}
		d.factor = rate / 8000
		d.g711 = &g711.ulaw
		if codec == CodecPCMA {
			d.g711 = &g711.alaw
		}
		d.pcm = make([]int16, maxPayload*d.factor)
	default:
		return nil, fmt.Errorf("%w: %v", ErrCodec, codec)
	}
	return d, nil
}

// Decode decodes one packet's payload (for G.711 at most 1500 bytes; a longer
// one is cut) and returns its samples, valid until the next call. A packet
// the decoder rejects is an error; the pipeline leaves its place silent.
func (d *Decoder) Decode(payload []byte) ([]int16, error) {
	if d.g711 != nil {
		payload = payload[:min(len(payload), maxPayload)]
		n, prev := decodeG711(d.g711, payload, d.pcm, d.factor, d.prev)
		d.prev = prev
		return d.pcm[:n], nil
	}
	n, err := d.opus.DecodeToInt16(payload, d.pcm)
	if err != nil {
		return nil, err
	}
	return d.pcm[:n], nil
}

// Placement returns where the pipeline's current timeline mapping places the
// first sample of a packet with RTP timestamp ts (a timestamp of the current
// source, within MaxJump of the newest), in samples of the timeline, and the
// resampling ratio in use; ok is false before the first packet or for a
// timestamp that far. A packet placed at arrival since (a new anchor) maps
// differently: the caller compares the mapping packet by packet. Reader
// goroutine only.
func (p *AudioPipeline) Placement(ts uint32) (pos float64, ratio float64, ok bool) {
	if !p.anchored {
		return 0, 0, false
	}
	step := int64(int32(ts - p.lastTS))
	if step > p.maxJump || -step > p.maxJump {
		return 0, 0, false
	}
	pos = p.basePos + float64(p.ext+step-p.baseExt)*p.rate/p.clock*p.ratio
	return pos, p.ratio, true // negative before the recording's time zero
}

// OnPlace has fn called after each packet the pipeline processed, with its
// RTP timestamp: Placement(ts) is then where its audio went. A packet is
// processed on arrival (WriteRTP), or, deferred (deferred.go), when the
// mixer comes near it (WriteRTP, Tick, Pause, Resync, ResyncAt, Close):
// the mapping may have moved since it came (a step of its sender's clock
// taken meanwhile), so where it went is known only then. Set it before the
// first packet; fn runs on the reader goroutine, once per packet: it must
// not allocate or block.
func (p *AudioPipeline) OnPlace(fn func(ts uint32)) { p.onPlace = fn }

// Shifted returns how many times the pipeline moved audio it had placed
// forward by a step of its sender's clock confirmed after it (its hold:
// see AudioPipeline), and the RTP timestamp of the first packet the latest
// one moved: from that packet on, Placement tells where its audio went,
// which is no longer where it was when it was processed (OnPlace). Reader
// goroutine only.
func (p *AudioPipeline) Shifted() (ts uint32, n uint64) { return p.shiftTS, p.shifts }

// Settled returns how many times a later anchor (a re-anchor: see
// AudioPipeline) settled back, moving the audio placed since it, and the
// RTP timestamp of the latest one's first packet and the timeline position
// where it begins now: the audio from that packet on moved back as one, up
// to the next anchor (which may have come with the same packet, so
// Placement no longer tells it). The track's first anchor moves its origin
// with it and is not counted. Reader goroutine only.
func (p *AudioPipeline) Settled() (ts uint32, pos float64, n uint64) {
	return p.settledTS, p.settledPos, p.settles
}

// Settling reports whether the pipeline's latest anchor may still move back
// (its first packets are placed provisionally; see AudioPipeline). Reader
// goroutine only.
func (p *AudioPipeline) Settling() bool { return p.settling }

// OutputPos returns the sample frame of the mix file that holds timeline
// position pos: pos less the cuts before it (see OutputAt).
func (m *Mixer) OutputPos(pos uint64) uint64 {
	out := pos
	for _, c := range *m.cuts.Load() {
		if c.from < pos {
			out -= min(c.to, pos) - c.from
		}
	}
	return out
}

// RemixPart is one input's audio for Mixer.Remix: PCM holds mono samples at
// the mix rate for the timeline positions [from, from+len(PCM)) of the range
// (zeros where the input held nothing).
type RemixPart struct {
	Input InputSettings // the input's channel and mutes
	PCM   []int16
}

// InputSettings are what Remix needs of an input: its channel and its muted
// spans. They are a small copy: keeping them does not keep the input's ring.
type InputSettings struct {
	channel Channel
	mutes   []span // immutable
}

// Settings returns the input's channel and its muted spans as they are now.
// Safe from any goroutine.
func (in *MixInput) Settings() InputSettings {
	return InputSettings{channel: in.channel, mutes: *in.mutes.Load()}
}

// Remix returns the mix file's samples for the timeline positions [from, to)
// (at most what the mixer has written) summed from parts as a step sums its
// inputs: each in its channel, silent where it is muted, summed in int32 and
// clamped to int16, silent within a pause's silenced span (Silence),
// positions within a cut left out. The result is
// interleaved and begins at sample frame OutputPos(from) of the mix file.
// Safe from any goroutine (it reads the cuts and silenced spans, immutable lists).
func (m *Mixer) Remix(from, to uint64, parts []RemixPart) []int16 {
	to = min(to, m.Written())
	if from >= to {
		return nil
	}
	ch := m.cfg.Channels
	n := int(to - from)
	acc := make([]int32, n*ch)
	scratch := make([]int16, n)
	for _, part := range parts {
		pcm := part.PCM[:min(len(part.PCM), n)]
		if mutes := part.Input.mutes; len(mutes) > 0 && overlaps(mutes, from, from+uint64(len(pcm))) {
			p := scratch[:copy(scratch, pcm)]
			for _, s := range mutes {
				lo, hi := max(s.from, from), min(s.to, from+uint64(len(p)))
				if lo < hi {
					clear(p[lo-from : hi-from])
				}
			}
			pcm = p
		}
		m.accumulate(acc, pcm, part.Input.channel)
	}
	out := make([]int16, 0, n*ch)
	cuts, silent := *m.cuts.Load(), *m.silent.Load()
	for i, s := range acc {
		pos := from + uint64(i/ch)
		if within(cuts, pos) {
			continue
		}
		if within(silent, pos) {
			s = 0
		}
		out = append(out, int16(min(max(s, math.MinInt16), math.MaxInt16)))
	}
	return out
}

// within reports whether timeline position pos is within a span of list.
func within(list []span, pos uint64) bool {
	for _, c := range list {
		if pos >= c.from && pos < c.to {
			return true
		}
	}
	return false
}

// Place writes a packet's decoded samples into dst, which holds the timeline
// positions [from, from+len(dst)), where the pipeline writes a packet whose
// first sample maps to position pos with resampling ratio (see Placement):
// from ceil(pos), stretched to ceil(pos+n·ratio) when ratio is not 1. The
// part outside dst is dropped.
func Place(dst []int16, from uint64, pos, ratio float64, pcm []int16) {
	if len(pcm) == 0 {
		return
	}
	start := int64(math.Ceil(pos)) // negative: before the recording's time zero
	end := start + int64(len(pcm))
	if ratio != 1 {
		end = int64(math.Ceil(pos + float64(len(pcm))*ratio))
		if end <= start {
			return
		}
		out := make([]int16, end-start)
		stretch(out, pcm)
		pcm = out
	}
	lo, hi := max(start, int64(from)), min(end, int64(from)+int64(len(dst)))
	if lo >= hi {
		return
	}
	copy(dst[lo-int64(from):hi-int64(from)], pcm[lo-start:hi-start])
}
