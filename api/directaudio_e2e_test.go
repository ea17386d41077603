package api

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/recorder/conference/whip"
	"github.com/rtcrec/recorder/recorder/conference/whip/whiptest"
)

// TestEndToEnd_DirectAudio: with webrtc.directAudio the UDP mux's reader
// decrypts two real Pion publishers' audio itself (whip.DirectPackets
// counts it) and their tones (440 and 660 Hz) are in each one's track file,
// the other's not, and both in the mix, as through Pion's goroutines.
func TestEndToEnd_DirectAudio(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	cfg := testConfig(t.TempDir())
	cfg.WebRTC.UDPMux = "127.0.0.1:0"
	h := startServiceConfig(t, cfg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := h.whipClient(key1)
	freqs := map[string]float64{"alice": 440, "bob": 660}
	for name, freq := range freqs {
		p, err := whiptest.Join(ctx, c, whip.Endpoint(h.url, "direct", name, "MIC"), name, freq)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(func() { p.Leave(context.Background()) })
	}
	direct0 := whip.DirectPackets()
	ev, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: "direct", ConversationID: "convDirect"})
	if st != 200 || ev.State != "ACTIVE" {
		t.Fatalf("start: %d %+v", st, ev)
	}
	// 3 s of both streams (50 packets a second each) written.
	h.waitWritten(h.svc.Manager.MediaStats().Written + 2*150)
	var stopped RecordingDataEvent
	if st := h.do("POST", recPath(ev)+"/stop", key1, nil, &stopped); st != 200 || stopped.State != "STOPPED" {
		t.Fatalf("stop: %d %+v", st, stopped)
	}
	if direct := whip.DirectPackets() - direct0; direct < 2*150 {
		t.Errorf("the UDP mux handed over %d packets itself while 3 s of two streams were recorded, want 300 or more", direct)
	}

	var msg RecordingDataMessage
	if st := h.do("GET", recPath(ev), key1, nil, &msg); st != 200 || len(msg.Streams) != 2 {
		t.Fatalf("recording: %d, %d streams, want 2", st, len(msg.Streams))
	}
	// level is freq's amplitude in pcm (8 kHz) from 0.3 s in to 0.3 s
	// before its end.
	level := func(pcm []int16, freq float64) float64 {
		if len(pcm) < 8000 {
			t.Fatalf("%d samples, want 1 s or more", len(pcm))
		}
		return mediatest.Goertzel(pcm[2400:len(pcm)-2400], 8000, freq)
	}
	for _, s := range msg.Streams {
		if len(s.Tracks) != 1 || s.Tracks[0].URL == "" {
			t.Fatalf("stream of %s: %+v", s.UserID, s)
		}
		path := filepath.Join(t.TempDir(), s.UserID+".track")
		if err := os.WriteFile(path, fetch(t, s.Tracks[0].URL), 0o600); err != nil {
			t.Fatal(err)
		}
		pcm := mediatest.Decode(t, path, 8000)
		for name, freq := range freqs {
			a := level(pcm, freq)
			if own := name == s.UserID; own && a < 2000 || !own && a > 200 {
				t.Errorf("track of %s: %g Hz (%s's) amplitude %.0f, want present=%v", s.UserID, freq, name, a, own)
			}
		}
	}
	mix := h.mixPCM("convDirect")
	for name, freq := range freqs {
		if a := level(mix, freq); a < 2000 {
			t.Errorf("mix: %s's %g Hz amplitude %.0f, want 2000 or more", name, freq, a)
		}
	}
}
