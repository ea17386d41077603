package media

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/internal/tooltest"
	"github.com/rtcrec/recorder/media/mediatest"
)

// speechLike returns d of 48 kHz audio with a voice-like spectrum: a few
// harmonics of a gliding fundamental, syllable-rate amplitude modulation and
// a little noise, so the encoder picks the modes it uses for speech.
func speechLike(d time.Duration) []int16 {
	n := int(d * 48000 / time.Second)
	out := make([]int16, n)
	var seed uint32 = 1
	for k, f := range []float64{140, 280, 420, 700, 1100, 2300} {
		tone := mediatest.Sine(f*(1+0.05*float64(k%2)), 48000, n, int16(5000/(k+1)))
		for i := range out {
			out[i] += tone[i]
		}
	}
	for i := range out {
		seed = seed*1664525 + 1013904223
		env := (i / 9600) % 3 // 200 ms syllables, every third one quiet
		v := int32(out[i]) + int32(int16(seed>>16))/64
		if env == 2 {
			v /= 20
		}
		out[i] = int16(v)
	}
	return out
}

// BenchmarkAudioPipeline_OpusDecode measures WriteRTP (reorder, Opus decode
// at the mix rate, ring write) per 20 ms packet of opusenc output, with the
// mixer consuming, and reports how many times faster than real time.
func BenchmarkAudioPipeline_OpusDecode(b *testing.B) {
	src := speechLike(10 * time.Second)
	encodings := []struct {
		name string
		args []string
	}{
		{"speech32k", []string{"--speech", "--bitrate", "32"}},
		{"music64k", []string{"--music", "--bitrate", "64"}},
	}
	for _, enc := range encodings {
		payloads := encodeOpus(b, src, enc.args...)
		for _, rate := range []int{8000, 16000, 48000} {
			b.Run(fmt.Sprintf("%s/rate=%d", enc.name, rate), func(b *testing.B) {
				m, _, p := newTestPipeline(b, CodecOpus, rate)
				m.sink = &discardSink{}
				pkt := &rtp.Packet{Header: rtp.Header{SSRC: 1}}
				i := 0
				b.ReportAllocs()
				rt := startRealtime(b, 20*time.Millisecond)
				for b.Loop() {
					pkt.Payload = payloads[i%len(payloads)]
					if err := p.WriteRTP(pkt); err != nil {
						b.Fatal(err)
					}
					pkt.SequenceNumber++
					pkt.Timestamp += 960
					i++
					p.ring.Skip(p.ring.Len()) // the mixer's part, without its cost
				}
				rt.stop()
				if s := p.Stats(); s.DecodeErrors != 0 {
					b.Fatalf("decode errors: %+v", s)
				}
			})
		}
	}
}

// BenchmarkAudioPipeline_G711 measures WriteRTP for PCMU at 8 kHz.
func BenchmarkAudioPipeline_G711(b *testing.B) {
	m, _, p := newTestPipeline(b, CodecPCMU, 8000)
	m.sink = &discardSink{}
	payload := bytes.Repeat([]byte{0x12, 0x93, 0xFF, 0x7E}, 40)
	pkt := &rtp.Packet{Header: rtp.Header{SSRC: 1}, Payload: payload}
	b.ReportAllocs()
	rt := startRealtime(b, 20*time.Millisecond)
	for b.Loop() {
		if err := p.WriteRTP(pkt); err != nil {
			b.Fatal(err)
		}
		pkt.SequenceNumber++
		pkt.Timestamp += 160
		p.ring.Skip(p.ring.Len())
	}
	rt.stop()
}

// soxInputs makes n WAV files (8 kHz mono 16-bit) of d with sox: tones at
// distinct frequencies, quiet enough that their sum never clips.
func soxInputs(tb testing.TB, n int, d time.Duration) []string {
	tb.Helper()
	dir := tb.TempDir()
	var paths []string
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("in%d.wav", i))
		tooltest.Run(tb, "sox", "-D", "-n", "-r", "8000", "-c", "1", "-b", "16", p,
			"synth", fmt.Sprint(d.Seconds()), "sine", fmt.Sprint(200+130*i), "vol", "0.09")
		paths = append(paths, p)
	}
	return paths
}

// wavData returns the samples of a 16-bit PCM WAV file's data chunk.
func wavData(tb testing.TB, path string) []int16 {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	off, size := wavDataChunk(tb, b)
	data := b[off:min(off+size, len(b))]
	out := make([]int16, len(data)/2)
	for j := range out {
		out[j] = int16(binary.LittleEndian.Uint16(data[2*j:]))
	}
	return out
}

// wavDataChunk returns the offset and size of the data chunk of the RIFF/WAVE
// file starting with b.
func wavDataChunk(tb testing.TB, b []byte) (offset, size int) {
	tb.Helper()
	for i := 12; i+8 <= len(b); {
		id, size := string(b[i:i+4]), int(binary.LittleEndian.Uint32(b[i+4:]))
		if id == "data" {
			return i + 8, size
		}
		i += 8 + size + size%2
	}
	tb.Fatal("no data chunk in the WAV header")
	return 0, 0
}

// wavStream reads the samples of a 16-bit PCM WAV file one frame at a time.
type wavStream struct {
	f   *os.File
	r   *bufio.Reader
	buf []byte
	pcm []int16
}

func openWAV(tb testing.TB, path string, frame int) *wavStream {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	head := make([]byte, 4096)
	n, _ := io.ReadFull(f, head)
	off, _ := wavDataChunk(tb, head[:n])
	if _, err := f.Seek(int64(off), io.SeekStart); err != nil {
		tb.Fatal(err)
	}
	return &wavStream{f: f, r: bufio.NewReaderSize(f, 64<<10), buf: make([]byte, 2*frame), pcm: make([]int16, frame)}
}

// next returns the next frame (shorter at the end; empty when done).
func (w *wavStream) next() []int16 {
	n, _ := io.ReadFull(w.r, w.buf)
	for i := range n / 2 {
		w.pcm[i] = int16(binary.LittleEndian.Uint16(w.buf[2*i:]))
	}
	return w.pcm[:n/2]
}

// fileSink writes frames as raw little-endian PCM through a buffer.
type fileSink struct {
	w   *bufio.Writer
	buf []byte
}

func (f *fileSink) WriteFrame(pcm []int16) error {
	f.buf = f.buf[:0]
	for _, s := range pcm {
		f.buf = binary.LittleEndian.AppendUint16(f.buf, uint16(s))
	}
	_, err := f.w.Write(f.buf)
	return err
}

// mixFiles mixes WAV inputs with our Mixer the way the recorder does (each
// input through its ring, one Step per 20 ms frame) into a raw PCM file at
// out, streaming the inputs and the output like sox does.
func mixFiles(tb testing.TB, inputs []string, out string) {
	tb.Helper()
	f, err := os.Create(out)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sink := &fileSink{w: bufio.NewWriterSize(f, 64<<10)}
	m, c := newVirtualMixer(MixConfig{}, sink)
	streams := make([]*wavStream, len(inputs))
	ins := make([]*MixInput, len(inputs))
	for i, p := range inputs {
		streams[i] = openWAV(tb, p, m.FrameSamples())
		defer streams[i].f.Close()
		ins[i] = m.AddInput(fmt.Sprint(i), InputOptions{})
	}
	for {
		got := 0
		for i, in := range ins {
			frame := streams[i].next()
			got += len(frame)
			in.Ring().Write(frame)
		}
		if got == 0 {
			break
		}
		c.t = c.t.Add(m.Config().Frame)
		if err := m.Step(); err != nil {
			tb.Fatal(err)
		}
	}
	for _, in := range ins {
		m.RemoveInput(in)
	}
	if err := m.Finish(m.Now()); err != nil {
		tb.Fatal(err)
	}
	if err := sink.w.Flush(); err != nil {
		tb.Fatal(err)
	}
}

// soxMix runs sox -m on the inputs (unit gain, no dither) into a raw PCM
// file and returns the process's CPU time.
func soxMix(tb testing.TB, inputs []string, out string) time.Duration {
	tb.Helper()
	sox := testenv.LookPath(tb, "sox")
	args := []string{"-D", "-m"}
	for _, p := range inputs {
		args = append(args, "-v", "1", p)
	}
	args = append(args, "-t", "raw", "-e", "signed", "-b", "16", out)
	ctx, cancel := context.WithTimeout(context.Background(), tooltest.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, sox, args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("sox -m: %v\n%s", err, b)
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

// TestMixer_MatchesSoxMix mixes the same 10 inputs with our mixer and with
// sox -m: the outputs must be identical sample for sample (a cushion of one
// frame means no delay).
func TestMixer_MatchesSoxMix(t *testing.T) {
	inputs := soxInputs(t, 10, 3*time.Second)
	dir := t.TempDir()
	ours, theirs := filepath.Join(dir, "ours.raw"), filepath.Join(dir, "sox.raw")
	mixFiles(t, inputs, ours)
	soxMix(t, inputs, theirs)
	a, b := readRaw(t, ours), readRaw(t, theirs)
	if i := firstDiff(a, b); i >= 0 {
		t.Fatalf("%d and %d samples; first difference at %d", len(a), len(b), i)
	}
	if lvl := mediatest.ToneLevel(a, 8000, 200+130*9); lvl < -30 {
		t.Errorf("tenth input at %.1f dBFS", lvl)
	}
}

// BenchmarkMixer_VsSox mixes 10 inputs of 5 minutes with our mixer and with
// sox -m in the same run, both reading the WAV files and writing raw PCM, and
// reports the CPU and wall time of each and their ratios. Run with
// -benchtime=1x.
func BenchmarkMixer_VsSox(b *testing.B) {
	inputs := soxInputs(b, 10, 5*time.Minute)
	out := filepath.Join(b.TempDir(), "out.raw")
	var ourCPU, ourWall, soxCPU, soxWall time.Duration
	for b.Loop() {
		runtime.LockOSThread()
		c0, _ := threadCPU()
		t0 := time.Now()
		mixFiles(b, inputs, out)
		c1, _ := threadCPU()
		t1 := time.Now()
		runtime.UnlockOSThread()
		ourCPU, ourWall = ourCPU+c1-c0, ourWall+t1.Sub(t0)
		soxCPU += soxMix(b, inputs, out)
		soxWall += time.Since(t1)
	}
	n := float64(b.N)
	b.ReportMetric(soxCPU.Seconds()/n, "sox_cpu_s")
	b.ReportMetric(soxWall.Seconds()/n, "sox_wall_s")
	b.ReportMetric(ourCPU.Seconds()/n, "ours_cpu_s")
	b.ReportMetric(ourWall.Seconds()/n, "ours_wall_s")
	if ourCPU > 0 {
		b.ReportMetric(soxCPU.Seconds()/ourCPU.Seconds(), "sox/ours_cpu")
	}
	b.ReportMetric(soxWall.Seconds()/ourWall.Seconds(), "sox/ours_wall")
	b.ReportMetric(5*60/(ourWall.Seconds()/n), "x_realtime")
}
