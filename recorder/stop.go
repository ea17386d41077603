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
)

// compose builds the outputs of a stopped recording and uploads them: every
// track file, mix.wav, then manifest.json (which lists the others' sizes and
// checksums), each verified after upload. When every upload succeeded the
// local copies are deleted. It records every object in the recording. final
// is the state the recording ends in, written to the manifest.
func (m *Manager) compose(ctx context.Context, s *Session, final State) error {
	rec := s.Snapshot()
	var errs []error // a profile that cannot be opened now fails per upload, and is retried
	var err error
	meta := objectMetadata(rec)
	upload := func(rel string) *ObjectFile {
		o, err := m.uploadOutput(ctx, rec, rel, meta) // through the persisted queue
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
			c.State = CompositionPending // the composite video is queued below
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
	addLifecycle(m, rec) // pauses, blackouts, chat, cobrowse
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

// Stop stops a recording and returns it in its final state, once its files are
// written and uploaded. Stopping a stopped recording returns it as it is.
// If ctx ends first, Stop returns the recording as it is then; the recording
// still finishes.
func (m *Manager) Stop(ctx context.Context, organizationID, conversationID, recorderID, instanceID string) (*Recording, error) {
	if r, ok, err := m.forward(ctx, &Command{Op: OpStop, OrganizationID: organizationID, ConversationID: conversationID,
		RecorderID: recorderID, InstanceID: instanceID}); ok {
		return r, err
	}
	r, err := m.Get(ctx, organizationID, conversationID, recorderID, instanceID)
	if err != nil {
		return nil, err
	}
	s := m.session(instanceID)
	if s == nil {
		return r, nil // final already (or pending recovery, which finishes by itself)
	}
	s.requestStop(stopReason{})
	select {
	case <-s.done:
	case <-ctx.Done():
	}
	return s.Snapshot(), nil
}

// stopReason says why a session stops.
type stopReason struct {
	conferenceEnded bool
	maxDuration     bool
	shutdown        bool
	err             error
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

// forget removes s from the active recordings.
func (m *Manager) forget(s *Session) {
	s.mu.Lock()
	id := s.rec.InstanceID // s.rec is replaced under s.mu by every commit
	s.mu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.active[id] == s {
		delete(m.active, id)
	}
}

// addLifecycle adds pauses, blackouts, chat and cobrowse files to a manifest.
func addLifecycle(man *composition.Manifest, rec *Recording) {
	man.PauseBehavior = rec.PauseBehavior
	rel := func(t time.Time) float64 {
		if t.IsZero() {
			t = rec.Stopped
		}
		return t.Sub(rec.Started).Seconds()
	}
	for _, p := range rec.Pauses {
		a, b := p.MixStart.Seconds(), p.MixEnd.Seconds()
		end := p.End
		if end.IsZero() {
			end = rec.Stopped
		}
		man.Pauses = append(man.Pauses, composition.Interval{Start: rel(p.Start), End: rel(p.End),
			MixStart: &a, MixEnd: &b, StartTime: p.Start, EndTime: end})
	}
	for _, b := range rec.Blackouts {
		end := b.End
		if end.IsZero() {
			end = rec.Stopped
		}
		man.Blackouts = append(man.Blackouts, composition.Interval{Start: rel(b.Start), End: rel(b.End),
			UserID: b.UserID, StartTime: b.Start, EndTime: end})
	}
	if len(rec.Chat) > 0 {
		man.Chat = &composition.Attachment{File: ChatFile, Entries: len(rec.Chat)}
	}
	for _, id := range cobrowseSessions(rec) {
		n := 0
		for _, e := range rec.Cobrowse {
			if e.SessionID == id {
				n++
			}
		}
		man.Cobrowse = append(man.Cobrowse, composition.Attachment{File: CobrowseFile(id), SessionID: id, Entries: n})
	}
}
