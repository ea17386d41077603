package recorder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

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
	killed := lastWrite(rec, now) // before the repairs write
	mixPath := filepath.Join(rec.Dir, composition.MixFile)
	if err := wavwriter.Repair(mixPath); err != nil {
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
			r.Stopped = killed
		}
		r.Recovered = now
		for _, st := range r.Streams {
			if st.State == StreamRecording {
				st.State, st.Stopped = StreamStopped, killed
			}
			for _, tr := range st.Tracks {
				if tr.Stopped.IsZero() {
					tr.Stopped = killed
				}
			}
		}
	}); err != nil {
		s.log.Error("cannot persist recovery", "err", err)
		return
	}
	if !rec.Mix.None && fileExists(mixPath) {
		s.completeMix(ctx, mixPath)
	}
	if rec.Takeover != nil {
		s.firstSegmentEnds(ctx, mixPath)
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

// lastWrite returns when the recorder that left rec unfinished last wrote
// one of its files (the mix, a track): about when it was killed (the
// writers flush once a second), where its recording and its running tracks
// stop, not at the recovery, which may come hours later. Never before the
// recording started nor after now; now if no file is there.
func lastWrite(rec *Recording, now time.Time) time.Time {
	var last time.Time
	note := func(rel string) {
		if fi, err := os.Stat(filepath.Join(rec.Dir, filepath.FromSlash(rel))); err == nil && fi.ModTime().After(last) {
			last = fi.ModTime()
		}
	}
	note(composition.MixFile)
	for _, st := range rec.Streams {
		for _, tr := range st.Tracks {
			note(tr.File)
		}
	}
	switch {
	case last.IsZero() || last.After(now):
		return now
	case last.Before(rec.Started):
		return rec.Started
	}
	return last
}

// completeMix completes the mix a killed recorder left from the repaired
// track files, mixed as `recorder mix` mixes them (composition.
// MixManifestToTracksEnd): the live mixer writes a part only once every
// input has it or the latency budget has passed, so at a kill its file lags
// the tracks by up to the budget (5 s), and the tracks are the truth. What
// the live mixer wrote stays as it is (its parts may be in storage already:
// uploads.chunkInterval), and the offline mix from where it ends is
// appended. The pauses and blackouts come from the stored recording (each
// is stored when it begins and when it ends; one the kill left open lasts
// to the end); each track is placed at its stored time zero (where the live
// mix placed its first sample, stored once settled, a second after its first
// packet: storeTimeZero; for a track killed within that second, the instant
// it was subscribed); the mix ends where the latest track ends. The sender
// reports' mappings (a slipping clock's steps) and the moves of a track that
// ran at the kill are those stored while it ran (storeTimeZero: at its time
// zero, then when its sender's reports step, at most every timingEvery): a
// step in its last timingEvery is not there. On failure the repaired live
// mix stays.
func (s *Session) completeMix(ctx context.Context, mixPath string) {
	rec := s.Snapshot()
	tmp := mixPath + ".tracks"
	defer os.Remove(tmp)
	began := time.Now()
	mix, err := composition.MixManifestToTracksEnd(ctx, manifest(rec, EntrySummary{}, nil, nil), rec.Dir, tmp,
		rec.Mix.SampleRate, rec.Mix.Channels)
	var added int64
	if err == nil {
		added, err = extendWAV(mixPath, tmp)
	}
	if err != nil {
		s.log.Warn("cannot complete the mix from the track files: the live mix is kept as it is", "err", err)
		return
	}
	s.log.Info("mix completed from the track files", "tracksSeconds", mix.Duration,
		"addedSeconds", float64(added)/float64(rec.Mix.SampleRate), "took", time.Since(began))
}

// extendWAV appends to the WAV file at path the sample frames of the one at
// from (written in the same format) beyond path's, and fixes path's header;
// it returns how many frames it added.
func extendWAV(path, from string) (int64, error) {
	dst, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer dst.Close()
	src, err := os.Open(from)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	dh, dsize, err := readWAVHeader(dst)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	sh, ssize, err := readWAVHeader(src)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", from, err)
	}
	if dh.Format != sh.Format || dh.Channels != sh.Channels || dh.SampleRate != sh.SampleRate {
		return 0, fmt.Errorf("recorder: %s is %v %d Hz × %d, %s %v %d Hz × %d", path, dh.Format, dh.SampleRate, dh.Channels,
			from, sh.Format, sh.SampleRate, sh.Channels)
	}
	have := dsize - dh.DataOffset // whole frames: Repair cut a partial one
	tail := ssize - sh.DataOffset - have
	tail -= tail % int64(sh.BlockAlign)
	if tail <= 0 {
		return 0, nil
	}
	if _, err := src.Seek(sh.DataOffset+have, io.SeekStart); err != nil {
		return 0, err
	}
	if _, err := dst.Seek(dsize, io.SeekStart); err != nil {
		return 0, err
	}
	if _, err := io.CopyN(dst, src, tail); err != nil {
		return 0, err
	}
	if err := dst.Close(); err != nil {
		return 0, err
	}
	return tail / int64(sh.BlockAlign), wavwriter.Repair(path)
}

// readWAVHeader returns the header and the size of an open WAV file.
func readWAVHeader(f *os.File) (wavwriter.Header, int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return wavwriter.Header{}, 0, err
	}
	b := make([]byte, min(fi.Size(), 4096))
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return wavwriter.Header{}, 0, err
	}
	h, err := wavwriter.ParseHeader(b)
	return h, fi.Size(), err
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
