package recorder

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/internal/tooltest"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/recorder/conference"
)

// TestManager_StopIsOneInstantForVideoToo: a participant's microphone and
// camera (PCMU and real VP8, 30 frames a second, both read as they are
// sent), and a stop while the microphone's last 400 ms are still on their
// way (held, and read in a burst 250 ms after the stop): the stop's drain
// waits for that audio, and meanwhile the camera's frames from after the
// stop keep coming. The stop is one instant for every track: the video file
// holds the frames sent before it, and none sent after it (it held every
// frame read until the drain ended: 7 or 8 too many).
func TestManager_StopIsOneInstantForVideoToo(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	frames := vp8Frames(t, 4)
	m, fa, _ := newTestManager(t)
	ctx := context.Background()
	rec, err := m.Start(ctx, "org", StartRequest{ApplicationID: "app", ConferenceID: "f", ConversationID: "c", Audio: true, Video: true})
	if err != nil {
		t.Fatal(err)
	}
	mic, ft := newTrack("f", "u1")
	cam := &fakeTrack{ch: make(chan []byte, 4096)}
	fa.sink("f").AddTrack(mic)
	fa.sink("f").AddTrack(&conference.Track{ConferenceID: "f", UserID: "u1", StreamID: "s-u1", TrackID: "video1",
		StreamType: conference.StreamCAM, Kind: conference.KindVideo, Started: time.Now(),
		Codec: conference.Codec{MimeType: "video/VP8", ClockRate: 90000}, Reader: cam})

	start := time.Now()
	stopAt := start.Add(2*time.Second + 16*time.Millisecond) // when the test asks for the stop: between two frames
	var wg sync.WaitGroup
	wg.Add(2)
	var captured []time.Time // each frame's instant, as its timestamp says
	go func() {              // the camera, until a second after the stop
		defer wg.Done()
		seq := uint16(0)
		pay := &codecs.VP8Payloader{EnablePictureID: true}
		for i, frame := range frames {
			at := start.Add(time.Duration(i) * time.Second / 30)
			if at.After(stopAt.Add(time.Second)) {
				return
			}
			time.Sleep(time.Until(at))
			pls := pay.Payload(1200, frame)
			captured = append(captured, at)
			for k, pl := range pls {
				p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(3000 * i),
					SSRC: 77, Marker: k == len(pls)-1}, Payload: pl}
				seq++
				b, _ := p.Marshal()
				cam.ch <- b
			}
		}
	}()
	go func() { // the microphone: its packets sent from 400 ms before the stop are read 250 ms after it
		defer wg.Done()
		tone := &synth.Tone{Freq: 440, Amplitude: 8000}
		var held [][]byte
		for i := 0; ; i++ {
			at := start.Add(time.Duration(i) * 20 * time.Millisecond)
			if at.After(stopAt.Add(time.Second)) {
				return
			}
			time.Sleep(time.Until(at))
			p := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: uint32(160 * i), SSRC: 1234},
				Payload: tone.NextPCMU(nil)}
			b, _ := p.Marshal()
			if at.After(stopAt.Add(-400*time.Millisecond)) && at.Before(stopAt.Add(250*time.Millisecond)) {
				held = append(held, b)
				continue
			}
			for _, h := range held {
				ft.ch <- h
			}
			held = nil
			select {
			case ft.ch <- b:
			default: // detached: nobody reads
			}
		}
	}()
	time.Sleep(time.Until(stopAt))
	got, err := m.Stop(ctx, "org", "c", "rec1", rec.InstanceID)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	var video *Track
	for _, st := range got.Streams {
		for _, tr := range st.Tracks {
			if tr.Kind == conference.KindVideo {
				video = tr
			}
		}
	}
	if video == nil || video.Object == nil {
		t.Fatalf("no video track uploaded: %+v", got.Streams)
	}
	b, _ := m.Bucket(ctx, "app")
	data, err := b.ReadAll(ctx, video.Object.Key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "v.webm")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	// A frame belongs to the recording if its instant is before the stop
	// (sent late by a busy test, it is still placed by its timestamp).
	before := 0
	for _, at := range captured {
		if at.Before(got.Stopped) {
			before++
		}
	}
	n := tooltest.FFProbe(t, path, true).Frames
	t.Logf("the stop came %v after the first frame; %d frames captured before it, %d in the file",
		got.Stopped.Sub(start).Round(time.Millisecond), before, n)
	if n > before+1 {
		t.Errorf("the video file holds %d frames, %d sent after the stop", n, n-before)
	}
	if n < before-1 {
		t.Errorf("the video file holds %d frames of the %d captured before the stop", n, before)
	}
}

// vp8Frames encodes seconds of a test picture as VP8 frames, 30 a second, a
// keyframe every second.
func vp8Frames(t *testing.T, seconds int) [][]byte {
	t.Helper()
	ivf := filepath.Join(t.TempDir(), "in.ivf")
	tooltest.Run(t, "ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-t",
		strconv.Itoa(seconds), "-g", "30", "-b:v", "600k", "-deadline", "realtime",
		"-lag-in-frames", "0", "-c:v", "libvpx", "-auto-alt-ref", "0", "-cpu-used", "8", "-f", "ivf", ivf)
	return mediatest.IVFFrames(t, ivf)
}
