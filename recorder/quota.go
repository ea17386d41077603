package recorder

import (
	"strconv"
	"sync"
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
