package ogg

import (
	"math/rand/v2"
	"testing"
)

// crcBytewise is the Ogg CRC a byte at a time (the definition).
func crcBytewise(c uint32, b []byte) uint32 {
	for _, v := range b {
		c = c<<8 ^ crcTables[0][byte(c>>24)^v]
	}
	return c
}

// TestCRC_SameAsBytewise: the sliced CRC equals the CRC a byte at a time for
// every length 0–100 and from any running value, and the table is Ogg's
// (the check value of CRC-32/POSIX without its final xor).
func TestCRC_SameAsBytewise(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 100)
	for n := 0; n <= len(b); n++ {
		for range 20 {
			for i := range b[:n] {
				b[i] = byte(rng.Uint32())
			}
			c := rng.Uint32()
			if got, want := CRC(c, b[:n]), crcBytewise(c, b[:n]); got != want {
				t.Fatalf("length %d from %#x: %#x, a byte at a time %#x", n, c, got, want)
			}
		}
	}
	if got := CRC(0, []byte("123456789")); got != 0x89a1897f { // CRC-32/MPEG-2 without its init and final xor: Ogg's
		t.Errorf("CRC of \"123456789\" = %#x, want 0x89a1897f", got)
	}
}

// BenchmarkCRC: a page of one 20 ms Opus packet, sliced and a byte at a time.
func BenchmarkCRC(b *testing.B) {
	page := make([]byte, 27+1+120)
	for _, f := range []struct {
		name string
		crc  func(uint32, []byte) uint32
	}{{"sliced", CRC}, {"bytewise", crcBytewise}} {
		b.Run(f.name, func(b *testing.B) {
			b.SetBytes(int64(len(page)))
			for range b.N {
				f.crc(0, page)
			}
		})
	}
}
