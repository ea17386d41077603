package composite

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The ffmpeg filter graph. Each tile is built at its largest size on a
// stream of its own that lasts while the participant is present: a dark
// placeholder with the name, the participant's video over it (placed at its
// offset, letterboxed), the blackout marker, the name label. The tile is
// then split into the sizes the layout uses and each copy is overlaid on the
// canvas with x, y and enable expressions over time. ffmpeg
// runs in a working directory holding the font and the texts (font.ttf,
// name{i}.txt), so that no path or name is ever quoted into the graph.

const (
	placeholderColor = "0x2b2b2b"
	fontFile         = "font.ttf"
	pausedText       = "paused.txt"
	blackoutText     = "blackout.txt"
)

// graph is the filter graph of a plan and the files its working directory needs.
type graph struct {
	script string            // -filter_complex_script
	inputs []string          // video track files (relative), in input order
	texts  map[string]string // file name → content
	audio  bool              // the mix is the input after the videos
}

// buildGraph writes the filter graph of p; withAudio says whether the mix
// is given as the last input.
func buildGraph(p *plan, withAudio bool) *graph {
	g := &graph{texts: map[string]string{pausedText: "paused", blackoutText: "blacked out"}, audio: withAudio}
	fps := p.tl.fps
	var b strings.Builder
	line := func(format string, a ...any) {
		fmt.Fprintf(&b, format, a...)
		b.WriteString(";\n")
	}
	type copyOf struct {
		label string
		w, h  int
		ps    []place
	}
	var copies []copyOf
	for i, t := range p.tiles {
		if len(t.places) == 0 {
			continue
		}
		bw, bh := 0, 0
		sizes := map[[2]int][]place{}
		var order [][2]int
		for _, pl := range t.places {
			k := [2]int{pl.b.w, pl.b.h}
			if sizes[k] == nil {
				order = append(order, k)
			}
			sizes[k] = append(sizes[k], pl)
			if pl.b.w*pl.b.h > bw*bh {
				bw, bh = pl.b.w, pl.b.h
			}
		}
		name := fmt.Sprintf("name%d.txt", i)
		g.texts[name] = cleanName(t.name)
		// The placeholder: from the tile's first frame to its last.
		cur := fmt.Sprintf("t%db0", i)
		line("color=c=%s:s=%dx%d:r=%d,trim=end_frame=%d,setpts=PTS+%d/(%d*TB),"+
			"drawtext=fontfile=%s:textfile=%s:expansion=none:fontcolor=white@0.8:fontsize=%d:x=(w-text_w)/2:y=(h-text_h)/2[%s]",
			placeholderColor, bw, bh, fps, t.to-t.from, t.from, fps, fontFile, name, max(8, bh/8), cur)
		for k, s := range t.sources {
			in := len(g.inputs)
			g.inputs = append(g.inputs, s.file)
			fw, fh := fitAspect(s.w, s.h, bw, bh)
			src := fmt.Sprintf("t%ds%d", i, k)
			// The frame of file time T at s.at + T, moved by the steps
			// of its sender's clock from where each begins.
			at := num(s.at)
			for _, st := range s.steps {
				sign := "+"
				if st.By < 0 {
					sign = "-"
				}
				at += fmt.Sprintf("%s%s*gte(T,%s)", sign, num(math.Abs(st.By)), num(st.File))
			}
			line("[%d:v]scale=%d:%d,setsar=1,pad=%d:%d:(ow-iw)/2:(oh-ih)/2:color=%s,setpts='PTS-STARTPTS+(%s)/TB',fps=%d[%s]",
				in, fw, fh, bw, bh, placeholderColor, at, fps, src)
			next := fmt.Sprintf("t%db%d", i, k+1)
			line("[%s][%s]overlay=eof_action=pass[%s]", cur, src, next)
			cur = next
		}
		var dec []string
		if len(t.blackouts) > 0 {
			var terms []string
			for _, s := range t.blackouts {
				terms = append(terms, fmt.Sprintf("between(t,%s,%s)", num(s.from-0.5/float64(fps)), num(s.to-0.5/float64(fps))))
			}
			on := strings.Join(terms, "+")
			dec = append(dec,
				fmt.Sprintf("drawbox=x=0:y=0:w=iw:h=ih:color=black@0.8:t=fill:enable='%s'", on),
				fmt.Sprintf("drawbox=x=0:y=0:w=iw:h=ih:color=red:t=%d:enable='%s'", max(2, even(bh/24)), on),
				fmt.Sprintf("drawtext=fontfile=%s:textfile=%s:expansion=none:fontcolor=red:fontsize=%d:x=(w-text_w)/2:y=(h-text_h)/2:enable='%s'",
					fontFile, blackoutText, max(8, bh/10), on))
		}
		dec = append(dec, fmt.Sprintf("drawtext=fontfile=%s:textfile=%s:expansion=none:fontcolor=white:fontsize=%d:x=%d:y=h-text_h-%d:box=1:boxcolor=black@0.55:boxborderw=%d",
			fontFile, name, max(8, bh/14), max(2, bh/30), max(2, bh/30), max(1, bh/90)))
		var outs []string
		for k := range order {
			outs = append(outs, fmt.Sprintf("[t%dz%d]", i, k))
		}
		line("[%s]%s,split=%d%s", cur, strings.Join(dec, ","), len(order), strings.Join(outs, ""))
		for k, sz := range order {
			label := fmt.Sprintf("t%dz%d", i, k)
			if sz != [2]int{bw, bh} {
				sized := fmt.Sprintf("t%dy%d", i, k)
				line("[%s]scale=%d:%d[%s]", label, sz[0], sz[1], sized)
				label = sized
			}
			copies = append(copies, copyOf{label, sz[0], sz[1], sizes[sz]})
		}
	}
	line("color=c=black:s=%dx%d:r=%d,trim=end_frame=%d[c0]", p.s.Width, p.s.Height, fps, p.tl.frames)
	canvas := "c0"
	for k, c := range copies {
		var on, xs, ys []string
		for _, pl := range c.ps {
			term := frames(pl.from, pl.to, fps)
			on = append(on, term)
			if pl.b.x != 0 {
				xs = append(xs, fmt.Sprintf("%d*%s", pl.b.x, term))
			}
			if pl.b.y != 0 {
				ys = append(ys, fmt.Sprintf("%d*%s", pl.b.y, term))
			}
		}
		next := fmt.Sprintf("c%d", k+1)
		line("[%s][%s]overlay=x='%s':y='%s':enable='%s':eof_action=pass[%s]",
			canvas, c.label, sum(xs), sum(ys), strings.Join(on, "+"), next)
		canvas = next
	}
	var final []string
	if len(p.paused) > 0 {
		var terms []string
		for _, s := range p.paused {
			terms = append(terms, frames(p.tl.frame(s.from), p.tl.frame(s.to), fps))
		}
		on := strings.Join(terms, "+")
		final = append(final,
			fmt.Sprintf("drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='%s'", on),
			fmt.Sprintf("drawtext=fontfile=%s:textfile=%s:expansion=none:fontcolor=white@0.7:fontsize=%d:x=(w-text_w)/2:y=(h-text_h)/2:enable='%s'",
				fontFile, pausedText, max(8, p.s.Height/12), on))
	}
	final = append(final, "format=yuv420p")
	fmt.Fprintf(&b, "[%s]%s[v]", canvas, strings.Join(final, ","))
	if withAudio { // the mix, padded or cut to the composite's length
		fmt.Fprintf(&b, ";\n[%d:a]aresample=48000,apad=whole_dur=%s,atrim=end=%s[a]", len(g.inputs), num(p.dur), num(p.dur))
	}
	g.script = b.String()
	return g
}

// frames is an expression true during frames [from, to): on time, not on
// the frame number n, because a two-input filter's timeline evaluates n on
// whichever input delivered last, and the tiles start later than the canvas.
func frames(from, to, fps int) string {
	return fmt.Sprintf("gte(t,%s)*lt(t,%s)", num((float64(from)-0.5)/float64(fps)), num((float64(to)-0.5)/float64(fps)))
}

// fitAspect returns the even size of a w×h picture letterboxed into bw×bh.
func fitAspect(w, h, bw, bh int) (int, int) {
	if w <= 0 || h <= 0 {
		return bw, bh
	}
	fw, fh := bw, bw*h/w
	if fh > bh {
		fw, fh = bh*w/h, bh
	}
	return max(2, even(fw)), max(2, even(fh))
}

// sum joins expression terms with "+" ("0" when none).
func sum(terms []string) string {
	if len(terms) == 0 {
		return "0"
	}
	return strings.Join(terms, "+")
}

// num formats seconds for an expression.
func num(v float64) string { return strconv.FormatFloat(v, 'f', 6, 64) }

// cleanName makes a participant name safe to draw: printable, one line,
// at most 64 characters.
func cleanName(s string) string {
	r := []rune(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s))
	if len(r) > 64 {
		r = append(r[:63], '…')
	}
	if len(r) == 0 {
		return "?"
	}
	return string(r)
}
