package recorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/rtcrec/recorder/media"
	"github.com/rtcrec/recorder/media/format"
	"github.com/rtcrec/recorder/media/wavwriter"
	"github.com/rtcrec/recorder/media/webmwriter"
	"github.com/rtcrec/recorder/recorder/conference"
)

// sessionMedia is one recording's media graph: the mixer goroutine writing
// mix.wav, and a constructor of per-track sinks (file writer plus, for audio,
// the decoding pipeline into a mixer input). A recording without a mix
// (MixSettings.None) has no mixer, no mix.wav and no pipelines: its tracks
// are only written, and nothing is decoded.
type sessionMedia struct {
	log    *slog.Logger
	mix    *wavwriter.Writer
	sink   *guardedMix // mix behind the guard of retroactive edits
	mixer  *media.Mixer
	cancel context.CancelFunc
	done   chan error
	failed chan error // buffered 1: the mixer's write error, as soon as it stops on one
	path   string     // of mix.wav
	closed bool
}

func newSessionMedia(rec *Recording, started time.Time, mixPath string, log *slog.Logger) (*sessionMedia, error) {
	if rec.Mix.None {
		return &sessionMedia{log: log, failed: make(chan error, 1)}, nil
	}
	pb, err := media.ParsePauseBehavior(string(rec.PauseBehavior))
	if err != nil {
		return nil, err
	}
	w, err := wavwriter.New(mixPath, wavwriter.WithSampleRate(rec.Mix.SampleRate), wavwriter.WithChannels(rec.Mix.Channels))
	if err != nil {
		return nil, fmt.Errorf("recorder: create mix: %w", err)
	}
	sink := &guardedMix{w: w}
	mixer := media.NewMixer(media.MixConfig{SampleRate: rec.Mix.SampleRate, Channels: rec.Mix.Channels,
		Latency: rec.Mix.Latency, PauseBehavior: pb, Start: started}, sink)
	ctx, cancel := context.WithCancel(context.Background())
	sm := &sessionMedia{path: mixPath, log: log, mix: w, sink: sink, mixer: mixer, cancel: cancel, done: make(chan error, 1), failed: make(chan error, 1)}
	go func() {
		err := mixer.Run(ctx)
		if err != nil {
			sm.failed <- err
		}
		sm.done <- err
	}()
	return sm, nil
}

// close stops the mixer goroutine, which first writes the rest of the mix
// (everything the tracks delivered, up to at least the instant at: the
// stop; zero: now), and closes mix.wav; it returns the frames written.
func (sm *sessionMedia) close(at ...time.Time) (int64, error) {
	if sm.mixer == nil {
		return 0, nil
	}
	if sm.closed {
		return sm.mixer.Frames(), nil
	}
	sm.closed = true
	if len(at) > 0 && !at[0].IsZero() {
		sm.mixer.SetEnd(at[0])
	}
	sm.cancel()
	err := <-sm.done
	var cerr error
	sm.sink.guard.edit(func() { cerr = sm.mix.Close() })
	if err == nil {
		err = cerr
	}
	return sm.mixer.Frames(), err
}

// trackSink returns the sink of one track: its file at path and, for audio,
// the pipeline into a new mixer input.
func (sm *sessionMedia) trackSink(t *conference.Track, path string, offset time.Duration) (packetSink, error) {
	file, err := newTrackWriter(t, path)
	if err != nil {
		return nil, err
	}
	ts := &mediaSink{file: file, sr: t.SenderReport, path: path}
	if t.Kind == conference.KindAudio && sm.mixer != nil {
		in := sm.mixer.AddInput(t.StreamID+"/"+t.TrackID, media.InputOptions{})
		pipe, err := newAudioPipeline(t, in)
		if err != nil {
			sm.mixer.RemoveInput(in)
			file.Close()
			return nil, err
		}
		ts.audio, ts.in, ts.mixer = pipe, in, sm.mixer
		ts.codec, _ = media.CodecFromMime(t.Codec.MimeType) // newAudioPipeline accepted it
		clock := max(float64(t.Codec.ClockRate), 1)
		ts.plog = &placementLog{k: float64(sm.mixer.Config().SampleRate) / clock}
	}
	return ts, nil
}

// mediaSink writes a track's packets to its file and, for audio, its pipeline.
type mediaSink struct {
	file  packetSink
	audio packetSink
	in    *media.MixInput
	mixer *media.Mixer
	gate  *gate // pause and blackout; nil: everything passes
	// Retroactive blackouts: the file's writer behind a guard, the clock
	// relation of its timestamps, its path in the recording and on disk;
	// for audio with a mix, its codec and where its file lies on the mix's
	// timeline (written under the guard).
	guard   editGuard
	clk     *clockRelation
	relPath string
	path    string
	codec   media.Codec
	plog    *placementLog
	// gated: the gate dropped the last packet, so the next one that passes
	// re-anchors the track's timeline at its arrival (reader goroutine only).
	gated bool
	// sr is the track's latest RTCP sender report (nil: the adapter reads
	// none); srArrived, when the one the pipeline has came. Reader goroutine.
	sr        func() (conference.SenderReport, bool)
	srArrived time.Time
	// zeroTS is the RTP timestamp of the first packet written to the file
	// (its time zero), valid once wrote is set (atomic: read at track end).
	zeroTS uint32
	wrote  atomic.Bool
}

// timing is what places a track's file on the recording's clock: the RTP
// timestamp of its first packet and the sender's latest sender report.
func (m *mediaSink) timing() (zeroTS uint32, sr conference.SenderReport, ok, srOK bool) {
	if !m.wrote.Load() {
		return 0, sr, false, false
	}
	if m.sr != nil {
		sr, srOK = m.sr()
	}
	return m.zeroTS, sr, true, srOK
}

// videoFrames returns the frames a video track's writer wrote; video is false
// for audio tracks.
func (m *mediaSink) videoFrames() (frames uint64, video bool) {
	if v, ok := m.file.(interface{ Stats() webmwriter.Stats }); ok { // mp4writer.Stats is the same type
		return v.Stats().Frames, true
	}
	return 0, false
}

// origin returns the instant on the recording's timeline where the mix
// placed an audio track's first packet (zero for video, or before a packet).
func (m *mediaSink) origin() time.Time {
	if p, ok := m.audio.(*media.AudioPipeline); ok {
		if pos, ok := p.Origin(); ok {
			return m.mixer.TimeAt(pos)
		}
	}
	return time.Time{}
}

func (m *mediaSink) WriteRTP(p *rtp.Packet) error {
	if m.gate != nil && m.gate.drop() {
		m.gated = true
		return nil // paused or blacked out: nothing reaches any file
	}
	if m.gated {
		m.gated = false
		if p, ok := m.audio.(*media.AudioPipeline); ok {
			p.Resync() // the resume is at this packet's arrival, whatever its timestamp
		}
		if m.clk != nil {
			m.clk.reset()
		}
	}
	if !m.wrote.Load() {
		m.zeroTS = p.Timestamp
		m.wrote.Store(true)
	}
	if m.sr != nil {
		if sr, ok := m.sr(); ok && !sr.Arrived.Equal(m.srArrived) {
			m.srArrived = sr.Arrived
			if pipe, ok := m.audio.(*media.AudioPipeline); ok {
				pipe.SenderReport(sr.SSRC, sr.NTP, sr.RTPTime)
			}
		}
	}
	var err error
	fileTS := p.Timestamp
	m.guard.enter()
	if m.gate != nil {
		orig := p.Timestamp
		p.Timestamp = m.gate.timestamp(p) // shifted after a skipped pause; p is shared: restore
		fileTS = p.Timestamp
		err = m.file.WriteRTP(p)
		if m.clk != nil {
			m.clk.observe(p.Timestamp, time.Now().UnixNano())
		}
		p.Timestamp = orig
	} else {
		err = m.file.WriteRTP(p)
	}
	m.guard.leave()
	if m.audio != nil {
		if aerr := m.audio.WriteRTP(p); err == nil {
			err = aerr
		}
		m.place(p.Timestamp, fileTS)
	}
	return err
}

func (m *mediaSink) Close() error {
	var err error
	m.guard.edit(func() { err = m.file.Close() })
	if m.audio != nil {
		err = errors.Join(err, m.audio.Close())
		m.mixer.RemoveInput(m.in)
	}
	return err
}

// newTrackWriter creates the per-track file writer of t's codec (the
// media/format table): no transcoding.
func newTrackWriter(t *conference.Track, path string) (packetSink, error) {
	c := format.ForCodec(t.Codec.MimeType)
	if c == nil {
		return nil, fmt.Errorf("recorder: no writer for codec %s", t.Codec.MimeType)
	}
	return c.New(path, keyframer(t))
}

// keyframer returns a non-blocking keyframe request for t's writer: it sends
// the PLI on its own goroutine, at most one at a time.
func keyframer(t *conference.Track) func() {
	if t.RequestKeyframe == nil {
		return func() {}
	}
	var busy atomic.Bool
	return func() {
		if busy.Swap(true) {
			return
		}
		go func() {
			defer busy.Store(false)
			t.RequestKeyframe()
		}()
	}
}

// newAudioPipeline returns the decoder of t's codec writing into in.
func newAudioPipeline(t *conference.Track, in *media.MixInput) (packetSink, error) {
	codec, err := media.CodecFromMime(t.Codec.MimeType)
	if err != nil {
		return nil, err
	}
	return media.NewAudioPipeline(media.AudioPipelineConfig{Codec: codec, ClockRate: int(t.Codec.ClockRate), Input: in})
}
