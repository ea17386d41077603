package rtctest

import "testing"

func TestMuLaw_RoundTrip(t *testing.T) {
	for _, tc := range []struct {
		in      int16
		maxDiff int
	}{
		{0, 0}, {1, 8}, {-1, 8}, {100, 8}, {-100, 8},
		{1000, 40}, {-1000, 40}, {8000, 260}, {-8000, 260},
		{32000, 1100}, {-32768, 1100}, {32767, 1100},
	} {
		got := MuLawDecode(MuLawEncode(tc.in))
		if d := int(got) - int(tc.in); d > tc.maxDiff || d < -tc.maxDiff {
			t.Errorf("MuLawDecode(MuLawEncode(%d)) = %d, off by more than %d", tc.in, got, tc.maxDiff)
		}
	}
	// Known codes (G.711 table): 0 encodes as 0xFF, the most negative as 0x00.
	if got := MuLawEncode(0); got != 0xff {
		t.Errorf("MuLawEncode(0) = %#x, want 0xff", got)
	}
	if got := MuLawEncode(-32768); got != 0x00 {
		t.Errorf("MuLawEncode(-32768) = %#x, want 0x00", got)
	}
	if got := MuLawDecode(0x80); got != 32124 {
		t.Errorf("MuLawDecode(0x80) = %d, want 32124", got)
	}
}
