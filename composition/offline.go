package composition

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rtcrec/recorder/internal/opus"
	"github.com/rtcrec/recorder/media/g711"
	"github.com/rtcrec/recorder/media/ogg"
	"github.com/rtcrec/recorder/media/pause"
	"github.com/rtcrec/recorder/media/wavwriter"
)

// MixOffline mixes the audio tracks listed in a manifest from their files
// (Ogg/Opus and G.711 WAV, paths relative to the manifest) into a mono 16-bit
// WAV at rate Hz written to out: every track placed at its start offset,
// summed in int32 and clamped. It is `recorder mix`: a mix rebuilt after the
// fact, for a recording whose live mix was lost or is wanted at another rate.
//
// It re-applies the manifest's pauses and blackouts as the live mix does
// (media/doc.go): a blacked-out participant's tracks are silent during the
// blackout, a paused interval is silent (pauseBehavior silence) or left out
// (skip; the track files hold no paused audio and their timestamps were
// shifted, so each track is placed at its offset less the spans the live
// mix cut out before it, and the mix is shorter by them: each from where its
// cut began, the manifest's mixStart, to the resume).
//
// A track whose sender's clock slipped (its timing lists mappings that
// moved: TrackTiming.Steps) is placed piecewise: from each step on, its
// samples are where the sender's report puts them, relative to the first
// report (which is where mediaOffset puts the first sample). A step forward
// leaves silence; a step back leaves out of the mix the samples that would
// lie over the track's own earlier ones (the track file keeps them).
func MixOffline(manifestPath, out string, rate int) (*Mix, error) {
	f, err := os.Open(manifestPath)
	if err != nil {
		return nil, fmt.Errorf("composition: %w", err)
	}
	m, err := ReadManifest(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	return MixManifest(m, filepath.Dir(manifestPath), out, rate)
}

// MixManifest is MixOffline for a manifest already read, whose files are in
// dir.
//
// It streams: every track is decoded as the mix is written, mixChunk samples
// at a time, so its memory is one decoder and one chunk per track whatever
// the recording's length (TestMixManifest_BoundedMemory). On an error the
// partial output is removed.
func MixManifest(m *Manifest, dir, out string, rate int) (*Mix, error) {
	return mixManifest(context.Background(), m, dir, out, rate, 1, toStop)
}

// MixManifestToTracksEnd is MixManifest for a recording whose stop is not
// known, one recovered after a kill (its manifest's stop is the recovery's
// time): the mix ends where the latest of its tracks' audio ends, and an
// interval left open (a pause or blackout whose end the kill prevented)
// lasts to the end. It writes channels (1 or 2) channels: a stereo mix holds
// every track in both, as the live mix holds a centre input. It stops with
// ctx's error when ctx ends.
func MixManifestToTracksEnd(ctx context.Context, m *Manifest, dir, out string, rate, channels int) (*Mix, error) {
	if channels != 1 && channels != 2 {
		return nil, fmt.Errorf("composition: %d mix channels", channels)
	}
	return mixManifest(ctx, m, dir, out, rate, channels, toTracksEnd)
}

// MixManifestLength is MixManifest with a mix of the given length, in
// seconds of the mix (after skipped pauses), instead of the recording's
// wall-clock span: the composite's audio lasts as long as its picture, and
// holds what the tracks hold after the stop instant (the stop drains the
// packets in flight). It stops with ctx's error when ctx ends.
func MixManifestLength(ctx context.Context, m *Manifest, dir, out string, rate int, seconds float64) (*Mix, error) {
	if !(seconds > 0) {
		return nil, fmt.Errorf("composition: mix length %v s", seconds)
	}
	return mixManifest(ctx, m, dir, out, rate, 1, int(math.Round(seconds*float64(rate))))
}

// liveFrame is the live mixer's frame (media.MixConfig.Frame, the default
// the recorder mixes with): a pause or blackout cuts the live mix a frame
// after its instant, keeping the packet that straddles it whole.
const liveFrame = 20 * time.Millisecond

// mixChunk is how many samples of the mix are made at a time.
const mixChunk = 16384

// The lengths of mixManifest other than a number of samples: to the
// manifest's stop, or to the end of the tracks' audio.
const (
	toStop      = -1
	toTracksEnd = -2
)

// maxMix bounds a mix's length: a day, in seconds.
const maxMix = 24 * 3600

func mixManifest(ctx context.Context, m *Manifest, dir, out string, rate, channels, length int) (mix *Mix, err error) {
	switch rate {
	case 8000, 16000, 48000:
	default:
		return nil, fmt.Errorf("composition: mix rate %d is not 8000, 16000 or 48000", rate)
	}
	skip := m.PauseBehavior == pause.Skip
	// The spans a skipped pause left out of the live mix: from where its cut
	// began (mixStart, a position in mix.wav: the end of the audio received
	// before the pause, at or a packet after the pause instant) to the
	// resume. Without mixStart, the pause itself.
	var cuts [][2]float64
	removed := 0.0 // what the cuts before left out
	for _, p := range m.Pauses {
		if !skip {
			break
		}
		from := p.Start
		if p.MixStart != nil {
			from = min(max(p.Start, *p.MixStart+removed), p.End)
		}
		cuts = append(cuts, [2]float64{from, p.End})
		removed += p.End - from
	}
	// at maps seconds of the recording's wall-clock timeline to a sample of
	// the mix: less the skipped spans before it.
	at := func(sec float64) int {
		out := sec
		for _, c := range cuts {
			if c[0] < sec {
				out -= min(c[1], sec) - c[0]
			}
		}
		return int(math.Round(out * float64(rate)))
	}
	// A pause (silence) or a blackout silences the mix from a frame of the
	// live mixer after its instant on, as the live mix does
	// (media.Mixer.Silence, media.MixInput.MuteFrom): the packet straddling
	// the instant, which the recorder's gate keeps whole in the track's file
	// and the mix alike, is heard to its end.
	keep := int(math.Round(liveFrame.Seconds() * float64(rate)))
	toEnd := length == toTracksEnd
	switch {
	case toEnd:
		length = maxMix * rate // cut at the tracks' end, below
	case length == toStop:
		length = at(m.Stopped.Sub(m.Started).Seconds())
	}
	if length <= 0 || length > maxMix*rate {
		return nil, fmt.Errorf("composition: manifest spans %v", m.Stopped.Sub(m.Started))
	}
	var tracks []*mixTrack
	defer func() {
		for _, t := range tracks {
			t.close()
		}
	}()
	for _, t := range m.Tracks {
		if t.Kind != "AUDIO" {
			continue
		}
		if strings.Contains(t.File, "..") || filepath.IsAbs(t.File) {
			return nil, fmt.Errorf("composition: track file %q leaves the recording", t.File)
		}
		src, err := openPCM(filepath.Join(dir, filepath.FromSlash(t.File)), rate)
		if err != nil {
			return nil, fmt.Errorf("composition: track %s: %w", t.File, err)
		}
		zero := t.Offset // the file's first sample: where the recorder's mix placed it, if known
		if t.MediaOffset != nil {
			zero = *t.MediaOffset
		}
		mt := &mixTrack{file: t.File, src: src, start: at(zero), high: math.MinInt, heard: math.MinInt}
		// A sender whose clock slipped: from each step on, the file's
		// samples go where its sender's report puts them (a gap is
		// silence; what a step back would lay over audio already placed
		// is left out of the mix, never the track file).
		for _, st := range t.Timing.Steps() {
			mt.steps = append(mt.steps, trackStep{pos: int(math.Round(st.File * float64(rate))), shift: int(math.Round(st.By * float64(rate)))})
		}
		tracks = append(tracks, mt)
		for _, b := range m.Blackouts { // the gate kept none of it: silence what the edges hold
			if b.UserID == t.UserID && b.UserID != "" {
				if lo, hi := at(b.Start), at(b.End); lo < hi {
					mt.quiet = append(mt.quiet, [2]int{lo - keep, hi + keep})
					if lo += keep; lo < hi {
						mt.mute = append(mt.mute, [2]int{lo, hi})
					}
				}
			}
		}
	}
	var silent [][2]int // mix samples a paused interval silences (pauseBehavior silence)
	if !skip {
		for _, p := range m.Pauses {
			lo, hi := at(p.Start), at(p.End)
			for _, t := range tracks {
				if lo < hi {
					t.quiet = append(t.quiet, [2]int{lo - keep, hi + keep})
				}
			}
			if lo, hi = max(lo+keep, 0), min(hi, length); lo < hi {
				silent = append(silent, [2]int{lo, hi})
			}
		}
	}
	for _, t := range tracks {
		if o, ok := t.src.(*opusSource); ok && len(t.quiet) > 0 {
			o.fill = t.inQuiet
		}
	}
	w, err := wavwriter.New(out, wavwriter.WithSampleRate(rate), wavwriter.WithChannels(channels))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			w.Close()
			os.Remove(out)
		}
	}()
	acc := make([]int32, mixChunk)
	scratch := make([]int16, mixChunk)
	frame := make([]int16, mixChunk*channels)
	for from := 0; from < length; from += mixChunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := min(mixChunk, length-from)
		clear(acc[:n])
		for _, t := range tracks {
			if err := t.addTo(acc[:n], from, scratch); err != nil {
				return nil, fmt.Errorf("composition: track %s: %w", t.file, err)
			}
		}
		if toEnd && allDone(tracks) { // the last chunk: up to the last sample a track added
			end := from
			for _, t := range tracks {
				end = max(end, t.high)
			}
			n = min(n, end-from)
			length = from + n
		}
		for _, s := range silent {
			if lo, hi := max(s[0], from), min(s[1], from+n); lo < hi {
				clear(acc[lo-from : hi-from])
			}
		}
		for i, v := range acc[:n] {
			s := int16(max(math.MinInt16, min(math.MaxInt16, v)))
			for c := range channels {
				frame[i*channels+c] = s
			}
		}
		if err := w.WriteFrame(frame[:n*channels]); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return ReadMix(out)
}

// mixTrack is one track being mixed: its samples, in order, from src; its
// first at mix sample start (negative: before the mix begins), the later
// ones after it, moved by its steps.
type mixTrack struct {
	file  string
	src   pcmSource
	start int
	steps []trackStep // to come, in order of pos
	shift int         // mix samples the samples read now are moved by (the last step's)
	mute  [][2]int    // mix samples where it is silent (blackouts)
	quiet [][2]int    // mix samples its gate kept nothing of (pauses with silence, blackouts), and a frame either side
	pos   int         // its samples read so far
	high  int         // the mix sample after the last one it added
	heard int         // the mix sample after the last one it added that is not silent: a step back drops what lands before it
	done  bool
}

// trackStep moves a track's samples from its sample pos on by shift mix
// samples (from where its first sample is).
type trackStep struct{ pos, shift int }

// addTo adds the track's samples for mix samples [from, from+len(acc)) to
// acc, reading on from where it stopped (the mix asks in order). Samples
// that land before from, or before what the track already added (a step
// back), are read and dropped.
func (t *mixTrack) addTo(acc []int32, from int, scratch []int16) error {
	end := from + len(acc)
	for !t.done {
		for len(t.steps) > 0 && t.steps[0].pos <= t.pos {
			t.shift = t.steps[0].shift
			t.steps = t.steps[1:]
		}
		q := t.start + t.pos + t.shift // where the next sample goes
		if q >= end {
			break
		}
		want := min(len(scratch), end-q)
		if len(t.steps) > 0 {
			want = min(want, t.steps[0].pos-t.pos)
		}
		floor := max(from, t.heard)
		if q < floor {
			want = min(want, floor-q) // read and dropped
		}
		n, err := t.src.Read(scratch[:want])
		if err == io.EOF {
			t.done = true
		} else if err != nil {
			return err
		}
		if q >= floor && n > 0 {
			pcm := scratch[:n]
			for _, m := range t.mute {
				if a, b := max(m[0]-q, 0), min(m[1]-q, n); a < b {
					clear(pcm[a:b])
				}
			}
			for i, v := range pcm {
				acc[q+i-from] += int32(v)
			}
			t.high = max(t.high, q+n)
			for i := n - 1; i >= 0; i-- {
				if pcm[i] != 0 {
					t.heard = max(t.heard, q+i+1)
					break
				}
			}
		}
		t.pos += n
	}
	return nil
}

func (t *mixTrack) close() { t.src.Close() }

// inQuiet reports whether the track's samples [at, at+n) (of its file,
// counted as pos is) overlap a pause or blackout, where its gate kept
// nothing, or the frame either side of one (the file's placement and the
// recording's timeline agree within issue 10's 20 ms): the silence packets
// the file holds there are those its writer filled the gap with (see
// opusSource.fill).
func (t *mixTrack) inQuiet(at, n int) bool {
	shift := t.shift
	for _, st := range t.steps {
		if st.pos > at {
			break
		}
		shift = st.shift
	}
	q := t.start + at + shift
	for _, s := range t.quiet {
		if q+n > s[0] && q < s[1] {
			return true
		}
	}
	return false
}

// allDone reports whether every track has given all its samples.
func allDone(tracks []*mixTrack) bool {
	for _, t := range tracks {
		if !t.done {
			return false
		}
	}
	return true
}

// pcmSource gives a track's samples in order: Read fills p and returns how
// many it wrote (fewer only at the end) and io.EOF once there are none.
type pcmSource interface {
	Read(p []int16) (int, error)
	Close() error
}

// openPCM opens a track file for its mono PCM at rate.
func openPCM(path string, rate int) (pcmSource, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".wav":
		return openWAV(path, rate)
	case ".ogg":
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		r, err := newOpusSource(bufio.NewReader(f), rate, f)
		if err != nil {
			f.Close()
			return nil, err
		}
		return r, nil
	}
	return nil, fmt.Errorf("no decoder for %s", filepath.Ext(path))
}

// wavSource reads a G.711 or 16-bit PCM mono WAV, resampling to rate by
// linear interpolation (an integer multiple of its rate).
type wavSource struct {
	f      *os.File
	r      *bufio.Reader
	format wavwriter.Format
	left   int64 // bytes of the data chunk not read
	up     *upsampler
}

func openWAV(path string, rate int) (pcmSource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	// The header: the chunks up to the data chunk's start, read in
	// growing prefixes of the file.
	var h wavwriter.Header
	for n := int64(4096); ; n *= 2 {
		b := make([]byte, min(n, fi.Size()))
		if _, err := io.ReadFull(f, b); err != nil {
			f.Close()
			return nil, err
		}
		if h, err = wavwriter.ParseHeader(b); err == nil || n >= fi.Size() {
			break
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	body := max(fi.Size()-h.DataOffset, 0)
	if body > int64(h.DataSize) && h.DataSize != ^uint32(0) {
		body = int64(h.DataSize)
	}
	switch h.Format {
	case wavwriter.MuLaw, wavwriter.ALaw:
	case wavwriter.PCM:
		body &^= 1
	default:
		f.Close()
		return nil, fmt.Errorf("WAV format %v", h.Format)
	}
	if h.Channels != 1 {
		f.Close()
		return nil, fmt.Errorf("WAV has %d channels, want 1", h.Channels)
	}
	up, err := newUpsampler(h.SampleRate, rate)
	if err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(min(h.DataOffset, fi.Size()), io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	s := &wavSource{f: f, r: bufio.NewReader(f), format: h.Format, left: body, up: up}
	up.next = s.sample
	return s, nil
}

// sample returns the next sample of the file at its own rate.
func (s *wavSource) sample() (int16, bool, error) {
	if s.left <= 0 {
		return 0, false, nil
	}
	switch s.format {
	case wavwriter.PCM:
		var b [2]byte
		if _, err := io.ReadFull(s.r, b[:]); err != nil {
			return 0, false, err
		}
		s.left -= 2
		return int16(binary.LittleEndian.Uint16(b[:])), true, nil
	default:
		b, err := s.r.ReadByte()
		if err != nil {
			return 0, false, err
		}
		s.left--
		if s.format == wavwriter.MuLaw {
			return g711.DecodeMuLaw(b), true, nil
		}
		return g711.DecodeALaw(b), true, nil
	}
}

func (s *wavSource) Read(p []int16) (int, error) { return s.up.read(p) }

func (s *wavSource) Close() error { return s.f.Close() }

// upsampler converts samples at one rate (next gives them) to an integer
// multiple k of it by linear interpolation toward the following sample (the
// last one is held).
type upsampler struct {
	k        int
	next     func() (int16, bool, error)
	cur, nxt int16
	state    int // 0 not started, 1 cur and nxt are samples, 2 cur is the last, 3 ended
	j        int // outputs of cur given
}

func newUpsampler(from, to int) (*upsampler, error) {
	if from == to {
		return &upsampler{k: 1}, nil
	}
	if from <= 0 || to%from != 0 {
		return nil, fmt.Errorf("cannot resample %d Hz to %d Hz", from, to)
	}
	return &upsampler{k: to / from}, nil
}

func (u *upsampler) read(p []int16) (int, error) {
	if u.state == 0 {
		v, ok, err := u.next()
		if err != nil {
			return 0, err
		}
		u.state = 3
		if ok {
			u.cur = v
			if err := u.fetch(); err != nil {
				return 0, err
			}
		}
	}
	n := 0
	for n < len(p) && u.state != 3 {
		for ; u.j < u.k && n < len(p); u.j++ {
			p[n] = int16(int(u.cur) + (int(u.nxt)-int(u.cur))*u.j/u.k)
			n++
		}
		if u.j < u.k {
			break
		}
		u.j = 0
		if u.state == 2 {
			u.state = 3
			break
		}
		u.cur = u.nxt
		if err := u.fetch(); err != nil {
			return n, err
		}
	}
	if n == 0 && u.state == 3 {
		return 0, io.EOF
	}
	return n, nil
}

// fetch reads the sample after cur.
func (u *upsampler) fetch() error {
	v, ok, err := u.next()
	if err != nil {
		return err
	}
	if ok {
		u.nxt, u.state = v, 1
	} else {
		u.nxt, u.state = u.cur, 2
	}
	return nil
}

// opusSource decodes an Ogg/Opus stream (RFC 7845) to mono PCM at rate,
// dropping the pre-skip the OpusHead announces; an undecodable packet is 20
// ms of silence.
//
// A silence packet of the recorder's writer (media/oggwriter: CELT's silence
// flag, what it fills a gap with and what a retroactive blackout leaves) for
// which fill, when set, reports that it lies where the recorder's gate kept
// nothing (a pause, a blackout; fill gets the index of its first sample
// and its length) is played as silence without being decoded:
// the live mix's decoder never saw those packets, and decoding them would
// reset CELT's energy prediction (and SILK's state), so the audio after
// the cut would come back fading in over 85-90 ms where the live mix has it
// at full level at once.
type opusSource struct {
	pr    *ogg.Reader
	c     io.Closer
	dec   opus.Decoder
	rate  int
	buf   []int16
	have  []int16 // decoded and not read yet
	skip  int     // pre-skip samples still to drop
	next  int     // the index of the next sample decoded (pre-skip dropped)
	fill  func(at, n int) bool
	ended bool
}

// newOpusSource reads the stream's OpusHead and OpusTags (an empty stream is
// an empty track); c is closed by Close.
func newOpusSource(r io.Reader, rate int, c io.Closer) (*opusSource, error) {
	dec, err := opus.NewDecoderWithOutput(rate, 1)
	if err != nil {
		return nil, err
	}
	s := &opusSource{pr: ogg.NewReader(r), c: c, dec: dec, rate: rate, buf: make([]int16, rate*120/1000)}
	for i := range 2 {
		p, err := s.pr.Next()
		if err == io.EOF {
			s.ended = true
			return s, nil
		}
		if err != nil {
			return nil, err
		}
		if i == 0 {
			if len(p) < 19 || string(p[:8]) != "OpusHead" {
				return nil, errors.New("no OpusHead")
			}
			s.skip = int(binary.LittleEndian.Uint16(p[10:])) * rate / 48000
		} // the second is OpusTags
	}
	return s, nil
}

func (s *opusSource) Read(p []int16) (int, error) {
	n := 0
	for n < len(p) {
		if len(s.have) == 0 {
			if s.ended {
				break
			}
			pkt, err := s.pr.Next()
			if err == io.EOF {
				s.ended = true
				break
			}
			if err != nil {
				return n, err
			}
			var k int
			if d := fillSamples(pkt, s.rate); d > 0 && d <= len(s.buf) && s.fill != nil && s.fill(s.next-s.skip, d) {
				k = d
				clear(s.buf[:k])
			} else if k, err = s.dec.DecodeToInt16(pkt, s.buf); err != nil {
				k = s.rate / 50
				clear(s.buf[:k])
			}
			d := min(s.skip, k)
			s.skip -= d
			s.have = s.buf[d:k]
			s.next += k - d
			continue
		}
		c := copy(p[n:], s.have)
		s.have = s.have[c:]
		n += c
	}
	if n == 0 && s.ended {
		return 0, io.EOF
	}
	return n, nil
}

func (s *opusSource) Close() error {
	if s.c == nil {
		return nil
	}
	return s.c.Close()
}

// fillSamples returns the duration, in samples at rate, of a silence packet
// as the recorder's Ogg writer makes them (media/oggwriter: CELT-only,
// mono, 2.5 to 20 ms frames; code 0 with the two bytes 0xFF 0xFE of CELT's
// silence flag, or code 3 with M such frames and zero padding), and 0 for
// any other packet.
func fillSamples(p []byte, rate int) int {
	if len(p) < 3 || p[0]>>3 < 28 || p[0]&0x04 != 0 {
		return 0
	}
	frame := 120 << (p[0]>>3 - 28) // at 48 kHz
	frames, i := 1, 1
	switch p[0] & 3 {
	case 0:
	case 3:
		if p[1]&0x80 != 0 { // VBR
			return 0
		}
		frames, i = int(p[1]&0x3F), 2
		if p[1]&0x40 != 0 { // padding: its length bytes
			for i < len(p) && p[i] == 255 {
				i++
			}
			i++
		}
	default:
		return 0
	}
	if frames == 0 || frames*frame > 5760 || i+2*frames > len(p) {
		return 0
	}
	for range frames {
		if p[i] != 0xFF || p[i+1] != 0xFE {
			return 0
		}
		i += 2
	}
	if p[0]&3 == 0 && i != len(p) {
		return 0
	}
	for _, b := range p[i:] {
		if b != 0 {
			return 0
		}
	}
	return frames * frame * rate / 48000
}

// DecodeOggOpus decodes an Ogg/Opus stream (RFC 7845) to mono PCM at rate,
// dropping the pre-skip the OpusHead announces.
func DecodeOggOpus(r io.Reader, rate int) ([]int16, error) {
	s, err := newOpusSource(r, rate, nil)
	if err != nil {
		return nil, err
	}
	var out []int16
	buf := make([]int16, mixChunk)
	for {
		n, err := s.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
