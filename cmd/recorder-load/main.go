// Command recorder-load measures what a recorded stream costs, side by side:
// the recorder (with its mix and without), a naive Pion receiver and Janus,
// each pinned to one CPU while the publishers run on the other, N real Opus
// speech streams over WebRTC, 10 per conference. It prints a Markdown table
// (see internal/loadtest and BENCHMARKS.md).
//
//	recorder-load -recorder bin/recorder -n 100,200 -pin
//
// Janus skips loopback interfaces for ICE, so with Janus among the systems
// (and as root) the command re-runs itself in a private network namespace
// with a veth; nothing leaves the machine.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rtcrec/recorder/internal/loadtest"
)

const (
	envNetNS  = "LOADTEST_NETNS"
	envPinned = "LOADTEST_PINNED"
	hostIP    = "127.0.1.1"
)

func main() {
	loadtest.RunChild()
	var (
		recorderBin = flag.String("recorder", "bin/recorder", "the recorder binary")
		janusBin    = flag.String("janus", "/usr/bin/janus", "the janus binary (Janus is left out when it is missing)")
		ffmpeg      = flag.String("ffmpeg", "ffmpeg", "ffmpeg, to encode the speech source")
		systems     = flag.String("systems", "recorder,recorder-nomix,pion,janus", "receivers to measure, in order")
		streams     = flag.String("n", "100", "numbers of streams, comma-separated")
		warmup      = flag.Duration("warmup", 5*time.Second, "wait after every stream is recorded, before the window")
		window      = flag.Duration("window", 30*time.Second, "the steady window CPU is measured over")
		perConf     = flag.Int("per-conference", 10, "streams per conference")
		pin         = flag.Bool("pin", false, "pin the receiver to CPU 0 and the publishers to CPU 1")
		extra       = flag.String("recorder-config", "", "YAML appended to the recorder's configuration")
		udpMux      = flag.Bool("udp-mux", false, "the recorder receives every connection on one UDP socket on the host address only (webrtc.udpMux: HOST:0; the default is one on each address ICE gathers on)")
		sockets     = flag.Bool("sockets", false, "the recorder receives each connection on its own UDP socket (webrtc.udpMux: off)")
		direct      = flag.Bool("direct-audio", true, "the recorder's UDP mux decrypts the audio and hands it to the tracks itself (webrtc.directAudio, the recorder's default; -direct-audio=false: through Pion's goroutines)")
		dir         = flag.String("dir", "", "scratch directory (default: a new temporary one)")
		profile     = flag.String("profile", "", "write the recorder's CPU profile over the window and its heap profile to this directory")
		hog         = flag.Bool("hog", false, "with -pin: a busy competitor process shares the receiver's CPU (it gets about half of it)")
		keep        = flag.Bool("keep", false, "keep each step's scratch directory (the receiver's log and files; implies a -dir that is kept); the recorder's are analysed after the table (see -analyze)")
		analyze     = flag.String("analyze", "", "only analyse a kept recorder step directory (the one holding recorder.log): per recording, the stop, each track's end against it by its sender's reports, the mix's length against the recording, the mix pipelines' counters")
	)
	flag.Parse()
	if *analyze != "" {
		if err := printAnalysis(*analyze); err != nil {
			fmt.Fprintln(os.Stderr, "recorder-load:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*recorderBin, *janusBin, *ffmpeg, *systems, *streams, *warmup, *window, *perConf, *pin, *udpMux, *sockets, *direct, *hog, *keep, *extra, *dir, *profile); err != nil {
		fmt.Fprintln(os.Stderr, "recorder-load:", err)
		os.Exit(1)
	}
}

func run(recorderBin, janusBin, ffmpeg, systems, streams string, warmup, window time.Duration, perConf int, pin, udpMux, sockets, direct, hog, keep bool, extra, dir, profile string) error {
	sys := strings.Split(systems, ",")
	wantJanus := false
	for i, s := range sys {
		if s == loadtest.SystemJanus {
			if _, err := os.Stat(janusBin); err != nil {
				fmt.Fprintf(os.Stderr, "recorder-load: %s is missing: Janus left out\n", janusBin)
				sys = append(sys[:i:i], sys[i+1:]...)
				break
			}
			wantJanus = true
		}
	}
	// Re-run in a network namespace (for Janus) and pinned (the publishers
	// on CPU 1), before any thread exists.
	needNS := wantJanus && os.Getenv(envNetNS) == ""
	needPin := pin && os.Getenv(envPinned) == ""
	if needNS || needPin {
		var args []string
		env := os.Environ()
		if needNS {
			if os.Geteuid() != 0 {
				return fmt.Errorf("Janus needs a private network namespace: run as root, or leave janus out of -systems")
			}
			args = append(args, "unshare", "--net", "--")
			env = append(env, envNetNS+"=1")
		}
		if needPin {
			args = append(args, "taskset", "-c", "1")
			env = append(env, envPinned+"=1")
		}
		self, err := os.Executable()
		if err != nil {
			return err
		}
		cmd := exec.Command(args[0], append(append(args[1:], self), os.Args[1:]...)...)
		cmd.Env = env
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Run(); err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				os.Exit(ee.ExitCode())
			}
			return err
		}
		return nil
	}
	cfg := loadtest.Config{
		Recorder: abs(recorderBin), Janus: janusBin, FFmpeg: ffmpeg, Systems: sys,
		PerConference: perConf, Warmup: warmup, Window: window, PinCPU: -1, Log: os.Stderr, Extra: extra, UDPMux: udpMux, Sockets: sockets, DirectAudio: direct,
		Hog: hog, Keep: keep,
	}
	if profile != "" {
		cfg.ProfileDir = abs(profile)
		if err := os.MkdirAll(cfg.ProfileDir, 0o755); err != nil {
			return err
		}
	}
	if udpMux && sockets {
		return fmt.Errorf("-udp-mux and -sockets: choose one")
	}
	if pin {
		cfg.PinCPU = 0
	}
	for _, s := range strings.Split(streams, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return fmt.Errorf("-n: %q is not a number of streams", s)
		}
		cfg.Streams = append(cfg.Streams, n)
	}
	if os.Getenv(envNetNS) == "1" {
		if err := setupNetNS(); err != nil {
			return err
		}
		cfg.Interface, cfg.HostIP = "v0", hostIP
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "recorder-load-")
		if err != nil {
			return err
		}
		if !keep {
			defer os.RemoveAll(d)
		}
		dir = d
	}
	cfg.Dir = dir
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	started := time.Now()
	results, err := loadtest.Run(ctx, cfg)
	fmt.Printf("\n%s UTC, %s, receiver pinned: %t, busy competitor on its CPU: %t, recorder UDP: %s, %d s window after %d s warm-up, %d streams per conference\n\n",
		started.UTC().Format("2006-01-02 15:04"), cpuModel(), pin, hog && pin, udpMode(udpMux, sockets), int(window.Seconds()), int(warmup.Seconds()), perConf)
	loadtest.Table(os.Stdout, results)
	for _, r := range results {
		if r.Dir != "" && strings.HasPrefix(r.System, loadtest.SystemRecorder) {
			fmt.Printf("\n%s, N=%d (%s):\n\n", r.System, r.Streams, r.Dir)
			if aerr := printAnalysis(r.Dir); aerr != nil {
				fmt.Fprintln(os.Stderr, "recorder-load:", aerr)
			}
		}
	}
	return err
}

// printAnalysis prints the analysis of a kept recorder step directory.
func printAnalysis(dir string) error {
	a, err := loadtest.Analyze(dir)
	if err != nil {
		return err
	}
	a.Print(os.Stdout)
	return nil
}

// udpMode names how the recorder receives UDP.
func udpMode(udpMux, sockets bool) string {
	switch {
	case udpMux:
		return "one socket on the host address (udpMux HOST:0)"
	case sockets:
		return "a socket per connection (udpMux off)"
	}
	return "the default (udpMux :0, a socket on each address)"
}

// setupNetNS brings up lo and a veth whose address the peers and Janus use.
func setupNetNS() error {
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "v0", "type", "veth", "peer", "name", "v1"},
		{"addr", "add", hostIP + "/32", "dev", "v0"},
		{"link", "set", "v1", "up"},
		{"link", "set", "v0", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}

func abs(p string) string {
	if a, err := os.Getwd(); err == nil && !strings.HasPrefix(p, "/") {
		return a + "/" + p
	}
	return p
}
