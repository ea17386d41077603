package recorder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/media/wavwriter"
)

// compose builds the outputs of a stopped recording and uploads them: every
// track file, mix.wav, then manifest.json (which lists the others' sizes and
// checksums), each verified after upload. When every upload succeeded the
// local copies are deleted. It records every object in the recording. final
// is the state the recording ends in, written to the manifest.
func (m *Manager) compose(ctx context.Context, s *Session, final State) error {
	rec := s.Snapshot()
	var errs []error // a profile that cannot be opened now fails per upload, and is retried (uploads.go)
	var err error
	meta := objectMetadata(rec)
	upload := func(rel string) *ObjectFile {
		o, err := m.uploadOutput(ctx, rec, rel, meta) // through the persisted queue (uploads.go)
		if err != nil {
			errs = append(errs, err)
		}
		return o
	}

	objects := map[string]*ObjectFile{}
	for _, st := range rec.Streams {
		for _, tr := range st.Tracks {
			if tr.Local.Error == nil || tr.Local.Error.Code != CodeNoMedia && fileExists(filepath.Join(rec.Dir, filepath.FromSlash(tr.File))) {
				objects[tr.File] = upload(tr.File)
			}
		}
	}
	if rels, err := writeAttachments(rec); err != nil { // chat and cobrowse (transcript.go)
		errs = append(errs, err)
	} else {
		for _, rel := range rels {
			objects[rel] = upload(rel)
		}
	}
	mixPath := filepath.Join(rec.Dir, composition.MixFile)
	var mix *composition.Mix
	if fileExists(mixPath) {
		if mix, err = composition.ReadMix(mixPath); err != nil {
			errs = append(errs, err)
		} else {
			objects[composition.MixFile] = upload(composition.MixFile)
			mix.SHA256 = objects[composition.MixFile].SHA256
		}
	}
	rec.State = final
	man := manifest(rec, mix, objects)
	if err := composition.WriteManifest(filepath.Join(rec.Dir, composition.ManifestFile), man); err != nil {
		errs = append(errs, err)
	} else {
		objects[composition.ManifestFile] = upload(composition.ManifestFile)
	}

	uploadErr := errors.Join(errs...)
	if rec.Composite != nil && m.cfg.Composite.Fleet != CompositeFleetSend {
		m.keepForComposite(rec) // composite.go: hard links survive the removal below
	}
	deleted := time.Time{}
	if uploadErr == nil {
		if err := os.RemoveAll(rec.Dir); err != nil {
			s.log.Warn("cannot delete local copies", "dir", rec.Dir, "err", err)
		} else {
			deleted = m.now()
		}
	}
	state := CompositionCompleted
	if uploadErr != nil {
		state = CompositionFailed
	}
	if err := s.commit(ctx, func(r *Recording) {
		recordUploads(r, objects)
		for _, st := range r.Streams {
			for _, tr := range st.Tracks {
				if o := objects[tr.File]; o != nil {
					tr.Object = o
					tr.Local.Deleted = deleted
				}
			}
		}
		c := &Composition{State: state, Manifest: objects[composition.ManifestFile]}
		if r.Composite != nil && c.Manifest != nil {
			c.State = CompositionPending // the composite video is queued below (composite.go)
		}
		if mix != nil {
			c.Outputs = []Output{{Type: "AUDIO", Format: "wav", SampleRate: mix.SampleRate, Channels: mix.Channels,
				Duration: mix.Duration, File: composition.MixFile, Object: objects[composition.MixFile]}}
			r.MixFrames = mix.Frames
		}
		r.Composition = c
	}); err != nil {
		return err
	}
	if c := s.Snapshot().Composition; c != nil && c.State == CompositionPending {
		if err := m.enqueueComposite(ctx, rec); err != nil {
			now := m.now()
			if cerr := s.commit(ctx, func(r *Recording) {
				r.Composition.State = CompositionFailed
				r.Composition.Error = failureInfo(s.log, CodeCompositeNotQueued, err, now)
			}); cerr != nil {
				s.log.Error("cannot record the composite's failure", "err", cerr)
			}
		}
	}
	if uploadErr != nil {
		return fmt.Errorf("recorder: upload of %s: %w", rec.InstanceID, uploadErr)
	}
	return nil
}

// manifest builds manifest.json of rec.
func manifest(rec *Recording, mix *composition.Mix, objects map[string]*ObjectFile) *composition.Manifest {
	m := &composition.Manifest{
		OrganizationID: rec.OrganizationID, ApplicationID: rec.ApplicationID, ConversationID: rec.ConversationID,
		ConferenceID: rec.ConferenceID, RecorderID: rec.RecorderID, InstanceID: rec.InstanceID,
		State: string(rec.State), Started: rec.Started, Stopped: rec.Stopped, Metadata: rec.Metadata, Mix: mix,
		Tracks: []composition.Track{},
	}
	addLifecycle(m, rec) // pauses, blackouts, chat, cobrowse (lifecycle.go)
	if !rec.Recovered.IsZero() {
		t := rec.Recovered
		m.Recovered = &t
	}
	for _, st := range rec.Streams {
		for _, tr := range st.Tracks {
			mt := composition.Track{
				StreamID: st.ID, TrackID: tr.ID, UserID: st.UserID, StreamType: string(st.Type), Kind: string(tr.Kind),
				Codec: tr.Codec, File: tr.File, Offset: tr.Offset.Seconds(), Started: tr.Started, Stopped: tr.Stopped,
			}
			if !tr.Stopped.IsZero() {
				mt.Duration = tr.Stopped.Sub(tr.Started).Seconds()
			}
			if !tr.FirstPacket.IsZero() {
				at := tr.FirstPacket.Sub(rec.Started).Seconds()
				mt.MediaOffset = &at
			}
			mt.Timing = tr.Timing
			if o := objects[tr.File]; o != nil {
				mt.Size, mt.SHA256 = o.Size, o.SHA256
			}
			m.Tracks = append(m.Tracks, mt)
		}
	}
	return m
}

// MaxObjectMetadata bounds the metadata stored with an object, keys and
// values together: S3 refuses an object whose user metadata is over 2 KB.
const MaxObjectMetadata = 2048

// UserMetadataPrefix starts the object metadata keys of a recording's own
// metadata, so that they can never replace the recorder's keys.
const UserMetadataPrefix = "user-"

// objectMetadata is the metadata stored with every object of rec: the
// recorder's keys, then the recording's metadata under UserMetadataPrefix,
// in key order, as long as it fits MaxObjectMetadata and is printable ASCII
// (what every provider's headers carry). What does not fit is in the
// manifest only, and "user-metadata" is then "partial".
func objectMetadata(rec *Recording) map[string]string {
	md := map[string]string{
		"organizationid": rec.OrganizationID, "conversationid": rec.ConversationID,
		"recorderid": rec.RecorderID, "instanceid": rec.InstanceID, "applicationid": rec.ApplicationID,
	}
	used := 0
	for k, v := range md {
		used += len(k) + len(v)
	}
	const partial = UserMetadataPrefix + "metadata"
	room := MaxObjectMetadata - used - len(partial) - len("partial")
	keys := make([]string, 0, len(rec.Metadata))
	for k := range rec.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		key, v := UserMetadataPrefix+strings.ToLower(k), rec.Metadata[k]
		if _, taken := md[key]; taken || key == partial || !headerSafe(key, true) || !headerSafe(v, false) || len(key)+len(v) > room {
			md[partial] = "partial"
			continue
		}
		md[key] = v
		room -= len(key) + len(v)
	}
	return md
}

// headerSafe reports whether s can travel in an HTTP header as an object
// metadata key (letters, digits, '-', '_') or value (printable ASCII).
func headerSafe(s string, key bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case key && !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'):
			return false
		case c < 0x20 || c > 0x7e:
			return false
		}
	}
	return true
}

func joinLocation(location, key string) string {
	return strings.TrimSuffix(location, "/") + "/" + key
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

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
	defer close(s.done)
	defer s.m.forget(s)
	ctx := context.Background()
	rec := s.Snapshot()
	now := s.m.now()
	if err := wavwriter.Repair(filepath.Join(rec.Dir, composition.MixFile)); err != nil {
		s.log.Warn("cannot repair mix", "err", err)
	}
	for _, st := range rec.Streams {
		for _, tr := range st.Tracks {
			if err := repairTrack(filepath.Join(rec.Dir, filepath.FromSlash(tr.File))); err != nil { // durability.go
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
	} else if err := s.m.compose(ctx, s, StateStopped); err != nil {
		final, failure = StateFailed, failureInfo(s.log, CodeUploadFailed, err, s.m.now())
	}
	if err := s.commit(ctx, func(r *Recording) { r.State, r.Error = final, failure }); err != nil {
		s.log.Error("cannot persist recovered state", "err", err)
	}
	s.log.Info("recording recovered", "state", final)
}
