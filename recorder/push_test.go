package recorder

import (
	"io"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/media"
	"github.com/rtcrec/recorder/recorder/conference"
)

// bufferTrack is a track whose packets the test writes into a real
// conference.PushBuffer, as srtp's session goroutine writes a WHIP track's:
// it pushes them (conference.RTPPusher).
type bufferTrack struct{ pb *conference.PushBuffer }

func (b *bufferTrack) ReadRTP(buf []byte) (int, error) { return b.pb.Read(buf) }

func (b *bufferTrack) PushRTP(buf []byte, each func([]byte), end func(error)) bool {
	b.pb.Push(func() bool {
		n, err := b.pb.Read(buf)
		if err != nil {
			return false
		}
		each(buf[:n])
		return true
	}, func() { end(io.EOF) })
	return true
}

func (b *bufferTrack) Between(fn func()) bool { return b.pb.Between(fn) }

// tickingSink is a pipeline's sink that counts its packets and ticks, and
// the ticks that came while its sender was quiet (the test says when) with
// packets queued undecoded: what the room's timer is for.
type tickingSink struct {
	pipe       *media.AudioPipeline
	written    atomic.Int64 // packets handed to the pipeline
	ticks      atomic.Int64
	quiet      atomic.Bool // no packet for longer than a packet's time
	quietTicks atomic.Int64
}

func (s *tickingSink) WriteRTP(p *rtp.Packet) error {
	err := s.pipe.WriteRTP(p)
	s.written.Add(1)
	return err
}
func (s *tickingSink) Close() error { return s.pipe.Close() }
func (s *tickingSink) tick() {
	if s.quiet.Load() && s.pipe.Deferred() {
		s.quietTicks.Add(1)
	}
	s.pipe.Tick()
	s.ticks.Add(1) // after: a test that saw packets queued waits for a tick that ran after it looked
}

// TestRoom_PushedTrackTicksWhileDeferred: the scenario of media's
// TestAudioPipeline_DeferredDecodeLosesNothing (the mixer waits for b,
// stalled 4 s; a, in step, queues its packets undecoded, then stalls for
// 2.5 s itself), with a's packets pushed through the room (room.push) by a
// PushBuffer, as srtp pushes a WHIP track's, and its ticks coming from the
// room's timer between packets, not from the test: while a is quiet with
// packets queued, a tick comes, and the audio a queued in time reaches the
// mix: nothing of a is late, lost or shed. (Without ticks, media's test
// shows, the audio queued comes too late for the mixer.)
func TestRoom_PushedTrackTicksWhileDeferred(t *testing.T) {
	packets := opusPackets(t, 440, 2)
	var clock atomic.Int64 // the mixer's virtual clock, unix ns: read by the room's timer too
	t0 := time.Unix(1_000_000, 0)
	clock.Store(t0.UnixNano())
	mixer := media.NewMixer(media.MixConfig{SampleRate: 8000, Start: t0, Clock: func() time.Time { return time.Unix(0, clock.Load()) }}, &frameSink{})
	var pipes [2]*media.AudioPipeline
	var inputs [2]*media.MixInput
	for i := range pipes {
		inputs[i] = mixer.AddInput(string(rune('a'+i)), media.InputOptions{})
		p, err := media.NewAudioPipeline(media.AudioPipelineConfig{Codec: media.CodecOpus, Input: inputs[i]})
		if err != nil {
			t.Fatal(err)
		}
		p.EnableDefer()
		pipes[i] = p
	}
	// a: a room track whose one subscriber writes into a's pipeline.
	m := &Manager{now: time.Now}
	sink := &tickingSink{pipe: pipes[0]}
	pb := conference.NewPushBuffer()
	rt := &roomTrack{t: &conference.Track{TrackID: "audio0", Reader: &bufferTrack{pb}}}
	ts := &trackSub{s: &Session{m: m}, sink: sink, in: inputs[0]}
	rt.subs.Store(&[]*trackSub{ts})
	if !(&room{m: m}).push(rt, &bufferTrack{pb}) {
		t.Fatal("the track does not push")
	}
	const total = 600 // 12 s of 20 ms packets
	// arrival of packet n of track i, in ms, as in media's test.
	arrival := func(i, n int) int {
		at := n*20 + 10
		if i == 0 && n == 95 {
			return 3400
		}
		from, to := 2000, 6000 // b
		if i == 0 {
			// a stalls 100 ms before b comes back: a is quiet (with
			// packets queued, the mixer waiting for b) before any of
			// what it queued is due, so a tick comes while it is, on a
			// machine however loaded (from 6000, as in media's test, a
			// tick of the room's real-time timer could run between the
			// mixer's catch-up and a's first quiet step, decode the
			// whole queue, and leave none quiet: CI, 0 of 7 ticks).
			from, to = 5900, 8500
		}
		if at >= from && at < to {
			return to
		}
		return at
	}
	var order [2][]int
	for i := range order {
		for n := range total {
			order[i] = append(order[i], n)
		}
		slices.SortStableFunc(order[i], func(x, y int) int { return arrival(i, x) - arrival(i, y) })
	}
	next := [2]int{}
	lastA, lastSent, sent := 0, 0, int64(0)
	buf := make([]byte, 1500)
	for ms := 0; ms <= total*20+6000; ms += 5 {
		clock.Store(t0.Add(time.Duration(ms) * time.Millisecond).UnixNano())
		for i, p := range pipes {
			for next[i] < total && arrival(i, order[i][next[i]]) <= ms {
				n := order[i][next[i]]
				pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SSRC: uint32(i + 1), SequenceNumber: uint16(n), Timestamp: uint32(960 * n)},
					Payload: packets[(n+100*i)%len(packets)]}
				if i == 1 {
					if err := p.WriteRTP(pkt); err != nil {
						t.Fatal(err)
					}
				} else {
					b, err := pkt.MarshalTo(buf)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := pb.Write(buf[:b]); err != nil { // srtp's write
						t.Fatal(err)
					}
					// Handed over at once, or, if the room's timer
					// is ticking, right after the tick (by the
					// timer's goroutine): the clock waits for it, as
					// real time would not run ahead of that goroutine.
					sent++
					for deadline := time.Now().Add(5 * time.Second); sink.written.Load() < sent; time.Sleep(100 * time.Microsecond) {
						if time.Now().After(deadline) {
							t.Fatalf("at %d ms: packet %d of a not handed over in 5 s", ms, sent)
						}
					}
					lastA, lastSent = ms, ms
				}
				next[i]++
			}
		}
		sink.quiet.Store(ms-lastSent > 20)
		if !rt.deferred() {
			lastA = ms
		} else if ms-lastA >= 100 {
			// a is quiet with packets queued: the room's timer ticks
			// (every 50 ms of real time); wait for a tick that saw it so
			// (one in progress may have begun before: it does not
			// count), or for the queue to empty.
			before := sink.quietTicks.Load()
			for deadline := time.Now().Add(5 * time.Second); sink.quietTicks.Load() == before && rt.deferred(); time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("at %d ms: a's pipeline holds packets undecoded, none came for %d ms, and no tick came in 5 s", ms, ms-lastA)
				}
			}
			lastA = ms
		}
		if ms%20 == 0 {
			if err := mixer.Step(); err != nil {
				t.Fatal(err)
			}
		}
	}
	st := pipes[0].Stats()
	quietTicks := sink.quietTicks.Load()
	t.Logf("a: %+v; %d ticks while quiet with packets queued (of %d ticks)", st, quietTicks, sink.ticks.Load())
	if quietTicks == 0 {
		t.Error("a never was quiet with packets queued: the scenario does not test the ticks")
	}
	if st.Late != 0 || st.Lost != 0 || st.Shed != 0 || st.Decoded != total {
		t.Errorf("a: %d of %d packets decoded, %d late, %d lost, %d shed: want every one decoded in time", st.Decoded, total, st.Late, st.Lost, st.Shed)
	}
}
