package recorder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/rtcrec/recorder/media/oggwriter"
	"github.com/rtcrec/recorder/media/wavwriter"
)

// Crash recovery of track files. Every writer puts its buffered media on
// disk at least once per second (wavwriter, oggwriter pages, webmwriter
// blocks, mp4writer fragments), so a kill -9 loses at most about a second.
// At the next start recoverFiles (compose.go) repairs each file by its type:
//
//   - WAV (the mix, G.711 tracks): the RIFF and data sizes are rewritten from
//     the file length (wavwriter.Repair);
//   - Ogg/Opus: the file is cut after its last whole page (oggwriter.Repair);
//   - fragmented MP4: the file is cut after its last whole top-level box
//     (a half-written moof or mdat is dropped), see truncateMP4;
//   - WebM: kept as it is: an unknown-size Segment whose last Cluster has an
//     unknown size plays up to its last whole block in every player we
//     tried (ffprobe, Chromium); remuxing it needs ffmpeg, which a recorder
//     host may not have.

// repairTrack repairs a track file left by a crash; a missing file is not an error.
func repairTrack(path string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	switch filepath.Ext(path) {
	case ".wav":
		return wavwriter.Repair(path)
	case ".ogg":
		return oggwriter.Repair(path)
	case ".mp4":
		return truncateMP4(path)
	}
	return nil
}

// truncateMP4 cuts an ISO BMFF file (ISO/IEC 14496-12 §4.2: each box starts
// with a 32-bit big-endian size and a four-character type; size 1 means a
// 64-bit size follows) after its last whole top-level box.
func truncateMP4(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	end, err := wholeBoxes(f, st.Size())
	if err != nil {
		return fmt.Errorf("recorder: repair %s: %w", path, err)
	}
	if end == st.Size() {
		return nil
	}
	if err := f.Truncate(end); err != nil {
		return err
	}
	return f.Sync()
}

// wholeBoxes returns the length of the prefix of r (of size bytes) made of
// whole top-level boxes.
func wholeBoxes(r io.ReaderAt, size int64) (int64, error) {
	var off int64
	hdr := make([]byte, 16)
	for off+8 <= size {
		if _, err := r.ReadAt(hdr[:8], off); err != nil {
			return 0, err
		}
		n := int64(binary.BigEndian.Uint32(hdr))
		switch n {
		case 0: // to the end of the file: only whole if it is the last box; we cannot tell
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
	}
	return off, nil
}

// Local write faults. The mixer stops on its first failed write (the WAV
// writer writes once per second, so a full disk shows within a second);
// watchWrites then stops the recording at once with that error, and finish
// makes it FAILED with writeErrorCode's code. Nothing written is deleted: the
// files are kept, and uploaded as far as they go.

// watchWrites stops s when its mixer fails to write; it returns when s ends.
func (s *Session) watchWrites(med *sessionMedia) {
	select {
	case err := <-med.failed:
		s.log.Error("recording cannot write its files: stopping it", "err", err)
		s.requestStop(stopReason{err: err})
	case <-s.done:
	}
}

// writeErrorCode is the error code of a recording whose files could not be
// written: disk_full when the file system is full (or over quota), else
// write_failed.
func writeErrorCode(err error) ErrorCode {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return CodeDiskFull
	}
	return CodeWriteFailed
}
