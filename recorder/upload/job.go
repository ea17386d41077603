// Package upload is the recorder's persisted upload queue: every output file
// of a recording becomes a Job stored in SQLite (tables prefixed upload_)
// before any byte moves, and worker goroutines upload it to the application's
// storage profile until the upload is verified, surviving storage outages and
// process restarts.
//
// Behaviour:
//   - Each attempt asks the Opener for the application's bucket, so a profile
//     fixed in the configuration is used by the next attempt.
//   - storage.Bucket.UploadFile verifies the stored size and MD5. Only then is
//     the job recorded as uploaded and, if Job.DeleteLocalAfter, the local file
//     removed. A local file is never removed otherwise.
//   - Retryable failures (storage.ErrorCode.Retryable: Unavailable,
//     DeadlineExceeded, ResourceExhausted, Unknown) are retried with
//     exponential backoff and jitter, forever or until Options.Deadline; so
//     is DataLoss (the stored object did not match the file), since a new
//     attempt overwrites it. Opener errors are classified with storage.Code
//     (an unclassified error is Unknown: retryable).
//   - Permanent failures (Unauthenticated, PermissionDenied, NotFound, …) are
//     reported at once as a Failing Result (so the service can set the track's
//     objectStorage.error and emit upload.failed) and retried at the slow pace
//     of Options.PermanentRetry, or at once on Retry(applicationID).
//   - With Options.Backup, after Options.BackupAfter failed attempts each
//     attempt that fails on the primary profile goes to the backup; the Result
//     says which took it.
//   - Jobs and their state are persisted, so a new Queue on the same database
//     resumes whatever an earlier process left pending.
//
// The database is the service's *sql.DB, opened with the pure-Go driver
// (modernc.org/sqlite, driver name "sqlite") and a DSN that sets at least
// busy_timeout and WAL, for example
//
//	file:/data/recorder.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)
//
// The package never holds a cursor open while running another statement and
// uses no multi-statement transactions, so db.SetMaxOpenConns(1) also works.
package upload

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/rtcrec/recorder/storage"
)

// Opener returns the bucket of an application's storage profile (or of its
// backup profile). It is called from worker goroutines, once per attempt, so
// that a corrected profile takes effect on the next retry. The Queue never
// closes the returned bucket: the opener owns it (typically a cache per
// profile that closes a bucket when its profile is replaced).
type Opener func(applicationID string) (*storage.Bucket, error)

// Job is one local file to upload.
type Job struct {
	// ID identifies the job; enqueueing an ID that is already queued or done
	// does nothing, so the service may enqueue a recording's outputs again
	// after a restart.
	ID            string
	RecordingID   string // the recording's instanceId; Wait waits per recording
	ApplicationID string // chooses the storage profile through the Opener
	LocalPath     string
	Key           string // object key in the bucket
	ContentType   string
	Metadata      map[string]string
	// DeleteLocalAfter removes LocalPath once the upload is verified.
	DeleteLocalAfter bool
	// Background jobs (the parts a recording uploads while it runs) start
	// only when no other job is due: a stopped recording's outputs, which
	// its stop waits for, go ahead of every part queued before them.
	Background bool
}

func (j Job) validate() error {
	switch {
	case j.ID == "":
		return errors.New("upload: job has no ID")
	case j.ApplicationID == "":
		return fmt.Errorf("upload: job %s has no application", j.ID)
	case j.LocalPath == "":
		return fmt.Errorf("upload: job %s has no local path", j.ID)
	}
	if err := storage.ValidateKey(j.Key); err != nil {
		return fmt.Errorf("upload: job %s: key %q: %w", j.ID, j.Key, err)
	}
	return nil
}

// Status is where a job stands.
type Status int

// The job statuses. Uploaded and Abandoned are final.
const (
	Pending   Status = iota // queued or waiting for a retry after retryable failures
	Uploaded                // stored and verified
	Failing                 // a failure the service should report; still retried
	Abandoned               // given up: Options.Deadline passed or the local file is gone
)

var statusNames = [...]string{Pending: "Pending", Uploaded: "Uploaded", Failing: "Failing", Abandoned: "Abandoned"}

// String returns the status name, for example "Uploaded".
func (s Status) String() string {
	if s < 0 || int(s) >= len(statusNames) {
		return "Status(" + strconv.Itoa(int(s)) + ")"
	}
	return statusNames[s]
}

// Result reports a job's outcome or trouble. OnResult callbacks get one when
// a job is uploaded, is abandoned, or fails in a way worth reporting (a
// permanent error, or Options.ReportAfter retryable failures in a row; once
// per distinct error code).
type Result struct {
	Job    Job
	Status Status
	// Location is where the object is: the bucket's Location and the key.
	Location string
	Size     int64
	SHA256   string // hex SHA-256 of the uploaded bytes
	Uploaded time.Time
	// Backup is true when the backup profile took the upload.
	Backup   bool
	Attempts int
	// Code and Err describe the last failure (Failing, Abandoned; Err is nil
	// when Uploaded). storage.Code(Err) == Code.
	Code storage.ErrorCode
	Err  error
}

// storedError is a failure read back from the database: its message, and its
// code for storage.Code and errors.Is.
type storedError struct {
	msg  string
	code storage.ErrorCode
}

func (e *storedError) Error() string { return e.msg }
func (e *storedError) Unwrap() error { return e.code }

// parseCode is the inverse of storage.ErrorCode.String.
func parseCode(s string) storage.ErrorCode {
	for c := storage.ErrorCode(0); c < 64; c++ {
		if c.String() == s {
			return c
		}
	}
	return storage.Unknown
}
