package tooltest

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/rtcrec/recorder/internal/testenv"
)

// Playback is what headless Chromium reports after playing a file in a
// <video> element (which plays audio-only files too).
type Playback struct {
	Src      string  `json:"src"`
	Duration float64 `json:"duration"` // seconds, from the container
	Width    int     `json:"w"`        // videoWidth when last reported
	Height   int     `json:"h"`
	Time     float64 `json:"t"`      // currentTime when last reported
	Frames   int     `json:"frames"` // video frames decoded
	Ended    bool    `json:"ended"`
	Err      string  `json:"err"`
}

// playPage plays the file named in the URL fragment, muted, and logs what
// it sees every half second.
const playPage = `<html><body><script>
const el = document.createElement('video');
const r = {src: decodeURIComponent(location.hash.slice(1))};
el.muted = true;
el.onloadedmetadata = () => { r.duration = el.duration; r.w = el.videoWidth; r.h = el.videoHeight; el.play().catch(e => r.err = String(e)); };
el.onended = () => { r.ended = true; };
el.onerror = () => { r.err = 'error ' + (el.error && (el.error.code + ' ' + el.error.message)); };
el.src = 'file://' + r.src;
document.body.appendChild(el);
setInterval(() => {
  r.t = el.currentTime; r.w = el.videoWidth; r.h = el.videoHeight;
  r.frames = el.getVideoPlaybackQuality().totalVideoFrames;
  console.log('RESULT ' + JSON.stringify(r));
}, 500);
</script></body></html>`

var resultLine = regexp.MustCompile(`"RESULT (\{.*\})", source`)

// ChromiumPlay plays the file at path (absolute) in headless Chromium
// until it ends, fails or a minute passes, and returns what the page saw.
// It is skipped in -short mode (Chromium takes seconds of CPU to start).
func ChromiumPlay(t testing.TB, path string) Playback {
	t.Helper()
	if testing.Short() {
		t.Skip("Chromium playback is skipped in -short mode")
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "play.html")
	if err := os.WriteFile(page, []byte(playPage), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	sc, stop := Chromium(t, ctx, dir, "file://"+page+"#"+path, "--allow-file-access-from-files")
	defer stop()
	var last Playback
	for sc.Scan() {
		m := resultLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		if err := json.Unmarshal([]byte(m[1]), &last); err != nil {
			t.Fatalf("chromium: %v: %s", err, m[1])
		}
		if last.Ended || last.Err != "" {
			return last
		}
	}
	if ctx.Err() != nil {
		t.Errorf("chromium: no end of playback within %v (last report %+v)", Timeout, last)
	}
	return last
}

// Chromium starts headless Chromium on url with its profile in dir, in a
// process group of its own (its renderer, GPU and zygote processes share
// it, so that a test stops exactly what it started). It returns a scanner
// over Chromium's log (stderr; the page's console.log lines are in it) and
// stop, which kills the group and waits until it is gone: call it before
// dir is removed. flags are added to the common ones; ctx ending kills it.
func Chromium(t testing.TB, ctx context.Context, dir, url string, flags ...string) (*bufio.Scanner, func()) {
	t.Helper()
	bin := testenv.LookPath(t, "chromium")
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + filepath.Join(dir, "profile"), "--autoplay-policy=no-user-gesture-required",
		"--mute-audio", "--enable-logging=stderr", "--v=0"}, flags...)
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(), testenv.ChromiumEnv...)
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	return sc, func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		// Wait for the group to be gone before the profile is removed.
		for i := 0; i < 50 && syscall.Kill(-cmd.Process.Pid, 0) == nil; i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
}
