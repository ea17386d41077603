// Package janusrun starts a real Janus server (the Debian janus package, 1.x)
// with only the VideoRoom plugin and the HTTP transport on 127.0.0.1. It is
// the one place that writes Janus's configuration: the tests' server
// (recorder/conference/janus/janustest) and the load harness
// (internal/loadtest) both start Janus through it.
//
// Janus ignores loopback interfaces for ICE: Options.HostIP must be the
// address of another interface (a veth in a private network namespace), and
// the peers must gather there too.
package janusrun

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/rtcrec/recorder/recorder/conference/janus"
)

// ErrNotInstalled is returned by Start when the VideoRoom plugin or the HTTP
// transport cannot be found.
var ErrNotInstalled = errors.New("janusrun: janus's videoroom plugin or HTTP transport is not installed (Debian package janus)")

// Options are the settings of one Janus process.
type Options struct {
	Bin    string // the janus binary
	Dir    string // an empty directory: configuration, janus.log
	HostIP string // the one address ICE gathers on (Janus skips loopback)

	RTPPorts       string // rtp_port_range, e.g. "20000-40000"
	DebugLevel     int    // debug_level (3 warnings, 4 info)
	SessionTimeout int    // session_timeout, seconds
	StringIDs      bool   // VideoRoom string_ids: room and participant ids are strings

	// Command makes the process's command (for example under taskset); nil
	// is exec.Command.
	Command func(bin string, args ...string) *exec.Cmd
}

// Server is a running Janus process.
type Server struct {
	URL string // base of the HTTP API, http://127.0.0.1:PORT/janus
	Dir string // Options.Dir
	Log string // path of janus.log
	Cmd *exec.Cmd

	done chan struct{}
}

// Start writes Janus's configuration into o.Dir and starts the process
// (SIGKILLed if this process dies). It does not wait for Janus to answer:
// call Ready.
func Start(o Options) (*Server, error) {
	plugin, transport := findLib("plugins", "libjanus_videoroom.so"), findLib("transports", "libjanus_http.so")
	if plugin == "" || transport == "" {
		return nil, ErrNotInstalled
	}
	for _, d := range []string{"plugins", "transports", "events", "loggers"} {
		if err := os.Mkdir(filepath.Join(o.Dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	// Only what the folders hold is loaded: the VideoRoom and HTTP.
	if err := os.Symlink(plugin, filepath.Join(o.Dir, "plugins", filepath.Base(plugin))); err != nil {
		return nil, err
	}
	if err := os.Symlink(transport, filepath.Join(o.Dir, "transports", filepath.Base(transport))); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	for name, body := range configFiles(o, port) {
		if err := os.WriteFile(filepath.Join(o.Dir, name), []byte(body), 0o644); err != nil {
			return nil, err
		}
	}
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d/janus", port), Dir: o.Dir, Log: filepath.Join(o.Dir, "janus.log"), done: make(chan struct{})}
	logf, err := os.Create(s.Log)
	if err != nil {
		return nil, err
	}
	command := o.Command
	if command == nil {
		command = exec.Command
	}
	s.Cmd = command(o.Bin, "-C", filepath.Join(o.Dir, "janus.jcfg"), "-F", o.Dir, "--disable-colors")
	s.Cmd.Stdout, s.Cmd.Stderr = logf, logf
	s.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.Cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { _ = s.Cmd.Wait(); logf.Close(); close(s.done) }()
	return s, nil
}

// configFiles returns Janus's configuration files, by name.
func configFiles(o Options, port int) map[string]string {
	return map[string]string{
		"janus.jcfg": fmt.Sprintf(`general: {
	configs_folder = %[1]q
	plugins_folder = %[2]q
	transports_folder = %[3]q
	events_folder = %[4]q
	loggers_folder = %[5]q
	debug_level = %[7]d
	session_timeout = %[8]d
}
media: {
	rtp_port_range = %[9]q
}
nat: {
	nice_debug = false
	interface = %[6]q
	ice_enforce_list = %[6]q
}
plugins: {
}
transports: {
}
loggers: {
}
events: {
	broadcast = false
}
`, o.Dir, filepath.Join(o.Dir, "plugins"), filepath.Join(o.Dir, "transports"),
			filepath.Join(o.Dir, "events"), filepath.Join(o.Dir, "loggers"), o.HostIP,
			o.DebugLevel, o.SessionTimeout, o.RTPPorts),
		"janus.transport.http.jcfg": fmt.Sprintf(`general: {
	json = "plain"
	base_path = "/janus"
	http = true
	port = %d
	ip = "127.0.0.1"
	https = false
}
admin: {
	admin_http = false
	admin_https = false
}
`, port),
		"janus.plugin.videoroom.jcfg": fmt.Sprintf("general: {\n\tstring_ids = %t\n}\n", o.StringIDs),
	}
}

// Ready waits until Janus answers its info request. It fails when Janus
// exits first (with the end of its log) or when ctx ends.
func (s *Server) Ready(ctx context.Context) error {
	c := janus.NewClient(s.URL, nil, 2*time.Second)
	var last error
	for {
		_, err := c.Info(ctx)
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-s.done:
			return fmt.Errorf("janus exited at start: %s", s.LogTail(2000))
		case <-ctx.Done():
			return fmt.Errorf("janus did not answer at %s: %v", s.URL, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Done is closed when the process has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// Kill stops Janus with SIGKILL (by its PID; SIGCONT too, in case it was
// frozen) and waits for it to exit. It is idempotent.
func (s *Server) Kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.Cmd.Process.Signal(syscall.SIGKILL)
	_ = s.Cmd.Process.Signal(syscall.SIGCONT)
	<-s.done
}

// LogTail returns at most the last n bytes of janus.log.
func (s *Server) LogTail(n int) string {
	b, _ := os.ReadFile(s.Log)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// findLib returns the path of one of Janus's plugins or transports, or "".
func findLib(kind, name string) string {
	for _, dir := range []string{"/usr/lib/*/janus", "/usr/lib/janus"} {
		if m, _ := filepath.Glob(filepath.Join(dir, kind, name)); len(m) > 0 {
			return m[0]
		}
	}
	return ""
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
