package media

import (
	"runtime"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// TestAudioPipeline_HeldBlockReleasedWhenQuiet: the held packets' payload
// block (heldSlots x heldPayload: 4 KB) is allocated at the first packet an
// Opus track must hold behind a missing one and released once shrinkAfter
// packets (5 s) came in order after the last one held; before, a single
// reordered or lost packet kept it for the rest of the recording. 20
// pipelines, one reordered pair each, then packets in order.
func TestAudioPipeline_HeldBlockReleasedWhenQuiet(t *testing.T) {
	payloads := fecSpeech(t)
	const n = 20
	type track struct {
		m   *Mixer
		p   *AudioPipeline
		pkt *rtp.Packet
	}
	tracks := make([]track, n)
	for i := range tracks {
		m, _, p := newTestPipeline(t, CodecOpus, 8000)
		m.sink = &discardSink{}
		tracks[i] = track{m, p, &rtp.Packet{Header: rtp.Header{SSRC: 1}}}
	}
	write := func(tr track, seq uint16) {
		tr.pkt.SequenceNumber, tr.pkt.Timestamp = seq, uint32(seq)*960
		tr.pkt.Payload = payloads[int(seq)%len(payloads)]
		if err := tr.p.WriteRTP(tr.pkt); err != nil {
			t.Fatal(err)
		}
		if err := tr.m.Step(); err != nil {
			t.Fatal(err)
		}
	}
	tick := func() { // 20 ms on every track's clock
		for _, tr := range tracks {
			c := clockOf(tr.m)
			c.t = c.t.Add(20 * time.Millisecond)
		}
	}
	heap := func() int64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	seq := uint16(0)
	feed := func(k int) {
		for range k {
			tick()
			for _, tr := range tracks {
				write(tr, seq)
			}
			seq++
		}
	}
	feed(len(payloads)) // the decoders' scratch buffers grow once per mode
	tick()
	for _, tr := range tracks { // seq+1 before seq: held
		write(tr, seq+1)
		write(tr, seq)
	}
	tick()
	seq += 2
	if tracks[0].p.held[0].payload == nil {
		t.Fatal("no block after a held packet")
	}
	feed(shrinkAfter - 2) // seq's own write, which decoded seq+1 behind it, was the first in order
	before := heap()
	kept := tracks[0].p.held[0].payload != nil
	feed(1)
	freed := (before - heap()) / n
	runtime.KeepAlive(tracks)
	t.Logf("per track: %d bytes freed at the %dth packet in order after the held one (block %d)", freed, shrinkAfter, heldSlots*heldPayload)
	if !kept {
		t.Errorf("the block was released %d packets in order after the held one, want %d", shrinkAfter-1, shrinkAfter)
	}
	if tracks[0].p.held[0].payload != nil || freed < heldSlots*heldPayload*9/10 {
		t.Errorf("after %d packets in order the block is kept (%d bytes freed per track)", shrinkAfter, freed)
	}
	// Held again: allocated again, and decoded in order.
	tick()
	for _, tr := range tracks {
		write(tr, seq+1)
		write(tr, seq)
	}
	if s := tracks[0].p.Stats(); tracks[0].p.held[0].payload == nil || s.Lost != 0 || s.Late != 0 {
		t.Errorf("after a packet held again: block %v, %+v", tracks[0].p.held[0].payload != nil, s)
	}
}
