package wavwriter

import (
	"path/filepath"
	"testing"
)

// TestCutter: parts end on whole sample frames after the header.
func TestCutter(t *testing.T) {
	for _, c := range []struct {
		name string
		b    []byte
		off  int64
		h    Header
		want int
	}{
		{"wav after the header", make([]byte, 7), 100, Header{BlockAlign: 2, DataOffset: 44}, 6},
		{"wav within the header", make([]byte, 7), 40, Header{BlockAlign: 2, DataOffset: 44}, 6},
		{"g711 wav", make([]byte, 7), 100, Header{BlockAlign: 1, DataOffset: 58}, 7},
		{"header not written", make([]byte, 7), 0, Header{}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			cut := &Cutter{Header: c.h}
			if got := cut.Cut(c.b, c.off); got != c.want {
				t.Errorf("Cut = %d, want %d", got, c.want)
			}
		})
	}
}

// TestCutter_FromHeader: the first cut reads the header from the file's
// first bytes and keeps it for the next ones.
func TestCutter_FromHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.wav")
	w, err := New(path, WithSampleRate(8000))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFrame(make([]int16, 100)); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	b, _ := readFile(t, path)
	var cut Cutter
	n := cut.Cut(append(b, 0), 0) // a torn sample after the data
	if n != len(b) || cut.Header.BlockAlign != 2 {
		t.Errorf("Cut = %d (block align %d), want %d (2)", n, cut.Header.BlockAlign, len(b))
	}
	if got := cut.Cut([]byte{1, 2, 3}, int64(n)); got != 2 {
		t.Errorf("next Cut = %d, want 2", got)
	}
	w.Close()
}

// FuzzCutter: the cut is within b, whatever the bytes.
func FuzzCutter(f *testing.F) {
	f.Add([]byte("RIFF\x24\x00\x00\x00WAVEfmt "), int64(0))
	f.Add(make([]byte, 9), int64(3))
	f.Fuzz(func(t *testing.T, b []byte, off int64) {
		if off < 0 {
			off = -off
		}
		var cut Cutter
		if n := cut.Cut(b, off); n < 0 || n > len(b) {
			t.Fatalf("Cut(%d bytes at %d) = %d", len(b), off, n)
		}
	})
}
