package ogg_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/media/ogg"
	"github.com/rtcrec/recorder/media/oggwriter"
)

// page builds one page holding the given lacing values and body, with its
// CRC.
func page(flags byte, granule uint64, seq uint32, lacing, body []byte) []byte {
	h := make([]byte, ogg.HeaderSize)
	copy(h, "OggS")
	h[5] = flags
	binary.LittleEndian.PutUint64(h[6:], granule)
	binary.LittleEndian.PutUint32(h[18:], seq)
	h[26] = byte(len(lacing))
	p := append(append(h, lacing...), body...)
	binary.LittleEndian.PutUint32(p[22:], ogg.CRC(0, p))
	return p
}

func readAll(t *testing.T, b []byte) ([][]byte, uint64, error) {
	t.Helper()
	var pkts [][]byte
	g, err := ogg.ReadPackets(bytes.NewReader(b), func(p []byte) error {
		pkts = append(pkts, bytes.Clone(p))
		return nil
	})
	return pkts, g, err
}

// TestReadPackets_WhatTheWriterWrote: the packets of a file the writer made
// come back as written (OpusHead, OpusTags, then every payload, one of 600
// bytes), and the granule is the last page's: pre-skip and 50 packets of
// 960 samples.
func TestReadPackets_WhatTheWriterWrote(t *testing.T) {
	var buf bytes.Buffer
	w, err := oggwriter.NewWith(&buf, oggwriter.WithClock(nil))
	if err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	for i := range 50 {
		payload := []byte{0xF8, byte(i), 1, 2}
		if i == 7 {
			payload = append([]byte{0xF8}, bytes.Repeat([]byte{byte(i)}, 599)...) // three lacing values
		}
		want = append(want, payload)
		if err := w.WriteRTP(&rtp.Packet{Header: rtp.Header{Timestamp: uint32(960 * i)}, Payload: payload}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	pkts, granule, err := readAll(t, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(pkts) != 2+len(want) || !bytes.HasPrefix(pkts[0], []byte("OpusHead")) || !bytes.HasPrefix(pkts[1], []byte("OpusTags")) {
		t.Fatalf("%d packets, want OpusHead, OpusTags and %d", len(pkts), len(want))
	}
	for i, p := range pkts[2:] {
		if !bytes.Equal(p, want[i]) {
			t.Errorf("packet %d: %d bytes % x…, want %d bytes % x…", i, len(p), p[:4], len(want[i]), want[i][:4])
		}
	}
	preSkip := uint64(binary.LittleEndian.Uint16(pkts[0][10:]))
	if granule != preSkip+50*960 {
		t.Errorf("granule %d, want %d", granule, preSkip+50*960)
	}
}

// TestReadPackets_AcrossPages: a packet continued on the next page is one
// packet; a partial packet that the next page does not continue is dropped.
func TestReadPackets_AcrossPages(t *testing.T) {
	long := bytes.Repeat([]byte{0xAB}, 300)
	b := page(ogg.FlagBOS, 0, 0, []byte{3, 255}, append([]byte("abc"), long[:255]...))
	b = append(b, page(ogg.FlagContinued, 960, 1, []byte{45, 2}, append(long[255:], 'x', 'y'))...)
	b = append(b, page(0, 1920, 2, []byte{255}, long[:255])...) // dangling: the next page is no continuation
	b = append(b, page(ogg.FlagEOS, 2880, 3, []byte{1}, []byte{'z'})...)
	pkts, granule, err := readAll(t, b)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]byte{[]byte("abc"), long, []byte("xy"), []byte("z")}
	if len(pkts) != len(want) {
		t.Fatalf("%d packets, want %d", len(pkts), len(want))
	}
	for i := range want {
		if !bytes.Equal(pkts[i], want[i]) {
			t.Errorf("packet %d: %d bytes, want %d", i, len(pkts[i]), len(want[i]))
		}
	}
	if granule != 2880 {
		t.Errorf("granule %d, want 2880", granule)
	}
}

// TestReadPackets_BadPages: a truncated page, a wrong CRC and bytes that are
// no page are errors wrapping ErrPage; the packets before them were given.
func TestReadPackets_BadPages(t *testing.T) {
	good := page(ogg.FlagBOS, 0, 0, []byte{3}, []byte("abc"))
	bad := page(0, 960, 1, []byte{3}, []byte("def"))
	crc := bytes.Clone(bad)
	crc[len(crc)-1] ^= 1
	for name, b := range map[string][]byte{
		"truncated": append(bytes.Clone(good), bad[:len(bad)-1]...),
		"crc":       append(bytes.Clone(good), crc...),
		"not ogg":   append(bytes.Clone(good), []byte("RIFF0000WAVEfmt 0000000000000000")...),
	} {
		pkts, _, err := readAll(t, b)
		if !errors.Is(err, ogg.ErrPage) {
			t.Errorf("%s: error %v, want ErrPage", name, err)
		}
		if len(pkts) != 1 || string(pkts[0]) != "abc" {
			t.Errorf("%s: packets %q before the error, want [abc]", name, pkts)
		}
	}
	if _, _, err := readAll(t, nil); err != nil {
		t.Errorf("empty stream: %v", err)
	}
}

// FuzzReadPackets: no panic, and the packets never hold more bytes than the
// stream.
func FuzzReadPackets(f *testing.F) {
	f.Add(page(ogg.FlagBOS, 0, 0, []byte{3}, []byte("abc")))
	f.Add([]byte("OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x03abc"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		total := 0
		_, _ = ogg.ReadPackets(bytes.NewReader(data), func(p []byte) error {
			total += len(p)
			if total > len(data) {
				t.Fatalf("packets hold %d bytes of a %d-byte stream", total, len(data))
			}
			return nil
		})
	})
}
