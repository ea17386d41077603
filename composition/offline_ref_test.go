package composition

// The offline mix as it was until session 5: the whole recording in memory
// (an int32 accumulator as long as the recording, each track decoded
// whole). It is kept as the reference the streaming MixManifest must equal
// byte for byte (TestMixManifest_SameAsWhole).

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/rtcrec/recorder/internal/opus"
	"github.com/rtcrec/recorder/media/g711"
	"github.com/rtcrec/recorder/media/ogg"
	"github.com/rtcrec/recorder/media/pause"
	"github.com/rtcrec/recorder/media/wavwriter"
)

func mixManifestWhole(m *Manifest, dir, out string, rate int) (*Mix, error) {
	switch rate {
	case 8000, 16000, 48000:
	default:
		return nil, fmt.Errorf("composition: mix rate %d is not 8000, 16000 or 48000", rate)
	}
	skip := m.PauseBehavior == pause.Skip
	// at maps seconds of the recording's wall-clock timeline to a sample of
	// the mix: less the skipped pauses before it.
	at := func(sec float64) int {
		out := sec
		if skip {
			for _, p := range m.Pauses {
				if p.Start < sec {
					out -= min(p.End, sec) - p.Start
				}
			}
		}
		return int(math.Round(out * float64(rate)))
	}
	wall := m.Stopped.Sub(m.Started).Seconds()
	length := at(wall)
	if length <= 0 || length > 24*3600*rate {
		return nil, fmt.Errorf("composition: manifest spans %v", m.Stopped.Sub(m.Started))
	}
	acc := make([]int32, length)
	keep := int(math.Round(liveFrame.Seconds() * float64(rate))) // the packet straddling a cut's instant is kept
	for _, t := range m.Tracks {
		if t.Kind != "AUDIO" {
			continue
		}
		if strings.Contains(t.File, "..") || filepath.IsAbs(t.File) {
			return nil, fmt.Errorf("composition: track file %q leaves the recording", t.File)
		}
		pcm, err := wholeDecodeFile(filepath.Join(dir, filepath.FromSlash(t.File)), rate)
		if err != nil {
			return nil, fmt.Errorf("composition: track %s: %w", t.File, err)
		}
		zero := t.Offset // the file's first sample: where the recorder's mix placed it, if known
		if t.MediaOffset != nil {
			zero = *t.MediaOffset
		}
		for _, b := range m.Blackouts { // the gate kept none of it: silence what the edges hold
			if b.UserID == t.UserID && b.UserID != "" {
				lo, hi := at(b.Start)+keep-at(zero), at(b.End)-at(zero) // from a frame after its instant
				clear(pcm[min(max(lo, 0), len(pcm)):min(max(hi, 0), len(pcm))])
			}
		}
		start := at(zero)
		for i, v := range pcm {
			if start+i >= 0 && start+i < length {
				acc[start+i] += int32(v)
			}
		}
	}
	if !skip {
		for _, p := range m.Pauses {
			clear(acc[min(max(at(p.Start)+keep, 0), length):min(max(at(p.End), 0), length)])
		}
	}
	w, err := wavwriter.New(out, wavwriter.WithSampleRate(rate), wavwriter.WithChannels(1))
	if err != nil {
		return nil, err
	}
	frame := make([]int16, rate/50)
	for i := 0; i < length; i += len(frame) {
		n := min(len(frame), length-i)
		for j := 0; j < n; j++ {
			frame[j] = int16(max(math.MinInt16, min(math.MaxInt16, acc[i+j])))
		}
		if err := w.WriteFrame(frame[:n]); err != nil {
			w.Close()
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return ReadMix(out)
}

// decodeFile decodes a track file to mono PCM at rate.
func wholeDecodeFile(path string, rate int) ([]int16, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".wav":
		return wholeDecodeWAV(path, rate)
	case ".ogg":
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return wholeDecodeOggOpus(bufio.NewReader(f), rate)
	}
	return nil, fmt.Errorf("no decoder for %s", filepath.Ext(path))
}

// decodeWAV decodes a G.711 or 16-bit PCM mono WAV, resampling 8 kHz to rate
// by linear interpolation.
func wholeDecodeWAV(path string, rate int) ([]int16, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	h, err := wavwriter.ParseHeader(data)
	if err != nil {
		return nil, err
	}
	body := data[min(int(h.DataOffset), len(data)):]
	if int64(len(body)) > int64(h.DataSize) && h.DataSize != ^uint32(0) {
		body = body[:h.DataSize]
	}
	var pcm []int16
	switch h.Format {
	case wavwriter.MuLaw, wavwriter.ALaw:
		pcm = make([]int16, len(body))
		for i, b := range body {
			if h.Format == wavwriter.MuLaw {
				pcm[i] = g711.DecodeMuLaw(b)
			} else {
				pcm[i] = g711.DecodeALaw(b)
			}
		}
	case wavwriter.PCM:
		pcm = make([]int16, len(body)/2)
		for i := range pcm {
			pcm[i] = int16(binary.LittleEndian.Uint16(body[2*i:]))
		}
	default:
		return nil, fmt.Errorf("WAV format %v", h.Format)
	}
	if h.Channels != 1 {
		return nil, fmt.Errorf("WAV has %d channels, want 1", h.Channels)
	}
	return wholeResample(pcm, h.SampleRate, rate)
}

// resample converts from to an integer multiple rate by linear interpolation.
func wholeResample(pcm []int16, from, to int) ([]int16, error) {
	if from == to {
		return pcm, nil
	}
	if from <= 0 || to%from != 0 {
		return nil, fmt.Errorf("cannot resample %d Hz to %d Hz", from, to)
	}
	k := to / from
	out := make([]int16, len(pcm)*k)
	for i, v := range pcm {
		next := v
		if i+1 < len(pcm) {
			next = pcm[i+1]
		}
		for j := 0; j < k; j++ {
			out[i*k+j] = int16(int(v) + (int(next)-int(v))*j/k)
		}
	}
	return out, nil
}

// DecodeOggOpus decodes an Ogg/Opus stream (RFC 7845) to mono PCM at rate,
// dropping the pre-skip the OpusHead announces.
func wholeDecodeOggOpus(r io.Reader, rate int) ([]int16, error) {
	dec, err := opus.NewDecoderWithOutput(rate, 1)
	if err != nil {
		return nil, err
	}
	var out []int16
	buf := make([]int16, rate*120/1000)
	preSkip := -1
	n := 0
	_, err = ogg.ReadPackets(r, func(p []byte) error {
		n++
		switch {
		case n == 1:
			if len(p) < 19 || string(p[:8]) != "OpusHead" {
				return errors.New("no OpusHead")
			}
			preSkip = int(binary.LittleEndian.Uint16(p[10:])) * rate / 48000
			return nil
		case n == 2:
			return nil // OpusTags
		}
		k, err := dec.DecodeToInt16(p, buf)
		if err != nil {
			k = rate / 50 // an undecodable packet: 20 ms of silence
			clear(buf[:k])
		}
		out = append(out, buf[:k]...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if preSkip > 0 {
		out = out[min(preSkip, len(out)):]
	}
	return out, nil
}
