package mediatest

import (
	"encoding/binary"
	"os/exec"
	"strconv"
	"testing"

	"github.com/rtcrec/recorder/internal/testenv"
)

// Decode decodes any audio file ffmpeg reads (WAV, G.711 WAV, Ogg/Opus, WebM)
// to mono 16-bit samples at sampleRate, failing the test when ffmpeg cannot
// (and skipping it outside CI when ffmpeg is not installed).
func Decode(t testing.TB, path string, sampleRate int) []int16 {
	t.Helper()
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	out, err := exec.Command(ffmpeg, "-v", "error", "-i", path,
		"-f", "s16le", "-ac", "1", "-ar", strconv.Itoa(sampleRate), "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg cannot decode %s: %v", path, err)
	}
	pcm := make([]int16, len(out)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(out[2*i:]))
	}
	return pcm
}
