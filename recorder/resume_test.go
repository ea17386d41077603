package recorder

import (
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/media"
	"github.com/rtcrec/recorder/media/g711"
	"github.com/rtcrec/recorder/media/pause"
	"github.com/rtcrec/recorder/media/reorder"
	"github.com/rtcrec/recorder/recorder/conference"
)

// TestMediaSink_ALateResumeIsInTheOfflineMixAsInTheLive: issue 10's "the
// offline `recorder mix` re-applies pauses and blackouts from the manifest
// and gives the same mix", for a track whose packets come late across a
// resume. A µ-law track (a level per packet: every sample of a mix says
// which packet it came from) recorded through its sink (gate, reorder stage,
// sender reports a second apart by its clock, receive times) into an 8 kHz
// mix with the default 5 s budget, paused with silence from 2 s to 4 s. Its
// packets sent from 3.5 s to 6.8 s reach the machine in one burst at 6.8 s
// (a publisher starved of CPU, as in session 22's run at load 19, whose
// publishers wrote up to 2.7 s late), then in real time: the first packet
// after the resume comes 2.8 s late. The offline mix of the manifest (the
// track at its mediaOffset and its timing's steps, the pause) is the live
// mix, sample for sample, and every packet outside the pause is at its own
// place in both. Before, the live mix re-anchored that packet at its
// arrival (a first packet after a pause later than half the budget was
// taken for a sender whose timestamps stood still, though its reports
// placed it by them), and every packet of the burst more than a second
// ahead of its arrival again: the live mix lacked the 1.8 s after the resume
// and held the rest late, while the manifest's moves (which stop at a
// re-anchor) left the offline mix at the timestamps, as the track file.
//
// Without reports nothing tells late packets from timestamps that stood
// still through the pause: the live mix re-anchors the first packet after
// the resume at its arrival (by design) and the rest of the burst with it;
// the offline mix is the live one all the same, sample for sample: the
// manifest's moves follow the live mix across a re-anchor (where the file
// has each packet, whatever its timestamp; a re-anchor's settling moves
// what it placed) and a step back lays the audio after it over the
// silence the file holds for a loss or a re-anchor's gap. Before, the moves
// stopped at the first re-anchor: the offline mix kept the timestamps (the
// audio after the resume 1.8 s earlier than in the live mix).
func TestMediaSink_ALateResumeIsInTheOfflineMixAsInTheLive(t *testing.T) {
	t.Run("with reports", func(t *testing.T) { lateResume(t, true) })
	t.Run("without reports", func(t *testing.T) { lateResume(t, false) })
}

// lateResume is TestMediaSink_ALateResumeIsInTheOfflineMixAsInTheLive, the
// sender sending reports or not.
func lateResume(t *testing.T, reports bool) {
	const (
		rate              = 8000
		n                 = 500 // 10 s of 20 ms packets
		pauseFrom         = 2 * time.Second
		pauseTo           = 4 * time.Second
		heldFrom, release = 3.5, 6.8 // seconds: sent in [heldFrom, release) reach the machine at release
	)
	start := time.Unix(1000, 0)
	now := start
	ms, out, path := muLawSink(t, start, &now, 0)
	mixer := ms.mixer
	pipe := ms.audio.(*media.AudioPipeline)
	ms.logPlacement(pipe, 1)
	ms.moves = &mixMoves{rate: rate, clock: rate}
	ms.srs = &senderClock{rate: rate}
	ms.order = reorder.New((*trackFile)(ms), reorderConfig(conference.KindAudio, 0))
	sr := &conference.SenderReport{}
	ms.sr = func() (conference.SenderReport, bool) { return *sr, !sr.Arrived.IsZero() }
	lc := &pauseState{}
	g := &gate{lc: lc, in: ms.in, clock: rate}
	lc.gates = map[*gate]string{g: "u"}
	ms.gate = g
	sent := func(i int) time.Duration { return time.Duration(i) * 20 * time.Millisecond }
	arrived := func(i int) time.Duration {
		if s := sent(i).Seconds(); s >= heldFrom && s < release {
			return time.Duration(release*float64(time.Second)) + time.Duration(i)*time.Microsecond // in order
		}
		return sent(i) + 5*time.Millisecond
	}
	ms.receipts = sentAt(func(seq uint16) time.Time { return start.Add(arrived(int(seq))) })
	level := func(i int) byte { return byte(0x80 + i%100) } // never µ-law silence
	p := &rtp.Packet{Header: rtp.Header{SSRC: 1}, Payload: make([]byte, 160)}
	next, reported := 0, time.Duration(-time.Hour)
	for d := time.Duration(0); d < sent(n)+100*time.Millisecond; d += 5 * time.Millisecond {
		for ; next < n && arrived(next) <= d; next++ {
			now = start.Add(arrived(next))
			if reports && now.Sub(start)-reported >= time.Second { // its report, sent with it: its capture ↔ its timestamp
				reported = now.Sub(start)
				*sr = conference.SenderReport{SSRC: 1, NTP: start.Add(sent(next)), RTPTime: uint32(160 * next), Arrived: now}
			}
			p.SequenceNumber, p.Timestamp = uint16(next), uint32(160*next)
			for k := range p.Payload {
				p.Payload[k] = level(next)
			}
			if err := ms.WriteRTP(p); err != nil {
				t.Fatal(err)
			}
		}
		now = start.Add(d)
		switch d {
		case pauseFrom: // as Manager.setPaused does with silence
			pos := mixer.PosAt(now)
			lc.paused.Store(true)
			lc.cut.Store(&cutSpan{pos, openSpan})
			mixer.Silence(pos)
		case pauseTo:
			c := &cutSpan{lc.cut.Load().from, mixer.PosAt(now)}
			mixer.Unsilence(c.to)
			lc.resume(c)
			lc.paused.Store(false)
		}
		if d%(20*time.Millisecond) == 0 {
			if err := mixer.Step(); err != nil {
				t.Fatal(err)
			}
		}
	}
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
		t.Fatal("no origin: nothing placed")
	}
	origin := float64(o) / rate
	timing := ms.trackTiming(rate)
	m := &composition.Manifest{Started: start, Stopped: now, PauseBehavior: pause.Silence,
		Tracks: []composition.Track{{Kind: "AUDIO", UserID: "u", File: filepath.Base(path), MediaOffset: &origin, Timing: timing}},
		Pauses: []composition.Interval{{Start: pauseFrom.Seconds(), End: pauseTo.Seconds()}}}
	offPath := filepath.Join(t.TempDir(), "offline.wav")
	if _, err := composition.MixManifest(m, filepath.Dir(path), offPath, rate); err != nil {
		t.Fatal(err)
	}
	data := wavData(t, offPath)
	off := make([]int16, len(data)/2)
	for i := range off {
		off[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
	}
	live := out.pcm
	t.Logf("origin %.4f s, steps %+v; %+v", origin, timing.Steps(), pipe.Stats())
	if len(live) != len(off) {
		t.Errorf("the live mix has %d samples, the offline one %d", len(live), len(off))
	}
	// Which packet each 20 ms frame holds (-1: silence, or not one packet).
	frames := func(pcm []int16) []int {
		var out []int
		for f := 0; f+160 <= len(pcm); f += 160 {
			k := -1
			for i := range 100 {
				if v := g711.DecodeMuLaw(level(i)); pcm[f] == v && pcm[f+159] == v {
					k = i
				}
			}
			out = append(out, k)
		}
		return out
	}
	lf, of := frames(live), frames(off)
	var wrongLive, wrongOff []float64
	for f := range n {
		want := f % 100
		if f >= int(pauseFrom/(20*time.Millisecond)) && f < int(pauseTo/(20*time.Millisecond)) {
			want = -1
		}
		if f >= len(lf) || lf[f] != want {
			wrongLive = append(wrongLive, float64(f)/50)
		}
		if f >= len(of) || of[f] != want {
			wrongOff = append(wrongOff, float64(f)/50)
		}
	}
	if !reports {
		wrongLive, wrongOff = nil, nil // the live mix re-anchors (above): where it put the audio is the offline mix's too
	}
	if len(wrongLive) > 0 {
		t.Errorf("%d frames of the live mix do not hold their own packet (or silence in the pause), from %.2f s", len(wrongLive), wrongLive[0])
	}
	if len(wrongOff) > 0 {
		t.Errorf("%d frames of the offline mix do not hold their own packet (or silence in the pause), from %.2f s", len(wrongOff), wrongOff[0])
	}
	differ, first := 0, -1
	for i := range min(len(live), len(off)) {
		if live[i] != off[i] {
			if differ++; first < 0 {
				first = i
			}
		}
	}
	if differ > 0 {
		t.Errorf("the offline mix differs from the live one in %d samples, the first at %.4f s", differ, float64(first)/rate)
	}
}
