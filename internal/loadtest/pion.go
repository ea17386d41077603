package loadtest

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
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"

	"github.com/rtcrec/recorder/recorder/conference/whip"
)

// envPion makes this program run as the naive Pion receiver: "addr|dir|iface".
const envPion = "LOADTEST_PION_RECEIVER"

// RunChild runs this process as one of the harness's helper processes when
// it was started as one (the naive Pion receiver) and exits; otherwise it
// returns at once. Call it first in main (and TestMain).
func RunChild() {
	v := os.Getenv(envPion)
	if v == "" {
		return
	}
	f := strings.Split(v, "|")
	if len(f) != 3 {
		fmt.Fprintf(os.Stderr, "loadtest: bad %s=%q\n", envPion, v)
		os.Exit(2)
	}
	if err := pionReceiver(f[0], f[1], f[2]); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest: pion receiver:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// pionStats are the naive receiver's counters.
type pionStats struct {
	Tracks  int    `json:"tracks"`  // tracks that received a packet
	Packets uint64 `json:"packets"` // packets written
	Lost    uint64 `json:"lost"`    // sequence numbers skipped
}

// pionReceiver is the baseline: what a Go developer writes first with Pion's
// defaults. A WHIP endpoint on addr whose PeerConnections use
// RegisterDefaultInterceptors (NACK, RTCP reports, transport-wide congestion
// control feedback), one goroutine per track reading with ReadRTP (a packet
// allocated per read) into pion's oggwriter, one Ogg file per track in dir.
func pionReceiver(addr, dir, iface string) error {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		return err
	}
	var se webrtc.SettingEngine
	se.SetInterfaceFilter(func(name string) bool { return name == iface })
	se.SetIPFilter(func(ip net.IP) bool { return ip.To4() != nil })
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))

	var (
		mu      sync.Mutex
		pcs     = map[string]*webrtc.PeerConnection{}
		writers []*oggwriter.OggWriter
		tracks  atomic.Int64
		packets atomic.Uint64
		lost    atomic.Uint64
		wg      sync.WaitGroup
		nextID  int
	)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /whip/{conf}", func(w http.ResponseWriter, r *http.Request) {
		offer, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		pc, err := api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		mu.Lock()
		nextID++
		id := fmt.Sprint(nextID)
		pcs[id] = pc
		mu.Unlock()
		pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			ow, err := oggwriter.New(filepath.Join(dir, id+"-"+t.ID()+".ogg"), 48000, 2)
			if err != nil {
				return
			}
			mu.Lock()
			writers = append(writers, ow)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				first, last := true, uint16(0)
				for {
					p, _, err := t.ReadRTP()
					if err != nil {
						return
					}
					if first {
						tracks.Add(1)
					} else if d := p.SequenceNumber - last; d > 1 && d < 1000 {
						lost.Add(uint64(d - 1))
					}
					first, last = false, p.SequenceNumber
					if ow.WriteRTP(p) == nil {
						packets.Add(1)
					}
				}
			}()
		})
		if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(offer)}); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		answer, err := pc.CreateAnswer(nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		gathered := webrtc.GatheringCompletePromise(pc)
		if err := pc.SetLocalDescription(answer); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		<-gathered
		w.Header().Set("Location", "/whip/"+r.PathValue("conf")+"/"+id)
		w.Header().Set("Content-Type", "application/sdp")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, pc.LocalDescription().SDP)
	})
	mux.HandleFunc("DELETE /whip/{conf}/{id}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		pc := pcs[r.PathValue("id")]
		delete(pcs, r.PathValue("id"))
		mu.Unlock()
		if pc != nil {
			pc.Close()
		}
	})
	stats := func() pionStats {
		return pionStats{Tracks: int(tracks.Load()), Packets: packets.Load(), Lost: lost.Load()}
	}
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(stats()) })
	mux.HandleFunc("POST /close", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		all := pcs
		pcs = map[string]*webrtc.PeerConnection{}
		mu.Unlock()
		for _, pc := range all {
			pc.Close()
		}
		wg.Wait()
		mu.Lock()
		for _, ow := range writers {
			ow.Close()
		}
		writers = nil
		mu.Unlock()
		json.NewEncoder(w).Encode(stats())
	})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return http.Serve(l, mux) // until the harness kills the process
}

// pionTarget runs pionReceiver in a child process (this program again).
type pionTarget struct {
	cfg  Config
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	base string
	http *http.Client
	api  *webrtc.API
}

func (t *pionTarget) start(ctx context.Context) (int, error) {
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	t.base = fmt.Sprintf("http://127.0.0.1:%d", port)
	t.http = &http.Client{Timeout: 60 * time.Second}
	if t.api, err = publisherAPI(t.cfg.Interface); err != nil {
		return 0, err
	}
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	files := filepath.Join(t.dir, "tracks")
	if err := os.Mkdir(files, 0o755); err != nil {
		return 0, err
	}
	t.cmd = command(t.cfg, self, "-test.run=^$")
	t.cmd.Env = append(os.Environ(), fmt.Sprintf("%s=127.0.0.1:%d|%s|%s", envPion, port, files, t.cfg.Interface))
	t.cmd.Stderr = os.Stderr
	t.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := t.cmd.Start(); err != nil {
		return 0, err
	}
	t.done = make(chan struct{})
	go func() { _ = t.cmd.Wait(); close(t.done) }()
	for {
		if _, err := t.stats(ctx, http.MethodGet, "/stats"); err == nil {
			return t.cmd.Process.Pid, nil
		}
		select {
		case <-t.done:
			return 0, fmt.Errorf("the Pion receiver exited")
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (t *pionTarget) publish(ctx context.Context, conf string, n int, snd *sender) (closer, error) {
	track, err := newOpusTrack(n)
	if err != nil {
		return nil, err
	}
	c := &whip.Client{API: t.api, HTTPClient: t.http, Token: "none"}
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

func (t *pionTarget) record(context.Context, []string) error { return nil }

func (t *pionTarget) recorded(ctx context.Context) (int, error) {
	s, err := t.stats(ctx, http.MethodGet, "/stats")
	return s.Tracks, err
}

func (t *pionTarget) counters(ctx context.Context) (counters, error) {
	s, err := t.stats(ctx, http.MethodGet, "/stats")
	return counters{lost: s.Lost}, err
}

func (t *pionTarget) finish(ctx context.Context, recorded time.Duration) (fileCheck, error) {
	s, err := t.stats(ctx, http.MethodPost, "/close")
	if err != nil {
		return fileCheck{}, err
	}
	var fc fileCheck
	var inFiles uint64
	m, _ := filepath.Glob(filepath.Join(t.dir, "tracks", "*.ogg"))
	for _, path := range m {
		pkts, _, err := oggPackets(path)
		if err != nil {
			return fc, err
		}
		fc.files++
		if len(pkts) > 2 {
			inFiles += uint64(len(pkts) - 2)
		}
	}
	// pion's oggwriter numbers granules by packet, so holes are invisible in
	// the file: what is missing is what the reader saw lost, and what it
	// wrote but the files lack.
	fc.missing = s.Lost
	if s.Packets > inFiles {
		fc.missing += s.Packets - inFiles
	}
	fc.detail = fmt.Sprintf("%d track files, %d packets (receiver wrote %d)", fc.files, inFiles, s.Packets)
	return fc, nil
}

func (t *pionTarget) stats(ctx context.Context, method, path string) (pionStats, error) {
	var s pionStats
	req, err := http.NewRequestWithContext(ctx, method, t.base+path, nil)
	if err != nil {
		return s, err
	}
	resp, err := t.http.Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

func (t *pionTarget) stop() {
	if t.cmd == nil || t.cmd.Process == nil {
		return
	}
	select {
	case <-t.done:
	default:
		_ = t.cmd.Process.Kill() // by its PID
		<-t.done
	}
}
