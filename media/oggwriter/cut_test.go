package oggwriter

import (
	"bytes"
	"testing"
)

// testPage returns a page of one segment of payload bytes (structure only).
func testPage(payload int) []byte {
	p := append([]byte("OggS"), make([]byte, 23)...)
	p[26] = 1
	return append(append(p, byte(payload)), make([]byte, payload)...)
}

// TestCut: parts end on whole pages.
func TestCut(t *testing.T) {
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	for _, c := range []struct {
		name string
		b    []byte
		want int
	}{
		{"ogg whole", cat(testPage(10), testPage(20)), 2*28 + 30},
		{"ogg torn", cat(testPage(10), testPage(20)[:30]), 38},
		{"ogg torn header", cat(testPage(10), testPage(20)[:10]), 38},
		{"empty", nil, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Cut(c.b); got != c.want {
				t.Errorf("Cut = %d, want %d", got, c.want)
			}
		})
	}
}

// FuzzCut: the cut is within b, and the prefix it keeps is whole.
func FuzzCut(f *testing.F) {
	f.Add(bytes.Join([][]byte{testPage(10), testPage(20)[:30]}, nil))
	f.Add([]byte("OggS"))
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
