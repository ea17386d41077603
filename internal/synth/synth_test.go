package synth_test

import (
	"math"
	"slices"
	"testing"

	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/media/g711"
	"github.com/rtcrec/recorder/media/mediatest"
)

func TestTone_Frequency(t *testing.T) {
	tone := &synth.Tone{Freq: 700, Amplitude: 8000}
	var enc []byte
	for range 50 {
		enc = tone.NextPCMU(enc)
	}
	pcm := make([]int16, len(enc))
	for i, b := range enc {
		pcm[i] = g711.DecodeMuLaw(b)
	}
	if on, off := mediatest.Goertzel(pcm, 8000, 700), mediatest.Goertzel(pcm, 8000, 1100); on < 7500 || on > 8500 || off > 100 {
		t.Errorf("amplitude at 700 Hz %.0f (want ~8000), at 1100 Hz %.0f (want ~0)", on, off)
	}
}

func TestSpeech_TalkSpurtsAndPauses(t *testing.T) {
	pcm, active := synth.Speech(30, 7)
	if len(pcm) != 30*synth.SpeechRate {
		t.Fatalf("%d samples, want %d", len(pcm), 30*synth.SpeechRate)
	}
	in := make([]bool, len(pcm))
	talk := 0
	for _, a := range active {
		for i := a[0]; i < a[1]; i++ {
			in[i] = true
		}
		talk += a[1] - a[0]
	}
	if frac := float64(talk) / float64(len(pcm)); frac < 0.4 || frac > 0.9 {
		t.Errorf("talk fills %.0f %% of the signal; want speech with pauses (40–90 %%)", 100*frac)
	}
	var sumIn, sumOut float64
	var nIn, nOut int
	for i, v := range pcm {
		if in[i] {
			sumIn += float64(v) * float64(v)
			nIn++
		} else {
			sumOut += float64(v) * float64(v)
			nOut++
		}
	}
	rmsIn, rmsOut := math.Sqrt(sumIn/float64(nIn)), math.Sqrt(sumOut/float64(nOut))
	if rmsIn < 1000 || rmsOut > 20 {
		t.Errorf("RMS %.0f in talk spurts, %.1f in pauses; want loud speech and quiet pauses", rmsIn, rmsOut)
	}
	again, _ := synth.Speech(30, 7)
	if !slices.Equal(pcm, again) {
		t.Error("the same seed gave another signal")
	}
}
