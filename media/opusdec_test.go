package media

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/media/mediatest"
)

// speechPackets returns testdata/speech.ogg's packets: 20 s of
// internal/synth.Speech(20, 3) (talk spurts with pauses) encoded by ffmpeg's
// libopus in VoIP mode at 32 kbit/s, 20 ms packets, as a browser sends
// (hybrid fullband frames: SILK with its VAD flags, plus CELT).
func speechPackets(t testing.TB) [][]byte {
	t.Helper()
	data, err := os.ReadFile("testdata/speech.ogg")
	if err != nil {
		t.Fatal(err)
	}
	return oggPackets(t, data)[2:] // OpusHead, OpusTags
}

// decodeAll decodes packets in order with d and returns the PCM.
func decodeAll(t testing.TB, d *opusDecoder, packets [][]byte) []int16 {
	t.Helper()
	out := make([]int16, 0, len(packets)*960)
	buf := make([]int16, 5760)
	for i, p := range packets {
		n, err := d.DecodeToInt16(p, buf)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		out = append(out, buf[:n]...)
	}
	return out
}

// fidelity compares a decode that skips inactive packets with a full one.
type fidelity struct {
	skipped float64 // fraction of packets skipped
	mediatest.Fidelity
}

// measureFidelity decodes the speech fixture at rate in full and with the
// given skips, and compares the two.
func measureFidelity(t testing.TB, rate int, skipInactive, skipHybridCELT bool) fidelity {
	packets := speechPackets(t)
	full, err := newOpusDecoder(rate, false, false)
	if err != nil {
		t.Fatal(err)
	}
	skip, err := newOpusDecoder(rate, skipInactive, skipHybridCELT)
	if err != nil {
		t.Fatal(err)
	}
	a, b := decodeAll(t, full, packets), decodeAll(t, skip, packets)
	if len(a) != len(b) {
		t.Fatalf("full decode %d samples, skipping decode %d", len(a), len(b))
	}
	return fidelity{float64(skip.Skipped()) / float64(len(packets)), mediatest.CompareDecodes(a, b, rate)}
}

// TestOpusDecoder_SkipFidelity: skipping the inactive packets of speech with
// pauses saves the decode of a third or more of them and changes the speech
// itself by nothing audible: the frames with speech keep an SNR of 40 dB or
// more against a full decode, every onset is where the full decode has it
// (within 1 ms), and what is silenced instead of decoded is below -40 dBFS.
func TestOpusDecoder_SkipFidelity(t *testing.T) {
	for _, rate := range []int{8000, 16000, 48000} {
		f := measureFidelity(t, rate, true, false)
		t.Logf("%d Hz: %.0f %% of packets skipped; SNR %.1f dB on speech frames, %.1f dB overall; loudest skipped frame %.1f dBFS; %d onsets, largest shift %.2f ms",
			rate, 100*f.skipped, f.SNRSpeech, f.SNRAll, f.LoudestSkip, f.Onsets, f.OnsetShiftMax)
		if f.skipped < 0.25 {
			t.Errorf("%d Hz: only %.0f %% of packets skipped in speech with pauses", rate, 100*f.skipped)
		}
		if f.SNRSpeech < 40 {
			t.Errorf("%d Hz: SNR on speech frames %.1f dB; want 40 dB or more", rate, f.SNRSpeech)
		}
		if f.Onsets < 3 || f.OnsetShiftMax > 1 {
			t.Errorf("%d Hz: %d onsets, largest shift %.2f ms; want 3 or more, within 1 ms", rate, f.Onsets, f.OnsetShiftMax)
		}
		if f.LoudestSkip > -40 {
			t.Errorf("%d Hz: a skipped frame is %.1f dBFS in the full decode; want below -40", rate, f.LoudestSkip)
		}
	}
}

func TestOpusDecoder_SkipAllocatesNothing(t *testing.T) {
	packets := speechPackets(t)
	d, err := newOpusDecoder(8000, true, true)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]int16, 5760)
	i := 0
	for range 100 { // the decoder's buffers grow to their size first
		d.DecodeToInt16(packets[i%len(packets)], buf)
		i++
	}
	allocs := testing.AllocsPerRun(500, func() {
		if _, err := d.DecodeToInt16(packets[i%len(packets)], buf); err != nil {
			t.Fatal(err)
		}
		i++
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per packet", allocs)
	}
	if d.Skipped() == 0 {
		t.Error("no packet skipped")
	}
}

func TestOpusInactive(t *testing.T) {
	for _, c := range []struct {
		name string
		pkt  []byte
		want bool
		n48  int
	}{
		{"DTX: TOC only", []byte{0x78}, true, 960},
		{"DTX: 2 bytes", []byte{0x10, 0x00}, true, 1920}, // SILK NB 40 ms
		{"hybrid FB 20 ms, VAD 0", []byte{0x78, 0x3F, 1, 2}, true, 960},
		{"hybrid FB 20 ms, VAD 1", []byte{0x78, 0x80, 1, 2}, false, 960},
		{"SILK WB 60 ms, flags 000", []byte{0x58, 0x1F, 1, 2}, true, 2880},
		{"SILK WB 60 ms, third VAD set", []byte{0x58, 0x20, 1, 2}, false, 2880},
		{"SILK WB 20 ms, two frames, second active", []byte{0x49, 0x00, 1, 0x80, 2}, false, 1920},
		{"SILK WB 20 ms, two frames, both inactive", []byte{0x49, 0x00, 1, 0x00, 2}, true, 1920},
		{"CELT FB 20 ms: no VAD flag", []byte{0xF8, 0x00, 1, 2}, false, 960},
		{"stereo hybrid: decoded", []byte{0x7C, 0x00, 1, 2}, false, 960},
		{"code 3: decoded", []byte{0x7B, 0x02, 0x00, 1}, false, 1920},
	} {
		if got := opusInactive(c.pkt); got != c.want {
			t.Errorf("%s: inactive %t, want %t", c.name, got, c.want)
		}
		if got := opusSamples(c.pkt, 48000); got != c.n48 {
			t.Errorf("%s: %d samples at 48 kHz, want %d", c.name, got, c.n48)
		}
	}
	if opusSamples(nil, 8000) != 0 || opusSamples([]byte{0x7B, 0x00}, 8000) != 0 || opusSamples([]byte{0xFB, 49}, 8000) != 0 {
		t.Error("malformed packets have a duration")
	}
}

func FuzzOpusInactive(f *testing.F) {
	f.Add([]byte{0x78, 0x3F, 1, 2})
	f.Add([]byte{0x49, 0x00, 1, 0x80, 2})
	f.Fuzz(func(t *testing.T, p []byte) {
		_ = opusInactive(p)
		if n := opusSamples(p, 48000); n < 0 || n > 5760 {
			t.Fatalf("%d samples", n)
		}
	})
}

// TestOpusDecoder_SkipHybridCELTFidelity: at the mix's 8 kHz (and at 16 kHz)
// decoding only the SILK layer of hybrid frames changes nothing a listener of
// that output hears: the CELT layer codes 8 kHz and up. Against a full decode
// the speech frames keep an SNR of 40 dB or more, every onset stays where it
// was, and nothing is silenced; at 48 kHz the setting changes nothing. With
// both skips (what the mix runs) the speech frames keep 40 dB too.
func TestOpusDecoder_SkipHybridCELTFidelity(t *testing.T) {
	hybrid := 0
	for _, p := range speechPackets(t) {
		if cfg := p[0] >> 3; cfg >= 12 && cfg <= 15 {
			hybrid++
		}
	}
	if hybrid < 100 {
		t.Fatalf("the fixture has %d hybrid packets: it cannot show the CELT skip", hybrid)
	}
	for _, c := range []struct {
		rate     int
		inactive bool
	}{{8000, false}, {16000, false}, {8000, true}, {16000, true}} {
		f := measureFidelity(t, c.rate, c.inactive, true)
		t.Logf("%d Hz, hybrid CELT skipped (%d hybrid packets), inactive skipped %t: SNR %.1f dB on speech frames, %.1f dB overall; %d onsets, largest shift %.2f ms",
			c.rate, hybrid, c.inactive, f.SNRSpeech, f.SNRAll, f.Onsets, f.OnsetShiftMax)
		if f.SNRSpeech < 40 {
			t.Errorf("%d Hz: SNR on speech frames %.1f dB; want 40 dB or more", c.rate, f.SNRSpeech)
		}
		if f.Onsets < 3 || f.OnsetShiftMax > 1 {
			t.Errorf("%d Hz: %d onsets, largest shift %.2f ms; want 3 or more, within 1 ms", c.rate, f.Onsets, f.OnsetShiftMax)
		}
	}
	// At 48 kHz the CELT layer is heard: the setting leaves it decoded.
	full, _ := newOpusDecoder(48000, false, false)
	celt, _ := newOpusDecoder(48000, false, true)
	a, b := decodeAll(t, full, speechPackets(t)), decodeAll(t, celt, speechPackets(t))
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("48 kHz: sample %d differs (%d, %d) with SetSkipHybridCELT", i, a[i], b[i])
		}
	}
}

// BenchmarkOpusDecoder_Speech decodes 20 s of speech with pauses (32 kbit/s,
// as a browser sends) at the mix rate, in full and skipping inactive
// packets, skipping the CELT layer of hybrid frames, and both (what the mix
// runs); ns/op and cpu-µs/packet (the thread's CPU time) are per 20 ms packet.
func BenchmarkOpusDecoder_Speech(b *testing.B) {
	packets := speechPackets(b)
	for _, rate := range []int{8000, 48000} {
		for _, mode := range []struct {
			name           string
			inactive, celt bool
		}{{"full", false, false}, {"skip", true, false}, {"celt", false, true}, {"both", true, true}} {
			b.Run(fmt.Sprintf("%s/rate=%d", mode.name, rate), func(b *testing.B) {
				benchDecode(b, packets, rate, mode.inactive, mode.celt)
			})
		}
	}
}

// BenchmarkOpusDecoder_SpeechFEC decodes testdata/speech-fec.ogg (10 s of
// speech with pauses, 32 kbit/s with in-band FEC: 351 of 501 packets carry
// LBRR frames, as a browser's speech packets do) at 8 kHz as the mix does
// (both skips). A fixed file, so that an instruction count is repeatable:
//
//	go test -c -o media.test ./media
//	valgrind --tool=callgrind media.test -test.run XXX -test.bench SpeechFEC -test.benchtime 5010x
//
// and the Ir of media.(*opusDecoder).DecodeToInt16 (inclusive) / 5010 is the
// instruction count per 20 ms packet.
func BenchmarkOpusDecoder_SpeechFEC(b *testing.B) {
	packets := oggPackets(b, readTestdata(b, "speech-fec.ogg"))[2:]
	benchDecode(b, packets, 8000, true, true)
}

// benchDecode decodes packets in a loop with a decoder at rate (skipping
// inactive packets and hybrid CELT as asked) and reports, besides ns/op, the
// thread's CPU per packet: the figure on a shared machine.
func benchDecode(b *testing.B, packets [][]byte, rate int, skipInactive, skipCELT bool) {
	d, err := newOpusDecoder(rate, skipInactive, skipCELT)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]int16, 5760)
	i := 0
	b.ReportAllocs()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c0, ok0 := threadCPU()
	for b.Loop() {
		if _, err := d.DecodeToInt16(packets[i%len(packets)], buf); err != nil {
			b.Fatal(err)
		}
		i++
	}
	if c1, ok1 := threadCPU(); ok0 && ok1 && i > 0 {
		b.ReportMetric(float64(c1-c0)/float64(time.Microsecond)/float64(i), "cpu-µs/packet")
	}
}

// BenchmarkOpusDecoder_BrowserSpeech decodes what the load harness sends
// (internal/loadtest): 60 s of speech with pauses encoded by libopus as a
// browser sends it, 32 kbit/s VoIP in 20 ms packets with in-band FEC coded
// for 1 % loss (so speech packets carry LBRR frames), at 8 kHz as the mix
// does ("both": inactive packets and hybrid CELT skipped) and in full.
// ns/op and cpu-µs/packet are per 20 ms packet.
func BenchmarkOpusDecoder_BrowserSpeech(b *testing.B) {
	packets, _, err := synth.OpusSpeechWith(testenv.LookPath(b, "ffmpeg"), b.TempDir(), 60, 1, 32000, "-fec", "1", "-packet_loss", "1")
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []struct {
		name string
		skip bool
	}{{"both", true}, {"full", false}} {
		b.Run(mode.name+"/rate=8000", func(b *testing.B) {
			benchDecode(b, packets, 8000, mode.skip, mode.skip)
		})
	}
}

// BenchmarkOpusDecoder_Interleaved decodes the load harness's source as the
// recorder's mix does at N=200: 200 decoders (8 kHz, both skips), each at its
// own place in the stream, take one packet each in turn, so that every
// decode starts on caches that the 199 others used since (one decoder in a
// loop keeps its state and tables in L1/L2 and understates the cost).
// ns/op and cpu-µs/packet are per 20 ms packet.
func BenchmarkOpusDecoder_Interleaved(b *testing.B) {
	packets, _, err := synth.OpusSpeechWith(testenv.LookPath(b, "ffmpeg"), b.TempDir(), 60, 1, 32000, "-fec", "1", "-packet_loss", "1")
	if err != nil {
		b.Fatal(err)
	}
	const n = 200
	decs := make([]*opusDecoder, n)
	next := make([]int, n)
	for i := range decs {
		if decs[i], err = newOpusDecoder(8000, true, true); err != nil {
			b.Fatal(err)
		}
		next[i] = i * len(packets) / n
	}
	buf := make([]int16, 5760)
	for k := range n * 50 { // warm: every decoder past its first buffers
		d := k % n
		if _, err := decs[d].DecodeToInt16(packets[next[d]%len(packets)], buf); err != nil {
			b.Fatal(err)
		}
		next[d]++
	}
	i := 0
	b.ReportAllocs()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c0, ok0 := threadCPU()
	for b.Loop() {
		k := i % n
		if _, err := decs[k].DecodeToInt16(packets[next[k]%len(packets)], buf); err != nil {
			b.Fatal(err)
		}
		next[k]++
		i++
	}
	if c1, ok1 := threadCPU(); ok0 && ok1 && i > 0 {
		b.ReportMetric(float64(c1-c0)/float64(time.Microsecond)/float64(i), "cpu-µs/packet")
	}
}

// BenchmarkOpusDecoder_InterleavedEvicted asks why a decode costs more in
// the recorder (about 31 µs per decoded packet at N=200, merged profiles of
// session 9) than in BenchmarkOpusDecoder_Interleaved (21-25): between two
// decodes the recorder runs the rest of a packet's path (Pion's receive
// path, SRTP, the mixer, the writers) for this and 199 other streams, which
// evicts from the caches what a decode uses. It decodes as
// BenchmarkOpusDecoder_Interleaved does, n decoders in turn, in passes of
// three kinds taken in turn (so that all see the same machine), and times
// each decode alone by the thread's CPU clock:
//   - warm: nothing between the decodes (cpu-µs/packet-warm);
//   - evicted: before each decode, a line of every 64 bytes of an
//     evict-sized buffer is written, the stand-in for that work
//     (cpu-µs/packet-evicted);
//   - own state evicted: the same, then a spare decoder decodes a packet
//     (untimed), which brings back what every decoder shares (the code, the
//     tables, the lent working memory) but not the timed decoder's own
//     state (cpu-µs/packet-own-evicted).
//
// evicted less warm is what the caches' misses cost at most; own-evicted
// less warm, what the decoders' own state costs when it comes from farther
// than the caches hold.
func BenchmarkOpusDecoder_InterleavedEvicted(b *testing.B) {
	packets, _, err := synth.OpusSpeechWith(testenv.LookPath(b, "ffmpeg"), b.TempDir(), 60, 1, 32000, "-fec", "1", "-packet_loss", "1")
	if err != nil {
		b.Fatal(err)
	}
	for _, kb := range []int{256, 1024, 4096} {
		b.Run(fmt.Sprintf("n=200,evict=%dKB", kb), func(b *testing.B) {
			const n = 200
			decs := make([]*opusDecoder, n+1) // the last: the spare
			next := make([]int, n+1)
			for i := range decs {
				if decs[i], err = newOpusDecoder(8000, true, true); err != nil {
					b.Fatal(err)
				}
				next[i] = i * len(packets) / n
			}
			buf := make([]int16, 5760)
			evict := make([]byte, kb<<10)
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if _, ok := threadClock(); !ok {
				b.Skip("no thread CPU clock here")
			}
			decode := func(k int) {
				if _, err := decs[k].DecodeToInt16(packets[next[k]%len(packets)], buf); err != nil {
					b.Fatal(err)
				}
				next[k]++
			}
			var spent [3]time.Duration // warm, evicted, own state evicted
			var count [3]int
			i := 0
			for b.Loop() {
				k := i % n
				arm := (i / n) % 3
				if arm > 0 {
					for j := 0; j < len(evict); j += 64 {
						evict[j]++
					}
				}
				if arm == 2 {
					decode(n)
				}
				c0, _ := threadClock()
				decode(k)
				c1, _ := threadClock()
				if i >= 50*n { // every decoder past its first buffers
					spent[arm] += c1 - c0
					count[arm]++
				}
				i++
			}
			for arm, unit := range []string{"cpu-µs/packet-warm", "cpu-µs/packet-evicted", "cpu-µs/packet-own-evicted"} {
				if count[arm] > 0 {
					b.ReportMetric(float64(spent[arm])/float64(time.Microsecond)/float64(count[arm]), unit)
				}
			}
		})
	}
}

// fecSpeech returns 20 s of speech with pauses (internal/synth.Speech(20, 3))
// encoded by ffmpeg's libopus as a browser sends it, 32 kbit/s VoIP in 20 ms
// packets, with in-band FEC coded for 10 % loss (-fec 1 -packet_loss 10).
func fecSpeech(t testing.TB) [][]byte {
	t.Helper()
	packets, _, err := synth.OpusSpeechWith(testenv.LookPath(t, "ffmpeg"), t.TempDir(), 20, 3, 32000, "-fec", "1", "-packet_loss", "10")
	if err != nil {
		t.Fatal(err)
	}
	return packets
}

// decodeWithLoss decodes packets at 8 kHz as the mix does (both skips),
// losing every tenth one (index 5, 15, …). With fec, a lost packet's audio
// comes from the next packet's in-band FEC where it carries some; otherwise
// the last decoded packet is repeated, as the pipeline conceals a single
// lost packet. It returns the PCM and the lost packets FEC recovered.
func decodeWithLoss(t testing.TB, packets [][]byte, fec bool) (pcm []int16, recovered []int) {
	t.Helper()
	d, err := newOpusDecoder(8000, true, true)
	if err != nil {
		t.Fatal(err)
	}
	buf, last := make([]int16, 960), make([]int16, 0, 960)
	for i, p := range packets {
		if i%10 == 5 && i+1 < len(packets) {
			if n := 0; fec {
				if n = d.DecodeFEC(packets[i+1], buf); n > 0 {
					pcm = append(pcm, buf[:n]...)
					recovered = append(recovered, i)
					continue
				}
			}
			pcm = append(pcm, last...)
			continue
		}
		n, err := d.DecodeToInt16(p, buf)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		last = append(last[:0], buf[:n]...)
		pcm = append(pcm, buf[:n]...)
	}
	return pcm, recovered
}

// snrOver returns the SNR of pcm against ref over the 20 ms frames at the
// given packet indices, shifted by offset packets.
func snrOver(ref, pcm []int16, frames []int, offset int) float64 {
	var sig, noise float64
	for _, i := range frames {
		for j := (i + offset) * 160; j < (i+offset+1)*160 && j < len(ref) && j < len(pcm); j++ {
			x, y := float64(ref[j]), float64(pcm[j])
			sig, noise = sig+x*x, noise+(x-y)*(x-y)
		}
	}
	return 10 * math.Log10(sig/max(noise, 1e-9))
}

// TestOpusDecoder_FECRecoversALostPacket: speech from a real encoder
// (ffmpeg's libopus, as a browser sends it: in-band FEC on) loses every tenth
// packet. Where the next packet carries FEC (its SILK LBRR frames: the lost
// packet coded again at a lower rate), decoding it gives the lost 20 ms
// close to what the lost packet held, and the packet after follows on from
// it; repeating the last packet, the concealment without FEC, does not.
// SNR against a decode without loss, over the frames FEC recovered.
func TestOpusDecoder_FECRecoversALostPacket(t *testing.T) {
	packets := fecSpeech(t)
	ref, _ := newOpusDecoder(8000, true, true)
	want := decodeAll(t, ref, packets)
	withFEC, recovered := decodeWithLoss(t, packets, true)
	concealed, _ := decodeWithLoss(t, packets, false)
	if len(withFEC) != len(want) || len(concealed) != len(want) {
		t.Fatalf("decoded %d and %d samples, want %d", len(withFEC), len(concealed), len(want))
	}
	lost := (len(packets) - 6) / 10
	fecLost, fecAfter := snrOver(want, withFEC, recovered, 0), snrOver(want, withFEC, recovered, 1)
	conLost, conAfter := snrOver(want, concealed, recovered, 0), snrOver(want, concealed, recovered, 1)
	t.Logf("%d of %d lost packets recovered from FEC; SNR of those frames: FEC %.1f dB, repeating the last packet %.1f dB; of the frame after: %.1f dB, %.1f dB",
		len(recovered), lost, fecLost, conLost, fecAfter, conAfter)
	if len(recovered) < lost/3 {
		t.Errorf("FEC recovered %d of %d lost packets of speech", len(recovered), lost)
	}
	if fecLost < 10 || fecLost < conLost+10 {
		t.Errorf("the lost frames: %.1f dB with FEC, %.1f dB repeating the last packet; want 10 dB or more, and 10 dB better", fecLost, conLost)
	}
	if fecAfter < 15 || fecAfter < conAfter+10 {
		t.Errorf("the frames after: %.1f dB after FEC, %.1f dB after a repeat; want 15 dB or more, and 10 dB better", fecAfter, conAfter)
	}
}

func TestOpusDecoder_FECAllocatesNothing(t *testing.T) {
	packets := fecSpeech(t)
	d, err := newOpusDecoder(8000, true, true)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]int16, 960)
	for _, p := range packets[:100] { // the decoder's buffers grow to their size first
		d.DecodeFEC(p, buf)
		d.DecodeToInt16(p, buf)
	}
	i, n := 100, 0
	allocs := testing.AllocsPerRun(300, func() {
		if d.DecodeFEC(packets[i%len(packets)], buf) > 0 {
			n++
		}
		d.DecodeToInt16(packets[i%len(packets)], buf)
		i++
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per packet", allocs)
	}
	if n == 0 {
		t.Error("no packet decoded from FEC")
	}
}

// The CELT decoder's overlap and post-filter history (about 9 KB) exist only
// once CELT decodes a frame: an 8 kHz mix decoder that skips hybrid CELT
// holds them only if the stream had a CELT-only or redundancy frame, and
// one that decodes everything holds them. Neither holds per-frame working
// memory between calls.
func TestOpusDecoder_CELTStateOnlyWhenUsed(t *testing.T) {
	packets := speechPackets(t)
	retained := func(skipHybridCELT bool, decode int) uint64 {
		const n = 50
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		decs := make([]*opusDecoder, n)
		buf := make([]int16, 5760)
		for i := range decs {
			d, err := newOpusDecoder(8000, false, skipHybridCELT)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range packets[:decode] {
				if _, err := d.DecodeToInt16(p, buf); err != nil {
					t.Fatal(err)
				}
			}
			decs[i] = d
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(decs)
		return (after.HeapAlloc - before.HeapAlloc) / n
	}
	fresh, skip, full := retained(true, 0), retained(true, len(packets)), retained(false, len(packets))
	t.Logf("per decoder: fresh %d B, after the speech fixture (%d packets) skipping hybrid CELT %d B, decoding everything %d B",
		fresh, len(packets), skip, full)
	if full < fresh+8000 {
		t.Errorf("a decoder that ran CELT holds %d B, a fresh one %d B: want the CELT state (≥ 8000 B) allocated by decoding", full, fresh)
	}
	if fresh > 12000 {
		t.Errorf("a fresh 8 kHz decoder holds %d B, want ≤ 12000 (no CELT state)", fresh)
	}
	// Between calls a decoder holds its state only: the per-call working
	// memory (SILK's excitation and synthesis buffers, the resampler's, the
	// Opus decoder's output buffers) is lent for each call
	// (internal/opus/internal/lend). Holding it, the mix's decoder held
	// 20.9 KB here; lending SILK's and the resampler's only, 9.5 KB.
	if skip > 8000 {
		t.Errorf("an 8 kHz decoder skipping hybrid CELT holds %d B after speech, want ≤ 8000 (no per-call buffers between calls)", skip)
	}
}

// TestOpusDecoder_ConcurrentDecodersAgree: decoders on many goroutines at
// once, which share the SILK decoder's per-frame working memory
// (internal/opus/internal/silk frameScratch, lent for the length of a decode
// call), decode the FEC fixture with every tenth packet lost and recovered
// from FEC, each exactly as one decoder alone does. Under -race it also
// shows that no two calls hold the same buffers.
func TestOpusDecoder_ConcurrentDecodersAgree(t *testing.T) {
	packets := fecSpeech(t)
	want, _ := decodeWithLoss(t, packets, true)
	const n = 8
	got := make([][]int16, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got[i], _ = decodeWithLoss(t, packets, true) })
	}
	wg.Wait()
	for i, pcm := range got {
		if !slices.Equal(pcm, want) {
			t.Errorf("decoder %d of %d decoding at once: output differs from a decoder alone", i, n)
		}
	}
}
