package recorder

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/storage"
)

func TestAttachments_SignKeyRoundTrip(t *testing.T) {
	base, _ := url.Parse("https://rec.example.com")
	a := &Attachments{Base: base, Signer: storage.NewURLSigner([]byte("secret"))}
	rec := &Recording{Storage: StorageInfo{Prefix: "p/q/org/c1/r1/i1/"}}
	tests := []struct {
		key, kind, path string
	}{
		{"p/q/org/c1/r1/i1/tracks/s-t.ogg", "track", "s-t.ogg"},
		{"p/q/org/c1/r1/i1/mix.wav", "composition", "mix.wav"},
		{"p/q/org/c1/r1/i1/manifest.json", "composition", "manifest.json"},
		{"p/q/org/c1/r1/i1/chat.json", "transcript", "chat.json"},
		{"p/q/org/c1/r1/i1/cobrowse/s1/f.json", "cobrowse", "s1/f.json"},
	}
	sign := a.SignKeyFunc("/p/q/")
	for _, tt := range tests {
		s, err := sign(context.Background(), tt.key, &storage.SignedURLOptions{Expiry: time.Minute})
		if err != nil {
			t.Fatalf("%s: %v", tt.key, err)
		}
		u, _ := url.Parse(s)
		want := AttachmentPath + tt.kind + "/c1/r1/i1/" + tt.path
		if u.Path != want || u.Host != "rec.example.com" || a.Signer.Check("GET", u) != nil {
			t.Errorf("%s: signed %s, want path %s and a valid signature", tt.key, s, want)
		}
		// And back: the attachment URL's parts give the key.
		got, err := AttachmentKey(rec, tt.kind, tt.path)
		if err != nil || got != tt.key {
			t.Errorf("AttachmentKey(%s, %s) = %q, %v; want %q", tt.kind, tt.path, got, err, tt.key)
		}
	}
	if _, err := sign(context.Background(), "other/org/c/r/i/mix.wav", nil); storage.Code(err) != storage.Unimplemented {
		t.Errorf("key outside the prefix: %v, want Unimplemented", err)
	}
	for _, bad := range []struct{ kind, path string }{{"secrets", "x"}, {"track", "../x"}, {"track", ""}, {"composition", "/etc/passwd"}} {
		if _, err := AttachmentKey(rec, bad.kind, bad.path); KindOf(err) != KindNotFound {
			t.Errorf("AttachmentKey(%q, %q) = %v, want not found", bad.kind, bad.path, err)
		}
	}
}

func FuzzAttachmentKey(f *testing.F) {
	f.Add("track", "s-t.ogg")
	f.Add("composition", "../../x")
	f.Fuzz(func(t *testing.T, kind, path string) {
		rec := &Recording{Storage: StorageInfo{Prefix: "org/c/r/i/"}}
		key, err := AttachmentKey(rec, kind, path)
		if err != nil {
			return
		}
		if !strings.HasPrefix(key, "org/c/r/i/") || storage.ValidateKey(key) != nil {
			t.Fatalf("AttachmentKey(%q, %q) = %q leaves the recording", kind, path, key)
		}
	})
}
