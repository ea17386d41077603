package media

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/media/pause"
)

// TestRemix_ReproducesTheMix: an Opus track through a real pipeline (its
// packets jittered by up to 30 ms, so the anchor settles back) and a loud
// tone (the sum clips) mixed live, with a mute of the tone and a cut (pause
// with skip) in the range. Decoding the packets again with a Decoder, placing
// them by the pipeline's Placement and summing with Remix gives the samples
// the live mixer wrote, sample for sample; without the Opus part it gives the
// tone alone.
func TestRemix_ReproducesTheMix(t *testing.T) {
	for _, ch := range []int{1, 2} {
		t.Run(map[int]string{1: "mono", 2: "stereo"}[ch], func(t *testing.T) {
			const rate = 16000
			payloads := opusBeeps(t, 3*time.Second)
			pkts := packetize(payloads, 48000, 7, 100, 5000, 0)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range pkts {
				pkts[i].at += time.Duration(rng.IntN(30)) * time.Millisecond
			}
			sink := &captureSink{}
			m, c := newVirtualMixer(MixConfig{SampleRate: rate, Channels: ch, PauseBehavior: pause.Skip}, sink)
			in := m.AddInput("track", InputOptions{Channel: ChannelLeft})
			p, err := NewAudioPipeline(AudioPipelineConfig{Codec: CodecOpus, Input: in})
			if err != nil {
				t.Fatal(err)
			}
			tone := newFeeder(m, "tone", 700, 30000, InputOptions{})
			t0 := m.Config().Start
			i := 0
			var muteAt uint64
			for now := time.Duration(0); now < 3200*time.Millisecond; now += 20 * time.Millisecond {
				for i < len(pkts) && pkts[i].at <= now {
					c.t = t0.Add(pkts[i].at)
					if err := p.WriteRTP(pkts[i].pkt); err != nil {
						t.Fatal(err)
					}
					i++
				}
				switch now {
				case 1200 * time.Millisecond:
					muteAt = tone.in.MuteFrom(m.PosAt(t0.Add(900 * time.Millisecond))) // moved to what is not written yet
					tone.in.UnmuteFrom(m.PosAt(t0.Add(1400 * time.Millisecond)))
				case 1600 * time.Millisecond:
					m.Cut(m.Written() + 37)
				case 1800 * time.Millisecond:
					m.Uncut(m.Written() + 5)
				}
				c.t = t0.Add(now)
				tone.feed()
				if err := m.Step(); err != nil {
					t.Fatal(err)
				}
			}
			written := m.Written()
			from := uint64(rate / 2) // 0.5 s: before the mute, the cut
			if written < 2*rate {
				t.Fatalf("written only %d samples", written)
			}
			// The track's audio from its packets, placed as the pipeline maps them.
			dec, err := NewDecoder(CodecOpus, rate)
			if err != nil {
				t.Fatal(err)
			}
			track := make([]int16, written-from)
			for _, tp := range pkts {
				pcm, err := dec.Decode(tp.pkt.Payload)
				if err != nil {
					t.Fatal(err)
				}
				pos, ratio, ok := p.Placement(tp.pkt.Timestamp)
				if !ok {
					t.Fatalf("no placement for timestamp %d", tp.pkt.Timestamp)
				}
				Place(track, from, pos, ratio, pcm)
			}
			toneLocal := make([]int16, written-from)
			mediatest.SineInto(toneLocal, 700, rate, int(from), 30000)
			got := m.Remix(from, written, []RemixPart{{Input: in.Settings(), PCM: track}, {Input: tone.in.Settings(), PCM: toneLocal}})
			out := m.OutputPos(from) * uint64(ch)
			want := sink.pcm[out : out+uint64(len(got))]
			if uint64(len(got)) != (m.OutputPos(written)-m.OutputPos(from))*uint64(ch) {
				t.Fatalf("remix of %d samples, want %d", len(got), (m.OutputPos(written)-m.OutputPos(from))*uint64(ch))
			}
			if i := firstDiff(got, want); i >= 0 {
				t.Fatalf("sample %d of the remix = %d, the live mix wrote %d", i, got[i], want[i])
			}
			// Without the track: the tone alone (clipping gone), muted where it was.
			alone := m.Remix(from, written, []RemixPart{{Input: tone.in.Settings(), PCM: toneLocal}})
			left := mediatest.Channel(alone, ch, 0)
			if lvl := mediatest.ToneLevel(left, rate, 440); lvl > -60 {
				t.Errorf("the track's 440 Hz at %.1f dBFS in a remix without it", lvl)
			}
			muted := left[m.OutputPos(muteAt)-m.OutputPos(from) : m.OutputPos(m.PosAt(t0.Add(1400*time.Millisecond)))-m.OutputPos(from)]
			if mediatest.RMS(muted) != 0 {
				t.Errorf("the muted tone is heard in the remix (RMS %.1f)", mediatest.RMS(muted))
			}
		})
	}
}

func TestPlace(t *testing.T) {
	dst := make([]int16, 10)
	Place(dst, 100, 97.2, 1, []int16{1, 2, 3, 4, 5}) // ceil(97.2) = 98: 98..102
	if want := []int16{3, 4, 5, 0, 0, 0, 0, 0, 0, 0}; firstDiff(dst, want) >= 0 {
		t.Errorf("placed %v, want %v", dst, want)
	}
	clear(dst)
	Place(dst, 100, 104, 2, []int16{10, 20}) // stretched to 4 samples at 104
	if want := []int16{0, 0, 0, 0, 10, 15, 20, 20, 0, 0}; firstDiff(dst, want) >= 0 {
		t.Errorf("placed %v, want %v", dst, want)
	}
	Place(dst, 100, 130, 1, []int16{1}) // beyond: nothing
}
