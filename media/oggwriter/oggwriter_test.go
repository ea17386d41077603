package oggwriter

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/internal/tooltest"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/media/ogg"
)

// readPackets returns the packets of an Ogg stream and its pages, checking
// every page's CRC.
func readPackets(t testing.TB, b []byte) (packets [][]byte, pages []ogg.Page) {
	t.Helper()
	for off := 0; off < len(b); {
		n, p, err := ogg.ParsePage(b[off:])
		if err != nil {
			t.Fatalf("page at offset %d: %v", off, err)
		}
		off += n
		pages = append(pages, p)
	}
	if _, err := ogg.ReadPackets(bytes.NewReader(b), func(p []byte) error {
		packets = append(packets, bytes.Clone(p))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return packets, pages
}

// opusTone encodes seconds of a tone at freq with opusenc in 20 ms frames and
// returns the audio packets.
func opusTone(t testing.TB, freq float64, seconds int) [][]byte {
	t.Helper()
	dir := t.TempDir()
	wav, opus := filepath.Join(dir, "tone.wav"), filepath.Join(dir, "tone.opus")
	tooltest.Run(t, "sox", "-n", "-r", "48000", "-c", "1", "-b", "16", wav, "synth", itoa(seconds), "sine", itoa(int(freq)), "vol", "0.3")
	tooltest.Run(t, "opusenc", "--quiet", "--framesize", "20", "--bitrate", "48", wav, opus)
	b, err := os.ReadFile(opus)
	if err != nil {
		t.Fatal(err)
	}
	packets, _ := readPackets(t, b)
	if len(packets) < 2+50*seconds {
		t.Fatalf("opusenc gave %d packets for %d s", len(packets), seconds)
	}
	return packets[2 : 2+50*seconds]
}

func itoa(n int) string {
	b := []byte{}
	for ; n > 0 || len(b) == 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestWriter_Timeline writes a 6 s Opus stream with loss, a 1 s gap, a
// duplicate, a late packet, a timestamp jump, an SSRC change and sequence and
// timestamp wrap-around, then checks the file with ffprobe (duration), with
// its own page reader (CRCs, granules, flags) and by decoding it with opusdec
// (tone where packets were, silence in the gaps).
func TestWriter_Timeline(t *testing.T) {
	const n = 300 // 6 s
	packets := opusTone(t, 1000, 6)
	path := filepath.Join(t.TempDir(), "track.ogg")
	w, err := New(path, WithSerial(7), WithClock(nil)) // the jump and the SSRC change continue directly
	if err != nil {
		t.Fatal(err)
	}
	ssrc, tsBase := uint32(1), uint32(math.MaxUint32-20*960) // wraps after 20 packets
	send := func(i int) {
		ts := tsBase + uint32(i*960)
		if i >= 200 {
			ts += 600 * rate // a jump of 10 minutes: re-anchored
		}
		if i >= 250 {
			ssrc, ts = 2, uint32(i*960)+123456789 // a new SSRC with another timeline
		}
		p := &rtp.Packet{Header: rtp.Header{SSRC: ssrc, SequenceNumber: uint16(65500 + i), Timestamp: ts}, Payload: packets[i]}
		if err := w.WriteRTP(p); err != nil {
			t.Fatal(err)
		}
	}
	lost := func(i int) bool { return (i >= 50 && i < 60) || (i >= 100 && i < 150) }
	for i := range n {
		if lost(i) {
			continue
		}
		send(i)
		switch i {
		case 160:
			send(160) // duplicate
		case 170:
			send(155) // late
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Dropped() != 2 {
		t.Errorf("Dropped = %d, want 2", w.Dropped())
	}
	if w.Duration() != 6*time.Second {
		t.Errorf("Duration = %v, want 6s", w.Duration())
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, pages := readPackets(t, b)
	for i, p := range pages {
		wantFlags := byte(0)
		switch i {
		case 0:
			wantFlags = ogg.FlagBOS
		case len(pages) - 1:
			wantFlags = ogg.FlagEOS
		}
		if p.Flags != wantFlags || p.Sequence != uint32(i) || p.Serial != 7 {
			t.Errorf("page %d: flags %#x sequence %d serial %d", i, p.Flags, p.Sequence, p.Serial)
		}
	}
	if last := pages[len(pages)-1].Granule; last != preSkip+n*960 {
		t.Errorf("last granule %d, want %d", last, preSkip+n*960)
	}

	probe := tooltest.FFProbe(t, path, false)
	if probe.CodecName != "opus" || math.Abs(probe.Duration-6) > 6*0.02 {
		t.Errorf("ffprobe: codec %q duration %.3f s, want opus 6 s", probe.CodecName, probe.Duration)
	}

	decoded := filepath.Join(t.TempDir(), "decoded.wav")
	tooltest.Run(t, "opusdec", "--quiet", "--rate", "48000", path, decoded)
	pcm := tooltest.DecodePCM(t, decoded)
	if d := math.Abs(float64(len(pcm)) - n*960); d > 960 {
		t.Errorf("opusdec decoded %d samples, want %d", len(pcm), n*960)
	}
	for start := 0; start < n; start += 10 {
		// Windows of 10 packets with 20 ms margins against codec ramps.
		from, to := start*960+960, (start+10)*960-960
		if to > len(pcm) {
			break
		}
		win := pcm[from:to]
		tone := mediatest.Goertzel(win, rate, 1000)
		switch {
		case lost(start) && mediatest.RMS(win) > 50:
			t.Errorf("packets %d–%d were lost but the file is not silent there: RMS %.0f", start, start+9, mediatest.RMS(win))
		case !lost(start) && (tone < 4000 || mediatest.Goertzel(win, rate, 3000) > tone/20):
			// About 9800; lower in the window after a gap, where the
			// decoder's inter-frame energy prediction needs a few
			// packets to recover from the silence.
			t.Errorf("packets %d–%d: 1 kHz amplitude %.0f, want about 9800", start, start+9, tone)
		}
	}
}

// TestWriter_PlaysInChromium plays a 4 s file with a 1 s gap in headless
// Chromium to its end.
func TestWriter_PlaysInChromium(t *testing.T) {
	packets := opusTone(t, 1000, 4)
	path := filepath.Join(t.TempDir(), "track.ogg")
	w, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if i < 50 || i >= 100 {
			if err := w.WriteRTP(&rtp.Packet{Header: rtp.Header{Timestamp: uint32(960 * i)}, Payload: packets[i]}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	p := tooltest.ChromiumPlay(t, path)
	if !p.Ended || p.Err != "" || math.Abs(p.Duration-4) > 0.01 || math.Abs(p.Time-4) > 0.05 {
		t.Errorf("Chromium: %+v, want 4 s played to the end", p)
	}
}

// TestWriter_LongPauseKeepsLength: the caller writes nothing for 5 s (a
// pause longer than the maximum gap) and the sender's timestamps jump
// meanwhile; the wall clock keeps the pause in the file.
func TestWriter_LongPauseKeepsLength(t *testing.T) {
	packets := opusTone(t, 1000, 2)
	now := time.Unix(0, 0)
	path := filepath.Join(t.TempDir(), "track.ogg")
	w, err := New(path, WithMaxGap(time.Second), WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		ts := uint32(960 * i)
		if i >= 50 {
			ts += 1 << 30 // the sender's timestamps jumped during the pause
			if i == 50 {
				now = now.Add(5 * time.Second)
			}
		}
		now = now.Add(20 * time.Millisecond)
		if err := w.WriteRTP(&rtp.Packet{Header: rtp.Header{Timestamp: ts}, Payload: packets[i]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Duration() != 7*time.Second {
		t.Errorf("Duration = %v, want 7s (1 s, a 5 s pause, 1 s)", w.Duration())
	}
	if p := tooltest.FFProbe(t, path, false); math.Abs(p.Duration-7) > 7*0.02 {
		t.Errorf("ffprobe duration %.3f s, want 7 s", p.Duration)
	}
}

// TestWriter_CrashLosesAtMostASecond reads the file while the writer is
// still open: every page on disk is whole and covers all but the last
// second of audio; Repair then cuts a torn last page.
func TestWriter_CrashLosesAtMostASecond(t *testing.T) {
	packets := opusTone(t, 1000, 4)
	path := filepath.Join(t.TempDir(), "track.ogg")
	w, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := range 175 { // 3.5 s
		if err := w.WriteRTP(&rtp.Packet{Header: rtp.Header{Timestamp: uint32(960 * i)}, Payload: packets[i]}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, pages := readPackets(t, b)
	onDisk := time.Duration(pages[len(pages)-1].Granule-preSkip) * time.Second / rate
	if onDisk < 2500*time.Millisecond {
		t.Errorf("after 3.5 s of audio the file on disk holds %v", onDisk)
	}

	// A crash in the middle of a page write: half a page of garbage at the end.
	torn := append(b, b[len(b)-200:len(b)-100]...)
	if err := os.WriteFile(path, torn, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Repair(path); err != nil {
		t.Fatal(err)
	}
	fixed, _ := os.ReadFile(path)
	if !bytes.Equal(fixed, b) {
		t.Errorf("Repair left %d bytes, want the %d bytes of whole pages", len(fixed), len(b))
	}
	if p := tooltest.FFProbe(t, path, false); math.Abs(p.Duration-onDisk.Seconds()) > 0.05 {
		t.Errorf("ffprobe of the repaired file: %.3f s, want %.3f s", p.Duration, onDisk.Seconds())
	}
	if err := Repair(filepath.Join(t.TempDir(), "missing.ogg")); err == nil {
		t.Error("Repair of a missing file: no error")
	}
	junk := filepath.Join(t.TempDir(), "junk.ogg")
	os.WriteFile(junk, []byte("not an ogg file"), 0o600)
	if err := Repair(junk); !errors.Is(err, ErrPage) {
		t.Errorf("Repair of junk = %v, want ErrPage", err)
	}
}

func TestPacketSamples(t *testing.T) {
	tests := []struct {
		name    string
		packet  []byte
		want    uint32
		wantErr bool
	}{
		{"empty", nil, 0, true},
		{"SILK 20 ms", []byte{0x08, 1}, 960, false},
		{"SILK 60 ms", []byte{0x18, 1}, 2880, false},
		{"hybrid 10 ms", []byte{0x60}, 480, false},
		{"CELT 2.5 ms", []byte{0x80}, 120, false},
		{"CELT 20 ms two frames", []byte{0xF9, 1, 2}, 1920, false},
		{"CELT 20 ms code 3 six frames", []byte{0xFB, 6}, 5760, false},
		{"code 3 seven 20 ms frames", []byte{0xFB, 7}, 0, true},
		{"code 3 zero frames", []byte{0xFB, 0}, 0, true},
		{"code 3 without count", []byte{0xFB}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := packetSamples(tt.packet)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("packetSamples = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestNewWith_Errors(t *testing.T) {
	if _, err := NewWith(&bytes.Buffer{}, WithChannels(3)); err == nil {
		t.Error("3 channels: no error")
	}
	w, err := NewWith(&bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := w.WriteRTP(&rtp.Packet{Payload: []byte{0xF8, 0xFF, 0xFE}}); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteRTP after Close = %v, want ErrClosed", err)
	}
}

func TestWriteRTP_ZeroAllocs(t *testing.T) {
	w, err := New(filepath.Join(t.TempDir(), "a.ogg"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	p := &rtp.Packet{Payload: bytes.Repeat([]byte{0xFC}, 80)}
	i := 0
	// 500 packets cross several page writes; every 7th packet follows a loss.
	write := func() {
		i++
		p.Timestamp += 960
		if i%7 == 0 {
			p.Timestamp += 960
		}
		if err := w.WriteRTP(p); err != nil {
			t.Fatal(err)
		}
	}
	if n := testing.AllocsPerRun(500, write); n != 0 {
		t.Errorf("WriteRTP allocates %.2f times per packet, want 0", n)
	}
	// Exact: an allocation per page write would be rounded away above.
	if n := tooltest.TotalAllocs(500, write); n != 0 {
		t.Errorf("500 WriteRTP calls allocate %d times, want 0", n)
	}
}

// BenchmarkWriteRTP writes 20 ms Opus packets of 80 bytes (32 kbit/s) to a
// file, page writes included.
func BenchmarkWriteRTP(b *testing.B) {
	w, err := New(filepath.Join(b.TempDir(), "a.ogg"))
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	p := &rtp.Packet{Payload: bytes.Repeat([]byte{0xFC}, 80)}
	b.ReportAllocs()
	for b.Loop() {
		p.Timestamp += 960
		if err := w.WriteRTP(p); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzPages checks the page parser on arbitrary bytes: no panic, and the
// valid prefix it reports parses page by page.
func FuzzPages(f *testing.F) {
	var buf bytes.Buffer
	w, _ := NewWith(&buf)
	w.WriteRTP(&rtp.Packet{Payload: []byte{0xF8, 1, 2, 3}})
	w.Close()
	f.Add(buf.Bytes())
	f.Add([]byte("OggS\x00\x02"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := validPrefix(bytes.NewReader(b))
		for off := int64(0); off < n; {
			size, _, err := ogg.ParsePage(b[off:])
			if err != nil {
				t.Fatalf("prefix of %d bytes, page at %d: %v", n, off, err)
			}
			off += int64(size)
		}
	})
}

// FuzzWriteRTP feeds arbitrary payloads and timestamps: no panic, and the
// output is always whole, valid pages with non-decreasing granules.
func FuzzWriteRTP(f *testing.F) {
	f.Add([]byte{0xF8, 0xFF, 0xFE}, uint32(0), uint32(960), uint8(3))
	f.Add([]byte{0xFB, 6, 1}, uint32(1<<31), uint32(48000*40), uint8(20))
	f.Fuzz(func(t *testing.T, payload []byte, ts, step uint32, count uint8) {
		var buf bytes.Buffer
		w, err := NewWith(&buf, WithMaxGap(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for i := range uint32(count) {
			if err := w.WriteRTP(&rtp.Packet{Header: rtp.Header{SSRC: i / 16, Timestamp: ts + i*step}, Payload: payload}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if n := validPrefix(bytes.NewReader(buf.Bytes())); n != int64(buf.Len()) {
			t.Fatalf("valid prefix %d of %d bytes", n, buf.Len())
		}
		_, pages := readPackets(t, buf.Bytes())
		for i := 1; i < len(pages); i++ {
			if pages[i].Granule < pages[i-1].Granule {
				t.Fatalf("granule goes back on page %d", i)
			}
		}
	})
}
