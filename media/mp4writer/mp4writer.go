// Package mp4writer writes an H.264 RTP stream (RFC 6184) to a fragmented
// MP4 file (ISO/IEC 14496-12 movie fragments, 'avc1' samples per ISO/IEC
// 14496-15) without transcoding, playable in Chromium and read by ffprobe.
//
// Boxes are built with github.com/Eyevinn/mp4ff (v0.47.0). Depacketizing is
// done here (single NAL unit, STAP-A, FU-A) into reused buffers, because
// pion's H264Packet allocates per NAL unit. Frames are assembled by
// media/internal/framer: the file starts at the first IDR picture whose SPS
// and PPS are known (they go into the avcC box), and keyframes are requested
// through a callback (the caller sends a PLI) at the start and after loss.
//
// Timeline: media time zero is the first RTP packet received, as in
// media/webmwriter, with the 90 kHz RTP clock as the track timescale, so
// gaps (loss, a pause) keep their length. Fragments start at every IDR and
// at least once a second, and each is written with one write call, so a
// process crash loses at most about a second; a file cut after any whole
// fragment plays. H.264 with B-frames (which WebRTC does not send) is not
// supported: samples are written in arrival order with decode time =
// presentation time.
package mp4writer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/Eyevinn/mp4ff/avc"
	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/media/internal/fileout"
	"github.com/rtcrec/recorder/media/internal/framer"
)

const clockRate = 90000 // RTP clock of video (RFC 3551 §5), also the track timescale

// Stats counts what the writer saw: frames written, frames dropped, sequence
// gaps and keyframe requests.
type Stats = framer.Stats

// ErrClosed is returned by WriteRTP after Close.
var ErrClosed = errors.New("mp4writer: writer is closed")

// Option configures a Writer.
type Option func(*config)

type config struct {
	onKeyframe func()
	maxGap     time.Duration
	now        func() time.Time
	fragment   time.Duration
}

// WithKeyframeRequest sets the function called when the writer needs a
// keyframe: at the start, after a loss or SSRC change, and again every
// second until one arrives. It runs on the WriteRTP goroutine and should
// only signal (e.g. send a PLI without blocking).
func WithKeyframeRequest(fn func()) Option { return func(c *config) { c.onKeyframe = fn } }

// WithClock sets the wall clock read at every packet (default time.Now). A
// timestamp jump beyond the maximum gap, or a new SSRC, continues after the
// wall-clock time that passed since the previous packet, so a long pause
// keeps its length; nil continues directly, for offline conversion.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithMaxGap sets the longest RTP timestamp gap kept as a gap (default 30 s);
// a longer jump is taken as a timestamp reset.
func WithMaxGap(d time.Duration) Option { return func(c *config) { c.maxGap = d } }

// WithFragmentDuration sets the longest fragment (default one second): the
// most a crash can lose.
func WithFragmentDuration(d time.Duration) Option { return func(c *config) { c.fragment = d } }

// Writer writes one fragmented MP4 file. It is owned by one goroutine (the
// track's reader) and not safe for concurrent use.
type Writer struct {
	out  io.Writer
	file *os.File
	h264 h264Codec
	fr   framer.Framer

	started bool   // init segment written
	sps     []byte // parameter sets in the avcC box
	pps     []byte
	width   int
	height  int

	// The pending fragment: samples whose data is in data; the last
	// sample's duration is known only when the next frame arrives.
	samples  []mp4.Sample
	data     []byte
	fragTime int64 // decode time of the first pending sample
	lastTime int64 // decode time of the last pending sample
	lastDur  uint32
	seq      uint32 // fragment sequence number
	span     int64  // longest fragment, in ticks
	enc      bytes.Buffer

	err    error
	closed bool
}

// New creates the file at path for an H.264 stream.
func New(path string, opts ...Option) (*Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("mp4writer: %w", err)
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

// NewWith writes a fragmented MP4 of an H.264 stream to out. Nothing is
// written before the first decodable IDR picture. Close does not close out.
func NewWith(out io.Writer, opts ...Option) (*Writer, error) {
	if out == nil {
		return nil, errors.New("mp4writer: nil output")
	}
	c := config{maxGap: 30 * time.Second, fragment: time.Second, now: time.Now}
	for _, o := range opts {
		o(&c)
	}
	w := &Writer{out: out, span: int64(c.fragment.Seconds() * clockRate), lastDur: clockRate / 30}
	w.h264.fuStart = -1
	w.fr = framer.Framer{Codec: &w.h264, ClockRate: clockRate, OnKeyframeRequest: c.onKeyframe,
		MaxGap: uint32(c.maxGap.Seconds() * clockRate), Now: c.now}
	return w, nil
}

// WriteRTP adds one packet. Access units are written when complete; those
// that lost a packet, and every one until the next IDR after a loss, are
// dropped (see Stats).
func (w *Writer) WriteRTP(p *rtp.Packet) error {
	switch {
	case w.closed:
		return ErrClosed
	case w.err != nil:
		return w.err
	case p == nil:
		return nil
	}
	f, ok := w.fr.Push(p)
	if !ok {
		return nil
	}
	if !w.started {
		if err := w.writeInit(); err != nil {
			return err
		}
	}
	return w.addSample(f.Time, f.Keyframe, f.Data)
}

// writeInit writes the init segment (ftyp, moov with the avcC of the
// current SPS and PPS).
func (w *Writer) writeInit() error {
	init := mp4.CreateEmptyInit()
	init.AddEmptyTrack(clockRate, "video", "und")
	trak := init.Moov.Trak
	if err := trak.SetAVCDescriptor("avc1", [][]byte{w.h264.sps}, [][]byte{w.h264.pps}, true); err != nil {
		w.err = fmt.Errorf("mp4writer: parameter sets: %w", err)
		return w.err
	}
	if sps, err := avc.ParseSPSNALUnit(w.h264.sps, false); err == nil {
		w.width, w.height = int(sps.Width), int(sps.Height)
	}
	w.sps = append([]byte(nil), w.h264.sps...)
	w.pps = append([]byte(nil), w.h264.pps...)
	w.started = true
	return w.write(init.Encode)
}

// write encodes through the reused buffer and writes it with one call.
func (w *Writer) write(encode func(io.Writer) error) error {
	w.enc.Reset()
	if err := encode(&w.enc); err != nil {
		w.err = fmt.Errorf("mp4writer: encode: %w", err)
		return w.err
	}
	if _, err := w.out.Write(w.enc.Bytes()); err != nil {
		w.err = fmt.Errorf("mp4writer: write: %w", err)
		return w.err
	}
	return nil
}

// addSample adds an access unit at decode time t, first writing the
// pending fragment when this sample is an IDR or the fragment is full.
func (w *Writer) addSample(t int64, key bool, au []byte) error {
	if n := len(w.samples); n > 0 {
		if t > w.lastTime {
			w.lastDur = uint32(t - w.lastTime)
		}
		w.samples[n-1].Dur = w.lastDur
		if key || t-w.fragTime >= w.span {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
	if len(w.samples) == 0 {
		w.fragTime = t
	}
	flags := mp4.NonSyncSampleFlags
	if key {
		flags = mp4.SyncSampleFlags
	}
	before := len(w.data)
	w.data = appendSample(w.data, au, w.sps, w.pps)
	w.samples = append(w.samples, mp4.Sample{Flags: flags, Size: uint32(len(w.data) - before)})
	w.lastTime = t
	return nil
}

// Flush writes the pending fragment (moof and mdat). The last pending
// sample gets the previous frame interval as its duration.
func (w *Writer) Flush() error {
	if w.err != nil || len(w.samples) == 0 {
		return w.err
	}
	if d := &w.samples[len(w.samples)-1].Dur; *d == 0 {
		*d = w.lastDur
	}
	w.seq++
	frag, err := mp4.CreateFragment(w.seq, 1)
	if err != nil {
		w.err = fmt.Errorf("mp4writer: fragment: %w", err)
		return w.err
	}
	frag.AddSamples(w.samples, uint64(w.fragTime))
	frag.Mdat.SetData(w.data)
	err = w.write(frag.Encode)
	w.samples, w.data = w.samples[:0], w.data[:0]
	return err
}

// Duration returns the media time written or pending so far.
func (w *Writer) Duration() time.Duration {
	if !w.started {
		return 0
	}
	return time.Duration(w.lastTime+int64(w.lastDur)) * time.Second / clockRate
}

// Stats returns the counts of frames written and dropped, losses and
// keyframe requests.
func (w *Writer) Stats() Stats { return w.fr.Stats }

// Size returns the frame size from the SPS of the first IDR (0, 0 before it).
func (w *Writer) Size() (width, height int) { return w.width, w.height }

// Close writes the last fragment and closes the file when New opened it. A
// writer that never saw a decodable IDR leaves an empty file. Close is
// idempotent.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	return fileout.Close("mp4writer", w.file, w.Flush())
}
