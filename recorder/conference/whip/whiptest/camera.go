package whiptest

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"

	"github.com/rtcrec/recorder/media/g711"
	"github.com/rtcrec/recorder/recorder/conference/whip"
)

// Camera is a synthetic participant sending PCMU audio and VP8 video (or
// audio only), both paced by the wall clock from one start, so that the
// sound of s seconds leaves with the frame of s seconds: a flash and its
// beep leave together.
type Camera struct {
	pub    *whip.Publication
	cancel context.CancelFunc
	done   chan struct{}
	start  time.Time // the sender's time zero (see Started)
}

// JoinCamera publishes to endpoint (a full WHIP URL) as name: frames (30 fps
// VP8, looped; nil for audio only) and 20 ms of PCMU from voice(at, s), the
// sample at s seconds of the sender's time (at on the wall clock). It
// returns once connected and sending.
func JoinCamera(ctx context.Context, c *whip.Client, endpoint, name string, frames [][]byte, voice func(at time.Time, s float64) float64) (*Camera, error) {
	return JoinCameraWith(ctx, c, endpoint, name, frames, voice, AudioClock{})
}

// AudioClock makes a camera's audio clock slip against its wall clock (and
// its video, which keeps to the wall clock), as a sound card whose crystal
// runs off or a capture that stalls: the audio's RTP timestamps count the
// samples captured, which are Rate × 8000 a second of the wall clock, and a
// stall loses Stall of them. The sound of a sample is voice at the wall
// time it was captured, so a flash and its beep still happen together; the
// sender's RTCP reports (Pion's, from when it wrote its last packet) say
// where its audio is.
type AudioClock struct {
	Rate    float64       // 0: 1
	StallAt time.Duration // after the start; 0 with Stall 0: none
	Stall   time.Duration
}

// captured returns how many samples the clock captured after el of the wall clock.
func (a AudioClock) captured(el time.Duration) int {
	if a.Stall > 0 && el > a.StallAt {
		el -= min(el-a.StallAt, a.Stall)
	}
	return int(el.Seconds() * a.rate() * 8000)
}

// CapturedAt returns when the audio's sample n (its RTP time less the first
// packet's) was captured, after the camera's start (Camera.Started): where
// its sender's wall clock, and its reports, place it.
func (a AudioClock) CapturedAt(n int) time.Duration {
	return time.Duration(a.wall(n) * float64(time.Second))
}

// wall returns when sample n was captured, seconds of the wall clock from the start.
func (a AudioClock) wall(n int) float64 {
	w := float64(n) / (a.rate() * 8000)
	if a.Stall > 0 && w >= a.StallAt.Seconds() {
		w += a.Stall.Seconds()
	}
	return w
}

func (a AudioClock) rate() float64 {
	if a.Rate <= 0 {
		return 1
	}
	return a.Rate
}

// JoinCameraWith is JoinCamera with an audio clock that slips.
func JoinCameraWith(ctx context.Context, c *whip.Client, endpoint, name string, frames [][]byte, voice func(at time.Time, s float64) float64, clock AudioClock) (*Camera, error) {
	audio, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "audio", name)
	if err != nil {
		return nil, err
	}
	tracks := []webrtc.TrackLocal{audio}
	var video *webrtc.TrackLocalStaticSample
	if frames != nil {
		if video, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", name); err != nil {
			return nil, err
		}
		tracks = append(tracks, video)
	}
	pub, err := c.Publish(ctx, endpoint, tracks...)
	if err != nil {
		return nil, err
	}
	if err := pub.WaitConnected(ctx); err != nil {
		pub.Close(context.Background())
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	start := time.Now()
	cam := &Camera{pub: pub, cancel: cancel, done: make(chan struct{}), start: start}
	go func() {
		defer close(cam.done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		sentA, sentV := 0, 0
		pcm := make([]byte, 160)
		for {
			select {
			case <-sctx.Done():
				return
			case now := <-tick.C:
				el := now.Sub(start)
				for due := clock.captured(el)/160 + 1; sentA < due; sentA++ {
					for i := range pcm {
						s := clock.wall(sentA*160 + i)
						pcm[i] = g711.EncodeMuLaw(int16(voice(start.Add(time.Duration(s*float64(time.Second))), s)))
					}
					if audio.WriteSample(media.Sample{Data: pcm, Duration: 20 * time.Millisecond}) != nil {
						return
					}
				}
				if video == nil {
					continue
				}
				for due := int(el/(time.Second/30)) + 1; sentV < due; sentV++ {
					if video.WriteSample(media.Sample{Data: frames[sentV%len(frames)], Duration: time.Second / 30}) != nil {
						return
					}
				}
			}
		}
	}()
	return cam, nil
}

// Started returns the camera's time zero on the wall clock: its audio's
// first sample and its video's first frame were captured then, and its
// beeps and flashes count from it.
func (c *Camera) Started() time.Time { return c.start }

// Leave stops sending and ends the publication; it may be called again.
func (c *Camera) Leave(ctx context.Context) error {
	c.cancel()
	<-c.done
	return c.pub.Close(ctx)
}

// ReadIVF returns the frames of the IVF file at path (ffmpeg -f ivf).
func ReadIVF(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, _, err := ivfreader.NewWith(f)
	if err != nil {
		return nil, err
	}
	var frames [][]byte
	for {
		frame, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			return frames, nil
		}
		if err != nil {
			return nil, err
		}
		frames = append(frames, frame)
	}
}
