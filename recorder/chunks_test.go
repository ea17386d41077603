package recorder

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/media/format"
	"github.com/rtcrec/recorder/media/g711"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/media/wavwriter"
	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/storage"
)

// TestManager_UploadsWhileRecording: with chunkInterval 1s, byte-range
// parts of the mix and of the track files (PCMU WAV, Ogg Opus) are in
// storage while the recording runs; each file reassembled from its parts
// (Reassemble) holds, byte for byte but for the WAV header's sizes, what
// the local file held once three parts of each were seen (the parts come to
// hold it at the next cuts), and the tone throughout; after the stop the
// final objects are there and the parts are gone. The bound is the local
// file, not the clock: a track file holds what its sender sent, and a
// sender starved under load sends late and then in a burst (session 21: the
// Ogg parts held 1.9 s of the 4.5 s sent, none cut at +4 s, two at +5 s).
func TestManager_UploadsWhileRecording(t *testing.T) {
	m, fa, _ := newTestManager(t)
	m.cfg.Uploads.ChunkInterval = time.Second
	ctx := context.Background()
	opus := opusPackets(t, 660, 5) // before the start: ffmpeg takes a while under load
	rec, err := m.Start(ctx, "org", StartRequest{ApplicationID: "app", ConferenceID: "f", ConversationID: "c", Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Bucket(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	tr, ft := newTrack("f", "u1")
	fa.sink("f").AddTrack(tr)
	defer close(ft.ch)
	otr, oft := newTrack("f", "u2")
	otr.Codec = conference.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}
	fa.sink("f").AddTrack(otr)
	defer close(oft.ch)
	go oft.sendPackets(111, 960, opus[:225])
	ft.send(&synth.Tone{Freq: 440, Amplitude: 8000}, 4500*time.Millisecond)

	// Still recording: the parts are in storage.
	count := func(parts []*storage.Attributes, file string) int {
		n := 0
		for _, p := range parts {
			if strings.HasPrefix(p.Key, rec.Storage.Prefix+chunkPrefix+file+".part-") {
				n++
			}
		}
		return n
	}
	var parts []*storage.Attributes
	var wav, ogg string
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if parts, err = b.List(ctx, rec.Storage.Prefix+chunkPrefix); err != nil {
			t.Fatal(err)
		}
		for _, p := range parts {
			if rel, ok := strings.CutPrefix(p.Key, rec.Storage.Prefix+chunkPrefix+"tracks/"); ok {
				if f := "tracks/" + rel[:strings.Index(rel, ".part-")]; strings.HasSuffix(f, ".ogg") {
					ogg = f
				} else {
					wav = f
				}
			}
		}
		if count(parts, "mix.wav") >= 3 && count(parts, wav) >= 3 && count(parts, ogg) >= 3 {
			break
		}
	}
	got, _ := m.Get(ctx, "org", "c", "rec1", rec.InstanceID)
	if got.State != StateActive {
		t.Fatalf("state %s while checking the parts", got.State)
	}
	// The mix holds u1's 440 Hz from when u1's track was added; before it
	// the mix is silent (a loaded machine may take a while to add it).
	var tone0 time.Duration
	for _, s := range got.Streams {
		for _, tr := range s.Tracks {
			if tr.File == wav {
				tone0 = tr.Offset // added then; its packets follow at once
			}
		}
	}
	if !strings.HasSuffix(wav, ".wav") || count(parts, "mix.wav") < 3 || count(parts, wav) < 3 || count(parts, ogg) < 3 {
		t.Fatalf("while recording 4.5 s with 1 s parts: %d parts of the mix, %d of %q, %d of %q",
			count(parts, "mix.wav"), count(parts, wav), wav, count(parts, ogg), ogg)
	}
	for _, c := range []struct {
		file   string
		freq   float64
		decode func(t *testing.T, path string) []int16
	}{
		{"mix.wav", 440, pcm16}, {wav, 440, ulaw}, {ogg, 660, decodeOgg},
	} {
		held, data := wholeUnits(t, filepath.Join(rec.Dir, filepath.FromSlash(c.file)))
		stored := int64(0)
		for deadline := time.Now().Add(10 * time.Second); stored < int64(len(held)); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the parts in storage hold %d bytes, the local file held %d whole 10 s before", c.file, stored, len(held))
			}
			if parts, err = b.List(ctx, rec.Storage.Prefix+chunkPrefix+c.file+".part-"); err != nil {
				t.Fatal(err)
			}
			stored = 0
			for _, p := range parts {
				stored += p.Size
			}
		}
		dst := filepath.Join(t.TempDir(), "re"+path.Ext(c.file))
		n, err := Reassemble(ctx, b, rec.Storage.Prefix, c.file, dst)
		if err != nil {
			t.Fatalf("Reassemble(%s): %v", c.file, err)
		}
		re, err := os.ReadFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		if len(re) < len(held) || !bytes.Equal(re[data:len(held)], held[data:]) {
			t.Errorf("%s reassembled from %d parts (%d bytes) is not the local file as it was (%d bytes, media from byte %d)", c.file, n, len(re), len(held), data)
		}
		pcm := c.decode(t, dst)
		secs := float64(len(pcm)) / 8000
		t.Logf("while recording: %s from %d parts: %.2f s, %d bytes; the local file held %d", c.file, n, secs, len(re), len(held))
		first, last := 10, len(pcm)/800-1 // 100 ms windows
		t.Logf("u1's track was added %v after the start", tone0)
		if c.file == "mix.wav" {
			first = max(first, int(tone0/(100*time.Millisecond))+2)
		}
		for i := first; i < last; i++ {
			if a := mediatest.Goertzel(pcm[i*800:(i+1)*800], 8000, c.freq); a < 2000 {
				t.Errorf("%s reassembled: %.0f Hz amplitude %.0f at %.1f s", c.file, c.freq, a, float64(i)/10)
			}
		}
	}

	got, err = m.Stop(ctx, "org", "c", "rec1", rec.InstanceID)
	if err != nil || got.State != StateStopped {
		t.Fatalf("Stop = %+v, %v", got, err)
	}
	for _, f := range []string{"mix.wav", wav, ogg} {
		if _, err := b.Attributes(ctx, rec.Storage.Prefix+f); err != nil {
			t.Errorf("final %s: %v", f, err)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if parts, _ = b.List(ctx, rec.Storage.Prefix+chunkPrefix); len(parts) == 0 {
			return
		}
	}
	var keys []string
	for _, p := range parts {
		keys = append(keys, p.Key)
	}
	t.Errorf("parts left after the final objects were uploaded: %s", strings.Join(keys, ", "))
}

// wholeUnits returns the bytes of the growing file at path that end on a
// whole unit of its container (format.Cutter: a page, a sample frame), and
// where its media begin (the WAV header's sizes are patched in place).
func wholeUnits(t *testing.T, path string) (held []byte, data int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cut := format.ForFile(path).NewCutter()
	held = b[:cut.Cut(b, 0)]
	if w, ok := cut.(*wavwriter.Cutter); ok {
		data = int(w.Header.DataOffset)
	}
	return held, data
}

// sendPackets sends one RTP packet per payload every 20 ms, advancing the
// timestamp by step.
func (f *fakeTrack) sendPackets(pt uint8, step uint32, payloads [][]byte) {
	start := time.Now()
	for i, pl := range payloads {
		time.Sleep(time.Until(start.Add(time.Duration(i) * 20 * time.Millisecond)))
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: f.seq, Timestamp: f.ts, SSRC: 5678}, Payload: pl}
		f.seq++
		f.ts += step
		b, _ := p.Marshal()
		f.ch <- b
	}
}

// opusPackets encodes seconds of a tone at freq as 20 ms Opus packets.
func opusPackets(t *testing.T, freq float64, seconds int) [][]byte {
	t.Helper()
	packets, err := mediatest.OpusTone(testenv.LookPath(t, "ffmpeg"), t.TempDir(), freq, seconds)
	if err != nil {
		t.Fatal(err)
	}
	return packets
}

// decodeOgg decodes an Ogg Opus file to 8 kHz mono samples.
func decodeOgg(t *testing.T, path string) []int16 { return mediatest.Decode(t, path, 8000) }

// pcm16 returns the samples of a 16-bit mono WAV file whose header is consistent.
func pcm16(t *testing.T, path string) []int16 {
	t.Helper()
	b, h := wavHeader(t, path, 2)
	pcm := make([]int16, h.DataSize/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(b[h.DataOffset+int64(2*i):]))
	}
	return pcm
}

// ulaw returns the samples of a G.711 μ-law WAV file whose header is consistent.
func ulaw(t *testing.T, path string) []int16 {
	t.Helper()
	b, h := wavHeader(t, path, 1)
	pcm := make([]int16, h.DataSize)
	for i := range pcm {
		pcm[i] = g711.DecodeMuLaw(b[h.DataOffset+int64(i)])
	}
	return pcm
}

// wavHeader reads a WAV file and checks that its header is consistent.
func wavHeader(t *testing.T, path string, align int) ([]byte, wavwriter.Header) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := wavwriter.ParseHeader(b)
	if err != nil || int(h.BlockAlign) != align || h.SampleRate != 8000 || int64(h.DataSize) != int64(len(b))-h.DataOffset {
		t.Fatalf("%s: header %+v (%v), %d bytes", path, h, err, len(b))
	}
	return b, h
}
