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
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rtcrec/recorder/client"
	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/recorder/conference/whip"
	"github.com/rtcrec/recorder/recorder/conference/whip/whiptest"
	"github.com/rtcrec/recorder/storage/s3store/s3test"
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
		chromedp.ExecPath(chromium), chromedp.Env(testenv.ChromiumEnv...), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(filepath.Join(dir, "profile")),
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
	time.Sleep(time.Second) // a second of pause, to be marked on the waveform
	do("resume", chromedp.Click(chromedp.CSS(sel+` button[data-action="resume"]`)),
		poll(row+` && !`+row+`.querySelector('.state').textContent.includes('paused')`))

	// Metadata, a chat message and a cobrowse event (seed 004's routes), and
	// a blackout of dana with the console's buttons.
	recAPI := "/api/recordings/" + ev.ConversationID + "/" + ev.RecorderID + "/" + ev.InstanceID
	if st := h.do("POST", recAPI+"/metadata", key1, MetadataUpdate{Metadata: map[string]string{"ticket": "T-42"}}, nil); st != 200 {
		t.Fatalf("metadata: %d", st)
	}
	chat := AddChatTranscriptCmd{ConversationID: ev.ConversationID, RecorderID: ev.RecorderID, InstanceID: ev.InstanceID,
		ChatTranscriptList: []ChatTranscriptEntry{{TimeStamp: time.Now().UTC().Format(time.RFC3339), Transcript: "hello from the console test",
			UserDisplayName: "Dana D", UserID: "dana"}}}
	if st := h.do("POST", "/api/recordings/chat/transcript/add", key1, chat, nil); st != 200 {
		t.Fatalf("chat: %d", st)
	}
	seq, stamp := int32(1), time.Now().UnixMilli()
	cobrowse := AddCobrowseEventCmd{ConversationID: ev.ConversationID, RecorderID: ev.RecorderID, InstanceID: ev.InstanceID,
		Event: &CobrowseEvent{Payload: `{"type":"click"}`, SequenceID: &seq, SessionID: "cb-session-1", Timestamp: &stamp}}
	if st := h.do("POST", "/api/recordings/cobrowse/event", key1, cobrowse, nil); st != 200 {
		t.Fatalf("cobrowse: %d", st)
	}
	time.Sleep(500 * time.Millisecond) // tone between the pause and the blackout
	do("blackout", chromedp.Click(chromedp.CSS(sel+` button[data-action="blackout-start"]`)),
		poll(row+` && `+row+`.querySelector('.state').textContent.includes('blacked out: dana')`))
	time.Sleep(time.Second) // a second of blackout
	do("end blackout", chromedp.Click(chromedp.CSS(sel+` button[data-action="blackout-stop"]`)),
		poll(row+` && !`+row+`.querySelector('.state').textContent.includes('blacked out')`))
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
	var man struct {
		Mix    struct{ Duration float64 }
		Tracks []struct {
			File     string
			Duration float64
		}
		Pauses    []span
		Blackouts []span
	}
	for _, f := range files.Files {
		if f.Kind == "manifest" {
			resp, err := http.Get(f.URL)
			if err != nil {
				t.Fatal(err)
			}
			json.NewDecoder(resp.Body).Decode(&man)
			resp.Body.Close()
		}
	}
	mixDuration := man.Mix.Duration
	if mixDuration == 0 || len(man.Tracks) != 1 || len(man.Pauses) != 1 || len(man.Blackouts) != 1 {
		t.Fatalf("manifest: mix %.3f s, %d tracks, pauses %+v, blackouts %+v (want a mix, a track, a pause, a blackout)",
			mixDuration, len(man.Tracks), man.Pauses, man.Blackouts)
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

	// The waveform marks the pause and the blackout where the manifest puts
	// them in the mix: the pause lasted the second the test paused.
	var marked []span
	spans, _ := eval(`document.querySelector('#waveform').getAttribute('data-spans')`).(string)
	if err := json.Unmarshal([]byte(spans), &marked); err != nil {
		t.Fatalf("waveform spans %q: %v", spans, err)
	}
	wantSpans := []span{{Kind: "pause", Start: *man.Pauses[0].MixStart, End: *man.Pauses[0].MixEnd},
		{Kind: "blackout", Start: man.Blackouts[0].Start, End: man.Blackouts[0].End, UserID: "dana"}}
	if len(marked) != 2 {
		t.Errorf("waveform marks %+v, want %+v", marked, wantSpans)
	} else {
		for i, w := range wantSpans {
			if m := marked[i]; m.Kind != w.Kind || m.UserID != w.UserID || math.Abs(m.Start-w.Start) > 0.001 || math.Abs(m.End-w.End) > 0.001 {
				t.Errorf("waveform mark %+v, want %+v", m, w)
			}
			if d := marked[i].End - marked[i].Start; d < 0.9 || d > 2.5 {
				t.Errorf("the %s marked lasts %.3f s: the test held it 1 s", w.Kind, d)
			}
		}
	}

	// dana's track plays on its own, with its length from the manifest.
	do("track plays",
		poll(`document.querySelectorAll('#rec-tracks audio').length === 1 && isFinite(document.querySelector('#rec-tracks audio').duration)`))
	trackDuration, _ := eval(`document.querySelector('#rec-tracks audio').duration`).(float64)
	if math.Abs(trackDuration-man.Tracks[0].Duration) > 0.3 {
		t.Errorf("track audio.duration %.3f s, the manifest's %.3f s", trackDuration, man.Tracks[0].Duration)
	}
	eval(`document.querySelector('#mix').pause(), document.querySelector('#rec-tracks audio').play().then(() => true)`)
	do("track playing", poll(`document.querySelector('#rec-tracks audio').currentTime > 0.3`))

	// Metadata, chat, cobrowse, and every file uploaded.
	do("metadata, chat, cobrowse",
		poll(`document.querySelector('#rec-metadata').textContent.includes('"ticket": "T-42"')`),
		poll(`[...document.querySelectorAll('#rec-chat .chat-entry')].some((e) => e.textContent.includes('Dana D: hello from the console test'))`),
		poll(`document.querySelector('#rec-cobrowse [data-session="cb-session-1"]') !== null && document.querySelector('#rec-cobrowse').textContent.includes('1 events')`))
	if n, _ := eval(`[...document.querySelectorAll('#rec-files tbody tr')].filter((r) => r.cells[4].textContent.startsWith('uploaded')).length`).(float64); int(n) != len(files.Files) || n < 5 {
		t.Errorf("%v files shown uploaded, the recording has %d (track, mix, manifest, chat, cobrowse)", n, len(files.Files))
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

	// Search, paged: a second recording of the conference, then the search
	// page with one row per page finds both, newest first.
	ev2, err := c.Start(ctx, client.StartRequest{ApplicationID: "app1", ConferenceID: "cconf", ConversationID: "cconv2"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stop(ctx, ev2.Ref()); err != nil {
		t.Fatal(err)
	}
	do("search, first page",
		chromedp.Navigate(h.url+"/console/#/search"),
		chromedp.WaitVisible(chromedp.CSS("#search-form")),
		chromedp.SendKeys(chromedp.CSS(`#search-form input[name="conferenceId"]`), "cconf"),
		chromedp.SetValue(chromedp.CSS(`#search-form input[name="limit"]`), "1"),
		chromedp.Click(chromedp.CSS(`#search-form button`)),
		poll(`document.querySelectorAll('#search-table tbody tr').length === 1 && !document.querySelector('#search-more').hidden`))
	if got := eval(`document.querySelector('#search-table tbody tr').getAttribute('data-instance')`); got != ev2.InstanceID {
		t.Errorf("the first page shows %v, want the newest recording %s", got, ev2.InstanceID)
	}
	do("search, second page", chromedp.Click(chromedp.CSS("#search-more")),
		poll(`document.querySelectorAll('#search-table tbody tr').length === 2`))
	if got := eval(`document.querySelectorAll('#search-table tbody tr')[1].getAttribute('data-instance')`); got != ev.InstanceID {
		t.Errorf("the second page shows %v, want %s", got, ev.InstanceID)
	}
	eval(`(f => { f.conferenceId.value = ''; f.participant.value = 'dana'; f.limit.value = '20'; return true })(document.querySelector('#search-form'))`)
	do("search, by participant", chromedp.Click(chromedp.CSS(`#search-form button`)),
		poll(`document.querySelector('#search-table tbody tr[data-instance="`+ev.InstanceID+`"]') !== null && document.querySelector('#search-more').hidden`))
	eval(`document.querySelector('#search-form').participant.value = 'nobody'`)
	do("search, nobody", chromedp.Click(chromedp.CSS(`#search-form button`)),
		poll(`document.querySelectorAll('#search-table tbody tr').length === 0`))
	// By conversation, and by time range: from the second's start (to the
	// second) finds the second recording only, to it the first only. The
	// form's datetime-local fields are in the browser's time zone.
	eval(`(f => { f.participant.value = ''; f.conversationId.value = 'cconv'; return true })(document.querySelector('#search-form'))`)
	do("search, by conversation", chromedp.Click(chromedp.CSS(`#search-form button`)),
		poll(`(rows => rows.length === 1 && rows[0].getAttribute('data-instance') === '`+ev.InstanceID+`')([...document.querySelectorAll('#search-table tbody tr')])`))
	rec2, err := c.Recording(ctx, ev2.Ref())
	if err != nil {
		t.Fatal(err)
	}
	started2, err := time.Parse(time.RFC3339Nano, rec2.Started)
	if err != nil || !started2.After(started.Add(2*time.Second)) {
		t.Fatalf("the second recording started at %q (%v), the first at %v", rec2.Started, err, started)
	}
	local := `(ms => new Date(ms - new Date(ms).getTimezoneOffset() * 60000).toISOString().slice(0, 19))(` + strconv.FormatInt(started2.Truncate(time.Second).UnixMilli(), 10) + `)`
	for _, q := range []struct{ field, want string }{{"from", ev2.InstanceID}, {"to", ev.InstanceID}} {
		eval(`(f => { f.conversationId.value = ''; f.conferenceId.value = 'cconf'; f.from.value = ''; f.to.value = ''; f.` + q.field + `.value = ` + local + `; return true })(document.querySelector('#search-form'))`)
		do("search, "+q.field, chromedp.Click(chromedp.CSS(`#search-form button`)),
			poll(`(rows => rows.length === 1 && rows[0].getAttribute('data-instance') === '`+q.want+`')([...document.querySelectorAll('#search-table tbody tr')])`))
	}
}

// span is a pause or blackout: in the manifest (start and end on the
// recording's timeline, mixStart and mixEnd in the mix) and as the
// console's waveform marks it (data-spans, in seconds of the mix).
type span struct {
	Kind     string   `json:"kind"`
	Start    float64  `json:"start"`
	End      float64  `json:"end"`
	UserID   string   `json:"userId"`
	MixStart *float64 `json:"mixStart"`
	MixEnd   *float64 `json:"mixEnd"`
}

// TestConsole_UploadErrors: a recording whose storage refuses its uploads
// (S3 with a wrong secret; versitygw checks SigV4) shows on its console page
// the recording's error, each file's upload error, and no player for a
// track that was never uploaded.
func TestConsole_UploadErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	chromium := testenv.LookPath(t, "chromium")
	g := s3test.Start(t)
	bucket := g.NewBucket(t.Context(), t)
	cfg := testConfig(t.TempDir())
	cfg.Applications = map[string]*config.Application{"bad": {Conference: config.ConferenceConfig{Kind: "whip"},
		Storage: &config.StorageProfile{Provider: config.ProviderS3, Bucket: bucket, Prefix: "rec", Region: s3test.Region,
			Endpoint: g.Endpoint, PathStyle: true, AccessKeyID: s3test.Access, SecretAccessKey: "wrong-secret-0123456789abcdef"}}}
	h := startServiceConfig(t, cfg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, err := whiptest.Join(ctx, h.whipClient(key1), whip.Endpoint(h.url, "uconf", "erin", "MIC"), "erin", 440)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Leave(context.Background())
	c := client.New(h.url, key1)
	ev, err := c.Start(ctx, client.StartRequest{ApplicationID: "bad", ConferenceID: "uconf", ConversationID: "uconv"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() bool { // erin's track is recorded
		r, err := c.Recording(ctx, ev.Ref())
		return err == nil && len(r.Streams) == 1 && len(r.Streams[0].Tracks) == 1
	})
	time.Sleep(time.Second)
	if _, err := c.Stop(ctx, ev.Ref()); err != nil {
		t.Fatal(err)
	}
	var files *client.Files
	waitFor(t, 60*time.Second, func() bool { // every file's upload has failed at least once
		files, err = c.Files(ctx, ev.Ref())
		if err != nil || len(files.Files) < 3 {
			return false
		}
		for _, f := range files.Files {
			if f.Error == nil {
				return false
			}
		}
		return true
	})

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.Env(testenv.ChromiumEnv...), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(filepath.Join(t.TempDir(), "profile")),
		chromedp.Flag("disable-quic", true), chromedp.WindowSize(1100, 900))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(h.url + "/console/"),
		chromedp.WaitVisible(chromedp.CSS("#login-key")),
		chromedp.SendKeys(chromedp.CSS("#login-key"), key1),
		chromedp.Click(chromedp.CSS("#login-form button")),
		chromedp.WaitVisible(chromedp.CSS("#live-view")),
		chromedp.Navigate(h.url + "/console/#/rec/" + ev.ConversationID + "/" + ev.RecorderID + "/" + ev.InstanceID),
		// Every file's row shows its upload error, in the error style.
		poll(`(rows => rows.length === ` + strconv.Itoa(len(files.Files)) + ` && rows.every((r) => r.cells[4].classList.contains('error') &&
			r.cells[4].textContent.startsWith('failed: the storage profile refused or failed the upload')))([...document.querySelectorAll('#rec-files tbody tr')])`),
		// The recording's own error, and no player for the track.
		poll(`document.querySelector('#rec-error') !== null && document.querySelector('#rec-error').textContent.startsWith('upload_failed')`),
		poll(`document.querySelectorAll('#rec-tracks audio').length === 0 && document.querySelector('#rec-tracks').textContent.includes('not uploaded yet')`),
	}
	if err := chromedp.Do(bctx, steps...); err != nil {
		page, _ := chromedp.Run(bctx, chromedp.OuterHTML(chromedp.CSS("main")))
		t.Fatalf("%v\n%s", err, page)
	}
}
