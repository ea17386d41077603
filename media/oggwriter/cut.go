package oggwriter

import "github.com/rtcrec/recorder/media/ogg"

// Cut returns the length of the whole Ogg pages at the start of b (RFC 3533
// §6: a 27-byte header, the segment table, the segments): where a part of a
// growing Ogg file, read from a page boundary on, may end. It checks the
// page structure only, not the CRC: the bytes are this package's own, read
// back from the file.
func Cut(b []byte) int {
	n := 0
	for {
		size := ogg.Size(b[n:])
		if size == 0 || len(b)-n < size {
			return n
		}
		n += size
	}
}
