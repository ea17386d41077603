package recorder

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// QuotaError is the error of a request past an organization's quota.
func QuotaError(what string, limit int) *Error {
	return &Error{Kind: KindQuota, Reason: "quota_exceeded",
		Message: "the organization is at its quota of " + strconv.Itoa(limit) + " " + what + "; end some and retry"}
}

// Counter counts what organizations hold (SSE connections, recordings) and
// reserves a unit atomically against a limit. It is safe for concurrent use.
type Counter struct {
	mu sync.Mutex
	n  map[string]int
}

// Acquire reserves one unit for org if it holds fewer than limit; release
// (idempotent) gives it back.
func (c *Counter) Acquire(org string, limit int) (release func(), ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	if c.n[org] >= limit {
		return nil, false
	}
	c.n[org]++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.n[org]--; c.n[org] <= 0 {
				delete(c.n, org)
			}
		})
	}, true
}

// Held returns how many units org holds.
func (c *Counter) Held(org string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[org]
}

// The kinds of the fleet-wide quotas (FleetQuota).
const (
	QuotaWHIP     = "whip"     // WHIP sessions
	QuotaSSE      = "sse"      // event streams
	QuotaBlackout = "blackout" // blackouts, one per participant
)

// FleetQuota takes the place id in the organization's quota of kind across
// the fleet (in the shared store, cluster/quota.go) if it holds fewer than
// limit, for as long as this instance lives; release gives it back. Without
// a fleet (or a limit) it takes nothing and says yes: each instance's own
// count is the quota.
func (m *Manager) FleetQuota(ctx context.Context, organizationID, kind, id string, limit int) (release func(), ok bool, err error) {
	if m.remote == nil || limit <= 0 {
		return func() {}, true, nil
	}
	ok, err = m.remote.AcquireQuota(ctx, organizationID, kind, id, limit, time.Time{})
	if err != nil || !ok {
		return nil, ok, err
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m.remote.ReleaseQuota(ctx, organizationID, kind, id)
	}, true, nil
}
