package media

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/internal/tooltest"
	itu "github.com/rtcrec/recorder/media/g711"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/media/pause"
)

// newTestPipeline returns a mono mixer at rate capturing its output, with one
// input fed by a pipeline for codec.
func newTestPipeline(t testing.TB, codec Codec, rate int) (*Mixer, *captureSink, *AudioPipeline) {
	t.Helper()
	sink := &captureSink{}
	m, _ := newVirtualMixer(MixConfig{SampleRate: rate}, sink)
	p, err := NewAudioPipeline(AudioPipelineConfig{Codec: codec, Input: m.AddInput("track", InputOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	return m, sink, p
}

// g711Reference encodes pcm (8 kHz) with sox to the given law ("u-law" or
// "a-law") and returns the encoded bytes and sox's own decoding of them.
func g711Reference(t testing.TB, pcm []int16, law string) ([]byte, []int16) {
	t.Helper()
	dir := t.TempDir()
	in := writeRaw(t, dir, "in.raw", pcm)
	enc := filepath.Join(dir, "enc.raw")
	dec := filepath.Join(dir, "dec.raw")
	tooltest.Run(t, "sox", "-t", "raw", "-r", "8000", "-e", "signed", "-b", "16", "-c", "1", in, "-t", "raw", "-e", law, enc)
	tooltest.Run(t, "sox", "-t", "raw", "-r", "8000", "-e", law, "-c", "1", enc, "-t", "raw", "-e", "signed", "-b", "16", dec)
	encoded, err := os.ReadFile(enc)
	if err != nil {
		t.Fatal(err)
	}
	return encoded, readRaw(t, dec)
}

// chunk splits b into payloads of n bytes.
func chunk(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) >= n {
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

// TestAudioPipeline_G711MatchesSox decodes sox-encoded µ-law and A-law and
// compares every sample with sox's own decoding: bit-exact, at the first
// packet's arrival.
func TestAudioPipeline_G711MatchesSox(t *testing.T) {
	src := mediatest.Add(mediatest.Sine(440, 8000, 16000, 12000), mediatest.Sine(2300, 8000, 16000, 3000))
	for _, tt := range []struct {
		codec Codec
		law   string
	}{{CodecPCMU, "u-law"}, {CodecPCMA, "a-law"}} {
		t.Run(tt.codec.String(), func(t *testing.T) {
			enc, ref := g711Reference(t, src, tt.law)
			m, sink, p := newTestPipeline(t, tt.codec, 8000)
			pkts := packetize(chunk(enc, 160), 8000, 1, 100, 5000, 160)
			simulate(t, m, p, pkts, 2200*time.Millisecond)
			got := sink.pcm[:len(ref)]
			if i := firstDiff(got, ref); i >= 0 {
				t.Fatalf("sample %d: got %d, sox decodes %d", i, got[i], ref[i])
			}
			if lvl := mediatest.ToneLevel(got, 8000, 440); lvl < -10 {
				t.Errorf("440 Hz at %.1f dBFS", lvl)
			}
			if len(sink.pcm) != 2200*8 {
				t.Errorf("mix has %d samples, want %d (2.2 s)", len(sink.pcm), 2200*8)
			}
		})
	}
}

func firstDiff(a, b []int16) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

func TestG711_KnownValues(t *testing.T) {
	tests := []struct {
		table *[256]int16
		in    byte
		want  int16
	}{
		{&g711.ulaw, 0xFF, 0}, {&g711.ulaw, 0x7F, 0}, {&g711.ulaw, 0x00, -32124}, {&g711.ulaw, 0x80, 32124},
		{&g711.alaw, 0xD5, 8}, {&g711.alaw, 0x55, -8}, {&g711.alaw, 0xAA, 32256}, {&g711.alaw, 0x2A, -32256},
	}
	for _, tt := range tests {
		if got := tt.table[tt.in]; got != tt.want {
			t.Errorf("decode(%#02x) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// TestAudioPipeline_G711Upsamples checks G.711 into a 16 kHz mix.
func TestAudioPipeline_G711Upsamples(t *testing.T) {
	enc, _ := g711Reference(t, mediatest.Sine(700, 8000, 8000, 10000), "u-law")
	m, sink, p := newTestPipeline(t, CodecPCMU, 16000)
	simulate(t, m, p, packetize(chunk(enc, 160), 8000, 1, 0, 0, 160), time.Second+100*time.Millisecond)
	mid := sink.pcm[4000:14000]
	if lvl := mediatest.ToneLevel(mid, 16000, 700); lvl < -12 {
		t.Errorf("700 Hz at %.1f dBFS in the 16 kHz mix", lvl)
	}
	if lvl := mediatest.ToneLevel(mid, 16000, 7300); lvl > -35 { // the image at 8000-700
		t.Errorf("image at 7300 Hz at %.1f dBFS", lvl)
	}
}

// opusBeeps returns Opus packets (real opusenc) of 440 Hz beeps, 200 ms on and
// 300 ms off, lasting d, and the 48 kHz source.
func opusBeeps(t testing.TB, d time.Duration) [][]byte {
	t.Helper()
	src := beeps(440, 48000, int(d*48000/time.Second), 200*time.Millisecond, 300*time.Millisecond, 16000)
	return encodeOpus(t, src, "--bitrate", "32")
}

// TestAudioPipeline_OpusDecodes decodes opusenc output at the supported mix
// rates and checks the tone, the beep timing and the duration.
func TestAudioPipeline_OpusDecodes(t *testing.T) {
	payloads := opusBeeps(t, 3*time.Second)
	for _, rate := range []int{8000, 16000, 48000} {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			m, sink, p := newTestPipeline(t, CodecOpus, rate)
			simulate(t, m, p, packetize(payloads, 48000, 7, 0, 0, 0), 3200*time.Millisecond)
			if got, want := len(sink.pcm), rate*32/10; got != want {
				t.Errorf("mix has %d samples, want %d", got, want)
			}
			checkBeeps(t, sink.pcm, rate, 0, 6)
			if lvl := mediatest.ToneLevel(sink.pcm, rate, 1000); lvl > -40 {
				t.Errorf("1000 Hz (absent) at %.1f dBFS", lvl)
			}
			if s := p.Stats(); s.Decoded != uint64(len(payloads)) || s.DecodeErrors != 0 || s.Late != 0 {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

// checkBeeps checks that the 440 Hz beeps of opusBeeps (200 ms every 500 ms)
// start where the timeline puts them: at the first packet's arrival plus k*500 ms,
// within 10 ms, for k = 0..n-1 (plus skip ms for a shifted timeline), and that
// each lasts about 200 ms.
func checkBeeps(t *testing.T, pcm []int16, rate int, skip time.Duration, n int) {
	t.Helper()
	block := rate / 100 // 10 ms
	act := fillHoles(activity(pcm, rate, 440, block), 3)
	on := onsets(act)
	if len(on) != n {
		t.Fatalf("%d beeps (onsets at %v ×10 ms), want %d", len(on), on, n)
	}
	for k, o := range on {
		want := int((skip + time.Duration(k)*500*time.Millisecond) / (10 * time.Millisecond))
		if o < want-1 || o > want+1 {
			t.Errorf("beep %d starts at %d ms, want %d ms", k, o*10, want*10)
		}
	}
	if c := count(act); c < n*18 || c > n*21 {
		t.Errorf("beeps last %d ms in all, want about %d ms", c*10, n*200)
	}
}

// TestAudioPipeline_TimelineUnderNetworkFaults plays the same Opus beeps
// through loss, DTX, jitter, reordering and wrap-around: the beeps must stay
// exactly where RTP time puts them (the track's duration equals wall-clock
// time), and where nothing is lost the samples must equal a clean run's.
func TestAudioPipeline_TimelineUnderNetworkFaults(t *testing.T) {
	payloads := opusBeeps(t, 5*time.Second)
	clean := packetize(payloads, 48000, 7, 1000, 0, 0)
	run := func(t *testing.T, pkts []timedPacket) ([]int16, PipelineStats) {
		m, sink, p := newTestPipeline(t, CodecOpus, 8000)
		slices.SortStableFunc(pkts, func(a, b timedPacket) int { return int(a.at - b.at) })
		simulate(t, m, p, pkts, 5200*time.Millisecond)
		t.Logf("ratio %v", p.Ratio())
		if got := len(sink.pcm); got != 5200*8 {
			t.Errorf("mix has %d samples, want %d", got, 5200*8)
		}
		return sink.pcm, p.Stats()
	}
	ref, _ := run(t, clone(clean))
	checkBeeps(t, ref, 8000, 0, 10)

	tests := []struct {
		name  string
		mod   func([]timedPacket) []timedPacket
		exact bool // no packet lost: samples equal the clean run's
		check func(*testing.T, PipelineStats)
	}{
		{"jitter up to 120 ms (reordering within the hold window)", func(ps []timedPacket) []timedPacket {
			// The first packet sets the track's start in the mix, so only
			// the later ones are jittered.
			r := rand.New(rand.NewPCG(1, 2))
			for i := 1; i < len(ps); i++ {
				ps[i].at += time.Duration(r.IntN(120)) * time.Millisecond
			}
			return ps
		}, true, nil},
		{"reordered pairs", func(ps []timedPacket) []timedPacket {
			// Packet i is held up behind packet i+1 (no packet arrives
			// before it was sent: the least-late one places the track).
			for i := 7; i+1 < len(ps); i += 7 {
				ps[i].at = ps[i+1].at + time.Millisecond
			}
			return ps
		}, true, nil},
		{"sequence and timestamp wrap", func(ps []timedPacket) []timedPacket {
			for i := range ps {
				ps[i].pkt.SequenceNumber += 65536 - 1000 - 40
				ps[i].pkt.Timestamp += 1<<32 - 1000 - 40*960
			}
			return ps
		}, true, nil},
		{"duplicates", func(ps []timedPacket) []timedPacket {
			var out []timedPacket
			for i, p := range ps {
				out = append(out, p)
				if i%3 == 0 {
					out = append(out, timedPacket{at: p.at + 5*time.Millisecond, pkt: p.pkt})
				}
			}
			return out
		}, true, func(t *testing.T, s PipelineStats) {
			if s.Duplicates == 0 {
				t.Errorf("no duplicates counted: %+v", s)
			}
		}},
		{"10% loss", func(ps []timedPacket) []timedPacket {
			var out []timedPacket
			for i, p := range ps {
				if i%10 != 4 {
					out = append(out, p)
				}
			}
			return out
		}, false, func(t *testing.T, s PipelineStats) {
			if s.Lost < 20 {
				t.Errorf("lost %d packets, want about 25", s.Lost)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, stats := run(t, tt.mod(clone(clean)))
			checkBeeps(t, got, 8000, 0, 10)
			if tt.exact {
				if i := firstDiff(got, ref); i >= 0 {
					t.Errorf("sample %d differs from the clean run: %d != %d", i, got[i], ref[i])
				}
			}
			if tt.check != nil {
				tt.check(t, stats)
			}
			t.Logf("%+v", stats)
		})
	}
}

// fillHoles marks inactive runs of up to n blocks between active ones active
// (a lost packet inside a beep must not count as a new beep).
func fillHoles(act []bool, n int) []bool {
	out := slices.Clone(act)
	last := -1
	for i, a := range act {
		if !a {
			continue
		}
		if last >= 0 && i-last-1 <= n {
			for j := last + 1; j < i; j++ {
				out[j] = true
			}
		}
		last = i
	}
	return out
}

// TestAudioPipeline_OpusDTX encodes with real Opus DTX (opusenc with
// OPUS_SET_DTX, 4016) and sends no packet for the DTX frames, as a WebRTC
// sender does: sequence numbers stay contiguous and timestamps jump over the
// silence. The beeps must stay where RTP time puts them.
func TestAudioPipeline_OpusDTX(t *testing.T) {
	src := beeps(440, 48000, 5*48000, 200*time.Millisecond, 300*time.Millisecond, 16000)
	payloads := encodeOpus(t, src, "--speech", "--bitrate", "24", "--set-ctl-int", "4016=1")
	var pkts []timedPacket
	var seq uint16 = 50000
	for _, p := range packetize(payloads, 48000, 7, 0, 0, 0) {
		if len(p.pkt.Payload) <= 2 { // a DTX frame: not sent
			continue
		}
		p.pkt.SequenceNumber = seq
		seq++
		pkts = append(pkts, p)
	}
	if len(pkts) > len(payloads)*8/10 {
		t.Fatalf("opusenc made only %d DTX frames of %d", len(payloads)-len(pkts), len(payloads))
	}
	m, sink, p := newTestPipeline(t, CodecOpus, 8000)
	simulate(t, m, p, pkts, 5200*time.Millisecond)
	if len(sink.pcm) != 5200*8 {
		t.Errorf("mix has %d samples, want %d", len(sink.pcm), 5200*8)
	}
	checkBeeps(t, sink.pcm, 8000, 0, 10)
	if s := p.Stats(); s.Lost != 0 || s.Late != 0 || s.Reanchors != 0 {
		t.Errorf("stats %+v", s)
	}
	t.Logf("%d of %d packets sent; %+v", len(pkts), len(payloads), p.Stats())
}

// clone deep-copies packets so a test case can modify them.
func clone(ps []timedPacket) []timedPacket {
	out := make([]timedPacket, len(ps))
	for i, p := range ps {
		pkt := *p.pkt
		out[i] = timedPacket{at: p.at, pkt: &pkt}
	}
	return out
}

// TestAudioPipeline_Reanchors shows that a new SSRC or a timestamp jump
// continues the track at the playout position instead of inserting the
// jump's worth of silence or dropping everything as late.
func TestAudioPipeline_Reanchors(t *testing.T) {
	payloads := opusBeeps(t, 5*time.Second)
	tests := []struct {
		name string
		mod  func(i int, h *rtp.Header)
	}{
		{"new SSRC", func(i int, h *rtp.Header) {
			if i >= 100 {
				h.SSRC, h.SequenceNumber, h.Timestamp = 99, h.SequenceNumber+30000, h.Timestamp+123456789
			}
		}},
		{"timestamp jumps forward an hour", func(i int, h *rtp.Header) {
			if i >= 100 {
				h.Timestamp += 3600 * 48000
			}
		}},
		{"timestamp jumps forward 3 s: within MaxJump, ahead of the arrival", func(i int, h *rtp.Header) {
			if i >= 100 {
				h.Timestamp += 3 * 48000
			}
		}},
		{"timestamp jumps back", func(i int, h *rtp.Header) {
			if i >= 100 {
				h.Timestamp -= 600 * 48000
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkts := packetize(payloads, 48000, 7, 0, 0, 0)
			for i := range pkts {
				tt.mod(i, &pkts[i].pkt.Header)
			}
			m, sink, p := newTestPipeline(t, CodecOpus, 8000)
			simulate(t, m, p, pkts, 5200*time.Millisecond)
			// The source is continuous across packet 100 (2 s), so the
			// beeps keep their 500 ms rhythm within the re-anchor's
			// 20 ms of slack.
			block := 80
			on := onsets(activity(sink.pcm, 8000, 440, block))
			if len(on) != 10 {
				t.Fatalf("%d beeps at %v ×10 ms, want 10", len(on), on)
			}
			for k, o := range on {
				if want := 50 * k; o < want-1 || o > want+3 {
					t.Errorf("beep %d starts at %d ms, want %d ms (+30)", k, o*10, want*10)
				}
			}
			if s := p.Stats(); s.Reanchors != 1 {
				t.Errorf("reanchors = %d, want 1 (%+v)", s.Reanchors, s)
			}
		})
	}
}

// TestAudioPipeline_NetworkStallKeepsAudio delivers 400 ms of packets in
// one burst after a stall: within the latency budget, every packet lands at
// its own place, and the mix holds every beep.
func TestAudioPipeline_NetworkStallKeepsAudio(t *testing.T) {
	payloads := opusBeeps(t, 5*time.Second)
	pkts := packetize(payloads, 48000, 7, 0, 0, 0)
	for i := range pkts {
		if at := pkts[i].at; at >= 2500*time.Millisecond && at < 2900*time.Millisecond {
			pkts[i].at = 2900 * time.Millisecond
		}
	}
	m, sink, p := newTestPipeline(t, CodecOpus, 8000)
	simulate(t, m, p, pkts, 5200*time.Millisecond)
	checkBeeps(t, sink.pcm, 8000, 0, 10)
	if s := p.Stats(); s.Late != 0 || s.Reanchors != 0 || s.Lost != 0 {
		t.Errorf("stats %+v: want nothing late, lost or re-anchored", s)
	}
}

// toneWindows returns, per 20 ms window of pcm, whether the tone at freq is
// there.
func toneWindows(pcm []int16, rate int, freq float64) []bool {
	return activity(pcm, rate, freq, rate/50)
}

// pcmuTone returns 20 ms PCMU packets of a continuous tone lasting d,
// sent in real time with the sender's clock at ratio × ours (arrival times
// scaled): a ratio of 1.001 is a sender 0.1 % slow.
func pcmuTone(d time.Duration, freq float64, ratio float64) []timedPacket {
	n := int(d / (20 * time.Millisecond))
	src := mediatest.Sine(freq, 8000, n*160, 10000)
	payloads := make([][]byte, n)
	for i := range payloads {
		b := make([]byte, 160)
		for j := range b {
			b[j] = itu.EncodeMuLaw(src[i*160+j])
		}
		payloads[i] = b
	}
	pkts := packetize(payloads, 8000, 1, 0, 0, 160)
	for i := range pkts {
		pkts[i].at = time.Duration(float64(pkts[i].at) * ratio)
	}
	return pkts
}

// TestAudioPipeline_ImpairmentsKeepEveryWindow runs a continuous tone through
// the impairments of issue 10 (as packet arrival times and sets) and checks
// the mix in 20 ms windows: the tone is in every window it is sent in.
func TestAudioPipeline_ImpairmentsKeepEveryWindow(t *testing.T) {
	const d = 20 * time.Second
	tests := []struct {
		name string
		mod  func([]timedPacket) []timedPacket
	}{
		{"stall 300 ms every 2 s, then a burst", func(ps []timedPacket) []timedPacket {
			for i := range ps {
				if ph := ps[i].at % (2 * time.Second); ph >= 1700*time.Millisecond {
					ps[i].at += 2*time.Second - ph
				}
			}
			return ps
		}},
		{"delay spikes of 1 s", func(ps []timedPacket) []timedPacket {
			for i := range ps {
				if i%97 == 50 {
					ps[i].at += time.Second
				}
			}
			return ps
		}},
		{"reordering within 200 ms", func(ps []timedPacket) []timedPacket {
			r := rand.New(rand.NewPCG(3, 4))
			for i := 1; i < len(ps); i++ {
				ps[i].at += time.Duration(r.IntN(200)) * time.Millisecond
			}
			return ps
		}},
		{"duplication", func(ps []timedPacket) []timedPacket {
			var out []timedPacket
			for i, p := range ps {
				out = append(out, p)
				if i%4 == 0 {
					out = append(out, timedPacket{at: p.at + 30*time.Millisecond, pkt: p.pkt})
				}
			}
			return out
		}},
		{"5% random loss (concealed)", func(ps []timedPacket) []timedPacket {
			r := rand.New(rand.NewPCG(5, 6))
			var out []timedPacket
			for i, p := range ps {
				if i == 0 || r.IntN(100) >= 5 || i == len(ps)-1 {
					out = append(out, p)
				}
			}
			return out
		}},
		{"sender clock 0.5% slow", func(ps []timedPacket) []timedPacket {
			for i := range ps {
				ps[i].at = ps[i].at * 1005 / 1000
			}
			return ps
		}},
		{"sender clock 4% fast", func(ps []timedPacket) []timedPacket {
			for i := range ps {
				ps[i].at = ps[i].at * 96 / 100
			}
			return ps
		}},
		{"sender clock 4% slow", func(ps []timedPacket) []timedPacket {
			for i := range ps {
				ps[i].at = ps[i].at * 104 / 100
			}
			return ps
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkts := tt.mod(pcmuTone(d, 440, 1))
			slices.SortStableFunc(pkts, func(a, b timedPacket) int { return int(a.at - b.at) })
			last := pkts[len(pkts)-1].at
			m, sink, p := newTestPipeline(t, CodecPCMU, 8000)
			simulate(t, m, p, pkts, last+40*time.Millisecond)
			// The tone is on the track's timeline from the first packet to
			// the end of the last: every window between must hold it (the
			// edge windows may be partial).
			act := toneWindows(sink.pcm[:p.lastEnd], 8000, 440)
			on := count(act[1 : len(act)-1])
			if frac := float64(on) / float64(len(act)-2); frac < 1 {
				t.Errorf("tone in %.4f of the 20 ms windows, want all (%+v)", frac, p.Stats())
			}
			t.Logf("windows with tone %d of %d; ratio %.4f; mix %d ms, track ends at %d ms; %+v", on, len(act)-2, p.Ratio(), len(sink.pcm)/8, p.lastEnd/8, p.Stats())
		})
	}
}

// TestAudioPipeline_SenderClockSkewResampled feeds timestamps that run 2 %
// slow and 3 % fast for 60 s: the pipeline resamples to the sender's rate
// instead of cutting or inserting silence, so the tone plays throughout and
// its pitch moves by the skew only.
func TestAudioPipeline_SenderClockSkewResampled(t *testing.T) {
	for _, ratio := range []float64{1.02, 0.97} {
		t.Run(fmt.Sprint(ratio), func(t *testing.T) {
			pkts := pcmuTone(60*time.Second, 440, ratio)
			m, sink, p := newTestPipeline(t, CodecPCMU, 8000)
			last := pkts[len(pkts)-1].at
			simulate(t, m, p, pkts, last+20*time.Millisecond)
			if got := p.Ratio(); got < ratio-0.002 || got > ratio+0.002 {
				t.Errorf("ratio %.4f, want %.4f", got, ratio)
			}
			// After 20 s of settling, the tone is at 440/ratio Hz.
			late := sink.pcm[40*8000 : 40*8000+1600]
			if lvl := mediatest.ToneLevel(late, 8000, 440/ratio); lvl < -15 {
				t.Errorf("%.1f Hz at %.1f dBFS", 440/ratio, lvl)
			}
			act := toneWindows(sink.pcm[:p.lastEnd], 8000, 440/ratio)
			miss := 0
			for _, a := range act[1 : len(act)-1] {
				if !a {
					miss++
				}
			}
			if miss > 0 {
				t.Errorf("%d windows without the tone", miss)
			}
			if s := p.Stats(); s.Reanchors != 0 || s.Late != 0 {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

func TestAudioPipeline_ClosedAndErrors(t *testing.T) {
	m := NewMixer(MixConfig{}, &discardSink{})
	in := m.AddInput("a", InputOptions{})
	if _, err := NewAudioPipeline(AudioPipelineConfig{Codec: CodecOpus}); err == nil {
		t.Error("no error without Input")
	}
	if _, err := NewAudioPipeline(AudioPipelineConfig{Codec: CodecUnknown, Input: in}); !errors.Is(err, ErrCodec) {
		t.Errorf("unknown codec: %v", err)
	}
	if _, err := NewAudioPipeline(AudioPipelineConfig{Codec: CodecOpus, Input: in, SampleRate: 16000}); err == nil {
		t.Error("no error for a rate other than the mix rate")
	}
	m12 := NewMixer(MixConfig{SampleRate: 12000}, &discardSink{})
	if _, err := NewAudioPipeline(AudioPipelineConfig{Codec: CodecPCMA, Input: m12.AddInput("b", InputOptions{})}); !errors.Is(err, ErrCodec) {
		t.Errorf("G.711 at 12 kHz: %v", err)
	}
	p, err := NewAudioPipeline(AudioPipelineConfig{Codec: CodecOpus, Input: in})
	if err != nil {
		t.Fatal(err)
	}
	bad := &rtp.Packet{Header: rtp.Header{SequenceNumber: 1}, Payload: []byte{0xFF, 0xFF, 0xFF}}
	if err := p.WriteRTP(bad); err != nil {
		t.Errorf("a bad payload is counted, not returned: %v", err)
	}
	if p.Stats().DecodeErrors != 1 {
		t.Errorf("decode errors %d, want 1", p.Stats().DecodeErrors)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := p.WriteRTP(bad); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteRTP after Close: %v", err)
	}
}

func TestCodecFromMime(t *testing.T) {
	tests := []struct {
		in   string
		want Codec
		ok   bool
	}{
		{"audio/opus", CodecOpus, true}, {"audio/OPUS", CodecOpus, true}, {"opus", CodecOpus, true},
		{"audio/PCMU", CodecPCMU, true}, {"audio/pcma", CodecPCMA, true},
		{"video/opus", CodecUnknown, false}, {"audio/G722", CodecUnknown, false}, {"", CodecUnknown, false},
	}
	for _, tt := range tests {
		got, err := CodecFromMime(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("CodecFromMime(%q) = %v, %v", tt.in, got, err)
		}
	}
}

// TestAudioPipeline_ZeroAllocs proves WriteRTP (decode, reorder, ring write)
// allocates nothing per packet, for Opus and G.711.
func TestAudioPipeline_ZeroAllocs(t *testing.T) {
	pcmu, _ := g711Reference(t, mediatest.Sine(440, 8000, 16000, 8000), "u-law")
	tests := []struct {
		name     string
		codec    Codec
		payloads [][]byte
		step     uint32
	}{
		{"opus beeps", CodecOpus, opusBeeps(t, 2*time.Second), 960},
		{"opus speech-like", CodecOpus, encodeOpus(t, speechLike(10*time.Second), "--speech", "--bitrate", "32"), 960},
		{"opus speech with in-band FEC (a lost packet decoded from it)", CodecOpus, fecSpeech(t), 960},
		{"PCMU", CodecPCMU, chunk(pcmu, 160), 160},
		{"PCMA", CodecPCMA, chunk(pcmu, 160), 160},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _, p := newTestPipeline(t, tt.codec, 8000)
			m.sink = &discardSink{}
			pkt := &rtp.Packet{Header: rtp.Header{SSRC: 1}}
			i := 0
			write := func() {
				pkt.Payload = tt.payloads[i%len(tt.payloads)]
				if i%9 == 4 { // reorder: hold one, then release both
					pkt.SequenceNumber++
					pkt.Timestamp += tt.step
				}
				if err := p.WriteRTP(pkt); err != nil {
					t.Fatal(err)
				}
				pkt.SequenceNumber++
				pkt.Timestamp += tt.step
				i++
				if err := m.Step(); err != nil {
					t.Fatal(err)
				}
			}
			// Warm up over the whole stream: the decoder grows its scratch
			// buffers the first time it meets each mode.
			for range len(tt.payloads) {
				write()
			}
			if a := testing.AllocsPerRun(500, write); a != 0 {
				t.Errorf("WriteRTP+Step allocate %.2f times per packet, want 0", a)
			}
			if strings.Contains(tt.name, "FEC") && p.Stats().Recovered == 0 {
				t.Errorf("no lost packet recovered from FEC: %+v", p.Stats())
			}
		})
	}
}

// FuzzAudioPipeline feeds arbitrary packets to the RTP-to-PCM path: it must
// never panic, and its ring must never grow (its decode buffers are lent:
// scratch).
func FuzzAudioPipeline(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 0, 0, 4, 0xFC, 0xFF, 0xFE, 0x01})
	f.Add([]byte{2, 0, 5, 0, 0, 0, 160, 0x78, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	f.Add([]byte{1, 255, 255, 255, 255, 255, 3, 1, 2, 3, 0, 0, 0, 0, 0, 0, 2, 9, 9})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 1 {
			return
		}
		codec := []Codec{CodecOpus, CodecPCMU, CodecPCMA}[int(data[0])%3]
		data = data[1:]
		m := NewMixer(MixConfig{}, &discardSink{})
		in := m.AddInput("f", InputOptions{RingCapacity: 4096})
		p, err := NewAudioPipeline(AudioPipelineConfig{Codec: codec, Input: in})
		if err != nil {
			t.Fatal(err)
		}
		ringCap := in.Ring().Cap()
		var pkt rtp.Packet
		for len(data) >= 6 {
			// seq delta, ts delta (×20 ms ticks), ssrc bit, payload length
			pkt.SequenceNumber += uint16(int8(data[0]))
			pkt.Timestamp += uint32(int16(uint16(data[1])<<8|uint16(data[2]))) * 160
			pkt.SSRC = uint32(data[3] >> 7)
			n := min(int(data[4])+int(data[5])*4, len(data)-6)
			pkt.Payload = data[6 : 6+n]
			data = data[6+n:]
			if err := p.WriteRTP(&pkt); err != nil {
				t.Fatal(err)
			}
			if err := m.Step(); err != nil {
				t.Fatal(err)
			}
			if r := in.Ring(); r.Len() > r.Cap() {
				t.Fatalf("ring holds %d > %d", r.Len(), r.Cap())
			}
		}
		if in.Ring().Cap() != ringCap {
			t.Fatal("the ring grew")
		}
		p.Close()
		m.RemoveInput(in)
		if err := m.Finish(m.Now()); err != nil {
			t.Fatal(err)
		}
		if r := in.Ring(); r.Tail() > r.End() || r.Head() > r.Tail() {
			t.Fatalf("ring counters head %d tail %d end %d", r.Head(), r.Tail(), r.End())
		}
	})
}

// TestAudioPipeline_OpusStereoDownmix decodes a stereo Opus stream (440 Hz
// left, 1000 Hz right, made by sox and opusenc) into the mono mix: both
// channels are heard, each at half level.
func TestAudioPipeline_OpusStereoDownmix(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "stereo.wav"), filepath.Join(dir, "stereo.opus")
	tooltest.Run(t, "sox", "-D", "-n", "-r", "48000", "-c", "2", "-b", "16", in, "synth", "2", "sine", "440", "sine", "1000", "vol", "0.5")
	tooltest.Run(t, "opusenc", "--quiet", "--bitrate", "64", in, out)
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	m, sink, p := newTestPipeline(t, CodecOpus, 8000)
	simulate(t, m, p, packetize(oggPackets(t, data)[2:], 48000, 1, 0, 0, 0), 2*time.Second)
	mid := sink.pcm[4000:12000]
	for _, f := range []float64{440, 1000} {
		if lvl := mediatest.ToneLevel(mid, 8000, f); lvl < -13 || lvl > -11 {
			t.Errorf("%v Hz at %.1f dBFS, want about -12 (half of -6)", f, lvl)
		}
	}
	if s := p.Stats(); s.DecodeErrors != 0 || s.Decoded != 100 {
		t.Errorf("stats %+v", s)
	}
}

// TestAudioPipeline_ConnectBurst: packets queued at connect arrive at once.
// Held up on our side (the first 300 ms arrive 300 ms late), the track is
// placed where the packets after the burst show it belongs, at its start;
// a backlog the sender queued (GStreamer sends 0.3–0.7 s at once) is placed
// by its timestamps, not stretched or squeezed: captured before the
// recording's time zero, the first 500 ms (the first beep) are left out of
// the mix and counted, and the rest is where it was captured.
func TestAudioPipeline_ConnectBurst(t *testing.T) {
	payloads := opusBeeps(t, 5*time.Second)
	tests := []struct {
		name   string
		mod    func(ps []timedPacket)
		beeps  int           // in the mix, the first at 0, every 500 ms
		origin time.Duration // of the first packet, on the timeline
		before uint64        // packets left out: before time zero
	}{
		{"first 300 ms held up 300 ms", func(ps []timedPacket) {
			for i := range ps {
				ps[i].at = max(ps[i].at, 300*time.Millisecond)
			}
		}, 10, 0, 0},
		{"a 500 ms backlog sent at once", func(ps []timedPacket) {
			for i := range ps {
				ps[i].at = max(ps[i].at-500*time.Millisecond, 0)
			}
		}, 9, -500 * time.Millisecond, 25},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkts := packetize(payloads, 48000, 7, 0, 0, 0)
			tt.mod(pkts)
			m, sink, p := newTestPipeline(t, CodecOpus, 8000)
			simulate(t, m, p, pkts, 5200*time.Millisecond)
			checkBeeps(t, sink.pcm, 8000, 0, tt.beeps)
			if o, ok := p.Origin(); !ok || o != int64(tt.origin/time.Millisecond)*8 {
				t.Errorf("origin %d (%v), want %d", o, ok, int64(tt.origin/time.Millisecond)*8)
			}
			if s := p.Stats(); s.Late != 0 || s.Reanchors != 0 || s.BeforeStart != tt.before {
				t.Errorf("stats %+v: want nothing late, no re-anchor, %d before the start", s, tt.before)
			}
		})
	}
}

// TestAudioPipeline_SkipPauseIsSeamless pauses a jittered PCMU tone with
// skip, as the recorder does: the gate drops the packets that arrive while
// paused (Pause at the first), the mixer cuts from the pause instant
// (Cut) to the resume (Uncut), and the first packet after it is placed at
// the cut's end (ResyncAt). The mix has no gap at the cut: the tone runs on
// in every 5 ms block, and the mix is as much shorter as the cut.
func TestAudioPipeline_SkipPauseIsSeamless(t *testing.T) {
	for _, cut := range []struct {
		from, to time.Duration
		spike    bool // the packets around both instants come 40 ms later
	}{
		{2013 * time.Millisecond, 4137 * time.Millisecond, false},
		{2001 * time.Millisecond, 2519 * time.Millisecond, false},
		{1999 * time.Millisecond, 3000 * time.Millisecond, false},
		{2013 * time.Millisecond, 4137 * time.Millisecond, true},
		{2005 * time.Millisecond, 3011 * time.Millisecond, true},
	} {
		t.Run(fmt.Sprint(cut.from, "-", cut.to, " spike ", cut.spike), func(t *testing.T) {
			pkts := pcmuTone(6*time.Second, 440, 1)
			r := rand.New(rand.NewPCG(3, uint64(cut.from)))
			var last time.Duration
			for i := range pkts { // 0-15 ms of jitter, in order
				sent := pkts[i].at
				pkts[i].at = max(sent+20*time.Millisecond+time.Duration(r.IntN(15))*time.Millisecond, last)
				if cut.spike && ((sent-cut.from).Abs() < 60*time.Millisecond || (sent-cut.to).Abs() < 60*time.Millisecond) {
					pkts[i].at += 40 * time.Millisecond
				}
				last = pkts[i].at
			}
			sink := &captureSink{}
			m, c := newVirtualMixer(MixConfig{PauseBehavior: pause.Skip}, sink)
			p, err := NewAudioPipeline(AudioPipelineConfig{Codec: CodecPCMU, ClockRate: 8000, Input: m.AddInput("a", InputOptions{})})
			if err != nil {
				t.Fatal(err)
			}
			t0 := m.Config().Start
			const total = 6500 * time.Millisecond
			paused, gated := false, false
			var cutFrom uint64
			passed := 0 // packets through the gate
			resumed := false
			i := 0
			for now := time.Duration(0); now < total; now += time.Millisecond {
				c.t = t0.Add(now)
				switch now {
				case cut.from:
					paused = true
					cutFrom = m.Cut(max(m.PosAt(c.t), m.InputsEnd()))
				case cut.to:
					cutFrom = m.Uncut(m.PosAt(c.t))
					paused = false
				}
				for ; i < len(pkts) && pkts[i].at <= now; i++ {
					if paused {
						if !gated {
							p.Pause()
						}
						gated = true
						continue
					}
					if gated {
						gated = false
						from, to, _ := m.LastCut()
						p.ResyncAt(from, to)
						resumed = true
					}
					before := p.input.Ring().End()
					if err := p.WriteRTP(pkts[i].pkt); err != nil {
						t.Fatal(err)
					}
					if resumed {
						resumed = false
						t.Logf("first packet after the cut: arrived %v, placed %v–%v (ring end before %v)", now, m.Duration(p.input.Ring().End()-160), m.Duration(p.input.Ring().End()), m.Duration(before))
					}
					passed++
				}
				if now%(20*time.Millisecond) == 0 {
					if err := m.Step(); err != nil {
						t.Fatal(err)
					}
				}
			}
			p.Close()
			m.RemoveInput(p.input)
			if err := m.Finish(m.Now()); err != nil {
				t.Fatal(err)
			}
			out := m.OutputAt(cutFrom)
			t.Logf("cut from %v (output %v) to %v; mix %v", m.Duration(cutFrom), out, cut.to, m.Duration(uint64(len(sink.pcm))))
			var sound []bool // per 5 ms block
			for k := 0; k+40 <= len(sink.pcm); k += 40 {
				sound = append(sound, mediatest.RMS(sink.pcm[k:k+40]) > 1000)
			}
			first, end := slices.Index(sound, true), len(sound)-1
			for end > 0 && !sound[end] {
				end--
			}
			for k := first; k >= 0 && k <= end; k++ {
				if !sound[k] {
					t.Errorf("a gap in the tone at %v of the mix (the cut is at %v)", time.Duration(k)*5*time.Millisecond, out)
					break
				}
			}
			// Nothing of the audio is cut either: the tone lasts as long as
			// the packets that passed (5 ms blocks, one partial at each end).
			if n := end - first + 1; n < 4*passed-1 || n > 4*passed+1 {
				t.Errorf("the tone lasts %v in the mix, %d packets of 20 ms passed the gate", time.Duration(n)*5*time.Millisecond, passed)
			}
			if d := (cut.to - m.Duration(cutFrom)) - (cut.to - cut.from); d.Abs() > 35*time.Millisecond {
				t.Errorf("cut %v long for a pause of %v: want it to begin where the audio before the pause ends", cut.to-m.Duration(cutFrom), cut.to-cut.from)
			}
		})
	}
}

// TestAudioPipeline_SkipPauseIsSeamlessForEveryTrack: two µ-law tracks whose
// packets come at different phases (9 ms apart, with jitter) are paused with
// skip. One cut serves both: it begins where the audio of the track that
// ended last ends. The other track's audio before the pause ended earlier;
// it resumes where its own audio ended (its first samples go just before
// the cut), so neither track has a gap in the mix, and neither loses a
// sample. Each track sends a constant level (8031 and 1020), so every mix
// sample says which tracks are in it.
func TestAudioPipeline_SkipPauseIsSeamlessForEveryTrack(t *testing.T) {
	for _, pz := range [][2]time.Duration{
		{2013 * time.Millisecond, 4137 * time.Millisecond},
		{2004 * time.Millisecond, 3011 * time.Millisecond},
		{1995 * time.Millisecond, 2700 * time.Millisecond},
	} {
		t.Run(fmt.Sprint(pz[0], "-", pz[1]), func(t *testing.T) {
			levels := [2]byte{itu.EncodeMuLaw(8000), itu.EncodeMuLaw(1000)}
			var value [2]int16
			for k := range levels {
				value[k] = itu.DecodeMuLaw(levels[k])
			}
			sink := &captureSink{}
			m, c := newVirtualMixer(MixConfig{PauseBehavior: pause.Skip}, sink)
			type track struct {
				p      *AudioPipeline
				pkts   []timedPacket
				next   int
				gated  bool
				passed int
			}
			var tracks [2]*track
			r := rand.New(rand.NewPCG(5, uint64(pz[0])))
			for k := range tracks {
				payload := bytes.Repeat([]byte{levels[k]}, 160)
				payloads := make([][]byte, 300)
				for i := range payloads {
					payloads[i] = payload
				}
				pkts := packetize(payloads, 8000, uint32(k+1), 0, 0, 160)
				for i := range pkts { // sent every 20 ms at phase 9·k ms, 0-4 ms of jitter, in order
					pkts[i].at = time.Duration(i)*20*time.Millisecond + time.Duration(9*k+r.IntN(5))*time.Millisecond
				}
				p, err := NewAudioPipeline(AudioPipelineConfig{Codec: CodecPCMU, ClockRate: 8000, Input: m.AddInput(fmt.Sprint(k), InputOptions{})})
				if err != nil {
					t.Fatal(err)
				}
				tracks[k] = &track{p: p, pkts: pkts}
			}
			t0 := m.Config().Start
			paused := false
			for now := time.Duration(0); now < 6500*time.Millisecond; now += time.Millisecond {
				c.t = t0.Add(now)
				switch now {
				case pz[0]:
					paused = true
					m.Cut(max(m.PosAt(c.t), m.InputsEnd()))
				case pz[1]:
					m.Uncut(m.PosAt(c.t))
					paused = false
				}
				for _, tr := range tracks {
					for ; tr.next < len(tr.pkts) && tr.pkts[tr.next].at <= now; tr.next++ {
						if paused {
							if !tr.gated {
								tr.p.Pause()
							}
							tr.gated = true
							continue
						}
						if tr.gated {
							tr.gated = false
							from, to, _ := m.LastCut()
							tr.p.ResyncAt(from, to)
						}
						if err := tr.p.WriteRTP(tr.pkts[tr.next].pkt); err != nil {
							t.Fatal(err)
						}
						tr.passed++
					}
				}
				if now%(20*time.Millisecond) == 0 {
					if err := m.Step(); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, tr := range tracks {
				tr.p.Close()
				m.RemoveInput(tr.p.input)
			}
			if err := m.Finish(m.Now()); err != nil {
				t.Fatal(err)
			}
			from, to, _ := m.LastCut()
			t.Logf("cut %v–%v, at %v in the mix", m.Duration(from), m.Duration(to), m.OutputAt(from))
			for k, tr := range tracks {
				first, last, n := -1, -1, 0
				for i, v := range sink.pcm {
					if v != value[k] && v != value[0]+value[1] {
						continue
					}
					if first < 0 {
						first = i
					}
					last = i
					n++
				}
				if gap := last - first + 1 - n; gap > 0 {
					t.Errorf("track %d: %v of silence within its audio in the mix (at the cut, %v)", k, m.Duration(uint64(gap)), m.OutputAt(from))
				}
				if n != 160*tr.passed {
					t.Errorf("track %d: %d samples in the mix, %d packets of 160 passed", k, n, tr.passed)
				}
			}
		})
	}
}
