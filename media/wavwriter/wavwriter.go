// Package wavwriter writes RIFF/WAVE files: 16-bit PCM (the mix, fed by the
// mixer through WriteFrame) and 8-bit G.711 µ-law/A-law (per-track files of
// PCMU/PCMA RTP streams, fed through G711Writer.Write). It knows no RTP
// packet type: media/format adapts G711Writer to RTP packets.
//
// Durability: samples are buffered in memory and written to the file once
// per flush interval of audio (default one second), after which the header's
// RIFF and data sizes are rewritten in place, so the file on disk is a valid
// WAV of everything but the last interval at all times. A process crash
// therefore loses at most one interval, and the file plays without Repair.
// The writer does not fsync per flush: a process crash keeps what was
// written in the page cache, and an fsync a second per recording would cost
// disk bandwidth for the rarer case of a machine crash; Close fsyncs, and
// WithSync makes every flush fsync. Repair fixes files whose header lags
// behind their data (a crash between a data write and the header patch, or a
// machine crash).
package wavwriter

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rtcrec/recorder/media/internal/fileout"
)

// Option configures a Writer.
type Option func(*config)

type config struct {
	rate, channels int
	flush          time.Duration
	sync           bool
	maxGap         time.Duration
	now            func() time.Time
}

// WithSampleRate sets the sample rate in Hz (default 8000).
func WithSampleRate(hz int) Option { return func(c *config) { c.rate = hz } }

// WithChannels sets the number of interleaved channels (default 1).
func WithChannels(n int) Option { return func(c *config) { c.channels = n } }

// WithFlushInterval sets how much audio is buffered before it is written to
// the file and the header is patched (default one second).
func WithFlushInterval(d time.Duration) Option { return func(c *config) { c.flush = d } }

// WithSync makes every flush fsync the file, when it has a Sync method.
func WithSync(on bool) Option { return func(c *config) { c.sync = on } }

// WithMaxGap sets the longest RTP timestamp gap a G711Writer fills with
// silence (default 30 s); a longer jump is taken as a timestamp reset.
func WithMaxGap(d time.Duration) Option { return func(c *config) { c.maxGap = d } }

// WithClock sets the wall clock read at every packet (default time.Now). A
// timestamp jump beyond the maximum gap, or a new SSRC, continues after the
// wall-clock time that passed since the previous packet, so a long pause
// keeps its length; nil continues directly, for offline conversion.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

func newConfig(opts []Option) (config, error) {
	c := config{rate: 8000, channels: 1, flush: time.Second, maxGap: 30 * time.Second, now: time.Now}
	for _, o := range opts {
		o(&c)
	}
	if c.rate <= 0 || c.rate > 384000 || c.channels <= 0 || c.channels > 8 || c.flush <= 0 {
		return c, fmt.Errorf("wavwriter: invalid configuration: %d Hz, %d channels, flush %v", c.rate, c.channels, c.flush)
	}
	return c, nil
}

// Writer writes one RIFF/WAVE file. It is not safe for concurrent use: one
// goroutine (the mixer, or a track's reader) owns it.
type Writer struct {
	out    io.Writer
	at     io.WriterAt // patches the header; nil when out cannot seek
	file   *os.File    // closed by Close when New opened it
	format Format
	rate   int
	chans  int
	align  int  // bytes per sample frame
	sync   bool // fsync every flush

	buf     []byte // pending samples; cap is one flush interval
	written int64  // data bytes already written to out
	hdr     [maxHeaderSize]byte
	err     error // sticky write error
	closed  bool
}

// New creates the file at path and writes a 16-bit PCM WAV header to it.
func New(path string, opts ...Option) (*Writer, error) {
	return create(path, PCM, opts)
}

// NewWith writes a 16-bit PCM WAV to out. When out is an io.WriterAt or an
// io.WriteSeeker (an *os.File is both) the header sizes are patched at every
// flush and on Close; otherwise the header declares an unknown size
// (0xFFFFFFFF), the streaming convention players accept. Close does not close out.
func NewWith(out io.Writer, opts ...Option) (*Writer, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return newWriter(out, PCM, c)
}

func create(path string, f Format, opts []Option) (*Writer, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	file, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("wavwriter: %w", err)
	}
	w, err := newWriter(file, f, c)
	if err != nil {
		file.Close()
		os.Remove(path)
		return nil, err
	}
	w.file = file
	return w, nil
}

func newWriter(out io.Writer, f Format, c config) (*Writer, error) {
	if out == nil {
		return nil, fmt.Errorf("wavwriter: nil output")
	}
	w := &Writer{out: out, format: f, rate: c.rate, chans: c.channels, sync: c.sync}
	w.align = c.channels * f.bytesPerSample()
	frames := max(1, int(int64(c.rate)*int64(c.flush)/int64(time.Second)))
	w.buf = make([]byte, 0, frames*w.align)
	switch o := out.(type) {
	case io.WriterAt:
		w.at = o
	case io.WriteSeeker:
		w.at = seekPatcher{o}
	}
	size := ^uint32(0)
	if w.at != nil {
		size = 0
	}
	if _, err := out.Write(putHeader(w.hdr[:], f, w.chans, w.rate, size)); err != nil {
		return nil, fmt.Errorf("wavwriter: write header: %w", err)
	}
	return w, nil
}

// seekPatcher patches the header of an io.WriteSeeker that is not an io.WriterAt.
type seekPatcher struct{ ws io.WriteSeeker }

func (p seekPatcher) WriteAt(b []byte, off int64) (int, error) {
	if _, err := p.ws.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	n, err := p.ws.Write(b)
	if err != nil {
		return n, err
	}
	_, err = p.ws.Seek(0, io.SeekEnd)
	return n, err
}

// Format returns the file's format.
func (w *Writer) Format() Format { return w.format }

// SampleRate returns the file's sample rate in Hz.
func (w *Writer) SampleRate() int { return w.rate }

// Frames returns the number of sample frames (samples per channel) written
// so far, buffered ones included: the file's duration is Frames/SampleRate.
func (w *Writer) Frames() int64 { return (w.written + int64(len(w.buf))) / int64(w.align) }

// Buffered returns the number of sample frames (samples per channel)
// written but not yet in the file: Flush writes them.
func (w *Writer) Buffered() int { return len(w.buf) / w.align }

// WriteFrame appends interleaved 16-bit samples to a PCM file: len(pcm) must
// be a multiple of the channel count. It implements the mixer's sink and
// allocates nothing.
func (w *Writer) WriteFrame(pcm []int16) error {
	if err := w.check(len(pcm) * 2); err != nil {
		return err
	}
	if w.format != PCM || len(pcm)%w.chans != 0 {
		return fmt.Errorf("%w: %d samples for %v with %d channels", ErrFormat, len(pcm), w.format, w.chans)
	}
	for len(pcm) > 0 {
		n := min(len(pcm), (cap(w.buf)-len(w.buf))/2)
		b := w.buf[len(w.buf) : len(w.buf)+2*n]
		for i, s := range pcm[:n] {
			// RIFF samples are little-endian; 16-bit PCM is signed.
			b[2*i] = byte(s)
			b[2*i+1] = byte(uint16(s) >> 8)
		}
		w.buf = w.buf[:len(w.buf)+2*n]
		pcm = pcm[n:]
		if len(w.buf) == cap(w.buf) {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeBytes appends encoded samples (G.711 bytes).
func (w *Writer) writeBytes(p []byte) error {
	if err := w.check(len(p)); err != nil {
		return err
	}
	for len(p) > 0 {
		n := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+n]
		p = p[n:]
		if len(w.buf) == cap(w.buf) {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// fill appends n copies of the byte v (G.711 silence).
func (w *Writer) fill(v byte, n int) error {
	if err := w.check(n); err != nil {
		return err
	}
	for n > 0 {
		k := min(n, cap(w.buf)-len(w.buf))
		b := w.buf[len(w.buf) : len(w.buf)+k]
		for i := range b {
			b[i] = v
		}
		w.buf = w.buf[:len(w.buf)+k]
		n -= k
		if len(w.buf) == cap(w.buf) {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *Writer) check(n int) error {
	switch {
	case w.closed:
		return ErrClosed
	case w.err != nil:
		return w.err
	case w.written+int64(len(w.buf))+int64(n) > maxDataSize:
		return ErrTooLarge
	}
	return nil
}

// Flush writes the buffered samples to the file and patches the header
// sizes, so that the file on disk is complete up to this point. Writers call
// it by themselves once per flush interval of audio; a caller may call it
// when it knows no audio will come for a while (a pause).
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) > 0 {
		n, err := w.out.Write(w.buf)
		w.written += int64(n)
		w.buf = w.buf[:0]
		if err != nil {
			w.err = fmt.Errorf("wavwriter: write: %w", err)
			return w.err
		}
	}
	if err := w.patch(); err != nil {
		return err
	}
	if w.sync {
		if s, ok := w.out.(interface{ Sync() error }); ok {
			if err := s.Sync(); err != nil {
				w.err = fmt.Errorf("wavwriter: sync: %w", err)
				return w.err
			}
		}
	}
	return nil
}

// patch rewrites the header with the current data size in one write.
func (w *Writer) patch() error {
	if w.at == nil {
		return nil
	}
	if _, err := w.at.WriteAt(putHeader(w.hdr[:], w.format, w.chans, w.rate, uint32(w.written)), 0); err != nil {
		w.err = fmt.Errorf("wavwriter: patch header: %w", err)
		return w.err
	}
	return nil
}

// Close flushes the remaining samples, writes the pad byte an odd-sized data
// chunk needs, patches the header, and closes the file when New opened it.
// Close is idempotent: later calls return nil.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	err := w.Flush()
	if err == nil && w.written&1 == 1 && w.at != nil {
		if _, werr := w.out.Write([]byte{0}); werr != nil {
			err = fmt.Errorf("wavwriter: write pad byte: %w", werr)
		}
	}
	w.closed = true
	return fileout.Close("wavwriter", w.file, err)
}
