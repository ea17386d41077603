package mp4writer

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/rtcrec/recorder/internal/tooltest"
)

type rtpFrame struct {
	packets []*rtp.Packet
	key     bool
}

// splitAnnexB returns the NAL units of an Annex B byte stream.
func splitAnnexB(b []byte) [][]byte {
	var out [][]byte
	for {
		i := bytes.Index(b, []byte{0, 0, 1})
		if i < 0 {
			return out
		}
		b = b[i+3:]
		j := bytes.Index(b, []byte{0, 0, 1})
		if j < 0 {
			return append(out, b)
		}
		out = append(out, bytes.TrimRight(b[:j], "\x00"))
		b = b[j:]
	}
}

// encode makes seconds of 320x240 test video at 30 fps, constrained
// baseline with an IDR (with SPS and PPS, as WebRTC senders do) every
// second, with ffmpeg's libx264, and packetizes each access unit with
// pion's H.264 payloader (STAP-A for the parameter sets, FU-A for large
// slices), with sequence numbers and timestamps that wrap.
func encode(t testing.TB, seconds int) []rtpFrame {
	t.Helper()
	return encodeSize(t, seconds, "320x240", 65000, math.MaxUint32-90000)
}

// encodeSize is encode with a frame size and the first sequence number and
// timestamp.
func encodeSize(t testing.TB, seconds int, size string, seq uint16, ts uint32) []rtpFrame {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in.h264")
	tooltest.Run(t, "ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size="+size+":rate=30",
		"-t", string(rune('0'+seconds)), "-c:v", "libx264", "-pix_fmt", "yuv420p", "-profile:v", "baseline", "-preset", "ultrafast", "-tune", "zerolatency",
		"-x264-params", "keyint=30:min-keyint=30:scenecut=0:repeat-headers=1:slice-max-size=3000",
		"-bsf:v", "h264_mp4toannexb", "-f", "h264", path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Group NAL units into access units: a new one starts at an AUD, SPS,
	// PPS or SEI, or at a slice with first_mb_in_slice 0, after a slice.
	var aus [][][]byte
	sawSlice := true
	for _, nal := range splitAnnexB(b) {
		if startsAU(nal) && sawSlice {
			aus = append(aus, nil)
			sawSlice = false
		}
		typ := nal[0] & 0x1F
		if typ == nalSlice || typ == nalIDR {
			sawSlice = true
		}
		aus[len(aus)-1] = append(aus[len(aus)-1], nal)
	}
	if len(aus) != 30*seconds {
		t.Fatalf("ffmpeg made %d access units, want %d", len(aus), 30*seconds)
	}
	payloader := &codecs.H264Payloader{}
	var frames []rtpFrame
	for _, au := range aus {
		var fr rtpFrame
		var annexB []byte
		for _, nal := range au {
			annexB = append(append(annexB, 0, 0, 0, 1), nal...)
			fr.key = fr.key || nal[0]&0x1F == nalIDR
		}
		payloads := payloader.Payload(1200, annexB)
		for i, pl := range payloads {
			fr.packets = append(fr.packets, &rtp.Packet{Header: rtp.Header{
				Version: 2, PayloadType: 102, SequenceNumber: seq, Timestamp: ts, SSRC: 0x5678, Marker: i == len(payloads)-1,
			}, Payload: pl})
			seq++
		}
		frames = append(frames, fr)
		ts += 3000
	}
	return frames
}

// TestWriter_MP4 writes H.264 streams through the writer and checks the file
// with ffprobe (codec, size, duration, decoded frames), ffmpeg's decoder (no
// errors) and mp4ff's parser (fragments, sync samples, decode times).
func TestWriter_MP4(t *testing.T) {
	frames := encode(t, 3)
	if !frames[0].key || frames[1].key || !frames[30].key {
		t.Fatal("IDR pictures are not where the encoder was told to put them")
	}
	tests := []struct {
		name       string
		skip       func(frame, packet int) bool
		wantFrames int
		wantStart  float64
		wantDur    float64
		wantPLI    int
	}{
		{"clean", func(int, int) bool { return false }, 90, 0, 3, 1},
		{"loss in a P frame", func(f, p int) bool { return f == 40 && p == 0 }, 90 - 20, 0, 3, 2},
		{"loss in an IDR", func(f, p int) bool { return f == 30 && p == 1 }, 90 - 30, 0, 3, 2},
		{"joins mid-stream", func(f, _ int) bool { return f < 5 }, 90 - 30, 25.0 / 30, 3 - 5.0/30, 1},
		{"pause: 20 frames not written", func(f, _ int) bool { return f >= 35 && f < 55 }, 90 - 25, 0, 3, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "track.mp4")
			plis := 0
			w := writeFile(t, path, frames, tt.skip, WithKeyframeRequest(func() { plis++ }))
			if err := w.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if st := w.Stats(); int(st.Frames) != tt.wantFrames || plis != tt.wantPLI {
				t.Errorf("frames %d, keyframe requests %d; want %d, %d (stats %+v)", st.Frames, plis, tt.wantFrames, tt.wantPLI, st)
			}
			if wd, ht := w.Size(); wd != 320 || ht != 240 {
				t.Errorf("Size = %dx%d", wd, ht)
			}

			p := tooltest.FFProbe(t, path, true)
			if p.CodecName != "h264" || p.Width != 320 || p.Height != 240 {
				t.Errorf("ffprobe: %s %dx%d, want h264 320x240", p.CodecName, p.Width, p.Height)
			}
			if math.Abs(p.Duration-tt.wantDur) > tt.wantDur*0.02 {
				t.Errorf("ffprobe duration %.3f s, want %.3f s", p.Duration, tt.wantDur)
			}
			if math.Abs(p.StartTime-tt.wantStart) > 0.002 {
				t.Errorf("ffprobe start time %.3f s, want %.3f s", p.StartTime, tt.wantStart)
			}
			if p.Frames != tt.wantFrames {
				t.Errorf("ffprobe decoded %d frames, want %d", p.Frames, tt.wantFrames)
			}
			tooltest.CheckDecodes(t, path)
			checkMP4ff(t, path, tt.wantFrames)
		})
	}
}

// TestWriter_CrashLeavesPlayableFile reads the file of a writer that was
// never closed (a crashed process): whole fragments of all but the last
// second, which decode cleanly.
func TestWriter_CrashLeavesPlayableFile(t *testing.T) {
	frames := encode(t, 3)
	path := filepath.Join(t.TempDir(), "track.mp4")
	w, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, fr := range frames {
		for _, p := range fr.packets {
			if err := w.WriteRTP(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	w.file.Close() // the process dies: no Close
	p := tooltest.FFProbe(t, path, true)
	t.Logf("crashed after 3 s: %d frames, %.3f s on disk", p.Frames, p.Duration)
	if p.Frames < 60 || p.Frames > 90 || math.Abs(p.Duration-float64(p.Frames)/30) > 0.05 {
		t.Errorf("crashed file: %d frames, %.3f s; want at least 60 frames and a matching duration", p.Frames, p.Duration)
	}
	tooltest.CheckDecodes(t, path)
}

// writeFile writes frames to a new file at path, leaving out the packets
// for which skip (frame index, packet index) is true, and closes it.
func writeFile(t *testing.T, path string, frames []rtpFrame, skip func(frame, packet int) bool, opts ...Option) *Writer {
	t.Helper()
	w, err := New(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	for i, fr := range frames {
		for j, p := range fr.packets {
			if !skip(i, j) {
				if err := w.WriteRTP(p); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w
}

// TestWriter_PlaysInChromium plays a file with a lost packet in headless
// Chromium to its end, every written frame decoded.
func TestWriter_PlaysInChromium(t *testing.T) {
	frames := encode(t, 3)
	path := filepath.Join(t.TempDir(), "track.mp4")
	writeFile(t, path, frames, func(f, p int) bool { return f == 40 && p == 0 })
	p := tooltest.ChromiumPlay(t, path)
	if !p.Ended || p.Err != "" || p.Width != 320 || p.Height != 240 || p.Frames != 70 || math.Abs(p.Time-3) > 0.05 {
		t.Errorf("Chromium: %+v, want 320x240, 70 frames, 3 s played to the end", p)
	}
}

// TestWriter_ResolutionChange: the sender switches from 320x240 to 640x480
// at an IDR with new parameter sets; they stay in the sample and every frame
// decodes.
func TestWriter_ResolutionChange(t *testing.T) {
	frames := encodeSize(t, 1, "320x240", 100, 90000)
	frames = append(frames, encodeSize(t, 1, "640x480", 100+uint16(countPackets(frames)), 2*90000)...)
	path := filepath.Join(t.TempDir(), "track.mp4")
	w := writeFile(t, path, frames, func(int, int) bool { return false })
	if st := w.Stats(); st.Frames != 60 || st.DroppedFrames != 0 {
		t.Errorf("stats %+v, want 60 frames written", st)
	}
	if p := tooltest.FFProbe(t, path, true); p.Frames != 60 || math.Abs(p.Duration-2) > 0.04 {
		t.Errorf("ffprobe: %d frames, %.3f s; want 60 frames, 2 s", p.Frames, p.Duration)
	}
	tooltest.CheckDecodes(t, path)
	// The decoder's output switches size: count frames of each.
	out := tooltest.Run(t, "ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "frame=width", "-of", "csv=p=0", path)
	if n := bytes.Count(out, []byte("640")); n != 30 {
		t.Errorf("%d decoded frames of width 640, want 30", n)
	}
	if p := tooltest.ChromiumPlay(t, path); !p.Ended || p.Err != "" || p.Frames != 60 || p.Width != 640 {
		t.Errorf("Chromium: %+v, want 60 frames played to the end at 640x480", p)
	}
}

func countPackets(frames []rtpFrame) int {
	n := 0
	for _, f := range frames {
		n += len(f.packets)
	}
	return n
}

// checkMP4ff parses the file with mp4ff: an init segment with avcC, then
// fragments whose first sample is a sync sample and whose decode times
// increase without overlap.
func checkMP4ff(t *testing.T, path string, frames int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := mp4.DecodeFile(f)
	if err != nil {
		t.Fatalf("mp4ff: %v", err)
	}
	if m.Init == nil || m.Init.Moov.Trak.Mdia.Minf.Stbl.Stsd.AvcX == nil {
		t.Fatal("mp4ff: no init segment with an avc1 sample entry")
	}
	trex := m.Init.Moov.Mvex.Trex
	samples := 0
	end := uint64(0)
	for _, seg := range m.Segments {
		for _, frag := range seg.Fragments {
			fs, err := frag.GetFullSamples(trex)
			if err != nil {
				t.Fatal(err)
			}
			if len(fs) == 0 {
				t.Fatal("mp4ff: empty fragment")
			}
			if fs[0].DecodeTime < end {
				t.Errorf("fragment %d starts at %d before the previous end %d", frag.Moof.Mfhd.SequenceNumber, fs[0].DecodeTime, end)
			}
			samples += len(fs)
			last := fs[len(fs)-1]
			end = last.DecodeTime + uint64(last.Dur)
		}
	}
	if samples != frames {
		t.Errorf("mp4ff: %d samples, want %d", samples, frames)
	}
}

func TestWriter_Errors(t *testing.T) {
	if _, err := NewWith(nil); err == nil {
		t.Error("nil output: no error")
	}
	w, err := NewWith(&bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRTP(&rtp.Packet{}); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteRTP after Close = %v, want ErrClosed", err)
	}
}

// TestDepacketize checks the RFC 6184 packet types against what pion's
// depacketizer makes of the same payloads.
func TestDepacketize(t *testing.T) {
	sps := []byte{0x67, 0x42, 0xC0, 0x1E}
	pps := []byte{0x68, 0xCE, 0x3C, 0x80}
	idr := append([]byte{0x65, 0x88}, bytes.Repeat([]byte{7}, 3000)...)
	var annexB []byte
	for _, n := range [][]byte{sps, pps, idr} {
		annexB = append(append(annexB, 0, 0, 0, 1), n...)
	}
	payloads := (&codecs.H264Payloader{}).Payload(1200, annexB)
	if len(payloads) < 3 || payloads[0][0]&0x1F != nalSTAPA || payloads[1][0]&0x1F != nalFUA {
		t.Fatalf("payloader did not make STAP-A + FU-A: %d packets", len(payloads))
	}
	var c h264Codec
	var frame []byte
	pion := &codecs.H264Packet{IsAVC: true}
	var want []byte
	for i, p := range payloads {
		var start bool
		var err error
		frame, start, err = c.Depacketize(frame, p)
		// The STAP-A and the FU-A start of an IDR slice with
		// first_mb_in_slice 0 may each begin an access unit.
		if err != nil || start != (i <= 1) {
			t.Fatalf("packet %d: start %v, err %v", i, start, err)
		}
		out, err := pion.Unmarshal(p)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, out...)
	}
	if !bytes.Equal(frame, want) {
		t.Errorf("access unit differs from pion's (%d vs %d bytes)", len(frame), len(want))
	}
	if !c.Keyframe(frame) || !bytes.Equal(c.sps, sps) || !bytes.Equal(c.pps, pps) {
		t.Error("IDR with SPS and PPS not recognised")
	}
	if got := appendSample(nil, frame, sps, pps); !bytes.Equal(got, appendNAL(nil, idr)) {
		t.Error("sample keeps the avcC's parameter sets")
	}
	newSPS := []byte{0x67, 0x42, 0xC0, 0x1F}
	if got := appendSample(nil, frame, newSPS, pps); !bytes.Equal(got, frame) {
		t.Error("sample drops parameter sets when one differs from the avcC's")
	}
	for _, bad := range [][]byte{nil, {0x1C}, {0x1C, 0x05, 1}, {0x18, 0, 9, 1}, {0x19, 1}, {0x1D, 0x85, 1}} {
		if _, _, err := (&h264Codec{fuStart: -1}).Depacketize(nil, bad); err == nil {
			t.Errorf("payload % x: no error", bad)
		}
	}
}

// TestWriteRTP_Allocs counts allocations per packet in the steady state:
// the depacketizer and framer allocate nothing; mp4ff allocates its box
// tree once per fragment (one fragment per second here).
func TestWriteRTP_Allocs(t *testing.T) {
	frames := encode(t, 1)
	var pkts []*rtp.Packet
	for _, f := range frames {
		pkts = append(pkts, f.packets...)
	}
	w, err := NewWith(discard{})
	if err != nil {
		t.Fatal(err)
	}
	i, round := 0, 0
	next := func() {
		p := *pkts[i%len(pkts)]
		p.SequenceNumber += uint16(len(pkts) * round)
		p.Timestamp += uint32(90000 * round)
		if err := w.WriteRTP(&p); err != nil {
			t.Fatal(err)
		}
		if i++; i%len(pkts) == 0 {
			round++
		}
	}
	for range 3 * len(pkts) {
		next()
	}
	runs := 10 * len(pkts)
	n := tooltest.TotalAllocs(runs, next)
	perFragment := float64(n) / 10
	t.Logf("%d allocations in %d packets (10 fragments): %.3f per packet, %.0f per fragment", n, runs, float64(n)/float64(runs), perFragment)
	if perFragment > 60 {
		t.Errorf("%.0f allocations per fragment", perFragment)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func BenchmarkWriteRTP(b *testing.B) {
	frames := encode(b, 1)
	var pkts []*rtp.Packet
	for _, f := range frames {
		pkts = append(pkts, f.packets...)
	}
	w, err := NewWith(discard{})
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		p := *pkts[i%len(pkts)]
		round := i / len(pkts)
		p.SequenceNumber += uint16(len(pkts) * round)
		p.Timestamp += uint32(90000 * round)
		w.WriteRTP(&p)
		i++
	}
}

// FuzzDepacketize feeds arbitrary payloads to the depacketizer, the
// keyframe check and the sample builder: no panic, and every access unit it
// builds is well-formed AVC (lengths add up) unless an FU-A is unfinished.
func FuzzDepacketize(f *testing.F) {
	f.Add([]byte{0x18, 0, 4, 0x67, 0x42, 0xC0, 0x1E, 0, 2, 0x68, 0xCE}, []byte{0x7C, 0x85, 0x88, 1}, []byte{0x7C, 0x45, 2})
	f.Add([]byte{0x65, 0x88, 1}, []byte{0x41, 0x9A}, []byte{0x1C})
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		codec := h264Codec{fuStart: -1}
		var frame []byte
		for _, p := range [][]byte{a, b, c} {
			frame, _, _ = codec.Depacketize(frame, p)
		}
		codec.Keyframe(frame)
		appendSample(nil, frame, codec.sps, nil)
	})
}
