package composition

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rtcrec/recorder/media/format"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/media/wavwriter"
)

func TestPrefix(t *testing.T) {
	tests := []struct{ prefix, want string }{
		{"", "org/c/r/i/"},
		{"rec", "rec/org/c/r/i/"},
		{"/rec/a/", "rec/a/org/c/r/i/"},
	}
	for _, tt := range tests {
		if got := Prefix(tt.prefix, "org", "c", "r", "i"); got != tt.want {
			t.Errorf("Prefix(%q) = %q, want %q", tt.prefix, got, tt.want)
		}
	}
	// The extension of each codec is media/format's (TestForCodec there).
	if got := TrackFile("s1", "t1", format.ForCodec("audio/OPUS").Container.Ext); got != "tracks/s1-t1.ogg" {
		t.Errorf("TrackFile = %q", got)
	}
}

func TestManifest_RoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), ManifestFile)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := &Manifest{InstanceID: "i", Started: t0, Stopped: t0.Add(10 * time.Second),
		Tracks: []Track{{StreamID: "s", TrackID: "t", File: "tracks/s-t.ogg", Offset: 2.5}}}
	if err := WriteManifest(path, m); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadManifest(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 || got.Tracks[0].Offset != 2.5 || !got.Stopped.Equal(m.Stopped) {
		t.Errorf("round trip: %+v", got)
	}
}

func TestReadMix(t *testing.T) {
	path := filepath.Join(t.TempDir(), MixFile)
	w, err := wavwriter.New(path, wavwriter.WithSampleRate(8000), wavwriter.WithChannels(1))
	if err != nil {
		t.Fatal(err)
	}
	frame := mediatest.Sine(440, 8000, 160, 8000)
	for range 150 { // 3 s
		if err := w.WriteFrame(frame); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m, err := ReadMix(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.SampleRate != 8000 || m.Channels != 1 || m.Frames != 24000 || m.Duration != 3 {
		t.Errorf("ReadMix = %+v, want 8000 Hz mono 24000 frames 3 s", m)
	}
	if _, err := ReadMix(filepath.Join(t.TempDir(), "none.wav")); err == nil {
		t.Error("ReadMix of a missing file: no error")
	}
}
