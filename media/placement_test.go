package media

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// placementCase is one track joining a running mixer: the timeline instant
// it is added, when its sender captured its first packet (on the recording's
// timeline: the truth), when each packet is read, an optional sender report
// and an optional pause.
type placementCase struct {
	name   string
	join   time.Duration                          // the track is added to the mixer
	sent   time.Duration                          // its first packet was captured (may be before 0)
	arrive func(sent time.Duration) time.Duration // when the packet captured at sent reaches the machine (read then, or at the join if later)
	// received: the pipeline is told when each packet reached the machine
	// (WriteRTPAt), which for a packet from before the join is before it.
	received bool
	sr       bool             // a sender report (the sender's clock is ours) before the first packet
	srLate   time.Duration    // how late that report is stamped
	pause    [2]time.Duration // the gate drops packets whose audio begins within (zero: none)
	total    time.Duration
	onsets   []time.Duration // where the mix's beeps begin: the truth
	origin   time.Duration   // where the track's first sample goes (its file's time zero)
	before   uint64          // packets left out of the mix: before the track's start in it
}

// runPlacement plays the 440 Hz Opus beeps (200 ms every 500 ms of the
// sender's clock) of a track as tc describes, on a virtual clock, and
// returns the mix and the pipeline.
func runPlacement(t *testing.T, payloads [][]byte, tc placementCase) ([]int16, *AudioPipeline) {
	t.Helper()
	sink := &captureSink{}
	m, c := newVirtualMixer(MixConfig{SampleRate: 8000}, sink)
	t0 := m.Config().Start
	pkts := packetize(payloads, 48000, 7, 100, 90000, 0)
	for i := range pkts {
		sent := tc.sent + pkts[i].at
		pkts[i].at = tc.arrive(sent)
	}
	slices.SortStableFunc(pkts, func(a, b timedPacket) int { return int(a.at - b.at) })
	var p *AudioPipeline
	gated := false
	i := 0
	for now := time.Duration(0); now < tc.total; now += 20 * time.Millisecond {
		if p == nil && now >= tc.join {
			c.t = t0.Add(tc.join)
			var err error
			if p, err = NewAudioPipeline(AudioPipelineConfig{Codec: CodecOpus, Input: m.AddInput("track", InputOptions{})}); err != nil {
				t.Fatal(err)
			}
			if tc.sr { // the sender's clock read the first packet's capture instant at its timestamp
				p.SenderReport(7, t0.Add(tc.sent+tc.srLate), 90000)
			}
		}
		for p != nil && i < len(pkts) && pkts[i].at <= now {
			c.t = t0.Add(max(pkts[i].at, tc.join))
			pkt := pkts[i].pkt
			i++
			if tc.pause[1] > 0 { // the recorder's gate: by where the audio begins (PlaceOf)
				at := time.Duration(-1)
				if pos, ok := p.PlaceOf(pkt.Timestamp); ok {
					at = m.Duration(pos)
				}
				if at < 0 {
					at = pkts[i-1].at // unknown: by its arrival
				}
				if at >= tc.pause[0] && at < tc.pause[1] {
					if !gated {
						gated = true
						p.Pause()
					}
					continue
				}
				if gated {
					gated = false
					p.Resync()
				}
			}
			write := p.WriteRTP
			if tc.received {
				arrived := t0.Add(pkts[i-1].at)
				write = func(pkt *rtp.Packet) error { return p.WriteRTPAt(pkt, arrived) }
			}
			if err := write(pkt); err != nil {
				t.Fatal(err)
			}
		}
		c.t = t0.Add(now)
		if err := m.Step(); err != nil {
			t.Fatal(err)
		}
	}
	c.t = t0.Add(tc.total)
	p.Close()
	m.RemoveInput(p.input)
	if err := m.Finish(m.Now()); err != nil {
		t.Fatal(err)
	}
	return sink.pcm, p
}

// checkOnsets checks that the 440 Hz beeps in pcm (8 kHz) begin at want,
// each within 10 ms (one 10 ms block either way).
func checkOnsets(t *testing.T, pcm []int16, want []time.Duration) {
	t.Helper()
	act := fillHoles(activity(pcm, 8000, 440, 80), 3)
	on := onsets(act)
	got := make([]time.Duration, len(on))
	for i, o := range on {
		got[i] = time.Duration(o) * 10 * time.Millisecond
	}
	if len(got) != len(want) {
		t.Fatalf("beeps begin at %v, want %v", got, want)
	}
	for i := range got {
		if d := got[i] - want[i].Truncate(10*time.Millisecond); d < -10*time.Millisecond || d > 10*time.Millisecond {
			t.Errorf("beep %d begins at %v, want %v (within 10 ms)", i, got[i], want[i])
		}
	}
}

// beepOnsets returns where the 6 s of beeps of a sender whose first packet
// is placed at sent begin on the timeline up to to, from on: a beep cut off
// at from or by a cut (a pause) begins where the cut ends, one within a cut
// is left out.
func beepOnsets(sent, from, to time.Duration, cut [2]time.Duration) []time.Duration {
	var out []time.Duration
	for b := sent; b < min(to, sent+6*time.Second); b += 500 * time.Millisecond {
		on, end := max(b, from), b+200*time.Millisecond
		if cut[1] > 0 && on >= cut[0] && on < cut[1] {
			on = cut[1]
		}
		if on < end {
			out = append(out, on)
		}
	}
	return out
}

// TestAudioPipeline_PlacedWhereItWasCaptured: a track is placed on the
// recording's timeline by its own timestamps, mapped to the recording's
// clock by its sender report or else by its least-late packet, however its
// first packets reach the recorder: read late, a backlog delivered at once
// at the start or when the track joins a running recording, sent before
// the recording's time zero. Its beeps begin in the mix where its sender
// captured them (within 10 ms); nothing is stretched or re-anchored; audio
// from before the track's start in the mix (the recording's time zero, or
// the join wait before the track was added) is left out and counted; and a
// pause does not move the track against its timestamps (no jump at the
// resume).
func TestAudioPipeline_PlacedWhereItWasCaptured(t *testing.T) {
	payloads := opusBeeps(t, 6*time.Second)
	ms := time.Millisecond
	tests := []placementCase{
		{name: "first packet read 350 ms late",
			join: 0, sent: 0, arrive: func(s time.Duration) time.Duration { return max(s, 350*ms) },
			total: 5200 * ms, onsets: beepOnsets(0, 0, 5200*ms, [2]time.Duration{})},
		{name: "a 500 ms backlog delivered at once at the start",
			join: 0, sent: -500 * ms, arrive: func(s time.Duration) time.Duration { return max(s, 0) },
			total: 5200 * ms, onsets: beepOnsets(-500*ms, 0, 5200*ms, [2]time.Duration{}), origin: -500 * ms, before: 25},
		{name: "joins at 2 s with a 400 ms backlog delivered at once",
			join: 2000 * ms, sent: 1600 * ms, arrive: func(s time.Duration) time.Duration { return max(s, 2000*ms) },
			total: 7800 * ms, onsets: beepOnsets(1600*ms, 0, 7800*ms, [2]time.Duration{}), origin: 1600 * ms},
		// A first packet 540-720 ms late (a publisher or reader short
		// of CPU at connect) is within the join wait (760 ms): all of
		// it lands where it was captured, as in the track's file. (At
		// half a second, its first 200 ms were left out: before 10.)
		// (A backlog of over a second delivered at once lies beyond
		// what a packet may be placed ahead of its arrival, and
		// re-anchors, whatever the join wait.)
		{name: "joins at 2 s with a 700 ms backlog delivered at once",
			join: 2000 * ms, sent: 1300 * ms, arrive: func(s time.Duration) time.Duration { return max(s, 2000*ms) },
			total: 7500 * ms, onsets: beepOnsets(1300*ms, 0, 7500*ms, [2]time.Duration{}), origin: 1300 * ms},
		{name: "joins at 2 s with a 900 ms backlog: what is older than the join wait is left out",
			join: 2000 * ms, sent: 1100 * ms, arrive: func(s time.Duration) time.Duration { return max(s, 2000*ms) },
			total: 7500 * ms, onsets: beepOnsets(1100*ms, 1240*ms, 7500*ms, [2]time.Duration{}), origin: 1100 * ms, before: 7},
		{name: "joins at 100 ms, sending since -33 ms, first read 120 ms late",
			join: 100 * ms, sent: -33 * ms, arrive: func(s time.Duration) time.Duration { return max(s, 150*ms) },
			total: 5200 * ms, onsets: beepOnsets(-33*ms, 0, 5200*ms, [2]time.Duration{}), origin: -33 * ms, before: 2},
		{name: "sender report: sending since -33 ms, every packet 110 ms in transit",
			join: 100 * ms, sent: -33 * ms, arrive: func(s time.Duration) time.Duration { return s + 110*ms }, sr: true,
			total: 5200 * ms, onsets: beepOnsets(-33*ms, 0, 5200*ms, [2]time.Duration{}), origin: -33 * ms, before: 2},
		// Every packet 10 ms in transit: without a sender report the
		// least-late packet places the track, 10 ms after its capture.
		// A report stamped 60 ms late (Pion's, by a lagging write) would
		// place it 50 ms after its arrival: it goes at its arrival (its
		// file and mix held that much after a pause's instant, where the
		// mix is cut at it).
		{name: "sender report stamped 60 ms late: placed by the arrival, not after it",
			join: 0, sent: 0, arrive: func(s time.Duration) time.Duration { return s + 10*ms }, sr: true, srLate: 60 * ms,
			total: 5200 * ms, onsets: beepOnsets(10*ms, 0, 5200*ms, [2]time.Duration{}), origin: 10 * ms},
		// The same report, for a track added at 2 s whose first packets
		// reached the machine from 0.76 s on (a backlog in its socket
		// while its reader was not yet running): its report places it
		// 50 ms after its receipt, before the track's start in the mix
		// (1.24 s: the join wait, at a frame). It goes at its receipt too, and what is
		// before that start is left out. (A report no later than that
		// start placed it, in the recorder under load: its file's cut
		// 55 ms after the mix's, TestManager_CutsTheMixAtTheInstant/skip.)
		{name: "sender report stamped 60 ms late, a backlog from before the join: placed by the receipts",
			join: 2000 * ms, sent: 750 * ms, arrive: func(s time.Duration) time.Duration { return s + 10*ms }, received: true, sr: true, srLate: 60 * ms,
			total: 6700 * ms, onsets: beepOnsets(760*ms, 1240*ms, 6700*ms, [2]time.Duration{}), origin: 760 * ms, before: 24},
		{name: "a pause after a late start: no jump at the resume",
			join: 100 * ms, sent: -33 * ms, arrive: func(s time.Duration) time.Duration { return max(s+10*ms, 250*ms) },
			pause: [2]time.Duration{2000 * ms, 3000 * ms},
			total: 5200 * ms, onsets: beepOnsets(-23*ms, 0, 5200*ms, [2]time.Duration{2000 * ms, 3000 * ms}), origin: -23 * ms, before: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pcm, p := runPlacement(t, payloads, tc)
			if want := int(tc.total / ms * 8); len(pcm) != want {
				t.Errorf("mix of %d samples, want %d", len(pcm), want)
			}
			checkOnsets(t, pcm, tc.onsets)
			if o, ok := p.Origin(); !ok || o < int64(tc.origin/ms)*8-8 || o > int64(tc.origin/ms)*8+8 {
				t.Errorf("origin %d (%v), want %d (within 1 ms)", o, ok, int64(tc.origin/ms)*8)
			}
			s := p.Stats()
			if s.Reanchors != 0 || s.Late != 0 || s.Lost != 0 || s.BeforeStart != tc.before {
				t.Errorf("stats %+v: want no re-anchor, nothing late or lost, %d before the start", s, tc.before)
			}
			if tc.sr && tc.srLate == 0 != (s.BySR == 1) {
				t.Errorf("%d anchors by the sender report", s.BySR)
			}
			if p.Ratio() != 1 {
				t.Errorf("resampling at %v", p.Ratio())
			}
		})
	}
}

// TestAudioPipeline_LateReaderPulledBackOnTime: a reader that stays 350 ms
// behind for the first 2 s (longer than settling looks) and then catches up
// at once. The track is first placed 350 ms late (nothing showed it was);
// the on-time packets after show it, and the drift reference, on time rather
// than the first window, pulls it back by resampling (at most MaxSkew): no
// beep is lost or cut, every beep begins within [truth, truth + 350 ms], and
// from 14 s on within 10 ms of the truth, with the resampling over.
func TestAudioPipeline_LateReaderPulledBackOnTime(t *testing.T) {
	payloads := opusBeeps(t, 20*time.Second)
	ms := time.Millisecond
	tc := placementCase{join: 0, sent: 0, total: 20200 * ms,
		arrive: func(s time.Duration) time.Duration {
			if s < 2000*ms {
				return s + 350*ms
			}
			return max(s, 2350*ms)
		}}
	pcm, p := runPlacement(t, payloads, tc)
	act := fillHoles(activity(pcm, 8000, 440, 80), 3)
	on := onsets(act)
	if len(on) != 40 {
		t.Fatalf("%d beeps (onsets at %v ×10 ms), want 40", len(on), on)
	}
	for k, o := range on {
		got, want := time.Duration(o)*10*ms, time.Duration(k)*500*ms
		if got < want-10*ms || got > want+360*ms || got >= 14*time.Second && got > want+10*ms {
			t.Errorf("beep %d begins at %v, want %v (at most 350 ms later before 14 s, within 10 ms after)", k, got, want)
		}
	}
	if c := count(act); c < 40*18 || c > 40*21 {
		t.Errorf("beeps last %d ms in all, want about %d ms", c*10, 40*200)
	}
	if s := p.Stats(); s.Reanchors != 0 || s.Late != 0 || s.Lost != 0 {
		t.Errorf("stats %+v: want no re-anchor, nothing late or lost", s)
	}
	if p.Ratio() != 1 {
		t.Errorf("still resampling at %v", p.Ratio())
	}
	t.Logf("beeps begin at %v ×10 ms", on)
}

// TestAudioPipeline_PulledBackAtThePitchBoundOnceNear: a reader 100 or
// 350 ms behind while the track settles (for its first 0.7 or 1.5 s) places
// it as late; the on-time packets after show it, and measure pulls the track
// back by resampling (a good clock: nothing else moves it). While it is more
// than pullFar (20 ms: the bound between participants) late it is
// pulled over 2 s at up to MaxSkew: the placement comes first; from there at
// most maxCatchUp (0.5 %) off 1, the pitch a drift is absorbed by, and it
// ends within 5 ms of on time, not resampled, nothing late. Pulled over 2 s
// however near, the track 100 ms late was resampled by 0.56 % at 11 ms
// (after 4.5, 2.25 and 1.1 %: a 440 Hz tone at 461, 450, 445, 442.5 Hz).
func TestAudioPipeline_PulledBackAtThePitchBoundOnceNear(t *testing.T) {
	payloads := opusBeeps(t, 20*time.Second)
	ms := time.Millisecond
	for _, tc := range []struct{ late, lateFor time.Duration }{{100 * ms, 700 * ms}, {100 * ms, 1500 * ms}, {350 * ms, 1500 * ms}} {
		t.Run(fmt.Sprintf("%v late for %v", tc.late, tc.lateFor), func(t *testing.T) {
			sink := &captureSink{}
			m, c := newVirtualMixer(MixConfig{SampleRate: 8000}, sink)
			t0 := m.Config().Start
			pkts := packetize(payloads, 48000, 7, 100, 90000, 0)
			sent := make(map[uint32]time.Duration, len(pkts)) // by timestamp
			for i := range pkts {
				s := pkts[i].at
				sent[pkts[i].pkt.Timestamp] = s
				pkts[i].at = s + 10*ms // on time: its transit
				if s < tc.lateFor {
					pkts[i].at += tc.late // read late while the track settles
				}
			}
			slices.SortStableFunc(pkts, func(a, b timedPacket) int { return int(a.at - b.at) })
			p, err := NewAudioPipeline(AudioPipelineConfig{Codec: CodecOpus, Input: m.AddInput("track", InputOptions{})})
			if err != nil {
				t.Fatal(err)
			}
			i, ratio, pulled := 0, 1.0, []string{}
			var off float64 // the newest packet's place less its on-time one (its arrival on time), in ms
			for now := time.Duration(0); now < 20*time.Second; now += 20 * ms {
				for i < len(pkts) && pkts[i].at <= now {
					c.t = t0.Add(pkts[i].at)
					if err := p.WriteRTP(pkts[i].pkt); err != nil {
						t.Fatal(err)
					}
					if pos, ok := p.PositionOf(pkts[i].pkt.Timestamp); ok {
						off = float64(pos)/8 - float64((sent[pkts[i].pkt.Timestamp]+10*ms)/ms)
					}
					i++
				}
				if r := p.Ratio(); r != ratio {
					ratio = r
					pulled = append(pulled, fmt.Sprintf("%v: %.5f at %+.1f ms", now, r, off))
					if math.Abs(r-1) > maxCatchUp+1e-9 && math.Abs(off) <= pullFar.Seconds()*1000 {
						t.Errorf("at %v the ratio went %.5f (%+.2f %%) with the track %+.1f ms off on time: want within %.1f %% once within %v", now, r, (r-1)*100, off, maxCatchUp*100, pullFar)
					}
				}
				c.t = t0.Add(now)
				if err := m.Step(); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("ratio changes: %s", strings.Join(pulled, "; "))
			if len(pulled) == 0 || math.Abs(off) > 5 || p.Ratio() != 1 {
				t.Errorf("the track %+.1f ms off on time at the end, ratio %.5f (%d changes): want pulled back to within 5 ms, and 1", off, p.Ratio(), len(pulled))
			}
			if s := p.Stats(); s.Late != 0 || s.Reanchors != 0 || s.Lost != 0 {
				t.Errorf("stats %+v: want nothing late or lost, no re-anchor", s)
			}
		})
	}
}
