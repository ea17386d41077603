package storage_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/memstore"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// fixedSigner returns a signer whose clock is *now.
func fixedSigner(now *time.Time) *storage.URLSigner {
	s := storage.NewURLSigner(testKey)
	s.Now = func() time.Time { return *now }
	return s
}

func mustParse(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestURLSigner_Check(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	s := fixedSigner(&now)
	base := mustParse(t, "https://rec.example/api/recordings/attachment/track/c1/r1/i1/tracks/a.ogg?x=1")
	signed := s.Sign(http.MethodGet, base, time.Hour)
	q := signed.Query()

	edit := func(f func(u *url.URL, q url.Values)) *url.URL {
		u := *signed
		q := u.Query()
		f(&u, q)
		u.RawQuery = q.Encode()
		return &u
	}
	tests := []struct {
		name   string
		method string
		u      *url.URL
		at     time.Time
		ok     bool
	}{
		{"Valid", http.MethodGet, signed, now, true},
		{"ValidJustBeforeExpiry", http.MethodGet, signed, now.Add(time.Hour - time.Second), true},
		{"ValidOtherParamChanged", http.MethodGet, edit(func(u *url.URL, q url.Values) { q.Set("x", "2") }), now, true},
		{"ValidWithinSkew", http.MethodGet, signed, now.Add(-30 * time.Second), true},
		{"ExpiredAtExpiry", http.MethodGet, signed, now.Add(time.Hour), false},
		{"Expired", http.MethodGet, signed, now.Add(2 * time.Hour), false},
		{"DateInFuture", http.MethodGet, signed, now.Add(-2 * time.Minute), false},
		{"OtherMethod", http.MethodPut, signed, now, false},
		{"OtherPath", http.MethodGet, edit(func(u *url.URL, q url.Values) { u.Path = strings.Replace(u.Path, "a.ogg", "b.ogg", 1) }), now, false},
		{"PathPrefix", http.MethodGet, edit(func(u *url.URL, q url.Values) { u.Path += "/more" }), now, false},
		{"ChangedExpires", http.MethodGet, edit(func(u *url.URL, q url.Values) { q.Set("Expires", "7200") }), now, false},
		{"ChangedDate", http.MethodGet, edit(func(u *url.URL, q url.Values) { q.Set("Date", "20261121T130000Z") }), now.Add(time.Hour + time.Minute), false},
		{"ChangedSignature", http.MethodGet, edit(func(u *url.URL, q url.Values) { q.Set("Signature", "A"+q.Get("Signature")[1:]) }), now, false},
		{"TruncatedSignature", http.MethodGet, edit(func(u *url.URL, q url.Values) { q.Set("Signature", q.Get("Signature")[:10]) }), now, false},
		{"NoSignature", http.MethodGet, edit(func(u *url.URL, q url.Values) { q.Del("Signature") }), now, false},
		{"NoDate", http.MethodGet, edit(func(u *url.URL, q url.Values) { q.Del("Date") }), now, false},
		{"NoExpires", http.MethodGet, edit(func(u *url.URL, q url.Values) { q.Del("Expires") }), now, false},
		{"TwoSignatures", http.MethodGet, edit(func(u *url.URL, q url.Values) { q.Add("Signature", q.Get("Signature")) }), now, false},
		{"ExpiresWithPlus", http.MethodGet, edit(func(u *url.URL, q url.Values) { q.Set("Expires", "+3600") }), now, false},
		{"ExpiresNegative", http.MethodGet, edit(func(u *url.URL, q url.Values) { q.Set("Expires", "-1") }), now, false},
		{"Unsigned", http.MethodGet, base, now, false},
		{"OtherKey", http.MethodGet, storage.NewURLSigner([]byte("another key, another signature!!")).Sign(http.MethodGet, base, time.Hour), now, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now2 := tc.at
			err := fixedSigner(&now2).Check(tc.method, tc.u)
			if tc.ok && err != nil {
				t.Fatalf("Check: %v", err)
			}
			if !tc.ok {
				if storage.Code(err) != storage.PermissionDenied || !errors.Is(err, storage.ErrBadSignature) {
					t.Fatalf("Check = %v, want PermissionDenied wrapping ErrBadSignature", err)
				}
				if strings.Contains(err.Error(), q.Get("Signature")) {
					t.Errorf("error echoes the signature: %v", err)
				}
			}
		})
	}
}

func TestURLSigner_Sign(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	s := fixedSigner(&now)
	u := mustParse(t, "http://h/p?Signature=old&Date=old&keep=yes")
	got := s.Sign(http.MethodGet, u, 1500*time.Millisecond).Query()
	if got.Get("Date") != "20261121T120000Z" || got.Get("Expires") != "2" || got.Get("keep") != "yes" || len(got["Signature"]) != 1 {
		t.Errorf("Sign query = %v", got)
	}
	if u.RawQuery != "Signature=old&Date=old&keep=yes" {
		t.Errorf("Sign changed its argument: %q", u.RawQuery)
	}
	if e := s.Sign(http.MethodGet, u, 30*24*time.Hour).Query().Get("Expires"); e != "604800" {
		t.Errorf("Expires for 30 days = %s, want the 7-day maximum 604800", e)
	}
	if e := s.Sign(http.MethodGet, u, 0).Query().Get("Expires"); e != "1" {
		t.Errorf("Expires for 0 = %s, want 1", e)
	}
	long := *s
	long.MaxExpiry = 30 * 24 * time.Hour
	tooLong := long.Sign(http.MethodGet, u, 10*24*time.Hour)
	if err := s.Check(http.MethodGet, tooLong); storage.Code(err) != storage.PermissionDenied {
		t.Errorf("Check of a URL valid longer than MaxExpiry = %v, want PermissionDenied", err)
	}
}

func FuzzURLSignerCheck(f *testing.F) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	s := fixedSigner(&now)
	good := s.Sign(http.MethodGet, &url.URL{Path: "/a/b"}, time.Hour)
	f.Add(good.Path, good.RawQuery)
	f.Add("/a/b", "Date=20261121T120000Z&Expires=3600&Signature=")
	f.Add("/a/b", "Date=%zz&Expires=1e9&Signature=x&Signature=y")
	f.Add("/", ";;&&==")
	f.Fuzz(func(t *testing.T, path, rawQuery string) {
		u := &url.URL{Path: path, RawQuery: rawQuery}
		err := s.Check(http.MethodGet, u)
		if err == nil {
			// Only the signature of exactly this path, Date and Expires may pass.
			q, _ := url.ParseQuery(rawQuery)
			date, _ := time.Parse("20060102T150405Z", q.Get("Date"))
			secs, _ := strconv.Atoi(q.Get("Expires"))
			want := fixedSigner(&date).Sign(http.MethodGet, &url.URL{Path: path}, time.Duration(secs)*time.Second)
			if q.Get("Signature") != want.Query().Get("Signature") {
				t.Fatalf("accepted %q %q", path, rawQuery)
			}
			return
		}
		if storage.Code(err) != storage.PermissionDenied {
			t.Fatalf("Check error %v has code %v", err, storage.Code(err))
		}
	})
}

func FuzzValidateKey(f *testing.F) {
	for _, k := range []string{"a", "a/b/c.ogg", "../x", "a//b", "/x", "a/./b", "ü/🎙", "a\\b", "x\x00", ""} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if storage.ValidateKey(key) != nil {
			return
		}
		for _, seg := range strings.Split(key, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("accepted %q with segment %q", key, seg)
			}
		}
		if strings.HasPrefix(key, "/") || strings.ContainsAny(key, "\\\x00\n\r") || len(key) > 1024 {
			t.Fatalf("accepted %q", key)
		}
	})
}

func TestSignedURLHandler(t *testing.T) {
	b := storage.NewBucket(memstore.New(memstore.Options{Name: "h"}))
	data := bytes.Repeat([]byte("0123456789"), 100)
	if _, err := b.Upload(t.Context(), "rec/a.wav", bytes.NewReader(data), &storage.WriterOptions{Size: -1, ContentType: "audio/wav"}); err != nil {
		t.Fatal(err)
	}
	s := storage.NewURLSigner(testKey)
	h := storage.SignedURLHandler(b, s, func(p string) (string, error) {
		k, ok := strings.CutPrefix(p, "/att/")
		if !ok {
			return "", errors.New("bad path")
		}
		return k, nil
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	sign := func(method, path string) string {
		return s.Sign(method, mustParse(t, srv.URL+path), time.Minute).String()
	}
	tests := []struct {
		name, method, url, rng, body string
		status                       int
		want                         string
		header                       [2]string
	}{
		{name: "GET", method: "GET", url: sign("GET", "/att/rec/a.wav"), status: 200, want: string(data), header: [2]string{"Content-Type", "audio/wav"}},
		{name: "HEAD", method: "HEAD", url: sign("GET", "/att/rec/a.wav"), status: 200, header: [2]string{"Content-Length", "1000"}},
		{name: "Range", method: "GET", url: sign("GET", "/att/rec/a.wav"), rng: "bytes=5-14", status: 206, want: "5678901234", header: [2]string{"Content-Range", "bytes 5-14/1000"}},
		{name: "SuffixRange", method: "GET", url: sign("GET", "/att/rec/a.wav"), rng: "bytes=-3", status: 206, want: "789"},
		{name: "BadRange", method: "GET", url: sign("GET", "/att/rec/a.wav"), rng: "bytes=2000-", status: 416},
		{name: "Missing", method: "GET", url: sign("GET", "/att/rec/none.wav"), status: 404},
		{name: "BadKeyPath", method: "GET", url: sign("GET", "/other/rec/a.wav"), status: 404},
		{name: "DotDotKey", method: "GET", url: sign("GET", "/att/rec/../a.wav"), status: 404},
		{name: "Unsigned", method: "GET", url: srv.URL + "/att/rec/a.wav", status: 403},
		{name: "PutWithGetSignature", method: "PUT", url: sign("GET", "/att/rec/a.wav"), body: "x", status: 403},
		{name: "Delete", method: "DELETE", url: sign("DELETE", "/att/rec/a.wav"), status: 405},
		{name: "PUT", method: "PUT", url: sign("PUT", "/att/rec/new.wav"), body: "new content", status: 201},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, _ := http.NewRequestWithContext(t.Context(), tc.method, tc.url, body)
			if tc.rng != "" {
				req.Header.Set("Range", tc.rng)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, got, tc.status)
			}
			if tc.want != "" && string(got) != tc.want {
				t.Errorf("body %q, want %q", got, tc.want)
			}
			if tc.header[0] != "" && resp.Header.Get(tc.header[0]) != tc.header[1] {
				t.Errorf("%s = %q, want %q", tc.header[0], resp.Header.Get(tc.header[0]), tc.header[1])
			}
		})
	}
	if got, err := b.ReadAll(t.Context(), "rec/new.wav"); err != nil || string(got) != "new content" {
		t.Errorf("after PUT: %q, %v", got, err)
	}
	if got, _ := b.ReadAll(t.Context(), "rec/a.wav"); !bytes.Equal(got, data) {
		t.Error("rejected PUT changed the object")
	}
}
