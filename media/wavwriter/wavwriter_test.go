package wavwriter

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/go-audio/audio"
	"github.com/go-audio/wav"

	"github.com/rtcrec/recorder/internal/tooltest"
	"github.com/rtcrec/recorder/media/mediatest"
)

// writeTone writes seconds of a tone at freq in 20 ms frames.
func writeTone(t testing.TB, w *Writer, freq float64, seconds float64) {
	t.Helper()
	frame := make([]int16, w.rate/50*w.chans)
	for i := 0; i < int(seconds*50); i++ {
		mediatest.SineInto(frame, freq, w.rate*w.chans, i*len(frame), 10000)
		if err := w.WriteFrame(frame); err != nil {
			t.Fatal(err)
		}
	}
}

func soxiSamples(t *testing.T, path string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(strings.TrimSpace(string(tooltest.Run(t, "soxi", "-s", path))), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkGoAudio validates a file with github.com/go-audio/wav: its format
// fields and its data size (PCMLen, in bytes; its Duration is off).
func checkGoAudio(t *testing.T, path string, f Format, rate, channels int, frames int64) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	d := wav.NewDecoder(fh)
	if !d.IsValidFile() {
		t.Fatal("go-audio/wav: not a valid file")
	}
	if d.WavAudioFormat != uint16(f) || d.SampleRate != uint32(rate) || int(d.NumChans) != channels || int(d.BitDepth) != 8*f.bytesPerSample() {
		t.Errorf("go-audio/wav: format %d, %d Hz, %d ch, %d bits", d.WavAudioFormat, d.SampleRate, d.NumChans, d.BitDepth)
	}
	if err := d.FwdToPCM(); err != nil {
		t.Fatal(err)
	}
	if want := frames * int64(channels*f.bytesPerSample()); d.PCMLen() != want {
		t.Errorf("go-audio/wav PCMLen = %d, want %d", d.PCMLen(), want)
	}
}

func TestWriter_PCM(t *testing.T) {
	tests := []struct {
		name     string
		rate     int
		channels int
	}{
		{"8kHz mono", 8000, 1},
		{"16kHz mono", 16000, 1},
		{"48kHz stereo", 48000, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "mix.wav")
			w, err := New(path, WithSampleRate(tt.rate), WithChannels(tt.channels))
			if err != nil {
				t.Fatal(err)
			}
			writeTone(t, w, 440, 2.5)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			wantFrames := int64(tt.rate) * 5 / 2

			checkGoAudio(t, path, PCM, tt.rate, tt.channels, wantFrames)
			if got := soxiSamples(t, path); got != wantFrames {
				t.Errorf("soxi -s = %d, want %d", got, wantFrames)
			}
			pcm := tooltest.DecodePCM(t, path) // sox mixes channels to mono
			if int64(len(pcm)) != wantFrames {
				t.Fatalf("decoded %d frames, want %d", len(pcm), wantFrames)
			}
			if a := mediatest.Goertzel(pcm[:tt.rate], tt.rate, 440); tt.channels == 1 && (a < 9500 || a > 10500) {
				t.Errorf("440 Hz amplitude %.0f, want about 10000", a)
			}
			if a := mediatest.Goertzel(pcm[:tt.rate], tt.rate, 1000); a > 100 {
				t.Errorf("1000 Hz amplitude %.0f, want none", a)
			}
		})
	}
}

// TestWriter_FileValidBeforeClose shows the crash behaviour: while the
// writer is open, the file on disk is a valid WAV of every whole second
// written, header sizes included.
func TestWriter_FileValidBeforeClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mix.wav")
	w, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	writeTone(t, w, 440, 2.5)
	b, h := readFile(t, path)
	if h.DataSize != 2*8000*2 || int64(len(b)) != h.DataOffset+int64(h.DataSize) {
		t.Errorf("open file: data size %d, file %d bytes; want 2 s flushed (%d bytes of data)", h.DataSize, len(b), 2*8000*2)
	}
	if got := soxiSamples(t, path); got != 16000 {
		t.Errorf("soxi -s on the open file = %d, want 16000", got)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := soxiSamples(t, path); got != 20000 {
		t.Errorf("soxi -s after Flush = %d, want 20000", got)
	}
}

// readFile returns the file's bytes and parsed header.
func readFile(t *testing.T, path string) ([]byte, Header) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return b, h
}

func TestWriter_CloseIdempotent(t *testing.T) {
	w, err := New(filepath.Join(t.TempDir(), "a.wav"))
	if err != nil {
		t.Fatal(err)
	}
	writeTone(t, w, 440, 0.1)
	for i := range 3 {
		if err := w.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	if err := w.WriteFrame(make([]int16, 160)); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteFrame after Close = %v, want ErrClosed", err)
	}
}

func TestWriter_Errors(t *testing.T) {
	if _, err := NewWith(&bytes.Buffer{}, WithChannels(0)); err == nil {
		t.Error("NewWith with 0 channels: no error")
	}
	w, err := NewWith(&bytes.Buffer{}, WithChannels(2))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFrame(make([]int16, 3)); !errors.Is(err, ErrFormat) {
		t.Errorf("odd sample count on stereo = %v, want ErrFormat", err)
	}
	if _, err := NewG711With(&bytes.Buffer{}, PCM); !errors.Is(err, ErrFormat) {
		t.Errorf("NewG711With(PCM) = %v, want ErrFormat", err)
	}
}

// TestWriter_NonSeekable writes to a plain io.Writer: the header declares an
// unknown size and sox still reads every sample.
func TestWriter_NonSeekable(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWith(&buf)
	if err != nil {
		t.Fatal(err)
	}
	writeTone(t, w, 440, 1.3)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	h, err := ParseHeader(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if h.DataSize != ^uint32(0) {
		t.Errorf("streaming data size = %#x, want 0xFFFFFFFF", h.DataSize)
	}
	path := filepath.Join(t.TempDir(), "s.wav")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if pcm := tooltest.DecodePCM(t, path); len(pcm) != 10400 {
		t.Errorf("sox decoded %d samples, want 10400", len(pcm))
	}
}

func TestWriteFrame_ZeroAllocs(t *testing.T) {
	w, err := New(filepath.Join(t.TempDir(), "a.wav"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	frame := mediatest.Sine(440, 8000, 160, 8000)
	write := func() {
		if err := w.WriteFrame(frame); err != nil {
			t.Fatal(err)
		}
	}
	// 200 runs cross several one-second flushes with their header patches;
	// TotalAllocs also sees an allocation once per flush, which the average
	// of AllocsPerRun rounds away.
	if n := testing.AllocsPerRun(200, write); n != 0 {
		t.Errorf("WriteFrame allocates %.1f times per 20 ms frame, want 0", n)
	}
	if n := tooltest.TotalAllocs(200, write); n != 0 {
		t.Errorf("200 WriteFrame calls allocate %d times, want 0", n)
	}
}

// BenchmarkWriteFrame writes 20 ms frames of 8 kHz mono to a file, flushes
// and header patches included.
func BenchmarkWriteFrame(b *testing.B) {
	for _, rate := range []int{8000, 48000} {
		b.Run(strconv.Itoa(rate)+"Hz", func(b *testing.B) {
			w, err := New(filepath.Join(b.TempDir(), "a.wav"), WithSampleRate(rate))
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			frame := mediatest.Sine(440, rate, rate/50, 8000)
			b.ReportAllocs()
			b.SetBytes(int64(2 * len(frame)))
			for b.Loop() {
				if err := w.WriteFrame(frame); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGoAudioEncoder is the same work through github.com/go-audio/wav's
// Encoder, which calls binary.Write per sample: the reason the hot path does
// not use it.
func BenchmarkGoAudioEncoder(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "a.wav"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	e := wav.NewEncoder(f, 8000, 16, 1, 1)
	defer e.Close()
	frame := mediatest.Sine(440, 8000, 160, 8000)
	buf := &audio.IntBuffer{Format: &audio.Format{NumChannels: 1, SampleRate: 8000}, SourceBitDepth: 16, Data: make([]int, len(frame))}
	for i, s := range frame {
		buf.Data[i] = int(s)
	}
	b.ReportAllocs()
	b.SetBytes(int64(2 * len(frame)))
	for b.Loop() {
		if err := e.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// crashFile writes seconds of tone without closing the writer, then appends
// extra raw bytes, as a process killed mid-write leaves the file.
func crashFile(t *testing.T, f Format, seconds float64, extra int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "crash.wav")
	if f == PCM {
		w, err := New(path)
		if err != nil {
			t.Fatal(err)
		}
		writeTone(t, w, 440, seconds)
		w.file.Close() // the process dies: no Close
	} else {
		g, err := NewG711(path, f)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < int(seconds*50); i++ {
			writeG711(t, g, f, 1, uint32(160*i), 160, 1000)
		}
		g.w.file.Close()
	}
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.Write(bytes.Repeat([]byte{0x11}, extra)); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRepair(t *testing.T) {
	tests := []struct {
		name        string
		format      Format
		seconds     float64
		extra       int
		wantSamples int64
	}{
		{"PCM flushed only", PCM, 2.5, 0, 16000},
		{"PCM partial sample frame", PCM, 1, 1001, 8000 + 500},
		{"PCM stale header", PCM, 1.2, 3200, 8000 + 1600},
		{"mu-law odd length", MuLaw, 1, 161, 8000 + 161},
		{"A-law", ALaw, 2, 80, 16000 + 80},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := crashFile(t, tt.format, tt.seconds, tt.extra)
			if err := Repair(path); err != nil {
				t.Fatal(err)
			}
			if got := soxiSamples(t, path); got != tt.wantSamples {
				t.Errorf("soxi -s after Repair = %d, want %d", got, tt.wantSamples)
			}
			b, h := readFile(t, path)
			if riff := binary.LittleEndian.Uint32(b[4:]); int(riff) != len(b)-8 {
				t.Errorf("RIFF size %d, file %d bytes", riff, len(b))
			}
			if h.FactOffset > 0 {
				if n := binary.LittleEndian.Uint32(b[h.FactOffset:]); int64(n) != tt.wantSamples {
					t.Errorf("fact sample length %d, want %d", n, tt.wantSamples)
				}
			}
			// A second Repair of a consistent file changes nothing.
			if err := Repair(path); err != nil {
				t.Fatal(err)
			}
			b2, _ := os.ReadFile(path)
			if !bytes.Equal(b, b2) {
				t.Error("second Repair changed the file")
			}
		})
	}
}

func TestRepair_Rejects(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string][]byte{
		"empty":   nil,
		"text":    []byte("hello, this is not a wav file at all"),
		"no data": putHeader(make([]byte, 44), PCM, 1, 8000, 0)[:36],
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := Repair(path); !errors.Is(err, ErrHeader) {
			t.Errorf("%s: Repair = %v, want ErrHeader", name, err)
		}
	}
	if err := Repair(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file: no error")
	}
}

// memFile is an in-memory repairFile.
type memFile struct{ b []byte }

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, nil
	}
	return copy(p, m.b[off:]), nil
}

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}

func (m *memFile) Truncate(n int64) error {
	if n > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, n-int64(len(m.b)))...)
	}
	m.b = m.b[:n]
	return nil
}

// FuzzRepair feeds arbitrary files to the header parser and Repair: no
// panic, and a repaired file parses with sizes that match its length.
func FuzzRepair(f *testing.F) {
	f.Add(append(putHeader(make([]byte, 44), PCM, 1, 8000, 0), 1, 2, 3))
	f.Add(append(putHeader(make([]byte, 58), MuLaw, 1, 8000, 7), 1, 2, 3))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		m := &memFile{b: append([]byte(nil), data...)}
		if err := repair(m, int64(len(m.b))); err != nil {
			return
		}
		h, err := ParseHeader(m.b)
		if err != nil {
			t.Fatalf("repaired file does not parse: %v", err)
		}
		if int64(len(m.b)) > int64(len(data)) && len(m.b) != len(data)+1 {
			t.Fatalf("repair grew the file from %d to %d bytes", len(data), len(m.b))
		}
		if end := h.DataOffset + int64(h.DataSize); end > int64(len(m.b)) {
			t.Fatalf("data chunk ends at %d beyond the file's %d bytes", end, len(m.b))
		}
	})
}

func TestFormat_String(t *testing.T) {
	for f, want := range map[Format]string{PCM: "PCM", ALaw: "A-law", MuLaw: "µ-law", 85: "Format(85)"} {
		if got := f.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", uint16(f), got, want)
		}
	}
}
