package recorder

import (
	"context"
	"errors"
	"github.com/rtcrec/recorder/media"
	"log/slog"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/media/format"
	"github.com/rtcrec/recorder/media/reorder"
	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/recorder/store"
)

// Local write faults. The mixer stops on its first failed write (the WAV
// writer writes once per second, so a full disk shows within a second);
// watchWrites then stops the recording at once with that error, and finish
// makes it FAILED with writeErrorCode's code. Nothing written is deleted: the
// files are kept, and uploaded as far as they go.

// watchWrites stops s when its mixer fails to write; it returns when s ends.
func (s *Session) watchWrites(med *sessionMedia) {
	select {
	case err := <-med.failed:
		s.log.Error("recording cannot write its files: stopping it", "err", err)
		s.requestStop(stopReason{err: err})
	case <-s.done:
	}
}

// writeErrorCode is the error code of a recording whose files could not be
// written: disk_full when the file system is full (or over quota), else
// write_failed.
func writeErrorCode(err error) ErrorCode {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return CodeDiskFull
	}
	return CodeWriteFailed
}

// Session is one recording while this process runs it: the state machine, the
// media graph and the finishing steps (close files, compose, upload).
type Session struct {
	m    *Manager
	log  *slog.Logger
	room *room

	mu       sync.Mutex // guards rec, media additions and stopping
	rec      *Recording
	stopping bool
	// stopAt is the stop's instant once the stop began (stopMedia): a track
	// that ends after it (the stop's drain, the detach) ends there.
	stopAt time.Time
	fenced bool // a write found the recording taken over by another instance
	media  *sessionMedia
	lc     pauseState // pause state and track gates
	// cont, for the continuation of a recording taken over: the segment it
	// continues, and whether it begins paused (takeover.go).
	cont *continuation
	// tracks counts the subscriptions whose end is not recorded yet:
	// subscribe adds one, trackEnded marks it done (on the reader goroutine
	// at EOF, or in finish). finish waits for them all before it looks at
	// what was recorded.
	tracks sync.WaitGroup

	recut chan recutRequest // retroactive blackouts: parts to cut again (retro.go, chunks.go)
	retro sync.Mutex        // one retroactive blackout's edits at a time

	stopOnce sync.Once
	stopCh   chan stopReason // buffered 1: the first stop reason wins
	done     chan struct{}   // closed when the recording reached a final state
}

// Snapshot returns a copy of the recording as it is now.
func (s *Session) Snapshot() *Recording {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec.clone()
}

// commit applies fn to a copy of the recording, persists the copy and only
// then makes it current: every state the API reports was stored first.
// The caller holds s.mu.
func (s *Session) commitLocked(ctx context.Context, fn func(r *Recording)) error {
	c := s.rec.clone()
	fn(c)
	c.Updated = s.m.now()
	if err := s.m.put(ctx, c); err != nil {
		if errors.Is(err, store.ErrFenced) && !s.fenced {
			// Another instance took the recording over (this one was
			// thought dead): stop at once and write nothing more.
			s.fenced = true
			s.log.Error("recording taken over by another instance: stopping without writing", "err", err)
			go s.requestStop(stopReason{err: err})
		}
		return err
	}
	old := s.rec
	s.rec = c
	s.m.changed(old, c) // events of what changed
	return nil
}

func (s *Session) commit(ctx context.Context, fn func(r *Recording)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commitLocked(ctx, fn)
}

// requestStop asks the session's goroutine to stop; only the first reason counts.
func (s *Session) requestStop(r stopReason) {
	s.stopOnce.Do(func() { s.stopCh <- r })
}

// run waits for a reason to stop (request, conference end, max duration) and
// then finishes the recording.
func (s *Session) run(maxDuration time.Duration) {
	timer := time.NewTimer(maxDuration)
	defer timer.Stop()
	var why stopReason
	select {
	case why = <-s.stopCh:
	case <-timer.C:
		why = stopReason{maxDuration: true}
		s.log.Info("max duration reached", "maxDuration", maxDuration)
	}
	s.finish(why)
}

// subscribe is called by the room (holding room.mu) for each track of the
// conference; it returns nil when this recording does not record the track.
func (s *Session) subscribe(rt *roomTrack) *trackSub {
	t := rt.t
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping || s.media == nil {
		return nil
	}
	if (t.Kind == conference.KindAudio && !s.rec.Audio) || (t.Kind == conference.KindVideo && !s.rec.Video) {
		return nil
	}
	if f := s.rec.Only; f != nil && (t.UserID != f.UserID || f.StreamType != "" && t.StreamType != f.StreamType) {
		return nil
	}
	streamID, trackID := safeName(t.StreamID), safeName(t.TrackID)
	codec := format.ForCodec(t.Codec.MimeType)
	if codec == nil {
		s.log.Warn("track not recorded: no writer for its codec", "track", t.TrackID, "codec", t.Codec.MimeType)
		return nil
	}
	file := composition.TrackFile(streamID, trackID, codec.Container.Ext)
	now := s.m.now()
	sink, err := s.media.trackSink(t, filepath.Join(s.rec.Dir, filepath.FromSlash(file)), now.Sub(s.rec.Started))
	if ms, ok := sink.(*mediaSink); ok {
		ms.relPath = file
		// The clock relation places what the mix does not (stopPlace).
		ms.clk = &clockRelation{clock: max(int64(t.Codec.ClockRate), 1), budget: s.media.latency}
		ms.gate = s.newGate(t.UserID, ms, t.Codec.ClockRate, t.Kind == conference.KindVideo) // pause and blackout
	}
	ts := &trackSub{s: s, t: t, stream: streamID, sink: sink, quiet: make(chan struct{}),
		path: filepath.Join(s.rec.Dir, filepath.FromSlash(file)), joined: now.UnixNano()}
	ts.settled = func() { s.storeTimeZero(ts) }
	if ms, ok := sink.(*mediaSink); ok {
		ts.in = ms.in
		if ms.srs != nil {
			ms.srs.onKeep = ts.timingChanged
		}
	}
	err2 := s.commitLocked(context.Background(), func(r *Recording) {
		st := r.stream(streamID)
		if st == nil {
			st = &Stream{ID: streamID, UserID: t.UserID, Type: t.StreamType, State: StreamRecording, Started: now}
			r.Streams = append(r.Streams, st)
		}
		st.State, st.Stopped = StreamRecording, time.Time{}
		tr := &Track{ID: trackID, Kind: t.Kind, Codec: t.Codec.MimeType, File: file, Offset: now.Sub(r.Started),
			Started: now, Local: LocalFile{Location: filepath.Join(r.Dir, filepath.FromSlash(file)), Created: now}}
		if err != nil {
			tr.Stopped = now
			tr.Local.Error = failureInfo(s.log.With("track", t.TrackID), CodeTrackFailed, err, now)
			st.State = StreamFailed
		}
		st.Tracks = append(st.Tracks, tr)
	})
	if err != nil {
		s.log.Error("cannot record track", "track", t.TrackID, "err", err)
		return nil
	}
	if err2 != nil {
		s.log.Error("cannot persist new track", "track", t.TrackID, "err", err2)
	}
	s.m.trackStarted(ts)
	s.tracks.Add(1) // under s.mu with stopping false: before finish waits
	return ts
}

// trackEnded finalises a track whose reader ended or whose session stops.
func (s *Session) trackEnded(ts *trackSub) {
	defer s.tracks.Done()
	ts.endTiming()
	closeErr := ts.sink.Close()
	s.m.trackStopped(ts)
	noMedia := false
	var origin time.Time // where the mix placed an audio track's first packet
	var timing *composition.TrackTiming
	if ms, ok := ts.sink.(*mediaSink); ok {
		s.dropGate(ms.gate)
		if ms.order != nil {
			if st := ms.order.Stats(); st != (reorder.Stats{}) {
				s.log.Info("track file's reorder stage", "track", ts.t.TrackID, "kind", ts.t.Kind,
					"reordered", st.Reordered, "skipped", st.Skipped, "duplicates", st.Duplicates, "late", st.Late, "restarts", st.Restarts)
			}
		}
		// Where the packets the reader handed the track went (the file's
		// side); how long after the subscription the first came, and
		// whether it followed the last one before (seqGap 1).
		fs := ms.fileStats()
		args := []any{"track", ts.t.TrackID, "userId", ts.t.UserID, "kind", ts.t.Kind,
			"packets", ts.pkts.Load(), "written", fs.Written, "missing", fs.Missing, "paused", fs.DroppedPaused,
			"afterStop", fs.DroppedAfterStop, "keptByArrival", ms.keptByArrival.Load(), "beforeStart", ms.beforeStart.Load(),
			"firstAfterJoinMs", max(ts.arrived-ts.joined, 0) / int64(time.Millisecond)}
		if ts.joinSeq != 0 && ts.pkts.Load() > 0 {
			args = append(args, "seqGap", int16(ts.firstSeq-uint16(ts.joinSeq)))
		}
		if ms.receipts != nil && ms.firstReceived != 0 {
			args = append(args, "firstReceivedAfterJoinMs", (ms.firstReceived-ts.joined)/int64(time.Millisecond))
		}
		s.log.Info("track's file", args...)
		frames, video := ms.videoFrames()
		noMedia = video && frames == 0
		origin = ms.origin()
		if pipe, ok := ms.audio.(*media.AudioPipeline); ok && !origin.IsZero() {
			// Where the mix placed the track (its file's time zero) and how.
			st := pipe.Stats()
			s.log.Info("track's mix pipeline", "track", ts.t.TrackID, "userId", ts.t.UserID,
				"originMs", origin.Sub(ms.mixer.Config().Start).Milliseconds(), "packets", st.Packets, "decoded", st.Decoded,
				"lost", st.Lost, "concealed", st.Concealed, "recovered", st.Recovered, "late", st.Late, "shed", st.Shed,
				"beforeStart", st.BeforeStart, "reanchors", st.Reanchors, "bySR", st.BySR, "deferred", st.Deferred, "resampled", st.Resampled, "ratio", pipe.Ratio(),
				"ringOverflowMs", ms.mixer.Duration(ms.in.Ring().Overflowed()).Milliseconds(), "ringEndMs", ms.mixer.Duration(ms.in.Ring().End()).Milliseconds())
		}
		timing = ms.trackTiming(ts.t.Codec.ClockRate)
	}
	now := s.m.now()
	s.mu.Lock()
	if !s.stopAt.IsZero() && now.After(s.stopAt) {
		now = s.stopAt // the track's media ends at the stop: what came later is not kept
	}
	s.mu.Unlock()
	if l, ok := ts.t.Reader.(interface{ LeftAt() time.Time }); ok {
		// A participant who left: the track ends at the leave, not when its
		// reader had read what arrived before it (up to leaveQuiet later).
		if at := l.LeftAt(); !at.IsZero() && at.Before(now) {
			now = at
		}
	}
	err := s.commit(context.Background(), func(r *Recording) {
		st := r.stream(ts.stream)
		if st == nil {
			return
		}
		all := true
		for _, tr := range st.Tracks {
			if tr.ID == safeName(ts.t.TrackID) && tr.Stopped.IsZero() {
				tr.Stopped = now
				tr.Packets = ts.pkts.Load()
				tr.Dropped = ts.errs.Load()
				if first := ts.first.Load(); first != 0 {
					tr.FirstPacket = time.Unix(0, first).UTC()
					if late := time.Duration(ts.arrived - first); late > 20*time.Millisecond {
						s.log.Info("track's first packet came late: time zero moved back", "track", ts.t.TrackID,
							"userId", ts.t.UserID, "kind", ts.t.Kind, "late", late)
					}
				}
				if !origin.IsZero() {
					tr.FirstPacket = origin.UTC() // the file lines up with the mix
				}
				tr.Timing = timing
				switch {
				case closeErr != nil:
					tr.Local.Error = failureInfo(s.log.With("track", ts.t.TrackID), writeErrorCode(closeErr), closeErr, now)
				case noMedia:
					// An unplayable file is not offered: no keyframe ever came.
					tr.Local.Error = &ErrorInfo{Code: CodeNoMedia, Message: "no decodable video frame arrived (no keyframe)", Occurred: now}
				}
			}
			all = all && !tr.Stopped.IsZero()
		}
		if all && st.State == StreamRecording {
			st.State, st.Stopped = StreamStopped, now
		}
	})
	if err != nil {
		s.log.Error("cannot persist track end", "track", ts.t.TrackID, "err", err)
	}
}

// storeTimeZero stores a running track's time zero (Track.FirstPacket:
// where the mix placed its first sample, else when its first packet
// arrived) once it is settled, zeroWindow after the first packet, and its
// timing so far (the sender's reports kept, the moves), again when its
// sender's reports step (timingChanged), so that a recovery after a kill
// places the track's file as the live mix did (the manifest's mediaOffset
// and timing; completeMix). trackEnded stores them again, with the rest,
// when the track ends.
func (s *Session) storeTimeZero(ts *trackSub) {
	if ts.t == nil {
		return
	}
	var at time.Time
	if first := ts.first.Load(); first != 0 {
		at = time.Unix(0, first)
	}
	var timing *composition.TrackTiming
	if ms, ok := ts.sink.(*mediaSink); ok {
		if origin := ms.origin(); !origin.IsZero() {
			at = origin
		}
		timing = ms.trackTiming(ts.t.Codec.ClockRate)
	}
	if at.IsZero() {
		return
	}
	id := safeName(ts.t.TrackID)
	if err := s.commit(context.Background(), func(r *Recording) {
		if st := r.stream(ts.stream); st != nil {
			for _, tr := range st.Tracks {
				if tr.ID == id && tr.Stopped.IsZero() {
					tr.FirstPacket = at.UTC()
					if timing != nil {
						tr.Timing = timing
					}
				}
			}
		}
	}); err != nil {
		s.log.Warn("cannot store the track's time zero", "track", ts.t.TrackID, "err", err)
	}
}

// timingEvery is the least time between two stores of a running track's
// timing when its sender's reports step (timingChanged): a few writes a
// minute at most for a sender whose clock steps at every report.
const timingEvery = 5 * time.Second

// timingChanged stores the running track's timing (storeTimeZero) on its
// own goroutine, at once or timingEvery after the last store: its sender's
// reports stepped (senderClock.onKeep; the reader goroutine, once per kept
// report, never per packet).
func (ts *trackSub) timingChanged() {
	ts.timingMu.Lock()
	defer ts.timingMu.Unlock()
	if ts.timingEnded || ts.timingTimer != nil {
		return
	}
	ts.timingTimer = time.AfterFunc(time.Until(ts.timingAt.Add(timingEvery)), func() {
		ts.timingMu.Lock()
		ended := ts.timingEnded
		ts.timingTimer, ts.timingAt = nil, time.Now()
		ts.timingMu.Unlock()
		if !ended {
			ts.s.storeTimeZero(ts)
		}
	})
}

// endTiming stops storing the track's timing while it runs: it ended.
func (ts *trackSub) endTiming() {
	ts.timingMu.Lock()
	defer ts.timingMu.Unlock()
	ts.timingEnded = true
	if ts.timingTimer != nil {
		ts.timingTimer.Stop()
	}
}

// isFenced reports whether a write found the recording taken over.
func (s *Session) isFenced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fenced
}
