package wavwriter

import (
	"fmt"
)

// Silencing audio already written (a blackout decided after the fact): the
// samples of a range of sample frames are overwritten in place with the
// format's silence (0 in PCM, Format.Silence in G.711), in the buffer and in
// the file, so the file keeps its length and nothing after the range shifts.

// Silence overwrites the sample frames [from, to) written so far (buffered
// ones included; a range beyond Frames is cut to it) with silence. It
// returns the file offset of the first byte it changed in the file, or the
// file's data end when only buffered samples changed (or none). It needs an
// output it can write at (a file), and like every method it must not run
// concurrently with another.
func (w *Writer) Silence(from, to int64) (int64, error) {
	v := byte(0)
	if w.format != PCM {
		v = w.format.Silence()
	}
	return w.edit("silence", from, to, func(b []byte, _ int64) {
		for i := range b {
			b[i] = v
		}
	})
}

// Overwrite replaces the sample frames written from frame from on with pcm
// (interleaved 16-bit samples of a PCM file; the part beyond Frames is
// dropped), in the buffer and in the file: a range of the mix re-mixed. It
// returns the file offset of the first byte it changed (see Silence).
func (w *Writer) Overwrite(from int64, pcm []int16) (int64, error) {
	if w.format != PCM || len(pcm)%w.chans != 0 {
		return 0, fmt.Errorf("%w: overwrite %d samples of %v with %d channels", ErrFormat, len(pcm), w.format, w.chans)
	}
	from = max(from, 0)
	return w.edit("overwrite", from, from+int64(len(pcm)/w.chans), func(b []byte, off int64) {
		// b holds the data bytes from offset off on; sample i of pcm is at
		// from·align + 2i.
		first := (off - from*int64(w.align)) / 2
		for i := 0; i+1 < len(b); i += 2 {
			s := pcm[first+int64(i/2)]
			b[i], b[i+1] = byte(s), byte(uint16(s)>>8)
		}
	})
}

// edit rewrites the bytes of the sample frames [from, to) (cut to Frames)
// with fill, which gets the bytes to set and their offset in the data, in
// the buffer and in the file a chunk at a time. It returns the file offset
// of the first byte it changed in the file, or the file's data end when
// only buffered samples changed (or none).
func (w *Writer) edit(op string, from, to int64, fill func(b []byte, off int64)) (int64, error) {
	if w.closed {
		return 0, ErrClosed
	}
	if w.err != nil {
		return 0, w.err
	}
	data := int64(w.format.headerSize())
	from = max(from, 0)
	to = min(to, w.Frames())
	fileEnd := data + w.written
	if from >= to {
		return fileEnd, nil
	}
	if w.at == nil {
		return 0, fmt.Errorf("wavwriter: %s: the output cannot be written at an offset", op)
	}
	lo, hi := from*int64(w.align), to*int64(w.align) // byte offsets in the data
	// The buffered part.
	if hi > w.written {
		b := max(lo-w.written, 0)
		fill(w.buf[b:hi-w.written], w.written+b)
		hi = w.written
	}
	if lo >= hi {
		return fileEnd, nil
	}
	// The part in the file, a chunk at a time.
	chunk := make([]byte, min(hi-lo, 1<<16))
	for off := lo; off < hi; off += int64(len(chunk)) {
		n := min(int64(len(chunk)), hi-off)
		fill(chunk[:n], off)
		if _, err := w.at.WriteAt(chunk[:n], data+off); err != nil {
			w.err = fmt.Errorf("wavwriter: %s: %w", op, err)
			return 0, w.err
		}
	}
	return data + lo, nil
}

// PosOf returns the sample frame of RTP timestamp ts (a timestamp of the
// current timeline anchor; one beyond the end written is the end): as far
// before the end as ts is before the timeline's end.
func (g *G711Writer) PosOf(ts uint32) int64 {
	back := g.tl.Position() - g.tl.PosOf(ts)
	end := g.w.Frames()
	return end - min(back, end)
}

// SilenceFrom silences everything the writer wrote from RTP timestamp ts on
// (a timestamp of the current timeline anchor; see Writer.Silence). It
// returns the file offset of the first byte it changed.
func (g *G711Writer) SilenceFrom(ts uint32) (int64, error) {
	return g.SilenceFromPos(g.PosOf(ts))
}

// SilenceFromPos silences everything from sample frame from on (see PosOf).
func (g *G711Writer) SilenceFromPos(from int64) (int64, error) {
	return g.w.Silence(from, g.w.Frames())
}
