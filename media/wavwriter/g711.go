package wavwriter

import (
	"fmt"
	"io"
	"time"

	"github.com/rtcrec/recorder/media/internal/rtptime"
)

// g711Rate is the RTP clock and sample rate of PCMU and PCMA (RFC 3551 §4.5.14).
const g711Rate = 8000

// Silence returns the byte that encodes a zero sample in the G.711 format f:
// 0xFF in µ-law, 0xD5 in A-law (ITU-T G.711, even bits inverted).
func (f Format) Silence() byte {
	if f == ALaw {
		return 0xD5
	}
	return 0xFF
}

// G711Writer writes the payloads of a PCMU or PCMA RTP stream to a WAV file
// in the matching G.711 format, without transcoding. The file's duration
// follows RTP time: gaps (loss, DTX, intervals the caller did not write) are
// filled with the codec's silence byte, duplicates and late packets are
// dropped, and a timestamp jump beyond the maximum gap or a new SSRC
// continues the file after the wall-clock time that passed (WithClock). It
// is owned by one goroutine.
type G711Writer struct {
	w  *Writer
	tl rtptime.Timeline
}

// NewG711 creates the file at path for a PCMU (MuLaw) or PCMA (ALaw) stream,
// 8000 Hz mono unless WithChannels says otherwise.
func NewG711(path string, law Format, opts ...Option) (*G711Writer, error) {
	if law != MuLaw && law != ALaw {
		return nil, fmt.Errorf("%w: NewG711 needs MuLaw or ALaw, not %v", ErrFormat, law)
	}
	w, err := create(path, law, append(opts, WithSampleRate(g711Rate)))
	if err != nil {
		return nil, err
	}
	return newG711(w, opts), nil
}

// NewG711With writes a PCMU (MuLaw) or PCMA (ALaw) stream's WAV to out, as
// NewWith does for PCM.
func NewG711With(out io.Writer, law Format, opts ...Option) (*G711Writer, error) {
	if law != MuLaw && law != ALaw {
		return nil, fmt.Errorf("%w: NewG711With needs MuLaw or ALaw, not %v", ErrFormat, law)
	}
	c, err := newConfig(append(opts, WithSampleRate(g711Rate)))
	if err != nil {
		return nil, err
	}
	w, err := newWriter(out, law, c)
	if err != nil {
		return nil, err
	}
	return newG711(w, opts), nil
}

func newG711(w *Writer, opts []Option) *G711Writer {
	c, _ := newConfig(opts)
	g := &G711Writer{w: w}
	g.tl.MaxGap = uint32(c.maxGap / (time.Second / g711Rate))
	g.tl.Rate, g.tl.Now = g711Rate, c.now
	return g
}

// Write writes one RTP packet's payload, of the stream ssrc, at its place
// on the timeline given by its RTP timestamp (media/format feeds it from
// RTP packets; the package itself knows no packet type). It allocates
// nothing.
func (g *G711Writer) Write(ssrc, timestamp uint32, payload []byte) error {
	if len(payload) == 0 {
		return nil
	}
	n := len(payload) / g.w.chans
	gap, ok := g.tl.Place(ssrc, timestamp, uint32(n))
	if !ok {
		return nil
	}
	if gap > 0 {
		if err := g.w.fill(g.w.format.Silence(), int(gap)*g.w.chans); err != nil {
			return err
		}
	}
	return g.w.writeBytes(payload[:n*g.w.chans])
}

// Dropped returns the number of packets dropped as duplicates or late.
func (g *G711Writer) Dropped() uint64 { return g.tl.Dropped }

// Frames returns the number of samples per channel written so far.
func (g *G711Writer) Frames() int64 { return g.w.Frames() }

// Flush writes buffered samples and patches the header (see Writer.Flush).
func (g *G711Writer) Flush() error { return g.w.Flush() }

// Close finishes the file (see Writer.Close). It is idempotent.
func (g *G711Writer) Close() error { return g.w.Close() }
