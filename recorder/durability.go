package recorder

import (
	"errors"
	"io/fs"
	"os"
	"syscall"

	"github.com/rtcrec/recorder/media/format"
)

// repairTrack repairs a track file left by a crash (kill -9): every writer
// puts its buffered media on disk at least once per second, so at most
// about a second is lost, and at the next start recoverFiles (compose.go)
// repairs each file with its container's Repair (media/format: WAV sizes
// from the length, Ogg and MP4 cut after the last whole page or box, WebM
// kept as it is). A missing file is not an error.
func repairTrack(path string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if f := format.ForFile(path); f != nil {
		return f.Repair(path)
	}
	return nil
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
