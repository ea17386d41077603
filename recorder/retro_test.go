package recorder

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/internal/tooltest"
	"github.com/rtcrec/recorder/media"
	"github.com/rtcrec/recorder/media/format"
	"github.com/rtcrec/recorder/media/g711"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/media/wavwriter"
	"github.com/rtcrec/recorder/recorder/conference"
)

// TestClockRelation: packets every 20 ms whose arrivals lag by 0–40 ms of
// jitter (at least one on time per window), timestamps wrapping around:
// the timestamp of an instant is found to within a tick, and a new timeline
// (a jump of minutes) is followed at once.
func TestClockRelation(t *testing.T) {
	c := &clockRelation{clock: 8000}
	base := time.Unix(1_700_000_000, 0)
	ts0 := uint32(1<<32 - 8000*3) // wraps after 3 s
	for i := range 500 {
		jitter := time.Duration(rand.IntN(40)) * time.Millisecond
		if i%25 == 0 {
			jitter = 0
		}
		c.observe(ts0+uint32(i*160), base.Add(time.Duration(i)*20*time.Millisecond+jitter).UnixNano())
	}
	for _, at := range []time.Duration{0, 2500 * time.Millisecond, 9*time.Second + 5*time.Millisecond} {
		got, ok := c.timestampAt(base.Add(at))
		want := ts0 + uint32(at*8000/time.Second)
		if d := int32(got - want); !ok || d < -1 || d > 1 {
			t.Errorf("timestampAt(+%v) = %d, want %d (%v)", at, got, want, ok)
		}
		// And back (the stop's drain without a mix): the instant of a
		// timestamp, on either side of the wrap and past the last packet.
		inst, ok := c.instantOf(want)
		if d := time.Duration(inst - base.Add(at).UnixNano()); !ok || d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("instantOf(%d) = +%v, want +%v (%v)", want, time.Duration(inst-base.UnixNano()), at, ok)
		}
	}
	if _, ok := (&clockRelation{clock: 8000}).instantOf(0); ok {
		t.Error("instantOf before any packet: ok")
	}
	// The sender's timestamps jump (a new timeline): the relation follows.
	later := base.Add(20 * time.Second)
	for i := range 10 {
		c.observe(uint32(i*160), later.Add(time.Duration(i)*20*time.Millisecond).UnixNano())
	}
	if got, _ := c.timestampAt(later.Add(100 * time.Millisecond)); got != 800 {
		t.Errorf("after a jump: timestampAt = %d, want 800", got)
	}
}

// TestClockRelation_LatePacketsKeepTheTimeline: packets 20 ms apart come
// on time for 0.75 s, then in bursts every 500 ms, each burst what was sent
// at least 550 ms before it (a reader starved of CPU behind a busy relay:
// 0.55–1.05 s late, TestServe_StopKeepsTheAudioInFlight/starved/mix_none
// under load): the relation still places every timestamp where it was
// sent, within a millisecond. Before, a packet more than a second later
// than the least restarted it there, and the instants of the packets after
// came 0.4–0.6 s late, so the stop's cut of a recording without a mix left
// out the last 0.4–0.6 s sent before the stop. A sender whose timestamps
// stood still for longer than the budget (its capture stalled 6 s, then it
// went on where it was) is a new timeline: the relation follows it.
func TestClockRelation_LatePacketsKeepTheTimeline(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	const frame = 20 * time.Millisecond
	c := &clockRelation{clock: 8000, budget: 5 * time.Second}
	sent := func(i int) time.Time { return base.Add(time.Duration(i) * frame) }
	const starvedFrom = 750 * time.Millisecond
	var i int
	for ; sent(i).Before(base.Add(starvedFrom)); i++ {
		c.observe(uint32(i*160), sent(i).UnixNano())
	}
	var latest time.Duration // the most a packet came late
	for burst := base.Add(starvedFrom + 500*time.Millisecond); burst.Before(base.Add(3 * time.Second)); burst = burst.Add(500 * time.Millisecond) {
		for ; !sent(i).After(burst.Add(-550 * time.Millisecond)); i++ {
			c.observe(uint32(i*160), burst.UnixNano())
			latest = max(latest, burst.Sub(sent(i)))
		}
	}
	if latest <= time.Second {
		t.Fatalf("the latest packet came %v late, want over a second", latest)
	}
	for _, k := range []int{0, i / 2, i - 1, i + 30} {
		if at, ok := c.instantOf(uint32(k * 160)); !ok || time.Duration(at-sent(k).UnixNano()).Abs() > time.Millisecond {
			t.Errorf("instantOf(packet %d) = %v after it was sent (%v), want 0", k, time.Duration(at-sent(k).UnixNano()), ok)
		}
	}
	// The capture stalls 6 s: the timestamps go on where they were.
	stall := sent(i).Add(6 * time.Second)
	for k := range 10 {
		c.observe(uint32((i+k)*160), stall.Add(time.Duration(k)*frame).UnixNano())
	}
	if at, _ := c.instantOf(uint32(i * 160)); time.Duration(at-stall.UnixNano()).Abs() > time.Millisecond {
		t.Errorf("after a 6 s capture stall: instantOf = %v after the packet came, want 0", time.Duration(at-stall.UnixNano()))
	}
}

// TestEditGuard: an edit never overlaps an owner's write, and owners never
// lose a write while edits come and go.
func TestEditGuard(t *testing.T) {
	var g editGuard
	var inWrite, inEdit atomic.Bool
	var writes atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			g.enter()
			inWrite.Store(true)
			if inEdit.Load() {
				t.Error("write during an edit")
			}
			writes.Add(1)
			inWrite.Store(false)
			g.leave()
		}
	}()
	for range 200 {
		g.edit(func() {
			inEdit.Store(true)
			if inWrite.Load() {
				t.Error("edit during a write")
			}
			time.Sleep(10 * time.Microsecond)
			inEdit.Store(false)
		})
	}
	close(stop)
	wg.Wait()
	if writes.Load() == 0 {
		t.Error("no write went through")
	}
}

// TestPlacementLog: a track placed at 8 kHz from Opus granules (k = 1/6):
// contiguous packets keep one point; a settling anchor that moves back takes
// the settled relation; a re-anchor and a new ratio begin points; positions
// map both ways through the right point.
func TestPlacementLog(t *testing.T) {
	l := &placementLog{k: 8000.0 / 48000}
	l.observe(0, 1000, 1, true)
	l.observe(960, 1160, 1, true)
	l.observe(1920, 1320-40, 1, false) // settled 40 samples earlier: the first point moves
	l.observe(2880, 1440, 1, false)
	if pts := l.points(); len(pts) != 1 || pts[0].pos != 960 || pts[0].settling {
		t.Fatalf("points %+v, want one at 960, settled", pts)
	}
	l.observe(48000, 20000, 1, false) // a new anchor (a resume placed at its arrival)
	l.observe(48960, 20160, 1, false)
	l.observe(96000, 20000+8000*1.0005, 1.0005, false) // resampling begins
	if pts := l.points(); len(pts) != 3 {
		t.Fatalf("points %+v, want 3", pts)
	}
	for _, tc := range []struct {
		file int64
		pos  float64
	}{{0, 960}, {4800, 1760}, {47040, 960 + 47040.0/6}, {48000, 20000}, {72000, 24000}, {96000 + 4800, 28004 + 800*1.0005}} {
		pos, _, ok := l.timelineAt(tc.file)
		if !ok || math.Abs(pos-tc.pos) > 1e-6 {
			t.Errorf("timelineAt(%d) = %v, want %v", tc.file, pos, tc.pos)
		}
		if f, _ := l.fileAt(tc.pos); f < tc.file || f > tc.file+6 {
			t.Errorf("fileAt(%v) = %d, want %d", tc.pos, f, tc.file)
		}
	}
	for range 2 * placementPoints {
		l.observe(int64(l.n)*1e6, float64(l.n)*1e5, 1, false)
	}
	if n := len(l.points()); n != placementPoints {
		t.Errorf("%d points kept, want %d", n, placementPoints)
	}
}

// TestMediaSink_AudioZeroAllocs: an audio track's sink as a recording builds
// it (G.711 file on disk, pipeline into a mixer input, the placement log a
// retroactive blackout re-mixes by) writes a packet without allocating, and
// its log keeps one point while the packets are contiguous.
func TestMediaSink_AudioZeroAllocs(t *testing.T) {
	now := time.Unix(1000, 0) // the mixer's clock: a packet every 20 ms, on time
	mixer := media.NewMixer(media.MixConfig{SampleRate: 8000, Start: now, Clock: func() time.Time { return now }}, nil)
	in := mixer.AddInput("t", media.InputOptions{})
	pipe, err := media.NewAudioPipeline(media.AudioPipelineConfig{Codec: media.CodecPCMU, Input: in})
	if err != nil {
		t.Fatal(err)
	}
	file, err := wavwriter.NewG711(filepath.Join(t.TempDir(), "t.wav"), wavwriter.MuLaw)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	lc := &pauseState{}
	ms := &mediaSink{file: format.G711Writer{G711Writer: file}, audio: pipe, in: in, mixer: mixer, gate: &gate{lc: lc, clock: 8000},
		clk: &clockRelation{clock: 8000}, codec: media.CodecPCMU}
	ms.logPlacement(pipe, 1)
	p := &rtp.Packet{Header: rtp.Header{SSRC: 9, Timestamp: 1}, Payload: make([]byte, 160)}
	step := func() {
		p.SequenceNumber++
		p.Timestamp += 160
		now = now.Add(20 * time.Millisecond)
		if err := ms.WriteRTP(p); err != nil {
			t.Fatal(err)
		}
	}
	for range 50 {
		step()
	}
	if a := testing.AllocsPerRun(500, step); a != 0 {
		t.Errorf("%.1f allocations per audio packet", a)
	}
	if n := len(ms.plog.points()); n != 1 {
		t.Errorf("%d placement points for contiguous packets, want 1", n)
	}
}

// frameSink collects a mixer's output.
type frameSink struct{ pcm []int16 }

func (f *frameSink) WriteFrame(pcm []int16) error { f.pcm = append(f.pcm, pcm...); return nil }

// muLawSink returns the sink of a µ-law track, its file t.wav in a new
// temporary directory (path) and its pipeline into input "t" of an 8 kHz
// mixer that starts at start, whose clock reads *now and whose latency
// budget is latency (0: the default), and the mixer's output.
func muLawSink(t *testing.T, start time.Time, now *time.Time, latency time.Duration) (ms *mediaSink, out *frameSink, path string) {
	t.Helper()
	out = &frameSink{}
	mixer := media.NewMixer(media.MixConfig{SampleRate: 8000, Start: start, Latency: latency, Clock: func() time.Time { return *now }}, out)
	in := mixer.AddInput("t", media.InputOptions{})
	pipe, err := media.NewAudioPipeline(media.AudioPipelineConfig{Codec: media.CodecPCMU, Input: in})
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "t.wav")
	file, err := wavwriter.NewG711(path, wavwriter.MuLaw)
	if err != nil {
		t.Fatal(err)
	}
	return &mediaSink{file: format.G711Writer{G711Writer: file}, audio: pipe, in: in, mixer: mixer}, out, path
}

// TestDecodeFile_EndedTrackMatchesTheMix: a µ-law track (speech-like
// noise, a packet every 20 ms on time, with a second of silence from the
// sender: a gap in the timestamps) recorded through its sink into an 8 kHz
// mix, then ended. Decoding its closed file over a range with what the
// re-mix keeps of an ended track gives the samples the mixer wrote for it,
// sample for sample. (At 16 kHz and up, the first interpolated sample after
// such a gap differs: the pipeline interpolates from the last sample before
// the gap, the file holds the gap's silence.)
func TestDecodeFile_EndedTrackMatchesTheMix(t *testing.T) {
	start := time.Unix(1000, 0)
	now := start
	ms, out, path := muLawSink(t, start, &now, 0)
	mixer := ms.mixer
	ms.path, ms.relPath, ms.codec = path, "t.wav", media.CodecPCMU
	ms.logPlacement(ms.audio.(*media.AudioPipeline), 1)
	rng := rand.New(rand.NewPCG(3, 4))
	p := &rtp.Packet{Header: rtp.Header{SSRC: 9, Timestamp: 12345}, Payload: make([]byte, 160)}
	for i := range 200 {
		now = start.Add(300*time.Millisecond + time.Duration(i)*20*time.Millisecond)
		if i >= 80 && i < 130 {
			p.Timestamp += 160 // the sender sends nothing for a second; its clock runs on
		} else {
			for j := range p.Payload {
				p.Payload[j] = g711.EncodeMuLaw(int16(rng.IntN(16000) - 8000))
			}
			if err := ms.WriteRTP(p); err != nil {
				t.Fatal(err)
			}
			p.SequenceNumber++
			p.Timestamp += 160
		}
		if err := mixer.Step(); err != nil {
			t.Fatal(err)
		}
	}
	if err := ms.Close(); err != nil {
		t.Fatal(err)
	}
	if err := mixer.Finish(mixer.Now()); err != nil {
		t.Fatal(err)
	}
	e := ms.ended()
	from, to := uint64(8000/2), uint64(8000*4) // 0.5 s to 4 s: the start, the gap
	got, err := decodeFile(e.path, e.codec, &e.plog, mixer, from, to)
	if err != nil {
		t.Fatal(err)
	}
	want := out.pcm[from:to]
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sample %d (%.4f s) decoded %d, the mix has %d", i, float64(from+uint64(i))/8000, got[i], want[i])
		}
	}
	if mediatest.RMS(want) < 1000 {
		t.Fatalf("the mix is nearly silent (RMS %.0f): the test shows nothing", mediatest.RMS(want))
	}
}

// TestDecodeFile_DeferredTrackAfterAStep: the placement log of a track
// whose packets were queued undecoded (media/deferred.go) while its
// sender's clock stepped says where the pipeline placed them. Track b
// stalls for good at 2 s, so the mixer runs the budget (5 s) behind and
// track a (Opus, its reader ticking) defers nearly the budget of packets;
// a's sender stalls its capture for 100 ms at 6.5 s, which its reports
// (every 3 s) show from the one at 9.3 s and the one at 12.3 s confirms:
// the pipeline moves a's mapping 100 ms at the packet after that report,
// processed seconds after it came. Decoding a's file by the log (what the
// re-mix of a retroactive blackout does) puts every beep (a wall-clock
// second's start) where the mix has it, within 2 ms.
func TestDecodeFile_DeferredTrackAfterAStep(t *testing.T) {
	const total = 17.0              // seconds of the wall clock
	const stallAt, stall = 6.5, 0.1 // a's capture stall
	wall := func(n int) float64 {   // when a's sample n (48 kHz) was captured
		w := float64(n) / 48000
		if w >= stallAt {
			w += stall
		}
		return w
	}
	captured := func(w float64) int { return int((w - min(max(w-stallAt, 0), stall)) * 48000) }
	pcm := mediatest.Sine(1000, 48000, captured(total+1), 8000)
	for n := range pcm {
		if math.Mod(wall(n), 1) >= 0.1 {
			pcm[n] = 0 // a beep in the first 100 ms of every second
		}
	}
	payloads := opusenc(t, pcm)

	start := time.Unix(1000, 0)
	now := start
	out := &frameSink{}
	mixer := media.NewMixer(media.MixConfig{SampleRate: 8000, Start: start, Clock: func() time.Time { return now }}, out)
	inA, inB := mixer.AddInput("a", media.InputOptions{}), mixer.AddInput("b", media.InputOptions{})
	pipeA, err := media.NewAudioPipeline(media.AudioPipelineConfig{Codec: media.CodecOpus, Input: inA})
	if err != nil {
		t.Fatal(err)
	}
	pipeA.EnableDefer()
	pipeB, err := media.NewAudioPipeline(media.AudioPipelineConfig{Codec: media.CodecPCMU, Input: inB})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "a.ogg")
	file, err := newTrackWriter(&conference.Track{Kind: conference.KindAudio, Codec: conference.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}}, path)
	if err != nil {
		t.Fatal(err)
	}
	var sr conference.SenderReport
	ms := &mediaSink{file: file, audio: pipeA, in: inA, mixer: mixer, path: path, relPath: "a.ogg", codec: media.CodecOpus,
		sr: func() (conference.SenderReport, bool) { return sr, !sr.Arrived.IsZero() }}
	ms.logPlacement(pipeA, 8000.0/48000)
	silence := bytes.Repeat([]byte{0xFF}, 160)
	next, nextB, report := 0, 0, 0 // a's next packet, b's, a's next report (at 3·report + 0.3 s)
	lastA := time.Duration(0)
	for d := time.Duration(0); d.Seconds() < total; d += 5 * time.Millisecond {
		now = start.Add(d)
		for ; nextB < 100 && time.Duration(nextB)*20*time.Millisecond+10*time.Millisecond <= d; nextB++ {
			if err := pipeB.WriteRTP(&rtp.Packet{Header: rtp.Header{SSRC: 2, SequenceNumber: uint16(nextB), Timestamp: uint32(160 * nextB)}, Payload: silence}); err != nil {
				t.Fatal(err)
			}
		}
		for ; next < len(payloads) && wall(next*960+959)+0.010 <= d.Seconds(); next++ {
			for ; float64(report)*3+0.3 <= d.Seconds(); report++ {
				w := float64(report)*3 + 0.3
				sr = conference.SenderReport{SSRC: 1, NTP: start.Add(time.Duration(w * float64(time.Second))), RTPTime: uint32(captured(w)), Arrived: now}
			}
			if err := ms.WriteRTP(&rtp.Packet{Header: rtp.Header{SSRC: 1, SequenceNumber: uint16(next), Timestamp: uint32(next * 960)}, Payload: payloads[next]}); err != nil {
				t.Fatal(err)
			}
			lastA = d
		}
		if pipeA.Deferred() && d-lastA >= 100*time.Millisecond {
			ms.tick() // a's reader: its read with a deadline timed out
			lastA = d
		}
		if d%(20*time.Millisecond) == 0 {
			if err := mixer.Step(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if pipeA.Stats().Deferred < 200 {
		t.Fatalf("a deferred %d packets: the scenario no longer tests deferred packets", pipeA.Stats().Deferred)
	}
	if err := ms.Close(); err != nil {
		t.Fatal(err)
	}
	pipeB.Close()
	mixer.RemoveInput(inB)
	if err := mixer.Finish(mixer.Now()); err != nil {
		t.Fatal(err)
	}
	e := ms.ended()
	got, err := decodeFile(e.path, e.codec, &e.plog, mixer, 0, uint64(len(out.pcm)))
	if err != nil {
		t.Fatal(err)
	}
	beeps := func(pcm []int16) []float64 {
		var at []float64
		for i, v := range pcm {
			if (v > 2000 || v < -2000) && (len(at) == 0 || float64(i)/8000-at[len(at)-1] > 0.5) {
				at = append(at, float64(i)/8000)
			}
		}
		return at
	}
	mix, byLog := beeps(out.pcm), beeps(got)
	t.Logf("beeps at %.4f s in the mix, %.4f s in a's file placed by its log (points %+v); stats of a %+v", mix, byLog, e.plog.points(), pipeA.Stats())
	if len(mix) < int(total)-1 || len(byLog) != len(mix) {
		t.Fatalf("%d beeps in the mix, %d in the file placed by its log, want %d", len(mix), len(byLog), int(total)-1)
	}
	for k := range mix {
		if d := byLog[k] - mix[k]; math.Abs(d) > 0.002 {
			t.Errorf("beep at %.4f s in the mix, %.4f s in the file placed by its log: %+.1f ms apart", mix[k], byLog[k], d*1000)
		}
	}
}

// opusenc encodes 48 kHz mono PCM with the real opusenc (20 ms frames, 24
// kbit/s) and returns its Opus packets.
func opusenc(t *testing.T, pcm48 []int16) [][]byte {
	t.Helper()
	dir := t.TempDir()
	raw := make([]byte, 2*len(pcm48))
	for i, v := range pcm48 {
		binary.LittleEndian.PutUint16(raw[2*i:], uint16(v))
	}
	in, out := filepath.Join(dir, "in.raw"), filepath.Join(dir, "out.opus")
	if err := os.WriteFile(in, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	tooltest.Run(t, "opusenc", "--quiet", "--raw", "--raw-rate", "48000", "--raw-chan", "1", "--framesize", "20", "--bitrate", "24", in, out)
	pkts, err := synth.ReadOggPackets(out)
	if err != nil {
		t.Fatal(err)
	}
	return pkts
}
