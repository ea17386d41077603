package recorder

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/rtcrec/recorder/media/wavwriter"
)

// TestExtendWAV_KeepsWhatIsWrittenAndAppendsTheRest: the mix a kill left
// keeps every byte it has (its parts may be in storage), and gets the
// frames of the mix made from the tracks beyond its own; a file in another
// format is refused, and one as long or longer is left as it is.
func TestExtendWAV_KeepsWhatIsWrittenAndAppendsTheRest(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, channels int, frames []int16) string {
		t.Helper()
		path := filepath.Join(dir, name)
		w, err := wavwriter.New(path, wavwriter.WithSampleRate(8000), wavwriter.WithChannels(channels))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteFrame(frames); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return path
	}
	ramp := func(from, n int) []int16 {
		s := make([]int16, n)
		for i := range s {
			s[i] = int16(from + i)
		}
		return s
	}
	live := write("live.wav", 2, ramp(1000, 8000))   // 4000 stereo frames: the live mix's own
	tracks := write("tracks.wav", 2, ramp(0, 20000)) // 10000 frames from the tracks
	before, _ := os.ReadFile(live)
	added, err := extendWAV(live, tracks)
	if err != nil || added != 6000 {
		t.Fatalf("added %d frames (%v), want 6000", added, err)
	}
	after, _ := os.ReadFile(live)
	h, err := wavwriter.ParseHeader(after)
	if err != nil || int64(h.DataSize) != int64(len(after))-h.DataOffset || h.DataSize != 10000*4 {
		t.Fatalf("header %+v (%v) for %d bytes, want 40000 bytes of data", h, err, len(after))
	}
	if !bytes.Equal(after[h.DataOffset:len(before)], before[h.DataOffset:]) {
		t.Error("the live mix's own samples changed")
	}
	src, _ := os.ReadFile(tracks)
	if !bytes.Equal(after[len(before):], src[len(before):]) {
		t.Error("the frames appended are not the tracks' mix beyond the live mix's end")
	}
	if added, err := extendWAV(live, tracks); err != nil || added != 0 {
		t.Errorf("as long as the tracks' mix: added %d (%v), want 0", added, err)
	}
	if _, err := extendWAV(live, write("mono.wav", 1, ramp(0, 30000))); err == nil {
		t.Error("a mono mix appended to a stereo one: no error")
	}
}
