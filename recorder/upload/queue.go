package upload

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rtcrec/recorder/recorder/internal/retry"
	"github.com/rtcrec/recorder/storage"
)

// ErrClosed is returned by Enqueue after Close.
var ErrClosed = errors.New("upload: queue is closed")

// schema holds the queue. Times are Unix nanoseconds; codes are
// storage.ErrorCode names.
const schema = `
CREATE TABLE IF NOT EXISTS upload_jobs (
	seq            INTEGER PRIMARY KEY AUTOINCREMENT,
	id             TEXT NOT NULL UNIQUE,
	recording_id   TEXT NOT NULL,
	application_id TEXT NOT NULL,
	local_path     TEXT NOT NULL,
	key            TEXT NOT NULL,
	content_type   TEXT NOT NULL,
	metadata       TEXT NOT NULL,
	delete_local   INTEGER NOT NULL,
	state          TEXT NOT NULL DEFAULT 'pending',
	attempts       INTEGER NOT NULL DEFAULT 0,
	enqueued       INTEGER NOT NULL,
	next_attempt   INTEGER NOT NULL,
	last_code      TEXT NOT NULL DEFAULT '',
	last_error     TEXT NOT NULL DEFAULT '',
	reported_code  TEXT NOT NULL DEFAULT '',
	location       TEXT NOT NULL DEFAULT '',
	size           INTEGER NOT NULL DEFAULT 0,
	sha256         TEXT NOT NULL DEFAULT '',
	uploaded       INTEGER NOT NULL DEFAULT 0,
	backup         INTEGER NOT NULL DEFAULT 0,
	local_deleted  INTEGER NOT NULL DEFAULT 0,
	background     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS upload_jobs_due ON upload_jobs(state, next_attempt);
CREATE INDEX IF NOT EXISTS upload_jobs_recording ON upload_jobs(recording_id, state);
`

// The stored job states.
const (
	statePending   = "pending"
	stateUploaded  = "uploaded"
	stateAbandoned = "abandoned"
)

// Options configure a Queue. Zero fields take the defaults given per field.
type Options struct {
	// Open returns the bucket of an application's profile. Required.
	Open Opener
	// Backup, when set, returns the bucket of the backup profile, tried
	// after BackupAfter failed attempts (default 3) whenever the primary fails.
	Backup      Opener
	BackupAfter int
	// MinBackoff (default 1 s) is the delay after the first retryable
	// failure; it doubles per failure up to MaxBackoff (default 5 min) and is
	// jittered to between half and all of that.
	MinBackoff, MaxBackoff time.Duration
	// PermanentRetry is the delay after a permanent failure (default 10 min).
	PermanentRetry time.Duration
	// Deadline abandons a job that has not been uploaded this long after it
	// was enqueued (the next failure after it passes is final). Zero: never.
	Deadline time.Duration
	// ReportAfter is how many retryable failures in a row make a job
	// Failing (reported once per code; default 3). Permanent failures are
	// reported at once.
	ReportAfter int
	// Workers is the number of uploads in flight at once (default 2).
	Workers int
	// AttemptTimeout bounds one attempt (zero: no bound beyond the drivers' own).
	AttemptTimeout time.Duration
	// OnResult is called for every Result, from worker goroutines; see Queue.OnResult.
	OnResult func(Result)
	// Logger gets one line per failed attempt and per outcome. Default: slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.MinBackoff, time.Second)
	def(&o.MaxBackoff, 5*time.Minute)
	def(&o.PermanentRetry, 10*time.Minute)
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.BackupAfter <= 0 {
		o.BackupAfter = 3
	}
	if o.ReportAfter <= 0 {
		o.ReportAfter = 3
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Queue uploads jobs from the persisted queue. All methods are safe for
// concurrent use. It runs one scheduling goroutine, which starts one
// goroutine per due job (at most Options.Workers at once), until Close.
type Queue struct {
	db   *sql.DB
	opts Options

	mu       sync.Mutex
	closed   bool
	changed  chan struct{}  // closed and replaced whenever an attempt ends
	running  map[string]int // attempts in progress per recording, until their Results are out
	handlers []func(Result)

	wake   chan struct{} // capacity 1: a nudge to the scheduler
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New creates the upload_ tables if needed, removes local copies that an
// earlier process uploaded but did not get to delete, and starts the workers,
// which resume every job an earlier Queue on this database left pending. The
// Queue does not own db.
func New(ctx context.Context, db *sql.DB, opts Options) (*Queue, error) {
	if opts.Open == nil {
		return nil, errors.New("upload: Options.Open is required")
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return nil, fmt.Errorf("upload: create tables: %w", err)
	}
	if err := addBackground(ctx, db); err != nil {
		return nil, fmt.Errorf("upload: add the background column: %w", err)
	}
	q := &Queue{
		db:      db,
		opts:    opts.withDefaults(),
		changed: make(chan struct{}),
		running: make(map[string]int),
		wake:    make(chan struct{}, 1),
	}
	if opts.OnResult != nil {
		q.handlers = append(q.handlers, opts.OnResult)
	}
	if err := q.sweep(ctx); err != nil {
		return nil, fmt.Errorf("upload: removing uploaded local copies: %w", err)
	}
	q.ctx, q.cancel = context.WithCancel(context.Background())
	d := &retry.Dispatcher[row]{
		Workers: q.opts.Workers,
		Due:     q.due,
		Key:     func(r row) string { return r.ID },
		Run:     q.attempt,
		Wake:    q.wake,
		OnError: func(err error) {
			q.opts.Logger.Warn("upload: reading the queue failed", "err", err)
		},
		ErrorDelay: q.opts.MinBackoff,
	}
	q.wg.Add(1)
	go func() {
		defer q.wg.Done()
		d.Loop(q.ctx)
	}()
	return q, nil
}

// addBackground adds the background column to a table made before it
// existed (its jobs are then all foreground).
func addBackground(ctx context.Context, db *sql.DB) error {
	var n int
	if err := db.QueryRowContext(ctx,
		`SELECT COUNT(*) FROM pragma_table_info('upload_jobs') WHERE name = 'background'`).Scan(&n); err != nil || n > 0 {
		return err
	}
	_, err := db.ExecContext(ctx, `ALTER TABLE upload_jobs ADD COLUMN background INTEGER NOT NULL DEFAULT 0`)
	return err
}

// OnResult adds a callback for Results. Callbacks run on worker goroutines,
// after the outcome is persisted, one at a time per job; they must return
// quickly and must not call Close. Results of attempts that finish before the
// callback is added are not replayed: to see the outcomes of jobs resumed at
// start-up, pass Options.OnResult (or read Jobs).
func (q *Queue) OnResult(f func(Result)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.handlers = append(q.handlers, f)
}

// Enqueue persists j and schedules it at once. It returns after the job is
// committed; the upload happens later. A job whose ID is already known is
// left as it is (nil error).
func (q *Queue) Enqueue(ctx context.Context, j Job) error {
	return q.insert(ctx, j, `ON CONFLICT(id) DO NOTHING`)
}

// insert persists j with the given conflict clause and schedules it.
func (q *Queue) insert(ctx context.Context, j Job, onConflict string) error {
	if err := j.validate(); err != nil {
		return err
	}
	q.mu.Lock()
	closed := q.closed
	q.mu.Unlock()
	if closed {
		return ErrClosed
	}
	meta, err := json.Marshal(j.Metadata)
	if err != nil {
		return fmt.Errorf("upload: job %s: metadata: %w", j.ID, err)
	}
	now := time.Now().UnixNano()
	if _, err := q.db.ExecContext(ctx,
		`INSERT INTO upload_jobs (id, recording_id, application_id, local_path, key, content_type, metadata, delete_local, enqueued, next_attempt, background)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) `+onConflict,
		j.ID, j.RecordingID, j.ApplicationID, j.LocalPath, j.Key, j.ContentType, string(meta), j.DeleteLocalAfter, now, now, j.Background); err != nil {
		return fmt.Errorf("upload: enqueue %s: %w", j.ID, err)
	}
	q.nudge()
	return nil
}

// Replace persists j as a new upload of its ID, for a file whose content
// changed after it was enqueued (a chat transcript that grew after its
// recording ended): a job with that ID, whatever its state, starts again
// from its first attempt with j's fields, and an attempt of the earlier
// content still in flight records nothing. Write the new content to a new
// file and rename it over LocalPath, so that an attempt reads one content
// or the other.
func (q *Queue) Replace(ctx context.Context, j Job) error {
	return q.insert(ctx, j, `ON CONFLICT(id) DO UPDATE SET recording_id = excluded.recording_id,
		application_id = excluded.application_id, local_path = excluded.local_path, key = excluded.key,
		content_type = excluded.content_type, metadata = excluded.metadata, delete_local = excluded.delete_local,
		background = excluded.background, state = 'pending', attempts = 0, enqueued = excluded.enqueued, next_attempt = excluded.next_attempt,
		last_code = '', last_error = '', reported_code = '', location = '', size = 0, sha256 = '', uploaded = 0,
		backup = 0, local_deleted = 0`)
}

// RetryAll makes every pending job due now: at start-up, as a
// configuration fixed before it is only loaded then.
func (q *Queue) RetryAll(ctx context.Context) error {
	if _, err := q.db.ExecContext(ctx,
		`UPDATE upload_jobs SET next_attempt = ? WHERE state = 'pending'`, time.Now().UnixNano()); err != nil {
		return fmt.Errorf("upload: retry: %w", err)
	}
	q.nudge()
	return nil
}

// Expected returns how many pending jobs are still expected to succeed: not
// reported as failing (a shutdown waits for these, not for a job failing on
// bad credentials).
func (q *Queue) Expected(ctx context.Context) (int, error) {
	var n int
	if err := q.db.QueryRowContext(ctx,
		`SELECT COUNT(*) FROM upload_jobs WHERE state = 'pending' AND reported_code = ''`).Scan(&n); err != nil {
		return 0, fmt.Errorf("upload: expected jobs: %w", err)
	}
	return n, nil
}

// Retry makes every pending job of the application due now: call it after
// the application's storage profile was fixed.
func (q *Queue) Retry(ctx context.Context, applicationID string) error {
	if _, err := q.db.ExecContext(ctx,
		`UPDATE upload_jobs SET next_attempt = ? WHERE state = 'pending' AND application_id = ?`,
		time.Now().UnixNano(), applicationID); err != nil {
		return fmt.Errorf("upload: retry %s: %w", applicationID, err)
	}
	q.nudge()
	return nil
}

// Wait blocks until no job of the recording is pending or being finished
// (its local copy removed, its Result delivered), or ctx ends. It returns nil
// when every job of the recording was uploaded (a recording without jobs
// included), and an error naming the abandoned ones otherwise.
func (q *Queue) Wait(ctx context.Context, recordingID string) error {
	for {
		ch, running := q.state(recordingID)
		var pending int
		if err := q.db.QueryRowContext(ctx,
			`SELECT COUNT(*) FROM upload_jobs WHERE recording_id = ? AND state = 'pending'`, recordingID).Scan(&pending); err != nil {
			return fmt.Errorf("upload: wait for %s: %w", recordingID, err)
		}
		if pending == 0 && running == 0 {
			break
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("upload: wait for %s: %d jobs pending: %w", recordingID, pending, ctx.Err())
		}
	}
	jobs, err := q.Jobs(ctx, recordingID)
	if err != nil {
		return err
	}
	var failed []string
	for _, r := range jobs {
		if r.Status == Abandoned {
			failed = append(failed, fmt.Sprintf("%s (%v)", r.Job.Key, r.Err))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("upload: recording %s: %d uploads abandoned: %s", recordingID, len(failed), strings.Join(failed, "; "))
	}
	return nil
}

// state returns the channel the next change closes and the number of
// attempts of the recording in progress.
func (q *Queue) state(recordingID string) (chan struct{}, int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.changed, q.running[recordingID]
}

// begin and end bracket an attempt; end wakes every Wait.
func (q *Queue) begin(recordingID string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.running[recordingID]++
}

func (q *Queue) end(recordingID string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.running[recordingID]--; q.running[recordingID] <= 0 {
		delete(q.running, recordingID)
	}
	close(q.changed)
	q.changed = make(chan struct{})
}

func (q *Queue) nudge() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

const jobColumns = `id, recording_id, application_id, local_path, key, content_type, metadata, delete_local, background,
	state, attempts, enqueued, next_attempt, last_code, last_error, reported_code, location, size, sha256, uploaded, backup`

// row is a job with its stored state.
type row struct {
	Job
	state               string
	attempts            int
	enqueued, next      time.Time
	lastCode, lastError string
	reportedCode        string
	location, sha256    string
	size                int64
	uploaded            time.Time
	backup              bool
}

func scanRow(s interface{ Scan(...any) error }) (row, error) {
	var r row
	var meta string
	var enq, next, up int64
	if err := s.Scan(&r.ID, &r.RecordingID, &r.ApplicationID, &r.LocalPath, &r.Key, &r.ContentType, &meta, &r.DeleteLocalAfter, &r.Background,
		&r.state, &r.attempts, &enq, &next, &r.lastCode, &r.lastError, &r.reportedCode, &r.location, &r.size, &r.sha256, &up, &r.backup); err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(meta), &r.Metadata); err != nil {
		return r, fmt.Errorf("job %s: metadata: %w", r.ID, err)
	}
	r.enqueued, r.next = time.Unix(0, enq), time.Unix(0, next)
	if up != 0 {
		r.uploaded = time.Unix(0, up)
	}
	return r, nil
}

func (q *Queue) query(ctx context.Context, where string, args ...any) ([]row, error) {
	rows, err := q.db.QueryContext(ctx, `SELECT `+jobColumns+` FROM upload_jobs WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []row
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// result turns a stored row into what Jobs reports.
func (r row) result() Result {
	res := Result{Job: r.Job, Attempts: r.attempts, Location: r.location, Size: r.size,
		SHA256: r.sha256, Uploaded: r.uploaded, Backup: r.backup}
	if r.lastError != "" {
		res.Code = parseCode(r.lastCode)
		res.Err = &storedError{msg: r.lastError, code: res.Code}
	}
	switch {
	case r.state == stateUploaded:
		res.Status, res.Code, res.Err = Uploaded, storage.Unknown, nil
	case r.state == stateAbandoned:
		res.Status = Abandoned
	case r.reportedCode != "":
		res.Status = Failing
	}
	return res
}

// Jobs returns the state of every job of a recording, in enqueue order; the
// service can rebuild its view of a recording's uploads from it after a
// restart.
func (q *Queue) Jobs(ctx context.Context, recordingID string) ([]Result, error) {
	rows, err := q.query(ctx, `recording_id = ? ORDER BY seq`, recordingID)
	if err != nil {
		return nil, fmt.Errorf("upload: jobs of %s: %w", recordingID, err)
	}
	out := make([]Result, len(rows))
	for i, r := range rows {
		out[i] = r.result()
	}
	return out, nil
}

// Pending returns how many jobs wait to be uploaded (pending, not yet
// uploaded or abandoned) and when the oldest of them was enqueued (zero when
// none waits).
func (q *Queue) Pending(ctx context.Context) (int, time.Time, error) {
	var n int
	var oldest sql.NullInt64
	err := q.db.QueryRowContext(ctx, `SELECT COUNT(*), MIN(enqueued) FROM upload_jobs WHERE state = 'pending'`).Scan(&n, &oldest)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("upload: pending jobs: %w", err)
	}
	if !oldest.Valid {
		return n, time.Time{}, nil
	}
	return n, time.Unix(0, oldest.Int64), nil
}

// due returns the jobs to start now (not busy), foreground jobs first (see
// Job.Background), each kind in due order, and when the next other pending
// job becomes due.
func (q *Queue) due(ctx context.Context, busy map[string]bool) ([]row, time.Time, error) {
	now := time.Now().UnixNano()
	rows, err := q.query(ctx, `state = 'pending' AND next_attempt <= ? ORDER BY background, next_attempt, seq LIMIT ?`,
		now, q.opts.Workers+len(busy))
	if err != nil {
		return nil, time.Time{}, err
	}
	ready := rows[:0]
	for _, r := range rows {
		if !busy[r.ID] {
			ready = append(ready, r)
		}
	}
	var next sql.NullInt64
	if err := q.db.QueryRowContext(ctx,
		`SELECT MIN(next_attempt) FROM upload_jobs WHERE state = 'pending' AND next_attempt > ?`, now).Scan(&next); err != nil {
		return nil, time.Time{}, err
	}
	if !next.Valid {
		return ready, time.Time{}, nil
	}
	return ready, time.Unix(0, next.Int64), nil
}

// attempt uploads one job once and records the outcome. An attempt cut short
// by Close changes nothing: the job stays pending with its attempt count.
func (q *Queue) attempt(ctx context.Context, r row) {
	q.begin(r.RecordingID)
	defer q.end(r.RecordingID)
	if q.opts.AttemptTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, q.opts.AttemptTimeout)
		defer cancel()
	}
	if _, err := os.Stat(r.LocalPath); errors.Is(err, fs.ErrNotExist) {
		q.fail(r, &storage.Error{Code: storage.NotFound, Op: "upload", Key: r.Key,
			Err: fmt.Errorf("local file %s is missing", r.LocalPath)}, true)
		return
	}
	res, loc, backup, err := q.upload(ctx, r)
	if q.ctx.Err() != nil {
		return // closing: not an attempt
	}
	if err != nil {
		q.fail(r, err, false)
		return
	}
	q.succeed(r, res, loc, backup)
}

// upload tries the primary profile and, once the job has failed
// BackupAfter times, the backup profile when the primary fails.
func (q *Queue) upload(ctx context.Context, r row) (storage.UploadResult, string, bool, error) {
	opts := &storage.WriterOptions{ContentType: r.ContentType, Metadata: r.Metadata, Size: -1}
	try := func(open Opener) (storage.UploadResult, string, error) {
		b, err := open(r.ApplicationID)
		if err == nil && b == nil {
			err = errors.New("no bucket")
		}
		if err != nil {
			return storage.UploadResult{}, "", fmt.Errorf("upload: opening the storage profile of %s: %w", r.ApplicationID, err)
		}
		res, err := b.UploadFile(ctx, r.Key, r.LocalPath, opts)
		return res, strings.TrimSuffix(b.Location(), "/") + "/" + r.Key, err
	}
	res, loc, err := try(q.opts.Open)
	if err == nil || q.opts.Backup == nil || r.attempts+1 < q.opts.BackupAfter || q.ctx.Err() != nil {
		return res, loc, false, err
	}
	q.opts.Logger.Warn("upload: primary profile failed, trying the backup", "job", r.ID, "key", r.Key, "attempt", r.attempts+1, "err", storage.RedactURLs(err.Error()))
	bres, bloc, berr := try(q.opts.Backup)
	if berr != nil {
		return res, loc, false, fmt.Errorf("%w (backup: %v)", err, berr)
	}
	return bres, bloc, true, nil
}

func (q *Queue) succeed(r row, res storage.UploadResult, loc string, backup bool) {
	now := time.Now()
	out := Result{Job: r.Job, Status: Uploaded, Location: loc, Size: res.Size, SHA256: hex.EncodeToString(res.SHA256),
		Uploaded: now, Backup: backup, Attempts: r.attempts + 1}
	res2, err := q.db.Exec(
		`UPDATE upload_jobs SET state = 'uploaded', attempts = ?, location = ?, size = ?, sha256 = ?, uploaded = ?, backup = ?,
		        last_code = '', last_error = '' WHERE id = ? AND enqueued = ?`,
		out.Attempts, out.Location, out.Size, out.SHA256, now.UnixNano(), backup, r.ID, r.enqueued.UnixNano())
	if err != nil {
		// Not recorded: the job stays pending and is uploaded again; keep the file.
		q.opts.Logger.Error("upload: recording an upload failed", "job", r.ID, "err", err)
		return
	}
	if n, err := res2.RowsAffected(); err == nil && n == 0 {
		return // replaced while in flight: the new content is uploaded by its own attempt
	}
	q.opts.Logger.Info("upload: uploaded", "job", r.ID, "location", out.Location, "size", out.Size, "backup", backup, "attempts", out.Attempts)
	if r.DeleteLocalAfter {
		q.removeLocal(r.ID, r.LocalPath)
	}
	q.report(out)
}

// removeLocal deletes the local copy of an uploaded job and records that it
// is gone. A process that dies between the two leaves the record, and the next
// Queue finishes the removal (see sweep).
func (q *Queue) removeLocal(id, path string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		q.opts.Logger.Warn("upload: removing the local copy failed", "job", id, "path", path, "err", err)
		return
	}
	if _, err := q.db.Exec(`UPDATE upload_jobs SET local_deleted = 1 WHERE id = ?`, id); err != nil {
		q.opts.Logger.Warn("upload: recording a removed local copy failed", "job", id, "err", err)
	}
}

// sweep removes the local copies of uploaded jobs that an earlier process
// verified but did not get to delete.
func (q *Queue) sweep(ctx context.Context) error {
	rows, err := q.query(ctx, `state = 'uploaded' AND delete_local = 1 AND local_deleted = 0`)
	if err != nil {
		return err
	}
	for _, r := range rows {
		q.removeLocal(r.ID, r.LocalPath)
	}
	return nil
}

// Prune deletes the records of jobs that ended (uploaded or abandoned) before
// the given time and returns how many it deleted; pending jobs are kept.
// Enqueueing a pruned job's ID again uploads it again.
func (q *Queue) Prune(ctx context.Context, before time.Time) (int64, error) {
	res, err := q.db.ExecContext(ctx,
		`DELETE FROM upload_jobs WHERE (state = 'uploaded' AND uploaded < ?1 AND (delete_local = 0 OR local_deleted = 1))
		                            OR (state = 'abandoned' AND next_attempt < ?1)`, before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("upload: prune: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("upload: prune: %w", err)
	}
	return n, nil
}

// fail records a failed attempt: schedules the retry, or abandons the job
// when final is set or Options.Deadline passed, and reports what the service
// must know.
func (q *Queue) fail(r row, err error, final bool) {
	now := time.Now()
	code := storage.Code(err)
	attempts := r.attempts + 1
	if q.opts.Deadline > 0 && now.Sub(r.enqueued) > q.opts.Deadline {
		final = true
		err = fmt.Errorf("upload: gave up after %d attempts in %v: %w", attempts, now.Sub(r.enqueued).Round(time.Second), err)
	}
	out := Result{Job: r.Job, Status: Failing, Attempts: attempts, Code: code, Err: err}
	state, delay := statePending, time.Duration(0)
	reported := r.reportedCode
	switch {
	case final:
		state, out.Status = stateAbandoned, Abandoned
	case retryable(code):
		delay = retry.Backoff(attempts, q.opts.MinBackoff, q.opts.MaxBackoff)
	default:
		delay = q.opts.PermanentRetry
	}
	notify := final || (code.String() != reported && (!retryable(code) || attempts >= q.opts.ReportAfter))
	if notify {
		reported = code.String()
	}
	// The error's text may quote a URL with its credentials (an Azure SAS
	// token in a *url.Error): the log and the table get it without them.
	text := storage.RedactURLs(err.Error())
	q.opts.Logger.Warn("upload: attempt failed", "job", r.ID, "key", r.Key, "attempt", attempts, "code", code,
		"err", text, "final", final, "retry", delay.Round(time.Millisecond))
	res, dberr := q.db.Exec(
		`UPDATE upload_jobs SET state = ?, attempts = ?, next_attempt = ?, last_code = ?, last_error = ?, reported_code = ?
		  WHERE id = ? AND enqueued = ?`,
		state, attempts, now.Add(delay).UnixNano(), code.String(), text, reported, r.ID, r.enqueued.UnixNano())
	if dberr != nil {
		q.opts.Logger.Error("upload: recording a failed attempt failed", "job", r.ID, "err", dberr)
		return
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return // replaced while in flight
	}
	if notify {
		q.report(out)
	}
}

// retryable reports whether a failure is retried at the backoff pace:
// storage's retryable codes, and DataLoss (the stored object did not match
// what was sent, which a new attempt overwrites).
func retryable(c storage.ErrorCode) bool { return c.Retryable() || c == storage.DataLoss }

func (q *Queue) report(res Result) {
	q.mu.Lock()
	hs := q.handlers
	q.mu.Unlock()
	for _, h := range hs {
		h(res)
	}
}

// Close stops taking jobs, waits until no job is pending or ctx ends, then
// stops the workers (an upload in flight is cancelled: no partial object is
// left, and the job stays pending for the next Queue on this database). It
// returns nil when the queue drained, else an error counting what is left.
// For a two-stage shutdown call it first with a drain deadline; a second call
// (from another goroutine, with an expired context) stops both at once.
func (q *Queue) Close(ctx context.Context) error {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	left, err := q.drain(ctx)
	q.cancel()
	q.wg.Wait()
	if err != nil {
		return fmt.Errorf("upload: close: %w", err)
	}
	if left > 0 {
		return fmt.Errorf("upload: closed with %d jobs pending (resumed by the next queue): %w", left, context.Cause(ctx))
	}
	return nil
}

// drain waits until no job is pending, ctx ends, or the queue is stopped; it
// returns how many jobs are left pending.
func (q *Queue) drain(ctx context.Context) (int, error) {
	for {
		ch, _ := q.state("") // the pending count covers running attempts
		var left int
		if err := q.db.QueryRowContext(context.WithoutCancel(ctx),
			`SELECT COUNT(*) FROM upload_jobs WHERE state = 'pending'`).Scan(&left); err != nil {
			return 0, err
		}
		if left == 0 {
			return 0, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return left, nil
		case <-q.ctx.Done():
			return left, nil
		}
	}
}
