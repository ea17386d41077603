package media

import (
	"testing"
	"time"

	"github.com/pion/rtp"
)

// TestMixer_WaitsForAnInputWhoseReaderStartsBehind: a track joins a running
// mix (b, at 2 s) with its reader 1.5 s behind its socket from its first
// packet (WriteRTPAt: each packet arrived when it was sent and is read 1.5 s
// later, as on a starved recorder: case 5). The mixer waits for b as for any
// input, up to the budget, and every packet lands: none late. Before, an
// input that had written nothing was claimed as silence once the join wait
// (0.5 s) had passed since it was added, so b's first packets came after
// their places were written: 24 late (its first half second); at 400 streams
// every input of a recording that started while the reader was behind was
// claimed so, its packets all late, for the whole recording.
func TestMixer_WaitsForAnInputWhoseReaderStartsBehind(t *testing.T) {
	packets := fecSpeech(t)
	const lag, join = 1500, 2000 // ms
	m, c := newVirtualMixer(MixConfig{SampleRate: 8000}, &discardSink{})
	t0 := c.t
	add := func(id string) *AudioPipeline {
		p, err := NewAudioPipeline(AudioPipelineConfig{Codec: CodecOpus, Input: m.AddInput(id, InputOptions{})})
		if err != nil {
			t.Fatal(err)
		}
		p.EnableDefer()
		return p
	}
	a := add("a")
	var b *AudioPipeline
	for ms := 0; ms <= 10000; ms += 5 {
		c.t = t0.Add(time.Duration(ms) * time.Millisecond)
		if ms == join {
			b = add("b")
		}
		if ms%20 == 10 { // a's packet n arrives 10 ms after it was sent, read at once
			n := ms / 20
			if err := a.WriteRTP(&rtp.Packet{Header: rtp.Header{SSRC: 1, SequenceNumber: uint16(n), Timestamp: uint32(960 * n)}, Payload: packets[n%len(packets)]}); err != nil {
				t.Fatal(err)
			}
		}
		// b's packet k arrived at join+20k+10 ms and is read lag later.
		if sent := ms - join - lag; b != nil && sent >= 10 && sent%20 == 10 {
			k := sent / 20
			pkt := &rtp.Packet{Header: rtp.Header{SSRC: 2, SequenceNumber: uint16(k), Timestamp: uint32(960 * k)}, Payload: packets[(k+50)%len(packets)]}
			if err := b.WriteRTPAt(pkt, t0.Add(time.Duration(join+sent)*time.Millisecond)); err != nil {
				t.Fatal(err)
			}
		}
		if ms%20 == 0 {
			if err := m.Step(); err != nil {
				t.Fatal(err)
			}
		}
	}
	sa, sb := a.Stats(), b.Stats()
	closeAll(t, m, []*AudioPipeline{a, b})
	if sb.Late != 0 || sb.Decoded != sb.Packets || sa.Late != 0 {
		t.Errorf("b (its reader 1.5 s behind from its first packet): %d packets, %d decoded, %d late; a: %d late: want every packet decoded, none late", sb.Packets, sb.Decoded, sb.Late, sa.Late)
	}
}
