package api

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rtcrec/recorder/client"
	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/recorder/conference/whip"
	"github.com/rtcrec/recorder/recorder/conference/whip/whiptest"
)

// TestConsole_SelfContained: the console's files load nothing from
// elsewhere and are served with a policy that forbids it.
func TestConsole_SelfContained(t *testing.T) {
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|@import|url\(\s*["']?(https?:)?//`)
	err := fs.WalkDir(consoleFiles, "console", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := consoleFiles.ReadFile(p)
		if m := external.Find(b); m != nil {
			t.Errorf("%s loads something from elsewhere: %q", p, m)
		}
		if strings.Contains(string(b), "localStorage") || strings.Contains(string(b), "document.cookie") {
			t.Errorf("%s keeps something beyond session storage", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h := startService(t, t.TempDir())
	resp, err := http.Get(h.url + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `<script src="app.js">`) {
		t.Fatalf("/console/: %d\n%s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	resp, err = http.Get(h.url + "/console")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/console/" {
		t.Errorf("/console led to %s", resp.Request.URL.Path)
	}
}

// poll waits until the JavaScript expression is true.
func poll(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(60*time.Second), chromedp.WithPollingInterval(100*time.Millisecond))
}

// TestConsole_Chromium drives the console in headless Chromium: a wrong key
// is refused; with the right one a recording started over the API appears
// live (through the event stream) with its participant, is paused and
// resumed and stopped with the console's buttons, and its mix plays on the
// recording page with audio.duration equal to the mix's duration in the
// manifest and close to the recording's length. It saves a screenshot; with
// RECORDER_UPDATE_SCREENSHOT=1 it replaces docs/console.png.
func TestConsole_Chromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	chromium := testenv.LookPath(t, "chromium")
	h := startService(t, t.TempDir())
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"), chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1100, 900))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	// The first run allocates the browser for bctx's lifetime.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	fail := func(what string, err error) {
		t.Helper()
		page, _ := chromedp.Run(bctx, chromedp.OuterHTML(chromedp.CSS("main")))
		t.Fatalf("%s: %v\n%s", what, err, page)
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		begin := time.Now()
		defer func() { t.Logf("%s: %v", what, time.Since(begin).Round(time.Millisecond)) }()
		sctx, cancel := context.WithTimeout(bctx, 90*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			fail(what, err)
		}
	}
	eval := func(expr string) any {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[any](expr, chromedp.EvalAwaitPromise))
		if err != nil {
			fail(expr, err)
		}
		return v
	}

	// A wrong key is refused and not kept.
	do("wrong key",
		chromedp.Navigate(h.url+"/console/"),
		chromedp.WaitVisible(chromedp.CSS("#login-key")),
		chromedp.SendKeys(chromedp.CSS("#login-key"), "not-a-key"),
		chromedp.Click(chromedp.CSS("#login-form button")),
		poll(`document.querySelector('#login-error').textContent.includes('Refused')`))
	if eval(`sessionStorage.getItem('recorder.apiKey') === null && document.querySelector('#live-view').hidden`) != true {
		t.Errorf("after a wrong key the console kept it or showed the live view")
	}

	// The right key: the live view, connected to the event stream.
	do("log in",
		chromedp.SendKeys(chromedp.CSS("#login-key"), key1),
		chromedp.Click(chromedp.CSS("#login-form button")),
		chromedp.WaitVisible(chromedp.CSS("#live-view")),
		poll(`document.querySelector('#live-status').textContent === 'live'`))
	if eval(`sessionStorage.getItem('recorder.apiKey') === '`+key1+`' && localStorage.length === 0 && document.cookie === ''`) != true {
		t.Errorf("the key is not in session storage alone")
	}

	// A participant and a recording started over the API (the Go client).
	p, err := whiptest.Join(ctx, h.whipClient(key1), whip.Endpoint(h.url, "cconf", "dana", "MIC"), "dana", 440)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Leave(context.Background())
	c := client.New(h.url, key1)
	ev, err := c.Start(ctx, client.StartRequest{ApplicationID: "app1", ConferenceID: "cconf", ConversationID: "cconv"})
	if err != nil {
		t.Fatal(err)
	}
	sel := `tr[data-instance="` + ev.InstanceID + `"]`
	row := `document.querySelector('` + sel + `')`
	do("live recording appears",
		poll(row+` && `+row+`.querySelector('.participants').textContent.includes('dana') && `+row+`.querySelector('.state').textContent.startsWith('ACTIVE')`))

	do("pause", chromedp.Click(chromedp.CSS(sel+` button[data-action="pause"]`)),
		poll(row+` && `+row+`.querySelector('.state').textContent.includes('paused')`))
	if st, err := c.State(ctx, ev.Ref()); err != nil || !st.Paused {
		t.Errorf("after the console's pause: %+v %v", st, err)
	}
	time.Sleep(time.Second)
	do("resume", chromedp.Click(chromedp.CSS(sel+` button[data-action="resume"]`)),
		poll(row+` && !`+row+`.querySelector('.state').textContent.includes('paused')`))
	time.Sleep(time.Second)
	do("stop", chromedp.Click(chromedp.CSS(sel+` button[data-action="stop"]`)), poll(row+` === null`))
	st, err := c.State(ctx, ev.Ref())
	if err != nil || st.State != "STOPPED" {
		t.Fatalf("after the console's stop: %+v %v", st, err)
	}
	rec, err := c.Recording(ctx, ev.Ref())
	if err != nil {
		t.Fatal(err)
	}
	started, _ := time.Parse(time.RFC3339Nano, rec.Started)
	stopped, _ := time.Parse(time.RFC3339Nano, rec.Stopped)
	files, err := c.Files(ctx, ev.Ref())
	if err != nil {
		t.Fatal(err)
	}
	var mixDuration float64
	for _, f := range files.Files {
		if f.Kind == "manifest" {
			resp, err := http.Get(f.URL)
			if err != nil {
				t.Fatal(err)
			}
			var m struct{ Mix struct{ Duration float64 } }
			json.NewDecoder(resp.Body).Decode(&m)
			resp.Body.Close()
			mixDuration = m.Mix.Duration
		}
	}
	if mixDuration == 0 {
		t.Fatalf("no mix duration in the manifest: %+v", files)
	}

	// The recording page: the mix plays; its duration is the recording's.
	do("recording page",
		chromedp.Navigate(h.url+"/console/#/rec/"+ev.ConversationID+"/"+ev.RecorderID+"/"+ev.InstanceID),
		poll(`document.querySelector('#mix').src !== '' && document.querySelector('#mix').readyState >= 1 && isFinite(document.querySelector('#mix').duration)`))
	duration, _ := eval(`document.querySelector('#mix').duration`).(float64)
	eval(`document.querySelector('#mix').play().then(() => true)`)
	do("playing", poll(`document.querySelector('#mix').currentTime > 0.5`),
		poll(`document.querySelector('#waveform').hasAttribute('data-drawn')`),
		poll(`document.querySelectorAll('#rec-files tbody tr').length >= 3 && document.querySelector('#rec-manifest').textContent.includes('"tracks"')`))
	if math.Abs(duration-mixDuration) > 0.05 {
		t.Errorf("audio.duration %.3f s, the manifest's mix %.3f s", duration, mixDuration)
	}
	if wall := stopped.Sub(started).Seconds(); math.Abs(duration-wall) > 0.5 {
		t.Errorf("audio.duration %.3f s, the recording ran %.3f s", duration, wall)
	}
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		fail("screenshot", err)
	}
	if len(shot) < 1000 || string(shot[1:4]) != "PNG" {
		t.Fatalf("screenshot: %d bytes", len(shot))
	}
	os.WriteFile(filepath.Join(dir, "console.png"), shot, 0o644)
	if os.Getenv("RECORDER_UPDATE_SCREENSHOT") == "1" {
		if err := os.WriteFile(filepath.Join("..", "docs", "console.png"), shot, 0o644); err != nil {
			t.Error(err)
		}
	}
}
