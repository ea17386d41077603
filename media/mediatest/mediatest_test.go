package mediatest

import (
	"math"
	"slices"
	"testing"
)

func TestGoertzel_FindsToneAndRejectsOthers(t *testing.T) {
	const rate = 8000
	tests := []struct {
		name      string
		tone      float64
		probe     float64
		amplitude int16
		wantMin   float64
		wantMax   float64
	}{
		{"same frequency", 440, 440, 10000, 9900, 10100},
		{"other frequency", 440, 1000, 10000, 0, 100},
		{"near frequency", 600, 700, 8000, 0, 200},
		{"full scale", 1000, 1000, 32767, 32500, 32800},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Sine(tt.tone, rate, rate, tt.amplitude)
			got := Goertzel(s, rate, tt.probe)
			if got < tt.wantMin || got > tt.wantMax {
				t.Errorf("Goertzel(%v Hz tone, probe %v Hz) = %.1f, want in [%v, %v]", tt.tone, tt.probe, got, tt.wantMin, tt.wantMax)
			}
		})
	}
}

func TestToneLevel_Silence(t *testing.T) {
	if got := ToneLevel(make([]int16, 800), 8000, 440); !math.IsInf(got, -1) {
		t.Errorf("ToneLevel(silence) = %v, want -Inf", got)
	}
	if got := ToneLevel(Sine(440, 8000, 800, 32767), 8000, 440); math.Abs(got) > 0.2 {
		t.Errorf("ToneLevel(full scale) = %v dBFS, want about 0", got)
	}
}

func TestSineInto_ContinuesPhase(t *testing.T) {
	whole := Sine(300, 8000, 400, 1000)
	parts := make([]int16, 400)
	SineInto(parts[:123], 300, 8000, 0, 1000)
	SineInto(parts[123:], 300, 8000, 123, 1000)
	for i := range whole {
		if whole[i] != parts[i] {
			t.Fatalf("sample %d: %d != %d", i, parts[i], whole[i])
		}
	}
}

func TestChannelAndAdd(t *testing.T) {
	got := Channel([]int16{1, 2, 3, 4, 5, 6}, 2, 1)
	if len(got) != 3 || got[0] != 2 || got[2] != 6 {
		t.Errorf("Channel = %v", got)
	}
	sum := Add([]int16{30000, -30000, 1}, []int16{10000, -10000})
	if sum[0] != 32767 || sum[1] != -32768 || sum[2] != 1 {
		t.Errorf("Add = %v", sum)
	}
	if r := RMS([]int16{3, -3, 3, -3}); r != 3 {
		t.Errorf("RMS = %v", r)
	}
}

// TestCompareDecodes: a decode that silences a tone burst's first 20 ms
// frame shifts its onset by 20 ms and reports that frame's level as the
// loudest skipped; an identical decode differs in nothing.
func TestCompareDecodes(t *testing.T) {
	const rate = 8000
	ref := make([]int16, rate) // 0.5 s of silence, then 0.5 s of a -6 dBFS tone
	SineInto(ref[rate/2:], 440, rate, 0, 16384)
	same := CompareDecodes(ref, append([]int16(nil), ref...), rate)
	if same.Onsets != 1 || same.OnsetShiftMax != 0 || same.SNRSpeech < 150 || same.LoudestSkip > -150 {
		t.Errorf("identical decodes: %+v; want one onset, no shift, no error, nothing skipped", same)
	}
	cut := append([]int16(nil), ref...)
	clear(cut[rate/2 : rate/2+rate/50])
	f := CompareDecodes(ref, cut, rate)
	if f.Onsets != 1 || math.Abs(f.OnsetShiftMax-20) > 1 {
		t.Errorf("first frame silenced: %d onsets, shift %.2f ms; want one, 20 ms", f.Onsets, f.OnsetShiftMax)
	}
	if want := DBFS(RMS(ref[rate/2 : rate/2+rate/50])); math.Abs(f.LoudestSkip-want) > 0.1 {
		t.Errorf("first frame silenced: loudest skipped %.1f dBFS; want %.1f", f.LoudestSkip, want)
	}
}

// TestLay: samples lie where the placement puts them; a step forward leaves
// silence, a step back drops what lands on audio already laid, and what
// lies before time zero or from n on is left out.
func TestLay(t *testing.T) {
	pcm := []int16{1, 2, 3, 4, 5, 6}
	at := func(f float64) float64 { // rate 10: one sample 0.1 s
		switch {
		case f >= 0.45:
			return f // back: the 6th lands on the 5th's place
		case f >= 0.25:
			return f + 0.1 // forward one at the 3rd
		}
		return f - 0.1 // the first sample before time zero
	}
	got := Lay(pcm, 10, at, 0)
	want := []int16{2, 3, 0, 0, 4, 5}
	if !slices.Equal(got, want) {
		t.Errorf("Lay = %v, want %v", got, want)
	}
	if got := Lay(pcm, 10, at, 5); !slices.Equal(got, want[:5]) {
		t.Errorf("Lay(n=5) = %v, want %v", got, want[:5])
	}
}
