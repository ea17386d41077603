package loadtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtcrec/recorder/client"
	"github.com/rtcrec/recorder/recorder/conference/whip"
)

// apiKey is the key of the recorder the harness starts (a scratch instance).
const apiKey = "loadtest-key-0123456789"

// recorderTarget is the real recorder binary, serving the WHIP endpoint;
// every conference gets one recording started through the API.
type recorderTarget struct {
	cfg   Config
	dir   string
	noMix bool

	cmd     *exec.Cmd
	done    chan struct{}
	base    string
	debug   string // the metricsListen address: /metrics and /debug/pprof/
	http    *http.Client
	client  *client.Client // the API, with the harness's key
	api     *webrtc.API
	refused []string // conferences whose recording start was refused at capacity (503 no_capacity)

	mu   sync.Mutex
	recs []client.Ref
}

func (t *recorderTarget) start(ctx context.Context) (int, error) {
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	t.base = fmt.Sprintf("http://127.0.0.1:%d", port)
	mport, err := freePort()
	if err != nil {
		return 0, err
	}
	t.debug = fmt.Sprintf("http://127.0.0.1:%d", mport)
	t.http = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.client = &client.Client{BaseURL: t.base, Key: apiKey, HTTP: t.http}
	mux := ""
	if t.cfg.UDPMux {
		udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(t.cfg.HostIP)})
		if err != nil {
			return 0, err
		}
		mux = fmt.Sprintf("  udpMux: %s\n", udp.LocalAddr())
		udp.Close()
	} else if t.cfg.Sockets {
		mux = "  udpMux: \"off\"\n"
	}
	mux += fmt.Sprintf("  directAudio: %t\n", t.cfg.DirectAudio)
	conf := fmt.Sprintf(`listen: 127.0.0.1:%d
metricsListen: 127.0.0.1:%d
dataDir: %s
apiKeys:
  - key: %s
    organizationId: load
    applications: ["*"]
webrtc:
  interfaces: [%s]
  includeLoopback: true
%squotas:
  recordings: 100000
  whipSessions: 100000
%s`, port, mport, filepath.Join(t.dir, "data"), apiKey, t.cfg.Interface, mux, t.cfg.Extra)
	path := filepath.Join(t.dir, "recorder.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return 0, err
	}
	logf, err := os.Create(filepath.Join(t.dir, "recorder.log"))
	if err != nil {
		return 0, err
	}
	t.cmd = command(t.cfg, t.cfg.Recorder, "serve", "--config", path)
	t.cmd.Stdout, t.cmd.Stderr = logf, logf
	t.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := t.cmd.Start(); err != nil {
		logf.Close()
		return 0, err
	}
	t.done = make(chan struct{})
	go func() { _ = t.cmd.Wait(); logf.Close(); close(t.done) }()
	if t.api, err = publisherAPI(t.cfg.Interface); err != nil {
		return 0, err
	}
	for {
		resp, err := t.http.Get(t.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return t.cmd.Process.Pid, nil
			}
		}
		select {
		case <-t.done:
			return 0, fmt.Errorf("the recorder exited: %s", tail(filepath.Join(t.dir, "recorder.log")))
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (t *recorderTarget) publish(ctx context.Context, conf string, n int, snd *sender) (closer, error) {
	track, err := newOpusTrack(n)
	if err != nil {
		return nil, err
	}
	c := &whip.Client{API: t.api, HTTPClient: t.http, Token: apiKey}
	p, err := c.Publish(ctx, whip.Endpoint(t.base, conf, streamName(n), "MIC"), track)
	if err != nil {
		return nil, err
	}
	snd.add(track, n)
	if err := p.WaitConnected(ctx); err != nil {
		p.Close(context.Background())
		return nil, err
	}
	return p, nil
}

func (t *recorderTarget) record(ctx context.Context, confs []string) error {
	for _, conf := range confs {
		req := client.StartRequest{ApplicationID: "load", ConferenceID: conf, ConversationID: "conv-" + conf}
		if t.noMix {
			req.Mix = json.RawMessage(`"none"`)
		}
		ev, err := t.client.Start(ctx, req)
		if ce := (*client.Error)(nil); errors.As(err, &ce) && ce.Status == http.StatusServiceUnavailable && ce.Reason == "no_capacity" {
			t.refused = append(t.refused, conf) // at capacity: what runs keeps its quality
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", conf, err)
		}
		t.mu.Lock()
		t.recs = append(t.recs, client.Ref{ConversationID: ev.ConversationID, RecorderID: ev.RecorderID, InstanceID: ev.InstanceID})
		t.mu.Unlock()
	}
	return nil
}

func (t *recorderTarget) recorded(ctx context.Context) (int, error) {
	m, err := t.metrics(ctx)
	if err != nil {
		return 0, err
	}
	return int(m[`recorder_tracks{kind="audio"}`]), nil
}

func (t *recorderTarget) counters(ctx context.Context) (counters, error) {
	m, err := t.metrics(ctx)
	if err != nil {
		return counters{}, err
	}
	return counters{
		lost: uint64(m["recorder_rtp_packets_lost_total"]), late: uint64(m["recorder_rtp_packets_late_dropped_total"]),
		decodeErrs: uint64(m["recorder_decode_errors_total"]), decoded: uint64(m["recorder_audio_packets_decoded_total"]) - uint64(m["recorder_audio_packets_skipped_total"]),
		goroutines: int(m["go_goroutines"]),
		written:    uint64(m["recorder_track_packets_written_total"]), notReceived: uint64(m["recorder_track_packets_missing_total"]),
		kernelDrops: uint64(m["recorder_udp_receive_drops"]), muxDrops: uint64(m["recorder_udp_mux_queue_drops_total"]),
		direct:    uint64(m["recorder_udp_mux_direct_packets_total"]),
		fileDrops: uint64(m[`recorder_track_packets_dropped_total{reason="duplicate"}`] + m[`recorder_track_packets_dropped_total{reason="late"}`]),
		afterStop: uint64(m[`recorder_track_packets_dropped_total{reason="after_stop"}`]),
		heap:      int64(m["go_memstats_heap_inuse_bytes"]), stacks: int64(m["go_memstats_stack_inuse_bytes"]),
	}, nil
}

func (t *recorderTarget) profile(ctx context.Context, d time.Duration, cpu, heap string) error {
	secs := max(1, int(d/time.Second))
	if err := t.fetch(ctx, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), cpu); err != nil {
		return err
	}
	if err := t.fetch(ctx, "/debug/pprof/heap", heap); err != nil {
		return err
	}
	// Where the goroutines are (text: counts by stack).
	return t.fetch(ctx, "/debug/pprof/goroutine?debug=1", strings.TrimSuffix(heap, "-heap.pprof")+"-goroutines.txt")
}

// fetch writes what GET path answers on the metrics address to file.
func (t *recorderTarget) fetch(ctx context.Context, path, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.debug+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req) // no timeout: a CPU profile takes its seconds
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d", path, resp.StatusCode)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (t *recorderTarget) finish(ctx context.Context, recorded time.Duration) (fileCheck, error) {
	t.mu.Lock()
	recs := append([]client.Ref(nil), t.recs...)
	t.mu.Unlock()
	var errs []error
	// Each recording's own duration (the stops come one after another).
	durations := map[string]time.Duration{}
	for _, r := range recs {
		if _, err := t.client.Stop(ctx, r); err != nil {
			errs = append(errs, err)
			continue
		}
		msg, err := t.client.Recording(ctx, r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		a, err1 := time.Parse(time.RFC3339Nano, msg.Started)
		b, err2 := time.Parse(time.RFC3339Nano, msg.Stopped)
		if err1 != nil || err2 != nil {
			errs = append(errs, fmt.Errorf("%s: started %q, stopped %q", r.InstanceID, msg.Started, msg.Stopped))
			continue
		}
		durations[r.InstanceID] = b.Sub(a)
	}
	// ownDuration is the duration of the recording whose directory holds path.
	ownDuration := func(path string) time.Duration {
		for id, d := range durations {
			if strings.Contains(path, string(filepath.Separator)+id+string(filepath.Separator)) {
				return d
			}
		}
		return recorded
	}
	var fc fileCheck
	root := filepath.Join(t.dir, "data")
	var shortest time.Duration = -1
	var mixes int
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch {
		case strings.HasSuffix(path, ".ogg") && strings.Contains(path, string(filepath.Separator)+"tracks"+string(filepath.Separator)):
			audio, filler, dur, err := opusTrackCheck(path)
			if err != nil {
				return err
			}
			fc.files++
			fc.missing += uint64(filler)
			// A file shorter than the recording by more than a second lost
			// its end (or its start): count the packets it lacks.
			if short := ownDuration(path) - dur; short > time.Second {
				fc.missing += uint64(short / packetTime)
			}
			if shortest < 0 || dur < shortest {
				shortest = dur
			}
			_ = audio
		case filepath.Base(path) == "mix.wav":
			dur, level, err := wavCheck(path)
			if err != nil {
				return err
			}
			mixes++
			if short := ownDuration(path) - dur; short > fc.mixShort {
				fc.mixShort = short
			}
			if level < 30 {
				errs = append(errs, fmt.Errorf("%s is silent (RMS %.0f)", path, level))
			}
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	fc.detail = fmt.Sprintf("%d track files (shortest %.1f s), %d mixes, recorded %.1f s", fc.files, shortest.Seconds(), mixes, recorded.Seconds())
	if want := len(recs); !t.noMix && mixes != want {
		errs = append(errs, fmt.Errorf("%d mix.wav files for %d recordings", mixes, want))
	}
	if t.noMix && mixes != 0 {
		errs = append(errs, fmt.Errorf("%d mix.wav files for recordings with mix none", mixes))
	}
	return fc, errors.Join(errs...)
}

func (t *recorderTarget) stop() {
	if t.cmd == nil || t.cmd.Process == nil {
		return
	}
	select {
	case <-t.done:
		return
	default:
	}
	_ = t.cmd.Process.Signal(syscall.SIGINT)
	_ = t.cmd.Process.Signal(syscall.SIGINT) // the second: exit now
	select {
	case <-t.done:
	case <-time.After(15 * time.Second):
		_ = t.cmd.Process.Kill()
		<-t.done
	}
}

// metrics returns the recorder's Prometheus samples by name and labels as
// written ("name{labels}"); a family's samples are also summed under its name.
func (t *recorderTarget) metrics(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.debug+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := t.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %d", resp.StatusCode)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads the Prometheus text format.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	m := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		key := line[:i]
		m[key] = v
		if j := strings.IndexByte(key, '{'); j > 0 {
			m[key[:j]] += v
		}
	}
	return m, sc.Err()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the end of a log file, for an error message.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
