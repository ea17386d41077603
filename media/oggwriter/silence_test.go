package oggwriter

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/internal/tooltest"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/media/ogg"
)

// TestWriter_SilenceFrom writes 4.5 s of a 1 kHz tone, silences it from
// packet 100 on (a timestamp in its middle: the packet is silenced whole),
// writes 1.5 s more, and checks that the file has the same pages, packet
// lengths and granules as one written without the edit, and that opusdec
// hears the tone before packet 100 and after packet 225 and silence between.
func TestWriter_SilenceFrom(t *testing.T) {
	const n, cut, resume = 300, 100, 225
	packets := opusTone(t, 1000, 6)
	dir := t.TempDir()
	write := func(path string, silence bool) {
		w, err := New(path, WithSerial(7), WithClock(nil))
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if i == resume && silence {
				fi, _ := os.Stat(path)
				first, err := w.SilenceFrom(uint32(cut*960 + 480))
				if err != nil {
					t.Fatal(err)
				}
				after, _ := os.Stat(path)
				if after.Size() != fi.Size() || first <= 0 || first >= fi.Size() {
					t.Fatalf("SilenceFrom: first byte %d of %d; size %d after", first, fi.Size(), after.Size())
				}
			}
			if err := w.WriteRTP(&rtp.Packet{Header: rtp.Header{SSRC: 1, Timestamp: uint32(i * 960)}, Payload: packets[i]}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	plain, silenced := filepath.Join(dir, "plain.ogg"), filepath.Join(dir, "silenced.ogg")
	write(plain, false)
	write(silenced, true)
	a, _ := os.ReadFile(plain)
	b, _ := os.ReadFile(silenced)
	if len(a) != len(b) {
		t.Fatalf("silenced file is %d bytes, plain %d", len(b), len(a))
	}
	pa, ga := readPackets(t, a)
	pb, gb := readPackets(t, b)
	if len(pa) != len(pb) || len(ga) != len(gb) {
		t.Fatalf("%d/%d packets, %d/%d pages", len(pb), len(pa), len(gb), len(ga))
	}
	for i := range ga {
		if ga[i].Granule != gb[i].Granule || !bytes.Equal(ga[i].Lacing, gb[i].Lacing) {
			t.Errorf("page %d: granule %d / %d, lacing differs %v", i, gb[i].Granule, ga[i].Granule, !bytes.Equal(ga[i].Lacing, gb[i].Lacing))
		}
	}
	for i := range pa {
		same := bytes.Equal(pa[i], pb[i])
		if audio := i - 2; audio >= cut && audio < resume == same || (audio < cut || audio >= resume) && !same {
			t.Errorf("packet %d: changed %v", audio, !same)
		}
	}
	decoded := filepath.Join(dir, "decoded.wav")
	tooltest.Run(t, "opusdec", "--quiet", "--rate", "48000", silenced, decoded)
	pcm := tooltest.DecodePCM(t, decoded)
	win := func(from, to int) []int16 { return pcm[from*960 : to*960] }
	if l := mediatest.Goertzel(win(10, cut), rate, 1000); l < 4000 {
		t.Errorf("tone before the cut: %.0f", l)
	}
	// opusdec dithers: silence decodes to an RMS of about 2. The first
	// silent packet holds the tail of the decoder's overlap window.
	if rms, l := mediatest.RMS(win(cut+1, resume)), mediatest.Goertzel(win(cut+1, resume), rate, 1000); rms > 10 || l > 10 {
		t.Errorf("silenced span: RMS %.1f, 1 kHz amplitude %.1f, want silence", rms, l)
	}
	if l := mediatest.Goertzel(win(resume+5, n-1), rate, 1000); l < 4000 {
		t.Errorf("tone after the silenced span: %.0f", l)
	}
}

// TestSilencePacket builds silent packets of every length for every duration
// a packet can have and checks their framing: the duration, the length, and
// code 3's padding accounting (RFC 6716 §3.2.5).
func TestSilencePacket(t *testing.T) {
	for _, samples := range []uint32{120, 240, 480, 960, 1920, 2880, 5760} {
		for n := 1; n < 1500; n++ {
			p := bytes.Repeat([]byte{0xAA}, n)
			err := silencePacket(p, samples)
			if err != nil {
				if n >= 3+2*int(samples/min(samples, 960)) {
					t.Fatalf("%d samples in %d bytes: %v", samples, n, err)
				}
				continue
			}
			if got, err := packetSamples(p); err != nil || got != samples {
				t.Fatalf("%d samples in %d bytes: packet of %d samples (%v): % x", samples, n, got, err, p[:min(n, 8)])
			}
			if p[0]&3 == 3 {
				m := int(p[1] & 0x3F)
				i, pad := 2, 0
				if p[1]&0x40 != 0 {
					for ; p[i] == 255; i++ {
						pad += 254
					}
					pad += int(p[i])
					i++
				}
				if i+2*m+pad != n {
					t.Fatalf("%d samples in %d bytes: header %d + %d frames + %d padding", samples, n, i, m, pad)
				}
				for f := range m {
					if p[i+2*f] != 0xFF || p[i+2*f+1] != 0xFE {
						t.Fatalf("frame %d is not the silence frame: % x", f, p)
					}
				}
			}
		}
	}
}

// memFile is an in-memory io.ReaderAt and io.WriterAt.
type memFile []byte

func (m memFile) ReadAt(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if off >= int64(len(m)) {
		return 0, os.ErrInvalid
	}
	n := copy(p, m[off:])
	if n < len(p) {
		return n, os.ErrInvalid
	}
	return n, nil
}

func (m memFile) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > int64(len(m)) {
		return 0, os.ErrInvalid
	}
	return copy(m[off:], p), nil
}

// FuzzSilenceFrom runs the in-place silencer over arbitrary bytes: no panic,
// and a stream of valid pages stays valid pages of the same length with the
// same granules and segment tables.
func FuzzSilenceFrom(f *testing.F) {
	var buf bytes.Buffer
	w, _ := NewWith(&buf, WithPageDuration(40e6))
	for i := range 8 {
		w.WriteRTP(&rtp.Packet{Header: rtp.Header{Timestamp: uint32(i * 960)}, Payload: []byte{0xF8, byte(i), 2, 3, 4, 5, 6}})
	}
	w.Close()
	f.Add(buf.Bytes(), uint64(2000))
	f.Add([]byte("OggS\x00\x02"), uint64(0))
	f.Fuzz(func(t *testing.T, b []byte, from uint64) {
		orig := bytes.Clone(b)
		valid := validPrefix(bytes.NewReader(b)) == int64(len(b))
		first, err := SilenceFrom(memFile(b), int64(len(b)), from)
		if first > int64(len(b)) || first < 0 {
			t.Fatalf("first changed byte %d of %d", first, len(b))
		}
		if !bytes.Equal(orig[:first], b[:first]) {
			t.Fatal("bytes before the first changed one changed")
		}
		if !valid {
			return
		}
		if err != nil {
			t.Fatalf("valid stream: %v", err)
		}
		if n := validPrefix(bytes.NewReader(b)); n != int64(len(b)) {
			t.Fatalf("after silencing: valid prefix %d of %d", n, len(b))
		}
		for off := 0; off < len(b); {
			n, p, _ := ogg.ParsePage(b[off:])
			_, q, _ := ogg.ParsePage(orig[off:])
			if p.Granule != q.Granule || !bytes.Equal(p.Lacing, q.Lacing) {
				t.Fatalf("page at %d changed its granule or segments", off)
			}
			off += n
		}
	})
}

// TestPackets reads back a range of a file being written (after Flush):
// every packet overlapping the range, with its granule position where PosOf
// places its timestamp, and its bytes as written, across a gap.
func TestPackets(t *testing.T) {
	packets := opusTone(t, 1000, 4)
	path := filepath.Join(t.TempDir(), "t.ogg")
	w, err := New(path, WithClock(nil))
	if err != nil {
		t.Fatal(err)
	}
	ts := func(i int) uint32 {
		if i >= 100 {
			return uint32(7777 + (i+25)*960) // a gap of 25 packets after packet 99
		}
		return uint32(7777 + i*960)
	}
	for i := range 180 {
		if err := w.WriteRTP(&rtp.Packet{Header: rtp.Header{SSRC: 1, Timestamp: ts(i)}, Payload: packets[i]}); err != nil {
			t.Fatal(err)
		}
	}
	from, to := w.PosOf(ts(90)), w.PosOf(ts(120))+100
	if to-from != (30+25)*960+100 {
		t.Fatalf("PosOf: %d granules between packets 90 and 120, want %d", to-from-100, 55*960)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	var got []int
	err = Packets(f, fi.Size(), from, to, func(start uint64, p []byte) error {
		i := -1
		for k := range 180 {
			if w.PosOf(ts(k)) == start {
				i = k
			}
		}
		if i < 0 {
			if !bytes.Equal(p, silenceFrames[len(silenceFrames)-1].packet[:]) && len(p) > 3 {
				t.Errorf("packet at %d is neither written nor gap silence", start)
			}
			return nil
		}
		if !bytes.Equal(p, packets[i]) {
			t.Errorf("packet %d at %d differs from what was written", i, start)
		}
		got = append(got, i)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 31 || got[0] != 90 || got[30] != 120 {
		t.Errorf("packets %v, want 90..120", got)
	}
	w.Close()
}
