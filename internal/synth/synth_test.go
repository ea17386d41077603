package synth

import (
	"testing"

	"github.com/rtcrec/recorder/media/mediatest"
)

func TestMuLaw_RoundTrip(t *testing.T) {
	for _, s := range []int16{0, 1, -1, 100, -100, 1000, -1000, 8000, -8000, 32000, -32000, 32767, -32768} {
		got := MuLawDecode(MuLaw(s))
		diff := int(got) - int(s)
		if diff < 0 {
			diff = -diff
		}
		// µ-law's step grows with the magnitude: at most 1/16 of it, plus the bias.
		if limit := max(int(abs(s))/16, 8) + 140*boolInt(abs(s) > 32000); diff > limit {
			t.Errorf("MuLaw(%d) decodes to %d (error %d > %d)", s, got, diff, limit)
		}
	}
}

func TestALaw_RoundTrip(t *testing.T) {
	for _, s := range []int16{0, 1, -1, 100, -100, 1000, -1000, 8000, -8000, 32000, -32000, 32767, -32768} {
		got := ALawDecode(ALaw(s))
		diff := int(got) - int(s)
		if diff < 0 {
			diff = -diff
		}
		if limit := max(int(abs(s))/16, 16); diff > limit {
			t.Errorf("ALaw(%d) decodes to %d (error %d > %d)", s, got, diff, limit)
		}
	}
	// The encoding of silence is 0xD5 (ITU-T G.711).
	if ALaw(0) != 0xD5 {
		t.Errorf("ALaw(0) = %#x, want 0xd5", ALaw(0))
	}
}

func TestTone_Frequency(t *testing.T) {
	tone := &Tone{Freq: 700, Amplitude: 8000}
	var enc []byte
	for range 50 {
		enc = tone.NextPCMU(enc)
	}
	pcm := make([]int16, len(enc))
	for i, b := range enc {
		pcm[i] = MuLawDecode(b)
	}
	if on, off := mediatest.Goertzel(pcm, 8000, 700), mediatest.Goertzel(pcm, 8000, 1100); on < 7500 || on > 8500 || off > 100 {
		t.Errorf("amplitude at 700 Hz %.0f (want ~8000), at 1100 Hz %.0f (want ~0)", on, off)
	}
}

func abs(s int16) int32 {
	if s < 0 {
		return -int32(s)
	}
	return int32(s)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
