package recorder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rtcrec/recorder/media/format"
	"github.com/rtcrec/recorder/recorder/events"
	"github.com/rtcrec/recorder/recorder/upload"
	"github.com/rtcrec/recorder/storage"
)

// Uploads. Every output file of a recording (tracks, chat and cobrowse
// files, mix.wav, manifest.json, parts while recording, chat and cobrowse
// added after the end) goes through the persisted queue of recorder/upload,
// which lives in the recorder's own database; this package reads that queue
// only through its methods:
//
//   - compose enqueues each file (job id "{instanceId}/{relative path}") and
//     waits for its first outcome: Uploaded, or Failing (a permanent error at
//     once, or Options.ReportAfter retryable failures in a row). A Failing
//     upload is shown on the object's error and makes the recording FAILED
//     with upload_failed, but the queue keeps retrying it and keeps the
//     local file.
//   - A later outcome (the storage came back, the profile was fixed, the
//     next process resumed the queue) updates the stored recording: the
//     object's location, size and checksum replace its error, an
//     upload.completed or upload.failed event is published, and once every
//     job of the recording is uploaded (and every object of the recording
//     shows it: applyLateResult) an upload_failed recording becomes STOPPED
//     and its local directory is removed.
//   - Jobs failing permanently are retried every UploadConfig.PermanentRetry,
//     at every start (a restart is how a fixed configuration is loaded) and
//     after every successful storage verify of their application.

// uploads is the Manager's side of the upload queue.
type uploads struct {
	q       *upload.Queue
	closed  chan struct{} // closed by closeUploads: waiters give up
	closeMu sync.Once

	mu      sync.Mutex
	waiters map[string]chan upload.Result // by job id, while compose waits for it

	lateMu sync.Mutex // serializes updates of stored recordings by late results
}

// startUploads opens the persisted upload queue (resuming what an earlier
// process left) and makes every job failing permanently due now: the
// configuration may have been fixed before this start.
func (m *Manager) startUploads(ctx context.Context) error {
	m.up.closed = make(chan struct{})
	m.up.waiters = map[string]chan upload.Result{}
	uc := m.cfg.Uploads
	opts := upload.Options{
		Open:       func(app string) (*storage.Bucket, error) { return m.Bucket(context.Background(), app) },
		MinBackoff: uc.MinBackoff, MaxBackoff: uc.MaxBackoff, PermanentRetry: uc.PermanentRetry,
		Deadline: uc.Deadline, Workers: uc.Workers, OnResult: m.uploadResult, Logger: m.log,
	}
	for _, a := range m.cfg.Applications {
		if a == nil || a.BackupStorage == nil {
			continue
		}
		opts.Backup = m.backupBucket
		if a.BackupAfter > 0 && (opts.BackupAfter == 0 || a.BackupAfter < opts.BackupAfter) {
			opts.BackupAfter = a.BackupAfter
		}
	}
	q, err := upload.New(ctx, m.store.DB(), opts)
	if err != nil {
		return err
	}
	m.up.q = q
	return q.RetryAll(ctx)
}

// backupBucket opens the backup profile of an application (applications.<id>.backupStorage).
func (m *Manager) backupBucket(app string) (*storage.Bucket, error) {
	a := m.cfg.Applications[app]
	if a == nil || a.BackupStorage == nil {
		return nil, &storage.Error{Code: storage.InvalidArgument, Op: "open", Err: fmt.Errorf("application %s has no backup storage", app)}
	}
	key := app + "\x00backup"
	m.bucketMu.Lock()
	defer m.bucketMu.Unlock()
	if b := m.buckets[key]; b != nil {
		return b, nil
	}
	if m.openBucket == nil {
		return nil, errors.New("recorder: no storage driver configured")
	}
	b, err := m.openBucket(context.Background(), app, a.BackupStorage)
	if err != nil {
		return nil, err
	}
	m.buckets[key] = b
	return b, nil
}

// RetryUploads makes every pending upload of applicationID due now (after
// its storage profile was fixed or verified).
func (m *Manager) RetryUploads(ctx context.Context, applicationID string) error {
	return m.up.q.Retry(ctx, applicationID)
}

// closeUploads stops the upload queue. It first waits, until ctx ends, for
// the uploads that are still expected to succeed: pending jobs not reported
// as failing (a job failing on bad credentials or a long outage would hold a
// shutdown for nothing). What is left is resumed by the next start.
func (m *Manager) closeUploads(ctx context.Context) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		n, err := m.up.q.Expected(ctx)
		if err != nil || n == 0 {
			break
		}
		select {
		case <-tick.C:
			continue
		case <-ctx.Done():
		}
		break
	}
	m.up.closeMu.Do(func() { close(m.up.closed) })
	now, cancel := context.WithCancel(context.Background())
	cancel()
	return m.up.q.Close(now)
}

// stopUploads stops the upload queue at once: uploads in flight are
// cancelled and stay pending for the next start.
func (m *Manager) stopUploads() {
	now, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.closeUploads(now); err != nil {
		m.log.Warn("uploads left for the next start", "err", err)
	}
}

// uploadOutput uploads one output file of rec (rel is its path relative to
// rec.Dir) through the queue and waits for its first outcome (see upload).
func (m *Manager) uploadOutput(ctx context.Context, rec *Recording, rel string, meta map[string]string) (*ObjectFile, error) {
	return m.enqueueOutput(ctx, rec, rel, meta)()
}

// enqueueOutput queues the upload that uploadOutput describes and returns
// the function that waits for its first outcome; the caller must call it.
func (m *Manager) enqueueOutput(ctx context.Context, rec *Recording, rel string, meta map[string]string) (wait func() (*ObjectFile, error)) {
	return m.enqueueUpload(ctx, rec, rel, filepath.Join(rec.Dir, filepath.FromSlash(rel)), meta, false)
}

// upload uploads the file at local as the object rel of rec through the
// queue, the one way every object of a recording reaches storage, and waits
// for its first outcome. replace uploads new content for a job that may be
// known already (a transcript changed after its recording ended). The
// returned object has its location, size and checksum, and on failure its
// error too (then err is set): the size and checksum are then those of the
// local file waiting for its upload, so that the manifest lists them all
// the same. The queue keeps retrying a failed upload; its later outcome
// reaches the recording through applyLateResult.
func (m *Manager) upload(ctx context.Context, rec *Recording, rel, local string, meta map[string]string, replace bool) (*ObjectFile, error) {
	return m.enqueueUpload(ctx, rec, rel, local, meta, replace)()
}

// enqueueUpload queues the upload that upload describes and returns the
// function that waits for its first outcome, as upload does; the caller
// must call it.
func (m *Manager) enqueueUpload(ctx context.Context, rec *Recording, rel, local string, meta map[string]string, replace bool) (wait func() (*ObjectFile, error)) {
	key := rec.Storage.Prefix + rel
	o := &ObjectFile{Key: key, Location: joinLocation(rec.Storage.Location, key)}
	job := upload.Job{ID: rec.InstanceID + "/" + rel, RecordingID: rec.InstanceID, ApplicationID: rec.ApplicationID,
		LocalPath: local, Key: key, ContentType: format.ContentType(rel), Metadata: meta, DeleteLocalAfter: replace}
	fail := func(err error) (*ObjectFile, error) {
		o.Error = failureInfo(m.log.With("instanceId", rec.InstanceID, "key", key), ErrorCode(storage.Code(err).String()), err, m.now())
		o.Size, o.SHA256 = fileDigest(job.LocalPath)
		return o, err
	}
	outcome := func(r upload.Result) (*ObjectFile, error) {
		if r.Status != upload.Uploaded {
			o.Size, o.SHA256 = fileDigest(job.LocalPath) // the local file waiting for its upload
		}
		return resultObject(o, r, m.now())
	}
	ch := make(chan upload.Result, 4)
	m.up.mu.Lock()
	m.up.waiters[job.ID] = ch
	m.up.mu.Unlock()
	forget := func() {
		m.up.mu.Lock()
		delete(m.up.waiters, job.ID)
		m.up.mu.Unlock()
	}
	enqueue := m.up.q.Enqueue
	if replace {
		enqueue = m.up.q.Replace
	}
	if err := enqueue(ctx, job); err != nil {
		return func() (*ObjectFile, error) {
			forget()
			return fail(err)
		}
	}
	return func() (*ObjectFile, error) {
		defer forget()
		// A job known from an earlier run (recovery) may have its outcome already.
		if jobs, err := m.up.q.Jobs(ctx, rec.InstanceID); err == nil {
			for _, r := range jobs {
				if r.Job.ID == job.ID && r.Status != upload.Pending {
					return outcome(r)
				}
			}
		}
		select {
		case r := <-ch:
			return outcome(r)
		case <-m.up.closed:
			return fail(&storage.Error{Code: storage.Unavailable, Op: "upload", Key: key,
				Err: errors.New("the recorder is shutting down; the upload resumes at the next start")})
		case <-ctx.Done():
			return fail(ctx.Err())
		}
	}
}

// removeLocalCopies removes the local directory of the final recording rec,
// but for the files of its uploads still to be done (queued, failing, or
// in flight): those the queue still needs (it deletes a late file once
// uploaded). It holds the directory's lock, so a late chat or cobrowse file
// (uploadLate) is either queued before it looks, and kept, or written after
// the removal, into the directory made again.
func (m *Manager) removeLocalCopies(ctx context.Context, rec *Recording) error {
	defer m.dirLocks.lock(rec.InstanceID)()
	jobs, err := m.up.q.Jobs(ctx, rec.InstanceID)
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, j := range jobs {
		if j.Status != upload.Uploaded && j.Status != upload.Abandoned {
			keep[filepath.Clean(j.Job.LocalPath)] = true
		}
	}
	if len(keep) == 0 {
		return os.RemoveAll(rec.Dir)
	}
	var dirs []string
	err = filepath.WalkDir(rec.Dir, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir():
			dirs = append(dirs, path)
		case !keep[path]:
			return os.Remove(path)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		os.Remove(dirs[i]) // the emptied ones
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// resultObject fills o from a queue Result.
func resultObject(o *ObjectFile, r upload.Result, now time.Time) (*ObjectFile, error) {
	if r.Status == upload.Uploaded {
		o.Location, o.Size, o.SHA256, o.Uploaded, o.Error = r.Location, r.Size, r.SHA256, r.Uploaded.UTC(), nil
		return o, nil
	}
	err := r.Err
	if err == nil {
		err = fmt.Errorf("upload %s: %s", r.Status, r.Code)
	}
	// The queue logged the attempt's error; callers see a stable message.
	o.Error = &ErrorInfo{Code: ErrorCode(r.Code.String()), Message: failureMessage(ErrorCode(r.Code.String())), Occurred: now}
	return o, err
}

// uploadResult receives every Result of the queue: to the compose waiting
// for the job, or else applied to the stored recording.
func (m *Manager) uploadResult(r upload.Result) {
	if h := m.hooks.Upload; h != nil {
		h(m.Profile(r.Job.ApplicationID).Provider, uploadOutcome(r))
	}
	if isPart(r.Job) {
		if r.Status == upload.Uploaded {
			go m.deleteLatePart(r.Job)
		}
		return // parts are not outputs of the recording
	}
	if r.Status == upload.Uploaded && m.cfg.Uploads.ChunkInterval > 0 {
		go m.deleteParts(r.Job)
	}
	m.up.mu.Lock()
	ch := m.up.waiters[r.Job.ID]
	m.up.mu.Unlock()
	if ch != nil {
		select {
		case ch <- r:
			return
		default:
		}
	}
	if err := m.applyLateResult(context.Background(), r); err != nil {
		m.log.Error("cannot record an upload result", "job", r.Job.ID, "status", r.Status, "err", err)
	}
}

// applyLateResult records an outcome that came after compose stopped
// waiting: on the session while it runs, else on the stored recording.
func (m *Manager) applyLateResult(ctx context.Context, r upload.Result) error {
	return m.settle(ctx, r.Job.RecordingID, &r)
}

// settle records the late outcome r (nil: none) of a job of the recording
// id, and once every job of the final recording is uploaded and every
// object shows it, ends what the failed uploads left: an upload_failed
// recording becomes STOPPED (its composition COMPLETED) and its local
// directory is removed. It runs for every late result, and after a late
// chat or cobrowse upload (uploadTranscript), whose result its waiter takes.
func (m *Manager) settle(ctx context.Context, id string, r *upload.Result) error {
	m.up.lateMu.Lock()
	defer m.up.lateMu.Unlock()
	// The directory's lock, from before the jobs are read until the
	// directory is removed: a late chat or cobrowse file written meanwhile
	// (uploadLate) is queued first, and then not every job is uploaded. It
	// is held by a writer only while it writes and queues, never while an
	// upload runs, so the queue's worker waits for no upload here.
	defer m.dirLocks.lock(id)()
	var rel string
	if r != nil {
		rel = strings.TrimPrefix(r.Job.ID, r.Job.RecordingID+"/")
	}
	// done holds the verified outcome of every job of the recording once all
	// of them are uploaded (nil before): the results of the other jobs may
	// still be on their way to this function, and the recording must not be
	// STOPPED while one of its objects still shows an error.
	var done map[string]upload.Result
	if r == nil || r.Status == upload.Uploaded {
		jobs, err := m.up.q.Jobs(ctx, id)
		if err != nil {
			return err
		}
		done = map[string]upload.Result{}
		for _, j := range jobs {
			if isPart(j.Job) {
				continue
			}
			if j.Status != upload.Uploaded {
				done = nil
				break
			}
			done[strings.TrimPrefix(j.Job.ID, j.Job.RecordingID+"/")] = j
		}
	}
	// update returns the object of r and whether rec changed.
	update := func(rec *Recording) (*ObjectFile, bool) {
		var out *ObjectFile
		changed := false
		rec.objects(func(file string, o **ObjectFile) {
			if *o == nil {
				return
			}
			switch j, ok := done[file]; {
			case r != nil && file == rel:
				c := (*o).clone()
				resultObject(c, *r, m.now())
				*o, out, changed = c, c, true
			case ok && ((*o).Error != nil || (*o).Uploaded.IsZero()):
				c := (*o).clone() // verified; its own result comes later
				resultObject(c, j, m.now())
				*o, changed = c, true
			}
		})
		if r != nil && out == nil {
			return nil, false // not (yet) recorded with the recording: compose records it
		}
		if done != nil && rec.State.Final() && !rec.UploadsPending() {
			if rec.State == StateFailed && rec.Error != nil && rec.Error.Code == CodeUploadFailed {
				rec.State, rec.Error, changed = StateStopped, nil, true
			}
			if c := rec.Composition; c != nil && c.State == CompositionFailed && (c.Error == nil || c.Error.Code == CodeUploadFailed) {
				c.State, c.Error, changed = CompositionCompleted, nil, true // the uploads that failed are done (a composite that failed otherwise stays FAILED)
			}
			if err := os.RemoveAll(rec.Dir); err == nil {
				now := m.now()
				for _, st := range rec.Streams {
					for _, tr := range st.Tracks {
						if tr.Local.Deleted.IsZero() {
							tr.Local.Deleted, changed = now, true
						}
					}
				}
			}
		}
		return out, changed
	}
	if s := m.session(id); s != nil {
		if r == nil {
			return nil // its stop settles it
		}
		var obj *ObjectFile
		err := s.commit(ctx, func(rec *Recording) { obj, _ = update(rec) })
		if err == nil && obj != nil {
			m.publishUpload(s.Snapshot(), obj)
		}
		return err
	}
	var obj *ObjectFile
	errUnchanged := errors.New("unchanged")
	old, rec, err := m.modifyStored(ctx, "", id, func(rec *Recording) error {
		var changed bool
		if obj, changed = update(rec); !changed {
			return errUnchanged
		}
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return nil
	}
	if err != nil {
		return err
	}
	m.changed(old, rec)
	if obj != nil {
		m.publishUpload(rec, obj)
	}
	return nil
}

// publishUpload publishes upload.completed or upload.failed for o.
func (m *Manager) publishUpload(rec *Recording, o *ObjectFile) {
	d := recordingEventData(rec)
	d.Object = o
	typ := events.UploadCompleted
	if o.Error != nil {
		typ = events.UploadFailed
	}
	m.publish(context.Background(), rec, string(typ), d)
}

// fileDigest returns the size and hex SHA-256 of a local file (0, "" when unreadable).
func fileDigest(path string) (int64, string) {
	f, err := os.Open(path)
	if err != nil {
		return 0, ""
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, ""
	}
	return n, hex.EncodeToString(h.Sum(nil))
}

func joinLocation(location, key string) string {
	return strings.TrimSuffix(location, "/") + "/" + key
}
