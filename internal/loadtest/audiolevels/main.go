// Command audiolevels measures what the RFC 6464 audio levels that Chromium
// sends would add to the SILK VAD flags for the mix's skipping of inactive
// packets (issue 16). Headless Chromium publishes internal/synth.Speech (60
// s, looped) as its fake microphone, optionally with white noise added and
// with its audio processing on, to a Pion receiver on 127.0.0.1 that
// negotiates the ssrc-audio-level extension; every packet's payload, level
// and V flag are kept (-o, JSON). Then decodes at 8 kHz that skip packets
// by their VAD flags only, by the V flag, and by VAD flags or a level
// threshold are compared with a decode that skips nothing, as media's
// TestOpusDecoder_SkipFidelity compares (SNR on speech frames and overall,
// the loudest frame made silent, onset shifts).
//
//	go run ./internal/loadtest/audiolevels -s 30 -noise -50 [-apm]
//	go run ./internal/loadtest/audiolevels -analyse packets.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/rtcrec/recorder/internal/opus"
	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/media/wavwriter"
)

const page = `<!doctype html><html><body><script>
(async () => {
  const stream = await navigator.mediaDevices.getUserMedia({audio: {
    echoCancellation: ECHO, noiseSuppression: ECHO, autoGainControl: ECHO}});
  const pc = new RTCPeerConnection();
  pc.addTransceiver(stream.getAudioTracks()[0], {direction: 'sendonly'});
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((ok) => {
    if (pc.iceGatheringState === 'complete') return ok();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && ok();
  });
  const resp = await fetch('/whip', {method: 'POST', body: pc.localDescription.sdp});
  await pc.setRemoteDescription({type: 'answer', sdp: await resp.text()});
})();
</script></body></html>`

type packet struct {
	Seq     uint16
	Payload []byte
	Level   int // -dBov, 0..127; -1: none
	Voice   bool
}

func main() {
	seconds := flag.Float64("s", 30, "seconds to record")
	noiseDB := flag.Float64("noise", 0, "add white noise at this dBFS (0: none)")
	apm := flag.Bool("apm", false, "Chromium's audio processing on (echo cancellation, noise suppression, AGC)")
	out := flag.String("o", "", "write the packets to this JSON file")
	analyse := flag.String("analyse", "", "analyse a packets file only")
	flag.Parse()
	if *analyse != "" {
		var pkts []packet
		b, err := os.ReadFile(*analyse)
		if err != nil {
			log.Fatal(err)
		}
		if err := json.Unmarshal(b, &pkts); err != nil {
			log.Fatal(err)
		}
		report(pkts)
		return
	}
	dir, _ := os.MkdirTemp("", "al")
	defer os.RemoveAll(dir)
	pcm, _ := synth.Speech(60, 7)
	if *noiseDB < 0 {
		amp := 32768 * math.Pow(10, *noiseDB/20) * math.Sqrt(3) // uniform: rms = amp/sqrt(3)
		r := rand.New(rand.NewPCG(1, 1))
		for i := range pcm {
			v := float64(pcm[i]) + amp*(2*r.Float64()-1)
			pcm[i] = int16(max(-32768, min(32767, v)))
		}
	}
	wav := filepath.Join(dir, "speech.wav")
	w, err := wavwriter.New(wav, wavwriter.WithSampleRate(48000), wavwriter.WithChannels(1))
	if err != nil {
		log.Fatal(err)
	}
	if err := w.WriteFrame(pcm); err != nil {
		log.Fatal(err)
	}
	w.Close()

	var mu sync.Mutex
	var pkts []packet
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		log.Fatal(err)
	}
	const audioLevelURI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: audioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		log.Fatal(err)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me))
	echo := "false"
	if *apm {
		echo = "true"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /page.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, strings.ReplaceAll(page, "ECHO", echo))
	})
	mux.HandleFunc("POST /whip", func(w http.ResponseWriter, r *http.Request) {
		offer, _ := io.ReadAll(r.Body)
		pc, err := api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			log.Fatal(err)
		}
		pc.OnTrack(func(tr *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) {
			id := 0
			for _, e := range rcv.GetParameters().HeaderExtensions {
				if e.URI == audioLevelURI {
					id = e.ID
				}
			}
			log.Printf("track %s, audio level extension id %d", tr.Codec().MimeType, id)
			for {
				p, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				k := packet{Seq: p.SequenceNumber, Payload: append([]byte(nil), p.Payload...), Level: -1}
				if id != 0 {
					if b := p.GetExtension(uint8(id)); b != nil {
						var al rtp.AudioLevelExtension
						if al.Unmarshal(b) == nil {
							k.Level, k.Voice = int(al.Level), al.Voice
						}
					}
				}
				mu.Lock()
				pkts = append(pkts, k)
				mu.Unlock()
			}
		})
		if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(offer)}); err != nil {
			log.Fatal(err)
		}
		ans, err := pc.CreateAnswer(nil)
		if err != nil {
			log.Fatal(err)
		}
		g := webrtc.GatheringCompletePromise(pc)
		if err := pc.SetLocalDescription(ans); err != nil {
			log.Fatal(err)
		}
		<-g
		fmt.Fprint(w, pc.LocalDescription().SDP)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(ln, mux)
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + filepath.Join(dir, "profile"), "--use-fake-ui-for-media-stream",
		"--use-fake-device-for-media-stream", "--allow-loopback-in-peer-connection",
		"--use-file-for-fake-audio-capture=" + wav, "http://" + ln.Addr().String() + "/page.html"}
	cmd := exec.Command("chromium", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(), testenv.ChromiumEnv...) // see there: a start-up crash under load
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	time.Sleep(time.Duration(*seconds * float64(time.Second)))
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	mu.Lock()
	got := pkts
	mu.Unlock()
	if *out != "" {
		b, _ := json.Marshal(got)
		if err := os.WriteFile(*out, b, 0o644); err != nil {
			log.Fatal(err)
		}
	}
	report(got)
}

// vadClear: a mono SILK-only or hybrid code-0 packet whose VAD flags are all
// clear, or DTX (as media's opusInactive, code 0 only).
func vadClear(p []byte) bool {
	if len(p) <= 2 {
		return true
	}
	cfg := int(p[0] >> 3)
	if cfg >= 16 || p[0]&0x04 != 0 || p[0]&3 != 0 {
		return false
	}
	n := 1
	if cfg < 12 {
		n = [4]int{1, 1, 2, 3}[cfg&3]
	}
	return p[1]>>(8-n) == 0
}

func report(pkts []packet) {
	if len(pkts) == 0 {
		log.Fatal("no packets")
	}
	// Drop the first 2 s (start-up).
	pkts = pkts[min(100, len(pkts)):]
	withLevel, voice, clear := 0, 0, 0
	hist := map[int]int{}
	for _, p := range pkts {
		if p.Level >= 0 {
			withLevel++
		}
		if p.Voice {
			voice++
		}
		if vadClear(p.Payload) {
			clear++
		}
		hist[p.Level/10*10]++
	}
	fmt.Printf("%d packets: %d with a level, %d with V set, %d VAD-clear (%.1f %%)\n", len(pkts), withLevel, voice, clear, 100*float64(clear)/float64(len(pkts)))
	fmt.Printf("levels (-dBov, by tens): ")
	for l := 0; l <= 120; l += 10 {
		fmt.Printf("%d:%d ", l, hist[l])
	}
	fmt.Println()
	// VAD-set packets by level
	fmt.Printf("VAD-set packets by level: ")
	h2 := map[int]int{}
	for _, p := range pkts {
		if !vadClear(p.Payload) {
			h2[p.Level/10*10]++
		}
	}
	for l := 0; l <= 120; l += 10 {
		fmt.Printf("%d:%d ", l, h2[l])
	}
	fmt.Println()
	full := decode(pkts, func(packet) bool { return false })
	for _, pol := range []struct {
		name string
		skip func(packet) bool
	}{
		{"VAD", func(p packet) bool { return vadClear(p.Payload) }},
		{"VAD or V clear", func(p packet) bool { return vadClear(p.Payload) || (p.Level >= 0 && !p.Voice) }},
		{"VAD or level <= -70 dBov", func(p packet) bool { return vadClear(p.Payload) || p.Level >= 70 }},
		{"VAD or level <= -60 dBov", func(p packet) bool { return vadClear(p.Payload) || p.Level >= 60 }},
		{"VAD or level <= -50 dBov", func(p packet) bool { return vadClear(p.Payload) || p.Level >= 50 }},
		{"VAD or level <= -45 dBov", func(p packet) bool { return vadClear(p.Payload) || p.Level >= 45 }},
		{"VAD or level <= -40 dBov", func(p packet) bool { return vadClear(p.Payload) || p.Level >= 40 }},
		{"level <= -50 dBov only", func(p packet) bool { return p.Level >= 50 }},
	} {
		n := 0
		for _, p := range pkts {
			if pol.skip(p) && len(p.Payload) <= 256 {
				n++
			}
		}
		got := decode(pkts, pol.skip)
		f := mediatest.CompareDecodes(full, got, 8000)
		fmt.Printf("%-28s skipped %5.1f %%: SNR speech %.1f dB, overall %.1f dB; loudest skipped frame %.1f dBFS; %d onsets, largest shift %.2f ms\n",
			pol.name, 100*float64(n)/float64(len(pkts)), f.SNRSpeech, f.SNRAll, f.LoudestSkip, f.Onsets, f.OnsetShiftMax)
	}
}

// decode decodes at 8 kHz, hybrid CELT skipped, skipping packets skip says
// (≤ 256 bytes) as silence, re-warming with the last two skipped before a
// decoded one (media's opusDecoder).
func decode(pkts []packet, skip func(packet) bool) []int16 {
	dec, err := opus.NewDecoderWithOutput(8000, 1)
	if err != nil {
		log.Fatal(err)
	}
	dec.SetSkipHybridCELT(true)
	var out []int16
	buf := make([]int16, 5760)
	var held [][]byte
	for _, p := range pkts {
		if skip(p) && len(p.Payload) <= 256 {
			held = append(held, p.Payload)
			out = append(out, make([]int16, 160)...)
			continue
		}
		for _, h := range held[max(0, len(held)-2):] {
			if len(h) > 2 {
				dec.DecodeToInt16(h, buf)
			}
		}
		held = held[:0]
		n, err := dec.DecodeToInt16(p.Payload, buf)
		if err != nil {
			n = 160
			clear(buf[:n])
		}
		out = append(out, buf[:n]...)
	}
	return out
}
