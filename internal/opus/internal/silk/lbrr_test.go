package silk

import (
	"fmt"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/internal/testenv"
)

// silkPacket is the SILK layer of a code-0 Opus packet (RFC 6716 Section
// 3.1): its frame (the range coder starts with SILK in hybrid frames too),
// channels, duration and SILK bandwidth; ok is false for CELT-only packets
// and for more than one frame per packet.
func silkPacket(p []byte) (frame []byte, stereo bool, nanoseconds int, bw Bandwidth, ok bool) {
	if len(p) < 2 || p[0]&3 != 0 {
		return nil, false, 0, 0, false
	}
	config := int(p[0] >> 3)
	ms := []int{10, 20, 40, 60}
	switch {
	case config < 12: // SILK-only: NB, MB, WB
		bw, nanoseconds = Bandwidth(config/4+1), ms[config%4]*1_000_000
	case config < 20: // hybrid: the SILK layer is wideband
		bw, nanoseconds = BandwidthWideband, ms[config%2]*1_000_000
	default:
		return nil, false, 0, 0, false
	}
	return p[1:], p[0]&4 != 0, nanoseconds, bw, true
}

// fecPackets encodes 20 s of speech with pauses with ffmpeg's libopus, as a
// browser sends it (VoIP, 20 ms, in-band FEC coded for 10 % loss), at
// bitrate, with more encoder options.
func fecPackets(t testing.TB, bitrate int, opts ...string) [][]byte {
	t.Helper()
	packets, _, err := synth.OpusSpeechWith(testenv.LookPath(t, "ffmpeg"), t.TempDir(), 20, 3, bitrate,
		append([]string{"-fec", "1", "-packet_loss", "10"}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return packets
}

// hasLBRR reports whether the SILK frame codes LBRR frames (its header's
// LBRR flag, RFC 6716 Section 4.2.3), mid or side.
func hasLBRR(frame []byte, stereo bool, nanoseconds int) bool {
	var d Decoder
	defer d.release()
	d.rangeDecoder.Init(frame)
	n := silkFrameCount(nanoseconds)
	_, mid := d.decodeHeaderBitsInto(&d.buffers().midVoiceActivity, n)
	if !stereo {
		return mid
	}
	_, side := d.decodeHeaderBitsInto(&d.buffers().sideVoiceActivity, n)
	return mid || side
}

// TestDecode_LBRRParsedLikeDecoded: a regular decode reads past the LBRR
// frames it skips with their symbols only (parseFrame), and decodes every
// packet bit for bit as when it synthesized those frames in full and threw
// the audio away (upstream's way, kept as the reference): the same output,
// the range coder at the same place after every packet. Real libopus speech
// with in-band FEC: hybrid mono (a browser's), SILK-only wideband mono, and
// hybrid stereo.
func TestDecode_LBRRParsedLikeDecoded(t *testing.T) {
	for _, c := range []struct {
		name    string
		bitrate int
		opts    []string
	}{
		{"hybrid", 32000, nil},
		{"silk-wb", 24000, []string{"-cutoff", "8000"}},
		{"stereo", 48000, []string{"-ac", "2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			packets := fecPackets(t, c.bitrate, c.opts...)
			parse, full := NewDecoder(), NewDecoder()
			full.lbrrSynthesize = true
			a, b := make([]float32, 2*960), make([]float32, 2*960)
			withLBRR, stereo, silkOnly := 0, 0, 0
			for i, p := range packets {
				frame, st, ns, bw, ok := silkPacket(p)
				if !ok {
					continue
				}
				if hasLBRR(frame, st, ns) {
					withLBRR++
				}
				if st {
					stereo++
				}
				if p[0]>>3 < 12 {
					silkOnly++
				}
				clear(a)
				clear(b)
				errA := parse.Decode(frame, a, st, ns, bw)
				errB := full.Decode(frame, b, st, ns, bw)
				if (errA != nil) != (errB != nil) {
					t.Fatalf("packet %d: parsing LBRR: %v, decoding it: %v", i, errA, errB)
				}
				if !reflect.DeepEqual(parse.rangeDecoder, full.rangeDecoder) {
					t.Fatalf("packet %d: the range coder at %+v parsing LBRR, %+v decoding it", i, parse.rangeDecoder, full.rangeDecoder)
				}
				for j := range a {
					if a[j] != b[j] {
						t.Fatalf("packet %d sample %d: %v parsing LBRR, %v decoding it", i, j, a[j], b[j])
					}
				}
			}
			t.Logf("%d packets, %d with LBRR, %d stereo, %d SILK-only", len(packets), withLBRR, stereo, silkOnly)
			if withLBRR < len(packets)/4 {
				t.Errorf("%d of %d packets carry LBRR: the fixture does not test the parser", withLBRR, len(packets))
			}
			if c.name == "stereo" && stereo == 0 || c.name == "silk-wb" && silkOnly == 0 {
				t.Errorf("%d stereo packets, %d SILK-only: not the case %s", stereo, silkOnly, c.name)
			}
		})
	}
}

// TestDecode_LBRRParseAllocatesNothing: reading past LBRR frames allocates
// nothing once the decoder's buffers have grown.
func TestDecode_LBRRParseAllocatesNothing(t *testing.T) {
	packets := fecPackets(t, 32000)
	d := NewDecoder()
	out := make([]float32, 960)
	decode := func(p []byte) {
		if frame, st, ns, bw, ok := silkPacket(p); ok {
			_ = d.Decode(frame, out, st, ns, bw)
		}
	}
	for _, p := range packets[:200] {
		decode(p)
	}
	i := 200
	if allocs := testing.AllocsPerRun(300, func() { decode(packets[i%len(packets)]); i++ }); allocs != 0 {
		t.Errorf("%.1f allocations per packet", allocs)
	}
}

// BenchmarkDecode_LBRR: the SILK layer of a browser's speech (hybrid, in-band
// FEC), with its LBRR frames read by their symbols (parse) or decoded and
// thrown away (synthesize, upstream's way). cpu-µs/packet is the thread's CPU
// time, the figure on a shared machine.
func BenchmarkDecode_LBRR(b *testing.B) {
	packets := fecPackets(b, 32000)
	for _, synthesize := range []bool{false, true} {
		b.Run(fmt.Sprintf("synthesize=%t", synthesize), func(b *testing.B) {
			d := NewDecoder()
			d.lbrrSynthesize = synthesize
			out := make([]float32, 960)
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			c0, ok0 := threadCPU()
			i := 0
			for b.Loop() {
				if frame, st, ns, bw, ok := silkPacket(packets[i%len(packets)]); ok {
					_ = d.Decode(frame, out, st, ns, bw)
				}
				i++
			}
			if c1, ok1 := threadCPU(); ok0 && ok1 && i > 0 {
				b.ReportMetric(float64(c1-c0)/float64(time.Microsecond)/float64(i), "cpu-µs/packet")
			}
		})
	}
}
