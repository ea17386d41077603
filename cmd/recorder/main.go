// Command recorder is the WebRTC recording engine: conference platforms start
// and stop recordings over HTTP, the recorder receives every participant's
// stream, writes each track to its own file, mixes all audio into one WAV and
// uploads everything to the application's storage.
//
//	recorder serve   [--config FILE]            run the service
//	recorder demo    [--config FILE]            record a synthetic three-party conference end to end
//	recorder verify  --application APP [--json] check an application's storage profile
//	recorder sign    [--application APP] [--ttl D] URL-or-object-key
//	recorder mix     [-o OUT.wav] [--rate 8000] MANIFEST.json|DIR
//	recorder version
//
// Client subcommands, against a running recorder (--server, key in $RECORDER_API_KEY):
//
//	recorder ls [--state S] [--conversation C] [--participant U] [--from T] [--to T] [--all] [--json]
//	recorder get CONV/RECORDER/INSTANCE [--json]
//	recorder download [-o DIR] CONV/RECORDER/INSTANCE
//	recorder tail [--since ID] [--count N] [--json]
//	recorder start --application A --conference C --conversation V [--video] [--metadata k=v]
//	recorder stop|pause|resume CONV/RECORDER/INSTANCE
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/rtcrec/recorder/api"
	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/config/configfile"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: recorder <command> [flags]

commands:
  serve    run the recorder service (config optional: --config FILE, default recorder.yaml if present)
  demo     record a synthetic three-party conference end to end and print where every file went
  verify   --application APP [--json]: check an application's storage profile (exit 0 only if all checks pass)
  sign     [--application APP] [--ttl 1h] URL-or-object-key: print a signed URL for an object
  token    --conference C --user U [--types MIC,CAM] [--ttl 10m] [--organization O]: print a WHIP publish token
  mix      [-o OUT.wav] [--rate 8000] MANIFEST.json|DIR: rebuild the mix from the per-track files
  compose  [-o OUT.mp4] [--layout grid|speaker|single] [--user ID] [--size 1280x720] [--fps 15] [--nice 10]
           MANIFEST.json|DIR: write composite.mp4, one video of the whole conference (ffmpeg)
  version  print the version

client commands (against a running recorder: --server URL, API key in $RECORDER_API_KEY; --json for scripts):
  ls       list recordings: --state, --conversation, --conference, --participant, --from, --to, --limit, --all
  get      CONV/RECORDER/INSTANCE: a recording, its files and their upload status
  download [-o DIR] CONV/RECORDER/INSTANCE: every file, resumable, SHA-256 checked against the manifest
  tail     [--since ID] [--count N]: follow the event stream
  start    --application A --conference C --conversation V [--video] [--metadata k=v]
  stop, pause, resume  CONV/RECORDER/INSTANCE
exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 key refused, 5 conflict, 6 server unavailable, 7 checksum mismatch
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	var err error
	switch cmd {
	case "serve":
		err = serve(args, stderr)
	case "demo":
		err = demo(args, stdout, stderr)
	case "verify":
		var ok bool
		ok, err = verify(args, stdout, stderr)
		if err == nil && !ok {
			return 1
		}
	case "sign":
		err = sign(args, stdout, stderr)
	case "mix":
		err = mix(args, stdout, stderr)
	case "compose":
		err = compose(args, stdout, stderr)
	case "token":
		err = token(args, stdout, stderr)
	case "ls", "get", "download", "tail", "start", "stop", "pause", "resume":
		return runRemote(cmd, args, stdout, stderr)
	case "version", "--version", "-v":
		printVersion(stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "recorder: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 2
		}
		fmt.Fprintln(stderr, "recorder:", err)
		return 1
	}
	return 0
}

// applyRuntime sets Go's garbage collector as the runtime block asks (unset:
// GOGC and GOMEMLIMIT from the environment, or gcPercent
// config.DefaultGCPercent and no memory limit).
func applyRuntime(r config.RuntimeConfig, log *slog.Logger) {
	if r.GCPercent == 0 && os.Getenv("GOGC") == "" {
		debug.SetGCPercent(config.DefaultGCPercent)
	}
	if r.GCPercent != 0 {
		debug.SetGCPercent(r.GCPercent)
	}
	if r.MemoryLimitMB > 0 {
		debug.SetMemoryLimit(r.MemoryLimitMB << 20)
	}
	if r.GCPercent != 0 || r.MemoryLimitMB > 0 {
		log.Info("Go runtime: garbage collector set by the configuration", "gcPercent", r.GCPercent, "memoryLimitMB", r.MemoryLimitMB)
	}
}

// loadConfig loads --config, or recorder.yaml when present, or the defaults.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		if _, err := os.Stat("recorder.yaml"); err != nil {
			return config.Default(), nil
		}
		path = "recorder.yaml"
	}
	return configfile.Load(path)
}

func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	o := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

// serve runs the service. The first SIGINT/SIGTERM finishes the running
// recordings and their uploads, then exits; a second one exits at once.
func serve(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (default recorder.yaml if present)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	log := newLogger(stderr, *logFormat, slog.LevelInfo)
	slog.SetDefault(log)
	applyRuntime(cfg.Runtime, log)
	svc, err := api.NewService(context.Background(), cfg, log)
	if err != nil {
		return err
	}
	if svc.GeneratedKey != "" {
		fmt.Fprintf(stderr, "\nA new API key was generated and stored in %s/api-key. It is shown only this once:\n\n    %s\n\n",
			cfg.DataDir, svc.GeneratedKey)
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	serveErr := make(chan error, 1)
	go func() { serveErr <- svc.Serve() }()
	select {
	case err := <-serveErr:
		return err
	case sig := <-sigs:
		log.Info("signal received: finishing running recordings and uploads; signal again to exit at once",
			"signal", sig.String(), "active", svc.Manager.ActiveCount())
	}
	// The drain (recorder/drain.go): policy stop|wait, then uploads, within
	// shutdown.deadline (wait) plus shutdown.timeout; the rest is resumed at
	// the next start.
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Shutdown.Budget())
	defer cancel()
	go func() {
		sig := <-sigs
		log.Warn("second signal: exiting now; unfinished recordings are recovered at the next start", "signal", sig.String())
		cancel()
		os.Exit(1)
	}()
	if err := svc.Shutdown(ctx); err != nil {
		return err
	}
	log.Info("recorder stopped")
	return nil
}

func printVersion(w io.Writer) {
	fmt.Fprintf(w, "recorder %s\n", version)
	if bi, ok := debug.ReadBuildInfo(); ok {
		fmt.Fprintf(w, "  %s\n", bi.GoVersion)
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/pion/webrtc/v4", "github.com/rtcrec/recorder/internal/opus", "modernc.org/sqlite":
				fmt.Fprintf(w, "  %s %s\n", d.Path, d.Version)
			}
		}
	}
}

// durationFlag parses a duration flag value.
func durationFlag(fs *flag.FlagSet, name string, def time.Duration, usage string) *time.Duration {
	return fs.Duration(name, def, usage)
}
