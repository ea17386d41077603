package recorder

import (
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/media/g711"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/media/wavwriter"
	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/memstore"
)

// TestManager_CutsTheMixAtTheInstant: two participants speak, each a tone
// of its own, and after a second the recording is paused for a second (or
// bob is blacked out). Alice is placed by her packets' arrival; bob by a
// sender report stamped 90 ms late (Pion stamps a report by when its sender
// last wrote a packet: on a busy machine, one of a burst after its writes
// stalled), within what the mix takes for a first anchor (100 ms after the
// arrival), so the mix places his audio 90 ms after it reaches the machine:
// when the cut begins, his ring already holds the 90 ms after its instant.
// Each sends another tone while cut out and a third from just before the cut
// ends.
//
// The mix is cut at the instant, within 20 ms: with silence (and bob's
// blackout), silent from the pause instant to the resume instant; with
// skip, at one instant, where both tones from before the pause end and both
// from after the resume begin. Nothing sent while cut out is in the mix or in
// a track's file, and nothing of the tones before the cut is missing from the
// mix before its instant. (Before, a pause's cut began where the inputs'
// audio ended, 90 ms after the instant, and a blackout left what bob's ring
// held: his tone went on in the mix for 90 ms, and with skip alice's first
// 90 ms after the resume went before the cut, over bob's; s12 saw the same
// under a CPU hog with TestEndToEnd_Pause, 52–151 ms.)
func TestManager_CutsTheMixAtTheInstant(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	for _, kind := range []string{"silence", "skip", "blackout"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			cutsTheMixAtTheInstant(t, kind)
		})
	}
}

// The tones: before the cut, while cut out (both), after it.
const (
	aliceBefore, bobBefore = 440, 690
	pausedTone             = 1600
	aliceAfter, bobAfter   = 940, 1190
)

func cutsTheMixAtTheInstant(t *testing.T, kind string) {
	ctx := context.Background()
	bucket := storage.NewBucket(memstore.New(memstore.Options{Name: "test"}))
	m, fa, _ := newTestManager(t, func(o *Options) {
		o.OpenBucket = func(context.Context, string, *config.StorageProfile) (*storage.Bucket, error) { return bucket, nil }
	})
	behavior := kind
	if kind == "blackout" {
		behavior = "silence"
	}
	rec, err := m.Start(ctx, "org", StartRequest{ApplicationID: "app", ConferenceID: "f", ConversationID: "c", Audio: true, PauseBehavior: behavior})
	if err != nil {
		t.Fatal(err)
	}
	mx := m.session(rec.InstanceID).media.mixer
	alice, bob := newPhases(aliceBefore, aliceAfter), newPhases(bobBefore, bobAfter)
	quit := make(chan struct{})
	var senders sync.WaitGroup
	ta, _ := newTrack("f", "alice")
	tb, _ := newTrack("f", "bob")
	for _, x := range []struct {
		tr   *conference.Track
		tone *phases
	}{{ta, alice}, {tb, bob}} {
		st := newStarvedTrack() // never held: read as it arrives
		x.tr.Reader = st
		senders.Go(func() { st.send(x.tone, quit) })
	}
	defer func() { close(quit); senders.Wait() }()
	tb.SenderReport = func() (conference.SenderReport, bool) {
		// RTP 0, the first packet, 90 ms after it reached the machine.
		first, ok := tb.Reader.(*starvedTrack).Arrival(1234, 0)
		late := first.Add(90 * time.Millisecond)
		return conference.SenderReport{SSRC: 1234, NTP: late, RTPTime: 0, Arrived: late}, ok
	}
	fa.sink("f").AddTrack(ta)
	fa.sink("f").AddTrack(tb)

	cut := []*phases{alice, bob} // whose tone changes with the cut
	if kind == "blackout" {
		cut = cut[1:]
	}
	phase := func(n int) {
		at := time.Now()
		for _, p := range cut {
			p.begin(n, at)
		}
	}
	time.Sleep(1200 * time.Millisecond)
	if kind == "blackout" {
		_, err = m.StartBlackout(ctx, "org", BlackoutRequest{UserID: "bob"})
	} else {
		_, err = m.Pause(ctx, "org", "c", "rec1", rec.InstanceID)
	}
	if err != nil {
		t.Fatal(err)
	}
	phase(1) // captured from after the cut's instant: never kept
	time.Sleep(time.Second - 40*time.Millisecond)
	// Captured from 40 ms before the cut's end: kept from its instant on.
	// (A track's mapping places a packet a little after its capture, by
	// the least late of its arrivals: what is captured just before the
	// instant may begin just after it.)
	phase(2)
	time.Sleep(40 * time.Millisecond)
	if kind == "blackout" {
		_, err = m.StopBlackout(ctx, "org", BlackoutRequest{UserID: "bob"})
	} else {
		_, err = m.Resume(ctx, "org", "c", "rec1", rec.InstanceID)
	}
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	got, err := m.Stop(ctx, "org", "c", "rec1", rec.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	mix := mixPCM(t, bucket, got)
	const ms = time.Millisecond
	// from, to: the cut's instants on the timeline; end, resumed: where
	// the tones before it end and those after it begin in mix.wav.
	var from, to, end, resumed time.Duration
	if kind == "blackout" {
		if len(got.Blackouts) != 1 || got.Blackouts[0].End.IsZero() {
			t.Fatalf("blackouts %+v: want one of bob, ended", got.Blackouts)
		}
		b := got.Blackouts[0]
		from, to = mx.Duration(mx.PosAt(b.Start)), mx.Duration(mx.PosAt(b.End))
		end, resumed = from, to
	} else {
		if len(got.Pauses) != 1 {
			t.Fatalf("pauses %+v: want one", got.Pauses)
		}
		pz := got.Pauses[0]
		from, to = mx.Duration(mx.PosAt(pz.Start)), mx.Duration(mx.PosAt(pz.End))
		end, resumed = from, to
		if kind == "skip" {
			resumed = from
		}
		t.Logf("the pause in mix.wav: %v–%v", pz.MixStart, pz.MixEnd)
		near := func(what string, got, want time.Duration) {
			if d := got - want; d > 20*ms || d < -20*ms {
				t.Errorf("%s at %v of mix.wav, want %v (the instant) ±20 ms", what, got, want)
			}
		}
		near("the pause begins", pz.MixStart, end)
		near("the pause ends", pz.MixEnd, resumed)
	}
	t.Logf("%s %v–%v of the timeline; mix %v", kind, from, to, media8k(len(mix)))
	type tone struct {
		who  string
		freq float64
	}
	before, after := []tone{{"alice", aliceBefore}, {"bob", bobBefore}}, []tone{{"alice", aliceAfter}, {"bob", bobAfter}}
	if kind == "blackout" {
		before, after = before[1:], after[1:]
		if a := toneAmp(mix, aliceBefore, end+20*ms, resumed-20*ms); a < 4000 {
			t.Errorf("alice's tone is missing from mix.wav during bob's blackout: amplitude %.0f", a)
		}
	}
	for _, tn := range before {
		if a := toneAmp(mix, tn.freq, end-120*ms, end-20*ms); a < 4000 {
			t.Errorf("%s's tone before the cut is missing from mix.wav at %v–%v: amplitude %.0f", tn.who, end-120*ms, end-20*ms, a)
		}
		if at, ok := toneFrom(mix, tn.freq, end+20*ms, media8k(len(mix))); ok {
			t.Errorf("%s's tone from before the cut is in mix.wav at %v, after the cut at %v", tn.who, at, end)
		}
	}
	for _, tn := range after {
		if at, ok := toneFrom(mix, tn.freq, 0, resumed-20*ms); ok {
			t.Errorf("%s's tone from the cut's end on is in mix.wav at %v, before the cut's end at %v", tn.who, at, resumed)
		}
		at := resumed + 40*ms
		if a := toneAmp(mix, tn.freq, at, at+200*ms); a < 4000 {
			t.Errorf("%s's tone after the cut is missing from mix.wav at %v–%v: amplitude %.0f", tn.who, at, at+200*ms, a)
		}
	}
	if at, ok := toneFrom(mix, pausedTone, 0, media8k(len(mix))); ok {
		t.Errorf("mix.wav holds the tone sent while cut out at %v", at)
	}
	// The cut in mix.wav and in each track's file, where the tones end
	// before it and begin after it: the file placed on the timeline by its
	// time zero (the manifest's mediaOffset), as the offline mix and a
	// reader of the manifest place it. Both at the instants, within 20 ms.
	// (Before, bob's mapping placed his audio 90 ms after its arrival, by
	// his late report: his file kept the 90 ms after the pause instant that
	// the mix leaves out, and his audio after the resume began 90 ms late
	// in both.)
	//
	// A cut keeps or drops a packet whole, by where its audio begins
	// (recorder/pause.go): an edge is a boundary between two of the track's
	// packets, at its time zero plus a multiple of 20 ms, in the file and
	// the mix alike, and the cut lands up to a packet after its instant. An
	// edge is measured to a millisecond or two and taken as the boundary it
	// is at (onPacket), so the bound of 20 ms tells a cut a packet off, not
	// how a measurement's last millisecond falls (a resume's first packet
	// 19.5 ms after the instant was read as 21 ms).
	zeros := map[string]time.Duration{} // who: the file's time zero on the timeline (mediaOffset)
	for _, st := range got.Streams {
		for _, tr := range st.Tracks {
			zeros[st.UserID] = tr.FirstPacket.Sub(mx.Config().Start)
		}
	}
	edges := map[string][2]time.Duration{} // who: the mix's end and begin
	for i, tn := range before {
		a, ok := toneEdge(mix, tn.freq, end-120*ms, end+300*ms, false)
		b, ok2 := toneEdge(mix, after[i].freq, resumed-60*ms, resumed+300*ms, true)
		if !ok || !ok2 {
			t.Errorf("%s's tones in mix.wav: no end of the one before the cut (%v) or no beginning of the one after it (%v)", tn.who, ok, ok2)
			continue
		}
		a, b = onPacket(a, zeros[tn.who]), onPacket(b, zeros[tn.who])
		t.Logf("mix.wav: %s's tone ends %+v from the cut's instant, the next begins %+v from its end", tn.who, a-end, b-resumed)
		edges[tn.who] = [2]time.Duration{a, b}
	}
	for _, st := range got.Streams {
		for _, tr := range st.Tracks {
			if tr.Object == nil {
				t.Fatalf("%s's track %+v: not uploaded", st.UserID, tr)
			}
			pcm := readPCM(t, bucket, tr.Object.Key)
			if at, ok := toneFrom(pcm, pausedTone, 0, media8k(len(pcm))); ok {
				t.Errorf("%s's track holds the tone sent while cut out at %v of its file", st.UserID, at)
			}
			i := slices.IndexFunc(before, func(tn tone) bool { return tn.who == st.UserID })
			if i < 0 || edges[st.UserID] == [2]time.Duration{} {
				continue
			}
			zero := zeros[st.UserID]
			a, ok := toneEdge(pcm, before[i].freq, end-120*ms-zero, end+300*ms-zero, false)
			b, ok2 := toneEdge(pcm, after[i].freq, resumed-60*ms-zero, resumed+300*ms-zero, true)
			if !ok || !ok2 {
				t.Errorf("%s's file (time zero %v): no end of the tone before the cut (%v) or no beginning of the one after it (%v)", st.UserID, zero, ok, ok2)
				continue
			}
			a, b = onPacket(a+zero, zero), onPacket(b+zero, zero)
			t.Logf("%s's file (time zero %v): the tone ends %+v from the cut's instant, the next begins %+v from its end", st.UserID, zero, a-end, b-resumed)
			for _, c := range []struct {
				what          string
				file, mix, at time.Duration
			}{{"ends before the cut", a, edges[st.UserID][0], end}, {"begins after the cut", b, edges[st.UserID][1], resumed}} {
				if d := c.file - c.mix; d > 20*ms || d < -20*ms {
					t.Errorf("%s's tone %s at %v in the file, at %v in mix.wav: %v apart, want within 20 ms", st.UserID, c.what, c.file, c.mix, d)
				}
				if d := c.mix - c.at; d > 20*ms || d < -20*ms {
					t.Errorf("%s's tone %s at %v in mix.wav, %v from the cut's instant %v, want within 20 ms", st.UserID, c.what, c.mix, d, c.at)
				}
			}
		}
	}
}

// toneEdge returns where freq ends (or begins, if rising) in pcm (8 kHz),
// looking from from to to, to a sample: the middle of the first 20 ms window,
// in steps of one sample, that holds less (more) than half a tone of the
// test's amplitude. (In steps of 1 ms it read an edge up to 1.5 ms late: a
// resume's first packet 19.5 ms after the instant as 21 ms.)
func toneEdge(pcm []int16, freq float64, from, to time.Duration, rising bool) (time.Duration, bool) {
	const window = 160 // 20 ms
	first, last := max(int(from*8000/time.Second), 0), min(int(to*8000/time.Second), len(pcm))
	for a := first; a+window <= last; a++ {
		if on := mediatest.Goertzel(pcm[a:a+window], 8000, freq) > 4000; on == rising {
			return media8k(a + window/2), true
		}
	}
	return 0, false
}

// onPacket returns the boundary between two packets of a track whose time
// zero is zero (a multiple of 20 ms from it) that the measured edge is
// within 3 ms of; edge itself if none.
func onPacket(edge, zero time.Duration) time.Duration {
	b := zero + (edge - zero).Round(20*time.Millisecond)
	if d := edge - b; d > 3*time.Millisecond || d < -3*time.Millisecond {
		return edge
	}
	return b
}

// media8k is the duration of n samples at 8 kHz.
func media8k(n int) time.Duration { return time.Duration(n) * time.Second / 8000 }

// toneAmp is the amplitude of freq in pcm (8 kHz) from from to to.
func toneAmp(pcm []int16, freq float64, from, to time.Duration) float64 {
	a, b := max(0, int(from*8000/time.Second)), min(len(pcm), int(to*8000/time.Second))
	if b <= a {
		return 0
	}
	return mediatest.Goertzel(pcm[a:b], 8000, freq)
}

// toneFrom returns the start of the first 40 ms window (in steps of 10 ms)
// from from to to that holds freq: more than an eighth of the window of a
// tone of the test's amplitude.
func toneFrom(pcm []int16, freq float64, from, to time.Duration) (time.Duration, bool) {
	for w := max(from, 0); w+40*time.Millisecond <= to; w += 10 * time.Millisecond {
		if toneAmp(pcm, freq, w, w+40*time.Millisecond) > 1000 {
			return w, true
		}
	}
	return 0, false
}

// mixPCM reads the mix of the stopped recording got (its composition's
// first output) as linear samples.
func mixPCM(t *testing.T, bucket *storage.Bucket, got *Recording) []int16 {
	t.Helper()
	if got.Composition == nil || len(got.Composition.Outputs) == 0 || got.Composition.Outputs[0].Object == nil {
		t.Fatalf("composition %+v: want an uploaded mix", got.Composition)
	}
	return readPCM(t, bucket, got.Composition.Outputs[0].Object.Key)
}

// readPCM reads a WAV object of the recording (16-bit PCM or µ-law) as
// linear samples.
func readPCM(t *testing.T, bucket *storage.Bucket, key string) []int16 {
	t.Helper()
	data, err := bucket.ReadAll(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	h, err := wavwriter.ParseHeader(data)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	body := data[h.DataOffset:]
	var out []int16
	switch h.Format {
	case wavwriter.MuLaw:
		for _, b := range body {
			out = append(out, g711.DecodeMuLaw(b))
		}
	case wavwriter.PCM:
		for i := 0; i+1 < len(body); i += 2 {
			out = append(out, int16(uint16(body[i])|uint16(body[i+1])<<8))
		}
	default:
		t.Fatalf("%s: WAV format %v", key, h.Format)
	}
	return out
}

// phases is a source of PCMU frames whose tone is that of the phase it was
// captured in: 0 before the cut, 1 while cut out (pausedTone), 2 after it.
// A frame's capture is the instant its timestamp stands for, not when the
// sender got to send it: on a busy machine the sender's goroutine sends a
// frame tens of milliseconds after its instant, and the frame captured just
// before a pause must hold the tone from before it, as a real publisher's
// does.
type phases struct {
	from  [3]atomic.Int64 // when each phase begins (Unix ns); phases 1 and 2: not yet (MaxInt64) until begin
	tones [3]*synth.Tone
}

func newPhases(before, after float64) *phases {
	p := &phases{tones: [3]*synth.Tone{{Freq: before, Amplitude: 8000}, {Freq: pausedTone, Amplitude: 8000}, {Freq: after, Amplitude: 8000}}}
	p.from[1].Store(math.MaxInt64)
	p.from[2].Store(math.MaxInt64)
	return p
}

// begin makes what is captured from at on hold phase n's tone.
func (p *phases) begin(n int, at time.Time) { p.from[n].Store(at.UnixNano()) }

// CapturedPCMU appends the 20 ms of the tone of the phase at (a frame's
// capture) is in to b.
func (p *phases) CapturedPCMU(b []byte, at time.Time) []byte {
	n := 0
	for i := 1; i < len(p.from); i++ {
		if at.UnixNano() >= p.from[i].Load() {
			n = i
		}
	}
	return p.tones[n].NextPCMU(b)
}

// NextPCMU appends the next 20 ms, captured now, to b.
func (p *phases) NextPCMU(b []byte) []byte { return p.CapturedPCMU(b, time.Now()) }
