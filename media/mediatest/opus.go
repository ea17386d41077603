package mediatest

import (
	"fmt"
	"os/exec"
	"path/filepath"

	"github.com/rtcrec/recorder/internal/synth"
)

// OpusTone encodes seconds of a sine at freq Hz as 20 ms Opus packets, one per
// Ogg page, with ffmpeg's libopus (there is no pure-Go Opus encoder at our
// pinned versions). ffmpeg is the path of the ffmpeg program; dir is a
// directory for the intermediate Ogg file.
func OpusTone(ffmpeg, dir string, freq float64, seconds int) ([][]byte, error) {
	path := filepath.Join(dir, fmt.Sprintf("tone-%g-%d.ogg", freq, seconds))
	out, err := exec.Command(ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i",
		fmt.Sprintf("sine=frequency=%g:sample_rate=48000:duration=%d", freq, seconds),
		"-c:a", "libopus", "-b:a", "48k", "-frame_duration", "20", "-page_duration", "20000", path).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("mediatest: ffmpeg: %v: %s", err, out)
	}
	return synth.ReadOggPackets(path)
}
