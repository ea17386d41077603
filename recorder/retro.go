package recorder

import (
	"context"
	"math"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/media"
	"github.com/rtcrec/recorder/media/format"
	"github.com/rtcrec/recorder/media/oggwriter"
	"github.com/rtcrec/recorder/media/wavwriter"
)

// Retroactive blackouts (seed 003: client-side times are applied as given).
//
// A blackout whose start lies in the past silences the participant from
// that instant in everything a running recording already holds, then the
// gate keeps them silent from now on:
//
//   - Track files: every audio track of the participant is silenced from
//     the RTP timestamp of the start instant, in place (oggwriter.SilenceFrom,
//     format.G711Writer: wavwriter.G711Writer.SilenceFrom): packets become silent packets of the
//     same length and duration, samples become the codec's silence, so no
//     byte, granule position or timestamp after them moves. With a mix, the
//     file position of the start is the one whose sample the mix placed at
//     the start instant (the track's placement log, below), so the track and
//     the mix fall silent at the same sample. Without one, the timestamp of
//     the instant comes from the track's clock relation: the least difference
//     between a packet's arrival and its timestamp over the last 5–10 s of
//     packets (network delay only adds to it).
//   - The mix: the participant's inputs are muted from the start's timeline
//     position (media.MixInput.MuteFrom) as far as the mixer has not written
//     yet (the latency budget); the part mix.wav already holds is re-mixed
//     from the track files (the participant's silenced ones and everyone
//     else's, live tracks and the latest that ended), each decoded as its
//     pipeline decodes and placed where its pipeline placed it (the placement
//     log), summed as the mixer sums (media.Mixer.Remix), and written over
//     mix.wav in place (wavwriter.Writer.Overwrite).
//   - Parts already uploaded: each part whose bytes changed is
//     cut again from the edited file and uploaded under the same key, once
//     the earlier upload of that key has ended, so the stored part never
//     keeps the audio after the re-upload is verified.
//
// Limits: the silence begins no earlier than the recording's start and the
// track's first packet (there is nothing before), and a blackout whose
// maxBlackout from its start ends before now is refused (400 invalid_time),
// as is any time further than limits.blackoutHorizon from now. Only running
// recordings and live tracks are edited: a track that ended before the
// request, and a recording that stopped before it, keep what they hold.
// Video is not edited: seed 003's blackout is of "the current call", whose
// recording is audio (its screen recordings are separate); the gate still
// drops a blacked-out participant's video from the request on.

// editGuard lets one goroutine (an edit) take a writer from its owner
// goroutine (the track's reader, the mixer) for a moment, without a lock on
// the owner's path: the owner marks itself busy around each write with an
// atomic counter and only waits when an edit is running.
type editGuard struct {
	busy    atomic.Int32
	editing atomic.Bool
	mu      sync.Mutex // held by the edit; an owner waits on it
}

// enter marks the owner busy, waiting while an edit runs.
func (g *editGuard) enter() {
	for {
		g.busy.Add(1)
		if !g.editing.Load() {
			return
		}
		g.busy.Add(-1)
		g.mu.Lock()
		g.mu.Unlock() //nolint:staticcheck // waits for the edit
	}
}

// leave ends the owner's write.
func (g *editGuard) leave() { g.busy.Add(-1) }

// edit runs fn while the owner is not writing (and waits for it to finish
// its write in progress).
func (g *editGuard) edit(fn func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.editing.Store(true)
	defer g.editing.Store(false)
	for g.busy.Load() != 0 {
		runtime.Gosched()
	}
	fn()
}

// guardedMix is the mixer's sink: mix.wav behind an editGuard, so that a
// retroactive blackout can silence samples already written. It is a
// media.BufferedSink: while the mixer waits for a late track, it flushes
// what the writer holds once that is the budget old, so the mix on disk,
// which the uploads while recording read, lags the recording by at most the
// budget and a frame, not by the writer's buffer (a second) more (issue 10).
type guardedMix struct {
	w     *wavwriter.Writer
	guard editGuard
}

func (g *guardedMix) WriteFrame(pcm []int16) error {
	g.guard.enter()
	defer g.guard.leave()
	return g.w.WriteFrame(pcm)
}

// Buffered returns what the writer holds, in samples per channel
// (media.BufferedSink).
func (g *guardedMix) Buffered() int {
	g.guard.enter()
	defer g.guard.leave()
	return g.w.Buffered()
}

// Flush writes out what the writer holds (media.BufferedSink).
func (g *guardedMix) Flush() error {
	g.guard.enter()
	defer g.guard.leave()
	return g.w.Flush()
}

// clockRelation estimates, on a track's reader goroutine, the wall-clock
// instant of RTP timestamp 0 of the timestamps written (unwrapped to 64 bits
// from the first packet on): the least arrival-minus-timestamp over the
// current and the previous 5 s window, since network delay only adds to it.
// It is restarted when the gate reopens and at a new timeline: a packet
// more than a second ahead of the relation (timestamps that jumped
// forward), or later than the latency budget (timestamps that stood still
// or went back). A packet late by less is a late packet, as the mix takes
// it (media.AudioPipeline.place): a reader starved of CPU, or a network
// that delivers in bursts, hands over packets a second late and more, and
// the relation still places them where they were sent (the stop's cut,
// stopPlace).
type clockRelation struct {
	clock    int64         // RTP clock rate
	budget   time.Duration // the latency budget; 0: media.DefaultLatency
	have     bool
	last     uint32
	ext      int64 // last, unwrapped
	window   int64 // arrival (unix ns) the current window began
	cur, old int64 // least offsets of the current and the previous window
	est      atomic.Int64
	valid    atomic.Bool
}

// ticksNs converts RTP ticks to nanoseconds without overflow.
func (c *clockRelation) ticksNs(t int64) int64 {
	return t/c.clock*int64(time.Second) + t%c.clock*int64(time.Second)/c.clock
}

// observe takes one written packet: its timestamp and arrival (unix ns).
func (c *clockRelation) observe(ts uint32, arrival int64) {
	if c.have {
		c.ext += int64(int32(ts - c.last))
	} else {
		c.ext = int64(ts)
	}
	c.last = ts
	off := arrival - c.ticksNs(c.ext)
	budget := c.budget
	if budget <= 0 {
		budget = media.DefaultLatency
	}
	switch est := min(c.cur, c.old); {
	case !c.have, off < est-int64(time.Second), off > est+int64(budget):
		c.have, c.window, c.cur, c.old = true, arrival, off, off
	case arrival-c.window >= int64(5*time.Second):
		c.window, c.old, c.cur = arrival, c.cur, off
	default:
		c.cur = min(c.cur, off)
	}
	c.est.Store(min(c.cur, c.old))
	c.valid.Store(true)
}

// instantOf returns the wall-clock instant (unix ns) of RTP timestamp ts,
// as written, near the last one observed; false before a packet (or after a
// reset). The goroutine that observes only.
func (c *clockRelation) instantOf(ts uint32) (int64, bool) {
	if !c.have {
		return 0, false
	}
	return c.ticksNs(c.ext+int64(int32(ts-c.last))) + c.est.Load(), true
}

// reset starts a new relation at the next packet.
func (c *clockRelation) reset() { c.have = false }

// timestampAt returns the RTP timestamp written at wall-clock instant t.
func (c *clockRelation) timestampAt(t time.Time) (uint32, bool) {
	if !c.valid.Load() {
		return 0, false
	}
	d := t.UnixNano() - c.est.Load()
	s := int64(time.Second)
	return uint32(d/s*c.clock + d%s*c.clock/s), true
}

// silencer is a track file writer that can silence what it wrote from an
// RTP timestamp on (oggwriter.Writer, wavwriter.G711Writer).
type silencer interface {
	SilenceFrom(ts uint32) (int64, error)
}

// silenceFrom silences the track's file from wall-clock instant t; it
// returns the offset of the first byte changed and whether the track is
// audio that could be silenced. With a mix, the file position is the one the
// mix places at t (the placement log), so the track and the mix fall silent
// at the same sample; without one, the clock relation's estimate.
func (m *mediaSink) silenceFrom(t time.Time) (off int64, ok bool, err error) {
	w, isAudio := m.file.(silencer)
	if !isAudio || m.clk == nil {
		return 0, false, nil
	}
	m.guard.edit(func() {
		if m.plog != nil && m.plog.n > 0 {
			f, _ := m.plog.fileAt(float64(m.mixer.PosAt(t)))
			// Packets the reorder stage still holds reach the file later
			// (when the gate's drop flushes it): from the timestamp of file
			// position f on they are left out (trackFile.WriteRTP).
			held := func(at int64) {
				if m.gate != nil && m.gate.have {
					m.silencedFrom, m.silenced = m.gate.last+uint32(f-at), true
				}
			}
			switch w := m.file.(type) {
			case *oggwriter.Writer:
				off, err = w.SilenceFromPos(uint64(max(f, 0)))
				ok = err == nil
				if m.gate != nil {
					held(int64(w.PosOf(m.gate.last)))
				}
				return
			case format.G711Writer:
				off, err = w.SilenceFromPos(f)
				ok = err == nil
				if m.gate != nil {
					held(w.PosOf(m.gate.last))
				}
				return
			}
		}
		ts, valid := m.clk.timestampAt(t)
		if !valid {
			return // nothing written yet
		}
		off, err = w.SilenceFrom(ts)
		ok = err == nil
		// Packets the reorder stage still holds reach the file later (when
		// the gate's drop flushes it): from ts on they are left out.
		m.silencedFrom, m.silenced = ts, true
	})
	return off, ok, err
}

// placementPoints is how many changes of a track's placement on the mix's
// timeline its log keeps: one per anchor (the first packet, a new source, a
// resume placed at its arrival), one per change of the resampling ratio
// (once a second at most, while the sender's clock drifts).
const placementPoints = 64

// anchorPoint says that from file position file on (the track's RTP clock:
// 48 kHz granules of Ogg/Opus, 8 kHz frames of G.711 WAV), the track's
// sample at file position f lies at timeline position pos+(f-file)·k·ratio
// of the mix.
type anchorPoint struct {
	file     int64
	pos      float64
	ratio    float64
	settling bool // the pipeline's anchor may still move back
}

// placementLog is where a track's file lies on the mix's timeline, as its
// pipeline placed it: the points where the relation changed (the latest
// placementPoints; before the oldest, its relation is extrapolated). The
// track's reader writes it under the sink's guard, after each packet: the
// file's position of the packet's timestamp against the pipeline's.
type placementLog struct {
	k   float64 // timeline samples per file tick: the mix rate over the RTP clock
	pts [placementPoints]anchorPoint
	n   int // points recorded; the latest min(n, placementPoints) are kept
}

// observe takes one packet's file position and its timeline position by the
// pipeline's mapping. A packet that fits the latest point (within 2 samples:
// the pipeline's rounding) changes nothing; otherwise it begins a new point,
// unless the latest was recorded while its anchor was settling: then the
// anchor moved, and its point takes the settled relation.
func (l *placementLog) observe(file int64, pos, ratio float64, settling bool) {
	if l.n > 0 {
		last := &l.pts[(l.n-1)%placementPoints]
		want := last.pos + float64(file-last.file)*l.k*last.ratio
		if ratio == last.ratio && math.Abs(want-pos) <= 2 {
			last.settling = settling
			return
		}
		if last.settling && file >= last.file {
			*last = anchorPoint{file: last.file, pos: pos - float64(file-last.file)*l.k*ratio, ratio: ratio, settling: settling}
			return
		}
	}
	l.pts[l.n%placementPoints] = anchorPoint{file: file, pos: pos, ratio: ratio, settling: settling}
	l.n++
}

// rewind forgets the points from file position file on (the pipeline
// moved that audio: mediaSink.placedAgain); the one before it goes on.
func (l *placementLog) rewind(file int64) {
	for kept := min(l.n, placementPoints); kept > 1 && l.pts[(l.n-1)%placementPoints].file >= file; kept-- {
		l.n--
	}
}

// points returns the points kept, oldest first.
func (l *placementLog) points() []anchorPoint {
	n := min(l.n, placementPoints)
	out := make([]anchorPoint, 0, n)
	for i := l.n - n; i < l.n; i++ {
		out = append(out, l.pts[i%placementPoints])
	}
	return out
}

// timelineAt returns the timeline position of file position f and the
// resampling ratio there; ok is false before any point.
func (l *placementLog) timelineAt(f int64) (pos, ratio float64, ok bool) {
	pts := l.points()
	if len(pts) == 0 {
		return 0, 0, false
	}
	p := pts[0]
	for _, q := range pts[1:] {
		if q.file <= f {
			p = q
		}
	}
	return p.pos + float64(f-p.file)*l.k*p.ratio, p.ratio, true
}

// fileAt returns the file position whose sample lies at timeline position
// pos (the first one at or after it); ok is false before any point.
func (l *placementLog) fileAt(pos float64) (int64, bool) {
	pts := l.points()
	if len(pts) == 0 {
		return 0, false
	}
	p := pts[0]
	for _, q := range pts[1:] {
		if q.pos <= pos {
			p = q
		}
	}
	return p.file + int64(math.Ceil((pos-p.pos)/(l.k*p.ratio))), true
}

// logPlacement gives the audio sink a placement log (k: mix samples per
// tick of the track's RTP clock), kept by its pipeline's OnPlace (placed).
func (m *mediaSink) logPlacement(pipe *media.AudioPipeline, k float64) {
	m.plog = &placementLog{k: k}
	pipe.OnPlace(m.placed)
}

// placed records, once the pipeline processed the packet with RTP
// timestamp ts (its OnPlace: on arrival, or later if it was deferred, by
// the mapping it was placed with), where the file lies on the mix's
// timeline: in the placement log, unless the file's reorder stage still
// holds packets (behind a missing one: not in the file yet), and in the
// moves, for a held packet where the file will have it (filePos). Reader
// goroutine; it allocates nothing (but when a move is kept).
func (m *mediaSink) placed(ts uint32) {
	pipe, ok := m.audio.(*media.AudioPipeline)
	if !ok || m.plog == nil {
		return
	}
	held := m.order != nil && m.order.Held() > 0
	fileTS, shift := ts, uint32(0) // as the file has it: after a skipped pause's shift
	if m.gate != nil {
		shift = m.gate.shift
		fileTS -= shift
	}
	if from, n := pipe.Shifted(); n != m.shifts {
		// The pipeline moved its audio from the packet with timestamp
		// from on (a step confirmed after it was placed): the file's
		// placement moves with it there.
		m.shifts = n
		if pos, ratio, ok := pipe.Placement(from); ok {
			m.placedAt(pipe, from-shift, pos, ratio, shift, held)
		}
	}
	if from, pos, n := pipe.Settled(); n != m.settles {
		// A re-anchor settled: the audio from its first packet on moved
		// back, to pos.
		m.settles = n
		m.placedAt(pipe, from-shift, pos, pipe.Ratio(), shift, held)
	}
	pos, ratio, ok := pipe.Placement(ts)
	if !ok {
		return
	}
	m.guard.enter()
	file, ok := m.filePos(fileTS)
	if ok && !held {
		m.plog.observe(file, pos, ratio, pipe.Settling())
	}
	m.guard.leave()
	if o, known := pipe.Origin(); ok && known {
		// Off the line of the file's first sample at the nominal rate, by
		// where the file has the packet. Settling, the placement is
		// provisional: where a later anchor settles, the pipeline says so
		// (Settled), and placedAt records it anew.
		m.moves.observe(pos-float64(o)-float64(file)*m.plog.k, float64(file), shift)
	}
}

// filePos returns where the track's file has, or will have, the packet
// with timestamp ts (as written: after a skipped pause's shift), in ticks
// of its clock from its first sample: by the last packet written, on by
// the timestamps (the writers fill a gap by them), so a packet the reorder
// stage still holds is placed too. ok is false before the file has a
// packet, and for a file that does not say. Reader goroutine, under the
// guard.
func (m *mediaSink) filePos(ts uint32) (pos int64, ok bool) {
	if !m.wroteAny {
		return 0, false
	}
	d := int64(int32(ts - m.wroteTS))
	switch w := m.file.(type) {
	case *oggwriter.Writer:
		return int64(w.PosOf(m.wroteTS)) + d, true
	case format.G711Writer:
		return w.PosOf(m.wroteTS) + d, true
	}
	return 0, false
}

// placedAt records that the pipeline moved the audio of the packets from
// the one with RTP timestamp ts (as written) on to timeline position pos
// (resampled at ratio): what the placement log and the moves kept from that
// packet's file position on is forgotten, and its new place is recorded.
// held: the reorder stage holds packets (the placement log waits). shift is
// the skipped pauses' timestamp shift (placed). Reader goroutine.
func (m *mediaSink) placedAt(pipe *media.AudioPipeline, ts uint32, pos, ratio float64, shift uint32, held bool) {
	m.guard.enter()
	file, ok := m.filePos(ts)
	if ok && !held {
		m.plog.rewind(file)
		m.plog.observe(file, pos, ratio, false)
	}
	m.guard.leave()
	if o, known := pipe.Origin(); ok && known {
		m.moves.rewind(float64(file))
		m.moves.observe(pos-float64(o)-float64(file)*m.plog.k, float64(file), shift)
	}
}

// opusPreroll is how much of an Opus track is decoded before a range and
// thrown away, so the decoder's state is the signal's when the range begins
// (100 ms: five packets of 20 ms).
const opusPreroll = 4800

// endedTrack is what the re-mix needs of an audio track that ended: its
// file, codec, placement and mixer settings; not its writer, pipeline or
// mixer input (their buffers are freed).
type endedTrack struct {
	path, relPath string
	codec         media.Codec
	plog          placementLog
	input         media.InputSettings
}

// ended returns what the re-mix needs of the sink once its track ended.
func (m *mediaSink) ended() endedTrack {
	e := endedTrack{path: m.path, relPath: m.relPath, codec: m.codec, input: m.in.Settings()}
	m.guard.edit(func() { e.plog = *m.plog })
	return e
}

// decodeRange decodes a live track's file over the mix's timeline positions
// [from, to) (see decodeFile): its writer is flushed first (its pending page
// or buffer reaches the file) and its log copied, under its guard.
func (m *mediaSink) decodeRange(mx *media.Mixer, from, to uint64) ([]int16, error) {
	var log placementLog
	m.guard.edit(func() {
		if f, ok := m.file.(interface{ Flush() error }); ok {
			_ = f.Flush() // a closed writer wrote everything already; a failed one is the track's error
		}
		log = *m.plog
	})
	return decodeFile(m.path, m.codec, &log, mx, from, to)
}

// decodeFile decodes the track file at path over the mix's timeline
// positions [from, to) and returns its samples there, placed as its
// pipeline placed them (log; zeros where the file holds nothing).
func decodeFile(path string, codec media.Codec, log *placementLog, mx *media.Mixer, from, to uint64) ([]int16, error) {
	out := make([]int16, to-from)
	fFrom, ok := log.fileAt(float64(from))
	if !ok {
		return out, nil // nothing placed: nothing to mix
	}
	fTo, _ := log.fileAt(float64(to))
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	dec, err := media.NewDecoder(codec, mx.Config().SampleRate)
	if err != nil {
		return nil, err
	}
	if codec == media.CodecOpus {
		err = oggwriter.Packets(f, fi.Size(), uint64(max(fFrom-opusPreroll, 0)), uint64(max(fTo+1, 0)), func(start uint64, pkt []byte) error {
			pcm, err := dec.Decode(pkt)
			if err != nil {
				return nil // the pipeline leaves an undecodable packet's place silent
			}
			if pos, ratio, ok := log.timelineAt(int64(start)); ok {
				media.Place(out, from, pos, ratio, pcm)
			}
			return nil
		})
		return out, err
	}
	// G.711 WAV: 8 kHz mono, a byte a sample, from the header's data offset;
	// decoded 20 ms at a time (one sample before the range: the
	// interpolation to the mix rate starts from it).
	head := make([]byte, 512)
	n, _ := f.ReadAt(head, 0)
	h, err := wavwriter.ParseHeader(head[:n])
	if err != nil {
		return nil, err
	}
	end := fi.Size() - h.DataOffset
	buf := make([]byte, 160)
	for p := max(fFrom-1, 0); p < min(fTo+1, end); p += int64(len(buf)) {
		k, err := f.ReadAt(buf[:min(int64(len(buf)), end-p)], h.DataOffset+p)
		if k == 0 {
			return out, err
		}
		pcm, _ := dec.Decode(buf[:k])
		if pos, ratio, ok := log.timelineAt(p); ok {
			media.Place(out, from, pos, ratio, pcm)
		}
	}
	return out, nil
}

// remix writes over the mix's timeline positions [from, to), already in
// mix.wav, the sum of the recording's audio track files there (live tracks
// and tracks that ended), as the mixer sums its inputs: the range a
// retroactive blackout's participant was mixed into before the request
// came, now from their silenced files and everyone else's as they are. It
// returns the offset of the first byte of mix.wav it changed.
func (s *Session) remix(sm *sessionMedia, from, to uint64) (int64, error) {
	mx := sm.mixer
	s.lc.mu.Lock()
	var live []*mediaSink
	for g := range s.lc.gates {
		if g.sink != nil && g.sink.plog != nil {
			live = append(live, g.sink)
		}
	}
	ended := append([]endedTrack(nil), s.lc.ended...)
	s.lc.mu.Unlock()
	var parts []media.RemixPart
	add := func(rel string, pcm []int16, in media.InputSettings, err error) {
		if err != nil {
			// The others are still re-mixed: the participant stays out.
			s.log.Error("re-mix: cannot read a track; its audio is missing from the re-mixed range", "file", rel, "err", err)
			return
		}
		parts = append(parts, media.RemixPart{Input: in, PCM: pcm})
	}
	for _, m := range live {
		pcm, err := m.decodeRange(mx, from, to)
		add(m.relPath, pcm, m.in.Settings(), err)
	}
	for _, e := range ended {
		pcm, err := decodeFile(e.path, e.codec, &e.plog, mx, from, to)
		add(e.relPath, pcm, e.input, err)
	}
	pcm := mx.Remix(from, to, parts)
	var off int64
	var err error
	sm.sink.guard.edit(func() { off, err = sm.mix.Overwrite(int64(mx.OutputPos(from)), pcm) })
	return off, err
}

// recutRequest asks the chunker to cut again the parts of files whose
// bytes changed from the given offsets on.
type recutRequest struct {
	from map[string]int64 // relative path → first changed byte
	done chan struct{}    // closed once the re-uploads are scheduled
}

// silenceSince silences userID in s from instant from on (see above) and
// has the parts already uploaded cut again. The caller has blacked the
// participant out in s already (the gate drops their packets).
func (s *Session) silenceSince(userID string, from time.Time) {
	s.mu.Lock()
	sm, started, stopping := s.media, s.rec.Started, s.stopping
	s.mu.Unlock()
	if sm == nil || stopping {
		return
	}
	from = maxTime(from, started)
	s.retro.Lock()
	defer s.retro.Unlock()
	changed := map[string]int64{}
	gates := s.gatesOf(userID)
	for _, g := range gates {
		if g.sink == nil || g.in == nil {
			continue // video, or no file
		}
		if off, ok, err := g.sink.silenceFrom(from); err != nil {
			s.log.Error("cannot silence a track from the blackout's start", "userId", userID, "err", err)
		} else if ok {
			changed[g.sink.relPath] = off
		}
	}
	// The mix: mute the participant's inputs where the mixer has not
	// written yet (the audio already received within the budget), then
	// re-mix what it wrote since the start from the track files.
	if mx := sm.mixer; mx != nil {
		pos := mx.PosAt(from)
		written := pos
		muted := false
		for _, g := range gates {
			if g.in == nil {
				continue
			}
			muted = true
			g.blackSince(pos) // audio from the start read only now stays out
			// What it wrote, or holds undecoded (media/deferred.go).
			end := max(g.in.End(), mx.Now()) + uint64(mx.FrameSamples())
			written = max(written, g.in.MuteSpan(pos, end)) // the gate keeps the participant out from end on
		}
		if muted {
			// The frame the mixer was mixing as the mutes came may have
			// read them before: it holds the participant: re-mixed too.
			written = max(written, mx.Settle())
		}
		if written > pos {
			if off, err := s.remix(sm, pos, written); err != nil {
				s.log.Error("cannot re-mix the mix from the blackout's start", "userId", userID, "err", err)
			} else {
				changed[composition.MixFile] = off
			}
		}
	}
	// The recording's blackout interval begins at the start too.
	s.mu.Lock()
	for i, b := range s.rec.Blackouts {
		if b.UserID == userID && b.End.IsZero() && from.Before(b.Start) {
			if err := s.commitLocked(context.Background(), func(r *Recording) { r.Blackouts[i].Start = from }); err != nil {
				s.log.Error("cannot persist the blackout's start", "userId", userID, "err", err)
			}
		}
	}
	s.mu.Unlock()
	s.log.Info("retroactive blackout: silenced what was recorded since its start", "userId", userID, "from", from, "files", len(changed))
	if len(changed) == 0 || s.recut == nil || s.m.cfg.Uploads.ChunkInterval <= 0 {
		return // no parts (chunks.go: streamParts does not run)
	}
	req := recutRequest{from: changed, done: make(chan struct{})}
	select {
	case s.recut <- req:
		select {
		case <-req.done:
		case <-s.done:
		}
	case <-s.done:
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}
