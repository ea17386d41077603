package media

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"

	itu "github.com/rtcrec/recorder/media/g711"
)

// TestAudioPipeline_DeferredDecodeLosesNothing: while the mixer waits for a
// track that lags (b: a 4 s network stall, then a burst, within the 5 s
// budget), the track in step (a: speech with in-band FEC) queues its packets
// undecoded (deferred.go), but one of its packets, for a place just before b's
// stall, comes 1.5 s late; then a itself stalls for 2.5 s, delivering the
// packets of the stall in a burst at its end, while the mixer moves toward
// the audio a queued. With a's reader ticking every 100 ms while packets are
// deferred and none comes (as the recorder's reader does: it reads with a
// deadline then), the mix is the very mix of decoding on arrival, to the
// sample, and nothing is late or lost. Without the ticks, the audio a queued
// in time is decoded only when a's next packet comes, after the mixer gave up
// waiting for it: the mix lacks it (which is why the reader must tick).
// The same for G.711 tracks (PCMU), which defer too.
func TestAudioPipeline_DeferredDecodeLosesNothing(t *testing.T) {
	t.Run("opus", func(t *testing.T) { deferredLosesNothing(t, fecSpeech(t)) })
	t.Run("pcmu", func(t *testing.T) { deferredLosesNothing(t, pcmuSpeech(600, 160)) })
}

// pcmuSpeech returns n PCMU packets of size samples (160: 20 ms), each a
// tone of its own frequency and level, seamless.
func pcmuSpeech(n, size int) [][]byte {
	out := make([][]byte, n)
	phase := 0.0
	for i := range out {
		f, a := 300+float64(i%37)*40, 2000+float64(i%11)*2000
		p := make([]byte, size)
		for j := range p {
			p[j] = itu.EncodeMuLaw(int16(a * math.Sin(phase)))
			phase += 2 * math.Pi * f / 8000
		}
		out[i] = p
	}
	return out
}

func deferredLosesNothing(t *testing.T, packets [][]byte) {
	want, sw := deferredScenario(t, packets, false, false)
	if sw.Late != 0 || sw.Lost != 0 {
		t.Fatalf("decoding on arrival: stats of a %+v: want nothing late or lost (every packet came within the budget)", sw)
	}
	got, sa := deferredScenario(t, packets, true, true)
	if sa.Late != 0 || sa.Lost != 0 || sa.Shed != 0 {
		t.Errorf("deferred, ticking: stats of a %+v: want nothing late, lost or shed", sa)
	}
	if len(got) != len(want) || !slices.Equal(got, want) {
		t.Errorf("deferred, ticking: the mix differs from decoding on arrival (%d samples, %d differ; %d samples on arrival)", len(got), differ(got, want), len(want))
	}
	noTick, sn := deferredScenario(t, packets, true, false)
	t.Logf("without ticks: stats of a %+v, %d of %d samples differ", sn, differ(noTick, want), len(want))
	if sn.Late == 0 || differ(noTick, want) == 0 {
		t.Errorf("without ticks the queued audio should come too late for the mixer (stats %+v): the scenario no longer tests the ticks", sn)
	}
}

func differ(a, b []int16) int {
	n := max(len(a), len(b)) - min(len(a), len(b))
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

// deferredScenario runs the scenario of TestAudioPipeline_DeferredDecodeLosesNothing
// and returns the mix and a's stats.
func deferredScenario(t *testing.T, packets [][]byte, deferred, tick bool) ([]int16, PipelineStats) {
	sink := &captureSink{}
	m, c, pipes := twoTracks(t, sink, codecOf(packets), deferred)
	step := tsStep(packets)
	t0 := c.t
	const total = 600 // 12 s of 20 ms packets
	// arrival of packet n of track i, in ms: 10 ms of transit, and a
	// stall that delivers what was sent during it at its end.
	arrival := func(i, n int) int {
		at := n*20 + 10
		if i == 0 && n == 95 {
			// Reordered: it comes 1.5 s late, for a place the mixer,
			// waiting for b, is about to need while a defers.
			return 3400
		}
		from, to := 2000, 6000 // b
		if i == 0 {
			from, to = 6000, 8500
		}
		if at >= from && at < to {
			return to
		}
		return at
	}
	// The packets of each track in the order they arrive.
	var order [2][]int
	for i := range order {
		for n := range total {
			order[i] = append(order[i], n)
		}
		slices.SortStableFunc(order[i], func(x, y int) int { return arrival(i, x) - arrival(i, y) })
	}
	next := [2]int{}
	lastTick := 0
	for ms := 0; ms <= total*20+6000; ms += 5 {
		c.t = t0.Add(time.Duration(ms) * time.Millisecond)
		got := false
		for i, p := range pipes {
			for next[i] < total && arrival(i, order[i][next[i]]) <= ms {
				n := order[i][next[i]]
				pkt := &rtp.Packet{Header: rtp.Header{SSRC: uint32(i + 1), SequenceNumber: uint16(n), Timestamp: uint32(step * n)}, Payload: packets[(n+100*i)%len(packets)]}
				if err := p.WriteRTP(pkt); err != nil {
					t.Fatal(err)
				}
				next[i]++
				got = got || i == 0
			}
		}
		if got {
			lastTick = ms
		} else if tick && pipes[0].Deferred() && ms-lastTick >= 100 {
			pipes[0].Tick() // a's reader: its read with a deadline timed out
			lastTick = ms
		}
		if ms%20 == 0 {
			if err := m.Step(); err != nil {
				t.Fatal(err)
			}
		}
	}
	closeAll(t, m, pipes[:])
	if deferred && pipes[0].dq.q == nil {
		t.Fatal("a never deferred a packet: the scenario does not test deferring")
	}
	return sink.pcm, pipes[0].Stats()
}

// TestAudioPipeline_DeferredZeroAllocs: deferring a packet, and processing
// the deferred ones as the mixer catches up, allocate nothing per packet
// (the queue is allocated when the track begins to defer).
func TestAudioPipeline_DeferredZeroAllocs(t *testing.T) {
	packets := fecSpeech(t)
	m, c := newVirtualMixer(MixConfig{SampleRate: 8000}, &discardSink{})
	p, err := NewAudioPipeline(AudioPipelineConfig{Codec: CodecOpus, Input: m.AddInput("a", InputOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	p.EnableDefer()
	pkt := &rtp.Packet{Header: rtp.Header{SSRC: 1}}
	i := 0
	write := func(step bool) {
		c.t = c.t.Add(20 * time.Millisecond)
		pkt.Payload = packets[i%len(packets)]
		if err := p.WriteRTP(pkt); err != nil {
			t.Fatal(err)
		}
		pkt.SequenceNumber++
		pkt.Timestamp += 960
		i++
		if step {
			p.Tick()
			if err := m.Step(); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range len(packets) { // warm the decoder up over the whole stream
		write(true)
	}
	for range 50 { // the mixer waits: the track begins to defer
		write(false)
	}
	if !p.Deferred() {
		t.Fatal("no packet deferred while the mixer waited")
	}
	if a := testing.AllocsPerRun(150, func() { write(false) }); a != 0 {
		t.Errorf("WriteRTP deferring allocates %.2f times per packet, want 0", a)
	}
	if a := testing.AllocsPerRun(100, func() { write(true) }); a != 0 {
		t.Errorf("WriteRTP+Tick+Step catching up allocate %.2f times per packet, want 0", a)
	}
	if s := p.Stats(); s.Late != 0 || s.Lost != 0 {
		t.Errorf("stats %+v: want nothing late or lost", s)
	}
}

// TestAudioPipeline_DeferredDecodeSurvivesAStarvedReader: the mixer stays
// 4.8 s behind (b: on time for 2 s, then 4.8 s late for good, within the 5 s
// budget), so a, in step, queues its packets undecoded; from 3 s on a's
// reader is starved of CPU: it runs only every 1.1 s, reading what its
// socket received meanwhile (with their receive times: WriteRTPAt), and
// never ticks in between. A packet a queued becomes due deferAhead (0.75 s)
// before the mixer may give up on it, less than the reader's gaps: queued
// as before, part of a's audio would be given up on (seen: late 129, shed
// 121, 18823 of 144000 samples differ). A reader that knows it is behind its socket keeps that
// much more decoded ahead of the mixer, so the mix is the very mix of
// decoding on arrival, and nothing of a is late.
func TestAudioPipeline_DeferredDecodeSurvivesAStarvedReader(t *testing.T) {
	packets := fecSpeech(t)
	want, sw := starvedDeferScenario(t, packets, false)
	if sw.Late != 0 || sw.Lost != 0 {
		t.Fatalf("decoding on arrival: stats of a %+v: want nothing late or lost", sw)
	}
	got, sa := starvedDeferScenario(t, packets, true)
	t.Logf("deferred: stats of a %+v; %d of %d samples differ from decoding on arrival", sa, differ(got, want), len(want))
	if sa.Late != 0 || sa.Lost != 0 || sa.Shed != 0 || sa.Deferred == 0 {
		t.Errorf("deferred: stats of a %+v: want packets deferred, none late, lost or shed", sa)
	}
	if !slices.Equal(got, want) {
		t.Errorf("deferred: the mix differs from decoding on arrival (%d of %d samples)", differ(got, want), len(want))
	}
}

// starvedDeferScenario runs the scenario of
// TestAudioPipeline_DeferredDecodeSurvivesAStarvedReader and returns the mix
// and a's stats.
func starvedDeferScenario(t *testing.T, packets [][]byte, deferred bool) ([]int16, PipelineStats) {
	sink := &captureSink{}
	m, c, pipes := twoTracks(t, sink, CodecOpus, deferred)
	t0 := c.t
	const total = 600 // 12 s of 20 ms packets
	// received(i, n): when packet n of track i reached the machine, in ms.
	received := func(i, n int) int {
		at := n*20 + 10
		if i == 1 && at >= 2000 {
			at += 4800
		}
		return at
	}
	// a's reader runs every 5 ms until 3 s, then every 1.1 s; b's always.
	runs := func(i, ms int) bool { return i == 1 || ms < 3000 || (ms-3000)%1100 == 0 }
	next := [2]int{}
	lastTick := 0
	for ms := 0; ms <= total*20+6000; ms += 5 {
		c.t = t0.Add(time.Duration(ms) * time.Millisecond)
		for i, p := range pipes {
			if !runs(i, ms) {
				continue
			}
			for next[i] < total && received(i, next[i]) <= ms {
				n := next[i]
				pkt := &rtp.Packet{Header: rtp.Header{SSRC: uint32(i + 1), SequenceNumber: uint16(n), Timestamp: uint32(960 * n)}, Payload: packets[(n+100*i)%len(packets)]}
				if err := p.WriteRTPAt(pkt, t0.Add(time.Duration(received(i, n))*time.Millisecond)); err != nil {
					t.Fatal(err)
				}
				next[i]++
				if i == 0 {
					lastTick = ms
				}
			}
		}
		if runs(0, ms) && pipes[0].Deferred() && ms-lastTick >= 50 {
			pipes[0].Tick() // a's reader, when it runs: its read with a deadline timed out
			lastTick = ms
		}
		if ms%20 == 0 {
			if err := m.Step(); err != nil {
				t.Fatal(err)
			}
		}
	}
	closeAll(t, m, pipes[:])
	return sink.pcm, pipes[0].Stats()
}

// codecOf and tsStep tell the test packets of a scenario apart: PCMU's
// (pcmuSpeech) are all 80 or 160 bytes (10 or 20 ms at 8 kHz), Opus's
// (fecSpeech: 20 ms) vary. tsStep is a packet's RTP timestamp step.
func codecOf(packets [][]byte) Codec {
	if n := len(packets[0]); (n == 80 || n == 160) && len(packets[1]) == n {
		return CodecPCMU
	}
	return CodecOpus
}

func tsStep(packets [][]byte) int {
	if codecOf(packets) == CodecPCMU {
		return len(packets[0])
	}
	return 960
}

// twoTracks returns a mixer on a virtual clock and the pipelines (codec) of
// its two tracks, a and b, deferring their decoding if deferred.
func twoTracks(t *testing.T, sink FrameSink, codec Codec, deferred bool) (*Mixer, *vclock, [2]*AudioPipeline) {
	m, c := newVirtualMixer(MixConfig{SampleRate: 8000}, sink)
	var pipes [2]*AudioPipeline
	for i := range pipes {
		p, err := NewAudioPipeline(AudioPipelineConfig{Codec: codec, Input: m.AddInput(string(rune('a'+i)), InputOptions{})})
		if err != nil {
			t.Fatal(err)
		}
		if deferred {
			p.EnableDefer()
		}
		pipes[i] = p
	}
	return m, c, pipes
}

// closeAll closes pipes, removes their inputs and finishes the mix at the
// mixer's now, as a recording stops.
func closeAll(t *testing.T, m *Mixer, pipes []*AudioPipeline) {
	for _, p := range pipes {
		p.Close()
		m.RemoveInput(p.input)
	}
	if err := m.Finish(m.Now()); err != nil {
		t.Fatal(err)
	}
}
