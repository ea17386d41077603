package api

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/media/g711"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/media/wavwriter"
	"github.com/rtcrec/recorder/recorder/conference/whip"
	"github.com/rtcrec/recorder/recorder/conference/whip/whiptest"
	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/azurestore/azuritetest"
	"github.com/rtcrec/recorder/storage/gcsstore/gcstest"
	"github.com/rtcrec/recorder/storage/s3store/s3test"
	"github.com/rtcrec/recorder/storage/sftpstore/sftptest"
)

// storageServer is one storage provider on a test server: the profile of a
// healthy application, one whose credential is wrong (nil for LOCAL), the
// secrets that must never show, and how its signed URLs look.
type storageServer struct {
	profile, wrong *config.StorageProfile
	secrets        []string
	// signature is the query parameter carrying the signed URL's signature;
	// native says the URL is the provider's own (else the recorder's
	// attachment URL).
	signature string
	native    bool
	// credentialHint is what Verify's message asks to check when the
	// wrong credential is rejected.
	credentialHint string
}

// storageServers start the servers of every provider (skipping, or failing
// under CI, where one is not installed).
var storageServers = []struct {
	name  string
	start func(t *testing.T) storageServer
}{
	{"LOCAL", func(t *testing.T) storageServer {
		p := &config.StorageProfile{Provider: config.ProviderLocal, Prefix: "rec", Dir: t.TempDir()}
		return storageServer{profile: p, signature: storage.ParamSignature}
	}},
	{"S3/versitygw", func(t *testing.T) storageServer {
		g := s3test.Start(t)
		bucket := g.NewBucket(t.Context(), t)
		p := &config.StorageProfile{Provider: config.ProviderS3, Bucket: bucket, Prefix: "rec", Region: s3test.Region,
			Endpoint: g.Endpoint, PathStyle: true, AccessKeyID: s3test.Access, SecretAccessKey: s3test.Secret}
		w := *p
		w.SecretAccessKey = "wrong-secret-0123456789abcdef"
		return storageServer{profile: p, wrong: &w, secrets: []string{s3test.Secret, w.SecretAccessKey},
			signature: "X-Amz-Signature", native: true, credentialHint: "access key ID and secret access key"}
	}},
	{"Azure/Azurite", func(t *testing.T) storageServer {
		az := azuritetest.Start(t)
		p := &config.StorageProfile{Provider: config.ProviderAzure, Container: az.NewContainer(t.Context(), t), Prefix: "rec",
			AccountName: azuritetest.Account, AccountKey: azuritetest.Key, Endpoint: az.Endpoint}
		w := *p
		w.AccountKey = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ=="
		return storageServer{profile: p, wrong: &w, secrets: []string{azuritetest.Key, w.AccountKey},
			signature: "sig", native: true, credentialHint: "account name and account key, connection string or SAS token"}
	}},
	{"GCS/fake-gcs", func(t *testing.T) storageServer {
		e := gcstest.Start(t)
		acct := e.Account(false)
		impostor := gcstest.NewAccount(t, acct.Email, false) // same account, a key GCS does not know
		p := &config.StorageProfile{Provider: config.ProviderGCS, Bucket: e.NewBucket(), Prefix: "rec",
			CredentialsJSON: string(acct.JSON(t, e)), Endpoint: e.Endpoint()}
		w := *p
		w.CredentialsJSON = string(impostor.JSON(t, e))
		return storageServer{profile: p, wrong: &w, secrets: append(pemSecrets(acct.PEM(t)), pemSecrets(impostor.PEM(t))...),
			signature: "X-Goog-Signature", native: true, credentialHint: "service account key"}
	}},
	{"SFTP/in-process", func(t *testing.T) storageServer {
		srv := sftptest.Start(t)
		p := &config.StorageProfile{Provider: config.ProviderSFTP, Prefix: "rec", Host: "127.0.0.1", Port: srv.Addr.Port,
			User: sftptest.User, Password: sftptest.Password, HostKey: srv.HostKey.AuthorizedKey, Dir: srv.Dir}
		w := *p
		w.Password = "wrong-password-0123456789"
		return storageServer{profile: p, wrong: &w, secrets: []string{sftptest.Password, w.Password},
			signature: storage.ParamSignature, credentialHint: "user and its password or private key"}
	}},
	{"SFTP/OpenSSH", func(t *testing.T) storageServer {
		srv := sftptest.StartOpenSSH(t)
		keyFile := func(k *sftptest.Key) string {
			f := filepath.Join(t.TempDir(), "id_ed25519")
			if err := os.WriteFile(f, k.PEM, 0o600); err != nil {
				t.Fatal(err)
			}
			return f
		}
		other := sftptest.NewKey(t) // a key the server does not authorize
		p := &config.StorageProfile{Provider: config.ProviderSFTP, Prefix: "rec", Host: "127.0.0.1", Port: srv.Port,
			User: srv.User, PrivateKeyFile: keyFile(srv.ClientKey), HostKey: srv.HostKey.AuthorizedKey, Dir: srv.Dir}
		w := *p
		w.PrivateKeyFile = keyFile(other)
		return storageServer{profile: p, wrong: &w, secrets: append(pemSecrets(srv.ClientKey.PEM), pemSecrets(other.PEM)...),
			signature: storage.ParamSignature, credentialHint: "user and its password or private key"}
	}},
}

// pemSecrets returns the base64 lines of a PEM private key: none may appear
// anywhere.
func pemSecrets(pem []byte) []string {
	var out []string
	for _, l := range strings.Split(string(pem), "\n") {
		if len(l) >= 40 && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for concurrent writers (the log handler).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// capture is an http.RoundTripper keeping every response body the API
// sends, so that the test can look for secrets in all of them.
type capture struct {
	buf syncBuffer
}

func (c *capture) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(&c.buf, "%s %s → %d\n%s\n", r.Method, r.URL.Path, resp.StatusCode, body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// TestEndToEnd_StorageProviders records a participant sending a 440 Hz tone
// through the API into an application on each storage provider, then
// checks what a customer sees: every track and the mix uploaded (location,
// size, time), playable through its signed URL with plain net/http (whole
// and by Range, the tone found by content), a tampered URL refused,
// storage/info and Verify naming the provider and never a credential, and
// no credential in any API response or log line.
//
// The recordings last 3 s. With RECORDER_LONG=1 they last 10 minutes, all
// providers at once, and the stops (timed: stop request to every object
// uploaded and verified) one after another:
//
//	RECORDER_LONG=1 go test -run TestEndToEnd_StorageProviders -v -parallel 6 -timeout 20m ./api
func TestEndToEnd_StorageProviders(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	d, long := 3*time.Second, os.Getenv("RECORDER_LONG") == "1"
	if long {
		d = 10 * time.Minute
	}
	var stops sync.Mutex // one stop at a time: each timed alone
	for _, sp := range storageServers {
		t.Run(sp.name, func(t *testing.T) {
			if long {
				t.Parallel()
			}
			start := time.Now()
			srv := sp.start(t)
			t.Logf("%s ready in %v", sp.name, time.Since(start).Round(time.Millisecond))
			testStorageEndToEnd(t, srv, d, &stops)
			t.Logf("%s: %v in all", sp.name, time.Since(start).Round(time.Millisecond))
		})
	}
}

func testStorageEndToEnd(t *testing.T, srv storageServer, d time.Duration, stops *sync.Mutex) {
	ctx, cancel := context.WithTimeout(t.Context(), d+5*time.Minute)
	defer cancel()
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := testConfig(t.TempDir())
	cfg.Applications = map[string]*config.Application{
		"app1": {Conference: config.ConferenceConfig{Kind: "whip"}, Storage: srv.profile},
	}
	if srv.wrong != nil {
		cfg.Applications["bad"] = &config.Application{Conference: config.ConferenceConfig{Kind: "whip"}, Storage: srv.wrong}
	}
	h := startServiceConfig(t, cfg, log)
	api := &capture{}
	h.client = &http.Client{Transport: api}
	provider := srv.profile.Provider

	p, err := whiptest.Join(ctx, h.whipClient(key1), whip.Endpoint(h.url, "sconf", "alice", "MIC"), "alice", 440)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Leave(context.Background())
	ev, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: "sconf", ConversationID: "sconv"})
	if st != 200 || ev.State != "ACTIVE" {
		t.Fatalf("start: %d %+v", st, ev)
	}
	time.Sleep(d)
	stops.Lock()
	stopAt := time.Now()
	var stopped RecordingDataEvent
	st = h.do("POST", recPath(ev)+"/stop", key1, nil, &stopped)
	took := time.Since(stopAt)
	stops.Unlock()
	if st != 200 || stopped.State != "STOPPED" {
		t.Fatalf("stop: %d %+v", st, stopped)
	}
	t.Logf("stop request → STOPPED with every object uploaded and verified: %v", took.Round(time.Millisecond))

	var info StorageProfileDataMessage
	if st := h.do("GET", recPath(ev)+"/storage/info", key1, nil, &info); st != 200 || info.Provider != provider ||
		info.ApplicationID != "app1" || info.URL == "" {
		t.Fatalf("storage/info: %d %+v", st, info)
	}
	t.Logf("storage/info: %+v", info)

	var msg RecordingDataMessage
	if st := h.do("GET", recPath(ev), key1, nil, &msg); st != 200 || len(msg.Streams) != 1 || len(msg.Streams[0].Tracks) != 1 {
		t.Fatalf("recording: %d %+v", st, msg)
	}
	tr := msg.Streams[0].Tracks[0]
	o := tr.Storage.ObjectStorage
	if o == nil || o.Error != nil || o.Location == "" || o.Size == "" || o.Uploaded == "" || tr.URL == "" {
		t.Fatalf("track: objectStorage %+v, url %q", o, tr.URL)
	}
	if !strings.HasPrefix(o.Location, strings.TrimSuffix(info.URL, "/")+"/rec/") {
		t.Errorf("track location %s is not under the profile's %s/rec/", o.Location, info.URL)
	}
	size, err := strconv.ParseInt(o.Size, 10, 64)
	if err != nil {
		t.Fatalf("track size %q: %v", o.Size, err)
	}
	checkSignedURL(t, srv, h, tr.URL)
	track := getSigned(t, tr.URL, "")
	if int64(len(track)) != size {
		t.Errorf("track: %d bytes through the signed URL, objectStorage says %d", len(track), size)
	}
	checkTone(t, "track "+path.Base(o.Location), track, d)
	checkRange(t, tr.URL, track)
	checkTampered(t, srv, tr.URL)

	var comp RecordingDataMessage
	if st := h.do("GET", "/api/compositions/sconv", key1, nil, &comp); st != 200 || comp.Composition == nil ||
		len(comp.Composition.Outputs) != 1 || comp.Composition.Outputs[0].URL == "" {
		t.Fatalf("composition: %d %+v", st, comp.Composition)
	}
	out := comp.Composition.Outputs[0]
	if !strings.HasPrefix(out.Location, strings.TrimSuffix(info.URL, "/")+"/rec/") || !strings.HasSuffix(out.Location, "/mix.wav") {
		t.Errorf("mix location %s", out.Location)
	}
	checkSignedURL(t, srv, h, out.URL)
	mix := getSigned(t, out.URL, "")
	if want, _ := strconv.ParseInt(out.Size, 10, 64); want != 0 && int64(len(mix)) != want {
		t.Errorf("mix: %d bytes through the signed URL, the composition says %v", len(mix), out.Size)
	}
	checkTone(t, "mix.wav", mix, d)
	checkRange(t, out.URL, mix)
	checkTampered(t, srv, out.URL)
	if m := comp.Composition.Manifest; m == nil || m.URL == "" {
		t.Errorf("manifest: %+v", m)
	} else if body := getSigned(t, m.URL, ""); !bytes.Contains(body, []byte(`"sconv"`)) {
		t.Errorf("manifest through its signed URL: %.200s", body)
	}

	// Verify: all five pass on app1; the wrong credential of "bad" fails
	// the bucket check with the provider's own advice.
	var good, bad storage.VerifyResult
	if st := h.do("POST", "/api/storageproviders/app1/verify", key1, nil, &good); st != 200 || !good.OK() {
		t.Errorf("verify app1: %d %+v", st, good)
	}
	if srv.wrong != nil {
		if st := h.do("POST", "/api/storageproviders/bad/verify", key1, nil, &bad); st != 200 || bad.Bucket.Passed ||
			!strings.Contains(bad.Bucket.Message, "credentials rejected by ") || !strings.Contains(bad.Bucket.Message, "check the "+srv.credentialHint) {
			t.Errorf("verify bad: %d: bucket %+v, want credentials rejected, check the %s", st, bad.Bucket, srv.credentialHint)
		}
		t.Logf("verify with a wrong credential: %s", bad.Bucket.Message)
	}

	h.stop() // flush every log line of the service
	for what, text := range map[string]string{"API responses": api.buf.String(), "logs": logs.String()} {
		if text == "" {
			t.Errorf("no %s captured", what)
		}
		for _, s := range srv.secrets {
			if strings.Contains(text, s) {
				i := strings.Index(text, s)
				t.Errorf("%s contain a secret (%.12s…): …%s…", what, s, text[max(0, i-200):i])
			}
		}
	}
	if !t.Failed() {
		t.Logf("%d bytes of API responses, %d bytes of logs: no secret", len(api.buf.String()), len(logs.String()))
	}
}

// checkSignedURL checks that u is the provider's native signed URL, or the
// recorder's attachment URL for SFTP.
func checkSignedURL(t *testing.T, srv storageServer, h *harness, u string) {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	if pu.Query().Get(srv.signature) == "" {
		t.Errorf("signed URL %s has no %s", pu.Redacted(), srv.signature)
	}
	if isAttachment := strings.HasPrefix(u, h.url+"/api/recordings/attachment/"); isAttachment == srv.native {
		t.Errorf("signed URL %s: native=%v but recorder attachment URL=%v", pu.Scheme+"://"+pu.Host+pu.Path, srv.native, isAttachment)
	}
}

// getSigned GETs a signed URL with plain net/http (a Range header if rng is
// not empty) and returns the body of a 200 or 206.
func getSigned(t *testing.T, u, rng string) []byte {
	t.Helper()
	code, body := getStatus(t, u, rng)
	if code != http.StatusOK && code != http.StatusPartialContent {
		t.Fatalf("GET %s (Range %q): %d %.300s", redactURL(u), rng, code, body)
	}
	return body
}

func getStatus(t *testing.T, u, rng string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	client := &http.Client{Timeout: 20 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// checkRange reads the WAV header and a span in the middle through Range
// requests and compares them with the whole object.
func checkRange(t *testing.T, u string, whole []byte) {
	t.Helper()
	mid := len(whole) / 2
	for _, r := range []struct{ from, to int }{{0, 43}, {mid, mid + 999}} {
		code, got := getStatus(t, u, fmt.Sprintf("bytes=%d-%d", r.from, r.to))
		if code != http.StatusPartialContent || !bytes.Equal(got, whole[r.from:r.to+1]) {
			t.Errorf("GET bytes=%d-%d: %d, %d bytes (equal %v), want 206 with %d bytes", r.from, r.to, code, len(got),
				bytes.Equal(got, whole[r.from:min(r.to+1, len(whole))]), r.to-r.from+1)
		}
	}
}

// checkTampered checks that the URL with one character of its signature
// changed (to another hex and base64 digit) is refused.
func checkTampered(t *testing.T, srv storageServer, u string) {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := pu.Query()
	sig := []byte(q.Get(srv.signature))
	if len(sig) == 0 {
		return // checkSignedURL said so
	}
	if i := len(sig) / 2; sig[i] == '0' {
		sig[i] = '1'
	} else {
		sig[i] = '0'
	}
	q.Set(srv.signature, string(sig))
	pu.RawQuery = q.Encode()
	if code, body := getStatus(t, pu.String(), ""); code != http.StatusForbidden && code != http.StatusUnauthorized && code != http.StatusBadRequest {
		t.Errorf("tampered signed URL: %d (%d bytes), want 400, 401 or 403", code, len(body))
	}
}

// checkTone decodes a WAV file (PCM or µ-law) and checks that it lasts
// about d and that the 440 Hz tone is there over its middle, and nothing at
// 1 kHz.
func checkTone(t *testing.T, name string, wav []byte, d time.Duration) {
	t.Helper()
	hdr, err := wavwriter.ParseHeader(wav)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	data := wav[hdr.DataOffset:]
	var pcm []int16
	switch hdr.Format {
	case wavwriter.PCM:
		pcm = make([]int16, len(data)/2)
		for i := range pcm {
			pcm[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
		}
	case wavwriter.MuLaw:
		pcm = make([]int16, len(data))
		for i, b := range data {
			pcm[i] = g711.DecodeMuLaw(b)
		}
	default:
		t.Fatalf("%s: WAV format %v", name, hdr.Format)
	}
	rate := hdr.SampleRate
	secs := float64(len(pcm)) / float64(rate)
	if secs < 0.75*d.Seconds() || secs > 1.25*d.Seconds()+1 {
		t.Errorf("%s: %.2f s of audio for a %v recording", name, secs, d)
	}
	span := pcm[len(pcm)/5 : len(pcm)*4/5]
	tone, other := mediatest.Goertzel(span, rate, 440), mediatest.Goertzel(span, rate, 1000)
	if tone < 2000 || other > 200 {
		t.Errorf("%s: 440 Hz amplitude %.0f (want > 2000), 1000 Hz %.0f (want < 200)", name, tone, other)
	}
	t.Logf("%s: %s %d Hz, %.2f s, 440 Hz amplitude %.0f", name, hdr.Format, rate, secs, tone)
}

// redactURL drops a URL's query (its signature) for messages.
func redactURL(u string) string {
	base, _, _ := strings.Cut(u, "?")
	return base
}
