package mediatest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/pion/webrtc/v4/pkg/media/oggreader"
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
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, _, err := oggreader.NewWith(f)
	if err != nil {
		return nil, fmt.Errorf("mediatest: %w", err)
	}
	var packets [][]byte
	for {
		payload, hdr, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			return packets, nil
		}
		if err != nil {
			return nil, fmt.Errorf("mediatest: %w", err)
		}
		if hdr.GranulePosition != 0 { // not OpusHead or OpusTags
			packets = append(packets, payload)
		}
	}
}
