package recorder

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/media/format"
	"github.com/rtcrec/recorder/media/wavwriter"
)

// recover finds the recordings this recorder left unfinished (a crash or a
// kill) and finishes them in the background: PENDING_RECOVERY first, then the
// files are repaired, composed and uploaded, and the recording becomes STOPPED
// with Recovered set (FAILED when nothing could be saved).
func (m *Manager) recover(ctx context.Context) error {
	recs, err := m.store.InStates(ctx, string(StateInitialised), string(StateActive), string(StatePendingRecovery))
	if err != nil {
		return err
	}
	for _, sr := range recs {
		if sr.Owner != m.recorderID {
			continue // another instance's (or taken over by one)
		}
		// Claim it (the next epoch): an instance that took it over while
		// this one was away wins, and this one leaves it.
		if ok, err := m.store.Claim(ctx, sr.InstanceID, sr.Epoch, m.recorderID); err != nil {
			return err
		} else if !ok {
			continue
		}
		sr.Epoch++
		rec, err := decode(sr)
		if err != nil {
			m.log.Error("cannot recover recording", "instanceId", sr.InstanceID, "err", err)
			continue
		}
		prev := rec.State
		rec.State = StatePendingRecovery
		if err := m.put(ctx, rec); err != nil {
			return err
		}
		if prev != StatePendingRecovery {
			m.publish(ctx, rec, "state.updated", recordingEventData(rec))
		}
		s := &Session{m: m, rec: rec, stopCh: make(chan stopReason, 1), done: make(chan struct{}),
			log: m.log.With("instanceId", rec.InstanceID, "conversationId", rec.ConversationID), stopping: true}
		m.mu.Lock()
		m.active[rec.InstanceID] = s
		m.mu.Unlock()
		m.log.Info("recovering recording", "instanceId", rec.InstanceID)
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			s.recoverFiles()
		}()
	}
	return nil
}

// recoverFiles finishes a recording found unfinished at start-up.
func (s *Session) recoverFiles() {
	ctx := context.Background()
	rec := s.Snapshot()
	defer close(s.done)
	defer s.m.forget(rec.InstanceID, s)
	now := s.m.now()
	if err := wavwriter.Repair(filepath.Join(rec.Dir, composition.MixFile)); err != nil {
		s.log.Warn("cannot repair mix", "err", err)
	}
	for _, st := range rec.Streams {
		for _, tr := range st.Tracks {
			if err := repairTrack(filepath.Join(rec.Dir, filepath.FromSlash(tr.File))); err != nil {
				s.log.Warn("cannot repair track", "file", tr.File, "err", err)
			}
		}
	}
	if err := s.commit(ctx, func(r *Recording) {
		if r.Stopped.IsZero() {
			r.Stopped = now
		}
		r.Recovered = now
		for _, st := range r.Streams {
			if st.State == StreamRecording {
				st.State, st.Stopped = StreamStopped, now
			}
			for _, tr := range st.Tracks {
				if tr.Stopped.IsZero() {
					tr.Stopped = now
				}
			}
		}
	}); err != nil {
		s.log.Error("cannot persist recovery", "err", err)
		return
	}
	final, failure := StateStopped, (*ErrorInfo)(nil)
	if !fileExists(rec.Dir) {
		final, failure = StateFailed, &ErrorInfo{Code: CodeRecoveryFailed, Message: "the recording's local files are gone", Occurred: now}
	} else if err := s.compose(ctx, StateStopped); err != nil {
		final, failure = StateFailed, failureInfo(s.log, CodeUploadFailed, err, s.m.now())
	}
	if err := s.commit(ctx, func(r *Recording) { r.State, r.Error = final, failure }); err != nil {
		s.log.Error("cannot persist recovered state", "err", err)
	}
	s.log.Info("recording recovered", "state", final)
}

// repairTrack repairs a track file left by a crash (kill -9): every writer
// puts its buffered media on disk at least once per second, so at most
// about a second is lost, and at the next start recoverFiles
// repairs each file with its container's Repair (media/format: WAV sizes
// from the length, Ogg and MP4 cut after the last whole page or box, WebM
// kept as it is). A missing file is not an error.
func repairTrack(path string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if f := format.ForFile(path); f != nil {
		return f.Repair(path)
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
