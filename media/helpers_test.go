package media

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/internal/tooltest"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/media/ogg"
)

// captureSink is a FrameSink that keeps every frame.
type captureSink struct{ pcm []int16 }

func (c *captureSink) WriteFrame(pcm []int16) error {
	c.pcm = append(c.pcm, pcm...)
	return nil
}

// discardSink is a FrameSink that keeps nothing (benchmarks, alloc tests).
type discardSink struct{ frames int }

func (d *discardSink) WriteFrame([]int16) error { d.frames++; return nil }

// writeRaw writes samples as raw signed 16-bit little-endian PCM to a file in
// dir and returns its path.
func writeRaw(t testing.TB, dir, name string, pcm []int16) string {
	t.Helper()
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, pcm); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// readRaw reads raw signed 16-bit little-endian PCM.
func readRaw(t testing.TB, path string) []int16 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int16, len(b)/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return out
}

// encodeOpus encodes 48 kHz mono PCM with the real opusenc (20 ms frames)
// and returns the Opus packets from the Ogg file (RFC 7845), headers skipped.
func encodeOpus(t testing.TB, pcm48 []int16, extra ...string) [][]byte {
	t.Helper()
	dir := t.TempDir()
	raw := writeRaw(t, dir, "in.raw", pcm48)
	out := filepath.Join(dir, "out.opus")
	args := append([]string{"--quiet", "--raw", "--raw-rate", "48000", "--raw-chan", "1", "--framesize", "20"}, extra...)
	tooltest.Run(t, "opusenc", append(args, raw, out)...)
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	pkts := oggPackets(t, data)
	if len(pkts) < 3 {
		t.Fatalf("opusenc wrote %d packets", len(pkts))
	}
	return pkts[2:] // OpusHead, OpusTags
}

// oggPackets splits an Ogg stream (RFC 3533) into its packets.
func oggPackets(t testing.TB, data []byte) [][]byte {
	t.Helper()
	var pkts [][]byte
	if _, err := ogg.ReadPackets(bytes.NewReader(data), func(p []byte) error {
		pkts = append(pkts, bytes.Clone(p))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return pkts
}

// opusSamples48 returns the duration of an Opus packet in 48 kHz samples from
// its TOC byte (RFC 6716 §3.1).
func opusSamples48(pkt []byte) int {
	config := int(pkt[0] >> 3)
	var per int // samples per frame at 48 kHz
	switch {
	case config < 12:
		per = []int{480, 960, 1920, 2880}[config%4]
	case config < 16:
		per = []int{480, 960}[config%2]
	default:
		per = []int{120, 240, 480, 960}[config%4]
	}
	switch pkt[0] & 3 {
	case 0:
		return per
	case 1, 2:
		return 2 * per
	}
	if len(pkt) < 2 {
		return 0
	}
	return per * int(pkt[1]&0x3F)
}

// timedPacket is an RTP packet and the time it arrives.
type timedPacket struct {
	at  time.Duration
	pkt *rtp.Packet
	sr  *senderReport // read just before the packet (nil: none)
	// received, if set, is when the packet reached the machine (it is read
	// at at, later: WriteRTPAt).
	received *time.Duration
}

// senderReport is an RTCP sender report as AudioPipeline.SenderReport takes it.
type senderReport struct {
	ssrc uint32
	ntp  time.Time
	rtp  uint32
}

// packetize turns payloads into RTP packets sent in real time: timestamps
// advance by step ticks of the clock per payload (by the Opus TOC duration
// when step is 0) and so do arrival times.
func packetize(payloads [][]byte, clock int, ssrc uint32, seq uint16, ts uint32, step uint32) []timedPacket {
	out := make([]timedPacket, 0, len(payloads))
	var at time.Duration
	for _, p := range payloads {
		out = append(out, timedPacket{at: at, pkt: &rtp.Packet{
			Header:  rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc},
			Payload: p,
		}})
		d := step
		if d == 0 {
			d = uint32(opusSamples48(p))
		}
		seq++
		ts += d
		at += time.Duration(d) * time.Second / time.Duration(clock)
	}
	return out
}

// vclock is a virtual clock for a mixer: tests move it by hand.
type vclock struct{ t time.Time }

func (c *vclock) now() time.Time { return c.t }

// vclocks maps a test mixer to its virtual clock.
var vclocks sync.Map

// newVirtualMixer returns a mixer on a virtual clock starting at 0.
func newVirtualMixer(cfg MixConfig, sink FrameSink) (*Mixer, *vclock) {
	c := &vclock{t: time.Unix(1_000_000, 0)}
	cfg.Clock, cfg.Start = c.now, c.t
	m := NewMixer(cfg, sink)
	vclocks.Store(m, c)
	return m, c
}

// clockOf returns the virtual clock of a mixer made by newVirtualMixer.
func clockOf(m *Mixer) *vclock {
	c, _ := vclocks.Load(m)
	return c.(*vclock)
}

// simulate plays packets into pipeline on the mixer's virtual clock: each
// packet is written at its arrival time, and the mixer steps every 20 ms
// until total; then the pipeline closes and the mix is finished at total, as
// a recording stops.
func simulate(t testing.TB, m *Mixer, p *AudioPipeline, pkts []timedPacket, total time.Duration) {
	t.Helper()
	c := clockOf(m)
	t0 := m.Config().Start
	frame := m.Config().Frame
	i := 0
	for now := time.Duration(0); now < total; now += frame {
		for i < len(pkts) && pkts[i].at <= now {
			c.t = t0.Add(pkts[i].at)
			if r := pkts[i].sr; r != nil {
				p.SenderReport(r.ssrc, r.ntp, r.rtp)
			}
			write := p.WriteRTP
			if r := pkts[i].received; r != nil {
				write = func(pkt *rtp.Packet) error { return p.WriteRTPAt(pkt, t0.Add(*r)) }
			}
			if err := write(pkts[i].pkt); err != nil {
				t.Fatal(err)
			}
			i++
		}
		c.t = t0.Add(now)
		if err := m.Step(); err != nil {
			t.Fatal(err)
		}
	}
	c.t = t0.Add(total)
	p.Close()
	m.RemoveInput(p.input)
	if err := m.Finish(m.Now()); err != nil {
		t.Fatal(err)
	}
}

// activity returns, per block of the given length, whether the tone at freq
// is present (above -30 dBFS) in pcm.
func activity(pcm []int16, rate int, freq float64, block int) []bool {
	var out []bool
	for i := 0; i+block <= len(pcm); i += block {
		out = append(out, mediatest.ToneLevel(pcm[i:i+block], rate, freq) > -30)
	}
	return out
}

// onsets returns the block indexes where activity switches on.
func onsets(act []bool) []int {
	var out []int
	for i, a := range act {
		if a && (i == 0 || !act[i-1]) {
			out = append(out, i)
		}
	}
	return out
}

// count returns how many blocks are active.
func count(act []bool) int {
	n := 0
	for _, a := range act {
		if a {
			n++
		}
	}
	return n
}

// beeps returns n samples at rate of a tone at freq that is on for on and
// off for off, repeating, starting on.
func beeps(freq float64, rate, n int, on, off time.Duration, amplitude int16) []int16 {
	pcm := mediatest.Sine(freq, rate, n, amplitude)
	period := int((on + off) * time.Duration(rate) / time.Second)
	onN := int(on * time.Duration(rate) / time.Second)
	for i := range pcm {
		if i%period >= onN {
			pcm[i] = 0
		}
	}
	return pcm
}

// realtime measures a benchmark loop and reports how many times faster than
// real time it runs, each op handling audio of duration perOp: x_realtime
// from wall time and, on Linux, x_realtime_cpu from the thread's CPU time
// (the figure per core on a machine shared with other work).
type realtime struct {
	b     *testing.B
	perOp time.Duration
	cpu0  time.Duration
	ok    bool
}

func startRealtime(b *testing.B, perOp time.Duration) *realtime {
	runtime.LockOSThread()
	r := &realtime{b: b, perOp: perOp}
	r.cpu0, r.ok = threadCPU()
	return r
}

func (r *realtime) stop() {
	defer runtime.UnlockOSThread()
	n := float64(r.b.N)
	audio := r.perOp.Seconds() * n
	r.b.ReportMetric(audio/r.b.Elapsed().Seconds(), "x_realtime")
	if cpu1, ok := threadCPU(); ok && r.ok && cpu1 > r.cpu0 {
		r.b.ReportMetric(audio/(cpu1-r.cpu0).Seconds(), "x_realtime_cpu")
	}
}
