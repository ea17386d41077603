package media

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/pion/rtp"

	itu "github.com/rtcrec/recorder/media/g711"
	"github.com/rtcrec/recorder/media/mediatest"
)

// onsetSink finds where beeps start in a mix that is otherwise digital
// silence, in 10 ms blocks, without keeping the mix.
type onsetSink struct {
	pos    int // samples written
	on     bool
	onsets []int
}

func (s *onsetSink) WriteFrame(pcm []int16) error {
	for i := 0; i+80 <= len(pcm); i += 80 {
		peak := int16(0)
		for _, v := range pcm[i : i+80] {
			peak = max(peak, v, -v)
		}
		on := peak > 1000
		if on && !s.on {
			s.onsets = append(s.onsets, s.pos+i)
		}
		s.on = on
	}
	s.pos += len(pcm)
	return nil
}

// TestAudioPipeline_TwoHoursOfDrift records two hours in fast time (the
// pipeline fed directly on the mixer's virtual clock) from a sender whose
// clock runs 0.1 % slow, and half an hour from one 0.5 % fast (the most the
// issue asks; half an hour keeps the test short under -race), with up to
// 60 ms of jitter and
// a 300 ms stall every 97 s. A 100 ms beep every minute must land in the mix
// where it was sent in our time (plus the first packet's delay, which places
// the track), within 40 ms, from the first to the last: the drift is
// resampled away, and the track spans the time it was sent in, ±0.1 %. The
// same with RTCP sender reports, which the live mix then follows instead of
// the arrivals: every 5 s and each off by up to 7 ms (Chromium's), and every
// second with one in a hundred stamped 40 ms late (Pion's, by a write that
// stalled).
func TestAudioPipeline_TwoHoursOfDrift(t *testing.T) {
	if testing.Short() {
		t.Skip("two hours of audio")
	}
	silence, beep := make([]byte, 160), make([]byte, 160)
	tone := mediatest.Sine(1000, 8000, 160, 10000) // 20 whole periods: seamless
	for i := range beep {
		silence[i], beep[i] = itu.EncodeMuLaw(0), itu.EncodeMuLaw(tone[i])
	}
	for _, tt := range []struct {
		ratio   float64
		d       time.Duration
		reports time.Duration // between sender reports; 0: none
	}{
		{1.001, 2 * time.Hour, 0}, {0.995, 30 * time.Minute, 0},
		{1.001, 2 * time.Hour, 5 * time.Second}, {0.995, 30 * time.Minute, time.Second},
	} {
		ratio, d := tt.ratio, tt.d
		name := fmt.Sprintf("%v at %.3f", d, ratio)
		if tt.reports > 0 {
			name += fmt.Sprintf(", a sender report every %v", tt.reports)
		}
		t.Run(name, func(t *testing.T) {
			sink := &onsetSink{}
			m, c := newVirtualMixer(MixConfig{}, sink)
			p, err := NewAudioPipeline(AudioPipelineConfig{Codec: CodecPCMU, Input: m.AddInput("t", InputOptions{})})
			if err != nil {
				t.Fatal(err)
			}
			t0 := m.Config().Start
			r := rand.New(rand.NewPCG(7, uint64(ratio*1000)))
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1}}
			n := int(d / (20 * time.Millisecond))
			var want []time.Duration // our time each beep was sent
			next := time.Duration(0) // the mixer's next step
			var j0 time.Duration     // the first packet's delay: the track starts at its arrival
			sr := time.Second        // the sender's next report, in our time
			for i := 0; i < n; i++ {
				sent := time.Duration(float64(i) * float64(20*time.Millisecond) * ratio)
				at := sent + time.Duration(r.IntN(60))*time.Millisecond
				if i > 0 && sent%(97*time.Second) < 300*time.Millisecond {
					at = sent + 300*time.Millisecond // a stall, then a burst
				}
				for next <= at {
					c.t = t0.Add(next)
					if err := m.Step(); err != nil {
						t.Fatal(err)
					}
					next += 20 * time.Millisecond
				}
				if i == 0 {
					j0 = at
				}
				// The sender's reports until now: at its time w its RTP
				// clock (8000 Hz, slow by ratio) showed 8000·w/ratio.
				for ; tt.reports > 0 && sr <= at; sr += tt.reports {
					k := int(sr / tt.reports)
					stamp := sr
					if tt.reports >= 5*time.Second {
						stamp += time.Duration((k*7)%15-7) * time.Millisecond // up to 7 ms off
					} else if k%100 == 37 {
						stamp -= 40 * time.Millisecond // a write that stalled
					}
					p.SenderReport(1, t0.Add(sr), uint32(stamp.Seconds()*8000/ratio))
				}
				c.t = t0.Add(at)
				pkt.SequenceNumber, pkt.Timestamp = uint16(i), uint32(160*i)
				pkt.Payload = silence
				if i%3000 < 5 { // 100 ms every minute of the sender's time
					pkt.Payload = beep
					if i%3000 == 0 {
						want = append(want, sent)
					}
				}
				if err := p.WriteRTP(pkt); err != nil {
					t.Fatal(err)
				}
			}
			end := time.Duration(float64(d)*ratio) + 100*time.Millisecond
			c.t = t0.Add(end)
			p.Close()
			m.RemoveInput(p.input)
			if err := m.Finish(m.Now()); err != nil {
				t.Fatal(err)
			}
			if len(sink.onsets) != len(want) {
				t.Fatalf("%d beeps in the mix, want %d", len(sink.onsets), len(want))
			}
			worst := time.Duration(0)
			for k, o := range sink.onsets {
				got := time.Duration(o) * time.Second / 8000
				off := got - want[k] - j0
				if off < 0 {
					off = -off
				}
				worst = max(worst, off)
				if off > 40*time.Millisecond {
					t.Errorf("beep %d (sent at %v) is at %v in the mix: %v off", k, want[k], got, got-want[k]-j0)
				}
			}
			// The mix lasts the wall-clock time; the track spans its own.
			mix := time.Duration(sink.pos) * time.Second / 8000
			track := time.Duration(p.lastEnd) * time.Second / 8000
			sent := time.Duration(float64(d) * ratio)
			if diff := track - sent; diff < -sent/1000 || diff > sent/1000 {
				t.Errorf("the track spans %v of the mix, sent in %v: off by %v", track, sent, diff)
			}
			t.Logf("ratio %.4f: worst beep offset %v; track %v for %v sent, mix %v; %+v", p.Ratio(), worst, track, sent, mix, p.Stats())
		})
	}
}

// TestMixInput_MemoryPerTrack: a track's mixer input and pipeline with the
// default 5 s budget at 8 kHz take at most 100 KB, the decoder aside (a
// G.711 pipeline; the Opus decoder's own size is logged).
func TestMixInput_MemoryPerTrack(t *testing.T) {
	for _, codec := range []Codec{CodecPCMU, CodecOpus} {
		per := trackMemory(t, codec)
		t.Logf("%v: %d bytes per track", codec, per)
		if per > 100_000 {
			t.Errorf("%d bytes per track, want at most 100 KB", per)
		}
		// What each buffer costs (the rest is the decoder and the heap's
		// rounding).
		m := NewMixer(MixConfig{}, &discardSink{})
		p, err := NewAudioPipeline(AudioPipelineConfig{Codec: codec, Input: m.AddInput("x", InputOptions{})})
		if err != nil {
			t.Fatal(err)
		}
		held := 0
		for _, h := range p.held {
			held += cap(h.payload)
		}
		parts := []struct {
			name  string
			bytes uintptr
		}{
			{"ring (1 s; it grows to the budget + 1 s when a track lags)", uintptr(2 * p.ring.Cap())},
			{"pipeline struct (sequence window, counters, padding)", unsafe.Sizeof(*p)},
			{"  of which the sequence window", unsafe.Sizeof(p.seen) + unsafe.Sizeof(p.starts) + unsafe.Sizeof(p.ends) + unsafe.Sizeof(p.arrived)},
			{"ring struct (cache-line padding)", unsafe.Sizeof(*p.ring)},
			{"reorder window (held payloads; 4 KB from the first packet held)", uintptr(held)},
			{"concealment copy", uintptr(2 * cap(p.last))},
			{"mixer input struct", unsafe.Sizeof(*p.input)},
		}
		var sum uintptr
		for i, part := range parts {
			t.Logf("%v:   %-55s %6d bytes", codec, part.name, part.bytes)
			if i != 2 {
				sum += part.bytes
			}
		}
		t.Logf("%v:   %-55s %6d bytes", codec, "decoder and rounding (the rest)", int64(per)-int64(sum))
		t.Logf("%v: %d bytes per track once its ring grew to the budget (%d samples), decoded on arrival; a track that defers decoding keeps its ring (TestMixInput_MemoryInUse)", codec, int(per)+2*(p.ring.MaxCap()-p.ring.Cap()), p.ring.MaxCap())
	}
}

// trackMemory returns the heap a mixer input and its pipeline take.
func trackMemory(t *testing.T, codec Codec) uint64 {
	const n = 50
	m := NewMixer(MixConfig{}, &discardSink{})
	keep := make([]*AudioPipeline, 0, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		p, err := NewAudioPipeline(AudioPipelineConfig{Codec: codec, Input: m.AddInput(string(rune('a'+i)), InputOptions{})})
		if err != nil {
			t.Fatal(err)
		}
		keep = append(keep, p)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(keep)
	return (after.HeapAlloc - before.HeapAlloc) / n
}
