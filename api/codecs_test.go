package api

import (
	"context"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"

	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/recorder/conference/whip"
)

// ffmpegFile makes a media file with ffmpeg from lavfi sources.
func ffmpegFile(t *testing.T, name string, args ...string) string {
	t.Helper()
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	out := filepath.Join(t.TempDir(), name)
	cmd := exec.Command(ffmpeg, append(append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...), out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	return out
}

// opusFrames encodes a tone as 20 ms Opus packets (one per Ogg page).
func opusFrames(t *testing.T, freq float64, seconds int) [][]byte {
	t.Helper()
	frames, err := mediatest.OpusTone(testenv.LookPath(t, "ffmpeg"), t.TempDir(), freq, seconds)
	if err != nil {
		t.Fatal(err)
	}
	return frames
}

// vp8Frames encodes a test pattern at 30 fps with libvpx, like a WebRTC
// sender, with a keyframe every second.
func vp8Frames(t *testing.T, seconds int) [][]byte { return vp8FramesGOP(t, seconds, 30) }

// vp8FramesGOP is vp8Frames with a keyframe every gop frames.
func vp8FramesGOP(t *testing.T, seconds, gop int) [][]byte {
	path := ffmpegFile(t, "video.ivf", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30:duration="+strconv.Itoa(seconds),
		"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-g", strconv.Itoa(gop), "-b:v", "300k", "-f", "ivf")
	return mediatest.IVFFrames(t, path)
}

// h264Frames encodes a test pattern at 30 fps with libx264 (baseline, Annex B).
func h264Frames(t *testing.T, seconds int) [][]byte {
	path := ffmpegFile(t, "video.h264", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30:duration="+strconv.Itoa(seconds),
		"-pix_fmt", "yuv420p", "-c:v", "libx264", "-profile:v", "baseline", "-level", "3.1", "-preset", "ultrafast", "-tune", "zerolatency",
		"-g", "30", "-bsf:v", "h264_mp4toannexb", "-f", "h264")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := h264reader.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	// One access unit per frame: SPS/PPS/SEI travel with the next slice.
	var frames [][]byte
	var pending []byte
	for {
		nal, err := r.NextNAL()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, 0, 0, 0, 1)
		pending = append(pending, nal.Data...)
		if nal.UnitType == h264reader.NalUnitTypeCodedSliceIdr || nal.UnitType == h264reader.NalUnitTypeCodedSliceNonIdr {
			frames = append(frames, pending)
			pending = nil
		}
	}
	return frames
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// sendLoop writes frames (looping) every d until ctx ends.
func sendLoop(ctx context.Context, track *webrtc.TrackLocalStaticSample, frames [][]byte, d time.Duration) {
	// Sample i is sent at t0 + i·d; a loop that falls behind (a starved
	// goroutine) sends what is due at once, as a real sender's capture clock
	// keeps running. Its RTP timestamps (d per sample) so stay on the wall
	// clock. (A ticker drops the ticks it misses: at load 16 the sender then
	// sent a third less media than time passed, its timestamps fell a second
	// and more behind, and the recorder rightly placed the audio sent after a
	// resume within the pause.)
	t0 := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := 0; ; i++ {
		if wait := time.Until(t0.Add(time.Duration(i) * d)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		if track.WriteSample(media.Sample{Data: frames[i%len(frames)], Duration: d}) != nil {
			return
		}
	}
}

// countPLI counts the PLIs a sender receives.
func countPLI(s *webrtc.RTPSender, n *atomic.Int32) {
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			if _, ok := p.(*rtcp.PictureLossIndication); ok {
				n.Add(1)
			}
		}
	}
}

func probe(t *testing.T, data []byte, name string) (codec string, seconds float64) {
	t.Helper()
	ffprobe := testenv.LookPath(t, "ffprobe")
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "stream=codec_name:format=duration", "-of", "default=nw=1:nk=1", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", name, err, out)
	}
	f := strings.Fields(string(out))
	if len(f) < 2 {
		t.Fatalf("ffprobe %s: %q", name, out)
	}
	d, _ := strconv.ParseFloat(f[len(f)-1], 64)
	return f[0], d
}

// TestEndToEnd_Codecs records an Opus participant, a PCMU+VP8 participant, a
// PCMA participant and an H.264 participant with video on: the Opus, PCMU and
// PCMA tones in the mix, one playable file per track (Ogg/Opus, G.711 WAV,
// WebM/VP8, MP4/H.264) of the right length, and keyframes requested from the
// video senders (PLI).
func TestEndToEnd_Codecs(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	opus := opusFrames(t, 500, 4)
	vp8 := vp8Frames(t, 4)
	h264 := h264Frames(t, 4)
	h := startService(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sendCtx, stopSending := context.WithCancel(ctx)
	defer stopSending()
	c := h.whipClient(key1)

	publish := func(user, typ string, tracks ...*webrtc.TrackLocalStaticSample) *whip.Publication {
		var tl []webrtc.TrackLocal
		for _, tr := range tracks {
			tl = append(tl, tr)
		}
		p, err := c.Publish(ctx, whip.Endpoint(h.url, "codecs", user, typ), tl...)
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		t.Cleanup(func() { p.Close(context.Background()) })
		if err := p.WaitConnected(ctx); err != nil {
			t.Fatal(err)
		}
		return p
	}
	opusTrack, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "a", "opus-user")
	publish("opus-user", "MIC", opusTrack)
	go sendLoop(sendCtx, opusTrack, opus, 20*time.Millisecond)

	pcmuTrack, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "a", "cam-user")
	vp8Track, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "v", "cam-user")
	cam := publish("cam-user", "CAM", pcmuTrack, vp8Track)
	tone := &synth.Tone{Freq: 700, Amplitude: 8000}
	var pcmu [][]byte
	for range 50 {
		pcmu = append(pcmu, tone.NextPCMU(nil))
	}
	go sendLoop(sendCtx, pcmuTrack, pcmu, 20*time.Millisecond)
	go sendLoop(sendCtx, vp8Track, vp8, time.Second/30)

	pcmaTrack, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000}, "a", "pcma-user")
	publish("pcma-user", "MIC", pcmaTrack)
	alaw := &synth.Tone{Freq: 1100, Amplitude: 8000}
	var pcma [][]byte
	for range 50 {
		pcma = append(pcma, alaw.NextPCMA(nil))
	}
	go sendLoop(sendCtx, pcmaTrack, pcma, 20*time.Millisecond)

	h264Track, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "v", "screen-user")
	screen := publish("screen-user", "SCREEN", h264Track)
	go sendLoop(sendCtx, h264Track, h264, time.Second/30)

	var plis atomic.Int32
	for _, p := range []*whip.Publication{cam, screen} {
		for _, s := range p.PC.GetSenders() {
			if s.Track() != nil && s.Track().Kind() == webrtc.RTPCodecTypeVideo {
				go countPLI(s, &plis)
			}
		}
	}

	ev, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: "codecs", ConversationID: "codecs", Video: true})
	if st != 200 {
		t.Fatalf("start: %d", st)
	}
	time.Sleep(3 * time.Second)
	var stopped RecordingDataEvent
	if st := h.do("POST", recPath(ev)+"/stop", key1, nil, &stopped); st != 200 || stopped.State != "STOPPED" {
		t.Fatalf("stop: %d %+v", st, stopped)
	}
	stopSending()
	var comp RecordingDataMessage
	h.do("GET", "/api/compositions/codecs", key1, nil, &comp)

	want := map[string]string{"opus-user/AUDIO": "opus", "cam-user/AUDIO": "pcm_mulaw", "pcma-user/AUDIO": "pcm_alaw",
		"cam-user/VIDEO": "vp8", "screen-user/VIDEO": "h264"}
	got := 0
	for _, s := range comp.Streams {
		for _, tr := range s.Tracks {
			k := s.UserID + "/" + tr.Type
			codec, ok := want[k]
			if !ok {
				t.Errorf("unexpected track %s", k)
				continue
			}
			got++
			if tr.URL == "" {
				t.Errorf("%s: no url", k)
				continue
			}
			a, _ := time.Parse(time.RFC3339Nano, tr.Started)
			b, _ := time.Parse(time.RFC3339Nano, tr.Stopped)
			c, d := probe(t, fetch(t, tr.URL), strings.ReplaceAll(k, "/", "-"))
			if c != codec || math.Abs(d-b.Sub(a).Seconds()) > 0.5 {
				t.Errorf("%s: ffprobe says %s %.2f s, want %s %.2f s", k, c, d, codec, b.Sub(a).Seconds())
			}
		}
	}
	if got != len(want) {
		t.Errorf("%d of %d tracks recorded", got, len(want))
	}
	if plis.Load() == 0 {
		t.Error("no keyframe request (PLI) reached the video senders")
	}
	wav := fetch(t, comp.Composition.Outputs[0].URL)
	pcm := wavPCM(t, wav)
	body := pcm[4000 : len(pcm)-2000]
	for _, f := range []float64{500, 700, 1100} {
		if a := mediatest.Goertzel(body, 8000, f); a < 2000 {
			t.Errorf("%g Hz amplitude %.0f in the mix", f, a)
		}
	}
}

// TestEndToEnd_VideoWithoutKeyframe: a video track whose sender never sends a
// keyframe (it ignores PLI) leaves no unplayable file: the track is listed with
// the no_media error and no URL, and the recording still stops cleanly.
func TestEndToEnd_VideoWithoutKeyframe(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	inter := vp8FramesGOP(t, 3, 300)[1:] // every frame but the first, the only keyframe
	h := startService(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sendCtx, stopSending := context.WithCancel(ctx)
	defer stopSending()
	audio, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "a", "nokey")
	video, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "v", "nokey")
	p, err := h.whipClient(key1).Publish(ctx, whip.Endpoint(h.url, "nokey", "u", "CAM"), audio, video)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	if err := p.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	tone := &synth.Tone{Freq: 700, Amplitude: 8000}
	go sendLoop(sendCtx, audio, [][]byte{tone.NextPCMU(nil)}, 20*time.Millisecond)
	go sendLoop(sendCtx, video, inter, time.Second/30)
	ev, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: "nokey", ConversationID: "nokey", Video: true})
	if st != 200 {
		t.Fatalf("start: %d", st)
	}
	time.Sleep(2 * time.Second)
	var stopped RecordingDataEvent
	if st := h.do("POST", recPath(ev)+"/stop", key1, nil, &stopped); st != 200 || stopped.State != "STOPPED" {
		t.Fatalf("stop: %d %+v", st, stopped)
	}
	var msg RecordingDataMessage
	h.do("GET", recPath(ev), key1, nil, &msg)
	if len(msg.Streams) != 1 || len(msg.Streams[0].Tracks) != 2 {
		t.Fatalf("streams %+v", msg.Streams)
	}
	for _, tr := range msg.Streams[0].Tracks {
		switch tr.Type {
		case "AUDIO":
			if tr.URL == "" {
				t.Errorf("audio track without url: %+v", tr)
			}
		case "VIDEO":
			ls := tr.Storage.LocalStorage
			if tr.URL != "" || ls == nil || ls.Error == nil || ls.Error.Code != "no_media" || tr.Storage.ObjectStorage != nil {
				t.Errorf("video track without a keyframe: %+v %+v", tr, ls)
			}
		}
	}
}
