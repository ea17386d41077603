package wavwriter

import (
	"errors"
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
		return 0, errors.New("wavwriter: silence: the output cannot be written at an offset")
	}
	lo, hi := from*int64(w.align), to*int64(w.align) // byte offsets in the data
	v := byte(0)
	if w.format != PCM {
		v = w.format.Silence()
	}
	// The buffered part.
	if hi > w.written {
		b := w.buf[max(lo-w.written, 0) : hi-w.written]
		for i := range b {
			b[i] = v
		}
		hi = w.written
	}
	if lo >= hi {
		return fileEnd, nil
	}
	// The part in the file, a chunk at a time.
	chunk := make([]byte, min(hi-lo, 1<<16))
	for i := range chunk {
		chunk[i] = v
	}
	for off := lo; off < hi; off += int64(len(chunk)) {
		n := min(int64(len(chunk)), hi-off)
		if _, err := w.at.WriteAt(chunk[:n], data+off); err != nil {
			w.err = fmt.Errorf("wavwriter: silence: %w", err)
			return 0, w.err
		}
	}
	return data + lo, nil
}

// SilenceFrom silences everything the writer wrote from RTP timestamp ts on
// (a timestamp of the current timeline anchor; see Writer.Silence). It
// returns the file offset of the first byte it changed.
func (g *G711Writer) SilenceFrom(ts uint32) (int64, error) {
	back := g.tl.Position() - g.tl.PosOf(ts)
	end := g.w.Frames()
	return g.w.Silence(end-min(back, end), end)
}
