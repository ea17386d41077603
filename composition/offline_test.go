package composition

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/media/oggwriter"
	"github.com/rtcrec/recorder/media/pause"
	"github.com/rtcrec/recorder/media/wavwriter"
)

// g711File writes d of a µ-law tone as a G.711 WAV track, as the recorder does.
func g711File(t *testing.T, path string, freq float64, d time.Duration) {
	t.Helper()
	w, err := wavwriter.NewG711(path, wavwriter.MuLaw)
	if err != nil {
		t.Fatal(err)
	}
	tone := &synth.Tone{Freq: freq, Amplitude: 8000}
	for i := 0; i < int(d/(20*time.Millisecond)); i++ {
		if err := w.Write(1, uint32(160*i), tone.NextPCMU(nil)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestMixOffline(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "tracks"), 0o755)
	g711File(t, filepath.Join(dir, "tracks", "a-audio0.wav"), 440, 3*time.Second)
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	ogg := filepath.Join(dir, "tracks", "b-audio0.ogg")
	if out, err := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=2",
		"-c:a", "libopus", "-b:a", "48k", ogg).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := &Manifest{Started: t0, Stopped: t0.Add(4 * time.Second), Tracks: []Track{
		{StreamID: "a", TrackID: "audio0", Kind: "AUDIO", File: "tracks/a-audio0.wav", Offset: 0},
		{StreamID: "b", TrackID: "audio0", Kind: "AUDIO", File: "tracks/b-audio0.ogg", Offset: 1.5},
		{StreamID: "v", TrackID: "video1", Kind: "VIDEO", File: "tracks/v-video1.webm", Offset: 0},
	}}
	man := filepath.Join(dir, ManifestFile)
	if err := WriteManifest(man, m); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "offline.wav")
	mix, err := MixOffline(man, out, 8000)
	if err != nil {
		t.Fatal(err)
	}
	if mix.Duration != 4 || mix.SampleRate != 8000 || mix.Channels != 1 {
		t.Errorf("mix %+v, want 4 s 8000 Hz mono", mix)
	}
	data, _ := os.ReadFile(out)
	h, _ := wavwriter.ParseHeader(data)
	pcm := make([]int16, (len(data)-int(h.DataOffset))/2)
	for i := range pcm {
		pcm[i] = int16(uint16(data[int(h.DataOffset)+2*i]) | uint16(data[int(h.DataOffset)+2*i+1])<<8)
	}
	level := func(f float64, a, b float64) float64 {
		return mediatest.Goertzel(pcm[int(a*8000):int(b*8000)], 8000, f)
	}
	checks := []struct {
		f, a, b float64
		on      bool
	}{
		{440, 0.1, 2.9, true}, {440, 3.1, 3.9, false},
		{1000, 0.1, 1.4, false}, {1000, 1.7, 3.4, true}, {1000, 3.7, 3.95, false},
	}
	for _, c := range checks {
		if l := level(c.f, c.a, c.b); c.on && l < 2000 || !c.on && l > 300 {
			t.Errorf("%g Hz in [%.1f, %.1f]: amplitude %.0f, want present=%v", c.f, c.a, c.b, l, c.on)
		}
	}
	// A manifest pointing outside the recording is refused.
	m.Tracks[0].File = "../x.wav"
	WriteManifest(man, m)
	if _, err := MixOffline(man, out, 8000); err == nil {
		t.Error("a track outside the recording: no error")
	}
}

// TestMixOffline_ReappliesPausesAndBlackouts: a blackout of the track's
// participant and a pause with silence are silent in the offline mix; with
// skip the mix is shorter by the pause and a later track moves up by it, or,
// when the live mix's cut began after the pause instant (mixStart: the end
// of the audio received before the pause), by the span that cut left out.
func TestMixOffline_ReappliesPausesAndBlackouts(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "tracks"), 0o755)
	g711File(t, filepath.Join(dir, "tracks", "a-audio0.wav"), 440, 4*time.Second)
	g711File(t, filepath.Join(dir, "tracks", "b-audio0.wav"), 1000, time.Second)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, behavior := range []string{"silence", "skip", "skip settled"} {
		t.Run(behavior, func(t *testing.T) {
			pz := Interval{Start: 1, End: 1.5}
			if behavior == "skip settled" {
				settled := 1.04 // the live mix's cut began 40 ms after the pause instant
				pz.MixStart, pz.MixEnd = &settled, &settled
			}
			m := &Manifest{Started: t0, Stopped: t0.Add(4 * time.Second), PauseBehavior: pause.Behavior(strings.Fields(behavior)[0]),
				Tracks: []Track{
					{StreamID: "a", TrackID: "audio0", UserID: "u1", Kind: "AUDIO", File: "tracks/a-audio0.wav"},
					{StreamID: "b", TrackID: "audio0", UserID: "u2", Kind: "AUDIO", File: "tracks/b-audio0.wav", Offset: 3},
				},
				Pauses:    []Interval{pz},
				Blackouts: []Interval{{Start: 2, End: 2.5, UserID: "u1"}},
			}
			man := filepath.Join(dir, ManifestFile)
			if err := WriteManifest(man, m); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, strings.ReplaceAll(behavior, " ", "-")+".wav")
			mix, err := MixOffline(man, out, 8000)
			if err != nil {
				t.Fatal(err)
			}
			pcm := mediatest.Decode(t, out, 8000)
			shift := 0.0 // where the wall-clock second s is in the mix: s - shift after the pause
			want := 4.0
			switch behavior {
			case "skip":
				shift, want = 0.5, 3.5
			case "skip settled":
				shift, want = 0.46, 3.54
			}
			if math.Abs(mix.Duration-want) > 1e-9 {
				t.Errorf("mix lasts %v s, want %v", mix.Duration, want)
			}
			level := func(f, a, b float64) float64 {
				return mediatest.ToneLevel(pcm[int(a*8000):int(b*8000)], 8000, f)
			}
			checks := []struct {
				f, a, b float64
				on      bool
			}{
				{440, 0.1, 0.9, true},
				{440, 2.1 - shift, 2.4 - shift, false}, // blackout of u1
				{440, 2.6 - shift, 2.9 - shift, true},
				{1000, 3.1 - shift, 3.4 - shift, true}, // b at its offset, moved up by a skipped pause
				{1000, 2.6 - shift, 2.9 - shift, false},
			}
			if behavior == "silence" {
				checks = append(checks, struct {
					f, a, b float64
					on      bool
				}{440, 1.1, 1.4, false})
			}
			for _, c := range checks {
				if l := level(c.f, c.a, c.b); c.on && l < -30 || !c.on && l > -60 {
					t.Errorf("%g Hz in [%.1f, %.1f]: %.1f dBFS, want present=%v", c.f, c.a, c.b, l, c.on)
				}
			}
		})
	}
}

// TestMixManifestToTracksEnd_EndsWithTheTracks: a recording recovered an
// hour after a kill (its manifest's stop is the recovery's time) is mixed up
// to the end of its latest track, not to the stop; a pause and a blackout
// are re-applied, the blackout the kill left open lasting to the end; a
// stereo mix holds the same samples in both channels.
func TestMixManifestToTracksEnd_EndsWithTheTracks(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "tracks"), 0o755)
	g711File(t, filepath.Join(dir, "tracks", "a-audio0.wav"), 440, 3*time.Second)
	g711File(t, filepath.Join(dir, "tracks", "b-audio0.wav"), 1000, 2*time.Second)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := 2.5
	m := &Manifest{Started: t0, Stopped: t0.Add(time.Hour), PauseBehavior: pause.Silence,
		Tracks: []Track{
			{StreamID: "a", TrackID: "audio0", UserID: "u1", Kind: "AUDIO", File: "tracks/a-audio0.wav"},
			{StreamID: "b", TrackID: "audio0", UserID: "u2", Kind: "AUDIO", File: "tracks/b-audio0.wav", Offset: 1, MediaOffset: &b},
		},
		Pauses:    []Interval{{Start: 0.5, End: 0.8}},
		Blackouts: []Interval{{Start: 2, End: 3600, UserID: "u1"}}, // open at the kill: to the stop
	}
	for _, channels := range []int{1, 2} {
		out := filepath.Join(dir, fmt.Sprintf("mix%d.wav", channels))
		mix, err := MixManifestToTracksEnd(context.Background(), m, dir, out, 8000, channels)
		if err != nil {
			t.Fatal(err)
		}
		if mix.Duration != 4.5 || mix.Channels != channels {
			t.Errorf("mix %+v, want 4.5 s (b's end) with %d channels", mix, channels)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		h, err := wavwriter.ParseHeader(data)
		if err != nil {
			t.Fatal(err)
		}
		pcm := make([]int16, (len(data)-int(h.DataOffset))/2/channels)
		for i := range pcm {
			at := int(h.DataOffset) + 2*channels*i
			pcm[i] = int16(binary.LittleEndian.Uint16(data[at:]))
			if channels == 2 && pcm[i] != int16(binary.LittleEndian.Uint16(data[at+2:])) {
				t.Fatalf("stereo sample %d differs between the channels", i)
			}
		}
		for _, c := range []struct {
			f, a, b float64
			on      bool
		}{
			{440, 0.1, 0.45, true}, {440, 0.55, 0.75, false}, {440, 0.85, 1.95, true}, // the pause
			{440, 2.05, 2.95, false}, // the open blackout
			{1000, 2.0, 2.45, false}, {1000, 2.55, 4.45, true},
		} {
			if l := mediatest.ToneLevel(pcm[int(c.a*8000):int(c.b*8000)], 8000, c.f); c.on && l < -30 || !c.on && l > -60 {
				t.Errorf("%d channels: %g Hz in [%.2f, %.2f]: %.1f dBFS, want present=%v", channels, c.f, c.a, c.b, l, c.on)
			}
		}
	}
	if _, err := MixManifestToTracksEnd(context.Background(), m, dir, filepath.Join(dir, "x.wav"), 8000, 3); err == nil {
		t.Error("3 channels: no error")
	}
}

// TestMixManifest_SameAsWhole: the streaming offline mix writes the same
// bytes as the whole-recording one it replaced (offline_ref_test.go), at
// every rate and for both pause behaviours: µ-law, A-law and 16-bit PCM WAV
// tracks and Ogg/Opus tracks, one beginning before the recording and one
// running past its end, a track placed by its offset and the others by
// their mediaOffset, pauses, and blackouts inside a track, before it and
// past its end; the recording spans several chunks.
func TestMixManifest_SameAsWhole(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "tracks"), 0o755)
	g711File(t, filepath.Join(dir, "tracks", "a-audio0.wav"), 440, 3*time.Second)
	w, err := wavwriter.NewG711(filepath.Join(dir, "tracks", "e-audio0.wav"), wavwriter.ALaw)
	if err != nil {
		t.Fatal(err)
	}
	tone := &synth.Tone{Freq: 660, Amplitude: 9000}
	for i := range 100 {
		if err := w.Write(5, uint32(160*i), tone.NextPCMA(nil)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	speech, _ := synth.Speech(4, 7)
	pcm8k := make([]int16, len(speech)/6)
	for i := range pcm8k {
		pcm8k[i] = speech[6*i]
	}
	if err := synth.WriteWAV(filepath.Join(dir, "tracks", "c-audio0.wav"), pcm8k, 8000); err != nil {
		t.Fatal(err)
	}
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	for _, o := range []struct {
		name string
		freq float64
		secs int
	}{{"b-audio0.ogg", 1000, 2}, {"d-audio0.ogg", 700, 7}} {
		if out, err := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
			fmt.Sprintf("sine=frequency=%g:sample_rate=48000:duration=%d", o.freq, o.secs),
			"-c:a", "libopus", "-b:a", "48k", filepath.Join(dir, "tracks", o.name)).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg: %v\n%s", err, out)
		}
	}
	at := func(v float64) *float64 { return &v }
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, behavior := range []string{"silence", "skip"} {
		m := &Manifest{Started: t0, Stopped: t0.Add(5*time.Second + 300*time.Millisecond), PauseBehavior: pause.Behavior(behavior),
			Tracks: []Track{
				{StreamID: "a", TrackID: "audio0", UserID: "u1", Kind: "AUDIO", File: "tracks/a-audio0.wav", Offset: 0.2},
				{StreamID: "b", TrackID: "audio0", UserID: "u2", Kind: "AUDIO", File: "tracks/b-audio0.ogg", Offset: 1.4, MediaOffset: at(1.5)},
				{StreamID: "c", TrackID: "audio0", UserID: "u3", Kind: "AUDIO", File: "tracks/c-audio0.wav", Offset: 0.7, MediaOffset: at(0.75)},
				{StreamID: "d", TrackID: "audio0", UserID: "u4", Kind: "AUDIO", File: "tracks/d-audio0.ogg", MediaOffset: at(-0.3)},
				{StreamID: "e", TrackID: "audio0", UserID: "u5", Kind: "AUDIO", File: "tracks/e-audio0.wav", Offset: 3.9, MediaOffset: at(3.91)},
				{StreamID: "v", TrackID: "video1", UserID: "u1", Kind: "VIDEO", File: "tracks/v-video1.webm"},
			},
			Pauses: []Interval{{Start: 1, End: 1.6}, {Start: 3.2, End: 3.3}},
			Blackouts: []Interval{{Start: 2, End: 2.5, UserID: "u1"}, {Start: 0, End: 0.4, UserID: "u2"},
				{Start: 4.5, End: 9, UserID: "u4"}, {Start: 1.7, End: 2.2, UserID: "u3"}},
		}
		for _, rate := range []int{8000, 16000, 48000} {
			want, got := filepath.Join(dir, "want.wav"), filepath.Join(dir, "got.wav")
			wm, err := mixManifestWhole(m, dir, want, rate)
			if err != nil {
				t.Fatal(err)
			}
			gm, err := MixManifest(m, dir, got, rate)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := os.ReadFile(want)
			b, _ := os.ReadFile(got)
			if !bytes.Equal(a, b) || *wm != *gm {
				t.Errorf("%s at %d Hz: the streaming mix differs from the whole one (%d and %d bytes; %+v, %+v)", behavior, rate, len(b), len(a), gm, wm)
			}
			if rate == 8000 && behavior == "silence" && len(a) < 2*int(5.3*8000) {
				t.Errorf("the mix is %d bytes", len(a))
			}
		}
	}
}

// TestMixManifest_BoundedMemory: an hour's recording, with a 50-minute µ-law
// track and an Opus track near its end, is mixed in bounded memory: the
// whole-recording mix needed about 190 MB (115 MB of accumulator at 8 kHz,
// 48 MB of decoded track, 24 MB of file); the streaming one allocates less
// than 4 MB in all, so its peak is below that. The tones are where the
// tracks are.
func TestMixManifest_BoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 80 MB")
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "tracks"), 0o755)
	g711File(t, filepath.Join(dir, "tracks", "a-audio0.wav"), 440, 50*time.Minute)
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	if out, err := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=20",
		"-c:a", "libopus", "-b:a", "32k", filepath.Join(dir, "tracks", "b-audio0.ogg")).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	at := func(v float64) *float64 { return &v }
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := &Manifest{Started: t0, Stopped: t0.Add(time.Hour), Tracks: []Track{
		{StreamID: "a", TrackID: "audio0", UserID: "u1", Kind: "AUDIO", File: "tracks/a-audio0.wav", Offset: 300, MediaOffset: at(300)},
		{StreamID: "b", TrackID: "audio0", UserID: "u2", Kind: "AUDIO", File: "tracks/b-audio0.ogg", Offset: 3570, MediaOffset: at(3570)},
	}}
	out := filepath.Join(dir, "mix.wav")
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	mix, err := MixManifest(m, dir, out, 8000)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("an hour mixed at 8 kHz: %.2f MB allocated in all (heap in use before %.1f MB, after %.1f MB)",
		float64(alloc)/1e6, float64(before.HeapInuse)/1e6, float64(after.HeapInuse)/1e6)
	if alloc > 4<<20 {
		t.Errorf("the mix allocated %.1f MB for an hour, want under 4 MB (bounded, not the recording's length)", float64(alloc)/1e6)
	}
	if mix.Duration != 3600 {
		t.Errorf("mix lasts %v s, want 3600", mix.Duration)
	}
	// The tones, read from the file at a few places.
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	read := func(from, to float64) []int16 {
		b := make([]byte, 2*int((to-from)*8000))
		if _, err := f.ReadAt(b, 44+2*int64(from*8000)); err != nil {
			t.Fatal(err)
		}
		pcm := make([]int16, len(b)/2)
		for i := range pcm {
			pcm[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
		}
		return pcm
	}
	for _, c := range []struct {
		f, from, to float64
		on          bool
	}{
		{440, 200, 299.9, false}, {440, 300.1, 302, true}, {440, 1800, 1802, true}, {440, 3299.9, 3299.99, true}, {440, 3300.1, 3310, false},
		{1000, 3560, 3569.9, false}, {1000, 3570.1, 3589, true}, {1000, 3590.1, 3599, false}, {440, 3570.1, 3589, false},
	} {
		if l := mediatest.ToneLevel(read(c.from, c.to), 8000, c.f); (l > -40) != c.on {
			t.Errorf("%g Hz in %.1f–%.1f s: %.0f dB, want present=%v", c.f, c.from, c.to, l, c.on)
		}
	}
}

// TestMixManifest_FollowsASenderWhoseClockSlips: a sender's audio clock runs
// 1 % slow against its wall clock and, halfway, its capture stalls and
// loses 100 ms (the file holds its samples back to back, so every beep of
// the file is early against its wall time, by up to 200 ms at the end);
// its sender reports say so (timing.mappings). The offline mix places the
// track piecewise by them: every beep within 15 ms of where the sender's
// wall clock puts it (a report a second, 10 ms of drift between two), none
// lost, the tone throughout. A sender whose clock runs 1 % fast (every step
// back) is followed too: what a step would lay over the track's own audio
// is left out of the mix, and the beeps are where they belong.
func TestMixManifest_FollowsASenderWhoseClockSlips(t *testing.T) {
	const rate, zeroRTP, beep = 8000, 1000, 2000.0
	sender0 := time.Date(2026, 1, 1, 5, 0, 0, 0, time.UTC) // the sender's wall clock, unrelated to ours
	for _, c := range []struct {
		name        string
		speed       float64 // file seconds per sender second
		stall, lost float64 // the capture lost lost seconds of wall time at stall (0: none)
	}{{"slow and a stall", 0.99, 5, 0.1}, {"fast", 1.01, 0, 0}} {
		t.Run(c.name, func(t *testing.T) {
			file := func(w float64) float64 { // file time of the sender's wall time w
				if c.lost > 0 && w >= c.stall {
					return c.speed*c.stall + c.speed*max(0, w-c.stall-c.lost)
				}
				return c.speed * w
			}
			wall := func(f float64) float64 {
				if c.lost > 0 && f >= c.speed*c.stall {
					return c.stall + c.lost + (f-c.speed*c.stall)/c.speed
				}
				return f / c.speed
			}
			const walls = 10.5 // seconds of the sender's wall clock recorded
			pcm := make([]int16, int(file(walls)*rate))
			for n := range pcm {
				f := float64(n) / rate
				v := 3000 * math.Sin(2*math.Pi*440*f)
				if w := wall(f); math.Mod(w, 1) >= 0.5 && math.Mod(w, 1) < 0.6 {
					v += 6000 * math.Sin(2*math.Pi*beep*f)
				}
				pcm[n] = int16(v)
			}
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "tracks"), 0o755)
			if err := synth.WriteWAV(filepath.Join(dir, "tracks", "a-audio0.wav"), pcm, rate); err != nil {
				t.Fatal(err)
			}
			timing := &TrackTiming{ClockRate: rate, RTPZero: zeroRTP}
			for w := 0.25; w < walls; w++ { // a report a second
				f := file(w)
				timing.Mappings = append(timing.Mappings, Mapping{NTP: sender0.Add(time.Duration(w * float64(time.Second))),
					RTP: zeroRTP + uint32(math.Round(f*rate)), File: f})
			}
			if len(timing.Steps()) == 0 {
				t.Fatal("no steps")
			}
			mo := 0.5
			t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			m := &Manifest{Started: t0, Stopped: t0.Add(11500 * time.Millisecond), Tracks: []Track{
				{StreamID: "a", TrackID: "audio0", UserID: "u1", Kind: "AUDIO", File: "tracks/a-audio0.wav", Offset: mo, MediaOffset: &mo, Timing: timing},
			}}
			out := filepath.Join(dir, "mix.wav")
			mix, err := MixManifest(m, dir, out, 16000)
			if err != nil {
				t.Fatal(err)
			}
			if mix.Duration != 11.5 {
				t.Errorf("mix lasts %v s, want 11.5", mix.Duration)
			}
			got := mediatest.Decode(t, out, rate)
			// The first report puts the file's first sample at the sender's
			// wall time 0.25 - file(0.25) + 0 = wall(0): mediaOffset is that
			// instant, so the sender's wall time w is at mo + w - wall(0).
			var offsets []float64
			for k := 0; k < 10; k++ {
				truth := mo + float64(k) + 0.5 - (0.25 - file(0.25))
				onset := -1.0
				for i := int((truth - 0.3) * rate); i+80 <= int((truth+0.3)*rate); i += 8 {
					if mediatest.ToneLevel(got[i:i+80], rate, beep) > -30 {
						onset = float64(i+40) / rate
						break
					}
				}
				if onset < 0 {
					t.Errorf("beep %d (due at %.3f s) not found", k, truth)
					continue
				}
				offsets = append(offsets, math.Round((onset-truth)*1000))
				if math.Abs(onset-truth) > 0.015 {
					t.Errorf("beep %d at %.3f s, due at %.3f s (%+.0f ms)", k, onset, truth, (onset-truth)*1000)
				}
				// Without the steps it would be at mo + its file time.
				t.Logf("beep %d: %+.0f ms (the file alone would put it %+.0f ms off)", k, (onset-truth)*1000,
					(mo+file(float64(k)+0.5)-truth)*1000)
			}
			t.Logf("beeps against the sender's wall clock: %v ms", offsets)
			// The tone, 50 ms at a time: everywhere but at the stall's
			// 100 ms of silence and across a step (a phase jump).
			quiet := 0
			for a := mo + 0.05; a+0.05 <= mo+10; a += 0.05 {
				if mediatest.ToneLevel(got[int(a*rate):int((a+0.05)*rate)], rate, 440) < -30 {
					quiet++
				}
			}
			t.Logf("windows without the tone: %d of 200", quiet)
			if quiet > 10 {
				t.Errorf("the tone is missing from %d of 200 windows of 50 ms", quiet)
			}
		})
	}
}

// TestMixOffline_CutsAsTheLiveMix: a track file as the recorder writes it
// across a cut (its gate dropped the packets whose audio begins within the
// cut, and the Ogg writer filled the gap with CELT silence packets) is
// mixed as the live mix mixed it: silent from a frame after the cut's
// instant (the packet straddling it kept whole), and at full level at once
// where the audio comes back, since the live decoder never saw the silence
// packets. Decoded, they reset CELT's energy prediction, and the tone came
// back 10-20 dB under its level, fading in over 85-90 ms. The same for a
// pause (pauseBehavior silence) and for a blackout of the track's
// participant.
func TestMixOffline_CutsAsTheLiveMix(t *testing.T) {
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	dir := t.TempDir()
	tone, err := mediatest.OpusTone(ffmpeg, dir, 600, 5)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "tracks"), 0o755)
	w, err := oggwriter.New(filepath.Join(dir, "tracks", "a-audio0.ogg"), oggwriter.WithClock(nil))
	if err != nil {
		t.Fatal(err)
	}
	const from, to = 1.51, 3.6 // the cut: packet 75 (1.50-1.52 s) straddles its instant
	fills := 0
	for i, p := range tone[:250] {
		if at := float64(i) / 50; at >= from && at < to {
			continue // the gate dropped it
		}
		if err := w.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1, SequenceNumber: uint16(i), Timestamp: uint32(960 * i)}, Payload: p}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	pkts, err := synth.ReadOggPackets(filepath.Join(dir, "tracks", "a-audio0.ogg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		if fillSamples(p, 8000) == 160 {
			fills++
		}
	}
	if fills != 104 {
		t.Fatalf("the file holds %d silence packets, want the 104 its writer filled the cut with", fills)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, cut := range []string{"pause", "blackout"} {
		t.Run(cut, func(t *testing.T) {
			m := &Manifest{Started: t0, Stopped: t0.Add(5 * time.Second), PauseBehavior: pause.Silence,
				Tracks: []Track{{StreamID: "a", TrackID: "audio0", UserID: "u1", Kind: "AUDIO", File: "tracks/a-audio0.ogg"}}}
			if cut == "pause" {
				m.Pauses = []Interval{{Start: from, End: to}}
			} else {
				m.Blackouts = []Interval{{Start: from, End: to, UserID: "u1"}}
			}
			out := filepath.Join(dir, cut+".wav")
			if _, err := MixManifest(m, dir, out, 8000); err != nil {
				t.Fatal(err)
			}
			pcm := mediatest.Decode(t, out, 8000)
			level := func(a, b float64) float64 { return mediatest.ToneLevel(pcm[int(a*8000):int(b*8000)], 8000, 600) }
			steady := level(0.5, 1.5)
			if l := level(1.511, 1.519); l < steady-3 {
				t.Errorf("600 Hz at %.1f dBFS in [1.511, 1.519] s, %.1f dBFS before: the packet straddling the cut's instant (%v s) is not whole", l, steady, from)
			}
			if l := level(1.545, 3.595); l > -60 {
				t.Errorf("600 Hz at %.1f dBFS within the cut", l)
			}
			for a := to; a < to+0.1; a += 0.02 {
				if l := level(a, a+0.02); l < steady-3 {
					t.Errorf("600 Hz at %.1f dBFS in [%.2f, %.2f] s after the cut, %.1f dBFS before it: faded in", l, a, a+0.02, steady)
				}
			}
		})
	}
}

// TestFillSamples_TheWritersSilence: fillSamples knows the silence packets
// the Ogg writer writes (a gap's 3-byte ones; a retroactive blackout's,
// code 3 with the packet's own length) and no other packet.
func TestFillSamples_TheWritersSilence(t *testing.T) {
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	dir := t.TempDir()
	tone, err := mediatest.OpusTone(ffmpeg, dir, 600, 1)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "a.ogg")
	w, err := oggwriter.New(path, oggwriter.WithClock(nil))
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range tone[:40] {
		ts := uint32(960 * i)
		if i >= 20 {
			ts += 960 * 10 // a gap of 10 packets
		}
		if err := w.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1, SequenceNumber: uint16(i), Timestamp: ts}, Payload: p}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.SilenceFromPos(960 * 40); err != nil { // the last 10 tone packets
		t.Fatal(err)
	}
	w.Close()
	pkts, err := synth.ReadOggPackets(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, p := range pkts {
		got = append(got, fillSamples(p, 8000))
	}
	want := slices.Concat(slices.Repeat([]int{0}, 20), slices.Repeat([]int{160}, 10), slices.Repeat([]int{0}, 10), slices.Repeat([]int{160}, 10))
	if !slices.Equal(got, want) {
		t.Errorf("fillSamples of the file's packets %v, want %v", got, want)
	}
}
