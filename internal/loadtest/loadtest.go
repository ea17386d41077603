// Package loadtest measures what a recorded stream costs: it starts a
// receiver (the real recorder binary, a naive Pion receiver, Janus), pinned to
// one CPU when asked, publishes N real Opus speech streams to it over WebRTC
// (10 per conference), records them, measures the receiver's CPU and RSS from
// /proc over a steady window, reads its loss counters, checks the files it
// wrote, and prints one table with every receiver measured in the same run.
//
// `make bench-load` runs it through cmd/recorder-load; BENCHMARKS.md holds the
// results and the exact commands.
package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/recorder/conference/whip"
)

// The receivers Run can measure.
const (
	SystemRecorder      = "recorder"       // the recorder with its default 8 kHz mix
	SystemRecorderNoMix = "recorder-nomix" // the recorder, recordings with mix "none" (tracks only)
	SystemPion          = "pion"           // a naive Pion receiver writing one Ogg per track
	SystemJanus         = "janus"          // Janus VideoRoom recording every stream (.mjr)
)

// Config is one load run.
type Config struct {
	Recorder      string        // path of the recorder binary (for the recorder systems)
	Janus         string        // path of the janus binary (for SystemJanus)
	FFmpeg        string        // path of ffmpeg (encodes the speech source)
	Systems       []string      // receivers to measure, in order
	Streams       []int         // the N of each step, in order
	PerConference int           // streams per conference; default 10
	Warmup        time.Duration // after every stream is recorded, before the window; default 5 s
	Window        time.Duration // the steady window CPU is measured over; default 30 s
	// PinCPU pins the receiver to this CPU (taskset); -1 leaves it free.
	// The caller pins itself (the publishers) elsewhere.
	PinCPU int
	// Interface is where publishers and receivers gather ICE: "lo", or the
	// veth of a network namespace ("v0", needed by Janus, which skips loopback).
	Interface string
	HostIP    string    // the address of Interface ("127.0.0.1" on lo)
	Dir       string    // scratch directory (data directories, the source)
	Log       io.Writer // progress; nil: discarded
	Extra     string    // extra YAML appended to the recorder's configuration
	// UDPMux gives the recorder one UDP socket for every connection on
	// HostIP only (webrtc.udpMux HOST:0) instead of its default (one on
	// each address ICE gathers on); Sockets gives it a socket per
	// connection (udpMux off).
	UDPMux  bool
	Sockets bool
	// DirectAudio sets the recorder's webrtc.directAudio (written either
	// way): its UDP mux decrypts the audio and hands it to the tracks
	// itself.
	DirectAudio bool
	Timeout     time.Duration // bound on one step; default Warmup+Window+3 min
	// ProfileDir, when set, receives the recorder's CPU profile over the
	// window and its heap profile at the window's end (from /debug/pprof/ on
	// its metricsListen address): <system>-<N>-cpu.pprof and -heap.pprof, and
	// its goroutines by stack, -goroutines.txt.
	// Profiling costs the recorder a little CPU: figures for the table come
	// from runs without it.
	ProfileDir string
	// Hog runs a busy competitor process (a shell loop that never sleeps)
	// on the receiver's CPU for the whole step: the receiver gets about half
	// of its core (the CPU-starvation case of issue 10). Needs PinCPU.
	Hog bool
	// Keep leaves each step's scratch directory (the receiver's log and
	// files) in Dir instead of removing it.
	Keep bool
}

// Result is one receiver at one N.
type Result struct {
	System         string
	Streams        int // publishers asked for
	Connected      int // publishers whose media the receiver took
	Refused        int // publishers refused for want of capacity (503 with Retry-After)
	Window         time.Duration
	CPU            time.Duration // receiver CPU over the window
	RSS            int64         // receiver RSS at the end of the window
	RSSIdle        int64         // before any stream
	Threads        int
	Goroutines     int // the recorder's goroutines at the end of the window (0: not known)
	GoroutinesIdle int // before any stream
	// The recorder's Go heap in use (live and not yet collected) and its
	// goroutine stacks at the end of the window and before any stream
	// (go_memstats_heap_inuse_bytes, go_memstats_stack_inuse_bytes; 0: not
	// known): what RSS per stream is made of.
	Heap, HeapIdle     int64
	Stacks, StacksIdle int64
	Lost               uint64 // packets the receiver counted lost
	Late               uint64 // packets dropped late (recorder)
	DecodeErrs         uint64 // packets the decoder rejected (recorder)
	Decoded            uint64 // packets really decoded (recorder: not skipped as inactive; 0 without a mix)
	Files              int    // track files written
	Missing            uint64 // packets missing from the files (holes and short files)
	// Where every packet went, from the recorder's counters after the stop
	// (recorder only): written to track files; never reached the recorder
	// (sequence gaps), of which the kernel dropped KernelDrops on its
	// sockets (receive buffer full; counted from before the recordings
	// started, so it includes drops before them); reached it but not the
	// file (duplicates, later than the budget); from after the stop.
	Written, NotReceived, KernelDrops, FileDrops, AfterStop uint64
	// MuxDrops: datagrams the recorder's UDP mux dropped for a full
	// connection queue (recorder_udp_mux_queue_drops_total).
	MuxDrops uint64
	// Direct: RTP packets the recorder's UDP mux handed to their tracks
	// itself (webrtc.directAudio; recorder_udp_mux_direct_packets_total).
	Direct   uint64
	MixShort time.Duration
	// Waited is how long the receiver's threads waited for a CPU while
	// runnable over the window (runWait; 0: not known).
	Waited      time.Duration
	Load1       float64 // the machine's 1-minute load average at the end of the window
	Err         string  // why the step failed, if it did
	FilesDetail string
	Dir         string // the step's scratch directory, when kept (Config.Keep): see Analyze
}

// CPUPerStreamSecond is the receiver's CPU per stream per second of media,
// in milliseconds.
func (r Result) CPUPerStreamSecond() float64 {
	if r.Connected == 0 || r.Window == 0 {
		return 0
	}
	return float64(r.CPU) / float64(time.Millisecond) / (float64(r.Connected) * r.Window.Seconds())
}

// Cores is the receiver's CPU over the window in cores (1: one core saturated).
func (r Result) Cores() float64 {
	if r.Window == 0 {
		return 0
	}
	return float64(r.CPU) / float64(r.Window)
}

// WaitedCores is how long the receiver waited for a CPU over the window, in
// cores: near Cores or above, it was short of CPU (its core shared).
func (r Result) WaitedCores() float64 {
	if r.Window == 0 {
		return 0
	}
	return float64(r.Waited) / float64(r.Window)
}

// RSSPerStream is the marginal resident memory per stream.
func (r Result) RSSPerStream() int64 {
	if r.Connected == 0 {
		return 0
	}
	return (r.RSS - r.RSSIdle) / int64(r.Connected)
}

// HeapPerStream and StacksPerStream are the marginal Go heap in use and
// goroutine stacks per stream (the recorder only; 0 where not known).
func (r Result) HeapPerStream() int64 { return perStream(r.Heap, r.HeapIdle, r.Connected) }

func (r Result) StacksPerStream() int64 { return perStream(r.Stacks, r.StacksIdle, r.Connected) }

func perStream(v, idle int64, n int) int64 {
	if n == 0 || v == 0 {
		return 0
	}
	return (v - idle) / int64(n)
}

// GoroutinesPerStream is the marginal number of goroutines per stream
// (the recorder only; 0 where not known).
func (r Result) GoroutinesPerStream() float64 {
	if r.Connected == 0 || r.Goroutines == 0 {
		return 0
	}
	return float64(r.Goroutines-r.GoroutinesIdle) / float64(r.Connected)
}

// profiler is a target that can profile itself (the recorder, through pprof).
type profiler interface {
	// profile writes a CPU profile of the next d to cpu, and then a heap
	// profile to heap.
	profile(ctx context.Context, d time.Duration, cpu, heap string) error
}

// target is one receiver under test.
type target interface {
	// start starts the receiver process and returns its PID once it serves.
	start(ctx context.Context) (pid int, err error)
	// publish connects stream n (0-based) of conference conf and hands its
	// track to snd once the receiver answered.
	publish(ctx context.Context, conf string, n int, snd *sender) (closer, error)
	// record starts recording the conferences (no-op where publishing records).
	record(ctx context.Context, confs []string) error
	// recorded returns how many streams are being recorded now.
	recorded(ctx context.Context) (int, error)
	// counters returns the receiver's own loss counters.
	counters(ctx context.Context) (counters, error)
	// finish stops the recordings and checks the files.
	finish(ctx context.Context, recorded time.Duration) (fileCheck, error)
	// stop ends the receiver process; idempotent.
	stop()
}

type closer interface {
	Close(ctx context.Context) error
}

type counters struct {
	lost, late, decodeErrs, decoded uint64
	goroutines                      int   // 0: not known
	heap, stacks                    int64 // bytes; 0: not known
	// Recorder only: the file side and the kernel's drops (see Result).
	written, notReceived, kernelDrops, fileDrops, afterStop, muxDrops, direct uint64
}

type fileCheck struct {
	files    int
	missing  uint64
	mixShort time.Duration
	detail   string
}

// Run measures every system at every N and returns the results (a failed
// step has Err set; Run goes on with the next). It stops at ctx's end.
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	cfg.defaults()
	logf := func(format string, a ...any) { fmt.Fprintf(cfg.Log, format+"\n", a...) }
	source, err := speechSource(cfg)
	if err != nil {
		return nil, err
	}
	logf("source: %d Opus packets of speech with pauses (%.1f s)", len(source), float64(len(source))*packetTime.Seconds())
	var results []Result
	for _, n := range cfg.Streams {
		for _, sys := range cfg.Systems {
			if ctx.Err() != nil {
				return results, ctx.Err()
			}
			logf("== %s, N=%d", sys, n)
			r := runStep(ctx, cfg, sys, n, source, logf)
			if r.Err != "" {
				logf("   failed: %s", r.Err)
			} else {
				logf("   %.2f ms CPU per stream-second (%.2f cores; waited %.2f cores for a CPU), %d KB RSS per stream, load %.1f; %s",
					r.CPUPerStreamSecond(), r.Cores(), r.WaitedCores(), r.RSSPerStream()>>10, r.Load1, r.FilesDetail)
				if r.Direct > 0 {
					logf("   %d RTP packets handed to their tracks by the UDP mux itself (direct audio), %d written", r.Direct, r.Written)
				}
				if r.Refused > 0 || r.MuxDrops > 0 {
					logf("   %d publishers refused (503 with Retry-After), %d datagrams dropped by the UDP mux's queues", r.Refused, r.MuxDrops)
				}
			}
			results = append(results, r)
		}
	}
	return results, nil
}

func (cfg *Config) defaults() {
	if cfg.PerConference <= 0 {
		cfg.PerConference = 10
	}
	if cfg.Warmup <= 0 {
		cfg.Warmup = 5 * time.Second
	}
	if cfg.Window <= 0 {
		cfg.Window = 30 * time.Second
	}
	if cfg.Interface == "" {
		cfg.Interface, cfg.HostIP = "lo", "127.0.0.1"
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = cfg.Warmup + cfg.Window + 3*time.Minute
	}
}

// speechSource encodes 60 s of speech-like audio with pauses as 32 kbit/s
// Opus in 20 ms packets with in-band FEC (a browser's defaults: useinbandfec,
// coded here for 1 % loss, so that speech packets carry LBRR frames as a
// browser's do and the recorder reads past them).
func speechSource(cfg Config) ([][]byte, error) {
	if cfg.FFmpeg == "" {
		return nil, errors.New("loadtest: ffmpeg is needed to encode the speech source")
	}
	packets, _, err := synth.OpusSpeechWith(cfg.FFmpeg, cfg.Dir, 60, 1, 32000, "-fec", "1", "-packet_loss", "1")
	if err != nil {
		return nil, err
	}
	if len(packets) == 0 {
		return nil, errors.New("loadtest: the speech source has no packets")
	}
	return packets, nil
}

func newTarget(cfg Config, sys, dir string) (target, error) {
	switch sys {
	case SystemRecorder, SystemRecorderNoMix:
		if cfg.Recorder == "" {
			return nil, errors.New("no recorder binary given")
		}
		return &recorderTarget{cfg: cfg, dir: dir, noMix: sys == SystemRecorderNoMix}, nil
	case SystemPion:
		return &pionTarget{cfg: cfg, dir: dir}, nil
	case SystemJanus:
		if cfg.Janus == "" {
			return nil, errors.New("no janus binary given")
		}
		return &janusTarget{cfg: cfg, dir: dir}, nil
	}
	return nil, fmt.Errorf("unknown system %q", sys)
}

func runStep(ctx context.Context, cfg Config, sys string, n int, source [][]byte, logf func(string, ...any)) (r Result) {
	r = Result{System: sys, Streams: n}
	if sys == SystemRecorder || sys == SystemRecorderNoMix {
		switch {
		case cfg.UDPMux:
			r.System += "+udpmux"
		case cfg.Sockets:
			r.System += "+sockets"
		}
		if cfg.DirectAudio {
			r.System += "+direct"
		}
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	dir, err := os.MkdirTemp(cfg.Dir, sys+"-")
	if err != nil {
		r.Err = err.Error()
		return r
	}
	if cfg.Keep {
		r.Dir = dir
		logf("   scratch directory kept: %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if cfg.Hog && cfg.PinCPU >= 0 {
		stopHog, err := startHog(cfg.PinCPU)
		if err != nil {
			r.Err = "hog: " + err.Error()
			return r
		}
		defer stopHog()
	}
	t, err := newTarget(cfg, sys, dir)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer t.stop()
	pid, err := t.start(ctx)
	if err != nil {
		r.Err = "start: " + err.Error()
		return r
	}
	time.Sleep(time.Second) // let the process settle before its idle RSS
	if r.RSSIdle, err = rss(pid); err != nil {
		r.Err = err.Error()
		return r
	}
	if cn, err := t.counters(ctx); err == nil {
		r.GoroutinesIdle, r.HeapIdle, r.StacksIdle = cn.goroutines, cn.heap, cn.stacks
	}

	snd := newSender(source)
	defer snd.close()
	var confs []string
	for i := 0; i < n; i += cfg.PerConference {
		confs = append(confs, fmt.Sprintf("conf%03d", i/cfg.PerConference))
	}
	pubs, published, refused, err := publishAll(ctx, t, n, cfg.PerConference, snd)
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		closeAll(cctx, pubs)
	}()
	r.Connected, r.Refused = len(pubs), refused
	if err != nil {
		logf("   publishing: %v (%d of %d connected, %d refused with 503 no_capacity)", err, len(pubs), n, refused)
	}
	// Past the recorder's capacity (capacity.streams), publishers are
	// refused: record the conferences that have a publisher.
	confs = slices.DeleteFunc(confs, func(c string) bool { return published[c] == 0 })
	recStart := time.Now()
	before, _ := t.counters(ctx) // the kernel's drops so far (before any recording)
	if err := t.record(ctx, confs); err != nil {
		r.Err = "record: " + err.Error()
		return r
	}
	// Every connected stream of a recorded conference recorded (a start
	// the recorder refused at capacity records none), then the warm-up.
	want := r.Connected
	if rt, ok := t.(*recorderTarget); ok && len(rt.refused) > 0 {
		for _, c := range rt.refused {
			want -= published[c]
		}
		logf("   %d recording starts refused (503 no_capacity): %v", len(rt.refused), rt.refused)
	}
	for {
		got, err := t.recorded(ctx)
		if err == nil && got >= want {
			break
		}
		select {
		case <-ctx.Done():
			r.Err = fmt.Sprintf("only %d of %d streams recorded: %v", got, r.Connected, err)
			return r
		case <-time.After(200 * time.Millisecond):
		}
	}
	sleep(ctx, cfg.Warmup)
	c0, err := cpuTime(pid)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	wait0 := runWait(pid)
	w0 := time.Now()
	var profiled chan error
	if p, ok := t.(profiler); ok && cfg.ProfileDir != "" {
		profiled = make(chan error, 1)
		base := filepath.Join(cfg.ProfileDir, fmt.Sprintf("%s-%d", r.System, n))
		go func() { profiled <- p.profile(ctx, cfg.Window-time.Second, base+"-cpu.pprof", base+"-heap.pprof") }()
	}
	sleep(ctx, cfg.Window)
	c1, err := cpuTime(pid)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	r.Window, r.CPU = time.Since(w0), c1-c0
	if wait1 := runWait(pid); wait1 > wait0 {
		r.Waited = wait1 - wait0
	}
	r.RSS, _ = rss(pid)
	r.Threads = threads(pid)
	r.Load1 = loadAvg()
	if ctx.Err() != nil {
		r.Err = ctx.Err().Error()
		return r
	}
	cn, err := t.counters(ctx)
	for try := 0; err != nil && try < 3 && ctx.Err() == nil; try++ {
		sleep(ctx, time.Second) // a starved receiver may answer late or fail a collector
		cn, err = t.counters(ctx)
	}
	if err != nil {
		r.Err = "counters: " + err.Error()
		return r
	}
	r.Lost, r.Late, r.DecodeErrs, r.Decoded, r.Goroutines = cn.lost, cn.late, cn.decodeErrs, cn.decoded, cn.goroutines
	r.Heap, r.Stacks = cn.heap, cn.stacks
	if profiled != nil {
		if err := <-profiled; err != nil {
			logf("   profile: %v", err)
		}
	}
	fc, err := t.finish(ctx, time.Since(recStart))
	if err != nil {
		r.Err = "files: " + err.Error()
	}
	r.Files, r.Missing, r.MixShort, r.FilesDetail = fc.files, fc.missing, fc.mixShort, fc.detail
	if cn, err := t.counters(ctx); err == nil { // after the stop: every packet accounted for
		r.Written, r.NotReceived, r.FileDrops, r.AfterStop, r.MuxDrops = cn.written, cn.notReceived, cn.fileDrops, cn.afterStop, cn.muxDrops
		r.Direct = cn.direct
		if cn.kernelDrops > before.kernelDrops {
			r.KernelDrops = cn.kernelDrops - before.kernelDrops
		}
	}
	return r
}

// publishAll connects n publishers, perConf per conference, 16 at a time; it
// returns those that connected, how many per conference, how many the
// receiver refused for want of capacity (503 with Retry-After), and the
// first error.
func publishAll(ctx context.Context, t target, n, perConf int, snd *sender) (pubs []closer, published map[string]int, refused int, first error) {
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, 16)
	)
	published = map[string]int{}
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			conf := fmt.Sprintf("conf%03d", i/perConf)
			p, err := t.publish(pctx, conf, i, snd)
			mu.Lock()
			defer mu.Unlock()
			if he := (*whip.HTTPError)(nil); errors.As(err, &he) && he.Status == http.StatusServiceUnavailable && he.RetryAfter != "" {
				refused++
			}
			if err != nil {
				if first == nil {
					first = fmt.Errorf("stream %d: %w", i, err)
				}
				return
			}
			pubs = append(pubs, p)
			published[conf]++
		}(i)
	}
	wg.Wait()
	return pubs, published, refused, first
}

func closeAll(ctx context.Context, pubs []closer) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, p := range pubs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_ = p.Close(ctx)
		}()
	}
	wg.Wait()
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func streamName(n int) string { return fmt.Sprintf("user%04d", n) }

// command returns the command that runs bin with args, under taskset when
// the receiver is pinned.
func command(cfg Config, bin string, args ...string) *exec.Cmd {
	if cfg.PinCPU >= 0 {
		return exec.Command("taskset", append([]string{"-c", fmt.Sprint(cfg.PinCPU), bin}, args...)...)
	}
	return exec.Command(bin, args...)
}

// Table writes results as a Markdown table, with each receiver's CPU as a
// ratio to Janus's and to the Pion baseline's at the same N where measured.
func Table(w io.Writer, results []Result) {
	ref := map[string]map[int]float64{}
	for _, r := range results {
		if r.Err == "" {
			if ref[r.System] == nil {
				ref[r.System] = map[int]float64{}
			}
			ref[r.System][r.Streams] = r.CPUPerStreamSecond()
		}
	}
	ratio := func(sys string, r Result) string {
		v, ok := ref[sys][r.Streams]
		if !ok || v == 0 || r.Err != "" {
			return "–"
		}
		return fmt.Sprintf("%.2f", r.CPUPerStreamSecond()/v)
	}
	sorted := append([]Result(nil), results...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Streams < sorted[j].Streams })
	fmt.Fprintln(w, "| receiver | N | connected | CPU ms/stream-s | cores | waited | ×Janus | ×Pion | RSS KB/stream | heap KB/stream | stacks KB/stream | threads | goroutines/stream | lost | late | decode err | decoded | files | missing | mix short | written | not received | kernel drops | file drops | after stop | load1 |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, r := range sorted {
		if r.Err != "" {
			fmt.Fprintf(w, "| %s | %d | %d | failed: %s |  |  |  |  |  |  |  |  |  |  |  |  |  |  |  |  |  |  |  |  |  | %.1f |\n", r.System, r.Streams, r.Connected, strings.ReplaceAll(r.Err, "|", "/"), r.Load1)
			continue
		}
		g := "–"
		if r.Goroutines > 0 {
			g = fmt.Sprintf("%.1f", r.GoroutinesPerStream())
		}
		fileSide := "– | – | – | – | –"
		if r.Written > 0 {
			fileSide = fmt.Sprintf("%d | %d | %d | %d | %d", r.Written, r.NotReceived, r.KernelDrops, r.FileDrops, r.AfterStop)
		}
		heap, stacks := "–", "–"
		if r.Heap > 0 {
			heap, stacks = strconv.FormatInt(r.HeapPerStream()>>10, 10), strconv.FormatInt(r.StacksPerStream()>>10, 10)
		}
		fmt.Fprintf(w, "| %s | %d | %d | %.2f | %.2f | %.2f | %s | %s | %d | %s | %s | %d | %s | %d | %d | %d | %d | %d | %d | %.2f s | %s | %.1f |\n",
			r.System, r.Streams, r.Connected, r.CPUPerStreamSecond(), r.Cores(), r.WaitedCores(), ratio(SystemJanus, r), ratio(SystemPion, r),
			r.RSSPerStream()>>10, heap, stacks, r.Threads, g, r.Lost, r.Late, r.DecodeErrs, r.Decoded, r.Files, r.Missing, r.MixShort.Seconds(), fileSide, r.Load1)
	}
}

// abs returns the absolute path of p, or p.
func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
