package oggwriter

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/rtcrec/recorder/media/ogg"
)

// Errors returned by this package.
var (
	ErrPage   = ogg.ErrPage // a malformed page (media/ogg)
	ErrClosed = errors.New("oggwriter: writer is closed")
)

// validPrefix returns the length of the longest prefix of r made of whole
// pages whose CRCs check.
func validPrefix(r io.Reader) int64 {
	buf := make([]byte, ogg.HeaderSize+ogg.MaxSegments+ogg.MaxPageBody)
	var off int64
	for {
		if _, err := io.ReadFull(r, buf[:ogg.HeaderSize]); err != nil {
			return off
		}
		n := int(buf[26])
		if _, err := io.ReadFull(r, buf[ogg.HeaderSize:ogg.HeaderSize+n]); err != nil {
			return off
		}
		size := ogg.Size(buf[:ogg.HeaderSize+n])
		if size == 0 {
			return off
		}
		if _, err := io.ReadFull(r, buf[ogg.HeaderSize+n:size]); err != nil {
			return off
		}
		if _, _, err := ogg.ParsePage(buf[:size]); err != nil {
			return off
		}
		off += int64(size)
	}
}

// Repair truncates an Ogg file left behind by a crash after its last whole
// page whose CRC checks, so that players and tools read it cleanly. A file
// without a single valid page is an error wrapping ErrPage.
func Repair(path string) (err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("oggwriter: repair: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("oggwriter: repair: %w", cerr)
		}
	}()
	n := validPrefix(bufio.NewReaderSize(f, 1<<16))
	if n == 0 {
		return fmt.Errorf("oggwriter: repair %s: %w", path, ErrPage)
	}
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("oggwriter: repair: %w", err)
	}
	if n == fi.Size() {
		return nil
	}
	if err := f.Truncate(n); err != nil {
		return fmt.Errorf("oggwriter: repair: %w", err)
	}
	return nil
}
