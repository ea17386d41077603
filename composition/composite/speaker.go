package composite

import (
	"math"
)

// The active speaker: each participant's audio level per window, from their
// own audio tracks (not the mix, where everyone is summed), and a choice with
// hysteresis so that the main area does not flicker between people who
// answer each other briefly or cough.
const (
	levelWindow  = 0.1   // seconds per level
	speechLevel  = -45.0 // dBFS: quieter is not speaking
	switchMargin = 3.0   // dB louder than the current speaker ...
	switchHold   = 1.0   // ... for this long (seconds) before the main area changes
)

// levelsOf returns the RMS level in dBFS of every levelWindow of pcm (mono,
// at rate), -inf for silence.
func levelsOf(pcm []int16, rate int) []float64 {
	n := int(levelWindow * float64(rate))
	out := make([]float64, 0, len(pcm)/n+1)
	for i := 0; i < len(pcm); i += n {
		w := pcm[i:min(len(pcm), i+n)]
		sum := 0.0
		for _, v := range w {
			sum += float64(v) * float64(v)
		}
		out = append(out, 20*math.Log10(math.Sqrt(sum/float64(len(w)))/32768))
	}
	return out
}

// speakerTurns chooses the active speaker over the timeline. levels holds,
// by tile key, the tile's level of every window of the composite (windows
// outside the tile's presence are ignored). A new speaker takes over when
// they have been the loudest, by switchMargin over the current one, for
// switchHold; the change is placed where they started (the whole recording
// is known: no need to show the switch late). When the speaker leaves, the
// loudest (or first) participant present takes over at once.
func (p *plan) speakerTurns(levels map[string][]float64) []turn {
	fps := float64(p.tl.fps)
	windows := int(math.Ceil(float64(p.tl.frames) / fps / levelWindow))
	hold := int(math.Round(switchHold / levelWindow))
	level := func(t *tile, w int) float64 {
		lv := levels[t.key]
		if w >= len(lv) || math.IsNaN(lv[w]) {
			return math.Inf(-1)
		}
		return lv[w]
	}
	var turns []turn
	var cur *tile
	var cand *tile
	candFrom := 0
	for w := 0; w < windows; w++ {
		f := int(math.Round(float64(w) * levelWindow * fps))
		var present []*tile
		var loudest *tile
		for _, t := range p.tiles {
			if t.screen || f < t.from || f >= t.to {
				continue
			}
			present = append(present, t)
			if level(t, w) > speechLevel && (loudest == nil || level(t, w) > level(loudest, w)) {
				loudest = t
			}
		}
		if len(present) == 0 {
			cur, cand = nil, nil
			continue
		}
		if cur == nil || f >= cur.to || f < cur.from {
			cur, cand = present[0], nil
			if loudest != nil {
				cur = loudest
			}
			turns = append(turns, turn{f, cur.key})
			continue
		}
		if loudest == nil || loudest == cur || level(loudest, w) < level(cur, w)+switchMargin {
			cand = nil
			continue
		}
		if loudest != cand {
			cand, candFrom = loudest, f
		}
		if f-candFrom >= int(float64(hold)*levelWindow*fps) {
			cur, cand = loudest, nil
			at := max(candFrom, cur.from)
			if n := len(turns); n > 0 && turns[n-1].frame >= at {
				at = turns[n-1].frame + 1
			}
			turns = append(turns, turn{at, cur.key})
		}
	}
	return turns
}
