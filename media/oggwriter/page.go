package oggwriter

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// Ogg page layout (RFC 3533 §6), little-endian:
//
//	off size field
//	  0  4   capture pattern "OggS"
//	  4  1   stream structure version 0
//	  5  1   header type: 0x01 continued packet, 0x02 first page (BOS), 0x04 last page (EOS)
//	  6  8   granule position: for Opus, PCM samples at 48 kHz decodable up to the
//	         last packet that ends on this page, pre-skip included (RFC 7845 §4)
//	 14  4   bitstream serial number
//	 18  4   page sequence number
//	 22  4   CRC-32 (polynomial 0x04c11db7, init 0, no reflection, no final xor)
//	         over the whole page with this field zeroed
//	 26  1   number of segments n
//	 27  n   lacing values: a packet is a run of 255s ended by a value < 255
const (
	pageHeaderSize = 27
	maxSegments    = 255
	maxPageBody    = maxSegments * 255

	flagContinued = 0x01
	flagBOS       = 0x02
	flagEOS       = 0x04
)

// Errors returned by this package.
var (
	ErrPage   = errors.New("oggwriter: invalid or incomplete Ogg page")
	ErrClosed = errors.New("oggwriter: writer is closed")
)

// crcTable is the table of the Ogg CRC-32 (RFC 3533 §6: generator 0x04c11db7,
// most significant bit first).
var crcTable = func() (t [256]uint32) {
	for i := range t {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04c11db7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return t
}()

func crc(c uint32, b []byte) uint32 {
	for _, v := range b {
		c = c<<8 ^ crcTable[byte(c>>24)^v]
	}
	return c
}

// pageInfo is the header of a parsed page.
type pageInfo struct {
	flags    byte
	granule  uint64
	serial   uint32
	sequence uint32
	lacing   []byte // the segment table
	body     []byte
}

// parsePage parses the page at the start of b, checking its CRC, and returns
// its total length.
func parsePage(b []byte) (int, pageInfo, error) {
	var p pageInfo
	if len(b) < pageHeaderSize || string(b[:4]) != "OggS" || b[4] != 0 {
		return 0, p, ErrPage
	}
	n := int(b[26])
	if len(b) < pageHeaderSize+n {
		return 0, p, ErrPage
	}
	p.lacing = b[pageHeaderSize : pageHeaderSize+n]
	size := pageHeaderSize + n
	for _, l := range p.lacing {
		size += int(l)
	}
	if len(b) < size {
		return 0, p, ErrPage
	}
	c := crc(0, b[:22])
	c = crc(c, []byte{0, 0, 0, 0})
	if crc(c, b[26:size]) != binary.LittleEndian.Uint32(b[22:]) {
		return 0, p, fmt.Errorf("%w: CRC mismatch", ErrPage)
	}
	p.flags = b[5]
	p.granule = binary.LittleEndian.Uint64(b[6:])
	p.serial = binary.LittleEndian.Uint32(b[14:])
	p.sequence = binary.LittleEndian.Uint32(b[18:])
	p.body = b[pageHeaderSize+n : size]
	return size, p, nil
}

// validPrefix returns the length of the longest prefix of r made of whole
// pages whose CRCs check.
func validPrefix(r io.Reader) int64 {
	buf := make([]byte, pageHeaderSize+maxSegments+maxPageBody)
	var off int64
	for {
		if _, err := io.ReadFull(r, buf[:pageHeaderSize]); err != nil {
			return off
		}
		n := int(buf[26])
		if _, err := io.ReadFull(r, buf[pageHeaderSize:pageHeaderSize+n]); err != nil {
			return off
		}
		size := pageHeaderSize + n
		for _, l := range buf[pageHeaderSize:size] {
			size += int(l)
		}
		if _, err := io.ReadFull(r, buf[pageHeaderSize+n:size]); err != nil {
			return off
		}
		if _, _, err := parsePage(buf[:size]); err != nil {
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
