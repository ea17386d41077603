package media

import (
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// TestMixer_OnTimeTrackKeepsItsAudioWhileTheMixerWaitsTheBudget: while the
// mixer waits the whole budget for an input that writes nothing (a
// participant blacked out: its gate drops every packet), a track in step
// keeps writing; its ring must hold the budget and what the mixer's own
// goroutine adds when it runs late on a loaded machine (here 300 ms once).
// Every packet of the track in step is in the mix; none is dropped for want
// of room (TestEndToEnd_RetroactiveBlackout lost 20-40 ms of the track in
// step so, at load 8-10).
func TestMixer_OnTimeTrackKeepsItsAudioWhileTheMixerWaitsTheBudget(t *testing.T) {
	sink := &captureSink{}
	m, c := newVirtualMixer(MixConfig{SampleRate: 8000}, sink)
	t0 := c.t
	onTime, err := NewAudioPipeline(AudioPipelineConfig{Codec: CodecPCMU, Input: m.AddInput("on time", InputOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	silent, err := NewAudioPipeline(AudioPipelineConfig{Codec: CodecPCMU, Input: m.AddInput("blacked out", InputOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	payload := slices.Repeat([]byte{0x90}, 160)
	const packets = 600 // 12 s
	for i := range packets {
		at := time.Duration(i) * 20 * time.Millisecond
		c.t = t0.Add(at)
		pkt := &rtp.Packet{Header: rtp.Header{SSRC: 1, SequenceNumber: uint16(i), Timestamp: uint32(160 * i)}, Payload: payload}
		if err := onTime.WriteRTP(pkt); err != nil {
			t.Fatal(err)
		}
		if i < 50 { // the other one's first second, then its gate closes
			if err := silent.WriteRTP(pkt); err != nil {
				t.Fatal(err)
			}
		} else if i == 50 {
			silent.Pause()
		}
		// The mixer's goroutine steps every 20 ms, but once, 8 s in, it
		// runs 300 ms late.
		if at < 8*time.Second || at >= 8300*time.Millisecond {
			if err := m.Step(); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.t = t0.Add(packets * 20 * time.Millisecond)
	onTime.Close()
	silent.Close()
	if err := m.Finish(m.Now()); err != nil {
		t.Fatal(err)
	}
	if s := onTime.Stats(); s.Late != 0 || s.Decoded != packets {
		t.Errorf("the track in step: %+v; want all %d packets decoded and none late", s, packets)
	}
	if d := onTime.ring.Dropped(); d != 0 {
		t.Errorf("its ring dropped %d samples", d)
	}
	v := g711.ulaw[0x90]
	holes := 0
	for i, x := range sink.pcm[:min(len(sink.pcm), packets*160)] {
		if x != v && x != 2*v { // the track in step alone, or with the other one's first second
			holes++
			if holes < 5 {
				t.Errorf("mix sample %d (%.3f s): %d, want the track's %d", i, float64(i)/8000, x, v)
			}
		}
	}
	if holes > 0 {
		t.Errorf("%d samples of the mix lack the track in step", holes)
	}
}
