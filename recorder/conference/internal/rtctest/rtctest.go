// Package rtctest holds what the conference adapters' tests share: a private
// network namespace for tests that talk WebRTC to a real media server, Pion
// peers confined to it, G.711 µ-law tone senders (media/g711) and a sink
// that decodes what arrived, to check it by content.
//
// A test package opts in with
//
//	func TestMain(m *testing.M) { os.Exit(rtctest.Main(m)) }
//
// Main re-executes the test binary inside `unshare --net` (root only), brings
// up lo and a veth pair whose end v0 holds 127.0.1.1 (Janus skips loopback
// interfaces for ICE but accepts v0), and runs the tests there, so nothing a
// test sends can leave the machine. Tests that need the namespace call NetNS.
package rtctest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/media/g711"
	"github.com/rtcrec/recorder/media/mediatest"
)

// envNetNS marks a test binary that runs inside its private namespace ("1"),
// or one that could not enter it (any other non-empty value: the reason).
const envNetNS = "RTCTEST_NETNS"

// HostIP is the address of v0 inside the namespace: media servers and Pion
// peers gather ICE candidates on it.
const HostIP = "127.0.1.1"

// Interface is the name of the namespace's ICE interface.
const Interface = "v0"

// Main runs the tests of m inside a private network namespace when it can
// (root, unshare and ip installed) and returns the exit code. Without one the
// tests run as they are and NetNS skips (fails under CI) the tests that need it.
func Main(m *testing.M) int { return MainFunc(m.Run) }

// MainFunc is Main for a TestMain that does more than m.Run: run (which
// calls m.Run) runs once, in the process that runs the tests (inside the
// namespace when there is one), never in the parent that re-executes.
func MainFunc(run func() int) int {
	switch v := os.Getenv(envNetNS); v {
	case "1":
		if err := setupNetNS(); err != nil {
			fmt.Fprintf(os.Stderr, "rtctest: setting up the network namespace: %v\n", err)
			return 2
		}
		return run()
	case "":
		reason := canUnshare()
		if fuzzing() {
			// Fuzz workers talk to their coordinator over inherited pipes.
			reason = "fuzzing runs outside the namespace"
		}
		if reason != "" {
			os.Setenv(envNetNS, reason)
			return run()
		}
		args := append([]string{"--net", "--", os.Args[0]}, os.Args[1:]...)
		cmd := exec.Command("unshare", args...)
		cmd.Env = append(os.Environ(), envNetNS+"=1")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		// The child dies with us: a timed-out `go test` kills this process.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Run(); err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				return ee.ExitCode()
			}
			fmt.Fprintf(os.Stderr, "rtctest: re-executing in a network namespace: %v\n", err)
			return 2
		}
		return 0
	default:
		return run()
	}
}

// fuzzing reports whether the binary runs fuzz targets (as coordinator or
// worker) rather than tests.
func fuzzing() bool {
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-test.fuzzworker") || (strings.HasPrefix(a, "-test.fuzz=") && a != "-test.fuzz=") {
			return true
		}
	}
	return false
}

func canUnshare() string {
	if os.Geteuid() != 0 {
		return "a private network namespace needs root"
	}
	for _, p := range []string{"unshare", "ip"} {
		if _, err := exec.LookPath(p); err != nil {
			return p + " is not installed (util-linux, iproute2)"
		}
	}
	return ""
}

func setupNetNS() error {
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "v0", "type", "veth", "peer", "name", "v1"},
		{"addr", "add", HostIP + "/32", "dev", "v0"},
		{"link", "set", "v1", "up"},
		{"link", "set", "v0", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// InNetNS reports whether the tests run inside the namespace Main made.
func InNetNS() bool { return os.Getenv(envNetNS) == "1" }

// NetNS skips the test (fails it under CI) unless it runs inside the namespace
// Main made.
func NetNS(t testing.TB) {
	t.Helper()
	if v := os.Getenv(envNetNS); v != "1" {
		if v == "" {
			v = "the test package's TestMain does not call rtctest.Main"
		}
		testenv.Missing(t, "no private network namespace: "+v)
	}
}

// SettingEngine returns Pion settings that gather host candidates over UDP4 on
// the namespace's v0 only (on lo outside the namespace), without mDNS.
func SettingEngine() webrtc.SettingEngine {
	var se webrtc.SettingEngine
	iface := "lo"
	if InNetNS() {
		iface = Interface
	}
	se.SetInterfaceFilter(func(name string) bool { return name == iface })
	se.SetIPFilter(func(ip net.IP) bool { return ip.To4() != nil })
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	return se
}

// API returns a Pion API with the default codecs and SettingEngine's settings.
func API(t testing.TB) *webrtc.API {
	t.Helper()
	api, err := NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// NewAPI is API for code without a testing.TB (helper processes).
func NewAPI() (*webrtc.API, error) {
	var me webrtc.MediaEngine
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(&me), webrtc.WithSettingEngine(SettingEngine())), nil
}

// ToneSender sends a steady sine tone as G.711 µ-law (PCMU, 8 kHz, 20 ms
// packets) on a local track until Stop.
type ToneSender struct {
	Track *webrtc.TrackLocalStaticSample
	Freq  float64

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewToneSender returns a PCMU track with the given ids that will carry a
// tone at freq Hz once Start is called.
func NewToneSender(freq float64, trackID, streamID string) (*ToneSender, error) {
	tr, err := webrtc.NewTrackLocalStaticSample(
		webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1}, trackID, streamID)
	if err != nil {
		return nil, err
	}
	return &ToneSender{Track: tr, Freq: freq}, nil
}

// Start begins sending, paced in real time. Stop ends it. A sender that
// falls behind (a starved goroutine on a loaded machine) catches up with a
// burst, so the stream always carries as much audio as time passed, as a
// real sender's would.
func (s *ToneSender) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		const frame, period = 160, 20 * time.Millisecond
		pcm := make([]int16, frame)
		buf := make([]byte, frame)
		start := time.Now()
		timer := time.NewTimer(0)
		defer timer.Stop()
		for sent := 0; ; {
			for due := int(time.Since(start)/period) + 1; sent < due; sent++ {
				mediatest.SineInto(pcm, s.Freq, 8000, sent*frame, 8000)
				for i, x := range pcm {
					buf[i] = g711.EncodeMuLaw(x)
				}
				// Errors before the track is bound are expected: drop and go on.
				_ = s.Track.WriteSample(media.Sample{Data: buf, Duration: period})
			}
			timer.Reset(time.Until(start.Add(time.Duration(sent) * period)))
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
	}()
}

// Stop ends the tone and waits for the sending goroutine. It is idempotent.
func (s *ToneSender) Stop() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}
