package mp4writer

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// box returns an ISO BMFF box of type typ declaring size bytes, with body
// bytes present after its 8-byte header.
func box(typ string, size uint32, body int) []byte {
	b := make([]byte, 8+body)
	binary.BigEndian.PutUint32(b, size)
	copy(b[4:], typ)
	return b
}

// wholeBoxes returns the end of the whole top-level boxes of b.
func wholeBoxes(b []byte) (int64, error) {
	return walkBoxes(bytes.NewReader(b), int64(len(b)), nil)
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
			got, err := wholeBoxes(tt.file)
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
		n, err := wholeBoxes(b)
		if err != nil || n < 0 || n > int64(len(b)) {
			t.Fatalf("wholeBoxes(%d bytes) = %d, %v", len(b), n, err)
		}
		if again, _ := wholeBoxes(b[:n]); again != n {
			t.Fatalf("the prefix of whole boxes (%d) is not whole: %d", n, again)
		}
	})
}

// TestCut: parts end after whole boxes, never between a moof and its mdat.
func TestCut(t *testing.T) {
	sized := func(typ string, n int) []byte { return box(typ, uint32(n), n-8) }
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	for _, c := range []struct {
		name string
		b    []byte
		want int
	}{
		{"mp4 moof without mdat", cat(sized("ftyp", 16), sized("moov", 40), sized("moof", 24), sized("mdat", 30)[:20]), 56},
		{"mp4 whole fragment", cat(sized("moof", 24), sized("mdat", 30)), 54},
		{"mp4 moof alone", sized("moof", 24), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Cut(c.b); got != c.want {
				t.Errorf("Cut = %d, want %d", got, c.want)
			}
		})
	}
}

// FuzzCut: the cut is within b, and the prefix it keeps cuts to itself.
func FuzzCut(f *testing.F) {
	f.Add(bytes.Join([][]byte{box("moof", 24, 16), box("mdat", 30, 10)}, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := Cut(b)
		if n < 0 || n > len(b) {
			t.Fatalf("Cut(%d bytes) = %d", len(b), n)
		}
		if again := Cut(b[:n]); again != n {
			t.Fatalf("the whole prefix (%d) cuts to %d", n, again)
		}
	})
}

// TestRepair: a crashed MP4 loses its half-written last box; a whole one
// is left alone.
func TestRepair(t *testing.T) {
	dir := t.TempDir()
	mp4 := filepath.Join(dir, "v.mp4")
	os.WriteFile(mp4, bytes.Join([][]byte{box("ftyp", 16, 8), box("moof", 24, 16), box("mdat", 100, 30)}, nil), 0o600)
	if err := Repair(mp4); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(mp4); fi.Size() != 40 {
		t.Errorf("repaired MP4: %d bytes, want 40", fi.Size())
	}
	if err := Repair(mp4); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(mp4); fi.Size() != 40 {
		t.Errorf("whole MP4 changed by repair: %d bytes", fi.Size())
	}
	if err := Repair(filepath.Join(dir, "gone.mp4")); err == nil {
		t.Error("repair of a missing file: no error")
	}
}
