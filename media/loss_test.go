package media

import (
	"cmp"
	"slices"
	"strings"
	"testing"
	"time"
)

// pcmuPackets returns n PCMU packets of d each (a tone), sent in real time.
func pcmuPackets(n int, d time.Duration) []timedPacket {
	per := int(d * 8000 / time.Second)
	payloads := make([][]byte, n)
	for i := range payloads {
		b := make([]byte, per)
		for j := range b {
			b[j] = byte(0x80 | (i+j)&0x0f) // any audio: the counts are what is checked
		}
		payloads[i] = b
	}
	return packetize(payloads, 8000, 1, 0, 0, uint32(per))
}

// TestAudioPipeline_CountsLostExactly leaves out known sequence numbers (in
// the middle, at the end, around a pause, a new source, a timestamp jump and
// a long outage) and checks the exact counts: every sequence number the
// pipeline gives up on is Lost once, a packet that came after its place was
// written is Late, and the packets the gate dropped during a pause are not
// lost.
func TestAudioPipeline_CountsLostExactly(t *testing.T) {
	opus := opusBeeps(t, 3*time.Second)
	tests := []struct {
		name    string
		latency time.Duration
		pkts    func() []timedPacket
		drop    func(i int) bool      // left out by the network
		gated   func(i int) bool      // dropped by the pause gate (not given to the pipeline)
		resync  int                   // index of the first packet after a pause (0: none)
		mod     func(tp *timedPacket) // changes a packet (index from the sequence number)
		total   time.Duration
		lost    uint64
		late    uint64
		conceal int64 // -1: not checked
	}{
		{name: "1 % of 10 ms packets over 5 s (more than the sequence window waits)",
			pkts: func() []timedPacket { return pcmuPackets(500, 10*time.Millisecond) },
			drop: func(i int) bool { return i%100 == 50 }, total: 5100 * time.Millisecond, lost: 5, conceal: -1},
		{name: "holes just before the end",
			pkts: func() []timedPacket { return pcmuPackets(250, 20*time.Millisecond) },
			drop: func(i int) bool { return i >= 240 && i <= 242 || i == 248 }, total: 5100 * time.Millisecond, lost: 4, conceal: -1},
		{name: "a packet later than the budget is lost and late",
			latency: time.Second,
			pkts: func() []timedPacket {
				p := pcmuPackets(250, 20*time.Millisecond)
				p[100].at += 1500 * time.Millisecond
				return p
			}, total: 5100 * time.Millisecond, lost: 1, late: 1, conceal: -1},
		{name: "a packet within the budget is neither",
			pkts: func() []timedPacket {
				p := pcmuPackets(250, 20*time.Millisecond)
				p[100].at += 500 * time.Millisecond
				return p
			}, total: 5100 * time.Millisecond, conceal: -1},
		{name: "around a pause: the gated packets are not lost",
			pkts:   func() []timedPacket { return pcmuPackets(250, 20*time.Millisecond) },
			drop:   func(i int) bool { return i == 98 || i == 151 },
			gated:  func(i int) bool { return i >= 100 && i < 150 },
			resync: 150, total: 5100 * time.Millisecond, lost: 2, conceal: -1},
		{name: "the last packet before a pause is unknowable",
			pkts:   func() []timedPacket { return pcmuPackets(250, 20*time.Millisecond) },
			drop:   func(i int) bool { return i == 99 },
			gated:  func(i int) bool { return i >= 100 && i < 150 },
			resync: 150, total: 5100 * time.Millisecond, lost: 0, conceal: -1},
		{name: "a new source",
			pkts: func() []timedPacket { return pcmuPackets(250, 20*time.Millisecond) },
			drop: func(i int) bool { return i == 97 || i == 102 },
			mod: func(tp *timedPacket) {
				if tp.pkt.SequenceNumber >= 100 {
					tp.pkt.SSRC, tp.pkt.SequenceNumber, tp.pkt.Timestamp = 2, tp.pkt.SequenceNumber+30000, tp.pkt.Timestamp+99999
				}
			}, total: 5100 * time.Millisecond, lost: 2, conceal: -1},
		{name: "a timestamp jump re-anchors",
			pkts: func() []timedPacket { return pcmuPackets(250, 20*time.Millisecond) },
			drop: func(i int) bool { return i >= 99 && i <= 101 },
			mod: func(tp *timedPacket) {
				if tp.pkt.SequenceNumber >= 100 {
					tp.pkt.Timestamp += 3600 * 8000
				}
			}, total: 5100 * time.Millisecond, lost: 3, conceal: -1},
		{name: "a 3 s outage",
			pkts: func() []timedPacket { return pcmuPackets(300, 20*time.Millisecond) },
			drop: func(i int) bool { return i >= 100 && i < 250 }, total: 6100 * time.Millisecond, lost: 150, conceal: -1},
		{name: "Opus: three in a row are concealed",
			pkts: func() []timedPacket { return packetize(opus, 48000, 7, 0, 0, 0) },
			drop: func(i int) bool { return i >= 50 && i <= 52 }, total: 3100 * time.Millisecond, lost: 3, conceal: 3},
		{name: "Opus: reordered within the hold window",
			pkts: func() []timedPacket {
				p := packetize(opus, 48000, 7, 0, 0, 0)
				p[60].at += 100 * time.Millisecond
				return p
			}, total: 3100 * time.Millisecond, conceal: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newVirtualMixer(MixConfig{SampleRate: 8000, Latency: tt.latency}, &captureSink{})
			codec := CodecPCMU
			if strings.HasPrefix(tt.name, "Opus") {
				codec = CodecOpus
			}
			all := tt.pkts()
			p, err := NewAudioPipeline(AudioPipelineConfig{Codec: codec, Input: m.AddInput("track", InputOptions{})})
			if err != nil {
				t.Fatal(err)
			}
			var pkts []timedPacket
			var resyncAt time.Duration = -1
			for i, tp := range all {
				if tt.mod != nil {
					tt.mod(&tp)
				}
				if i == tt.resync && tt.resync > 0 {
					resyncAt = tp.at
				}
				if tt.drop != nil && tt.drop(i) || tt.gated != nil && tt.gated(i) {
					continue
				}
				pkts = append(pkts, tp)
			}
			slices.SortStableFunc(pkts, func(a, b timedPacket) int { return cmp.Compare(a.at, b.at) })
			c := clockOf(m)
			t0 := m.Config().Start
			i := 0
			for now := time.Duration(0); now < tt.total; now += m.Config().Frame {
				for i < len(pkts) && pkts[i].at <= now {
					c.t = t0.Add(pkts[i].at)
					if pkts[i].at == resyncAt {
						p.Resync()
					}
					if err := p.WriteRTP(pkts[i].pkt); err != nil {
						t.Fatal(err)
					}
					i++
				}
				c.t = t0.Add(now)
				if err := m.Step(); err != nil {
					t.Fatal(err)
				}
			}
			c.t = t0.Add(tt.total)
			p.Close()
			s := p.Stats()
			if s.Lost != tt.lost || s.Late != tt.late {
				t.Errorf("lost %d, late %d; want %d and %d (%+v)", s.Lost, s.Late, tt.lost, tt.late, s)
			}
			if tt.conceal >= 0 && s.Concealed != uint64(tt.conceal) {
				t.Errorf("concealed %d, want %d (%+v)", s.Concealed, tt.conceal, s)
			}
			// Every packet given is decoded, but those whose place was
			// written whole before they came: dropped undecoded (shed).
			if want := uint64(len(pkts)); s.Decoded+s.Shed != want || s.Shed > s.Late {
				t.Errorf("decoded %d and shed %d (of %d late), want every packet given: %d (%+v)", s.Decoded, s.Shed, s.Late, want, s)
			}
			p.Close() // idempotent: counts nothing again
			if s2 := p.Stats(); s2 != s {
				t.Errorf("a second Close changed the counters: %+v, then %+v", s, s2)
			}
		})
	}
}

// TestAudioPipeline_PlacedBySenderReport sends packets that arrive 80 ms
// after they were sent: with the sender's RTCP sender report (before the
// first packet, or while the anchor settles) the track is placed where the
// sender's clock says, without one at its arrival, and with a report from a
// clock 10 s off also at its arrival.
func TestAudioPipeline_PlacedBySenderReport(t *testing.T) {
	const sent, delay = 100 * time.Millisecond, 80 * time.Millisecond
	tests := []struct {
		name   string
		srAt   time.Duration // when the report is given (-1: never)
		srOff  time.Duration // the sender's clock against ours
		origin time.Duration // where the first packet lands
		bySR   uint64
	}{
		{"report before the first packet", 0, 0, sent, 1},
		{"report while settling", sent + delay + 200*time.Millisecond, 0, sent, 1},
		{"no report", -1, 0, sent + delay, 0},
		{"a clock 10 s off", 0, 10 * time.Second, sent + delay, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newVirtualMixer(MixConfig{SampleRate: 8000}, &captureSink{})
			p, err := NewAudioPipeline(AudioPipelineConfig{Codec: CodecPCMU, Input: m.AddInput("track", InputOptions{})})
			if err != nil {
				t.Fatal(err)
			}
			pkts := pcmuPackets(100, 20*time.Millisecond)
			for i := range pkts {
				pkts[i].at += sent + delay
				pkts[i].pkt.Timestamp += 1000
			}
			c, t0 := clockOf(m), m.Config().Start
			given := false
			report := func() {
				if tt.srAt >= 0 && !given {
					given = true // the sender's clock read t0+sent+srOff at timestamp 1000
					p.SenderReport(1, t0.Add(sent+tt.srOff), 1000)
				}
			}
			for _, tp := range pkts {
				c.t = t0.Add(tp.at)
				if tp.at >= tt.srAt {
					report()
				}
				if err := p.WriteRTP(tp.pkt); err != nil {
					t.Fatal(err)
				}
				if err := m.Step(); err != nil {
					t.Fatal(err)
				}
			}
			p.Close()
			pos, ok := p.Origin()
			if want := int64(tt.origin * 8000 / time.Second); !ok || pos != want {
				t.Errorf("origin %d (%v), want %d", pos, ok, want)
			}
			if s := p.Stats(); s.BySR != tt.bySR || s.Lost != 0 || s.Late != 0 {
				t.Errorf("stats %+v: want %d anchors by the report, nothing lost or late", s, tt.bySR)
			}
		})
	}
}

// TestAudioPipeline_LostOpusPacketRecoveredFromFEC: speech from a real
// encoder with in-band FEC on (as a browser sends it, useinbandfec=1)
// through the pipeline, every tenth packet lost. The packet after a lost one
// waits in the reorder window for it, then the pipeline decodes the lost
// one's audio from its FEC where it carries some (Recovered) and conceals the
// others (Concealed). Against a run without loss, the recovered frames are
// close (SNR), and far closer than the concealed ones.
func TestAudioPipeline_LostOpusPacketRecoveredFromFEC(t *testing.T) {
	packets := fecSpeech(t)
	run := func(lose bool) ([]int16, PipelineStats) {
		m, sink, p := newTestPipeline(t, CodecOpus, 8000)
		var pkts []timedPacket
		for i, tp := range packetize(packets, 48000, 7, 100, 5000, 960) {
			if !lose || i%10 != 5 {
				pkts = append(pkts, tp)
			}
		}
		simulate(t, m, p, pkts, 20200*time.Millisecond)
		return sink.pcm, p.Stats()
	}
	ref, _ := run(false)
	got, st := run(true)
	if len(got) != len(ref) {
		t.Fatalf("mix of %d samples with loss, %d without", len(got), len(ref))
	}
	probe, _ := newOpusDecoder(8000, true, true) // which lost packets the next one's FEC recovers
	buf := make([]int16, 960)
	var recovered, concealed []int
	for i, pk := range packets {
		if i%10 == 5 && i+1 < len(packets) {
			if probe.DecodeFEC(packets[i+1], buf) > 0 {
				recovered = append(recovered, i)
			} else {
				concealed = append(concealed, i)
			}
			continue
		}
		probe.DecodeToInt16(pk, buf)
	}
	snrRec, snrCon := snrOver(ref, got, recovered, 0), snrOver(ref, got, concealed, 0)
	t.Logf("%+v; SNR of the %d frames recovered from FEC %.1f dB, of the %d concealed %.1f dB", st, len(recovered), snrRec, len(concealed), snrCon)
	if st.Recovered != uint64(len(recovered)) || st.Concealed != uint64(len(concealed)) {
		t.Errorf("recovered %d and concealed %d packets, want %d and %d", st.Recovered, st.Concealed, len(recovered), len(concealed))
	}
	if snrRec < 10 {
		t.Errorf("the frames recovered from FEC: %.1f dB against the mix without loss, want 10 dB or more", snrRec)
	}
}
