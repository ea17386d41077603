package recorder

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/media"
	"github.com/rtcrec/recorder/media/g711"
	"github.com/rtcrec/recorder/media/pause"
	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/media/reorder"
)

// liveOfflineCase is one track recorded through its sink, across a pause
// with silence (scratch: explore).
type liveOfflineCase struct {
	total          float64 // seconds
	c0             float64 // the first packet's capture, from the recording's start
	pauseFrom      float64
	pauseTo        float64
	lost           func(i int) bool
	written        func(c float64) float64 // when the packet captured at c is written (arrives)
	reportInterval float64
}

func runLiveOffline(t *testing.T, tc liveOfflineCase) (live, off []int16, timing *composition.TrackTiming, origin float64) {
	t.Helper()
	const rate = 8000
	start := time.Unix(1000, 0)
	now := start
	at := func(s float64) time.Time { return start.Add(time.Duration(s * float64(time.Second))) }
	ms, out, path := muLawSink(t, start, &now, 0)
	mixer := ms.mixer
	pipe := ms.audio.(*media.AudioPipeline)
	ms.logPlacement(pipe, 1)
	ms.moves = &mixMoves{rate: rate, clock: rate}
	ms.srs = &senderClock{rate: rate}
	ms.order = reorder.New((*trackFile)(ms), reorderConfig(conference.KindAudio, 0))
	ms.notBefore = start.UnixNano()
	sr := &conference.SenderReport{}
	ms.sr = func() (conference.SenderReport, bool) { return *sr, !sr.Arrived.IsZero() }
	lc := &pauseState{}
	g := &gate{lc: lc, in: ms.in, clock: rate}
	lc.gates = map[*gate]string{g: "u"}
	ms.gate = g
	n := int((tc.total - tc.c0) / 0.02)
	capture := func(i int) float64 { return tc.c0 + 0.02*float64(i) }
	ms.receipts = sentAt(func(seq uint16) time.Time { return at(tc.written(capture(int(seq)))) })
	// packets in order of their write
	type ev struct {
		at float64
		i  int
	}
	paused, resumed := false, false
	payload := make([]byte, 160)
	next := 0
	lastReport := math.Inf(-1)
	lastWritten := -1
	for step := 0; float64(step)*0.005 < tc.total; step++ {
		d := float64(step) * 0.005
		for ; next < n && tc.written(capture(next)) <= d; next++ {
			w := tc.written(capture(next))
			now = at(w)
			lastWritten = next
			if tc.reportInterval > 0 && w-lastReport >= tc.reportInterval {
				lastReport = w
				// the sender's report: its last packet's capture
				*sr = conference.SenderReport{SSRC: 1, NTP: at(capture(lastWritten)), RTPTime: uint32(lastWritten * 160), Arrived: now}
			}
			if tc.lost != nil && tc.lost(next) {
				continue
			}
			if w < 0 {
				continue
			}
			for k := range payload {
				payload[k] = 0x90
			}
			if err := ms.WriteRTP(&rtp.Packet{Header: rtp.Header{SSRC: 1, SequenceNumber: uint16(next), Timestamp: uint32(next * 160)}, Payload: payload}); err != nil {
				t.Fatal(err)
			}
		}
		now = at(d)
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
	if err := ms.Close(); err != nil {
		t.Fatal(err)
	}
	mixer.RemoveInput(ms.in)
	if err := mixer.Finish(mixer.PosAt(now)); err != nil {
		t.Fatal(err)
	}
	o, ok := pipe.Origin()
	if !ok {
		t.Fatal("no origin")
	}
	origin = float64(o) / rate
	timing = ms.trackTiming(rate)
	m := &composition.Manifest{
		Started: start, Stopped: at(tc.total), PauseBehavior: pause.Silence,
		Tracks: []composition.Track{{Kind: "AUDIO", UserID: "u", File: filepath.Base(path), MediaOffset: &origin, Timing: timing}},
		Pauses: []composition.Interval{{Start: tc.pauseFrom, End: tc.pauseTo}},
	}
	wav := filepath.Join(t.TempDir(), "off.wav")
	if _, err := composition.MixManifest(m, filepath.Dir(path), wav, rate); err != nil {
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
	_ = g711.DecodeMuLaw
	t.Logf("origin %.3f; timing steps %+v; stats %+v", origin, timing.Steps(), pipe.Stats())
	return out.pcm, off, timing, origin
}

// runs returns where pcm holds sound, as [from, to) seconds runs in 20 ms windows.
func soundRuns(pcm []int16) string {
	var b strings.Builder
	on := false
	for k := 0; (k+1)*160 <= len(pcm); k++ {
		has := false
		for _, v := range pcm[k*160 : (k+1)*160] {
			if v != 0 {
				has = true
				break
			}
		}
		if has != on {
			fmt.Fprintf(&b, " %s%.2f", map[bool]string{true: "+", false: "-"}[has], float64(k)*0.02)
			on = has
		}
	}
	return b.String()
}

func TestScratch_LiveOffline(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    liveOfflineCase
	}{
		{"on time", liveOfflineCase{total: 8.8, c0: -0.3, pauseFrom: 2.7, pauseTo: 4.8, written: func(c float64) float64 { return c + 0.02 }, reportInterval: 1}},
		{"hole after resume, burst", liveOfflineCase{total: 8.8, c0: -0.3, pauseFrom: 2.7, pauseTo: 4.8,
			lost: func(i int) bool { c := -0.3 + 0.02*float64(i); return c >= 5.0 && c < 5.72 },
			written: func(c float64) float64 {
				if c >= 4.5 && c < 6.5 {
					return 6.5 + (c-4.5)*0.05
				}
				return c + 0.02
			}, reportInterval: 1}},
		{"late resume, no reports", liveOfflineCase{total: 10, c0: -0.3, pauseFrom: 2, pauseTo: 4,
			written: func(c float64) float64 {
				if c >= 3.5 && c < 6.8 {
					return 6.8 + (c-3.5)*0.001
				}
				return c + 0.005
			}}},
		{"late resume", liveOfflineCase{total: 10, c0: -0.3, pauseFrom: 2, pauseTo: 4,
			written: func(c float64) float64 {
				if c >= 3.5 && c < 6.8 {
					return 6.8 + (c-3.5)*0.001
				}
				return c + 0.005
			}, reportInterval: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			live, off, _, _ := runLiveOffline(t, tc.c)
			t.Logf("live   %s (%d)", soundRuns(live), len(live))
			t.Logf("offline%s (%d)", soundRuns(off), len(off))
		})
	}
}

func TestScratch_Search(t *testing.T) {
	found := 0
	for seed := range 3000 {
		r := rand.New(rand.NewPCG(uint64(seed), 7))
		// stalls: 1-4 windows of 0.2-2.7 s; packets captured in one are written at its end (+ 1 ms each)
		var stalls [][2]float64
		for range 1 + r.IntN(4) {
			a := r.Float64() * 8
			stalls = append(stalls, [2]float64{a, a + 0.2 + r.Float64()*2.5})
		}
		holeAt := 3 + r.Float64()*4
		tc := liveOfflineCase{total: 8.8, c0: -0.3, pauseFrom: 2.7, pauseTo: 4.8, reportInterval: 1,
			lost: func(i int) bool { c := -0.3 + 0.02*float64(i); return c >= holeAt && c < holeAt+0.72 },
			written: func(c float64) float64 {
				w := c + 0.005
				for _, s := range stalls {
					if c >= s[0] && c < s[1] {
						w = max(w, s[1]+(c-s[0])*0.02)
					}
				}
				return w
			}}
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			live, off, _, _ := runLiveOffline(t, tc)
			differ, offOnly, liveOnly := 0, 0, 0
			for k := 0; (k+1)*160 <= min(len(live), len(off)); k++ {
				a, b := false, false
				for j := k * 160; j < (k+1)*160; j++ {
					a = a || live[j] != 0
					b = b || off[j] != 0
				}
				if a != b {
					differ++
					if a {
						liveOnly++
					} else {
						offOnly++
					}
				}
			}
			if differ > 3 && (liveOnly > 3 || found < 3) && found < 12 {
				t.Logf("liveOnly %d offOnly %d", liveOnly, offOnly)
				found++
				t.Errorf("stalls %.2f hole %.2f: differ %d windows\nlive   %s\noffline%s", stalls, holeAt, differ, soundRuns(live), soundRuns(off))
			}
		})
	}
}
