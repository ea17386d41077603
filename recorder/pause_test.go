package recorder

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/media"
	"github.com/rtcrec/recorder/media/g711"
	"github.com/rtcrec/recorder/media/wavwriter"
)

func TestGate_Timestamps(t *testing.T) {
	const clock = 8000
	tests := []struct {
		name  string
		video bool
		in    []uint32 // a 2 s skipped pause ends before the last packet
		want  []uint32
	}{
		{"no pause", false, []uint32{0, 160, 320}, []uint32{0, 160, 320}},
		// Audio: the packet after the pause follows the last one before
		// it, whatever the paused time was.
		{"skip joins the packets around the pause", false, []uint32{0, 160, 320, 320 + 16000 + 160}, []uint32{0, 160, 320, 480}},
		{"10 ms packets", false, []uint32{0, 80, 160, 160 + 16000 + 37}, []uint32{0, 80, 160, 240}},
		{"after a DTX gap one 20 ms packet", false, []uint32{0, 160, 160 + 3200, 99999}, []uint32{0, 160, 3360, 3520}},
		{"wraps around", false, []uint32{0xFFFFFF60, 0, 160 + 16000}, []uint32{0xFFFFFF60, 0, 160}},
		// Video: back by the time the mix's cut left out (2 s: 16000
		// ticks at this clock).
		{"video shifts by the time cut out", true, []uint32{0, 160, 320, 320 + 16000 + 400}, []uint32{0, 160, 320, 720}},
		// The pause measured longer than the RTP gap (jitter): the shift
		// would land before the last frame, so one step after it.
		{"video overshoot is clamped", true, []uint32{0, 160, 320, 320 + 16000 - 60}, []uint32{0, 160, 320, 480}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lc := &pauseState{}
			g := &gate{lc: lc, clock: clock, video: tt.video}
			var got []uint32
			for i, ts := range tt.in {
				if i == len(tt.in)-1 && tt.name != "no pause" {
					lc.skipped.Add(int64(2 * time.Second))
					lc.skips.Add(1)
					if !g.skipEnded() || g.skipEnded() {
						t.Fatal("skipEnded does not report the pause's end once")
					}
					g.closeGap()
				}
				got = append(got, g.timestamp(&rtp.Packet{Header: rtp.Header{Timestamp: ts}}))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("timestamps %v, want %v", got, tt.want)
			}
		})
	}
}

// TestGate_DropsAndZeroAllocs: the gate on the reader goroutine drops while
// paused or blacked out and costs no allocation per packet.
func TestGate_DropsAndZeroAllocs(t *testing.T) {
	file := &nopSink{}
	lc := &pauseState{}
	ms := &mediaSink{file: file, gate: &gate{lc: lc, clock: 8000}, clk: &clockRelation{clock: 8000}}
	p := &rtp.Packet{Header: rtp.Header{Timestamp: 1}, Payload: make([]byte, 160)}
	step := func() {
		p.Timestamp += 160
		ms.WriteRTP(p)
	}
	step()
	lc.paused.Store(true)
	step()
	step()
	lc.paused.Store(false)
	ms.gate.setBlack(true, time.Now())
	step()
	ms.gate.setBlack(false, time.Now())
	step()
	if n := file.n.Load(); n != 2 {
		t.Errorf("file got %d packets, want 2 (paused and blacked-out ones dropped)", n)
	}
	if a := testing.AllocsPerRun(1000, step); a != 0 {
		t.Errorf("%.1f allocations per packet through the gate", a)
	}
	lc.paused.Store(true)
	if a := testing.AllocsPerRun(1000, step); a != 0 {
		t.Errorf("%.1f allocations per dropped packet", a)
	}
}

func TestRecording_Statuses(t *testing.T) {
	t0 := time.Date(2024, 1, 21, 21, 47, 40, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	tests := []struct {
		name string
		rec  Recording
		want []string
	}{
		{"not started", Recording{State: StateInitialised}, nil},
		{"started", Recording{State: StateActive, Started: at(0)}, []string{"start"}},
		{"paused", Recording{State: StateActive, Started: at(0), Pauses: []PauseInterval{{Start: at(26)}}}, []string{"start", "pause"}},
		{"resumed and stopped", Recording{State: StateStopped, Started: at(0), Stopped: at(109),
			Pauses: []PauseInterval{{Start: at(26), End: at(41)}}}, []string{"start", "pause", "resume", "stop"}},
		{"stopped while paused", Recording{State: StateStopped, Started: at(0), Stopped: at(50),
			Pauses: []PauseInterval{{Start: at(26), End: at(50), Stopped: true}}}, []string{"start", "pause", "stop"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, s := range tt.rec.Statuses() {
				got = append(got, s.Status)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("statuses %v, want %v", got, tt.want)
			}
		})
	}
}

func TestManager_BlackoutTimes(t *testing.T) {
	m, _, _ := newTestManager(t)
	ctx := context.Background()
	now := time.Now().UTC()
	if _, err := m.StartBlackout(ctx, "org", BlackoutRequest{UserID: "u", Start: now.Add(time.Hour), Stop: now.Add(time.Minute)}); KindOf(err) != KindInvalid {
		t.Errorf("stop before start: %v, want invalid", err)
	}
	if _, err := m.StartBlackout(ctx, "org", BlackoutRequest{}); KindOf(err) != KindInvalid {
		t.Errorf("no user: %v", err)
	}
	b, err := m.StartBlackout(ctx, "org", BlackoutRequest{UserID: "u", Stop: now.Add(100 * time.Hour)})
	if err != nil || !b.Active {
		t.Fatalf("start: %+v %v", b, err)
	}
	if d := b.Stop.Sub(b.Start); d != m.cfg.Defaults.MaxBlackout {
		t.Errorf("blackout lasts %v, want it capped at maxBlackout %v", d, m.cfg.Defaults.MaxBlackout)
	}
	if !m.blackedOut("org", "any", "u") || m.blackedOut("other", "any", "u") {
		t.Error("blackout not scoped to its organization")
	}
	if _, err := m.StopBlackout(ctx, "org", BlackoutRequest{UserID: "u", Stop: now.Add(-time.Hour)}); KindOf(err) != KindInvalid {
		t.Errorf("stop before the blackout's start: %v", err)
	}
	if b, err := m.StopBlackout(ctx, "org", BlackoutRequest{UserID: "u"}); err != nil || b.Active {
		t.Errorf("stop: %+v %v", b, err)
	}
	if m.blackedOut("org", "any", "u") {
		t.Error("still blacked out after stop")
	}
	if _, err := m.StopBlackout(ctx, "org", BlackoutRequest{UserID: "u"}); KindOf(err) != KindNotFound {
		t.Errorf("second stop: %v, want not found", err)
	}
	// maxBlackout ends a blackout by itself.
	m.cfg.Defaults.MaxBlackout = 50 * time.Millisecond
	if _, err := m.StartBlackout(ctx, "org", BlackoutRequest{UserID: "v"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for m.blackedOut("org", "", "v") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if m.blackedOut("org", "", "v") {
		t.Error("maxBlackout did not end the blackout")
	}
}

// TestManager_BlackoutOfLaterRecording: a recording that starts while a
// participant is blacked out records none of their audio, lists the
// blackout, and a duplicate recording of the same conversation runs on when
// the first stops.
func TestManager_BlackoutOfLaterRecording(t *testing.T) {
	m, fa, _ := newTestManager(t)
	ctx := context.Background()
	if _, err := m.StartBlackout(ctx, "org", BlackoutRequest{UserID: "u1"}); err != nil {
		t.Fatal(err)
	}
	rec, err := m.Start(ctx, "org", StartRequest{ApplicationID: "app", ConferenceID: "f", ConversationID: "c", Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	dup, err := m.Start(ctx, "org", StartRequest{ApplicationID: "app", ConferenceID: "f", ConversationID: "c", Audio: true, Duplicate: true})
	if err != nil || dup.InstanceID == rec.InstanceID {
		t.Fatalf("duplicate: %+v %v", dup, err)
	}
	tr, ft := newTrack("f", "u1")
	fa.sink("f").AddTrack(tr)
	ft.send(&synth.Tone{Freq: 440, Amplitude: 8000}, 300*time.Millisecond)
	got, err := m.Stop(ctx, "org", "c", "rec1", rec.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Blackouts) != 1 || got.Blackouts[0].UserID != "u1" || got.Blackouts[0].End.IsZero() {
		t.Errorf("blackouts %+v, want u1's, closed at the stop", got.Blackouts)
	}
	b, _ := m.Bucket(ctx, "app")
	data, err := b.ReadAll(ctx, got.Streams[0].Tracks[0].Object.Key)
	if err != nil {
		t.Fatal(err)
	}
	h, err := wavwriter.ParseHeader(data)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range data[h.DataOffset:] {
		if c != 0xFF { // µ-law silence
			t.Fatalf("the blacked-out participant's track holds audio at sample %d", i)
		}
	}
	still, err := m.Get(ctx, "org", "c", "rec1", dup.InstanceID)
	if err != nil || still.State != StateActive {
		t.Errorf("the duplicate after the first stopped: %+v %v", still, err)
	}
	bo := m.Blackouts("org")["u1"]
	if bo == nil || !slices.Contains(bo.Recordings, rec.InstanceID) || !slices.Contains(bo.Recordings, dup.InstanceID) {
		t.Errorf("blackout %+v does not list both recordings", bo)
	}
	close(ft.ch)
}

// TestManager_BlackoutSurvivesRestart: a blackout in force is in force again
// for the next Manager on the same store, until its stop.
func TestManager_BlackoutSurvivesRestart(t *testing.T) {
	m, _, st := newTestManager(t)
	ctx := context.Background()
	if _, err := m.StartBlackout(ctx, "org", BlackoutRequest{UserID: "u", Stop: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.StartBlackout(ctx, "org", BlackoutRequest{UserID: "gone", Stop: time.Now().Add(300 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	m.Shutdown(ctx)
	time.Sleep(400 * time.Millisecond) // "gone" ends while no recorder runs
	m2, err := NewManager(ctx, Options{Config: m.cfg, Store: st, RecorderID: "rec1"})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Shutdown(ctx)
	bs := m2.Blackouts("org")
	if b := bs["u"]; b == nil || !b.Active || b.Stop.Before(time.Now().Add(50*time.Minute)) {
		t.Errorf("blackout of u after restart: %+v", b)
	}
	if b := bs["gone"]; b != nil {
		t.Errorf("a blackout that ended while down came back: %+v", b)
	}
	if !m2.blackedOut("org", "f", "u") {
		t.Error("u is not blacked out after the restart")
	}
}

// BenchmarkMediaSink_Gate measures what the pause and blackout gate adds per
// packet on the reader goroutine.
func BenchmarkMediaSink_Gate(b *testing.B) {
	for _, gated := range []bool{false, true} {
		name := "ungated"
		if gated {
			name = "gated"
		}
		b.Run(name, func(b *testing.B) {
			ms := &mediaSink{file: &nopSink{}}
			if gated {
				ms.gate = &gate{lc: &pauseState{}, clock: 8000}
			}
			p := &rtp.Packet{Payload: make([]byte, 160)}
			b.ReportAllocs()
			for b.Loop() {
				p.Timestamp += 160
				ms.WriteRTP(p)
			}
		})
	}
}

// TestGate_CutsWhereTheAudioIsNotWhenItIsRead: a reader that falls behind (a
// busy machine) reads a µ-law track's packets late and in bursts, across a
// pause or a blackout from 2.0 to 3.7 s. The cut is where the audio is on the
// recording's timeline, not where the reader was: the 200 ms sent before
// the cut and read only after it began are in the file and the mix, the
// 100 ms sent during it and read only after it ended are in neither. (Cut by
// the instant a packet was read, the file and the mix lost the first and
// held the second.) With "3 s behind" the reader reads nothing from 0.6 to
// 3.6 s, and reads it within the cut: the audio from before the cut is read
// 1.6 to 3 s late, within the latency budget (5 s), and is in the file and
// the mix all the same (the gate once let the mapping place a packet only up
// to half the budget late, and cut what was later by the switch).
func TestGate_CutsWhereTheAudioIsNotWhenItIsRead(t *testing.T) {
	for _, behind := range []struct {
		name   string
		stalls [][2]time.Duration // the reader reads nothing in [from, to) and reads it all at to
	}{
		{"bursts", [][2]time.Duration{{1800 * time.Millisecond, 2500 * time.Millisecond}, {3600 * time.Millisecond, 4300 * time.Millisecond}}},
		{"3 s behind", [][2]time.Duration{{600 * time.Millisecond, 3600 * time.Millisecond}}},
	} {
		for _, kind := range []string{"pause", "blackout"} {
			t.Run(behind.name+"/"+kind, func(t *testing.T) {
				cutsWhereTheAudioIs(t, cutCase{kind: kind, stalls: behind.stalls, cutFrom: 2000 * time.Millisecond, cutTo: 3700 * time.Millisecond})
			})
		}
	}
}

// TestGate_StragglerStaysBeforeTheCut: a reader that read nothing for
// 1.6 s (a busy machine) reads, 0.6 s into a pause or blackout, the 1.6 s
// of audio sent before it, the first 0.6 s of it later than the latency
// budget (1 s), the rest within it. With receive times (the UDP mux keeps
// them: conference.ArrivalReader) every packet sent before the cut is in
// the file, and those read within the budget are in the mix too, at their
// places; without them a packet read past the budget has no place the gate
// can trust (the switch drops it), but those read within it are kept all
// the same. Nothing of the cut is in the file or the mix. Before, the
// switch dropped the packets past the budget (the file lacked them; diag-1
// it2 of session 12: fileGapMs=1020), the gate took the next packet, placed
// before the cut, for a resume, and the mix re-placed it at its arrival,
// within the cut ('track resumed after a cut' three times while paused,
// mixEndAfterMs=10460 in a pause from 8781 ms).
func TestGate_StragglerStaysBeforeTheCut(t *testing.T) {
	for _, receipts := range []bool{true, false} {
		for _, kind := range []string{"pause", "blackout"} {
			name := kind + "/receive times"
			if !receipts {
				name = kind + "/read times"
			}
			t.Run(name, func(t *testing.T) {
				cutsWhereTheAudioIs(t, cutCase{kind: kind, stalls: [][2]time.Duration{{1000 * time.Millisecond, 2600 * time.Millisecond}},
					cutFrom: 2000 * time.Millisecond, cutTo: 4500 * time.Millisecond, latency: time.Second, receipts: receipts})
			})
		}
	}
}

// cutCase is a track read late across a cut (cutsWhereTheAudioIs).
type cutCase struct {
	kind           string             // pause or blackout
	stalls         [][2]time.Duration // the reader reads nothing in [from, to) and reads it all at to
	cutFrom, cutTo time.Duration      // the cut, from the recording's start
	latency        time.Duration      // the budget (0: the default)
	receipts       bool               // the packets' receive times are known (conference.ArrivalReader)
}

func cutsWhereTheAudioIs(t *testing.T, tc cutCase) {
	kind, stalls := tc.kind, tc.stalls
	start := time.Unix(1000, 0)
	now := start
	ms, out, path := muLawSink(t, start, &now, tc.latency)
	mixer := ms.mixer
	lc := &pauseState{}
	g := &gate{lc: lc, in: ms.in, clock: 8000}
	lc.gates = map[*gate]string{g: "u"}
	ms.gate = g
	const n = 250 // 5 s of 20 ms packets; packet i is sent at 20·i ms
	sent := func(i int) time.Duration { return time.Duration(i)*20*time.Millisecond + 5*time.Millisecond }
	readAt := func(i int) time.Duration {
		d := sent(i)
		for _, s := range stalls {
			if d >= s[0] && d < s[1] {
				return s[1]
			}
		}
		return d
	}
	if tc.receipts {
		ms.receipts = sentAt(func(seq uint16) time.Time { return start.Add(sent(int(seq))) })
	}
	budget := tc.latency
	if budget == 0 {
		budget = media.DefaultLatency
	}
	cutFrom, cutTo := tc.cutFrom, tc.cutTo
	switchCut := func(on bool) {
		if kind == "blackout" {
			g.setBlack(on, now)
			return
		}
		if on {
			lc.paused.Store(true)
			lc.cut.Store(&cutSpan{mixer.PosAt(now), openSpan})
			return
		}
		lc.resume(&cutSpan{lc.cut.Load().from, mixer.PosAt(now)})
		lc.paused.Store(false)
	}
	payload := func(i int) byte { return byte(i % 100) } // never µ-law silence
	p := &rtp.Packet{Header: rtp.Header{SSRC: 9}, Payload: make([]byte, 160)}
	next := 0
	for d := time.Duration(0); d <= sent(n)+300*time.Millisecond; d += 5 * time.Millisecond {
		now = start.Add(d)
		if d == cutFrom || d == cutTo {
			switchCut(d == cutFrom)
		}
		for ; next < n && readAt(next) <= d; next++ {
			p.SequenceNumber, p.Timestamp = uint16(next), uint32(160*next)
			for k := range p.Payload {
				p.Payload[k] = payload(next)
			}
			if err := ms.WriteRTP(p); err != nil {
				t.Fatal(err)
			}
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
	// Packet i is kept unless its audio begins within the cut; read later
	// than the budget, it is in no mix (the mixer wrote its place without
	// it: within two frames of the budget, part of it may be), and without
	// receive times nothing places it (the gate's switch decides).
	kept := func(i int) bool { return sent(i) < cutFrom || sent(i) >= cutTo }
	pastBudget := func(i int) (past, near bool) {
		late := readAt(i) - sent(i) - budget // read how much later than the budget
		return late > 0, late > -40*time.Millisecond && late < 40*time.Millisecond
	}
	data := wavData(t, path)
	if len(data) != 160*n {
		t.Fatalf("the file holds %d bytes, want %d (the call's length)", len(data), 160*n)
	}
	var fileWrong, mixWrong []int
	for i := range n {
		want, wantPCM := payload(i), g711.DecodeMuLaw(payload(i))
		if !kept(i) {
			want, wantPCM = 0xFF, 0 // µ-law silence; nothing in the mix
		}
		past, near := pastBudget(i)
		if !(past && !tc.receipts && kept(i)) && slices.ContainsFunc(data[160*i:160*(i+1)], func(b byte) bool { return b != want }) {
			fileWrong = append(fileWrong, i)
		}
		if past {
			wantPCM = 0
		}
		at := int(sent(i) * 8000 / time.Second) // where the mix places it
		if !near && slices.ContainsFunc(out.pcm[at:at+160], func(v int16) bool { return v != wantPCM }) {
			mixWrong = append(mixWrong, i)
		}
	}
	if len(fileWrong) > 0 || len(mixWrong) > 0 {
		t.Errorf("packets wrong (kept where cut, or cut where kept) in the file: %v; in the mix: %v", fileWrong, mixWrong)
	}
}

// sentAt gives packets the receive times of a conference.ArrivalReader
// (their sending times: no network delay), by sequence number.
type sentAt func(seq uint16) time.Time

func (sentAt) ReadRTP([]byte) (int, error) { return 0, io.EOF }

func (f sentAt) Arrival(_ uint32, seq uint16) (time.Time, bool) { return f(seq), true }
