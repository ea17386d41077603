package oggwriter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/rtcrec/recorder/media/ogg"
)

// Silencing audio already written (a blackout decided after the fact).
//
// SilenceFrom replaces every Opus packet that ends after a granule position
// by a packet of exactly the same length and duration that decodes to
// digital silence, and rewrites the CRC of each page it changed: the file
// keeps its size, its page boundaries and every granule position, so
// nothing after the edit shifts and a byte range cut earlier (an uploaded
// part) is replaced by a byte range of the same length. A packet that
// overlaps the granule is silenced whole, so the silence begins at most one
// packet early.
//
// The silent packet is CELT-only, fullband, mono: code 0 when the packet is
// three bytes long (the silenceFrames), otherwise code 3 (RFC 6716 §3.2.5)
// with M frames of the two bytes 0xFF 0xFE (CELT's silence flag) and the
// rest as padding. A packet shorter than that (one or two bytes: DTX, which
// decoders treat as loss and conceal with what precedes it, silence by then)
// is left as it is; so is one whose duration CELT frames cannot express.

// errShort reports a packet too short to hold a silent packet of its length.
var errShort = errors.New("oggwriter: packet too short to silence in place")

// silencePacket overwrites p with an Opus packet of len(p) bytes and the
// given duration (samples at 48 kHz) that decodes to silence.
func silencePacket(p []byte, samples uint32) error {
	// The largest CELT frame (20, 10, 5, 2.5 ms: configurations 31…28)
	// that divides the duration, at most 48 frames (RFC 6716 §3.2.5).
	var toc byte
	var m int
	for i, f := range []uint32{960, 480, 240, 120} {
		if samples%f == 0 && samples/f <= 48 {
			toc, m = byte(31-i)<<3, int(samples/f)
			break
		}
	}
	if m == 0 {
		return fmt.Errorf("oggwriter: no CELT framing for %d samples", samples)
	}
	if m == 1 && len(p) == 3 {
		p[0], p[1], p[2] = toc, 0xFF, 0xFE
		return nil
	}
	// Code 3: TOC, frame count byte, padding length bytes, M frames, padding.
	rest := len(p) - 2 - 2*m // bytes for the padding length and the padding
	if rest < 0 {
		return errShort
	}
	p[0] = toc | 3
	p[1] = byte(m)
	i := 2
	if rest > 0 {
		p[1] |= 0x40 // padding follows
		// k length bytes: k-1 of 255 (254 bytes each) and a last one of v,
		// the padding being 254(k-1)+v bytes; k+254(k-1)+v = rest.
		k := 1
		for rest-k-254*(k-1) > 254 {
			k++
		}
		for range k - 1 {
			p[i] = 255
			i++
		}
		p[i] = byte(rest - k - 254*(k-1))
		i++
	}
	for range m {
		p[i], p[i+1] = 0xFF, 0xFE
		i += 2
	}
	clear(p[i:])
	return nil
}

// silenceBody silences, in the packets of one page (its segment table and
// body), those that end after granule from; end is the granule position at
// the end of the page's last packet. It reports whether it changed a byte. A
// packet continued from the previous page or onto the next is left alone
// (this writer never splits packets). Header packets (granule 0) are never
// touched.
func silenceBody(lacing, body []byte, end, from uint64) (changed bool) {
	if len(lacing) == 0 || lacing[len(lacing)-1] == 255 || end == 0 {
		return false
	}
	// Packet boundaries, then their durations from the last one backwards.
	type pkt struct{ off, n int }
	var pkts [ogg.MaxSegments]pkt
	np, off, n := 0, 0, 0
	for _, l := range lacing {
		n += int(l)
		if l < 255 {
			pkts[np] = pkt{off, n}
			np++
			off, n = off+n, 0
		}
	}
	if off > len(body) {
		return false
	}
	for i := np - 1; i >= 0 && end > from; i-- {
		p := body[pkts[i].off : pkts[i].off+pkts[i].n]
		samples, err := packetSamples(p)
		if err != nil {
			return changed
		}
		if silencePacket(p, samples) == nil {
			changed = true
		}
		end -= min(end, uint64(samples))
	}
	return changed
}

// SilenceFrom silences, in the Ogg/Opus stream f of size bytes (a file this
// package wrote), every packet that ends after granule position from (see
// the rules above), rewriting each changed page in place with its CRC. It
// returns the offset of the first byte it changed, or size when it changed
// nothing. A stream that is not whole Ogg pages up to size is an error
// wrapping ErrPage; pages before the first bad one may have been changed.
func SilenceFrom(f interface {
	io.ReaderAt
	io.WriterAt
}, size int64, from uint64) (first int64, err error) {
	first = size
	buf := make([]byte, ogg.HeaderSize+ogg.MaxSegments+ogg.MaxPageBody)
	for off := int64(0); off < size; {
		h := buf[:ogg.HeaderSize]
		if size-off < ogg.HeaderSize {
			return first, fmt.Errorf("%w: %d bytes left at offset %d", ErrPage, size-off, off)
		}
		if _, err := f.ReadAt(h, off); err != nil {
			return first, fmt.Errorf("oggwriter: silence: %w", err)
		}
		segs := int64(h[26])
		if size-off < ogg.HeaderSize+segs {
			return first, fmt.Errorf("%w: truncated segment table at offset %d", ErrPage, off)
		}
		if _, err := f.ReadAt(buf[ogg.HeaderSize:ogg.HeaderSize+segs], off+ogg.HeaderSize); err != nil {
			return first, fmt.Errorf("oggwriter: silence: %w", err)
		}
		total := ogg.HeaderSize + segs
		for _, l := range buf[ogg.HeaderSize : ogg.HeaderSize+segs] {
			total += int64(l)
		}
		if size-off < total {
			return first, fmt.Errorf("%w: truncated page at offset %d", ErrPage, off)
		}
		granule := binary.LittleEndian.Uint64(h[6:])
		if granule > from && granule != ^uint64(0) {
			page := buf[:total]
			if _, err := f.ReadAt(page[ogg.HeaderSize+segs:], off+ogg.HeaderSize+segs); err != nil {
				return first, fmt.Errorf("oggwriter: silence: %w", err)
			}
			if _, _, err := ogg.ParsePage(page); err != nil {
				return first, fmt.Errorf("%w at offset %d", err, off)
			}
			if silenceBody(page[ogg.HeaderSize:ogg.HeaderSize+segs], page[ogg.HeaderSize+segs:], granule, from) {
				binary.LittleEndian.PutUint32(page[22:], 0)
				binary.LittleEndian.PutUint32(page[22:], ogg.CRC(0, page))
				if _, err := f.WriteAt(page, off); err != nil {
					return first, fmt.Errorf("oggwriter: silence: %w", err)
				}
				first = min(first, off)
			}
		}
		off += total
	}
	return first, nil
}

// SilenceFrom silences everything the writer wrote from RTP timestamp ts on
// (a timestamp of the current timeline anchor; see SilenceFrom for the
// rules): the pending page in memory and the pages already in the file. It
// returns the offset of the first byte it changed in the file (the file's
// length when it changed nothing there). It needs the file New opened, and
// like every method it must not run concurrently with another.
func (w *Writer) SilenceFrom(ts uint32) (int64, error) {
	return w.SilenceFromPos(w.PosOf(ts))
}

// SilenceFromPos is SilenceFrom from granule position from (see PosOf).
func (w *Writer) SilenceFromPos(from uint64) (int64, error) {
	if w.closed {
		return 0, ErrClosed
	}
	if w.file == nil {
		return 0, errors.New("oggwriter: silence: the writer has no file to edit")
	}
	silenceBody(w.lacing, w.body(), w.granule, from)
	size, err := w.file.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, fmt.Errorf("oggwriter: silence: %w", err)
	}
	return SilenceFrom(w.file, size, from)
}
