package recorder

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/media"
	"github.com/rtcrec/recorder/media/format"
	"github.com/rtcrec/recorder/media/pause"
	"github.com/rtcrec/recorder/media/reorder"
	"github.com/rtcrec/recorder/media/wavwriter"
	"github.com/rtcrec/recorder/recorder/conference"
)

type track2 struct {
	c0      float64
	lost    func(c float64) bool
	written func(c float64) float64 // when the packet captured at c reaches the machine
	read    func(w float64) float64 // when the packet that arrived at w is read (nil: at w)
	beep    bool                    // payload loud (a) or silence (b)
}

type case2 struct {
	total, pauseFrom, pauseTo float64
	tracks                    []track2
	defer_                    bool
}

func run2(t *testing.T, tc case2) (live, off []int16, info string) {
	t.Helper()
	const rate = 8000
	start := time.Unix(1000, 0)
	now := start
	at := func(s float64) time.Time { return start.Add(time.Duration(s * float64(time.Second))) }
	out := &frameSink{}
	mixer := media.NewMixer(media.MixConfig{SampleRate: 8000, Start: start, Clock: func() time.Time { return now }}, out)
	lc := &pauseState{gates: map[*gate]string{}}
	dir := t.TempDir()
	type tr struct {
		ms    *mediaSink
		pipe  *media.AudioPipeline
		sr    *conference.SenderReport
		n     int
		next  int
		lastR float64
		path  string
		cfg   track2
	}
	var trs []*tr
	for k, cfg := range tc.tracks {
		in := mixer.AddInput(fmt.Sprint(k), media.InputOptions{})
		pipe, err := media.NewAudioPipeline(media.AudioPipelineConfig{Codec: media.CodecPCMU, Input: in})
		if err != nil {
			t.Fatal(err)
		}
		if tc.defer_ {
			pipe.EnableDefer()
		}
		path := filepath.Join(dir, fmt.Sprintf("t%d.wav", k))
		file, err := wavwriter.NewG711(path, wavwriter.MuLaw)
		if err != nil {
			t.Fatal(err)
		}
		ms := &mediaSink{file: format.G711Writer{G711Writer: file}, audio: pipe, in: in, mixer: mixer}
		ms.logPlacement(pipe, 1)
		ms.moves = &mixMoves{rate: rate, clock: rate}
		ms.srs = &senderClock{rate: rate}
		ms.order = reorder.New((*trackFile)(ms), reorderConfig(conference.KindAudio, 0))
		ms.notBefore = start.UnixNano()
		sr := &conference.SenderReport{}
		ms.sr = func() (conference.SenderReport, bool) { return *sr, !sr.Arrived.IsZero() }
		g := &gate{lc: lc, in: in, clock: rate}
		lc.gates[g] = fmt.Sprint(k)
		ms.gate = g
		x := &tr{ms: ms, pipe: pipe, sr: sr, n: int((tc.total - cfg.c0) / 0.02), path: path, cfg: cfg, lastR: math.Inf(-1)}
		capture := func(i int) float64 { return cfg.c0 + 0.02*float64(i) }
		ms.receipts = sentAt(func(seq uint16) time.Time { return at(cfg.written(capture(int(seq)))) })
		trs = append(trs, x)
	}
	readAt := func(x *tr, i int) float64 {
		w := x.cfg.written(x.cfg.c0 + 0.02*float64(i))
		if x.cfg.read != nil {
			return max(w, x.cfg.read(w))
		}
		return w
	}
	paused, resumed := false, false
	payload := make([]byte, 160)
	for step := 0; float64(step)*0.005 < tc.total; step++ {
		d := float64(step) * 0.005
		for _, x := range trs {
			for ; x.next < x.n && readAt(x, x.next) <= d; x.next++ {
				c := x.cfg.c0 + 0.02*float64(x.next)
				w := x.cfg.written(c)
				now = at(readAt(x, x.next))
				if os.Getenv("NOREP") == "" && w-x.lastR >= 1 {
					x.lastR = w
					*x.sr = conference.SenderReport{SSRC: 1, NTP: at(c), RTPTime: uint32(x.next * 160), Arrived: at(w)}
				}
				if x.cfg.lost != nil && x.cfg.lost(c) || w < 0 {
					continue
				}
				for k := range payload {
					payload[k] = 0xFF
					if x.cfg.beep {
						payload[k] = 0x90
					}
				}
				if err := x.ms.WriteRTP(&rtp.Packet{Header: rtp.Header{SSRC: 1, SequenceNumber: uint16(x.next), Timestamp: uint32(x.next * 160)}, Payload: payload}); err != nil {
					t.Fatal(err)
				}
			}
		}
		now = at(d)
		for _, x := range trs {
			if x.pipe.Deferred() {
				x.pipe.Tick()
			}
		}
		if !paused && d >= tc.pauseFrom {
			paused = true
			pos := mixer.PosAt(now)
			lc.paused.Store(true)
			lc.cut.Store(&cutSpan{pos, openSpan})
			mixer.Silence(pos)
		}
		if paused && !resumed && d >= tc.pauseTo {
			resumed = true
			c := &cutSpan{lc.cut.Load().from, mixer.PosAt(now)}
			mixer.Unsilence(c.to)
			lc.resume(c)
			lc.paused.Store(false)
		}
		if step%4 == 0 {
			if err := mixer.Step(); err != nil {
				t.Fatal(err)
			}
		}
	}
	now = at(tc.total)
	mixer.SetEnd(now)
	m := &composition.Manifest{Started: start, Stopped: at(tc.total), PauseBehavior: pause.Silence,
		Pauses: []composition.Interval{{Start: tc.pauseFrom, End: tc.pauseTo}}}
	for k, x := range trs {
		if err := x.ms.Close(); err != nil {
			t.Fatal(err)
		}
		mixer.RemoveInput(x.ms.in)
		o, ok := x.pipe.Origin()
		if !ok {
			continue
		}
		origin := float64(o) / rate
		timing := x.ms.trackTiming(rate)
		m.Tracks = append(m.Tracks, composition.Track{Kind: "AUDIO", UserID: fmt.Sprint(k), File: filepath.Base(x.path), MediaOffset: &origin, Timing: timing})
		info += fmt.Sprintf("\n track %d origin %.3f steps %+v stats %+v", k, origin, timing.Steps(), x.pipe.Stats())
	}
	if err := mixer.Finish(mixer.PosAt(now)); err != nil {
		t.Fatal(err)
	}
	wav := filepath.Join(dir, "off.wav")
	if _, err := composition.MixManifest(m, dir, wav, rate); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(wav)
	if err != nil {
		t.Fatal(err)
	}
	off = make([]int16, (len(data)-44)/2)
	for i := range off {
		off[i] = int16(uint16(data[44+2*i]) | uint16(data[45+2*i])<<8)
	}
	return out.pcm, off, info
}

func compare2(live, off []int16) (liveOnly, offOnly int) {
	for k := 0; (k+1)*160 <= min(len(live), len(off)); k++ {
		a, b := false, false
		for j := k * 160; j < (k+1)*160; j++ {
			a = a || live[j] != 0
			b = b || off[j] != 0
		}
		if a && !b {
			liveOnly++
		}
		if b && !a {
			offOnly++
		}
	}
	return
}

func stallsOf(r *rand.Rand, n int, maxLen float64) [][2]float64 {
	var s [][2]float64
	for range n {
		a := r.Float64() * 8
		s = append(s, [2]float64{a, a + 0.1 + r.Float64()*maxLen})
	}
	return s
}

func writtenBy(stalls [][2]float64) func(c float64) float64 {
	return func(c float64) float64 {
		w := c + 0.005
		for _, s := range stalls {
			if c >= s[0] && c < s[1] {
				w = max(w, s[1]+(c-s[0])*0.02)
			}
		}
		return w
	}
}

func TestScratch_Search2(t *testing.T) {
	shown := 0
	counts := map[string]int{}
	for seed := range 2000 {
		r := rand.New(rand.NewPCG(uint64(seed), 11))
		sa, sb := stallsOf(r, 1+r.IntN(4), 2.7), stallsOf(r, 1+r.IntN(4), 2.7)
		holeAt := 3 + r.Float64()*4
		var rd [][2]float64
		if r.IntN(2) == 0 {
			rd = stallsOf(r, 1+r.IntN(3), 1.5)
		}
		read := func(w float64) float64 {
			for _, s := range rd {
				if w >= s[0] && w < s[1] {
					return s[1]
				}
			}
			return w
		}
		tc := case2{total: 8.8, pauseFrom: 2.7, pauseTo: 4.8, defer_: true, tracks: []track2{
			{c0: -0.5, beep: true, written: writtenBy(sa), read: read, lost: func(c float64) bool { return c >= holeAt && c < holeAt+0.72 }},
			{c0: -0.2, written: writtenBy(sb), read: read},
		}}
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			live, off, info := run2(t, tc)
			lo, oo := compare2(live, off)
			cls := "same"
			switch {
			case lo > 3 && oo > 3:
				cls = "both"
			case lo > 3:
				cls = "liveOnly"
			case oo > 3:
				cls = "offOnly"
			}
			counts[cls]++
			if cls == "liveOnly" && shown < 8 || cls != "same" && shown < 3 {
				shown++
				t.Errorf("%s: a stalls %.2f b stalls %.2f reader %.2f hole %.2f: live-only %d off-only %d%s\nlive   %s\noffline%s", cls, sa, sb, rd, holeAt, lo, oo, info, soundRuns(live), soundRuns(off))
			}
		})
	}
	t.Logf("%v", counts)
}
