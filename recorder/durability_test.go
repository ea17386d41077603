package recorder

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/rtcrec/recorder/media/wavwriter"
)

// TestRepairTrack: a crashed WAV gets its sizes from its length, a crashed
// MP4 loses its half-written last box, a missing file and a WebM are left
// alone.
func TestRepairTrack(t *testing.T) {
	dir := t.TempDir()
	wav := filepath.Join(dir, "a.wav")
	w, err := wavwriter.New(wav, wavwriter.WithSampleRate(8000))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFrame(make([]int16, 8000)); err != nil { // one second: flushed, header patched
		t.Fatal(err)
	}
	w.Flush()
	f, _ := os.OpenFile(wav, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(make([]byte, 1601)) // 800 more frames and half a sample the header does not know
	f.Close()
	if err := repairTrack(wav); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(wav)
	h, err := wavwriter.ParseHeader(data)
	if err != nil || h.DataSize != 8800*2 {
		t.Errorf("repaired WAV: data size %d (%v), want %d", h.DataSize, err, 8800*2)
	}

	mp4 := filepath.Join(dir, "v.mp4")
	// ftyp (16 bytes), moof (24) and an mdat that declares 100 bytes but has 38.
	os.WriteFile(mp4, bytes.Join([][]byte{[]byte("\x00\x00\x00\x10ftyp"), make([]byte, 8),
		[]byte("\x00\x00\x00\x18moof"), make([]byte, 16), []byte("\x00\x00\x00\x64mdat"), make([]byte, 30)}, nil), 0o600)
	if err := repairTrack(mp4); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(mp4); fi.Size() != 40 {
		t.Errorf("repaired MP4: %d bytes, want 40", fi.Size())
	}

	webm := filepath.Join(dir, "v.webm")
	os.WriteFile(webm, []byte{0x1a, 0x45, 0xdf, 0xa3, 1, 2, 3}, 0o600)
	if err := repairTrack(webm); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(webm); fi.Size() != 7 {
		t.Errorf("WebM changed by repair: %d bytes", fi.Size())
	}
	if err := repairTrack(filepath.Join(dir, "gone.ogg")); err != nil {
		t.Errorf("missing file: %v", err)
	}
}
