package api

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/recorder/conference/whip"
)

// videoPage publishes Chromium's fake 640x480 camera to the WHIP endpoint,
// and once connected reports what its video sender sends every 500 ms for
// 5 s: "stats <ms since connected> <width> <height> <bytes sent> <encoder
// target bit/s> <available outgoing bit/s (its bandwidth estimate)> <quality
// limitation reason>".
const videoPage = `<!doctype html><html><body><script>
const report = (s) => fetch('/report', {method: 'POST', body: s});
(async () => {
  try {
    const stream = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480, frameRate: 30}});
    const pc = new RTCPeerConnection();
    pc.addTransceiver(stream.getVideoTracks()[0], {direction: 'sendonly'});
    let t0 = 0;
    pc.oniceconnectionstatechange = async () => {
      report('ice ' + pc.iceConnectionState);
      if (t0 || (pc.iceConnectionState !== 'connected' && pc.iceConnectionState !== 'completed')) return;
      t0 = performance.now();
      for (let i = 1; i <= 10; i++) {
        await new Promise((ok) => setTimeout(ok, t0 + i * 500 - performance.now()));
        const stats = await pc.getStats();
        let avail = 0;
        stats.forEach((s) => {
          if (s.type === 'candidate-pair' && s.nominated && s.availableOutgoingBitrate) avail = s.availableOutgoingBitrate;
        });
        stats.forEach((s) => {
          if (s.type === 'outbound-rtp' && s.kind === 'video') {
            report('stats ' + Math.round(performance.now() - t0) + ' ' + (s.frameWidth || 0) + ' ' +
              (s.frameHeight || 0) + ' ' + s.bytesSent + ' ' + Math.round(s.targetBitrate || 0) + ' ' +
              Math.round(avail) + ' ' + s.qualityLimitationReason);
          }
        });
      }
      report('done');
    };
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((ok) => {
      if (pc.iceGatheringState === 'complete') return ok();
      pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && ok();
    });
    const resp = await fetch(WHIP, {method: 'POST', body: pc.localDescription.sdp,
      headers: {'Content-Type': 'application/sdp', 'Authorization': 'Bearer ' + KEY}});
    if (resp.status !== 201) return report('whip ' + resp.status + ' ' + await resp.text());
    await pc.setRemoteDescription({type: 'answer', sdp: await resp.text()});
  } catch (e) { report('error ' + e); }
})();
</script></body></html>`

// videoSample is one of the page's reports of its video sender.
type videoSample struct {
	at            time.Duration // since ICE connected
	width, height int
	bytesSent     int64
	target, avail int64 // the encoder's target and the sender's bandwidth estimate, bit/s
	limitation    string
}

// TestBrowser_VideoBitrateFromTheStart: with REMB at webrtc.videoBitrate
// (the default, 2.5 Mbit/s) Chromium's bandwidth estimate for its fake
// 640x480 camera reaches that target within seconds (its encoder's target
// rises to its 640x480 maximum, 1.7 Mbit/s); without REMB (videoBitrate -1)
// it stays near its 300 kbit/s start (a real camera's picture then lowers
// its resolution for seconds: qualityLimitationReason "bandwidth"). What the
// sender sends each half second is logged: resolution, bitrate, estimate.
// At capacity (capacity.streams 1, the camera being that stream) the REMB
// asks a quarter of the target (whip.VideoBitrateAt): Chromium's estimate
// rises to that and no further.
func TestBrowser_VideoBitrateFromTheStart(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	chromium := testenv.LookPath(t, "chromium")
	for _, c := range []struct {
		name     string
		bitrate  int64
		capacity int
	}{{"without REMB", -1, 0}, {"with REMB", 0, 0}, {"with REMB at capacity", 0, 1}} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			cfg.WebRTC.VideoBitrate = c.bitrate
			cfg.Capacity.Streams = c.capacity
			cfg.SetDefaults()
			samples := publishChromiumVideo(t, chromium, startServiceConfig(t, cfg, nil))
			var prev videoSample
			for _, s := range samples {
				kbps := float64(s.bytesSent-prev.bytesSent) * 8 / (s.at - prev.at).Seconds() / 1000
				t.Logf("%s: %5d ms  %dx%d  sent %5.0f kbit/s  target %5d  estimate %5d kbit/s  limited by %s",
					c.name, s.at.Milliseconds(), s.width, s.height, kbps, s.target/1000, s.avail/1000, s.limitation)
				prev = s
			}
			// The sender's bandwidth estimate: REMB's target within the
			// reports (5 s; seen at 2.5 s), or near its 300 kbit/s start
			// without REMB.
			best := int64(0)
			for _, s := range samples {
				best = max(best, s.avail)
			}
			if len(samples) == 0 {
				t.Fatal("the page reported nothing of its video sender")
			}
			if c.bitrate < 0 && best >= 1_000_000 {
				t.Errorf("without REMB Chromium's bandwidth estimate reached %d kbit/s: something else raised it", best/1000)
			}
			want := int64(whip.VideoBitrateAt(config.DefaultVideoBitrate, c.capacity, c.capacity)) // load = capacity: the camera
			if c.capacity > 0 && want != config.DefaultVideoBitrate/4 {
				t.Fatalf("at capacity the REMB asks %d bit/s, want a quarter of %d", want, config.DefaultVideoBitrate)
			}
			if c.bitrate == 0 && best < want*8/10 {
				t.Errorf("with REMB at %d kbit/s Chromium's bandwidth estimate reached only %d kbit/s in %v",
					want/1000, best/1000, samples[len(samples)-1].at)
			}
			if c.capacity > 0 && best > want*11/10 {
				t.Errorf("with REMB at %d kbit/s (a quarter of %d: at capacity) Chromium's bandwidth estimate reached %d kbit/s",
					want/1000, config.DefaultVideoBitrate/1000, best/1000)
			}
		})
	}
}

// publishChromiumVideo runs headless Chromium on videoPage against h's WHIP
// endpoint and returns its video sender's reports.
func publishChromiumVideo(t *testing.T, chromium string, h *harness) []videoSample {
	t.Helper()
	tok := mint(t, h, key1, PublishTokenRequest{ConferenceID: "camera", UserID: "chromium", StreamTypes: []string{"CAM"}})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := openChromiumPage(t, chromium, videoPage, h.url+"/whip/camera?userId=chromium&type=CAM", tok.Token)
	var samples []videoSample
	for {
		select {
		case r := <-c.reports:
			if strings.HasPrefix(r, "error") || strings.HasPrefix(r, "whip") || r == "ice failed" {
				t.Fatalf("page: %s", r)
			}
			if r == "done" {
				return samples
			}
			var s videoSample
			var ms int64
			if _, err := fmt.Sscanf(r, "stats %d %d %d %d %d %d %s", &ms, &s.width, &s.height, &s.bytesSent, &s.target, &s.avail, &s.limitation); err == nil {
				s.at = time.Duration(ms) * time.Millisecond
				samples = append(samples, s)
			} else {
				t.Logf("page: %s", r)
			}
		case <-c.exited:
			t.Fatalf("chromium exited:\n%s", c.out())
		case <-ctx.Done():
			t.Fatalf("the page did not report its video (%d reports):\n%s", len(samples), c.out())
		}
	}
}
