package mp4writer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// walkBoxes reads the top-level boxes of r (size bytes) from the start (ISO/IEC
// 14496-12 §4.2: each box starts with a 32-bit big-endian size and a
// four-character type; size 1 means a 64-bit size follows, size 0 "to the end
// of the file") and calls box with the type and end of each whole one. It
// stops at the first box that is not whole (or whose size is 0: only whole if
// it is the last box, which we cannot tell) and returns the end of the last
// whole box.
func walkBoxes(r io.ReaderAt, size int64, box func(typ string, end int64)) (int64, error) {
	var off int64
	hdr := make([]byte, 16)
	for off+8 <= size {
		if _, err := r.ReadAt(hdr[:8], off); err != nil {
			return 0, err
		}
		n := int64(binary.BigEndian.Uint32(hdr))
		switch n {
		case 0:
			return off, nil
		case 1:
			if off+16 > size {
				return off, nil
			}
			if _, err := r.ReadAt(hdr[8:16], off+8); err != nil {
				return 0, err
			}
			n = int64(binary.BigEndian.Uint64(hdr[8:16]))
			if n < 16 {
				return off, nil
			}
		default:
			if n < 8 {
				return off, nil
			}
		}
		if off+n > size || off+n < off {
			return off, nil
		}
		off += n
		if box != nil {
			box(string(hdr[4:8]), off)
		}
	}
	return off, nil
}

// Cut returns the length of the whole top-level boxes at the start of b, the
// bytes of a growing file from a box boundary on, not ending with a moof
// whose mdat is not whole yet: where a part of the file may end.
func Cut(b []byte) int {
	var whole int64
	walkBoxes(bytes.NewReader(b), int64(len(b)), func(typ string, end int64) {
		if typ != "moof" {
			whole = end
		}
	})
	return int(whole)
}

// Repair cuts a fragmented MP4 file left behind by a crash after its last
// whole top-level box, so a half-written moof or mdat is dropped. A file
// made of whole boxes is left as is.
func Repair(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("mp4writer: repair: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("mp4writer: repair: %w", err)
	}
	end, err := walkBoxes(f, st.Size(), nil)
	if err != nil {
		return fmt.Errorf("mp4writer: repair %s: %w", path, err)
	}
	if end == st.Size() {
		return nil
	}
	if err := f.Truncate(end); err != nil {
		return fmt.Errorf("mp4writer: repair %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("mp4writer: repair %s: %w", path, err)
	}
	return nil
}
