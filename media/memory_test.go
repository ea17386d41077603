package media

import (
	"runtime"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// TestMixInput_MemoryInUse measures the heap an Opus track takes at the
// 8 kHz mix with the default 5 s budget once it decoded a browser's speech
// (in-band FEC: the decoder's LBRR state is there), in the three states a
// track goes through: in step with the mixer (the ring at its initial
// second), while the mixer waits for another track that lags, and after that
// lag. A track whose reader can be woken defers decoding (deferred.go): its
// ring keeps its initial second and the packets beyond wait undecoded, so it
// takes at most 100 KB in every state. Without (a reader that cannot be
// woken) the ring holds the whole budget while the mixer waits (the budget
// plus ringSlack at 8 kHz: 96,000 bytes while it lasts), and shrinks back
// after; what holding the budget adds is then the ring's growth alone. A
// G.711 track defers too, in packets of 20 ms and of 10 ms (the WHIP
// endpoint offers minptime=10): decoded on arrival, its ring holding the
// budget takes 104.4 KB.
func TestMixInput_MemoryInUse(t *testing.T) {
	for _, c := range []struct {
		name     string
		packets  [][]byte
		deferred bool
	}{
		{"decode deferred", fecSpeech(t), true},
		{"decoded on arrival", fecSpeech(t), false},
		{"pcmu, decode deferred", pcmuSpeech(600, 160), true},
		{"pcmu 10 ms, decode deferred", pcmuSpeech(1200, 80), true},
		{"pcmu, decoded on arrival", pcmuSpeech(600, 160), false},
	} {
		t.Run(c.name, func(t *testing.T) { memoryInUse(t, c.packets, c.deferred) })
	}
}

func memoryInUse(t *testing.T, packets [][]byte, deferred bool) {
	codec, perPacket := codecOf(packets), tsStep(packets)
	clock := 48000
	if codec != CodecOpus {
		clock = 8000
	}
	every := time.Duration(perPacket) * time.Second / time.Duration(clock) // a packet's duration
	count := func(d time.Duration) int { return int(d / every) }
	const n = 40
	c := &vclock{t: time.Unix(1_700_000_000, 0)}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	heap := func() int64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc-before.HeapAlloc) / n
	}
	m := NewMixer(MixConfig{Clock: c.now, Start: c.t}, &discardSink{})
	pipes := make([]*AudioPipeline, n)
	for i := range pipes {
		var err error
		pipes[i], err = NewAudioPipeline(AudioPipelineConfig{Codec: codec, Input: m.AddInput(string(rune('a'+i)), InputOptions{})})
		if err != nil {
			t.Fatal(err)
		}
		if deferred {
			pipes[i].EnableDefer()
		}
	}
	fresh := heap()
	seq := 0
	feed := func(count int, step bool) {
		for range count {
			c.t = c.t.Add(every)
			for _, p := range pipes {
				pkt := &rtp.Packet{Header: rtp.Header{SSRC: 1, SequenceNumber: uint16(seq), Timestamp: uint32(perPacket * seq)}, Payload: packets[seq%len(packets)]}
				if err := p.WriteRTP(pkt); err != nil {
					t.Fatal(err)
				}
			}
			seq++
			if step {
				if err := m.Step(); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// In step: the mixer takes each frame as it is due.
	feed(count(6*time.Second), true)
	inStep := heap()
	ringInStep := pipes[0].ring.Cap()
	// The mixer waits (for another track that lags) as long as it may:
	// the budget and readerWait past a frame's end. The track, a join
	// wait ahead of it in step already, piles up 5.5 s of audio.
	feed(count(5*time.Second+readerWait-m.Duration(m.joinWait)), false)
	grown := heap()
	ringGrown := pipes[0].ring.Cap()
	queued := pipes[0].Deferred()
	// The lag ends: the mixer catches up (the readers tick, as they do
	// while packets are deferred), the track goes on in step.
	for range 300 {
		for _, p := range pipes {
			p.Tick()
		}
		if err := m.Step(); err != nil {
			t.Fatal(err)
		}
	}
	feed(shrinkAfter+50, true)
	after := heap()
	ringAfter := pipes[0].ring.Cap()
	runtime.KeepAlive(pipes)
	fed := codec.String() + ": speech" // what the track was fed
	decoder := int64(0)
	if codec == CodecOpus {
		fed += " with FEC"
		decoder = decoderMemory(t, packets)
	}
	t.Logf("%v track at 8 kHz, 5 s budget, %s (heap per track, %d tracks):", codec, t.Name(), n)
	t.Logf("  new (nothing decoded yet)            %6d bytes", fresh)
	t.Logf("  in step %-27s  %6d bytes (ring %d samples)", "("+fed+")", inStep, ringInStep)
	t.Logf("  the mixer waits 5 s for another      %6d bytes (ring %d samples, packets deferred %v)", grown, ringGrown, queued)
	t.Logf("  after the lag                        %6d bytes (ring %d samples)", after, ringAfter)
	t.Logf("  of which the decoder, in use         %6d bytes", decoder)
	for _, p := range pipes {
		if s := p.Stats(); s.Late != 0 || s.Lost != 0 || s.Decoded != uint64(seq) || p.Deferred() {
			t.Fatalf("stats %+v (packets deferred %v): want every packet decoded, none late or lost", s, p.Deferred())
		}
	}
	if deferred {
		if !queued || ringGrown != ringInStep || ringAfter != ringInStep {
			t.Errorf("ring %d samples in step, %d while the mixer waited (packets deferred: %v), %d after: want it to keep its size and the packets deferred", ringInStep, ringGrown, queued, ringAfter)
		}
		for what, b := range map[string]int64{"in step": inStep, "while the mixer waits": grown, "after the lag": after} {
			if b > 100_000 {
				t.Errorf("%s: %d bytes per track, want at most 100 KB", what, b)
			}
		}
		return
	}
	if ringGrown != pipes[0].ring.MaxCap() || ringAfter != ringInStep {
		t.Errorf("ring %d samples in step, %d while the mixer waited, %d after: want it to grow to %d and shrink back", ringInStep, ringGrown, ringAfter, pipes[0].ring.MaxCap())
	}
	for what, b := range map[string]int64{"in step": inStep, "after the lag": after} {
		if b > 100_000 {
			t.Errorf("%s: %d bytes per track, want at most 100 KB", what, b)
		}
	}
	if extra, ring := grown-inStep, int64(2*(ringGrown-ringInStep)); extra > ring+2_000 {
		t.Errorf("holding the budget adds %d bytes per track, the ring's growth %d: something else grew", extra, ring)
	}
}

// decoderMemory returns the heap one 8 kHz Opus decoder of the pipeline
// takes once it decoded packets.
func decoderMemory(t *testing.T, packets [][]byte) int64 {
	const n = 40
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	decs := make([]*opusDecoder, n)
	pcm := make([]int16, 960)
	for i := range decs {
		d, err := newOpusDecoder(8000, true, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range packets[:300] {
			d.DecodeToInt16(p, pcm)
		}
		decs[i] = d
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(decs)
	return int64(after.HeapAlloc-before.HeapAlloc) / n
}
