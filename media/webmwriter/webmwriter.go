// Package webmwriter writes a VP8 or VP9 RTP stream to a WebM file without
// transcoding: it depacketizes (RFC 7741, RFC 9628, with pion/rtp's payload
// descriptor parsers), assembles frames (media/internal/framer), starts at
// the first keyframe, asks for keyframes through a callback (the caller
// sends a PLI) at the start and after loss, and muxes SimpleBlocks into
// Clusters (Matroska, RFC 9559; WebM subset).
//
// The muxer is written here rather than taken from github.com/at-wat/ebml-go
// (v0.17.1, in go.mod and used by this package's tests to read files back):
// its block writer allocates per frame (a channel send and reflection-based
// marshalling), runs goroutines per file, panics on write errors by default,
// writes the track entry before the first frame is known (so no real frame
// size) and has no way to record the segment's duration or cues.
//
// Timeline: time zero is the first RTP packet received, so the video lines
// up with the audio tracks of the same participant even though the first
// keyframe comes later; frames are placed by RTP timestamp (90 kHz), so gaps
// (loss, a pause) keep their length.
//
// Layout while writing: a Segment of unknown size; each Cluster (one per
// keyframe, or per 30 s) gets its size when the next one starts, and the
// Info Duration is patched at every flush. Close appends Cues (one per
// keyframe Cluster), writes a SeekHead into room kept after the Segment
// header, and sets the Segment's size. On an output that cannot seek these
// patches are skipped and the file stays a live-style WebM.
//
// Durability: blocks are written to the file at least once per second of
// media (one write call), so a process crash loses at most about a second;
// a crashed file (unknown-size Segment, last Cluster of unknown size) plays
// up to its last whole block.
package webmwriter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/media/internal/fileout"
	"github.com/rtcrec/recorder/media/internal/framer"
)

const (
	clockRate = 90000 // RTP clock of video (RFC 3551 §5)
	// maxClusterSpan keeps block timestamps, relative to their cluster's,
	// within the int16 of a SimpleBlock (milliseconds).
	maxClusterSpan = 30000
)

// Stats counts what the writer saw: frames written, frames dropped, sequence
// gaps and keyframe requests.
type Stats = framer.Stats

// Option configures a Writer.
type Option func(*config)

type config struct {
	onKeyframe func()
	maxGap     time.Duration
	now        func() time.Time
	flush      time.Duration
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

// WithFlushInterval sets how much media is buffered before it is written
// (default one second): the most a crash can lose.
func WithFlushInterval(d time.Duration) Option { return func(c *config) { c.flush = d } }

// Writer writes one WebM file. It is owned by one goroutine (the track's
// reader) and not safe for concurrent use.
type Writer struct {
	out   io.Writer
	at    io.WriterAt // patches Duration; nil when out cannot seek
	file  *os.File
	codec Codec
	dep   depacketizer
	fr    framer.Framer

	started       bool  // header written
	width, height int   // from the first keyframe
	durOff        int64 // file offset of the Duration value, 0 if none
	dur           [8]byte
	segStart      int64 // file offset of the Segment's data; 0 if out cannot seek
	infoPos       int64 // positions of Info and Tracks in the Segment
	tracksPos     int64
	cues          []cue // clusters that start with a keyframe
	clusterOff    int64 // file offset of the open Cluster's size field
	size          [8]byte
	cluster       bool
	clusterMS     int64
	lastMS        int64 // time of the last block
	frameMS       int64 // interval between the last two frames
	flushMS       int64 // media time of the last write
	flushSpan     int64
	written       int64 // bytes written to out
	pend          []byte
	err           error
	closed        bool
}

// New creates the file at path for a VP8 or VP9 stream.
func New(path string, codec Codec, opts ...Option) (*Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("webmwriter: %w", err)
	}
	w, err := NewWith(f, codec, opts...)
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	w.file = f
	return w, nil
}

// NewWith writes a WebM stream of a VP8 or VP9 track to out. Nothing is
// written before the first keyframe. When out is an io.WriterAt (an
// *os.File is) the segment Duration is kept up to date; otherwise it is
// left out. Close does not close out.
func NewWith(out io.Writer, codec Codec, opts ...Option) (*Writer, error) {
	if out == nil {
		return nil, errors.New("webmwriter: nil output")
	}
	c := config{maxGap: 30 * time.Second, flush: time.Second, now: time.Now}
	for _, o := range opts {
		o(&c)
	}
	w := &Writer{out: out, codec: codec, flushSpan: c.flush.Milliseconds()}
	switch codec {
	case VP8:
		w.dep = &vp8Codec{}
	case VP9:
		w.dep = &vp9Codec{}
	default:
		return nil, fmt.Errorf("webmwriter: unsupported codec %v", codec)
	}
	if at, ok := out.(io.WriterAt); ok {
		w.at = at
	}
	w.fr = framer.Framer{Codec: w.dep, ClockRate: clockRate, OnKeyframeRequest: c.onKeyframe,
		MaxGap: uint32(c.maxGap.Seconds() * clockRate), Now: c.now}
	return w, nil
}

// WriteRTP adds one packet. Frames are written when complete; frames that
// lost a packet, and every frame until the next keyframe after a loss, are
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
		w.width, w.height = w.dep.Size(f.Data)
		w.writeHeader()
		w.started = true
	}
	return w.writeBlock(f.Time*1000/clockRate, f.Keyframe, f.Data)
}

// cue is a seek point: a cluster that starts with a keyframe.
type cue struct {
	ms  int64
	pos int64 // position of the Cluster in the Segment
}

// seekHeadSpace is the room kept after the Segment header for the SeekHead
// that Close writes (three Seek entries of at most 21 bytes and the
// SeekHead header), filled with a Void element until then.
const seekHeadSpace = 96

// writeHeader appends the EBML header, the Segment start, Info and Tracks.
// With a seekable output the Segment starts with room for a SeekHead and
// has an unknown size, both fixed by Close.
func (w *Writer) writeHeader() {
	var b []byte
	var h []byte
	h = appendUint(h, idEBMLVersion, 1)
	h = appendUint(h, idEBMLReadVersion, 1)
	h = appendUint(h, idEBMLMaxIDLength, 4)
	h = appendUint(h, idEBMLMaxSizeLength, 8)
	h = appendString(h, idDocType, "webm")
	h = appendUint(h, idDocTypeVersion, 4)
	h = appendUint(h, idDocTypeReadVersion, 2)
	b = appendMaster(b, idEBML, h)
	b = append(appendID(b, idSegment), unknownSize...)
	if w.at != nil {
		w.segStart = int64(len(b))
		b = appendVoid(b, seekHeadSpace)
		w.infoPos = int64(len(b)) - w.segStart
		w.cues = make([]cue, 0, 256)
	}

	var info []byte
	info = appendUint(info, idTimestampScale, 1000000) // block times in ms
	info = appendString(info, idMuxingApp, "rtcrec recorder")
	info = appendString(info, idWritingApp, "rtcrec recorder")
	durAt := -1
	if w.at != nil {
		info = appendFloat(info, idDuration, 0)
		durAt = len(info) - 8
	}
	b = append(appendSize(appendID(b, idInfo), uint64(len(info))), info...)
	if durAt >= 0 {
		w.durOff = int64(len(b) - len(info) + durAt)
	}

	var video, entry []byte
	video = appendUint(video, idPixelWidth, uint64(w.width))
	video = appendUint(video, idPixelHeight, uint64(w.height))
	entry = appendUint(entry, idTrackNumber, 1)
	entry = appendUint(entry, idTrackUID, rand.Uint64N(1<<53)+1)
	entry = appendUint(entry, idTrackType, 1) // video
	entry = appendUint(entry, idFlagLacing, 0)
	entry = appendString(entry, idCodecID, w.codec.codecID())
	entry = appendMaster(entry, idVideo, video)
	w.tracksPos = int64(len(b)) - w.segStart
	b = appendMaster(b, idTracks, appendMaster(nil, idTrackEntry, entry))
	w.pend = append(w.pend, b...)
}

// writeBlock appends a SimpleBlock at ms, opening a Cluster at keyframes and
// when the block's relative time would not fit, and writes the pending
// bytes once per flush interval.
func (w *Writer) writeBlock(ms int64, key bool, data []byte) error {
	if w.cluster && ms > w.lastMS {
		w.frameMS = ms - w.lastMS
	}
	if !w.cluster || (key && ms > w.clusterMS) || ms-w.clusterMS > maxClusterSpan {
		if err := w.closeCluster(); err != nil {
			return err
		}
		off := w.written + int64(len(w.pend))
		if key && w.segStart > 0 {
			w.cues = append(w.cues, cue{ms, off - w.segStart})
		}
		w.clusterOff = off + 4 // after the 4-byte ID
		w.pend = append(appendID(w.pend, idCluster), unknownSize...)
		w.pend = appendUint(w.pend, idTimestamp, uint64(ms))
		w.cluster, w.clusterMS = true, ms
	}
	// SimpleBlock (RFC 9559 §10.2): track number as a vint, int16 time
	// relative to the cluster, flags (0x80 keyframe), then the frame.
	w.pend = appendSize(appendID(w.pend, idSimpleBlock), uint64(len(data)+4))
	flags := byte(0)
	if key {
		flags = 0x80
	}
	w.pend = append(w.pend, 0x81, 0, 0, flags)
	binary.BigEndian.PutUint16(w.pend[len(w.pend)-3:], uint16(int16(ms-w.clusterMS)))
	w.pend = append(w.pend, data...)
	w.lastMS = ms
	if ms-w.flushMS >= w.flushSpan || len(w.pend) >= 8<<20 {
		return w.Flush()
	}
	return nil
}

// closeCluster replaces the open Cluster's unknown size by its size, in the
// pending bytes or, once written, in the file. A Cluster written to an
// output that cannot seek keeps its unknown size (the Segment's is unknown
// too, as the format requires).
func (w *Writer) closeCluster() error {
	if !w.cluster {
		return nil
	}
	end := w.written + int64(len(w.pend))
	binary.BigEndian.PutUint64(w.size[:], uint64(end-w.clusterOff-8)|1<<56)
	if w.clusterOff >= w.written {
		copy(w.pend[w.clusterOff-w.written:], w.size[:])
		return nil
	}
	if w.at == nil {
		return nil
	}
	if _, err := w.at.WriteAt(w.size[:], w.clusterOff); err != nil {
		w.err = fmt.Errorf("webmwriter: patch cluster size: %w", err)
		return w.err
	}
	return nil
}

// Duration returns the media time written so far: the last frame's time
// plus one frame interval.
func (w *Writer) Duration() time.Duration {
	if !w.started {
		return 0
	}
	return time.Duration(w.lastMS+w.interval()) * time.Millisecond
}

func (w *Writer) interval() int64 {
	if w.frameMS > 0 {
		return w.frameMS
	}
	return 33
}

// Flush writes the pending blocks and patches the segment Duration.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	w.flushMS = w.lastMS
	if len(w.pend) > 0 {
		n, err := w.out.Write(w.pend)
		w.written += int64(n)
		w.pend = w.pend[:0]
		if err != nil {
			w.err = fmt.Errorf("webmwriter: write: %w", err)
			return w.err
		}
	}
	if w.durOff > 0 && w.started {
		binary.BigEndian.PutUint64(w.dur[:], math.Float64bits(float64(w.lastMS+w.interval())))
		if _, err := w.at.WriteAt(w.dur[:], w.durOff); err != nil {
			w.err = fmt.Errorf("webmwriter: patch duration: %w", err)
			return w.err
		}
	}
	return nil
}

// Stats returns the counts of frames written and dropped, losses and
// keyframe requests.
func (w *Writer) Stats() Stats { return w.fr.Stats }

// Size returns the frame size read from the first keyframe (0, 0 before it).
func (w *Writer) Size() (width, height int) { return w.width, w.height }

// Close writes what is pending and closes the file when New opened it. A
// writer that never saw a keyframe leaves an empty file. Close is idempotent.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.closeCluster()
	if err == nil {
		err = w.Flush()
	}
	if err == nil && w.segStart > 0 {
		err = w.finish()
	}
	return fileout.Close("webmwriter", w.file, err)
}

// finish appends the Cues, writes the SeekHead into the room kept for it
// and sets the Segment's size, so that players can seek without scanning.
func (w *Writer) finish() error {
	var cues []byte
	for _, c := range w.cues {
		var pos, point []byte
		pos = appendUint(pos, idCueTrack, 1)
		pos = appendUint(pos, idCueClusterPosition, uint64(c.pos))
		point = appendUint(point, idCueTime, uint64(c.ms))
		point = appendMaster(point, idCueTrackPositions, pos)
		cues = appendMaster(cues, idCuePoint, point)
	}
	cuesPos := w.written - w.segStart
	cues = appendMaster(nil, idCues, cues)
	n, err := w.out.Write(cues)
	w.written += int64(n)
	if err != nil {
		return fmt.Errorf("webmwriter: write cues: %w", err)
	}

	var seeks []byte
	for _, s := range []struct {
		id  uint32
		pos int64
	}{{idInfo, w.infoPos}, {idTracks, w.tracksPos}, {idCues, cuesPos}} {
		var seek []byte
		seek = appendMaster(seek, idSeekID, appendID(nil, s.id))
		seek = appendUint(seek, idSeekPosition, uint64(s.pos))
		seeks = appendMaster(seeks, idSeek, seek)
	}
	head := appendMaster(nil, idSeekHead, seeks)
	head = appendVoid(head, seekHeadSpace-len(head))
	if _, err := w.at.WriteAt(head, w.segStart); err != nil {
		return fmt.Errorf("webmwriter: write seek head: %w", err)
	}
	// The Segment's size as an 8-byte variable-length integer.
	binary.BigEndian.PutUint64(w.size[:], uint64(w.written-w.segStart)|1<<56)
	if _, err := w.at.WriteAt(w.size[:], w.segStart-8); err != nil {
		return fmt.Errorf("webmwriter: write segment size: %w", err)
	}
	return nil
}

// ErrClosed is returned by WriteRTP after Close.
var ErrClosed = errors.New("webmwriter: writer is closed")
