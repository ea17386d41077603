package wavwriter

// Cutter finds where the parts of a growing WAV file may end: on a whole
// sample frame after the header. Its Header comes from the file's first
// bytes (the first Cut, at offset 0) or is set by the caller. It is used by
// one goroutine.
type Cutter struct {
	Header Header
}

// Cut returns how many bytes of b, the bytes of the file from offset off
// on, end on a whole sample frame after the header (0: none yet, e.g. the
// header is not written yet). Bytes of the header itself count as whole.
func (c *Cutter) Cut(b []byte, off int64) int {
	if off == 0 {
		h, err := ParseHeader(b)
		if err != nil {
			return 0 // header not written yet
		}
		c.Header = h
	}
	align := int64(max(c.Header.BlockAlign, 1))
	start := max(off, c.Header.DataOffset)
	end := off + int64(len(b))
	if end > start {
		end = start + (end-start)/align*align
	}
	return int(end - off)
}
