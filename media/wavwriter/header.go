package wavwriter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// The RIFF/WAVE layout written here (Microsoft "Multimedia Programming
// Interface and Data Specifications 1.0", RIFF chunks; little-endian; every
// chunk is an 8-byte header "id" + uint32 size, then size bytes, then one pad
// byte when size is odd):
//
//	off size field
//	  0  4   "RIFF"
//	  4  4   RIFF size = file size - 8
//	  8  4   "WAVE"
//	 12  4   "fmt "
//	 16  4   fmt chunk size: 16 (PCM, WAVEFORMAT) or 18 (G.711, WAVEFORMATEX)
//	 20  2   wFormatTag: 1 PCM, 6 A-law, 7 µ-law
//	 22  2   nChannels
//	 24  4   nSamplesPerSec
//	 28  4   nAvgBytesPerSec = rate * blockAlign
//	 32  2   nBlockAlign = channels * bytes per sample
//	 34  2   wBitsPerSample: 16 (PCM) or 8 (G.711)
//	PCM:
//	 36  4   "data", 40 4 data size, 44 samples...
//	G.711 (non-PCM formats need cbSize and a fact chunk):
//	 36  2   cbSize = 0
//	 38  4   "fact", 42 4 fact size = 4, 46 4 dwSampleLength (frames per channel)
//	 50  4   "data", 54 4 data size, 58 samples...
const (
	pcmHeaderSize  = 44
	g711HeaderSize = 58
	maxHeaderSize  = g711HeaderSize

	// maxDataSize keeps the RIFF size (data + header + pad - 8) within 32 bits.
	maxDataSize = 1<<32 - 1 - maxHeaderSize
)

// Format is a WAVE format tag (wFormatTag) supported by this package.
type Format uint16

// Supported formats.
const (
	PCM   Format = 1 // 16-bit signed little-endian linear PCM
	ALaw  Format = 6 // WAVE_FORMAT_ALAW: 8-bit G.711 A-law
	MuLaw Format = 7 // WAVE_FORMAT_MULAW: 8-bit G.711 µ-law
)

// String returns the format's name.
func (f Format) String() string {
	switch f {
	case PCM:
		return "PCM"
	case ALaw:
		return "A-law"
	case MuLaw:
		return "µ-law"
	}
	return fmt.Sprintf("Format(%d)", uint16(f))
}

func (f Format) bytesPerSample() int {
	if f == PCM {
		return 2
	}
	return 1
}

func (f Format) headerSize() int {
	if f == PCM {
		return pcmHeaderSize
	}
	return g711HeaderSize
}

// Errors returned by this package.
var (
	ErrHeader   = errors.New("wavwriter: not a RIFF/WAVE file this package can read")
	ErrFormat   = errors.New("wavwriter: operation does not match the file's format")
	ErrTooLarge = errors.New("wavwriter: data would exceed the 4 GiB RIFF limit")
	ErrClosed   = errors.New("wavwriter: writer is closed")
)

// Header describes a RIFF/WAVE file's format and where its samples are.
type Header struct {
	Format        Format
	Channels      int
	SampleRate    int
	BitsPerSample int
	BlockAlign    int
	// DataOffset is the file offset of the first sample; DataSize is the
	// size the data chunk header declares.
	DataOffset int64
	DataSize   uint32
	// FactOffset is the file offset of the fact chunk's dwSampleLength, 0
	// when the file has no fact chunk.
	FactOffset int64
}

// putHeader encodes the header of a file with dataSize bytes of samples into
// b, which must hold f.headerSize() bytes, and returns the encoded bytes.
func putHeader(b []byte, f Format, channels, rate int, dataSize uint32) []byte {
	le := binary.LittleEndian
	hs := f.headerSize()
	b = b[:hs]
	blockAlign := channels * f.bytesPerSample()
	riff := uint32(hs-8) + dataSize
	if dataSize == ^uint32(0) { // streaming: size unknown
		riff = dataSize
	} else {
		riff += dataSize & 1 // pad byte
	}
	copy(b[0:], "RIFF")
	le.PutUint32(b[4:], riff)
	copy(b[8:], "WAVEfmt ")
	fmtSize := uint32(16)
	if f != PCM {
		fmtSize = 18
	}
	le.PutUint32(b[16:], fmtSize)
	le.PutUint16(b[20:], uint16(f))
	le.PutUint16(b[22:], uint16(channels))
	le.PutUint32(b[24:], uint32(rate))
	le.PutUint32(b[28:], uint32(rate*blockAlign))
	le.PutUint16(b[32:], uint16(blockAlign))
	le.PutUint16(b[34:], uint16(8*f.bytesPerSample()))
	off := 36
	if f != PCM {
		le.PutUint16(b[36:], 0) // cbSize
		copy(b[38:], "fact")
		le.PutUint32(b[42:], 4)
		le.PutUint32(b[46:], dataSize/uint32(blockAlign))
		off = 50
	}
	copy(b[off:], "data")
	le.PutUint32(b[off+4:], dataSize)
	return b
}

// ParseHeader parses the chunks of a RIFF/WAVE file up to the start of its
// data chunk. b holds the beginning of the file; a data chunk that starts
// beyond b is an error.
func ParseHeader(b []byte) (Header, error) {
	le := binary.LittleEndian
	var h Header
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return h, ErrHeader
	}
	haveFmt := false
	for off := int64(12); off+8 <= int64(len(b)); {
		id, size := string(b[off:off+4]), le.Uint32(b[off+4:])
		body := off + 8
		switch id {
		case "fmt ":
			if size < 16 || body+16 > int64(len(b)) {
				return h, fmt.Errorf("%w: short fmt chunk", ErrHeader)
			}
			c := b[body:]
			h.Format = Format(le.Uint16(c[0:]))
			h.Channels = int(le.Uint16(c[2:]))
			h.SampleRate = int(le.Uint32(c[4:]))
			h.BlockAlign = int(le.Uint16(c[12:]))
			h.BitsPerSample = int(le.Uint16(c[14:]))
			if h.Channels == 0 || h.BlockAlign == 0 {
				return h, fmt.Errorf("%w: zero channels or block align", ErrHeader)
			}
			haveFmt = true
		case "fact":
			if size >= 4 {
				h.FactOffset = body
			}
		case "data":
			if !haveFmt {
				return h, fmt.Errorf("%w: data chunk before fmt chunk", ErrHeader)
			}
			h.DataOffset = body
			h.DataSize = size
			return h, nil
		}
		off = body + int64(size) + int64(size&1)
	}
	return h, fmt.Errorf("%w: no data chunk in the first %d bytes", ErrHeader, len(b))
}

// Repair fixes the header of a WAV file left behind by a crash: it sets the
// data size (and the fact chunk's sample count) from the file's length,
// truncates a trailing partial sample frame, and fixes the RIFF size. It
// assumes the data chunk is the file's last chunk, as in every file this
// package writes. A file whose header is already consistent is left as is.
func Repair(path string) (err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("wavwriter: repair: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("wavwriter: repair %s: %w", path, cerr)
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("wavwriter: repair: %w", err)
	}
	if err := repair(f, fi.Size()); err != nil {
		return fmt.Errorf("wavwriter: repair %s: %w", path, err)
	}
	return nil
}

// repairFile is what Repair needs of an *os.File.
type repairFile interface {
	io.ReaderAt
	io.WriterAt
	Truncate(size int64) error
}

func repair(f repairFile, size int64) error {
	b := make([]byte, min(size, 4096))
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	h, err := ParseHeader(b)
	if err != nil {
		return err
	}
	avail := size - h.DataOffset
	if avail < 0 {
		return fmt.Errorf("%w: data chunk starts beyond the end of the file", ErrHeader)
	}
	declared := int64(h.DataSize)
	if declared%int64(h.BlockAlign) == 0 && (avail == declared || avail == declared+declared&1) {
		return nil // consistent: closed cleanly
	}
	data := min(avail, int64(maxDataSize))
	data -= data % int64(h.BlockAlign)
	newSize := h.DataOffset + data + data&1
	if newSize != size {
		if err := f.Truncate(newSize); err != nil {
			return err
		}
	}
	if data&1 == 1 { // the pad byte after an odd-sized chunk
		if _, err := f.WriteAt([]byte{0}, newSize-1); err != nil {
			return err
		}
	}
	le := binary.LittleEndian
	var u [4]byte
	put := func(off int64, v uint32) error {
		le.PutUint32(u[:], v)
		_, err := f.WriteAt(u[:], off)
		return err
	}
	if err := put(4, uint32(newSize-8)); err != nil {
		return err
	}
	if err := put(h.DataOffset-4, uint32(data)); err != nil {
		return err
	}
	if h.FactOffset > 0 {
		return put(h.FactOffset, uint32(data/int64(h.BlockAlign)))
	}
	return nil
}
