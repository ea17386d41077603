package oggwriter

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/rtcrec/recorder/media/ogg"
)

// PosOf returns the granule position of RTP timestamp ts (a timestamp of the
// current timeline anchor; one beyond the end written is the end): as far
// before the granule written last as ts is before the timeline's end
// (granules and timeline ticks are both 48 kHz, and a gap's remainder below
// 2.5 ms, which Opus cannot fill, makes the two differ from the start). It is
// where Packets finds the packet of ts.
func (w *Writer) PosOf(ts uint32) uint64 {
	back := uint64(w.tl.Position() - w.tl.PosOf(ts))
	return w.granule - min(back, w.granule)
}

// Packets calls fn, in stream order, with every audio packet of the
// Ogg/Opus stream r of size bytes (whole pages, as this package writes them:
// the two header pages first, no packet continued across pages) whose span
// of granule positions overlaps [from, to): its first granule position and
// its bytes (valid until fn returns). Only the headers of the pages before
// the range are read. A stream that is not whole pages is an error wrapping
// ErrPage.
func Packets(r io.ReaderAt, size int64, from, to uint64, fn func(start uint64, packet []byte) error) error {
	buf := make([]byte, ogg.HeaderSize+ogg.MaxSegments+ogg.MaxPageBody)
	var prev uint64 // granule position at the end of the previous page
	for off, page := int64(0), 0; off < size; page++ {
		if size-off < ogg.HeaderSize {
			return fmt.Errorf("%w: %d bytes left at offset %d", ErrPage, size-off, off)
		}
		h := buf[:ogg.HeaderSize]
		if _, err := r.ReadAt(h, off); err != nil {
			return fmt.Errorf("oggwriter: read: %w", err)
		}
		if string(h[:4]) != "OggS" {
			return fmt.Errorf("%w at offset %d", ErrPage, off)
		}
		segs := int64(h[26])
		if size-off < ogg.HeaderSize+segs {
			return fmt.Errorf("%w: truncated segment table at offset %d", ErrPage, off)
		}
		lacing := buf[ogg.HeaderSize : ogg.HeaderSize+segs]
		if _, err := r.ReadAt(lacing, off+ogg.HeaderSize); err != nil {
			return fmt.Errorf("oggwriter: read: %w", err)
		}
		total := ogg.HeaderSize + segs
		for _, l := range lacing {
			total += int64(l)
		}
		if size-off < total {
			return fmt.Errorf("%w: truncated page at offset %d", ErrPage, off)
		}
		granule := binary.LittleEndian.Uint64(h[6:])
		if prev >= to {
			return nil
		}
		if page >= 2 && granule > from && granule != ^uint64(0) {
			body := buf[ogg.HeaderSize+segs : total]
			if _, err := r.ReadAt(body, off+ogg.HeaderSize+segs); err != nil {
				return fmt.Errorf("oggwriter: read: %w", err)
			}
			start, p := prev, 0
			for i := 0; i < len(lacing); {
				n := 0
				for ; i < len(lacing); i++ {
					n += int(lacing[i])
					if lacing[i] < 255 {
						i++
						break
					}
				}
				pkt := body[p : p+n]
				p += n
				d, err := packetSamples(pkt)
				if err != nil {
					return fmt.Errorf("%w at offset %d: %v", ErrPage, off, err)
				}
				if start+uint64(d) > from && start < to {
					if err := fn(start, pkt); err != nil {
						return err
					}
				}
				start += uint64(d)
			}
		}
		if page >= 2 && granule != ^uint64(0) {
			prev = granule
		}
		off += total
	}
	return nil
}
