package gcstest

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	gcs "cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// TestEmulator_ChecksSignatures checks the checker: a test that passes
// because nothing is checked would prove nothing.
func TestEmulator_ChecksSignatures(t *testing.T) {
	e := Start(t)
	name := e.NewBucket()
	ctx := t.Context()
	e.fake.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: name, Name: "a b/ü.txt"}, Content: []byte("signed")})
	sign := func(acct *Account, method, key string, expires time.Time) string {
		t.Helper()
		u, err := gcs.SignedURL(name, key, &gcs.SignedURLOptions{
			Scheme: gcs.SigningSchemeV4, Method: method, Expires: expires, Insecure: true,
			Hostname: e.Host, GoogleAccessID: acct.Email, PrivateKey: acct.PEM(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	good := e.Account(false)
	impostor := NewAccount(t, good.Email, false)
	later := time.Now().Add(time.Minute)
	tests := []struct {
		name, method, url string
		want              int
	}{
		{"Valid", "GET", sign(good, "GET", "a b/ü.txt", later), 200},
		{"WrongKey", "GET", sign(impostor, "GET", "a b/ü.txt", later), 403},
		{"OtherMethod", "DELETE", sign(good, "GET", "a b/ü.txt", later), 403},
		{"ReadOnlyPut", "PUT", sign(e.Account(true), "PUT", "a b/ü.txt", later), 403},
		{"Unsigned", "GET", e.URL + "/" + name + "/a%20b/%C3%BC.txt", 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(ctx, tc.method, tc.url, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.want)
			}
		})
	}
	// The same signature in upper-case hex is not the signature.
	t.Run("UpperCaseHex", func(t *testing.T) {
		u, _ := url.Parse(sign(good, "GET", "a b/ü.txt", later))
		q := u.Query()
		q.Set("X-Goog-Signature", strings.ToUpper(q.Get("X-Goog-Signature")))
		u.RawQuery = q.Encode()
		req := httptest.NewRequest("GET", u.String(), nil)
		req.Host = e.Host
		if got, err := e.CheckSignedURL(req, time.Now()); got != http.StatusForbidden {
			t.Errorf("status %d (%v), want 403", got, err)
		}
	})
	// Time limits, checked without waiting.
	u, _ := url.Parse(sign(good, "GET", "a b/ü.txt", later))
	req := httptest.NewRequest("GET", u.String(), nil)
	req.Host = e.Host
	for _, tc := range []struct {
		name string
		now  time.Time
		want int
	}{
		{"Expired", time.Now().Add(2 * time.Minute), 400},
		{"NotYetValid", time.Now().Add(-time.Hour), 400},
		{"InTime", time.Now(), 0},
	} {
		if got, err := e.CheckSignedURL(req, tc.now); got != tc.want {
			t.Errorf("%s: status %d (%v), want %d", tc.name, got, err, tc.want)
		}
	}
}

func FuzzCheckSignedURL(f *testing.F) {
	f.Add("/b/o?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Date=20260101T000000Z&X-Goog-Expires=60&X-Goog-Credential=x%2F20260101%2Fauto%2Fstorage%2Fgoog4_request&X-Goog-SignedHeaders=host&X-Goog-Signature=00")
	f.Add("/b/o?X-Goog-Signature=zz&X-Goog-Expires=-1")
	e := &Emulator{accounts: map[string]*Account{}}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		r := &http.Request{Method: "GET", URL: u, Host: "127.0.0.1:1", Header: http.Header{}}
		if status, err := e.CheckSignedURL(r, time.Now()); status == 0 || err == nil {
			t.Fatalf("accepted %q with no known account", target)
		}
	})
}
