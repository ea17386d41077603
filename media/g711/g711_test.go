package g711

import "testing"

func TestMuLaw_RoundTrip(t *testing.T) {
	for _, tc := range []struct {
		in      int16
		maxDiff int
	}{
		{0, 0}, {1, 8}, {-1, 8}, {100, 8}, {-100, 8},
		{1000, 40}, {-1000, 40}, {8000, 260}, {-8000, 260},
		{32000, 1100}, {-32000, 1100}, {-32768, 1100}, {32767, 1100},
	} {
		got := DecodeMuLaw(EncodeMuLaw(tc.in))
		if d := int(got) - int(tc.in); d > tc.maxDiff || d < -tc.maxDiff {
			t.Errorf("DecodeMuLaw(EncodeMuLaw(%d)) = %d, off by more than %d", tc.in, got, tc.maxDiff)
		}
		// µ-law's step grows with the magnitude: at most 1/16 of it, plus the bias.
		s := int(tc.in)
		if s < 0 {
			s = -s
		}
		limit := max(s/16, 8)
		if s > 32000 {
			limit += 140
		}
		if d := int(got) - int(tc.in); d > limit || d < -limit {
			t.Errorf("EncodeMuLaw(%d) decodes to %d (error > %d)", tc.in, got, limit)
		}
	}
}

func TestALaw_RoundTrip(t *testing.T) {
	for _, s := range []int16{0, 1, -1, 100, -100, 1000, -1000, 8000, -8000, 32000, -32000, 32767, -32768} {
		got := DecodeALaw(EncodeALaw(s))
		diff := int(got) - int(s)
		if diff < 0 {
			diff = -diff
		}
		if limit := max(abs(int(s))/16, 16); diff > limit {
			t.Errorf("EncodeALaw(%d) decodes to %d (error %d > %d)", s, got, diff, limit)
		}
	}
}

// TestKnownCodes checks codes from the G.711 tables: silence, the extremes.
func TestKnownCodes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want int
	}{
		{"EncodeMuLaw(0)", int(EncodeMuLaw(0)), 0xFF},
		{"EncodeMuLaw(-32768)", int(EncodeMuLaw(-32768)), 0x00},
		{"EncodeALaw(0)", int(EncodeALaw(0)), 0xD5},
		{"DecodeMuLaw(0xFF)", int(DecodeMuLaw(0xFF)), 0},
		{"DecodeMuLaw(0x7F)", int(DecodeMuLaw(0x7F)), 0},
		{"DecodeMuLaw(0x00)", int(DecodeMuLaw(0x00)), -32124},
		{"DecodeMuLaw(0x80)", int(DecodeMuLaw(0x80)), 32124},
		{"DecodeALaw(0xD5)", int(DecodeALaw(0xD5)), 8},
		{"DecodeALaw(0x55)", int(DecodeALaw(0x55)), -8},
		{"DecodeALaw(0xAA)", int(DecodeALaw(0xAA)), 32256},
		{"DecodeALaw(0x2A)", int(DecodeALaw(0x2A)), -32256},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %#x, want %#x", tc.name, tc.got, tc.want)
		}
	}
}

// TestCodes_Stable checks that every code decodes to a level that encodes
// back to a code of the same level (each law's 256 levels are fixed points).
func TestCodes_Stable(t *testing.T) {
	mu, a := MuLawTable(), ALawTable()
	for i := range 256 {
		b := byte(i)
		if got := DecodeMuLaw(EncodeMuLaw(mu[b])); got != mu[b] {
			t.Errorf("µ-law %#x: level %d re-encodes to level %d", b, mu[b], got)
		}
		if got := DecodeALaw(EncodeALaw(a[b])); got != a[b] {
			t.Errorf("A-law %#x: level %d re-encodes to level %d", b, a[b], got)
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
