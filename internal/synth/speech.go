package synth

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/rtcrec/recorder/media/ogg"
)

// SpeechRate is the sample rate of Speech: Opus's native 48 kHz.
const SpeechRate = 48000

// Speech returns seconds of a speech-like signal at 48 kHz, the same for the
// same seed: talk spurts of 1–3.5 s (syllables of a glottal pulse train at a
// drifting pitch through three moving formant resonators, some begun by a
// noise burst) separated by pauses of 0.4–2 s holding only faint noise. It is
// not a tone: an encoder's voice activity detection, DTX and the decoder's
// speech modes see what they see in a call. Active spans are returned as
// [start, end) sample pairs.
func Speech(seconds float64, seed uint64) (pcm []int16, active [][2]int) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	n := int(seconds * SpeechRate)
	out := make([]float64, n)
	uniform := func(a, b float64) float64 { return a + (b-a)*rng.Float64() }
	pos := int(uniform(0.2, 0.8) * SpeechRate) // begin with a short pause
	for pos < n {
		spurt := int(uniform(1.0, 3.5) * SpeechRate)
		end := min(pos+spurt, n)
		start := pos
		f0 := uniform(95, 190)
		for pos < end {
			syl := min(int(uniform(0.15, 0.3)*SpeechRate), end-pos)
			speechSyllable(out[pos:pos+syl], rng, f0, uniform)
			f0 *= uniform(0.93, 1.06) // intonation drifts
			f0 = min(max(f0, 85), 230)
			pos += syl
		}
		active = append(active, [2]int{start, end})
		pos += int(uniform(0.4, 2.0) * SpeechRate)
	}
	peak := 0.0
	for _, v := range out {
		peak = max(peak, math.Abs(v))
	}
	pcm = make([]int16, n)
	for i, v := range out {
		noise := (rng.Float64()*2 - 1) * 12 // a quiet room: about -70 dBFS
		if peak > 0 {
			v = v / peak * 16000 // peaks at -6 dBFS
		}
		pcm[i] = int16(max(min(v+noise, 32767), -32768))
	}
	return pcm, active
}

// speechSyllable adds one syllable to dst: an optional fricative burst, then
// a voiced vowel under a raised-cosine envelope.
func speechSyllable(dst []float64, rng *rand.Rand, f0 float64, uniform func(a, b float64) float64) {
	n := len(dst)
	k := 0
	if rng.IntN(3) == 0 { // a fricative onset: high-passed noise
		fn := min(int(uniform(0.04, 0.09)*SpeechRate), n/2)
		prev := 0.0
		for i := 0; i < fn; i++ {
			w := rng.Float64()*2 - 1
			dst[i] += (w - prev) * 0.15 * math.Sin(math.Pi*float64(i)/float64(fn))
			prev = w
		}
		k = fn
	}
	vowel := dst[k:]
	formants := [3]resonator{}
	freqs := [3]float64{uniform(300, 800), uniform(900, 2300), uniform(2400, 3100)}
	bws := [3]float64{90, 110, 160}
	for i := range formants {
		formants[i] = newResonator(freqs[i], bws[i])
	}
	phase := 0.0
	for i := range vowel {
		f := f0 * (1 + 0.03*math.Sin(2*math.Pi*3*float64(i)/SpeechRate)) // vibrato-like jitter
		phase += f / SpeechRate
		src := 0.0
		if phase >= 1 { // one glottal pulse per period
			phase--
			src = 1
		}
		src += (rng.Float64()*2 - 1) * 0.02 // breath
		v := 0.0
		for j := range formants {
			v += formants[j].step(src) / float64(j+1)
		}
		env := 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(len(vowel)))
		vowel[i] += v * env
	}
}

// resonator is a two-pole band-pass filter (a formant).
type resonator struct{ a1, a2, g, y1, y2 float64 }

func newResonator(freq, bw float64) resonator {
	r := math.Exp(-math.Pi * bw / SpeechRate)
	return resonator{a1: 2 * r * math.Cos(2*math.Pi*freq/SpeechRate), a2: -r * r, g: 1 - r}
}

func (r *resonator) step(x float64) float64 {
	y := r.g*x + r.a1*r.y1 + r.a2*r.y2
	r.y2, r.y1 = r.y1, y
	return y
}

// WriteWAV writes mono 16-bit PCM at rate as a WAV file (RIFF/WAVE, PCM).
func WriteWAV(path string, pcm []int16, rate int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	hdr := make([]byte, 44)
	copy(hdr[0:], "RIFF")
	binary.LittleEndian.PutUint32(hdr[4:], uint32(36+2*len(pcm)))
	copy(hdr[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(hdr[16:], 16)
	binary.LittleEndian.PutUint16(hdr[20:], 1) // PCM
	binary.LittleEndian.PutUint16(hdr[22:], 1) // mono
	binary.LittleEndian.PutUint32(hdr[24:], uint32(rate))
	binary.LittleEndian.PutUint32(hdr[28:], uint32(rate*2))
	binary.LittleEndian.PutUint16(hdr[32:], 2)
	binary.LittleEndian.PutUint16(hdr[34:], 16)
	copy(hdr[36:], "data")
	binary.LittleEndian.PutUint32(hdr[40:], uint32(2*len(pcm)))
	body := make([]byte, 2*len(pcm))
	for i, s := range pcm {
		binary.LittleEndian.PutUint16(body[2*i:], uint16(s))
	}
	_, err = f.Write(append(hdr, body...))
	return errors.Join(err, f.Close())
}

// OpusSpeech encodes Speech(seconds, seed) as 20 ms Opus packets with
// ffmpeg's libopus in VoIP mode at bitrate bits per second (a browser sends
// 32000), one packet per Ogg page. It returns the packets and the 48 kHz
// input. (Debian's ffmpeg 5.1 ignores libopus's dtx option: the packets
// carry no DTX frames, as a browser's by default.)
func OpusSpeech(ffmpeg, dir string, seconds float64, seed uint64, bitrate int) (packets [][]byte, pcm []int16, err error) {
	return OpusSpeechWith(ffmpeg, dir, seconds, seed, bitrate)
}

// OpusSpeechWith is OpusSpeech with more libopus options for ffmpeg, e.g.
// "-fec", "1", "-packet_loss", "10": in-band FEC, which browsers send
// (useinbandfec=1), coded for 10 % loss.
func OpusSpeechWith(ffmpeg, dir string, seconds float64, seed uint64, bitrate int, opts ...string) (packets [][]byte, pcm []int16, err error) {
	pcm, _ = Speech(seconds, seed)
	wav := filepath.Join(dir, fmt.Sprintf("speech-%d.wav", seed))
	if err := WriteWAV(wav, pcm, SpeechRate); err != nil {
		return nil, nil, err
	}
	name := fmt.Sprintf("speech-%d-%d", seed, bitrate)
	for _, o := range opts {
		name += "-" + strings.TrimLeft(o, "-")
	}
	ogg := filepath.Join(dir, name+".ogg")
	args := []string{"-v", "error", "-y", "-i", wav, "-c:a", "libopus", "-application", "voip",
		"-b:a", fmt.Sprint(bitrate), "-frame_duration", "20", "-page_duration", "20000"}
	args = append(args, opts...)
	if out, err := exec.Command(ffmpeg, append(args, ogg)...).CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("synth: ffmpeg: %v: %s", err, out)
	}
	packets, err = ReadOggPackets(ogg)
	return packets, pcm, err
}

// ReadOggPackets returns the audio packets of an Ogg Opus file (not OpusHead
// or OpusTags, its first two packets).
func ReadOggPackets(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var packets [][]byte
	n := 0
	if _, err := ogg.ReadPackets(bufio.NewReader(f), func(p []byte) error {
		if n++; n > 2 {
			packets = append(packets, bytes.Clone(p))
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("synth: %s: %w", path, err)
	}
	return packets, nil
}
