// Package gcstest runs fake-gcs-server (v1.56.1) in process for tests, on a
// free 127.0.0.1 port, behind a front that authenticates as Google does:
// OAuth tokens for service-account JWTs, and V4 signed URLs checked against
// the account's key. Keys are generated per emulator; nothing secret is
// committed.
package gcstest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// Emulator is fake-gcs-server in process behind an authenticating front:
//
//   - POST /token is an OAuth 2.0 token endpoint for the JWT-bearer grant
//     (RFC 7523), as Google's: it issues an access token for a JWT signed by
//     the key of a known service account;
//   - a request with X-Goog-Signature must be a valid V4 signed URL
//     (GOOG4-RSA-SHA256, host signed without the port as the Go SDK does),
//     unexpired, for this method and object; the signature is checked against
//     the service account's public key;
//   - every other request needs "Authorization: Bearer <token>" with a token
//     this endpoint issued. Tokens of the read-only account may only GET/HEAD.
//
// fake-gcs-server itself checks no credentials at all.
type Emulator struct {
	URL      string // http://127.0.0.1:PORT
	Host     string // 127.0.0.1:PORT
	fake     *fakestorage.Server
	accounts map[string]*Account // by email
	tokens   sync.Map            // access token → *Account
	n        atomic.Int64
}

// Account is a service account made by the test; its key is never committed.
type Account struct {
	Email    string
	ReadOnly bool
	Key      *rsa.PrivateKey
}

// NewAccount makes a service account with a fresh 2048-bit RSA key. The
// emulator knows only the two accounts it made itself: a new account with the
// email of one of them is an impostor whose key is refused.
func NewAccount(t testing.TB, email string, readOnly bool) *Account {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &Account{Email: email, ReadOnly: readOnly, Key: k}
}

// PEM returns the account's private key as PEM, as a key file holds it.
func (a *Account) PEM(t testing.TB) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(a.Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// JSON returns the account's service-account key file, with token_uri at the emulator.
func (a *Account) JSON(t testing.TB, e *Emulator) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "recorder-test",
		"private_key_id": "test-key",
		"private_key":    string(a.PEM(t)),
		"client_email":   a.Email,
		"client_id":      "1",
		"token_uri":      e.URL + "/token",
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Start starts an emulator that stops when the test ends. It has two
// accounts: Account(false) may do anything, Account(true) only read.
func Start(t testing.TB) *Emulator {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &Emulator{Host: ln.Addr().String(), accounts: map[string]*Account{}}
	e.URL = "http://" + e.Host
	e.fake, err = fakestorage.NewServerWithOptions(fakestorage.Options{
		NoListener:  true,
		Scheme:      "http",
		PublicHost:  e.Host,
		ExternalURL: e.URL,
		Writer:      io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []*Account{
		NewAccount(t, "recorder@recorder-test.iam.gserviceaccount.com", false),
		NewAccount(t, "viewer@recorder-test.iam.gserviceaccount.com", true),
	} {
		e.accounts[a.Email] = a
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
		e.fake.Stop()
	})
	return e
}

// Account returns the read-write (readOnly false) or read-only test account.
func (e *Emulator) Account(readOnly bool) *Account {
	for _, a := range e.accounts {
		if a.ReadOnly == readOnly {
			return a
		}
	}
	return nil
}

// Endpoint is the JSON API base URL to give the client.
func (e *Emulator) Endpoint() string { return e.URL + "/storage/v1/" }

// NewBucket creates a fresh bucket and returns its name.
func (e *Emulator) NewBucket() string {
	name := fmt.Sprintf("bucket-%d", e.n.Add(1))
	e.fake.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: name})
	return name
}

// ServeHTTP authenticates r and hands it to fake-gcs-server.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/token" && r.Method == http.MethodPost:
		e.issueToken(w, r)
		return
	case r.URL.Query().Has("X-Goog-Signature"):
		if status, err := e.CheckSignedURL(r, time.Now()); err != nil {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(status)
			fmt.Fprintf(w, "<?xml version='1.0' encoding='UTF-8'?><Error><Code>%s</Code><Message>%s</Message></Error>",
				http.StatusText(status), err)
			return
		}
	default:
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		v, known := e.tokens.Load(tok)
		switch {
		case !ok || !known:
			jsonError(w, http.StatusUnauthorized, "Invalid Credentials")
			return
		case v.(*Account).ReadOnly && r.Method != http.MethodGet && r.Method != http.MethodHead:
			jsonError(w, http.StatusForbidden, v.(*Account).Email+" does not have storage.objects.create access")
			return
		}
	}
	e.fake.HTTPHandler().ServeHTTP(w, r)
}

// jsonError answers as the GCS JSON API does, so the client parses a googleapi.Error.
func jsonError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": status, "message": msg}})
}

// issueToken implements the JWT-bearer grant: the assertion must be an RS256
// JWT issued by a known account, signed with its key, and unexpired.
func (e *Emulator) issueToken(w http.ResponseWriter, r *http.Request) {
	fail := func(msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant", "error_description": msg})
	}
	if r.FormValue("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		fail("unsupported grant type")
		return
	}
	parts := strings.Split(r.FormValue("assertion"), ".")
	if len(parts) != 3 {
		fail("malformed JWT")
		return
	}
	var claims struct {
		Iss string `json:"iss"`
		Exp int64  `json:"exp"`
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(payload, &claims) != nil {
		fail("malformed JWT claims")
		return
	}
	a := e.accounts[claims.Iss]
	if a == nil {
		fail("unknown account")
		return
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err != nil || rsa.VerifyPKCS1v15(&a.Key.PublicKey, crypto.SHA256, sum[:], sig) != nil {
		fail("Invalid JWT Signature.")
		return
	}
	if time.Now().Unix() > claims.Exp {
		fail("expired JWT")
		return
	}
	var raw [16]byte
	rand.Read(raw[:])
	tok := "test-" + hex.EncodeToString(raw[:])
	e.tokens.Store(tok, a)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
}

// CheckSignedURL verifies a V4 signed URL request as GCS does, with the host
// signed without its port, at time now. It returns the HTTP status to refuse
// it with, or 0 and nil if it is valid.
func (e *Emulator) CheckSignedURL(r *http.Request, now time.Time) (int, error) {
	q := r.URL.Query()
	if q.Get("X-Goog-Algorithm") != "GOOG4-RSA-SHA256" {
		return http.StatusBadRequest, errors.New("unsupported X-Goog-Algorithm")
	}
	date, err := time.Parse("20060102T150405Z", q.Get("X-Goog-Date"))
	if err != nil {
		return http.StatusBadRequest, errors.New("bad X-Goog-Date")
	}
	expires, err := strconv.Atoi(q.Get("X-Goog-Expires"))
	if err != nil || expires < 1 || expires > 604800 {
		return http.StatusBadRequest, errors.New("bad X-Goog-Expires")
	}
	if now.Before(date.Add(-time.Minute)) {
		return http.StatusBadRequest, errors.New("request is not yet valid")
	}
	if now.After(date.Add(time.Duration(expires) * time.Second)) {
		return http.StatusBadRequest, errors.New("request has expired")
	}
	email, scope, ok := strings.Cut(q.Get("X-Goog-Credential"), "/")
	a := e.accounts[email]
	if !ok || a == nil || scope != date.Format("20060102")+"/auto/storage/goog4_request" {
		return http.StatusForbidden, errors.New("unknown credential")
	}
	if a.ReadOnly && r.Method != http.MethodGet && r.Method != http.MethodHead {
		return http.StatusForbidden, errors.New("read-only account")
	}
	signed := strings.Split(q.Get("X-Goog-SignedHeaders"), ";")
	if !slices.Contains(signed, "host") {
		return http.StatusBadRequest, errors.New("host is not signed")
	}
	var canon strings.Builder
	canon.WriteString(r.Method + "\n")
	canon.WriteString(uriEncode(r.URL.Path, false) + "\n")
	canon.WriteString(canonicalQuery(q) + "\n")
	for _, h := range signed {
		v := r.Header.Get(h)
		if h == "host" {
			v = r.Host
			if host, _, err := net.SplitHostPort(v); err == nil {
				v = host
			}
		}
		canon.WriteString(h + ":" + strings.Join(strings.Fields(v), " ") + "\n")
	}
	canon.WriteString("\n" + q.Get("X-Goog-SignedHeaders") + "\nUNSIGNED-PAYLOAD")
	hashed := sha256.Sum256([]byte(canon.String()))
	toSign := "GOOG4-RSA-SHA256\n" + q.Get("X-Goog-Date") + "\n" + scope + "\n" + hex.EncodeToString(hashed[:])
	// Signatures are lower-case hex; hex.DecodeString would also take upper
	// case, so that changing "a" to "A" would keep a signature valid.
	sigHex := q.Get("X-Goog-Signature")
	sig, err := hex.DecodeString(sigHex)
	sum := sha256.Sum256([]byte(toSign))
	if err != nil || sigHex != strings.ToLower(sigHex) || rsa.VerifyPKCS1v15(&a.Key.PublicKey, crypto.SHA256, sum[:], sig) != nil {
		return http.StatusForbidden, errors.New("SignatureDoesNotMatch")
	}
	return 0, nil
}

// canonicalQuery is the sorted, URI-encoded query without the signature.
func canonicalQuery(q url.Values) string {
	var pairs []string
	for k, vs := range q {
		if k == "X-Goog-Signature" {
			continue
		}
		for _, v := range vs {
			pairs = append(pairs, uriEncode(k, true)+"="+uriEncode(v, true))
		}
	}
	slices.Sort(pairs)
	return strings.Join(pairs, "&")
}

// uriEncode percent-encodes every byte but RFC 3986's unreserved characters
// (and "/" unless encodeSlash).
func uriEncode(s string, encodeSlash bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '/' && !encodeSlash:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
