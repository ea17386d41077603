package composite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Queue runs composite jobs in the background: at most Workers at once, at
// most Capacity waiting, persisted in the recorder's database (table
// composite_jobs) so that a job survives a restart. A job is a recording's
// instanceId; its row is deleted when Run returns for it, other than because
// the queue is closing, so a job cut by a crash or a shutdown runs again at
// the next start.
type Queue struct {
	db   *sql.DB
	o    QueueOptions
	wake chan struct{}

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	running map[string]bool
}

// QueueOptions configure a Queue.
type QueueOptions struct {
	Workers  int // jobs at once; 1 when 0
	Capacity int // jobs waiting or running; 100 when 0
	// Run does one job. Its ctx ends when the queue closes; an error from a
	// cancelled ctx leaves the job for the next start, any other return
	// finishes it (Run records its own failures).
	Run    func(ctx context.Context, id string) error
	Logger *slog.Logger
}

// ErrQueueFull is returned by Enqueue when Capacity jobs are waiting.
var ErrQueueFull = errors.New("composite: the composition queue is full")

const queueSchema = `
CREATE TABLE IF NOT EXISTS composite_jobs (
	id TEXT PRIMARY KEY,
	enqueued INTEGER NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0
);`

// NewQueue opens the queue in db and starts its workers, which resume the
// jobs an earlier process left.
func NewQueue(ctx context.Context, db *sql.DB, o QueueOptions) (*Queue, error) {
	if o.Run == nil {
		return nil, errors.New("composite: QueueOptions.Run is required")
	}
	if o.Workers <= 0 {
		o.Workers = 1
	}
	if o.Capacity <= 0 {
		o.Capacity = 100
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if _, err := db.ExecContext(ctx, queueSchema); err != nil {
		return nil, fmt.Errorf("composite: queue: %w", err)
	}
	q := &Queue{db: db, o: o, wake: make(chan struct{}, 1), running: map[string]bool{}}
	q.ctx, q.cancel = context.WithCancel(context.Background())
	for i := 0; i < o.Workers; i++ {
		q.wg.Add(1)
		go q.work()
	}
	q.nudge()
	return q, nil
}

// Enqueue adds the job id; adding a job that is waiting or running is a
// no-op. It fails with ErrQueueFull when Capacity jobs are queued.
func (q *Queue) Enqueue(ctx context.Context, id string) error {
	var n int
	if err := q.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM composite_jobs`).Scan(&n); err != nil {
		return fmt.Errorf("composite: queue: %w", err)
	}
	var exists int
	q.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM composite_jobs WHERE id = ?`, id).Scan(&exists)
	if exists > 0 {
		return nil
	}
	if n >= q.o.Capacity {
		return ErrQueueFull
	}
	if _, err := q.db.ExecContext(ctx, `INSERT OR IGNORE INTO composite_jobs (id, enqueued) VALUES (?, ?)`,
		id, time.Now().UnixNano()); err != nil {
		return fmt.Errorf("composite: queue: %w", err)
	}
	q.nudge()
	return nil
}

// Pending returns the ids of the jobs waiting or running, oldest first.
func (q *Queue) Pending(ctx context.Context) ([]string, error) {
	rows, err := q.db.QueryContext(ctx, `SELECT id FROM composite_jobs ORDER BY enqueued`)
	if err != nil {
		return nil, fmt.Errorf("composite: queue: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// Close stops the workers: running jobs are cancelled and stay queued for
// the next start. It returns when they have stopped or ctx ends.
func (q *Queue) Close(ctx context.Context) error {
	q.cancel()
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("composite: queue: close: %w", ctx.Err())
	}
}

func (q *Queue) nudge() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// next claims the oldest job no worker runs.
func (q *Queue) next() (string, bool) {
	rows, err := q.db.QueryContext(q.ctx, `SELECT id FROM composite_jobs ORDER BY enqueued`)
	if err != nil {
		return "", false
	}
	defer rows.Close()
	q.mu.Lock()
	defer q.mu.Unlock()
	for rows.Next() {
		var id string
		if rows.Scan(&id) == nil && !q.running[id] {
			q.running[id] = true
			return id, true
		}
	}
	return "", false
}

func (q *Queue) work() {
	defer q.wg.Done()
	for {
		id, ok := q.next()
		if !ok {
			select {
			case <-q.wake:
				continue
			case <-q.ctx.Done():
				return
			}
		}
		q.nudge() // another worker may take the next one
		q.db.ExecContext(q.ctx, `UPDATE composite_jobs SET attempts = attempts + 1 WHERE id = ?`, id)
		err := q.o.Run(q.ctx, id)
		if q.ctx.Err() == nil {
			if _, derr := q.db.ExecContext(context.Background(), `DELETE FROM composite_jobs WHERE id = ?`, id); derr != nil {
				q.o.Logger.Error("composite: cannot finish a queued job", "id", id, "err", derr)
			}
			if err != nil {
				q.o.Logger.Warn("composite: job failed", "id", id, "err", err)
			}
		}
		q.mu.Lock()
		delete(q.running, id)
		q.mu.Unlock()
		if q.ctx.Err() != nil {
			return
		}
	}
}
