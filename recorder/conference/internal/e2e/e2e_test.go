// Package e2e_test records conferences through the recorder's API (Manager,
// Session, HTTP handlers) with the dial-out adapters, against a real Janus
// and a Pion WHEP endpoint, in the private network namespace of rtctest.
package e2e_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtcrec/recorder/api"
	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/internal/contract"
	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/media/wavwriter"
	"github.com/rtcrec/recorder/recorder"
	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/recorder/conference/internal/rtctest"
	"github.com/rtcrec/recorder/recorder/store"
	"github.com/rtcrec/recorder/storage"
)

func TestMain(m *testing.M) { os.Exit(rtctest.Main(m)) }

// contractCheck validates every exchange h serves against api/openapi.json
// when t ends, as the api tests do (internal/contract).
func contractCheck(t *testing.T, h http.Handler) http.Handler {
	doc, err := contractDoc()
	if err != nil {
		t.Fatal(err)
	}
	return contract.Handler(t, doc, h)
}

var contractDoc = sync.OnceValues(func() (*contract.Doc, error) { return contract.Load(api.OpenAPIDocument()) })

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
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.APIKeys = []config.APIKey{{Key: e2eKey, OrganizationID: "org1", Applications: []string{"*"}}}
	cfg.Applications = map[string]*config.Application{
		"app1": {Conference: config.ConferenceConfig{Kind: kind, URL: confURL, URLTemplate: confURL}},
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
		OpenBucket: api.OpenBucket(cfg, att),
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: contractCheck(t, api.New(api.Options{Manager: m, Keys: cfg.APIKeys, Attachments: att})), ReadHeaderTimeout: 5 * time.Second}
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

// startService runs the recorder as `recorder serve` does (api.NewService
// on a configuration) with application app1 on conf; its WebRTC peers gather
// on the namespace's interface.
func startService(t *testing.T, conf config.ConferenceConfig) *service {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.WebRTC.Interfaces = []string{rtctest.Interface}
	cfg.WebRTC.IncludeLoopback = true
	cfg.APIKeys = []config.APIKey{{Key: e2eKey, OrganizationID: "org1", Applications: []string{"*"}}}
	cfg.Applications = map[string]*config.Application{"app1": {Conference: conf}}
	svc, err := api.NewService(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc.HTTP.Handler = contractCheck(t, svc.HTTP.Handler)
	done := make(chan error, 1)
	go func() { done <- svc.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := svc.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &service{t: t, url: svc.URL}
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

// mix returns the samples of the mix of conversationID's latest recording,
// failing unless it is 8 kHz mono 16-bit WAV.
func (s *service) mix(conversationID string) []int16 {
	s.t.Helper()
	var comp api.RecordingDataMessage
	if st := s.do("GET", "/api/compositions/"+conversationID, nil, &comp); st != 200 || comp.Composition == nil || len(comp.Composition.Outputs) == 0 {
		s.t.Fatalf("composition: %d %+v", st, comp.Composition)
	}
	wav := fetch(s.t, comp.Composition.Outputs[0].URL)
	hdr, err := wavwriter.ParseHeader(wav)
	if err != nil {
		s.t.Fatal(err)
	}
	if hdr.SampleRate != 8000 || hdr.Channels != 1 || hdr.BitsPerSample != 16 {
		s.t.Fatalf("mix.wav is %+v, want 8000 Hz mono 16-bit", hdr)
	}
	pcm := make([]int16, (len(wav)-int(hdr.DataOffset))/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(wav[int(hdr.DataOffset)+2*i:]))
	}
	return pcm
}

// toneAmplitude returns the amplitude of freq in pcm (8 kHz) between from
// and to seconds.
func toneAmplitude(pcm []int16, freq, from, to float64) float64 {
	a, b := max(int(from*8000), 0), min(int(to*8000), len(pcm))
	if b <= a {
		return 0
	}
	return mediatest.Goertzel(pcm[a:b], 8000, freq)
}

// probeDuration returns the duration ffprobe reads in a media file.
func probeDuration(t *testing.T, data []byte) float64 {
	t.Helper()
	ffprobe := testenv.LookPath(t, "ffprobe")
	path := filepath.Join(t.TempDir(), "track")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	d, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		t.Fatalf("ffprobe: %q", out)
	}
	return d
}
