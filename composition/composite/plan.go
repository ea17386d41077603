package composite

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/media/pause"
)

// The plan: what the composite shows, where and when. Times are output frame
// numbers (frame n is shown at n/fps seconds of the composite), so that
// every layout change falls on a frame and ffmpeg's expressions compare
// integers.

// span is a time interval in seconds.
type span struct{ from, to float64 }

// timeline maps the recording's wall-clock time (seconds from its start) to
// the composite's: with pauseBehavior skip the paused intervals are cut out,
// as they are from the mix and the track files.
type timeline struct {
	skip   []span // cut out, sorted, wall-clock seconds
	fps    int
	frames int // the composite's length
}

// out maps a wall-clock time to the composite's time: an instant inside a
// cut pause maps to the cut.
func (tl *timeline) out(wall float64) float64 {
	shift := 0.0
	for _, p := range tl.skip {
		switch {
		case wall >= p.to:
			shift += p.to - p.from
		case wall > p.from:
			return p.from - shift
		}
	}
	return wall - shift
}

// frame returns the frame shown at composite time t, within [0, frames].
func (tl *timeline) frame(t float64) int {
	if math.IsNaN(t) {
		return 0
	}
	return int(max(0, min(float64(tl.frames), math.Round(t*float64(tl.fps)))))
}

// box is a rectangle of the canvas, in pixels; every value is even.
type box struct{ x, y, w, h int }

// place is where a tile is shown during frames [from, to).
type place struct {
	from, to int
	b        box
}

// source is a video track file shown in a tile.
type source struct {
	file  string             // path relative to the recording
	at    float64            // composite time of the file's time zero
	steps []composition.Step // its sender's clock slipped: from each step's file time on, moved by it
	w, h  int                // size of the first frame
}

// audioTrack is an audio track of a tile (for the speaker's levels).
type audioTrack struct {
	file string
	at   float64 // composite time of the file's start
}

// tile is one participant's place in the composite (or one screen share).
type tile struct {
	key       string // unique: user id and join, or the screen's stream
	name      string // drawn on the tile
	user      string
	screen    bool
	from, to  int // frames during which the participant is in the conference
	sources   []source
	audio     []audioTrack
	blackouts []span // composite seconds
	places    []place
}

// plan is the whole composite.
type plan struct {
	s      Settings
	tl     timeline
	dur    float64 // seconds: the mix's length (the recording's, less skipped pauses)
	tiles  []*tile // in order of joining
	paused []span  // composite seconds shown black (pauseBehavior silence)
}

// videoInfo is what ffprobe says of a video track file.
type videoInfo struct {
	ok    bool    // the file has a decodable video stream
	start float64 // time of the first frame, seconds
	w, h  int
}

// newPlan builds the tiles and the timeline of m. probe returns the video
// information of a track file (relative path).
func newPlan(m *composition.Manifest, s Settings, probe func(file string) videoInfo) (*plan, error) {
	p := &plan{s: s, tl: timeline{fps: s.FPS}}
	wallEnd := m.Stopped.Sub(m.Started).Seconds()
	if m.Started.IsZero() || m.Stopped.IsZero() || !(wallEnd > 0) || wallEnd > 48*3600 {
		return nil, fmt.Errorf("composite: the manifest spans %v: no recording to compose", m.Stopped.Sub(m.Started))
	}
	for _, ps := range m.Pauses {
		end := ps.End
		if !(end > ps.Start) {
			end = wallEnd
		}
		if m.PauseBehavior == pause.Skip {
			p.tl.skip = append(p.tl.skip, span{ps.Start, end})
		}
	}
	slices.SortFunc(p.tl.skip, func(a, b span) int { return cmp.Compare(a.from, b.from) })
	dur := p.tl.out(wallEnd)
	if m.Mix != nil && m.Mix.Duration > 0 && math.Abs(m.Mix.Duration-dur) < 0.5+dur*0.01 {
		dur = m.Mix.Duration // the composite lasts as long as its audio
	}
	p.dur = dur
	// The video ends at or before the audio: the composite lasts exactly as long.
	p.tl.frames = int(math.Floor(dur*float64(s.FPS) + 1e-6))
	if p.tl.frames < 1 {
		return nil, fmt.Errorf("composite: the recording lasts %.3fs: nothing to compose", dur)
	}
	if m.PauseBehavior != pause.Skip {
		for _, ps := range m.Pauses {
			end := ps.End
			if !(end > ps.Start) {
				end = wallEnd
			}
			p.paused = append(p.paused, span{p.tl.out(ps.Start), p.tl.out(end)})
		}
	}

	// Group tracks: a screen share is a tile of its own; a participant's
	// other tracks (camera, microphone, in one stream or several) make one
	// tile per stretch of presence (leave and come back: two tiles).
	type member struct {
		t        composition.Track
		from, to float64 // wall-clock
	}
	groups := map[string][]member{}
	var order []string
	for _, t := range m.Tracks {
		if t.Kind != "AUDIO" && t.Kind != "VIDEO" {
			continue
		}
		if strings.Contains(t.File, "..") || strings.HasPrefix(t.File, "/") || t.File == "" {
			return nil, fmt.Errorf("composite: track file %q leaves the recording", t.File)
		}
		if !(t.Offset >= 0) || t.Offset > wallEnd {
			continue // starts outside the recording
		}
		to := wallEnd
		if t.Duration > 0 {
			to = min(wallEnd, t.Offset+t.Duration)
		}
		key := "u:" + t.UserID
		if t.UserID == "" {
			key = "s:" + t.StreamID
		}
		if t.StreamType == "SCREEN" {
			if t.Kind != "VIDEO" {
				continue // a shared tab's audio is in the mix; it gets no tile
			}
			key = "screen:" + t.StreamID
		}
		if groups[key] == nil {
			order = append(order, key)
		}
		groups[key] = append(groups[key], member{t, t.Offset, to})
	}
	for _, key := range order {
		ms := groups[key]
		slices.SortStableFunc(ms, func(a, b member) int { return cmp.Compare(a.from, b.from) })
		var cur *tile
		curEnd := 0.0
		for _, mb := range ms {
			if cur == nil || mb.from > curEnd+1 { // more than a second apart: left and came back
				cur = &tile{key: fmt.Sprintf("%s#%d", key, len(p.tiles)), user: mb.t.UserID,
					screen: strings.HasPrefix(key, "screen:"), from: p.tl.frame(p.tl.out(mb.from))}
				cur.name = mb.t.UserID
				if cur.name == "" {
					cur.name = mb.t.StreamID
				}
				if cur.screen {
					cur.name += " (screen)"
				}
				p.tiles = append(p.tiles, cur)
				curEnd = mb.to
			}
			curEnd = max(curEnd, mb.to)
			cur.to = p.tl.frame(p.tl.out(curEnd))
			at := p.tl.out(mb.from)
			if mb.t.Kind == "AUDIO" {
				if zero := mb.t.MediaOffset; zero != nil && *zero >= mb.t.Offset-1 && *zero <= wallEnd { // captured before the track joined too
					at = p.tl.out(*zero) // where the mix put its first sample
				}
				cur.audio = append(cur.audio, audioTrack{file: mb.t.File, at: at})
				continue
			}
			steps := mb.t.Timing.Steps()
			if zero, late, ok := videoZero(m, mb.t); ok && zero >= mb.t.Offset-1 && zero <= wallEnd {
				at = p.tl.out(zero) // the file's time zero is its first packet, not the track's start
				steps = leastLate(steps, late)
			}
			if vi := probe(mb.t.File); vi.ok && vi.w > 0 && vi.h > 0 {
				cur.sources = append(cur.sources, source{file: mb.t.File, at: at + max(0, vi.start), w: vi.w, h: vi.h,
					steps: steps})
			}
		}
	}
	p.tiles = slices.DeleteFunc(p.tiles, func(t *tile) bool { return t.to <= t.from })
	slices.SortStableFunc(p.tiles, func(a, b *tile) int { return cmp.Compare(a.from, b.from) })
	for _, b := range m.Blackouts {
		end := b.End
		if !(end > b.Start) {
			end = wallEnd
		}
		for _, t := range p.tiles {
			if t.user == b.UserID && b.UserID != "" && !t.screen {
				t.blackouts = append(t.blackouts, span{p.tl.out(b.Start), p.tl.out(end)})
			}
		}
	}
	if s.Layout == LayoutSingle {
		p.tiles = slices.DeleteFunc(p.tiles, func(t *tile) bool { return t.user != s.UserID })
		if len(p.tiles) == 0 {
			return nil, fmt.Errorf("composite: participant %q is not in the recording", s.UserID)
		}
	}
	return p, nil
}

// videoZero returns where a video track's file begins on the recording's
// timeline (seconds from its start): by its sender's clock when the sender
// reported it for this track and for an audio track of the same stream, so
// that the picture keeps the distance to the sound that it had when both
// were captured; otherwise the file's own time zero (mediaOffset: the least
// late arrival of its first packets).
//
// The audio track's mediaOffset is where the mix put its first sample, by
// the same sender's report or by arrival; the video goes where the sender's
// clock puts it relative to that: mediaOffset(audio) + (sent(video) −
// sent(audio)). sent(video) is when the video file's first frame was sent
// by the first RTCP sender report its track kept
// (composition.TrackTiming.FirstSent; the latest, in a manifest without
// mappings), which buildGraph places it by before its clock's steps;
// sent(audio), the instant of the sender's clock that the live mix put at
// mediaOffset, by the reports as it followed them
// (composition.TrackTiming.PlacedSent): a first audio report stamped late,
// which the mix left out, would put the video early by as much. A report
// that places the video more than a second from its arrival is not
// believed.
//
// A sender report never places the video after its receipt, as the mix
// never places audio after its receipt (media's first-anchor clamp): Pion
// stamps a report by when it last wrote a packet, so a write that lagged
// makes a report late by the lag (the first, as the publisher starts: 31,
// 35 and 800 ms seen, and while its writes lag, the next ones too), and the
// video was placed that late until a later report's step back was
// confirmed (the composite's A/V offset +44 ms). When the first report
// places the first frame after its arrival and a later report kept goes
// back from it, the first was stamped late: by the lesser of the two
// (late; the furthest step back, when several are), the video is placed
// that much earlier, and its steps follow the least-late report from each
// on (leastLate). Either alone is no proof: the audio placed late by its
// arrivals puts the video after its own arrival too (then the distance to
// the sound is what counts), and a sender whose clock was set back steps
// back.
func videoZero(m *composition.Manifest, v composition.Track) (zero, late float64, ok bool) {
	arrival, ok := 0.0, v.MediaOffset != nil
	if ok {
		arrival = *v.MediaOffset
	}
	vs, vok := v.Timing.FirstSent()
	if !vok || v.StreamID == "" {
		return arrival, 0, ok
	}
	for _, a := range m.Tracks {
		if a.Kind != "AUDIO" || a.StreamID != v.StreamID || a.MediaOffset == nil {
			continue
		}
		as, aok := a.Timing.PlacedSent()
		if !aok {
			continue
		}
		zero := *a.MediaOffset + vs.Sub(as).Seconds()
		if !ok {
			return zero, 0, true
		}
		if math.Abs(zero-arrival) > 1 {
			return arrival, 0, true // the sender's clocks disagree with the arrivals: not one clock
		}
		back := 0.0
		for _, st := range v.Timing.Steps() {
			back = min(back, st.By)
		}
		if zero > arrival {
			late = min(zero-arrival, -back)
		}
		return zero - late, late, true
	}
	return arrival, 0, ok
}

// leastLate returns a video's steps (relative to its first report) once
// videoZero found that report late by late (seconds, > 0): relative to the
// first report as corrected, and each following the least-late report from
// its own on, since a report that one after it places earlier was stamped
// late as well (Pion's reports come late, never early: a step back after
// a late first report is a late report taken back; a step forward, a
// capture that lost time, stays). Unchanged when late is 0.
func leastLate(steps []composition.Step, late float64) []composition.Step {
	if late <= 0 {
		return steps
	}
	out := slices.Clone(steps)
	least := math.Inf(1)
	for i := len(out) - 1; i >= 0; i-- {
		least = min(least, out[i].By)
		out[i].By = least + late
	}
	return out
}

// turn is a change of active speaker at a frame.
type turn struct {
	frame int
	key   string // the speaker's tile
}

// layout places the tiles over the whole timeline; turns (speaker layout)
// says who speaks from when.
func (p *plan) layout(turns []turn) {
	cuts := []int{0, p.tl.frames}
	for _, t := range p.tiles {
		cuts = append(cuts, t.from, t.to)
	}
	for _, tr := range turns {
		cuts = append(cuts, tr.frame)
	}
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)
	for i := 0; i+1 < len(cuts); i++ {
		from, to := cuts[i], cuts[i+1]
		if from >= p.tl.frames || to <= from {
			continue
		}
		var cams, screens []*tile
		for _, t := range p.tiles {
			if t.from <= from && from < t.to {
				if t.screen {
					screens = append(screens, t)
				} else {
					cams = append(cams, t)
				}
			}
		}
		speaker := ""
		for _, tr := range turns {
			if tr.frame <= from {
				speaker = tr.key
			}
		}
		for t, b := range p.arrange(cams, screens, speaker) {
			t.places = appendPlace(t.places, place{from, to, b})
		}
	}
}

// appendPlace appends pl, merging it with the last place when they touch
// with the same box.
func appendPlace(ps []place, pl place) []place {
	if n := len(ps); n > 0 && ps[n-1].to == pl.from && ps[n-1].b == pl.b {
		ps[n-1].to = pl.to
		return ps
	}
	return append(ps, pl)
}

// arrange returns the boxes of the visible tiles: the newest screen share in
// the main area and everyone else in a strip; otherwise a grid, or the
// speaker in the main area.
func (p *plan) arrange(cams, screens []*tile, speaker string) map[*tile]box {
	W, H := p.s.Width, p.s.Height
	out := map[*tile]box{}
	var main *tile
	var strip []*tile
	switch {
	case len(screens) > 0:
		main = screens[len(screens)-1]
		strip = append(cams, screens[:len(screens)-1]...)
	case p.s.Layout == LayoutSpeaker && len(cams) > 0:
		main = cams[0]
		for _, t := range cams {
			if t.key == speaker {
				main = t
			}
		}
		for _, t := range cams {
			if t != main {
				strip = append(strip, t)
			}
		}
	default: // grid, and single (one participant)
		n := len(cams)
		if n == 0 {
			return out
		}
		cols := int(math.Ceil(math.Sqrt(float64(n))))
		rows := (n + cols - 1) / cols
		cw, ch := W/cols, H/rows
		w, h := fit(cw, ch)
		for i, t := range cams {
			r, c := i/cols, i%cols
			inRow := min(cols, n-r*cols) // the last row is centred
			x0 := (W - inRow*cw) / 2
			out[t] = box{even(x0 + c*cw + (cw-w)/2), even(r*ch + (ch-h)/2), w, h}
		}
		return out
	}
	if len(strip) == 0 {
		w, h := fit(W, H)
		out[main] = box{even((W - w) / 2), even((H - h) / 2), w, h}
		return out
	}
	sh := even(H / 5)
	w, h := fit(W, H-sh)
	out[main] = box{even((W - w) / 2), 0, w, h}
	tw, th := fit(W/len(strip), sh)
	x0 := (W - len(strip)*tw) / 2
	for i, t := range strip {
		out[t] = box{even(x0 + i*tw), even(H - sh + (sh-th)/2), tw, th}
	}
	return out
}

// fit returns the largest even 16:9 size within w×h (at least 2×2).
func fit(w, h int) (int, int) {
	fw, fh := w, w*9/16
	if fh > h {
		fw, fh = h*16/9, h
	}
	return max(2, even(fw)), max(2, even(fh))
}

func even(v int) int { return v &^ 1 }
