package loadtest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/rtcrec/recorder/media/ogg"
)

// oggPackets returns the packets of an Ogg file (every logical stream
// together, RFC 3533: a packet ends at a lacing value below 255) and the
// last page's granule position.
func oggPackets(path string) (packets [][]byte, granule uint64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	packets, granule, err = parseOgg(b)
	if err != nil {
		err = fmt.Errorf("%s: %w", path, err)
	}
	return packets, granule, err
}

// parseOgg is oggPackets on a file's bytes.
func parseOgg(b []byte) (packets [][]byte, granule uint64, err error) {
	granule, err = ogg.ReadPackets(bytes.NewReader(b), func(p []byte) error {
		packets = append(packets, bytes.Clone(p))
		return nil
	})
	return packets, granule, err
}

// opusFiller reports whether p is one of the CELT silence packets the
// recorder's Ogg writer puts where packets are missing (media/oggwriter).
func opusFiller(p []byte) bool {
	return len(p) == 3 && p[1] == 0xFF && p[2] == 0xFE && p[0]&0x07 == 0 && p[0]>>3 >= 28
}

// opusTrackCheck reads a track written by the recorder: the audio packets
// (after OpusHead and OpusTags), the filler packets among them (missing
// audio), and the duration its granule gives.
func opusTrackCheck(path string) (audio, filler int, d time.Duration, err error) {
	pkts, granule, err := oggPackets(path)
	if err != nil {
		return 0, 0, 0, err
	}
	for i, p := range pkts {
		if i < 2 { // OpusHead, OpusTags
			continue
		}
		audio++
		if opusFiller(p) {
			filler++
		}
	}
	return audio, filler, time.Duration(granule) * time.Second / 48000, nil
}

// wavCheck returns a WAV file's duration and its RMS level (16-bit PCM).
func wavCheck(path string) (time.Duration, float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	d, rms, err := parseWAV(b)
	if err != nil {
		err = fmt.Errorf("%s: %w", path, err)
	}
	return d, rms, err
}

// parseWAV is wavCheck on a file's bytes.
func parseWAV(b []byte) (time.Duration, float64, error) {
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return 0, 0, errors.New("not a WAV file")
	}
	var rate, channels int
	for p := b[12:]; len(p) >= 8; {
		id, size := string(p[:4]), int(binary.LittleEndian.Uint32(p[4:]))
		p = p[8:]
		if size > len(p) {
			size = len(p)
		}
		switch id {
		case "fmt ":
			if size < 16 {
				return 0, 0, errors.New("short fmt chunk")
			}
			channels = int(binary.LittleEndian.Uint16(p[2:]))
			rate = int(binary.LittleEndian.Uint32(p[4:]))
		case "data":
			if rate == 0 || channels == 0 {
				return 0, 0, errors.New("data before fmt")
			}
			n := size / 2
			sum := 0.0
			for i := 0; i < n; i++ {
				v := float64(int16(binary.LittleEndian.Uint16(p[2*i:])))
				sum += v * v
			}
			rms := 0.0
			if n > 0 {
				rms = math.Sqrt(sum / float64(n))
			}
			return time.Duration(n/channels) * time.Second / time.Duration(rate), rms, nil
		}
		p = p[size+size%2:]
	}
	return 0, 0, errors.New("no data chunk")
}

// mjrCheck reads a Janus recording (.mjr, version 2: "MJR00002", a JSON
// header, then frames of "MEET", a 32-bit time, a 16-bit length and an RTP
// packet): the RTP packets, the sequence numbers missing between them, and
// the RTP time spanned.
func mjrCheck(path string) (packets int, missing uint64, span time.Duration, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, 0, err
	}
	packets, missing, span, err = parseMJR(b)
	if err != nil {
		err = fmt.Errorf("%s: %w", path, err)
	}
	return packets, missing, span, err
}

// parseMJR is mjrCheck on a file's bytes.
func parseMJR(b []byte) (packets int, missing uint64, span time.Duration, err error) {
	if len(b) < 10 || string(b[:8]) != "MJR00002" {
		return 0, 0, 0, errors.New("not an MJR00002 file")
	}
	hl := int(binary.BigEndian.Uint16(b[8:]))
	if len(b) < 10+hl {
		return 0, 0, 0, errors.New("truncated header")
	}
	p := b[10+hl:]
	var first, last uint32
	var prevSeq uint16
	for len(p) > 0 {
		if len(p) < 10 {
			break // a frame header cut by the stop
		}
		if string(p[:4]) != "MEET" {
			return packets, missing, span, fmt.Errorf("%w at byte %d of %d: % x", errBadFrame, len(b)-len(p), len(b), p[:min(len(p), 16)])
		}
		n := int(binary.BigEndian.Uint16(p[8:]))
		if len(p) < 10+n {
			break // the last frame may be cut by the stop
		}
		pkt := p[10 : 10+n]
		p = p[10+n:]
		if n < 12 || pkt[0]>>6 != 2 {
			continue // not RTP (Janus writes an info frame first in some versions)
		}
		seq := binary.BigEndian.Uint16(pkt[2:])
		ts := binary.BigEndian.Uint32(pkt[4:])
		if packets == 0 {
			first = ts
		} else if d := seq - prevSeq; d > 1 && d < 1000 {
			missing += uint64(d - 1)
		}
		prevSeq, last = seq, ts
		packets++
	}
	return packets, missing, time.Duration(last-first) * time.Second / 48000, nil
}

var errBadFrame = errors.New("bad frame")
