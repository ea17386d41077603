package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/media/format"
	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/recorder/store"
)

// Session is one recording while this process runs it: the state machine, the
// media graph and the finishing steps (close files, compose, upload).
type Session struct {
	m    *Manager
	log  *slog.Logger
	room *room

	mu       sync.Mutex // guards rec, media additions and stopping
	rec      *Recording
	stopping bool
	fenced   bool // a write found the recording taken over by another instance (takeover.go)
	media    *sessionMedia
	lc       lifecycle // pause state and track gates (pause.go)
	// tracks counts the subscriptions whose end is not recorded yet:
	// subscribe adds one, trackEnded marks it done (on the reader goroutine
	// at EOF, or in finish). finish waits for them all before it looks at
	// what was recorded.
	tracks sync.WaitGroup

	recut chan recutRequest // retroactive blackouts: parts to cut again (retro.go, chunks.go)

	stopOnce sync.Once
	stopCh   chan stopReason // buffered 1: the first stop reason wins
	done     chan struct{}   // closed when the recording reached a final state
}

// stopReason says why a session stops.
type stopReason struct {
	conferenceEnded bool
	maxDuration     bool
	shutdown        bool
	err             error
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
	s.m.changed(old, c) // events of what changed (notify.go)
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
		if t.Kind == conference.KindAudio {
			ms.clk = &clockRelation{clock: max(int64(t.Codec.ClockRate), 1)}
		}
		ms.gate = s.newGate(t.UserID, ms, t.Codec.ClockRate) // pause and blackout (pause.go)
	}
	ts := &trackSub{s: s, t: t, stream: streamID, sink: sink, quiet: make(chan struct{}),
		path: filepath.Join(s.rec.Dir, filepath.FromSlash(file)), joined: now.UnixNano()}
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
	closeErr := ts.sink.Close()
	s.m.trackStopped(ts)
	noMedia := false
	var origin time.Time // where the mix placed an audio track's first packet
	var timing *composition.TrackTiming
	if ms, ok := ts.sink.(*mediaSink); ok {
		s.dropGate(ms.gate)
		frames, video := ms.videoFrames()
		noMedia = video && frames == 0
		origin = ms.origin()
		if zero, sr, ok, srOK := ms.timing(); ok {
			timing = &composition.TrackTiming{ClockRate: ts.t.Codec.ClockRate, RTPZero: zero}
			if srOK {
				timing.SenderReportNTP, timing.SenderReportRTP = &sr.NTP, sr.RTPTime
			}
		}
	}
	now := s.m.now()
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

// finish stops the recording: detach from the conference, close every track,
// the mixer and the mix, compose and upload, and persist the final state.
func (s *Session) finish(why stopReason) {
	defer close(s.done)
	defer s.m.forget(s)
	ctx := context.Background()
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()

	for _, ts := range s.room.detach(s) {
		if ts.close() {
			s.trackEnded(ts)
		}
	}
	// A track whose reader met EOF just before the detach is ended by that
	// goroutine: wait until its file is closed and its packets recorded, or
	// the recording would be judged (and composed) without it.
	s.tracks.Wait()
	var mixFrames int64
	var mixErr error
	s.mu.Lock()
	med := s.media
	s.mu.Unlock()
	stopped := s.m.now() // the mix lasts until here (and holds all that arrived)
	if med != nil {
		mixFrames, mixErr = med.close(stopped)
		s.m.mixStopped(med)
	}
	if err := s.commit(ctx, func(r *Recording) {
		r.Stopped = stopped
		r.MixFrames = mixFrames
		closeOpenIntervals(r, stopped, med.position())
		for _, st := range r.Streams {
			if st.State == StreamRecording {
				st.State, st.Stopped = StreamStopped, stopped
			}
		}
	}); err != nil {
		s.log.Error("cannot persist stop", "err", err)
	}
	if s.isFenced() {
		// The new owner finishes the recording; its objects are not ours
		// to write.
		s.log.Warn("recording finished here without uploads: another instance owns it now")
		return
	}

	rec := s.Snapshot()
	final, failure := StateStopped, (*ErrorInfo)(nil)
	switch {
	case mixErr != nil:
		final, failure = StateFailed, failureInfo(s.log, writeErrorCode(mixErr), mixErr, stopped)
	case why.conferenceEnded && why.err != nil:
		final, failure = StateAborted, &ErrorInfo{Code: CodeConferenceEnded, Message: why.err.Error(), Occurred: stopped}
	case !rec.hadMedia():
		final = StateAborted
	}
	if rec.hadMedia() {
		if err := s.m.compose(ctx, s, final); err != nil && final == StateStopped {
			final, failure = StateFailed, failureInfo(s.log, CodeUploadFailed, err, s.m.now())
		}
	}
	if err := s.commit(ctx, func(r *Recording) {
		r.State, r.Error = final, failure
	}); err != nil {
		s.log.Error("cannot persist final state", "state", final, "err", err)
	}
	if !rec.hadMedia() {
		s.m.discard(rec)
	}
	s.log.Info("recording finished", "state", final, "reason", reasonText(why), "duration", stopped.Sub(rec.Started).Round(time.Millisecond))
}

func reasonText(r stopReason) string {
	switch {
	case r.conferenceEnded:
		return "conference ended"
	case r.maxDuration:
		return "max duration"
	case r.shutdown:
		return "shutdown"
	}
	return "stop request"
}

// put persists r.
func (m *Manager) put(ctx context.Context, r *Recording) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("recorder: marshal %s: %w", r.InstanceID, err)
	}
	return m.store.Put(ctx, &store.Record{
		InstanceID: r.InstanceID, OrganizationID: r.OrganizationID, ApplicationID: r.ApplicationID,
		ConversationID: r.ConversationID, ConferenceID: r.ConferenceID, RecorderID: r.RecorderID,
		State: string(r.State), Started: r.Created, Data: data, Owner: r.Owner, Epoch: r.Epoch,
	})
}

// insert stores a new recording. In a fleet it counts against the
// organization's quota of recordings across every instance, atomically with
// the insert (the check in Start counts this instance's only).
func (m *Manager) insert(ctx context.Context, r *Recording, quota int) error {
	if m.remote == nil {
		return m.put(ctx, r)
	}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("recorder: marshal %s: %w", r.InstanceID, err)
	}
	err = m.store.Insert(ctx, &store.Record{
		InstanceID: r.InstanceID, OrganizationID: r.OrganizationID, ApplicationID: r.ApplicationID,
		ConversationID: r.ConversationID, ConferenceID: r.ConferenceID, RecorderID: r.RecorderID,
		State: string(r.State), Started: r.Created, Data: data, Owner: r.Owner, Epoch: r.Epoch,
	}, quota)
	if errors.Is(err, store.ErrQuota) {
		return QuotaError("recordings", quota)
	}
	return err
}

// decode turns a stored record back into a Recording.
func decode(rec *store.Record) (*Recording, error) {
	var r Recording
	if err := json.Unmarshal(rec.Data, &r); err != nil {
		return nil, fmt.Errorf("recorder: stored recording %s: %w", rec.InstanceID, err)
	}
	r.Owner, r.Epoch = rec.Owner, rec.Epoch
	return &r, nil
}

// safeName makes an adapter-given id usable in a file name: ids that pass
// ValidateID are kept, anything else is replaced by a readable, safe form.
func safeName(id string) string {
	if ValidateID("id", id) == nil {
		return id
	}
	var b strings.Builder
	for i := 0; i < len(id) && b.Len() < 64; i++ {
		c := id[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 || !isAlnum(b.String()[0]) {
		return "t" + b.String()
	}
	return b.String()
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// isFenced reports whether a write found the recording taken over.
func (s *Session) isFenced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fenced
}
