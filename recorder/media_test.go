package recorder

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/recorder/conference"
)

// TestTrackSink_ZeroAllocsPerPacket: a PCMU packet through the whole per-track
// path (G.711 WAV writer, decode, mixer ring) allocates nothing.
func TestTrackSink_ZeroAllocsPerPacket(t *testing.T) {
	dir := t.TempDir()
	rec := &Recording{PauseBehavior: "silence", Mix: MixSettings{SampleRate: 8000, Channels: 1}}
	sm, err := newSessionMedia(rec, time.Now(), filepath.Join(dir, "mix.wav"), slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer sm.close()
	tr := &conference.Track{StreamID: "s", TrackID: "t", Kind: conference.KindAudio,
		Codec: conference.Codec{MimeType: "audio/PCMU", ClockRate: 8000}}
	sink, err := sm.trackSink(tr, filepath.Join(dir, "t.wav"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	tone := &synth.Tone{Freq: 440, Amplitude: 8000}
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1}, Payload: tone.NextPCMU(nil)}
	next := func() {
		pkt.SequenceNumber++
		pkt.Timestamp += 160
		if err := sink.WriteRTP(pkt); err != nil {
			t.Fatal(err)
		}
	}
	for range 50 { // warm up: buffers, the pipeline's anchor
		next()
	}
	start := time.Now()
	allocs := testing.AllocsPerRun(200, next)
	if allocs != 0 {
		t.Errorf("%.2f allocations per packet, want 0", allocs)
	}
	t.Logf("%v per packet", time.Since(start)/201)
}

func BenchmarkTrackSink_PCMU(b *testing.B) {
	dir := b.TempDir()
	rec := &Recording{PauseBehavior: "silence", Mix: MixSettings{SampleRate: 8000, Channels: 1}}
	sm, err := newSessionMedia(rec, time.Now(), filepath.Join(dir, "mix.wav"), slog.Default())
	if err != nil {
		b.Fatal(err)
	}
	defer sm.close()
	tr := &conference.Track{StreamID: "s", TrackID: "t", Kind: conference.KindAudio,
		Codec: conference.Codec{MimeType: "audio/PCMU", ClockRate: 8000}}
	sink, err := sm.trackSink(tr, filepath.Join(dir, "t.wav"), 0)
	if err != nil {
		b.Fatal(err)
	}
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
