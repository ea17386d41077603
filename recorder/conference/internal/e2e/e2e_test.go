// Package e2e_test records conferences through the recorder's API (Manager,
// Session, HTTP handlers) with the dial-out adapters, against a real Janus
// and a Pion WHEP endpoint, in the private network namespace of rtctest.
package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rtcrec/recorder/api"
	"github.com/rtcrec/recorder/recorder"
	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/recorder/conference/internal/rtctest"
	"github.com/rtcrec/recorder/recorder/store"
	"github.com/rtcrec/recorder/storage"
)

func TestMain(m *testing.M) { os.Exit(rtctest.Main(m)) }

const e2eKey = "janus-e2e-key"

// service is the recorder's API and Manager wired, as `recorder serve` would,
// with this package's adapter for applications of kind janus.
type service struct {
	t   *testing.T
	url string
}

// startRecorder wires a Manager and the API over a with application app1 of
// the given conference kind and URL.
func startRecorder(t *testing.T, a conference.Adapter, kind, confURL string) *service {
	t.Helper()
	dir := t.TempDir()
	cfg := recorder.DefaultConfig()
	cfg.DataDir = dir
	cfg.APIKeys = []recorder.APIKey{{Key: e2eKey, OrganizationID: "org1", Applications: []string{"*"}}}
	cfg.Applications = map[string]*recorder.Application{
		"app1": {Conference: recorder.ConferenceConfig{Kind: kind, URL: confURL, URLTemplate: confURL}},
	}
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(dir, "recorder.db"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base, _ := url.Parse("http://" + l.Addr().String())
	att := &recorder.Attachments{Base: base, Signer: storage.NewURLSigner([]byte("e2e-signing-key-0123456789abcdef"))}
	m, err := recorder.NewManager(ctx, recorder.Options{
		Config: cfg, Store: st, RecorderID: "rec1",
		Adapters:   map[string]conference.Adapter{kind: a},
		OpenBucket: recorder.OpenBucket(dir, att),
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: api.New(api.Options{Manager: m, Keys: cfg.APIKeys, Attachments: att}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			t.Errorf("manager shutdown: %v", err)
		}
		_ = hs.Shutdown(ctx)
		_ = st.Close()
	})
	return &service{t: t, url: base.String()}
}

// do sends a JSON request with the API key and decodes the reply into out.
func (s *service) do(method, path string, body, out any) int {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, s.url+path, rd)
	req.Header.Set("Authorization", e2eKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			s.t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	if resp.StatusCode >= 300 {
		s.t.Logf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	return resp.StatusCode
}

func fetch(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", u, resp.StatusCode, err)
	}
	return b
}

func recPath(ev api.RecordingDataEvent) string {
	return "/api/recordings/" + ev.ConversationID + "/" + ev.RecorderID + "/" + ev.InstanceID
}
