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
	"github.com/rtcrec/recorder/config"
)

// Stopping a recording, in the order Session.finish runs it:
//
//  1. stop taking media (stopMedia): the recording ends at this instant;
//     wait up to 300 ms for the audio sent before it that is still on its
//     way (drain, media.go); detach from the conference, close every track
//     file, then the mix; the open streams, pauses and blackouts end at the
//     stop;
//  2. judge the final state (finalState);
//  3. compose (composeOutputs, a step that takes a snapshot and returns what
//     it made): upload every track file, chat and cobrowse, mix.wav (queued
//     at once, ahead of the parts of every recording), then manifest.json,
//     each through the persisted queue and verified;
//  4. record the objects and the composition in the recording, remove the
//     local copies once every upload is verified, queue the composite video;
//  5. persist the final state; a recording without media is discarded.
//     Its chat and cobrowse files are uploaded before (attachFinal): once
//     the state is final, their uploads are in the persisted queue, which
//     resumes them after a crash.
//
// A failed upload fails the recording but stays queued: a later success
// turns it STOPPED once every object is verified (applyLateResult,
// uploads.go). Recovery at start-up (recover.go) runs steps 3–5 on the
// repaired files.

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

// finish stops the recording, top to bottom: stop taking media (detach
// from the conference, close every track file and the mix), judge the final
// state, compose and upload (compose), persist the final state, and hand
// the recording back: a recording without media is discarded, and the
// Manager forgets the session.
func (s *Session) finish(why stopReason) {
	ctx := context.Background()
	id := s.Snapshot().InstanceID
	defer close(s.done)
	defer s.m.forget(id, s)

	stopped, mixErr := s.stopMedia(ctx)
	if s.isFenced() {
		// The new owner finishes the recording; its objects are not ours
		// to write.
		s.log.Warn("recording finished here without uploads: another instance owns it now")
		return
	}
	rec := s.Snapshot()
	final, failure := s.finalState(rec, why, mixErr, stopped)
	var attached map[string]*ObjectFile
	if rec.hadMedia() {
		if err := s.compose(ctx, final); err != nil && final == StateStopped {
			final, failure = StateFailed, failureInfo(s.log, CodeUploadFailed, err, s.m.now())
		}
	} else {
		attached = s.m.attachFinal(ctx, rec)
	}
	if err := s.commit(ctx, func(r *Recording) {
		r.State, r.Error = final, failure
		recordUploads(r, attached)
	}); err != nil {
		s.log.Error("cannot persist final state", "state", final, "err", err)
	}
	if h := s.m.testPoints.finalCommitted; h != nil {
		h(rec.InstanceID)
	}
	if !rec.hadMedia() {
		s.m.discard(rec)
	}
	s.log.Info("recording finished", "state", final, "reason", reasonText(why), "duration", stopped.Sub(rec.Started).Round(time.Millisecond))
}

// stopMedia stops taking media: it waits for the audio sent before the stop
// that is still on its way (drain), detaches the recording from the
// conference, closes every track file and then the mix, and persists when
// the recording and its streams stopped (closing open pause and blackout
// intervals there). It returns that instant and the mix's write error.
func (s *Session) stopMedia(ctx context.Context) (stopped time.Time, mixErr error) {
	stopped = s.m.now() // the mix lasts until here (and holds all that arrived)
	s.mu.Lock()
	s.stopping, s.stopAt = true, stopped
	s.mu.Unlock()
	s.drain(stopped) // audio sent before the stop, still on its way (media.go)

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
	s.mu.Lock()
	med := s.media
	s.mu.Unlock()
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
	return stopped, mixErr
}

// finalState judges how the stopped recording rec ends: FAILED when its mix
// could not be written, ABORTED when the conference ended with an error or
// nothing was recorded, STOPPED otherwise (a failed upload turns it into
// FAILED later).
func (s *Session) finalState(rec *Recording, why stopReason, mixErr error, stopped time.Time) (State, *ErrorInfo) {
	switch {
	case mixErr != nil:
		return StateFailed, failureInfo(s.log, writeErrorCode(mixErr), mixErr, stopped)
	case why.conferenceEnded && why.err != nil:
		return StateAborted, conferenceEndedInfo(s.log, why.err, stopped)
	case !rec.hadMedia():
		return StateAborted, nil
	}
	return StateStopped, nil
}

// compose composes the recording (composeOutputs) and records the outputs:
// the files a composite video reads are kept aside (hard links), the local
// copies are removed once every upload is verified, the objects and the
// composition are committed, and a composite video is handed to its queue.
// final is the state the recording will end in. It returns the uploads' (or
// the commit's) error.
func (s *Session) compose(ctx context.Context, final State) error {
	rec := s.Snapshot()
	t, terr := s.m.readTranscript(ctx, rec) // every chat and cobrowse entry added before the stop
	if terr != nil {
		s.log.Error("cannot read the chat and cobrowse entries", "err", terr)
		t = &transcript{}
	}
	out := composeOutputs(ctx, s.m, rec, t, final)
	out.err = errors.Join(out.err, terr)
	if rec.Composite != nil && s.m.cfg.Composite.Fleet != config.CompositeFleetSend {
		s.m.keepForComposite(rec) // composite.go: hard links survive the removal below
	}
	deleted := time.Time{}
	if out.err == nil {
		if err := os.RemoveAll(rec.Dir); err != nil {
			s.log.Warn("cannot delete local copies", "dir", rec.Dir, "err", err)
		} else {
			deleted = s.m.now()
		}
	}
	if err := s.commit(ctx, func(r *Recording) { out.record(r, deleted) }); err != nil {
		return err
	}
	if c := s.Snapshot().Composition; c != nil && c.State == CompositionPending {
		if err := s.m.enqueueComposite(ctx, rec, s.done); err != nil {
			now := s.m.now()
			if cerr := s.commit(ctx, func(r *Recording) {
				r.Composition.State = CompositionFailed
				r.Composition.Error = failureInfo(s.log, CodeCompositeNotQueued, err, now)
			}); cerr != nil {
				s.log.Error("cannot record the composite's failure", "err", cerr)
			}
		}
	}
	if out.err != nil {
		return fmt.Errorf("recorder: upload of %s: %w", rec.InstanceID, out.err)
	}
	return nil
}

// outputs are what composing a stopped recording made: its objects by path
// in the recording (every track file, chat and cobrowse, mix.wav,
// manifest.json), the mix, and the uploads that failed.
type outputs struct {
	objects map[string]*ObjectFile
	mix     *composition.Mix // nil without mix.wav
	err     error            // nil when every object was verified; the queue keeps retrying the others
}

// uploader queues the upload of one output file of a recording on the
// persisted queue and returns the function that waits for its first outcome
// (Manager.enqueueOutput, uploads.go).
type uploader interface {
	enqueueOutput(ctx context.Context, rec *Recording, rel string, meta map[string]string) (wait func() (*ObjectFile, error))
}

// composeOutputs builds the outputs of rec, a snapshot of a stopped
// recording with the chat and cobrowse entries t, and uploads them: every
// track file, chat and cobrowse and mix.wav, queued at once (the queue
// uploads them ahead of every part: Job.Background), then manifest.json
// (which lists the others' sizes and checksums, and final as the
// recording's state), each verified after upload. It reads rec and writes
// only files in rec.Dir: what it made is returned as data.
func composeOutputs(ctx context.Context, up uploader, rec *Recording, t *transcript, final State) *outputs {
	out := &outputs{objects: map[string]*ObjectFile{}}
	var errs []error // a profile that cannot be opened now fails per upload, and is retried
	meta := objectMetadata(rec)
	waits := map[string]func() (*ObjectFile, error){}
	var order []string
	enqueue := func(rel string) {
		waits[rel] = up.enqueueOutput(ctx, rec, rel, meta)
		order = append(order, rel)
	}
	for _, st := range rec.Streams {
		for _, tr := range st.Tracks {
			if tr.Local.Error == nil || tr.Local.Error.Code != CodeNoMedia && fileExists(filepath.Join(rec.Dir, filepath.FromSlash(tr.File))) {
				enqueue(tr.File)
			}
		}
	}
	if rels, err := writeAttachments(rec, t); err != nil { // chat and cobrowse (transcript.go)
		errs = append(errs, err)
	} else {
		for _, rel := range rels {
			enqueue(rel)
		}
	}
	if mixPath := filepath.Join(rec.Dir, composition.MixFile); fileExists(mixPath) {
		if mix, err := composition.ReadMix(mixPath); err != nil {
			errs = append(errs, err)
		} else {
			out.mix = mix
			enqueue(composition.MixFile)
		}
	}
	wait := func(rel string) *ObjectFile {
		o, err := waits[rel]()
		if err != nil {
			errs = append(errs, err)
		}
		return o
	}
	for _, rel := range order {
		out.objects[rel] = wait(rel)
	}
	if out.mix != nil {
		out.mix.SHA256 = out.objects[composition.MixFile].SHA256
	}
	man := manifest(rec, t.summary(), out.mix, out.objects)
	man.State = string(final)
	if err := composition.WriteManifest(filepath.Join(rec.Dir, composition.ManifestFile), man); err != nil {
		errs = append(errs, err)
	} else {
		enqueue(composition.ManifestFile)
		out.objects[composition.ManifestFile] = wait(composition.ManifestFile)
	}
	out.err = errors.Join(errs...)
	return out
}

// record writes the outputs into r: each track's object (and when its local
// copy was deleted, if it was), the attachments' objects, and the
// composition: COMPLETED, FAILED when an upload failed, or PENDING when a
// composite video is to be made.
func (out *outputs) record(r *Recording, deleted time.Time) {
	recordUploads(r, out.objects)
	for _, st := range r.Streams {
		for _, tr := range st.Tracks {
			if o := out.objects[tr.File]; o != nil {
				tr.Object = o
				tr.Local.Deleted = deleted
			}
		}
	}
	c := &Composition{State: CompositionCompleted, Manifest: out.objects[composition.ManifestFile]}
	if out.err != nil {
		c.State = CompositionFailed
	}
	if r.Composite != nil && c.Manifest != nil {
		c.State = CompositionPending // the composite video is queued once recorded
	}
	if out.mix != nil {
		c.Outputs = []Output{{Type: "AUDIO", Format: "wav", SampleRate: out.mix.SampleRate, Channels: out.mix.Channels,
			Duration: out.mix.Duration, File: composition.MixFile, Object: out.objects[composition.MixFile]}}
		r.MixFrames = out.mix.Frames
	}
	r.Composition = c
}

// manifest builds manifest.json of rec.
func manifest(rec *Recording, entries EntrySummary, mix *composition.Mix, objects map[string]*ObjectFile) *composition.Manifest {
	m := &composition.Manifest{
		OrganizationID: rec.OrganizationID, ApplicationID: rec.ApplicationID, ConversationID: rec.ConversationID,
		ConferenceID: rec.ConferenceID, RecorderID: rec.RecorderID, InstanceID: rec.InstanceID,
		State: string(rec.State), Started: rec.Started, Stopped: rec.Stopped, Metadata: rec.Metadata, Mix: mix,
		Tracks: []composition.Track{},
	}
	addIntervals(m, rec, entries) // pauses, blackouts, chat, cobrowse
	m.Segments = manifestSegments(rec)
	if rec.Continues != nil {
		m.Continues = rec.Continues.InstanceID
	}
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

// addIntervals adds pauses, blackouts, chat and cobrowse files to a manifest.
func addIntervals(man *composition.Manifest, rec *Recording, entries EntrySummary) {
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
	if entries.ChatEntries > 0 {
		man.Chat = &composition.Attachment{File: ChatFile, Entries: entries.ChatEntries}
	}
	for _, c := range entries.Cobrowse {
		man.Cobrowse = append(man.Cobrowse, composition.Attachment{File: CobrowseFile(c.ID), SessionID: c.ID, Entries: c.Events})
	}
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

// forget removes s, the session of recording id, from the active
// recordings.
func (m *Manager) forget(id string, s *Session) {
	m.mu.Lock()
	if m.active[id] == s {
		delete(m.active, id)
	}
	m.mu.Unlock()
	m.unpin(s.Snapshot())
}

// unpin deletes the pin of a WHIP conference in a fleet once its last
// recording has ended (the store checks that none is unfinished, and that
// the pin is this instance's), so that the conference id, reused later, is
// placed afresh.
func (m *Manager) unpin(rec *Recording) {
	if m.remote == nil || m.Application(rec.ApplicationID).Conference.Kind != "whip" {
		return
	}
	// Publishers still connected here keep it: a later recording of the
	// conference must find them.
	ad := m.adapters[AdapterKey(rec.ApplicationID)]
	if ad == nil {
		ad = m.adapters["whip"]
	}
	if a, ok := ad.(interface{ ConferenceSessions(org, conf string) int }); ok && a.ConferenceSessions(rec.OrganizationID, rec.ConferenceID) > 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.remote.UnpinConference(ctx, rec.OrganizationID, rec.ConferenceID,
		[]string{string(StateInitialised), string(StateActive), string(StatePendingRecovery)}); err != nil {
		m.log.Warn("cannot unpin the conference", "conferenceId", rec.ConferenceID, "err", err)
	}
}
