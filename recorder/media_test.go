package recorder

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/media"
	"github.com/rtcrec/recorder/recorder/conference"
)

// TestTrackSink_ZeroAllocsPerPacket: a PCMU packet through the whole per-track
// path (reorder stage, G.711 WAV writer, decode, mixer ring) allocates
// nothing, in order and with one packet in seven reordered; also when the
// track's reader knows each packet's receive time (conference.ArrivalReader,
// looked up per packet by the goroutine that writes it: WriteRTPAt).
func TestTrackSink_ZeroAllocsPerPacket(t *testing.T) {
	var reader conference.RTPReader
	for _, received := range []bool{false, true} {
		if received {
			reader = receivedReader{func(uint16) time.Time { return time.Now().Add(-100 * time.Millisecond) }}
		}
		for _, order := range [][]uint16{{0}, {0, 2, 1, 3, 4, 5, 6}} {
			t.Run(fmt.Sprint("received=", received, order), func(t *testing.T) {
				dir := t.TempDir()
				sm, sink := pcmuTrackSinkReading(t, dir, reader)
				defer sm.close()
				defer sink.Close()
				tone := &synth.Tone{Freq: 440, Amplitude: 8000}
				pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1}, Payload: tone.NextPCMU(nil)}
				var seq uint16
				next := func() {
					for _, d := range order {
						pkt.SequenceNumber = seq + d
						pkt.Timestamp = 160 * uint32(seq+d)
						if err := sink.WriteRTP(pkt); err != nil {
							t.Fatal(err)
						}
					}
					seq += uint16(len(order))
				}
				for range 50 { // warm up: buffers, the pipeline's anchor
					next()
				}
				start := time.Now()
				allocs := testing.AllocsPerRun(200, next)
				if allocs != 0 {
					t.Errorf("%.2f allocations per %d packets, want 0", allocs, len(order))
				}
				t.Logf("%v per packet", time.Since(start)/time.Duration(201*len(order)))
			})
		}
	}
}

// TestTrackSink_FileHoldsReorderedPackets: packets that come after later ones
// (one in seven, three packets late; one a second late; duplicates) are in
// the track file at their places, byte for byte, and one that never comes is
// the codec's silence.
func TestTrackSink_FileHoldsReorderedPackets(t *testing.T) {
	dir := t.TempDir()
	sm, sink := pcmuTrackSink(t, dir)
	defer sm.close()
	path := filepath.Join(dir, "t.wav")
	const n = 200
	payload := func(i int) []byte {
		b := make([]byte, 160)
		for k := range b {
			b[k] = byte(i*3 + k%7) // distinct per packet, never the silence byte run
		}
		return b
	}
	var arrivals []int
	for i := range n + 3 {
		switch {
		case i >= n:
		case i == 100: // lost
		case i == 50: // a second late
		case i%7 == 3: // three packets late
		default:
			arrivals = append(arrivals, i)
		}
		if i >= 3 && (i-3)%7 == 3 {
			arrivals = append(arrivals, i-3)
		}
		if i == 100 {
			arrivals = append(arrivals, 50, 99) // 99 again: a duplicate
		}
	}
	for _, i := range arrivals {
		p := &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 7, SequenceNumber: uint16(1000 + i), Timestamp: uint32(5000 + 160*i)},
			Payload: payload(i)}
		if err := sink.WriteRTP(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	data := wavData(t, path)
	if len(data) != n*160 {
		t.Fatalf("the file holds %d bytes, want %d", len(data), n*160)
	}
	for i := range n {
		got := data[160*i : 160*(i+1)]
		want := payload(i)
		if i == 100 {
			want = bytes.Repeat([]byte{0xff}, 160) // µ-law silence
		}
		if !bytes.Equal(got, want) {
			t.Errorf("packet %d is not at its place in the file: % x…", i, got[:8])
		}
	}
	st := sink.(*mediaSink).order.Stats()
	if st.Skipped != 1 || st.Duplicates != 1 || st.Late != 0 || st.Reordered == 0 {
		t.Errorf("reorder stage: %v, want 1 skipped, 1 duplicate", st)
	}
	// Every packet that came is accounted for (the metrics' file side).
	fs := sink.(*mediaSink).fileStats()
	if fs.Written != n-1 || fs.Missing != 1 || fs.DroppedDuplicate != 1 || fs.DroppedLate != 0 ||
		fs.Written+fs.DroppedDuplicate+fs.DroppedLate != uint64(len(arrivals)) {
		t.Errorf("file side: %+v for %d packets that came; want %d written, 1 missing, 1 duplicate", fs, len(arrivals), n-1)
	}
}

// wavData returns the data chunk of the WAV file at path.
func wavData(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 12; i+8 <= len(b); {
		size := int(binary.LittleEndian.Uint32(b[i+4:]))
		if string(b[i:i+4]) == "data" {
			return b[i+8 : min(i+8+size, len(b))]
		}
		i += 8 + size + size%2
	}
	t.Fatalf("%s: no data chunk", path)
	return nil
}

func BenchmarkTrackSink_PCMU(b *testing.B) {
	dir := b.TempDir()
	sm, sink := pcmuTrackSink(b, dir)
	defer sm.close()
	defer sink.Close()
	tone := &synth.Tone{Freq: 440, Amplitude: 8000}
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1}, Payload: tone.NextPCMU(nil)}
	b.ReportAllocs()
	for b.Loop() {
		pkt.SequenceNumber++
		pkt.Timestamp += 160
		sink.WriteRTP(pkt)
	}
}

// TestTrackSink_VideoFramesSurviveReordering: real VP8 (ffmpeg, pion's
// payloader) whose packets come out of order within a frame (the last two
// of every fifth frame swapped) and across frames (one frame's first packet
// after the next frame's): the reorder stage puts them back, so the WebM
// writer completes every frame; without it, each such frame is broken and
// the video waits for the next keyframe.
func TestTrackSink_VideoFramesSurviveReordering(t *testing.T) {
	dir := t.TempDir()
	var frames [][]*rtp.Packet
	seq, ts := uint16(65500), uint32(1000)
	pay := &codecs.VP8Payloader{EnablePictureID: true}
	for _, frame := range vp8Frames(t, 3) {
		var pkts []*rtp.Packet
		for _, pl := range pay.Payload(500, frame) {
			pkts = append(pkts, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts,
				SSRC: 9}, Payload: pl})
			seq++
		}
		pkts[len(pkts)-1].Marker = true
		frames = append(frames, pkts)
		ts += 3000
	}
	var arrivals []*rtp.Packet
	for i := range frames {
		pkts := append([]*rtp.Packet(nil), frames[i]...)
		if n := len(pkts); i%5 == 2 && n >= 2 {
			pkts[n-2], pkts[n-1] = pkts[n-1], pkts[n-2]
		}
		if i%10 == 6 && i+1 < len(frames) { // the first packet comes after the next frame's
			arrivals = append(arrivals, pkts[1:]...)
			arrivals = append(arrivals, frames[i+1][0])
			arrivals = append(arrivals, pkts[0])
			frames[i+1] = frames[i+1][1:]
			continue
		}
		arrivals = append(arrivals, pkts...)
	}
	sm, err := newSessionMedia(&Recording{PauseBehavior: "silence", Mix: config.MixSettings{None: true}}, time.Now(), "", slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	tr := &conference.Track{StreamID: "s", TrackID: "v", Kind: conference.KindVideo,
		Codec: conference.Codec{MimeType: "video/VP8", ClockRate: 90000}}
	sink, err := sm.trackSink(tr, filepath.Join(dir, "v.webm"), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range arrivals {
		if err := sink.WriteRTP(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ := sink.(*mediaSink).videoFrames()
	if want := uint64(len(frames)); got != want {
		t.Errorf("the WebM file holds %d frames, want all %d (reorder stage: %v)", got, want, sink.(*mediaSink).order.Stats())
	}
}

// TestTrackSink_UnplacedPacketAfterTheStopIsNotKept: once the stop began, a
// packet the mix's mapping cannot place (its timestamp jumped more than the
// pipeline's MaxJump: a reader so far behind that its socket dropped seconds
// of packets) is not taken as sent before the stop: neither its file nor the
// mix gets it (the mix would re-anchor at its arrival, after the stop).
func TestTrackSink_UnplacedPacketAfterTheStopIsNotKept(t *testing.T) {
	dir := t.TempDir()
	sm, sink := pcmuTrackSink(t, dir)
	defer sm.close()
	defer sink.Close()
	ms := sink.(*mediaSink)
	pipe := ms.audio.(*media.AudioPipeline)
	tone := &synth.Tone{Freq: 440, Amplitude: 8000}
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1}, Payload: tone.NextPCMU(nil)}
	write := func(seq uint16, ts uint32) {
		pkt.SequenceNumber, pkt.Timestamp = seq, ts
		if err := sink.WriteRTP(pkt); err != nil {
			t.Fatal(err)
		}
	}
	for i := range uint16(25) {
		write(i, 160*uint32(i))
	}
	sm.stopAt.Store(sm.mixer.PosAt(time.Now()) + 1) // the stop begins (Session.drain)
	write(25, 160*25+6*8000)                        // 6 s on: more than MaxJump (5 s)
	if got := ms.fileStats().DroppedAfterStop; got != 1 {
		t.Errorf("%d packets dropped as after the stop, want 1 (the unplaced one)", got)
	}
	if got := pipe.Stats().Packets; got != 25 {
		t.Errorf("the mix pipeline got %d packets, want 25 (not the unplaced one)", got)
	}
}

// pcmuTrackSink returns a recording's media (an 8 kHz mono mix, dir/mix.wav)
// and the sink of one PCMU track writing dir/t.wav. The caller closes both.
func pcmuTrackSink(tb testing.TB, dir string) (*sessionMedia, packetSink) {
	tb.Helper()
	return pcmuTrackSinkReading(tb, dir, nil)
}

// pcmuTrackSinkReading is pcmuTrackSink whose track has reader (may be nil).
func pcmuTrackSinkReading(tb testing.TB, dir string, reader conference.RTPReader) (*sessionMedia, packetSink) {
	tb.Helper()
	rec := &Recording{PauseBehavior: "silence", Mix: config.MixSettings{SampleRate: 8000, Channels: 1}}
	sm, err := newSessionMedia(rec, time.Now(), filepath.Join(dir, "mix.wav"), slog.Default())
	if err != nil {
		tb.Fatal(err)
	}
	tr := &conference.Track{StreamID: "s", TrackID: "t", Kind: conference.KindAudio, Reader: reader,
		Codec: conference.Codec{MimeType: "audio/PCMU", ClockRate: 8000}}
	sink, err := sm.trackSink(tr, filepath.Join(dir, "t.wav"), 0)
	if err != nil {
		sm.close()
		tb.Fatal(err)
	}
	return sm, sink
}

// receivedReader is a track reader that knows when each packet reached the
// machine: at(seq).
type receivedReader struct{ at func(seq uint16) time.Time }

func (r receivedReader) ReadRTP([]byte) (int, error) { return 0, io.EOF }
func (r receivedReader) Arrival(_ uint32, seq uint16) (time.Time, bool) {
	return r.at(seq), true
}

// TestTrackSink_PlacesByReceiveTime: a track whose reader knows when its
// packets reached the machine (conference.ArrivalReader: the UDP mux's
// kernel receive times) has them placed in the mix by then, not by when
// they are read: packets received from 0.4 s before they are read (and after
// the track joined the mix, its join wait before it was added) begin where
// the first was received.
func TestTrackSink_PlacesByReceiveTime(t *testing.T) {
	dir := t.TempDir()
	start := time.Now().Add(-5 * time.Second)
	rec := &Recording{PauseBehavior: "silence", Mix: config.MixSettings{SampleRate: 8000, Channels: 1}}
	sm, err := newSessionMedia(rec, start, filepath.Join(dir, "mix.wav"), slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer sm.close()
	first := time.Now().Add(-400 * time.Millisecond)
	at := func(seq uint16) time.Time { return first.Add(time.Duration(seq) * 20 * time.Millisecond) }
	tr := &conference.Track{StreamID: "s", TrackID: "t", Kind: conference.KindAudio, Reader: receivedReader{at},
		Codec: conference.Codec{MimeType: "audio/PCMU", ClockRate: 8000}}
	sink, err := sm.trackSink(tr, filepath.Join(dir, "t.wav"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	pipe := sink.(*mediaSink).audio.(*media.AudioPipeline)
	tone := &synth.Tone{Freq: 440, Amplitude: 8000}
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1}, Payload: tone.NextPCMU(nil)}
	for i := range uint16(15) { // received up to 0.12 s ago
		pkt.SequenceNumber, pkt.Timestamp = i, 160*uint32(i)
		if err := sink.WriteRTP(pkt); err != nil {
			t.Fatal(err)
		}
	}
	pos, ok := pipe.Origin()
	want := first.Sub(start)
	if got := time.Duration(pos) * time.Second / 8000; !ok || (got-want).Abs() > 20*time.Millisecond {
		t.Errorf("the track begins %v into the mix (known %t), want %v: where its first packet was received", got, ok, want)
	}
	if s := pipe.Stats(); s.Reanchors != 0 || s.Shed != 0 || s.Decoded != 15 {
		t.Errorf("%+v: want every packet decoded, no re-anchor", s)
	}
}
