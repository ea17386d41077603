package recorder

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/rtcrec/recorder/media/wavwriter"
)

// box returns an ISO BMFF box of type typ declaring size bytes, with body
// bytes present after its 8-byte header.
func box(typ string, size uint32, body int) []byte {
	b := make([]byte, 8+body)
	binary.BigEndian.PutUint32(b, size)
	copy(b[4:], typ)
	return b
}

func TestWholeBoxes(t *testing.T) {
	ftyp := box("ftyp", 16, 8)
	moof := box("moof", 24, 16)
	large := append(box("mdat", 1, 8), make([]byte, 16)...)
	binary.BigEndian.PutUint64(large[8:], 32) // 64-bit size: 16-byte header and 16 bytes
	tests := []struct {
		name string
		file []byte
		want int64
	}{
		{"whole boxes", bytes.Join([][]byte{ftyp, moof}, nil), 40},
		{"cut inside a box", bytes.Join([][]byte{ftyp, moof[:20]}, nil), 16},
		{"cut inside a header", bytes.Join([][]byte{ftyp, moof[:5]}, nil), 16},
		{"64-bit size", bytes.Join([][]byte{ftyp, large}, nil), 48},
		{"64-bit size cut", bytes.Join([][]byte{ftyp, large[:30]}, nil), 16},
		{"size to the end of file", bytes.Join([][]byte{ftyp, box("mdat", 0, 4)}, nil), 16},
		{"size below the header", bytes.Join([][]byte{ftyp, box("free", 3, 0)}, nil), 16},
		{"empty", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wholeBoxes(bytes.NewReader(tt.file), int64(len(tt.file)))
			if err != nil || got != tt.want {
				t.Errorf("wholeBoxes = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func FuzzWholeBoxes(f *testing.F) {
	f.Add(bytes.Join([][]byte{box("ftyp", 16, 8), box("moof", 24, 10)}, nil))
	f.Add(append(box("mdat", 1, 8), 0, 0, 0, 0, 0, 0, 0, 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := wholeBoxes(bytes.NewReader(b), int64(len(b)))
		if err != nil || n < 0 || n > int64(len(b)) {
			t.Fatalf("wholeBoxes(%d bytes) = %d, %v", len(b), n, err)
		}
		if again, _ := wholeBoxes(bytes.NewReader(b[:n]), n); again != n {
			t.Fatalf("the prefix of whole boxes (%d) is not whole: %d", n, again)
		}
	})
}

// TestRepairTrack: a crashed WAV gets its sizes from its length, a crashed
// MP4 loses its half-written last box, a missing file and a WebM are left
// alone.
func TestRepairTrack(t *testing.T) {
	dir := t.TempDir()
	wav := filepath.Join(dir, "a.wav")
	w, err := wavwriter.New(wav, wavwriter.WithSampleRate(8000))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFrame(make([]int16, 8000)); err != nil { // one second: flushed, header patched
		t.Fatal(err)
	}
	w.Flush()
	f, _ := os.OpenFile(wav, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(make([]byte, 1601)) // 800 more frames and half a sample the header does not know
	f.Close()
	if err := repairTrack(wav); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(wav)
	h, err := wavwriter.ParseHeader(data)
	if err != nil || h.DataSize != 8800*2 {
		t.Errorf("repaired WAV: data size %d (%v), want %d", h.DataSize, err, 8800*2)
	}

	mp4 := filepath.Join(dir, "v.mp4")
	os.WriteFile(mp4, bytes.Join([][]byte{box("ftyp", 16, 8), box("moof", 24, 16), box("mdat", 100, 30)}, nil), 0o600)
	if err := repairTrack(mp4); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(mp4); fi.Size() != 40 {
		t.Errorf("repaired MP4: %d bytes, want 40", fi.Size())
	}

	webm := filepath.Join(dir, "v.webm")
	os.WriteFile(webm, []byte{0x1a, 0x45, 0xdf, 0xa3, 1, 2, 3}, 0o600)
	if err := repairTrack(webm); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(webm); fi.Size() != 7 {
		t.Errorf("WebM changed by repair: %d bytes", fi.Size())
	}
	if err := repairTrack(filepath.Join(dir, "gone.ogg")); err != nil {
		t.Errorf("missing file: %v", err)
	}
}
