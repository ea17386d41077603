package wavwriter

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rtcrec/recorder/media/mediatest"
)

// TestWriter_Silence writes 3 s of a 440 Hz tone to a PCM mix (flushed once
// a second), silences [1.5 s, 2.8 s) (in the file and in the buffer), writes
// 1 s more and checks the file by content: its length is unchanged, the tone
// is there before 1.5 s and after 2.8 s, and the range is zeros.
func TestWriter_Silence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mix.wav")
	w, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	tone := mediatest.Sine(440, 8000, 4*8000, 8000)
	if err := w.WriteFrame(tone[:3*8000+400]); err != nil {
		t.Fatal(err)
	}
	first, err := w.Silence(12000, 22400)
	if err != nil {
		t.Fatal(err)
	}
	if first != 44+2*12000 {
		t.Errorf("first changed byte %d, want %d", first, 44+2*12000)
	}
	if err := w.WriteFrame(tone[3*8000+400:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	h, err := ParseHeader(b)
	if err != nil || h.DataSize != 2*4*8000 {
		t.Fatalf("header %+v, %v", h, err)
	}
	pcm := make([]int16, h.DataSize/2)
	for i := range pcm {
		pcm[i] = int16(uint16(b[h.DataOffset+int64(2*i)]) | uint16(b[h.DataOffset+int64(2*i)+1])<<8)
	}
	for i, s := range pcm {
		if zero := i >= 12000 && i < 22400; zero != (s == 0) && (zero || s != 0 && tone[i] != s) {
			t.Fatalf("sample %d is %d, want %d (silenced %v)", i, s, tone[i], zero)
		}
	}
	if _, err := w.Silence(0, 1); err != ErrClosed {
		t.Errorf("Silence after Close: %v", err)
	}
}

// TestG711Writer_SilenceFrom silences a µ-law track from an RTP timestamp
// in the middle of a packet: every sample from there on is the silence byte,
// and the file keeps its length and what came before.
func TestG711Writer_SilenceFrom(t *testing.T) {
	for _, law := range []Format{MuLaw, ALaw} {
		path := filepath.Join(t.TempDir(), "track.wav")
		g, err := NewG711(path, law, WithClock(nil))
		if err != nil {
			t.Fatal(err)
		}
		payload := make([]byte, 160)
		for i := range payload {
			payload[i] = byte(i) | 0x10
		}
		for i := range 150 { // 3 s, ts from 1000
			if err := g.Write(5, 1000+uint32(i*160), payload); err != nil {
				t.Fatal(err)
			}
		}
		const from = 100*160 + 80 // timeline position 16080
		if _, err := g.SilenceFrom(1000 + from); err != nil {
			t.Fatal(err)
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		h, err := ParseHeader(b)
		if err != nil || h.DataSize != 150*160 {
			t.Fatalf("%v: header %+v, %v", law, h, err)
		}
		for i, v := range b[h.DataOffset : h.DataOffset+int64(h.DataSize)] {
			want := payload[i%160]
			if i >= from {
				want = law.Silence()
			}
			if v != want {
				t.Fatalf("%v: sample %d is %#x, want %#x", law, i, v, want)
			}
		}
	}
}

// TestWriter_Overwrite replaces a range of a stereo mix that begins in the
// file and ends in the buffer: exactly those samples change, the length and
// the rest stay.
func TestWriter_Overwrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mix.wav")
	w, err := New(path, WithChannels(2))
	if err != nil {
		t.Fatal(err)
	}
	tone := mediatest.Sine(440, 8000, 2*4*8000, 8000) // interleaved as it comes
	if err := w.WriteFrame(tone[:2*(3*8000+400)]); err != nil {
		t.Fatal(err)
	}
	repl := mediatest.Sine(1000, 8000, 2*10000, 5000)
	first, err := w.Overwrite(14000, repl)
	if err != nil {
		t.Fatal(err)
	}
	if first != 44+4*14000 {
		t.Errorf("first changed byte %d, want %d", first, 44+4*14000)
	}
	if _, err := w.Overwrite(0, repl[:3]); err == nil {
		t.Error("an odd number of samples for two channels was accepted")
	}
	if err := w.WriteFrame(tone[2*(3*8000+400):]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	h, err := ParseHeader(b)
	if err != nil || h.DataSize != 4*4*8000 {
		t.Fatalf("header %+v, %v", h, err)
	}
	for i := range int(h.DataSize / 2) {
		s := int16(uint16(b[h.DataOffset+int64(2*i)]) | uint16(b[h.DataOffset+int64(2*i)+1])<<8)
		want := tone[i]
		if i >= 2*14000 && i < 2*24000 {
			want = repl[i-2*14000]
		}
		if s != want {
			t.Fatalf("sample %d is %d, want %d", i, s, want)
		}
	}
}
