package webmwriter

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/at-wat/ebml-go"
	"github.com/at-wat/ebml-go/webm"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/rtcrec/recorder/internal/tooltest"
	"github.com/rtcrec/recorder/media/mediatest"
)

// rtpFrame is one frame's packets.
type rtpFrame struct {
	packets []*rtp.Packet
	key     bool
}

// encode makes seconds of 320x240 test video at 30 fps with a keyframe every
// second with ffmpeg (libvpx, real-time settings like a WebRTC sender) and
// packetizes it with pion's payloader, with sequence numbers and timestamps
// that wrap.
func encode(t testing.TB, codec Codec, seconds int) []rtpFrame {
	t.Helper()
	return encodeSize(t, codec, seconds, "320x240", 65000, math.MaxUint32-90000)
}

// encodeSize is encode with a frame size and the first sequence number and
// timestamp.
func encodeSize(t testing.TB, codec Codec, seconds int, size string, seq uint16, ts uint32) []rtpFrame {
	t.Helper()
	ivf := filepath.Join(t.TempDir(), "in.ivf")
	args := []string{"-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=" + size + ":rate=30", "-t", itoa(seconds), "-g", "30", "-b:v", "400k", "-deadline", "realtime", "-lag-in-frames", "0"}
	var payloader rtp.Payloader
	if codec == VP9 {
		args = append(args, "-c:v", "libvpx-vp9", "-cpu-used", "8")
		payloader = &codecs.VP9Payloader{}
	} else {
		args = append(args, "-c:v", "libvpx", "-auto-alt-ref", "0", "-cpu-used", "8")
		payloader = &codecs.VP8Payloader{EnablePictureID: true}
	}
	tooltest.Run(t, "ffmpeg", append(args, "-f", "ivf", ivf)...)
	var frames []rtpFrame
	dep := depFor(codec)
	for _, frame := range mediatest.IVFFrames(t, ivf) {
		var fr rtpFrame
		fr.key = dep.Keyframe(frame)
		payloads := payloader.Payload(1200, frame)
		for i, pl := range payloads {
			fr.packets = append(fr.packets, &rtp.Packet{Header: rtp.Header{
				Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts, SSRC: 0x1234, Marker: i == len(payloads)-1,
			}, Payload: pl})
			seq++
		}
		frames = append(frames, fr)
		ts += 3000
	}
	if len(frames) != 30*seconds {
		t.Fatalf("ffmpeg made %d frames, want %d", len(frames), 30*seconds)
	}
	return frames
}

func depFor(c Codec) depacketizer {
	if c == VP9 {
		return &vp9Codec{}
	}
	return &vp8Codec{}
}

func itoa(n int) string { return string(rune('0'+n/10)) + string(rune('0'+n%10)) }

// TestWriter_WebM writes streams with real VP8/VP9 through the writer and
// checks the file with ffprobe (codec, size, duration, decoded frames), with
// ffmpeg's decoder (no errors) and with ebml-go's WebM reader.
func TestWriter_WebM(t *testing.T) {
	tests := []struct {
		name       string
		skip       func(frame, packet int) bool // packets not delivered
		wantFrames int
		wantStart  float64 // seconds: time zero is the first packet
		wantDur    float64
		wantPLI    int
	}{
		{"clean", func(int, int) bool { return false }, 90, 0, 3, 1},
		{"loss in a delta frame", func(f, p int) bool { return f == 40 && p == 0 }, 90 - 20, 0, 3, 2},
		{"joins mid-stream", func(f, _ int) bool { return f < 5 }, 90 - 30, 25.0 / 30, 3 - 5.0/30, 1},
		{"pause: 20 frames not written", func(f, _ int) bool { return f >= 35 && f < 55 }, 90 - 25, 0, 3, 2},
	}
	for _, codec := range []Codec{VP8, VP9} {
		frames := encode(t, codec, 3)
		if !frames[0].key || frames[1].key || !frames[30].key {
			t.Fatalf("%v: keyframes are not where the encoder was told to put them", codec)
		}
		for _, tt := range tests {
			t.Run(codec.String()+"/"+tt.name, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "track.webm")
				plis := 0
				w := writeFile(t, path, codec, frames, tt.skip, WithKeyframeRequest(func() { plis++ }))
				if err := w.Close(); err != nil {
					t.Errorf("second Close: %v", err)
				}
				st := w.Stats()
				if int(st.Frames) != tt.wantFrames || plis != tt.wantPLI {
					t.Errorf("frames %d, keyframe requests %d; want %d, %d (stats %+v)", st.Frames, plis, tt.wantFrames, tt.wantPLI, st)
				}

				p := tooltest.FFProbe(t, path, true)
				wantCodec := map[Codec]string{VP8: "vp8", VP9: "vp9"}[codec]
				if p.CodecName != wantCodec || p.Width != 320 || p.Height != 240 {
					t.Errorf("ffprobe: %s %dx%d, want %s 320x240", p.CodecName, p.Width, p.Height, wantCodec)
				}
				if math.Abs(p.Duration-tt.wantDur) > tt.wantDur*0.02 {
					t.Errorf("ffprobe duration %.3f s, want %.3f s (RTP time from the first packet)", p.Duration, tt.wantDur)
				}
				if math.Abs(p.StartTime-tt.wantStart) > 0.002 {
					t.Errorf("ffprobe start time %.3f s, want %.3f s", p.StartTime, tt.wantStart)
				}
				if p.Frames != tt.wantFrames {
					t.Errorf("ffprobe decoded %d frames, want %d", p.Frames, tt.wantFrames)
				}
				tooltest.CheckDecodes(t, path)
				checkEBML(t, path, codec, tt.wantFrames)
			})
		}
	}
}

// TestWriter_ResolutionChange: the sender switches from 320x240 to 640x480
// at a keyframe; the track entry keeps the first size, the frames carry the
// new one, and decoders follow.
func TestWriter_ResolutionChange(t *testing.T) {
	for _, codec := range []Codec{VP8, VP9} {
		frames := encodeSize(t, codec, 1, "320x240", 100, 90000)
		n := 0
		for _, f := range frames {
			n += len(f.packets)
		}
		frames = append(frames, encodeSize(t, codec, 1, "640x480", 100+uint16(n), 2*90000)...)
		path := filepath.Join(t.TempDir(), "track.webm")
		w := writeFile(t, path, codec, frames, func(int, int) bool { return false })
		if st := w.Stats(); st.Frames != 60 || st.DroppedFrames != 0 {
			t.Errorf("%v: stats %+v, want 60 frames written", codec, st)
		}
		tooltest.CheckDecodes(t, path)
		if p := tooltest.ChromiumPlay(t, path); !p.Ended || p.Err != "" || p.Frames != 60 || p.Width != 640 {
			t.Errorf("%v: Chromium: %+v, want 60 frames played to the end, at 640x480", codec, p)
		}
	}
}

// TestWriter_CrashLeavesPlayableFile reads the file of a writer that was
// never closed (a crashed process): it holds all but the last second,
// decodes cleanly, and its Duration matches what is there.
func TestWriter_CrashLeavesPlayableFile(t *testing.T) {
	frames := encode(t, VP8, 3)
	path := filepath.Join(t.TempDir(), "track.webm")
	w, err := New(path, VP8)
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
func writeFile(t *testing.T, path string, codec Codec, frames []rtpFrame, skip func(frame, packet int) bool, opts ...Option) *Writer {
	t.Helper()
	w, err := New(path, codec, opts...)
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

// TestWriter_PlaysInChromium plays a VP8 and a VP9 file with a lost packet
// in headless Chromium to their end, every written frame decoded.
func TestWriter_PlaysInChromium(t *testing.T) {
	for _, codec := range []Codec{VP8, VP9} {
		frames := encode(t, codec, 3)
		path := filepath.Join(t.TempDir(), "track.webm")
		writeFile(t, path, codec, frames, func(f, p int) bool { return f == 40 && p == 0 })
		p := tooltest.ChromiumPlay(t, path)
		if !p.Ended || p.Err != "" || p.Width != 320 || p.Height != 240 || p.Frames != 70 || math.Abs(p.Time-3) > 0.05 {
			t.Errorf("%v: Chromium: %+v, want 320x240, 70 frames, 3 s played to the end", codec, p)
		}
	}
}

// checkEBML reads the file with github.com/at-wat/ebml-go: the track entry
// and the number of keyframe and delta blocks.
func checkEBML(t *testing.T, path string, codec Codec, frames int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var doc struct {
		Header  webm.EBMLHeader `ebml:"EBML"`
		Segment webm.Segment    `ebml:"Segment"`
	}
	if err := ebml.Unmarshal(f, &doc); err != nil && !errors.Is(err, ebml.ErrReadStopped) {
		t.Fatalf("ebml-go: %v", err)
	}
	if doc.Header.DocType != "webm" {
		t.Errorf("ebml-go: DocType %q", doc.Header.DocType)
	}
	tr := doc.Segment.Tracks.TrackEntry
	if len(tr) != 1 || tr[0].CodecID != codec.codecID() || tr[0].Video == nil || tr[0].Video.PixelWidth != 320 || tr[0].Video.PixelHeight != 240 {
		t.Errorf("ebml-go: tracks %+v", tr)
	}
	blocks, keys := 0, 0
	for _, c := range doc.Segment.Cluster {
		for _, b := range c.SimpleBlock {
			blocks++
			if b.Keyframe {
				keys++
			}
		}
	}
	if blocks != frames || keys == 0 || doc.Segment.Info.Duration == 0 {
		t.Errorf("ebml-go: %d blocks (%d keyframes), duration %.0f ms; want %d blocks", blocks, keys, doc.Segment.Info.Duration, frames)
	}
	// A cue per keyframe cluster, pointing at a cluster with that time.
	if doc.Segment.Cues == nil || len(doc.Segment.Cues.CuePoint) != keys {
		t.Fatalf("ebml-go: cues %+v, want %d cue points", doc.Segment.Cues, keys)
	}
	if doc.Segment.SeekHead == nil || len(doc.Segment.SeekHead.Seek) != 3 {
		t.Errorf("ebml-go: seek head %+v, want 3 entries", doc.Segment.SeekHead)
	}
	for i, cp := range doc.Segment.Cues.CuePoint {
		pos := cp.CueTrackPositions[0].CueClusterPosition
		b := make([]byte, 4)
		if _, err := f.ReadAt(b, segmentStart(t, f)+int64(pos)); err != nil || !bytes.Equal(b, []byte{0x1F, 0x43, 0xB6, 0x75}) {
			t.Errorf("cue %d (time %d ms) points at % x, not a Cluster", i, cp.CueTime, b)
		}
	}
}

// segmentStart returns the file offset of the Segment's data: after the EBML
// header element and the Segment's 4-byte ID and 8-byte size.
func segmentStart(t *testing.T, f *os.File) int64 {
	t.Helper()
	b := make([]byte, 64)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	// EBML header: 4-byte ID, then a 1-byte size (its body is short).
	return 4 + 1 + int64(b[4]&0x7F) + 4 + 8
}

func TestWriter_Errors(t *testing.T) {
	if _, err := NewWith(&bytes.Buffer{}, Codec(9)); err == nil {
		t.Error("unknown codec: no error")
	}
	w, err := NewWith(&bytes.Buffer{}, VP8)
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

// TestWriteRTP_Allocs counts allocations per packet once the buffers have
// grown: none.
func TestWriteRTP_Allocs(t *testing.T) {
	for _, codec := range []Codec{VP8, VP9} {
		t.Run(codec.String(), func(t *testing.T) {
			frames := encode(t, codec, 1)
			w, err := NewWith(discardAt{}, codec)
			if err != nil {
				t.Fatal(err)
			}
			var pkts []*rtp.Packet
			for _, f := range frames {
				pkts = append(pkts, f.packets...)
			}
			i, round := 0, uint32(0)
			next := func() {
				p := *pkts[i%len(pkts)]
				p.SequenceNumber += uint16(len(pkts) * int(round))
				p.Timestamp += 90000 * round
				if err := w.WriteRTP(&p); err != nil {
					t.Fatal(err)
				}
				if i++; i%len(pkts) == 0 {
					round++
				}
			}
			for range 3 * len(pkts) {
				next() // warm up: buffers reach their size
			}
			runs := 10 * len(pkts) // ten seconds of video, ten keyframes
			n := tooltest.TotalAllocs(runs, next)
			t.Logf("%v: %d allocations in %d packets (%d frames, 10 keyframes)", codec, n, runs, 10*len(frames))
			if n != 0 {
				t.Errorf("%v: %d allocations in %d packets, want 0", codec, n, runs)
			}

		})
	}
}

type discardAt struct{}

func (discardAt) Write(p []byte) (int, error)            { return len(p), nil }
func (discardAt) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }

func BenchmarkWriteRTP(b *testing.B) {
	for _, codec := range []Codec{VP8, VP9} {
		b.Run(codec.String(), func(b *testing.B) {
			frames := encode(b, codec, 1)
			var pkts []*rtp.Packet
			for _, f := range frames {
				pkts = append(pkts, f.packets...)
			}
			w, _ := NewWith(discardAt{}, codec)
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				p := *pkts[i%len(pkts)]
				round := uint32(i / len(pkts))
				p.SequenceNumber += uint16(len(pkts) * int(round))
				p.Timestamp += 90000 * round
				w.WriteRTP(&p)
				i++
			}
		})
	}
}

// FuzzDepacketize feeds arbitrary payloads to both depacketizers and the
// keyframe and size parsers: no panic.
func FuzzDepacketize(f *testing.F) {
	f.Add([]byte{0x90, 0x80, 0x01, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00})
	f.Add([]byte{0x8e, 0x01, 0x02, 0x20, 0x82, 0x49, 0x83, 0x42, 0x00})
	f.Fuzz(func(t *testing.T, payload []byte) {
		for _, d := range []depacketizer{&vp8Codec{}, &vp9Codec{}} {
			frame, _, _ := d.Depacketize(nil, payload)
			d.Keyframe(frame)
			d.Size(frame)
			d.Keyframe(payload)
			d.Size(payload)
		}
	})
}
