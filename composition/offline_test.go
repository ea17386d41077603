package composition

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/media/pause"
	"github.com/rtcrec/recorder/media/wavwriter"
)

// g711File writes d of a µ-law tone as a G.711 WAV track, as the recorder does.
func g711File(t *testing.T, path string, freq float64, d time.Duration) {
	t.Helper()
	w, err := wavwriter.NewG711(path, wavwriter.MuLaw)
	if err != nil {
		t.Fatal(err)
	}
	tone := &synth.Tone{Freq: freq, Amplitude: 8000}
	for i := 0; i < int(d/(20*time.Millisecond)); i++ {
		if err := w.Write(1, uint32(160*i), tone.NextPCMU(nil)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestMixOffline(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "tracks"), 0o755)
	g711File(t, filepath.Join(dir, "tracks", "a-audio0.wav"), 440, 3*time.Second)
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	ogg := filepath.Join(dir, "tracks", "b-audio0.ogg")
	if out, err := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=2",
		"-c:a", "libopus", "-b:a", "48k", ogg).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := &Manifest{Started: t0, Stopped: t0.Add(4 * time.Second), Tracks: []Track{
		{StreamID: "a", TrackID: "audio0", Kind: "AUDIO", File: "tracks/a-audio0.wav", Offset: 0},
		{StreamID: "b", TrackID: "audio0", Kind: "AUDIO", File: "tracks/b-audio0.ogg", Offset: 1.5},
		{StreamID: "v", TrackID: "video1", Kind: "VIDEO", File: "tracks/v-video1.webm", Offset: 0},
	}}
	man := filepath.Join(dir, ManifestFile)
	if err := WriteManifest(man, m); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "offline.wav")
	mix, err := MixOffline(man, out, 8000)
	if err != nil {
		t.Fatal(err)
	}
	if mix.Duration != 4 || mix.SampleRate != 8000 || mix.Channels != 1 {
		t.Errorf("mix %+v, want 4 s 8000 Hz mono", mix)
	}
	data, _ := os.ReadFile(out)
	h, _ := wavwriter.ParseHeader(data)
	pcm := make([]int16, (len(data)-int(h.DataOffset))/2)
	for i := range pcm {
		pcm[i] = int16(uint16(data[int(h.DataOffset)+2*i]) | uint16(data[int(h.DataOffset)+2*i+1])<<8)
	}
	level := func(f float64, a, b float64) float64 {
		return mediatest.Goertzel(pcm[int(a*8000):int(b*8000)], 8000, f)
	}
	checks := []struct {
		f, a, b float64
		on      bool
	}{
		{440, 0.1, 2.9, true}, {440, 3.1, 3.9, false},
		{1000, 0.1, 1.4, false}, {1000, 1.7, 3.4, true}, {1000, 3.7, 3.95, false},
	}
	for _, c := range checks {
		if l := level(c.f, c.a, c.b); c.on && l < 2000 || !c.on && l > 300 {
			t.Errorf("%g Hz in [%.1f, %.1f]: amplitude %.0f, want present=%v", c.f, c.a, c.b, l, c.on)
		}
	}
	// A manifest pointing outside the recording is refused.
	m.Tracks[0].File = "../x.wav"
	WriteManifest(man, m)
	if _, err := MixOffline(man, out, 8000); err == nil {
		t.Error("a track outside the recording: no error")
	}
}

// TestMixOffline_ReappliesPausesAndBlackouts: a blackout of the track's
// participant and a pause with silence are silent in the offline mix; with
// skip the mix is shorter by the pause and a later track moves up by it.
func TestMixOffline_ReappliesPausesAndBlackouts(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "tracks"), 0o755)
	g711File(t, filepath.Join(dir, "tracks", "a-audio0.wav"), 440, 4*time.Second)
	g711File(t, filepath.Join(dir, "tracks", "b-audio0.wav"), 1000, time.Second)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, behavior := range []string{"silence", "skip"} {
		t.Run(behavior, func(t *testing.T) {
			m := &Manifest{Started: t0, Stopped: t0.Add(4 * time.Second), PauseBehavior: pause.Behavior(behavior),
				Tracks: []Track{
					{StreamID: "a", TrackID: "audio0", UserID: "u1", Kind: "AUDIO", File: "tracks/a-audio0.wav"},
					{StreamID: "b", TrackID: "audio0", UserID: "u2", Kind: "AUDIO", File: "tracks/b-audio0.wav", Offset: 3},
				},
				Pauses:    []Interval{{Start: 1, End: 1.5}},
				Blackouts: []Interval{{Start: 2, End: 2.5, UserID: "u1"}},
			}
			man := filepath.Join(dir, ManifestFile)
			if err := WriteManifest(man, m); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, behavior+".wav")
			mix, err := MixOffline(man, out, 8000)
			if err != nil {
				t.Fatal(err)
			}
			pcm := mediatest.Decode(t, out, 8000)
			shift := 0.0 // where the wall-clock second s is in the mix: s - shift after the pause
			want := 4.0
			if behavior == "skip" {
				shift, want = 0.5, 3.5
			}
			if mix.Duration != want {
				t.Errorf("mix lasts %v s, want %v", mix.Duration, want)
			}
			level := func(f, a, b float64) float64 {
				return mediatest.ToneLevel(pcm[int(a*8000):int(b*8000)], 8000, f)
			}
			checks := []struct {
				f, a, b float64
				on      bool
			}{
				{440, 0.1, 0.9, true},
				{440, 2.1 - shift, 2.4 - shift, false}, // blackout of u1
				{440, 2.6 - shift, 2.9 - shift, true},
				{1000, 3.1 - shift, 3.4 - shift, true}, // b at its offset, moved up by a skipped pause
				{1000, 2.6 - shift, 2.9 - shift, false},
			}
			if behavior == "silence" {
				checks = append(checks, struct {
					f, a, b float64
					on      bool
				}{440, 1.1, 1.4, false})
			}
			for _, c := range checks {
				if l := level(c.f, c.a, c.b); c.on && l < -30 || !c.on && l > -60 {
					t.Errorf("%g Hz in [%.1f, %.1f]: %.1f dBFS, want present=%v", c.f, c.a, c.b, l, c.on)
				}
			}
		})
	}
}
