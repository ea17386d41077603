package composite

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/composition"
)

func TestTimeline_SkipCutsPauses(t *testing.T) {
	tl := timeline{skip: []span{{2, 3}, {5, 7}}, fps: 10, frames: 70}
	for _, c := range []struct{ wall, out float64 }{
		{1, 1}, {2, 2}, {2.5, 2}, {3, 2}, {4, 3}, {6, 4}, {8, 5},
	} {
		if got := tl.out(c.wall); got != c.out {
			t.Errorf("out(%g) = %g, want %g", c.wall, got, c.out)
		}
	}
}

func TestArrange_Grid(t *testing.T) {
	p := &plan{s: Settings{Layout: LayoutGrid, Width: 1280, Height: 720, FPS: 15}}
	for n, want := range map[int][]box{
		1: {{0, 0, 1280, 720}},
		2: {{0, 180, 640, 360}, {640, 180, 640, 360}},
		3: {{0, 0, 640, 360}, {640, 0, 640, 360}, {320, 360, 640, 360}},
		9: {{0, 0, 426, 238}, {426, 0, 426, 238}, {852, 0, 426, 238}},
	} {
		var cams []*tile
		for i := 0; i < n; i++ {
			cams = append(cams, &tile{key: string(rune('a' + i))})
		}
		got := p.arrange(cams, nil, "")
		for i, b := range want {
			if got[cams[i]] != b {
				t.Errorf("%d tiles: tile %d at %+v, want %+v", n, i, got[cams[i]], b)
			}
		}
	}
}

func TestArrange_ScreenTakesTheMainArea(t *testing.T) {
	p := &plan{s: Settings{Layout: LayoutGrid, Width: 1280, Height: 720, FPS: 15}}
	a, b, sc := &tile{key: "a"}, &tile{key: "b"}, &tile{key: "s", screen: true}
	got := p.arrange([]*tile{a, b}, []*tile{sc}, "")
	if got[sc] != (box{128, 0, 1024, 576}) {
		t.Errorf("screen at %+v, want the main area", got[sc])
	}
	if got[a].y != 576 || got[b].y != 576 || got[a].h != 144 {
		t.Errorf("cameras at %+v %+v, want the strip below", got[a], got[b])
	}
}

func TestSpeakerTurns_Hysteresis(t *testing.T) {
	p := &plan{s: Settings{Layout: LayoutSpeaker, Width: 640, Height: 360, FPS: 10}, tl: timeline{fps: 10, frames: 200}}
	a, b := &tile{key: "a", from: 0, to: 200}, &tile{key: "b", from: 0, to: 200}
	p.tiles = []*tile{a, b}
	la, lb := make([]float64, 200), make([]float64, 200)
	for w := range la {
		la[w], lb[w] = -20, -90
		if w >= 50 && w < 55 { // b coughs for half a second: no switch
			lb[w] = -10
		}
		if w >= 100 { // b speaks from 10 s
			la[w], lb[w] = -90, -20
		}
	}
	turns := p.speakerTurns(map[string][]float64{"a": la, "b": lb})
	want := []turn{{0, "a"}, {100, "b"}}
	if len(turns) != len(want) || turns[0] != want[0] || turns[1] != want[1] {
		t.Errorf("turns %v, want %v", turns, want)
	}
}

func FuzzPlan(f *testing.F) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := composition.Manifest{Started: t0, Stopped: t0.Add(10 * time.Second), PauseBehavior: "skip",
		Tracks: []composition.Track{
			{StreamID: "a", UserID: "alice", Kind: "VIDEO", StreamType: "CAM", File: "tracks/a.webm", Offset: 1, Duration: 5},
			{StreamID: "s", UserID: "alice", Kind: "VIDEO", StreamType: "SCREEN", File: "tracks/s.webm", Offset: 2, Duration: 3},
			{StreamID: "b", UserID: "bob", Kind: "AUDIO", File: "tracks/b.ogg", Offset: 0.5},
		},
		Pauses:    []composition.Interval{{Start: 3, End: 4}},
		Blackouts: []composition.Interval{{UserID: "bob", Start: 1, End: 2}}}
	seed, _ := json.Marshal(m)
	f.Add(seed, "grid")
	f.Add(seed, "speaker")
	f.Add(seed, "single")
	f.Fuzz(func(t *testing.T, data []byte, layout string) {
		m, err := composition.ReadManifest(bytes.NewReader(data))
		if err != nil {
			return
		}
		s := Settings{Layout: layout, Width: 640, Height: 360, FPS: 15}
		if layout == LayoutSingle {
			s.UserID = "alice"
		}
		if s.Validate() != nil {
			return
		}
		p, err := newPlan(m, s, func(string) videoInfo { return videoInfo{ok: true, w: 640, h: 480} })
		if err != nil {
			return
		}
		if p.tl.frames > 15*3600 {
			return // long plans are fine, but slow to fuzz
		}
		levels := map[string][]float64{}
		for _, t := range p.tiles {
			levels[t.key] = []float64{-10, -60, -10}
		}
		p.layout(p.speakerTurns(levels))
		for _, tl := range p.tiles {
			for _, pl := range tl.places {
				b := pl.b
				if pl.from < tl.from || pl.to > tl.to || pl.from >= pl.to || b.x < 0 || b.y < 0 ||
					b.x+b.w > s.Width || b.y+b.h > s.Height || b.w < 2 || b.h < 2 || b.x%2+b.y%2+b.w%2+b.h%2 != 0 {
					t.Fatalf("tile %s placed %+v outside its presence %d–%d or the canvas", tl.key, pl, tl.from, tl.to)
				}
			}
		}
		g := buildGraph(p, true)
		if strings.Count(g.script, "[v]") != 1 {
			t.Fatalf("graph without one output:\n%s", g.script)
		}
		for _, name := range g.texts {
			if strings.ContainsAny(name, "\n\r\x00") {
				t.Fatalf("text %q not cleaned", name)
			}
		}
	})
}

// TestVideoZero_BySendersClock: a video track is placed by its sender's
// clock relative to the audio of its stream (where the mix put it), not by
// its own arrival; without sender reports, or with reports that disagree
// with the arrivals by more than a second, by its arrival.
func TestVideoZero_BySendersClock(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	ntp := time.Date(2026, 3, 1, 10, 0, 30, 0, time.UTC)
	audio := composition.Track{StreamID: "s1", Kind: "AUDIO", MediaOffset: f(1.000),
		// The first sample (RTP 8000) was sent 1 s before the report (RTP 16000 at ntp).
		Timing: &composition.TrackTiming{ClockRate: 8000, RTPZero: 8000, SenderReportNTP: &ntp, SenderReportRTP: 16000}}
	// The video's first frame was sent 0.250 s after the audio's first
	// sample (0.750 s before the report; the RTP clock wraps in between),
	// and arrived late: its own time zero says 1.400 s.
	zero := uint32(0xffff0000)
	video := composition.Track{StreamID: "s1", Kind: "VIDEO", MediaOffset: f(1.400),
		Timing: &composition.TrackTiming{ClockRate: 90000, RTPZero: zero, SenderReportNTP: &ntp, SenderReportRTP: zero + 67500}}
	m := &composition.Manifest{Tracks: []composition.Track{audio, video}}
	if got, _, ok := videoZero(m, video); !ok || math.Abs(got-1.250) > 1e-6 {
		t.Errorf("by the sender's clock: %.4f %v, want 1.250", got, ok)
	}
	// The audio's first report kept was stamped 455 ms late (its
	// Mappings[0]); the live mix left it out and followed the honest ones:
	// the sender's instant it put at the audio's first sample (mixSent) is
	// 1 s before the latest report's. The video goes by that one.
	{
		late, sent := ntp.Add(-545*time.Millisecond), ntp.Add(-time.Second)
		a := audio
		ta := *audio.Timing
		ta.Mappings = []composition.Mapping{{NTP: late, RTP: 8000}, {NTP: ntp, RTP: 16000, File: 1}}
		ta.MixSent, ta.MixPlaced = &sent, true
		a.Timing = &ta
		m := &composition.Manifest{Tracks: []composition.Track{a, video}}
		if got, _, ok := videoZero(m, video); !ok || math.Abs(got-1.250) > 1e-6 {
			t.Errorf("the audio's first report stamped 455 ms late, the mix by the honest ones: %.4f %v, want 1.250", got, ok)
		}
		ta.MixSent = nil // an older manifest: by the first report kept
		if got, _, ok := videoZero(m, video); !ok || math.Abs(got-(1.250-0.455)) > 1e-6 {
			t.Errorf("without mixSent: %.4f %v, want 0.795 (by the first report kept)", got, ok)
		}
	}
	for what, c := range map[string]func(m *composition.Manifest, v *composition.Track){
		"no report for the video":      func(m *composition.Manifest, v *composition.Track) { v.Timing.SenderReportNTP = nil },
		"no report for the audio":      func(m *composition.Manifest, v *composition.Track) { m.Tracks[0].Timing = nil },
		"audio of another stream only": func(m *composition.Manifest, v *composition.Track) { m.Tracks[0].StreamID = "s2" },
		"a clock 5 s off the arrivals": func(m *composition.Manifest, v *composition.Track) { v.Timing.SenderReportRTP -= 5 * 90000 },
	} {
		v := video
		tv := *video.Timing
		v.Timing = &tv
		a := audio
		ta := *audio.Timing
		a.Timing = &ta
		m := &composition.Manifest{Tracks: []composition.Track{a, v}}
		c(m, &v)
		if got, _, ok := videoZero(m, v); !ok || got != 1.400 {
			t.Errorf("%s: %.4f %v, want its arrival 1.400", what, got, ok)
		}
	}
}

// TestVideoZero_AFirstVideoReportStampedLate: a sender's first video report
// stamped late (Pion stamps a report by when it last wrote a packet: a
// write that lagged 31, 35 or 800 ms, as cmd/recorder's Slips saw under
// load) no longer places the picture late until its next report's step
// back. A sender on a virtual clock (the recorder's): its audio's first
// sample captured at 0.200 s, placed there by the mix (mediaOffset,
// mixSent); its video's first frame captured at 0.300 s and its first
// packets received 1 ms later (the video's mediaOffset); a video report
// every second from 1 s, each stamped at its RTP time's instant but the
// first, stamped late (or the first ones, each less late). The track keeps
// the first report and the second, which moved back and which the third
// confirms (recorder's senderClock), and so on.
// Every frame of the file (file time T, captured at 0.300 + T) is placed at
// its capture instant, within 2 ms. Controls, placed as before: honest
// video reports with the audio placed 15 ms after its capture (the video
// keeps its distance to the sound: 15 ms after its capture too), and a
// sender whose clock is set back 50 ms at 5 s (honest reports: the step is
// the clock's).
func TestVideoZero_AFirstVideoReportStampedLate(t *testing.T) {
	const vRate, aRate, vFirst, aFirst = 90000, 48000, 0.300, 0.200
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return start.Add(time.Duration(math.Round(s * float64(time.Second)))) }
	f := func(v float64) *float64 { return &v }
	vZero, aZero := uint32(0xfff00000), uint32(12345)
	// report returns the video report sent at instant w, its NTP stamped
	// late by late and set back by back.
	report := func(w, late, back float64) composition.Mapping {
		return composition.Mapping{NTP: at(w + late - back), RTP: vZero + uint32(math.Round((w-vFirst)*vRate)), File: w - vFirst}
	}
	for _, c := range []struct {
		name    string
		kept    []composition.Mapping // the reports the video track kept
		aPlaced float64               // where the mix put the audio's first sample
		want    func(T float64) float64
	}{
		{"first report 31 ms late", []composition.Mapping{report(1, 0.031, 0), report(2, 0, 0)}, aFirst,
			func(T float64) float64 { return vFirst + T }},
		{"first report 35 ms late", []composition.Mapping{report(1, 0.035, 0), report(2, 0, 0)}, aFirst,
			func(T float64) float64 { return vFirst + T }},
		{"first report 800 ms late", []composition.Mapping{report(1, 0.800, 0), report(2, 0, 0)}, aFirst,
			func(T float64) float64 { return vFirst + T }},
		// Late while the publisher's writes lag: the first 170 ms, the
		// next kept 100 ms (seen in the real binary under load).
		{"first report 170 ms late, the next kept 100 ms", []composition.Mapping{report(1, 0.170, 0), report(2, 0.100, 0), report(4, 0, 0)}, aFirst,
			func(T float64) float64 { return vFirst + T }},
		// A capture that lost 50 ms at 5 s: its RTP time falls behind, a
		// step forward that stays.
		{"first report 31 ms late, a step forward of 50 ms at 5 s", []composition.Mapping{report(1, 0.031, 0), report(2, 0, 0), report(5, 0, -0.050)}, aFirst,
			func(T float64) float64 {
				if T >= 5-vFirst {
					return vFirst + T + 0.050
				}
				return vFirst + T
			}},
		{"honest reports, the audio placed 15 ms late", []composition.Mapping{report(1, 0, 0)}, aFirst + 0.015,
			func(T float64) float64 { return vFirst + 0.015 + T }},
		{"a clock set back 50 ms at 5 s", []composition.Mapping{report(1, 0, 0), report(5, 0, 0.050)}, aFirst,
			func(T float64) float64 {
				if T >= 5-vFirst {
					return vFirst + T - 0.050
				}
				return vFirst + T
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			aSent := at(aFirst)
			last := c.kept[len(c.kept)-1]
			m := &composition.Manifest{Started: start, Stopped: at(10), Tracks: []composition.Track{
				{StreamID: "s1", UserID: "alice", Kind: "AUDIO", File: "tracks/a.ogg", Offset: 0.1, MediaOffset: f(c.aPlaced),
					Timing: &composition.TrackTiming{ClockRate: aRate, RTPZero: aZero, MixSent: &aSent, MixPlaced: true}},
				{StreamID: "s1", UserID: "alice", Kind: "VIDEO", File: "tracks/v.webm", Offset: 0.1, MediaOffset: f(vFirst + 0.001),
					Timing: &composition.TrackTiming{ClockRate: vRate, RTPZero: vZero, SenderReportNTP: &last.NTP,
						SenderReportRTP: last.RTP, Mappings: c.kept}},
			}}
			p, err := newPlan(m, Settings{Layout: "grid", Width: 640, Height: 360, FPS: 30},
				func(string) videoInfo { return videoInfo{ok: true, w: 640, h: 480} })
			if err != nil {
				t.Fatal(err)
			}
			if len(p.tiles) != 1 || len(p.tiles[0].sources) != 1 {
				t.Fatalf("tiles %+v, want one with one video", p.tiles)
			}
			s := p.tiles[0].sources[0]
			placed := func(T float64) float64 {
				v := s.at + T
				for _, st := range s.steps {
					if T >= st.File {
						v += st.By
					}
				}
				return v
			}
			t.Logf("zero %.4f s, steps %+v", s.at, s.steps)
			for T := 0.0; T < 9.6; T += 0.1 {
				if d := placed(T) - c.want(T); math.Abs(d) > 0.002 {
					t.Errorf("the frame at file time %.1f s placed at %.4f s: %+.1f ms from where it belongs", T, placed(T), d*1000)
				}
			}
		})
	}
}
