package wavwriter

import (
	"bytes"
	"math"
	"path/filepath"
	"testing"

	"github.com/rtcrec/recorder/internal/tooltest"
	"github.com/rtcrec/recorder/media/g711"
	"github.com/rtcrec/recorder/media/mediatest"
)

// writeG711 writes one packet of n samples of a tone at freq whose phase
// follows the RTP timestamp.
func writeG711(t testing.TB, g *G711Writer, law Format, ssrc, ts uint32, n int, freq float64) {
	t.Helper()
	pcm := make([]int16, n)
	mediatest.SineInto(pcm, freq, 8000, int(ts), 10000)
	payload := make([]byte, n)
	for i, s := range pcm {
		if law == ALaw {
			payload[i] = g711.EncodeALaw(s)
		} else {
			payload[i] = g711.EncodeMuLaw(s)
		}
	}
	if err := g.Write(ssrc, ts, payload); err != nil {
		t.Fatal(err)
	}
}

func TestG711Writer_Silence(t *testing.T) {
	for _, law := range []Format{MuLaw, ALaw} {
		if got := law.Silence(); (law == MuLaw && g711.EncodeMuLaw(0) != got) || (law == ALaw && g711.EncodeALaw(0) != got) {
			t.Errorf("%v silence byte %#x does not encode 0", law, got)
		}
	}
}

// TestG711Writer_Timeline sends a PCMU/PCMA stream with loss, a duplicate, a
// late packet, a DTX pause, a timestamp jump and an SSRC change, and checks
// with soxi, go-audio/wav and sox's decoder that the file's duration is RTP
// time, gaps are silent and the tone is intact elsewhere.
func TestG711Writer_Timeline(t *testing.T) {
	type seg struct {
		kind          string // "tone", "gap"
		from, samples int    // position in the file
	}
	for _, law := range []Format{MuLaw, ALaw} {
		t.Run(law.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "track.wav")
			// No wall clock: the jump and the SSRC change continue directly.
			g, err := NewG711(path, law, WithClock(nil))
			if err != nil {
				t.Fatal(err)
			}
			var segs []seg
			pos := 0
			send := func(ssrc, ts uint32, packets int) {
				segs = append(segs, seg{"tone", pos, packets * 160})
				for i := range packets {
					writeG711(t, g, law, ssrc, ts+uint32(160*i), 160, 1000)
				}
				pos += packets * 160
			}
			gap := func(samples int) {
				segs = append(segs, seg{"gap", pos, samples})
				pos += samples
			}
			send(1, 1000, 50)                                // 1 s
			gap(10 * 160)                                    // 10 packets lost
			send(1, 1000+60*160, 50)                         // 1 s
			writeG711(t, g, law, 1, 1000+109*160, 160, 3000) // duplicate of the last packet
			writeG711(t, g, law, 1, 1000+80*160, 160, 3000)  // late
			gap(8000)                                        // DTX: 1 s without packets
			send(1, 1000+160*160, 25)
			send(1, 1000+185*160+600*8000, 25) // timestamp jump of 10 minutes: re-anchored
			send(2, 0xFFFFFF00, 25)            // new SSRC, wrapping timestamps
			if err := g.Close(); err != nil {
				t.Fatal(err)
			}
			if g.Dropped() != 2 {
				t.Errorf("Dropped = %d, want 2", g.Dropped())
			}
			if g.Frames() != int64(pos) {
				t.Errorf("Frames = %d, want %d", g.Frames(), pos)
			}

			if got := soxiSamples(t, path); got != int64(pos) {
				t.Errorf("soxi -s = %d, want %d", got, pos)
			}
			checkGoAudio(t, path, law, 8000, 1, int64(pos))

			pcm := tooltest.DecodePCM(t, path)
			if len(pcm) != pos {
				t.Fatalf("sox decoded %d samples, want %d", len(pcm), pos)
			}
			for _, s := range segs {
				win := pcm[s.from : s.from+s.samples]
				tone := mediatest.Goertzel(win, 8000, 1000)
				wrong := mediatest.Goertzel(win, 8000, 3000)
				switch {
				case s.kind == "tone" && (tone < 9000 || wrong > 200):
					t.Errorf("tone at %d..%d: 1 kHz %.0f, 3 kHz %.0f", s.from, s.from+s.samples, tone, wrong)
				case s.kind == "gap" && mediatest.RMS(win) > 16:
					t.Errorf("gap at %d..%d is not silent: RMS %.0f", s.from, s.from+s.samples, mediatest.RMS(win))
				}
			}
		})
	}
}

func TestG711Writer_ZeroAllocs(t *testing.T) {
	g, err := NewG711(filepath.Join(t.TempDir(), "a.wav"), MuLaw)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	payload, ts := bytes.Repeat([]byte{0x55}, 160), uint32(0)
	write := func() {
		ts += 320 // a lost packet before each: exercises the silence fill
		if err := g.Write(1, ts, payload); err != nil {
			t.Fatal(err)
		}
	}
	if n := testing.AllocsPerRun(100, write); n != 0 {
		t.Errorf("Write allocates %.1f times per packet, want 0", n)
	}
	if n := tooltest.TotalAllocs(100, write); n != 0 {
		t.Errorf("100 Write calls allocate %d times, want 0", n)
	}
}

// TestG711Writer_PlaysInChromium plays µ-law and A-law files with a gap in
// headless Chromium to their end.
func TestG711Writer_PlaysInChromium(t *testing.T) {
	for _, law := range []Format{MuLaw, ALaw} {
		path := filepath.Join(t.TempDir(), "track.wav")
		g, err := NewG711(path, law)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 100 { // 2 s, of which 0.4 s are lost
			if i < 40 || i >= 60 {
				writeG711(t, g, law, 1, uint32(160*i), 160, 440)
			}
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
		p := tooltest.ChromiumPlay(t, path)
		if !p.Ended || p.Err != "" || math.Abs(p.Duration-2) > 0.01 || math.Abs(p.Time-2) > 0.05 {
			t.Errorf("%v: Chromium: %+v, want 2 s played to the end", law, p)
		}
	}
}
