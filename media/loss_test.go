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
			if want := uint64(len(pkts)); s.Decoded != want {
				t.Errorf("decoded %d, want every packet given: %d (%+v)", s.Decoded, want, s)
			}
			p.Close() // idempotent: counts nothing again
			if s2 := p.Stats(); s2 != s {
				t.Errorf("a second Close changed the counters: %+v, then %+v", s, s2)
			}
		})
	}
}
