package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rtcrec/recorder/api"
	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/media/wavwriter"
	"github.com/rtcrec/recorder/recorder/conference/whip"
	"github.com/rtcrec/recorder/recorder/conference/whip/whiptest"
)

// demoPart is one synthetic participant of the demo and its timeline.
type demoPart struct {
	name        string
	freq        float64
	join, leave time.Duration // when to join and leave, from just before the start request; leave 0: stays
	// When it did, from the same instant: its join began and connected
	// (its tone begins then), its leave began (its tone ends) and ended.
	// On a busy machine they come later than asked (a join's handshake
	// took 6 s at load 20): the check takes the tones from these.
	joining, joined, leaving, left time.Duration
	p                              *whiptest.Participant
}

// demo runs the service in-process on a free loopback port, records a
// synthetic three-party conference over WHIP and checks the result.
func demo(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "where the demo's recorder keeps its data (default: a new temporary directory)")
	length := fs.Duration("duration", 10*time.Second, "how long to record")
	verbose := fs.Bool("v", false, "print the service's logs too")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *length < 6*time.Second {
		return errors.New("demo: --duration must be at least 6s")
	}
	if *dataDir == "" {
		d, err := os.MkdirTemp("", "recorder-demo-")
		if err != nil {
			return err
		}
		*dataDir = d
	}
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = *dataDir
	cfg.WebRTC.IncludeLoopback = true
	cfg.WebRTC.Interfaces = []string{"lo"}
	logOut := io.Discard
	if *verbose {
		logOut = stderr
	} else if f, err := os.Create(filepath.Join(*dataDir, "demo.log")); err == nil {
		defer f.Close()
		logOut = f
	}
	ctx, cancel := context.WithTimeout(context.Background(), *length+2*time.Minute)
	defer cancel()

	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	svc, err := api.NewService(ctx, cfg, newLogger(logOut, "text", slog.LevelInfo))
	if err != nil {
		return err
	}
	go svc.Serve()
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		svc.Shutdown(sctx)
	}()
	key := svc.Keys[0].Key
	say("recorder %s listening on %s (data in %s)", svc.RecorderID, svc.URL, *dataDir)

	webrtcAPI, closeUDP, err := whip.NewAPI(whip.Settings{LoopbackOnly: true, UDP4Only: true})
	if err != nil {
		return err
	}
	defer closeUDP()
	client := &whip.Client{API: webrtcAPI, Token: key}
	parts := []*demoPart{
		{name: "alice", freq: 440},
		{name: "bob", freq: 660, leave: *length * 7 / 10},
		{name: "carol", freq: 880, join: *length * 3 / 10},
	}
	joinPart := func(p *demoPart) error {
		var err error
		p.p, err = whiptest.Join(ctx, client, whip.Endpoint(svc.URL, "demo-conference", p.name, "MIC"), p.name, p.freq)
		if err != nil {
			return fmt.Errorf("%s cannot join: %w", p.name, err)
		}
		return nil
	}
	defer func() {
		for _, p := range parts {
			if p.p != nil {
				p.p.Leave(context.Background())
			}
		}
	}()
	for _, p := range parts[:2] {
		if err := joinPart(p); err != nil {
			return err
		}
		say("  %-5s joined over WHIP, sending a %g Hz tone (PCMU)", p.name, p.freq)
	}

	call := func(method, path string, body, out any) error {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequestWithContext(ctx, method, svc.URL+path, rd)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(data))
		}
		return json.Unmarshal(data, out)
	}

	t0 := time.Now()
	var ev api.RecordingDataEvent
	if err := call("POST", "/api/recordings/start", api.StartRecording{
		ApplicationID: "demo", ConferenceID: "demo-conference", ConversationID: "demo-conversation"}, &ev); err != nil {
		return err
	}
	say("recording %s started: %s after %v", ev.InstanceID, ev.State, time.Since(t0).Round(time.Millisecond))
	path := "/api/recordings/" + ev.ConversationID + "/" + ev.RecorderID + "/" + ev.InstanceID

	for sec := time.Second; sec <= *length; sec += time.Second {
		for _, p := range parts {
			if p.join > 0 && p.join > sec-time.Second && p.join <= sec {
				time.Sleep(time.Until(t0.Add(p.join)))
				p.joining = time.Since(t0)
				if err := joinPart(p); err != nil {
					return err
				}
				p.joined = time.Since(t0)
				say("  %5.1fs  %s joins late (%g Hz; connected in %.1fs)", p.joined.Seconds(), p.name, p.freq, (p.joined - p.joining).Seconds())
			}
			if p.leave > 0 && p.leave > sec-time.Second && p.leave <= sec {
				time.Sleep(time.Until(t0.Add(p.leave)))
				p.leaving = time.Since(t0)
				p.p.Leave(ctx)
				p.left = time.Since(t0)
				say("  %5.1fs  %s leaves early", p.leaving.Seconds(), p.name)
			}
		}
		time.Sleep(time.Until(t0.Add(sec)))
		var st api.RecordingDataEvent
		if err := call("GET", path+"/state", nil, &st); err != nil {
			return err
		}
		say("  %5.1fs  %s", time.Since(t0).Seconds(), st.State)
	}

	t1 := time.Now()
	if err := call("POST", path+"/stop", nil, &ev); err != nil {
		return err
	}
	say("recording stopped: %s; files written, uploaded and verified in %v", ev.State, time.Since(t1).Round(time.Millisecond))
	var msg api.RecordingDataMessage
	if err := call("GET", "/api/compositions/"+ev.ConversationID, nil, &msg); err != nil {
		return err
	}
	return demoSummary(stdout, &msg, parts, t0)
}

// demoSummary prints what was recorded and checks it: every stream and its
// track uploaded with a signed URL, the mix 8 kHz mono with each tone where
// its participant was present (from when its join connected to when its
// leave began), and not before its join began or after its leave ended.
func demoSummary(w io.Writer, msg *api.RecordingDataMessage, parts []*demoPart, t0 time.Time) error {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	fmt.Fprintf(w, "\nRecording %s of conversation %s: %s\n", msg.InstanceID, msg.ConversationID, msg.State)
	if msg.State != "STOPPED" {
		bad("state is %s, not STOPPED", msg.State)
	}
	fmt.Fprintf(w, "  storage: %s %s\n", msg.StorageProfile.Provider, msg.StorageProfile.URL)
	if len(msg.Streams) != len(parts) {
		bad("%d streams recorded, want %d", len(msg.Streams), len(parts))
	}
	for _, s := range msg.Streams {
		for _, t := range s.Tracks {
			a, _ := time.Parse(time.RFC3339Nano, t.Started)
			b, _ := time.Parse(time.RFC3339Nano, t.Stopped)
			loc, size := "", "?"
			if t.Storage != nil && t.Storage.ObjectStorage != nil {
				loc, size = t.Storage.ObjectStorage.Location, t.Storage.ObjectStorage.Size
			}
			fmt.Fprintf(w, "  track %-5s %-3s %s  %5.1fs  %7s bytes  %s\n", s.UserID, s.Type, t.Type, b.Sub(a).Seconds(), size, localPath(loc))
			fmt.Fprintf(w, "        url %s\n", t.URL)
			if t.URL == "" || size == "?" || size == "0" {
				bad("track of %s was not uploaded", s.UserID)
			}
		}
	}
	c := msg.Composition
	if c == nil || len(c.Outputs) == 0 || c.Outputs[0].URL == "" {
		bad("no mix")
		return report(w, problems)
	}
	mix := c.Outputs[0]
	fmt.Fprintf(w, "  mix.wav  %d Hz, %d channel(s), %.2fs, %s bytes\n      at %s\n      url %s (valid until %s)\n",
		mix.SampleRate, mix.Channels, mix.Duration, mix.Size, localPath(mix.Location), mix.URL, mix.ValidUntil)
	if c.Manifest != nil {
		fmt.Fprintf(w, "  manifest.json at %s\n", localPath(c.Manifest.Location))
	}

	resp, err := http.Get(mix.URL)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		bad("mix.wav cannot be fetched through its signed URL: %d %v", resp.StatusCode, err)
		return report(w, problems)
	}
	h, err := wavwriter.ParseHeader(data)
	if err != nil || h.SampleRate != 8000 || h.Channels != 1 || h.BitsPerSample != 16 {
		bad("mix.wav is not 8000 Hz 16-bit mono: %+v %v", h, err)
		return report(w, problems)
	}
	pcm := make([]int16, (len(data)-int(h.DataOffset))/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(data[int(h.DataOffset)+2*i:]))
	}
	started, _ := time.Parse(time.RFC3339Nano, msg.Started)
	lead := started.Sub(t0).Seconds() // the recording's zero, relative to t0
	end := float64(len(pcm)) / 8000
	level := func(freq, from, to float64) float64 {
		a, b := max(0, int((from-lead)*8000)), min(len(pcm), int((to-lead)*8000))
		if b-a < 800 {
			return -1
		}
		return mediatest.Goertzel(pcm[a:b], 8000, freq)
	}
	fmt.Fprintln(w, "  tones in the mix:")
	for _, p := range parts {
		from, to := max(p.joined.Seconds(), 0)+0.5, end+lead-0.3
		if p.leave > 0 {
			to = p.leaving.Seconds() - 0.3
		}
		in := level(p.freq, from, to)
		ok := in > 2000
		line := fmt.Sprintf("    %-5s %4g Hz  amplitude %5.0f from %.1fs to %.1fs", p.name, p.freq, in, from, to)
		if p.join > 0 {
			before := level(p.freq, 0.2, p.joining.Seconds()-0.2)
			ok = ok && before < 200
			line += fmt.Sprintf(", %3.0f before joining", before)
		}
		if p.leave > 0 {
			after := level(p.freq, p.left.Seconds()+0.5, end+lead-0.1)
			ok = ok && after < 200
			line += fmt.Sprintf(", %3.0f after leaving", after)
		}
		mark := "ok"
		if !ok {
			mark = "MISSING OR MISPLACED"
			bad("%s's tone is missing or misplaced", p.name)
		}
		fmt.Fprintf(w, "%s  %s\n", line, mark)
	}
	return report(w, problems)
}

func report(w io.Writer, problems []string) error {
	if len(problems) > 0 {
		return fmt.Errorf("demo: the recording is not complete: %s", strings.Join(problems, "; "))
	}
	fmt.Fprintln(w, "\nThe recording is complete: every participant's track and tone is there.")
	return nil
}

// localPath turns a file:// location into a path.
func localPath(loc string) string {
	return strings.TrimPrefix(loc, "file://")
}
