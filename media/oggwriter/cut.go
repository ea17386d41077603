package oggwriter

// Cut returns the length of the whole Ogg pages at the start of b (RFC 3533
// §6: a 27-byte header, the segment table, the segments): where a part of a
// growing Ogg file, read from a page boundary on, may end. It checks the
// page structure only, not the CRC: the bytes are this package's own, read
// back from the file.
func Cut(b []byte) int {
	n := 0
	for len(b)-n >= pageHeaderSize && string(b[n:n+4]) == "OggS" {
		segs := int(b[n+26])
		if len(b)-n < pageHeaderSize+segs {
			break
		}
		size := pageHeaderSize + segs
		for _, l := range b[n+pageHeaderSize : n+pageHeaderSize+segs] {
			size += int(l)
		}
		if len(b)-n < size {
			break
		}
		n += size
	}
	return n
}
