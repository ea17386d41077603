package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/media/wavwriter"
	"github.com/rtcrec/recorder/recorder/conference/whip"
)

// browserPage publishes the fake microphone to the WHIP endpoint and reports
// each step to /report.
const browserPage = `<!doctype html><html><body><script>
const report = (s) => fetch('/report', {method: 'POST', body: s});
(async () => {
  try {
    const stream = await navigator.mediaDevices.getUserMedia({audio: {
      echoCancellation: false, noiseSuppression: false, autoGainControl: false}});
    const pc = new RTCPeerConnection();
    pc.addTransceiver(stream.getAudioTracks()[0], {direction: 'sendonly'});
    pc.oniceconnectionstatechange = () => report('ice ' + pc.iceConnectionState);
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((ok) => {
      if (pc.iceGatheringState === 'complete') return ok();
      pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && ok();
    });
    const resp = await fetch(WHIP, {method: 'POST', body: pc.localDescription.sdp,
      headers: {'Content-Type': 'application/sdp', 'Authorization': 'Bearer ' + KEY}});
    if (resp.status !== 201) return report('whip ' + resp.status + ' ' + await resp.text());
    report('location ' + resp.headers.get('Location'));
    await pc.setRemoteDescription({type: 'answer', sdp: await resp.text()});
  } catch (e) { report('error ' + e); }
})();
</script></body></html>`

// TestBrowser_PublishesOverWHIP: headless Chromium publishes a fake
// microphone playing a 440 Hz tone through a WHIP page; the recording holds it.
// Direct: the same with webrtc.directAudio, the UDP mux decrypting the
// browser's audio itself (the recorder the DTLS server): every packet of the
// recording handed over by the mux.
func TestBrowser_PublishesOverWHIP(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	t.Run("pion", func(t *testing.T) {
		cfg := testConfig(t.TempDir())
		off := false
		cfg.WebRTC.DirectAudio = &off
		testBrowserPublishes(t, cfg)
	})
	t.Run("direct", func(t *testing.T) { // webrtc.directAudio's default
		cfg := testConfig(t.TempDir())
		cfg.WebRTC.UDPMux = "127.0.0.1:0"
		testBrowserPublishes(t, cfg)
	})
}

func testBrowserPublishes(t *testing.T, cfg *config.Config) {
	chromium := testenv.LookPath(t, "chromium")
	h := startServiceConfig(t, cfg, nil)
	dir := t.TempDir()

	// The fake microphone: 30 s of 440 Hz at 48 kHz (Chromium loops it).
	tone := filepath.Join(dir, "tone.wav")
	w, err := wavwriter.New(tone, wavwriter.WithSampleRate(48000), wavwriter.WithChannels(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFrame(mediatest.Sine(440, 48000, 30*48000, 12000)); err != nil {
		t.Fatal(err)
	}
	w.Close()

	// The page publishes with a publish token, never the API key (issue 12):
	// the page's backend (here, the test) mints it.
	tok := mint(t, h, key1, PublishTokenRequest{ConferenceID: "browser", UserID: "chromium", StreamTypes: []string{"MIC"}})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := openChromiumPage(t, chromium, browserPage, h.url+"/whip/browser?userId=chromium&type=MIC", tok.Token,
		"--use-file-for-fake-audio-capture="+tone)

	connected := false
	for !connected {
		select {
		case r := <-c.reports:
			t.Logf("page: %s", r)
			if strings.HasPrefix(r, "error") || strings.HasPrefix(r, "whip") || r == "ice failed" {
				t.Fatalf("page: %s", r)
			}
			connected = r == "ice connected" || r == "ice completed"
		case <-c.exited:
			t.Fatalf("chromium exited:\n%s", c.out())
		case <-ctx.Done():
			t.Fatalf("the page did not connect:\n%s", c.out())
		}
	}

	ev, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: "browser", ConversationID: "browser"})
	if st != 200 || ev.State != "ACTIVE" {
		t.Fatalf("start: %d %+v", st, ev)
	}
	direct0 := whip.DirectPackets()
	time.Sleep(4 * time.Second)
	var stopped RecordingDataEvent
	if st := h.do("POST", recPath(ev)+"/stop", key1, nil, &stopped); st != 200 || stopped.State != "STOPPED" {
		t.Fatalf("stop: %d %+v", st, stopped)
	}
	direct := whip.DirectPackets() - direct0
	t.Logf("%d packets handed over by the UDP mux itself in the 4 s recorded", direct)
	if cfg.WebRTC.DirectAudioOn() && direct < 150 {
		t.Errorf("the UDP mux handed over %d of the browser's packets in 4 s (50 a second), want 150 or more", direct)
	}
	var comp RecordingDataMessage
	h.do("GET", "/api/compositions/browser", key1, nil, &comp)
	if len(comp.Streams) != 1 || comp.Streams[0].UserID != "chromium" || len(comp.Streams[0].Tracks) != 1 {
		t.Fatalf("streams: %+v", comp.Streams)
	}
	tr := comp.Streams[0].Tracks[0]
	codec, secs := probe(t, fetch(t, tr.URL), "browser-track")
	t.Logf("browser track: %s, %.2f s", codec, secs)
	if codec != "opus" && codec != "pcm_mulaw" {
		t.Errorf("browser track codec %s", codec)
	}
	wav := fetch(t, comp.Composition.Outputs[0].URL)
	pcm := wavPCM(t, wav)
	if len(pcm) < 3*8000 {
		t.Fatalf("mix is %d samples", len(pcm))
	}
	body := pcm[8000 : len(pcm)-4000]
	on, off := mediatest.Goertzel(body, 8000, 440), mediatest.Goertzel(body, 8000, 1000)
	t.Logf("mix: 440 Hz amplitude %.0f, 1000 Hz %.0f", on, off)
	if on < 2000 || off > on/10 {
		t.Errorf("the browser's 440 Hz tone is not in the mix: amplitude %.0f (1000 Hz: %.0f)", on, off)
	}
}

// chromiumPage is headless Chromium on a test page that publishes over WHIP.
type chromiumPage struct {
	reports <-chan string   // what the page POSTs to /report, in order (a full channel drops)
	exited  <-chan struct{} // closed when Chromium exits
	out     func() string   // Chromium's output so far
}

// openChromiumPage serves page on loopback, its script given WHIP (the
// endpoint's URL) and KEY (the bearer token), and opens it in headless
// Chromium with fake media devices and flags. Chromium runs in a process
// group of its own, killed with every child when the test ends.
func openChromiumPage(t *testing.T, chromium, page, whip, key string, flags ...string) *chromiumPage {
	t.Helper()
	reports := make(chan string, 64)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /page.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		q, _ := json.Marshal(whip)
		k, _ := json.Marshal(key)
		fmt.Fprint(w, strings.Replace(page, "<script>", "<script>const WHIP = "+string(q)+", KEY = "+string(k)+";", 1))
	})
	mux.HandleFunc("POST /report", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
		select {
		case reports <- string(b):
		default:
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + filepath.Join(t.TempDir(), "profile"), "--use-fake-ui-for-media-stream",
		"--use-fake-device-for-media-stream", "--allow-loopback-in-peer-connection", "--remote-debugging-port=0"},
		flags...)
	cmd := exec.Command(chromium, append(args, "http://"+ln.Addr().String()+"/page.html")...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its own group: stopped with every child
	cmd.Env = append(os.Environ(), testenv.ChromiumEnv...)
	var out strings.Builder
	var outMu sync.Mutex
	cmd.Stdout = writerFunc(func(p []byte) { outMu.Lock(); out.Write(p); outMu.Unlock() })
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		outMu.Lock()
		fmt.Fprintf(&out, "[test] chromium exited: %v (%s)\n", err, cmd.ProcessState)
		outMu.Unlock()
		close(exited)
	}()
	t.Cleanup(func() {
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-exited
	})
	return &chromiumPage{reports: reports, exited: exited, out: func() string {
		outMu.Lock()
		defer outMu.Unlock()
		return out.String()
	}}
}

type writerFunc func(p []byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }
