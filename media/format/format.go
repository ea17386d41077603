// Package format is the recorder's one table of what it records: for every
// RTP codec it writes without transcoding, the container, the file
// extension, the content type, the writer, the crash repair and the "whole
// units" a part of a growing file may end on (recorder/chunks.go). Adding a
// codec means one row in codecs (and one in containers for a new
// container); nothing else in the module switches on codecs or extensions
// of track files.
package format

import (
	"path"
	"strings"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/media/mp4writer"
	"github.com/rtcrec/recorder/media/oggwriter"
	"github.com/rtcrec/recorder/media/wavwriter"
	"github.com/rtcrec/recorder/media/webmwriter"
)

// Writer is what every per-track writer is: packets in, a file out. Close is
// idempotent.
type Writer interface {
	WriteRTP(*rtp.Packet) error
	Close() error
}

// Cutter finds where the next part of a growing file may end: Cut returns
// how many bytes of b, the file's bytes from offset off on (off is where the
// previous part ended, or 0), end on a whole unit (0: none yet). A Cutter
// follows one file, in order, on one goroutine.
type Cutter interface {
	Cut(b []byte, off int64) int
}

// Container is a file format the recorder writes.
type Container struct {
	Ext         string // file extension without the dot: "ogg"
	ContentType string // of the uploaded object: "audio/ogg"
	// Repair makes a file left behind by a crash playable (see each
	// writer's Repair).
	Repair func(path string) error
	// NewCutter returns the Cutter of one growing file.
	NewCutter func() Cutter
}

// Codec is an RTP codec the recorder writes to a file of its own.
type Codec struct {
	MIME      string // the RTP MIME type, lower case: "audio/opus"
	Container *Container
	// New creates the writer at path; keyframe, when the codec needs one,
	// asks the sender for a keyframe (an RTCP PLI) without blocking.
	New func(path string, keyframe func()) (Writer, error)
}

// cutFunc adapts a stateless cut function to a Cutter.
type cutFunc func(b []byte) int

func (f cutFunc) Cut(b []byte, _ int64) int { return f(b) }

// The containers.
var (
	Ogg = &Container{Ext: "ogg", ContentType: "audio/ogg", Repair: oggwriter.Repair,
		NewCutter: func() Cutter { return cutFunc(oggwriter.Cut) }}
	WAV = &Container{Ext: "wav", ContentType: "audio/wav", Repair: wavwriter.Repair,
		NewCutter: func() Cutter { return new(wavwriter.Cutter) }}
	WebM = &Container{Ext: "webm", ContentType: "video/webm", Repair: webmwriter.Repair,
		NewCutter: func() Cutter { return cutFunc(webmwriter.Cut) }}
	MP4 = &Container{Ext: "mp4", ContentType: "video/mp4", Repair: mp4writer.Repair,
		NewCutter: func() Cutter { return cutFunc(mp4writer.Cut) }}
)

var containers = []*Container{Ogg, WAV, WebM, MP4}

// codecs is the table: one row per codec.
var codecs = []Codec{
	{MIME: "audio/opus", Container: Ogg, New: func(path string, _ func()) (Writer, error) {
		return oggwriter.New(path)
	}},
	{MIME: "audio/pcmu", Container: WAV, New: func(path string, _ func()) (Writer, error) {
		return newG711(path, wavwriter.MuLaw)
	}},
	{MIME: "audio/pcma", Container: WAV, New: func(path string, _ func()) (Writer, error) {
		return newG711(path, wavwriter.ALaw)
	}},
	{MIME: "video/vp8", Container: WebM, New: func(path string, keyframe func()) (Writer, error) {
		return webmwriter.New(path, webmwriter.VP8, webmwriter.WithKeyframeRequest(keyframe))
	}},
	{MIME: "video/vp9", Container: WebM, New: func(path string, keyframe func()) (Writer, error) {
		return webmwriter.New(path, webmwriter.VP9, webmwriter.WithKeyframeRequest(keyframe))
	}},
	{MIME: "video/h264", Container: MP4, New: func(path string, keyframe func()) (Writer, error) {
		return mp4writer.New(path, mp4writer.WithKeyframeRequest(keyframe))
	}},
}

// G711Writer is wavwriter's G.711 writer fed with RTP packets: the WAV
// package knows no packet type, so that the recordings' offline tools
// (composition) read and write WAV without linking RTP.
type G711Writer struct{ *wavwriter.G711Writer }

// WriteRTP writes the packet's payload at its RTP timestamp. It allocates
// nothing.
func (w G711Writer) WriteRTP(p *rtp.Packet) error {
	if p == nil {
		return nil
	}
	return w.Write(p.SSRC, p.Timestamp, p.Payload)
}

func newG711(path string, law wavwriter.Format) (Writer, error) {
	w, err := wavwriter.NewG711(path, law)
	if err != nil {
		return nil, err
	}
	return G711Writer{w}, nil
}

// ForCodec returns the row of an RTP codec MIME type (compared
// case-insensitively: GStreamer sends "audio/OPUS"), or nil when the
// recorder has no writer for it.
func ForCodec(mime string) *Codec {
	for i := range codecs {
		if strings.EqualFold(codecs[i].MIME, mime) {
			return &codecs[i]
		}
	}
	return nil
}

// ContentType returns the MIME type of a recording's file by its name: its
// container's, application/json for the manifest and the transcripts,
// application/octet-stream otherwise (the parts of a growing file).
func ContentType(name string) string {
	if c := ForFile(name); c != nil {
		return c.ContentType
	}
	if strings.EqualFold(path.Ext(name), ".json") {
		return "application/json"
	}
	return "application/octet-stream"
}

// ForFile returns the container of a file by its extension (compared
// case-insensitively), or nil when it is not one the recorder writes.
func ForFile(name string) *Container {
	dot := strings.LastIndexByte(name, '.')
	if dot < 0 || strings.ContainsRune(name[dot:], '/') {
		return nil
	}
	for _, c := range containers {
		if strings.EqualFold(c.Ext, name[dot+1:]) {
			return c
		}
	}
	return nil
}
