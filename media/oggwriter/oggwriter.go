// Package oggwriter writes an Opus RTP stream (RFC 7587) to an Ogg/Opus file
// (RFC 7845 in RFC 3533 pages) without transcoding, keeping the file's
// timeline equal to RTP time.
//
// Unlike pion's pkg/media/oggwriter, which numbers granules by the packets it
// receives (so lost packets silently shorten the file), this writer places
// every packet by its RTP timestamp: a gap (loss, DTX, an interval the caller
// did not write, as during a pause) is filled with Opus packets that decode
// to silence, and granule positions count them. Players that honour granule
// positions and players that simply decode every packet both keep time.
// Duplicates and packets that arrive after their place was written are
// dropped (reordering belongs to the caller's jitter stage); a timestamp jump
// larger than the maximum gap, or a new SSRC, continues the file after the
// wall-clock time that passed (WithClock), so long pauses keep their length.
//
// Durability: a page is written (one write call) as soon as it holds one
// second of audio (or its buffer is full: above 40 kbit/s), so a process
// crash loses at most about a second; Repair
// cuts a crashed file after its last whole page. There is no fsync before
// Close (see media/wavwriter for the reasoning).
package oggwriter

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/media/internal/fileout"
	"github.com/rtcrec/recorder/media/internal/rtptime"
	"github.com/rtcrec/recorder/media/ogg"
)

const (
	// rate is the Opus RTP clock and granule rate (RFC 7587 §4.1, RFC 7845 §4).
	rate = 48000
	// preSkip is the OpusHead pre-skip: none. Pre-skip discards the encoder's
	// look-ahead at the start of an encoding; a recording joins a live
	// stream whose encoder started earlier, so there is nothing to discard,
	// and any pre-skip would shift the recording off the RTP timeline
	// (ffprobe counts it in the duration, players cut it from the audio).
	// The 80 ms (3840 samples) in RFC 7845 §4.6 is the pre-roll a decoder
	// should decode before a seek target, which players do by themselves.
	preSkip = 0
)

// Option configures a Writer.
type Option func(*config)

type config struct {
	channels  uint8
	serial    uint32
	maxGap    time.Duration
	pageAudio time.Duration
	now       func() time.Time
}

// WithChannels sets the OpusHead channel count (default 2, as WebRTC
// negotiates opus/48000/2; mono packets decode in either).
func WithChannels(n uint8) Option { return func(c *config) { c.channels = n } }

// WithSerial sets the Ogg bitstream serial number (default random).
func WithSerial(s uint32) Option { return func(c *config) { c.serial = s } }

// WithMaxGap sets the longest RTP timestamp gap filled with silence (default
// 30 s); a longer jump is taken as a timestamp reset.
func WithMaxGap(d time.Duration) Option { return func(c *config) { c.maxGap = d } }

// WithClock sets the wall clock read at every packet (default time.Now). A
// timestamp jump beyond the maximum gap, or a new SSRC, continues after the
// wall-clock time that passed since the previous packet, so a long pause
// keeps its length; nil continues directly, for offline conversion.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithPageDuration sets how much audio a page collects before it is written
// (default one second): the most a crash can lose.
func WithPageDuration(d time.Duration) Option { return func(c *config) { c.pageAudio = d } }

// Writer writes one Ogg/Opus file. It is owned by one goroutine (the track's
// reader) and not safe for concurrent use.
type Writer struct {
	out  io.Writer
	file *os.File // closed by Close when New opened it

	serial    uint32
	sequence  uint32 // next page sequence number
	tl        rtptime.Timeline
	granule   uint64 // samples decodable after the last packet written
	pageStart uint64 // granule when the pending page was begun
	pageSpan  uint64 // granules a page collects before it is written

	lacing []byte // segment table of the pending page, cap ogg.MaxSegments
	// page holds the pending page's packets from pagePrefix on; writePage
	// puts the header and segment table right before them and writes the
	// page in one call, with no second buffer to assemble it in.
	page []byte

	dropped uint64 // malformed payloads
	err     error  // sticky write error
	closed  bool
}

// New creates the file at path and writes the Opus header pages to it.
func New(path string, opts ...Option) (*Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("oggwriter: %w", err)
	}
	w, err := NewWith(f, opts...)
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	w.file = f
	return w, nil
}

// NewWith writes an Ogg/Opus stream to out, starting with the header pages.
// Close does not close out.
func NewWith(out io.Writer, opts ...Option) (*Writer, error) {
	if out == nil {
		return nil, fmt.Errorf("oggwriter: nil output")
	}
	c := config{channels: 2, serial: rand.Uint32(), maxGap: 30 * time.Second, pageAudio: time.Second, now: time.Now}
	for _, o := range opts {
		o(&c)
	}
	if c.channels == 0 || c.channels > 2 || c.pageAudio <= 0 || c.maxGap < 0 {
		return nil, fmt.Errorf("oggwriter: invalid configuration: %d channels, page %v, max gap %v", c.channels, c.pageAudio, c.maxGap)
	}
	w := &Writer{
		out:      out,
		serial:   c.serial,
		pageSpan: uint64(c.pageAudio / (time.Second / rate)),
		lacing:   make([]byte, 0, ogg.MaxSegments),
		page:     make([]byte, pagePrefix, pageBuffer),
	}
	w.tl.MaxGap = uint32(c.maxGap / (time.Second / rate))
	w.tl.Rate, w.tl.Now = rate, c.now

	// Identification header, alone on the first page (RFC 7845 §5.1), with
	// channel mapping family 0 (mono or stereo).
	head := make([]byte, 19)
	copy(head, "OpusHead")
	head[8] = 1 // version
	head[9] = c.channels
	binary.LittleEndian.PutUint16(head[10:], preSkip)
	binary.LittleEndian.PutUint32(head[12:], rate) // input sample rate, informational
	// Output gain 0 and mapping family 0 are the zero bytes 16–18.
	// Comment header, alone on the second page (RFC 7845 §5.2).
	const vendor = "rtcrec recorder"
	tags := make([]byte, 8+4+len(vendor)+4)
	copy(tags, "OpusTags")
	binary.LittleEndian.PutUint32(tags[8:], uint32(len(vendor)))
	copy(tags[12:], vendor)
	for i, h := range [][]byte{head, tags} {
		w.addPacket(h, 0)
		flags := byte(0)
		if i == 0 {
			flags = ogg.FlagBOS
		}
		if err := w.writePage(flags); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// addPacket appends a packet of the given duration to the pending page. The
// caller has made room (see fits).
func (w *Writer) addPacket(p []byte, samples uint32) {
	if len(w.lacing) == 0 {
		w.pageStart = w.granule
	}
	// Lacing (RFC 3533 §5): len/255 segments of 255, then one of len%255 (maybe 0).
	for n := len(p); ; n -= 255 {
		if n < 255 {
			w.lacing = append(w.lacing, byte(n))
			break
		}
		w.lacing = append(w.lacing, 255)
	}
	w.page = append(w.page, p...)
	w.granule += uint64(samples)
}

// fits reports whether a packet of n bytes fits in the pending page: in
// its segment table and in the page buffer, or, for a packet larger than
// the buffer holds, in an empty page (the buffer grows for it).
func (w *Writer) fits(n int) bool {
	if len(w.lacing)+n/255+1 > ogg.MaxSegments {
		return false
	}
	body := len(w.body())
	return body+n <= cap(w.page)-pagePrefix || body == 0
}

// pagePrefix is the room before the pending page's packets for its header
// and the longest segment table.
const pagePrefix = ogg.HeaderSize + ogg.MaxSegments

// pageBuffer is the page buffer's size, the header's room included: a Go
// size class (5376 bytes), whose 5094 bytes of packets hold a second of
// Opus at up to 40 kbit/s (a browser sends 32, speech with in-band FEC
// 24-32). A page is written once it holds a page duration of audio or when
// the next packet does not fit: at a higher rate pages are shorter than a
// second, and the buffer never grows (but for a single packet larger than
// it, up to ogg.MaxPageBody bytes). Per track it costs 5.25 KiB, and the
// segment table 256 bytes (8.3 KiB for a second at 64 kbit/s before
// session 19; a body and a page buffer of 8 KiB each before session 7;
// 16 KiB each before session 5): issue 16's budget per stream.
const pageBuffer = 5376

// body returns the pending page's packets.
func (w *Writer) body() []byte { return w.page[pagePrefix:] }

// writePage writes the pending page, if any, with the given flags.
func (w *Writer) writePage(flags byte) error {
	if w.err != nil {
		return w.err
	}
	if len(w.lacing) == 0 && flags&ogg.FlagEOS == 0 {
		return nil
	}
	start := pagePrefix - ogg.HeaderSize - len(w.lacing)
	p := w.page[start:]
	copy(p, "OggS")
	p[4] = 0 // version
	p[5] = flags
	binary.LittleEndian.PutUint64(p[6:], w.granule)
	binary.LittleEndian.PutUint32(p[14:], w.serial)
	binary.LittleEndian.PutUint32(p[18:], w.sequence)
	binary.LittleEndian.PutUint32(p[22:], 0)
	p[26] = byte(len(w.lacing))
	copy(p[ogg.HeaderSize:], w.lacing)
	binary.LittleEndian.PutUint32(p[22:], ogg.CRC(0, p))
	w.sequence++
	w.lacing, w.page = w.lacing[:0], w.page[:pagePrefix]
	if _, err := w.out.Write(p); err != nil {
		w.err = fmt.Errorf("oggwriter: write page: %w", err)
		return w.err
	}
	return nil
}

// put adds one audio packet, writing the pending page first when the packet
// does not fit and after it when the page holds a page duration of audio.
func (w *Writer) put(p []byte, samples uint32) error {
	if !w.fits(len(p)) {
		if err := w.writePage(0); err != nil {
			return err
		}
	}
	w.addPacket(p, samples)
	if w.granule-w.pageStart >= w.pageSpan {
		return w.writePage(0)
	}
	return nil
}

// fill adds silence packets for n samples. A remainder below 2.5 ms, which
// Opus cannot express and RTP timestamps of Opus packets never leave, is
// dropped.
func (w *Writer) fill(n uint32) error {
	for _, s := range silenceFrames {
		for ; n >= s.samples; n -= s.samples {
			if err := w.put(s.packet[:], s.samples); err != nil {
				return err
			}
		}
	}
	return nil
}

// WriteRTP writes the Opus packet in p's payload at its place on the
// timeline. Malformed payloads are counted (Dropped) and skipped. It
// allocates nothing.
func (w *Writer) WriteRTP(p *rtp.Packet) error {
	switch {
	case w.closed:
		return ErrClosed
	case w.err != nil:
		return w.err
	case p == nil:
		return nil
	}
	samples, err := packetSamples(p.Payload)
	if err != nil || len(p.Payload) > ogg.MaxPageBody-255 {
		w.dropped++
		return nil
	}
	gap, ok := w.tl.Place(p.SSRC, p.Timestamp, samples)
	if !ok {
		return nil
	}
	if err := w.fill(gap); err != nil {
		return err
	}
	return w.put(p.Payload, samples)
}

// Dropped returns the number of packets dropped: duplicates, late arrivals
// and malformed payloads.
func (w *Writer) Dropped() uint64 { return w.dropped + w.tl.Dropped }

// Duration returns the playback duration written so far, gaps included.
func (w *Writer) Duration() time.Duration {
	return time.Duration(w.granule-preSkip) * time.Second / rate
}

// Flush writes the pending page now, e.g. when the caller pauses writing.
func (w *Writer) Flush() error {
	if w.closed {
		return ErrClosed
	}
	return w.writePage(0)
}

// Close writes the last page with the end-of-stream flag and closes the file
// when New opened it. Close is idempotent: later calls return nil.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.writePage(ogg.FlagEOS)
	return fileout.Close("oggwriter", w.file, err)
}
