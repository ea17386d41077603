// Package whiptest is a synthetic WHIP publisher for the demo and the tests:
// a participant that sends a PCMU sine tone (synth.Tone) in real time.
package whiptest

import (
	"context"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/recorder/conference/whip"
)

// Participant is a synthetic conference participant: a WHIP publisher sending
// a PCMU sine tone in real time.
type Participant struct {
	Name string
	Freq float64
	pub  *whip.Publication
	stop chan struct{}
	done chan struct{}
	once sync.Once

	mu   sync.Mutex
	sent []int64 // when each 20 ms packet's write returned (Unix ns): 8 bytes a packet, 1.4 MB an hour
}

// Join publishes a tone of freq Hz to endpoint (a full WHIP URL) and starts
// sending once ICE connects; it returns when connected or ctx ends.
func Join(ctx context.Context, c *whip.Client, endpoint, name string, freq float64) (*Participant, error) {
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "audio", name)
	if err != nil {
		return nil, err
	}
	pub, err := c.Publish(ctx, endpoint, track)
	if err != nil {
		return nil, err
	}
	if err := pub.WaitConnected(ctx); err != nil {
		pub.Close(context.Background())
		return nil, err
	}
	p := &Participant{Name: name, Freq: freq, pub: pub, stop: make(chan struct{}), done: make(chan struct{})}
	go p.send(track)
	return p, nil
}

// send writes 20 ms of tone every 20 ms, paced by the wall clock.
func (p *Participant) send(track *webrtc.TrackLocalStaticSample) {
	defer close(p.done)
	tone := &synth.Tone{Freq: p.Freq, Amplitude: 8000}
	buf := make([]byte, 0, synth.FrameSamples)
	start := time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	sent := 0
	for {
		select {
		case <-p.stop:
			return
		case now := <-tick.C:
			// Catch up when ticks come late, so the sent audio follows real time.
			for due := int(now.Sub(start)/(20*time.Millisecond)) + 1; sent < due; sent++ {
				buf = tone.NextPCMU(buf[:0])
				if track.WriteSample(media.Sample{Data: buf, Duration: 20 * time.Millisecond}) != nil {
					return
				}
				p.mu.Lock()
				p.sent = append(p.sent, time.Now().UnixNano())
				p.mu.Unlock()
			}
		}
	}
}

// SentBetween returns how many 20 ms packets the participant wrote from
// from up to to: what a recorder could have received then. A participant
// starved of CPU writes late, then catches up in a burst, so this may fall
// short of (to - from) / 20 ms.
func (p *Participant) SentBetween(from, to time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, b := from.UnixNano(), to.UnixNano()
	n := 0
	for _, t := range p.sent {
		if t >= a && t < b {
			n++
		}
	}
	return n
}

// Leave stops sending and ends the WHIP session.
func (p *Participant) Leave(ctx context.Context) error {
	var err error
	p.once.Do(func() {
		close(p.stop)
		<-p.done
		err = p.pub.Close(ctx)
	})
	return err
}
