package format

import (
	"path/filepath"
	"testing"
)

// TestForCodec: every codec the recorder records has a complete row, found
// whatever the case of its MIME type; others have none.
func TestForCodec(t *testing.T) {
	for _, tc := range []struct {
		mime, ext string
	}{
		{"audio/opus", "ogg"}, {"audio/OPUS", "ogg"}, {"audio/PCMU", "wav"}, {"audio/pcma", "wav"},
		{"video/VP8", "webm"}, {"video/vp9", "webm"}, {"video/H264", "mp4"},
		{"video/AV1", ""}, {"audio/G722", ""}, {"", ""},
	} {
		c := ForCodec(tc.mime)
		switch {
		case tc.ext == "" && c != nil:
			t.Errorf("ForCodec(%q) = %s, want none", tc.mime, c.MIME)
		case tc.ext != "" && (c == nil || c.Container.Ext != tc.ext):
			t.Errorf("ForCodec(%q) = %+v, want a row writing .%s", tc.mime, c, tc.ext)
		}
	}
}

// TestCodecs_WriteTheirContainer: each row's writer creates its file, and the
// file's name finds the row's container again.
func TestCodecs_WriteTheirContainer(t *testing.T) {
	dir := t.TempDir()
	for _, c := range codecs {
		t.Run(c.MIME, func(t *testing.T) {
			if c.Container == nil || c.New == nil || c.Container.Repair == nil || c.Container.NewCutter == nil || c.Container.ContentType == "" {
				t.Fatalf("incomplete row %+v", c)
			}
			path := filepath.Join(dir, "t-"+filepath.Base(c.MIME)+"."+c.Container.Ext)
			w, err := c.New(path, func() {})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got := ForFile(path); got != c.Container {
				t.Errorf("ForFile(%q) = %+v, want %s", path, got, c.Container.Ext)
			}
		})
	}
}

func TestForFile(t *testing.T) {
	for _, tc := range []struct {
		name string
		want *Container
	}{
		{"mix.wav", WAV}, {"tracks/s-a-audio0.ogg", Ogg}, {"tracks/S-V.WEBM", WebM}, {"x/y.mp4", MP4},
		{"manifest.json", nil}, {"tracks/noext", nil}, {"a.ogg/b", nil}, {"", nil},
	} {
		if got := ForFile(tc.name); got != tc.want {
			t.Errorf("ForFile(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}
func TestContentType(t *testing.T) {
	for name, want := range map[string]string{
		"mix.wav": "audio/wav", "tracks/a-b.ogg": "audio/ogg", "tracks/a-v.webm": "video/webm", "tracks/a-h.mp4": "video/mp4",
		"manifest.json": "application/json", "chat.JSON": "application/json", "parts/mix.wav.part-0001": "application/octet-stream",
	} {
		if got := ContentType(name); got != want {
			t.Errorf("ContentType(%q) = %q, want %q", name, got, want)
		}
	}
}
