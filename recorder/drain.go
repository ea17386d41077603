package recorder

import (
	"context"
	"time"

	"github.com/rtcrec/recorder/config"
)

// Graceful drain. Manager.Shutdown (the first SIGTERM) refuses new
// recordings at once (Start fails with KindUnavailable, reason
// shutting_down; Draining reports true for /readyz), then finishes the
// running recordings by the configured policy:
//
//   - stop (default): stop every recording now, compose and upload it;
//   - wait: let recordings end by themselves (stop requests, conference end)
//     for up to Deadline, then stop the rest.
//
// It then waits for the upload queue to drain until its context ends; jobs
// still pending are resumed by the next start.

// Draining reports whether Shutdown was called: new recordings are refused.
func (m *Manager) Draining() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closing
}

// waitPolicy waits, under the wait policy, until no recording runs, the
// policy's deadline passes or ctx ends.
func (m *Manager) waitPolicy(ctx context.Context) {
	if m.cfg.Shutdown.Policy != config.ShutdownWait {
		return
	}
	m.log.Info("draining: waiting for running recordings to end", "active", m.ActiveCount(), "deadline", m.cfg.Shutdown.Deadline)
	deadline := time.NewTimer(m.cfg.Shutdown.Deadline)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for m.ActiveCount() > 0 {
		select {
		case <-tick.C:
		case <-deadline.C:
			m.log.Info("draining: deadline passed; stopping the running recordings", "active", m.ActiveCount())
			return
		case <-ctx.Done():
			return
		}
	}
}
