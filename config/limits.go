package config

import (
	"errors"
	"fmt"
	"time"

	"github.com/rtcrec/recorder/recorder/ids"
)

// Limits bound what one request may ask for (config key limits).
type Limits struct {
	// MaxDuration caps the maxDuration a start may ask for (default 24h);
	// defaults.maxDuration above it is lowered to it.
	MaxDuration time.Duration `yaml:"maxDuration"`
	// BodyTimeout is the read deadline of a request body after its headers
	// (default 30s): a body that trickles in slower is cut off.
	BodyTimeout time.Duration `yaml:"bodyTimeout"`
	// BlackoutHorizon is how far from now a blackout's start or stop time may
	// lie, either way (default 7 days).
	BlackoutHorizon time.Duration `yaml:"blackoutHorizon"`
	// PublishTokenTTL is the longest validity of a publish token (default 24h;
	// a token's default is 10 minutes).
	PublishTokenTTL time.Duration `yaml:"publishTokenTTL"`
}

func (l *Limits) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&l.MaxDuration, 24*time.Hour)
	def(&l.BodyTimeout, 30*time.Second)
	def(&l.BlackoutHorizon, 7*24*time.Hour)
	def(&l.PublishTokenTTL, 24*time.Hour)
}

func (l *Limits) validate() error {
	// Times are stored as Unix nanoseconds, which end in 2262.
	if l.BlackoutHorizon > 100*365*24*time.Hour {
		return fmt.Errorf("recorder: config: limits.blackoutHorizon %s is more than 100 years", l.BlackoutHorizon)
	}
	return nil
}

// Quota is what one organization may hold at once. Zero means the default.
type Quota struct {
	Recordings     int `yaml:"recordings"`     // recordings not yet final (default 100)
	WHIPSessions   int `yaml:"whipSessions"`   // WHIP sessions connecting or connected (default 200)
	SSEConnections int `yaml:"sseConnections"` // open GET /api/events streams (default 20)
	Blackouts      int `yaml:"blackouts"`      // blackouts scheduled or running (default 1000)
}

// QuotaConfig is config key quotas: the quota of every organization, and
// per-organization overrides under organizations (a zero field there keeps
// the general value).
type QuotaConfig struct {
	Quota         `yaml:",inline"`
	Organizations map[string]Quota `yaml:"organizations"`
}

func (q *QuotaConfig) setDefaults() {
	def := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	def(&q.Recordings, 100)
	def(&q.WHIPSessions, 200)
	def(&q.SSEConnections, 20)
	def(&q.Blackouts, 1000)
}

func (q *QuotaConfig) validate() error {
	for org := range q.Organizations {
		if err := ids.Validate("organizationId", org); err != nil {
			return fmt.Errorf("recorder: config: quotas.organizations: %w", err)
		}
	}
	return nil
}

// For returns the quota of organizationID.
func (q *QuotaConfig) For(organizationID string) Quota {
	out := q.Quota
	if o, ok := q.Organizations[organizationID]; ok {
		for _, f := range []struct {
			dst *int
			v   int
		}{
			{&out.Recordings, o.Recordings}, {&out.WHIPSessions, o.WHIPSessions},
			{&out.SSEConnections, o.SSEConnections}, {&out.Blackouts, o.Blackouts},
		} {
			if f.v > 0 {
				*f.dst = f.v
			}
		}
	}
	return out
}

// CapacityConfig is this instance's capacity (the capacity block of the
// configuration).
type CapacityConfig struct {
	// Streams is how many streams this instance takes at most; 0: no limit.
	Streams int `yaml:"streams"`
}

// RuntimeConfig tunes Go's garbage collector for the process (the runtime
// block of the configuration; cmd/recorder applies it at start with
// runtime/debug). Unset, the GOGC and GOMEMLIMIT environment variables
// apply, or DefaultGCPercent.
type RuntimeConfig struct {
	// GCPercent is GOGC: how far the heap grows past the live heap before
	// the next collection, in percent. Lower holds less memory per stream
	// for more CPU (BENCHMARKS.md has both). 0: unset (GOGC, or
	// DefaultGCPercent); -1: off (only with MemoryLimitMB, which then alone
	// starts collections).
	GCPercent int `yaml:"gcPercent"`
	// MemoryLimitMB is GOMEMLIMIT in MiB: a soft bound on the Go runtime's
	// memory; the collector works harder as the process nears it. 0: unset.
	MemoryLimitMB int64 `yaml:"memoryLimitMB"`
}

// DefaultGCPercent is the recorder's GOGC when neither runtime.gcPercent
// nor the GOGC environment variable sets one (Go's own default is 100). A
// recorder's heap is nearly all long-lived per-stream state and it
// allocates little once its streams run (about 3 MB a second for 200
// streams by gctrace), so collecting at 1.1× the live heap
// instead of 2× holds far less memory per stream for little CPU: gcPercent
// 50 (session 7: N=200, 385 → 343 KB with the mix, CPU the same), 25
// (session 8: 299 and 302 KB against 332 and 348 at 50), then 10 (session
// 10, BENCHMARKS.md 2026-12-06 11:40: three alternating pairs at N=200 with
// the mix, 242 / 244 / 246 KB against 270 / 268 / 274 at 25; N=400 233
// against 254; process CPU within the runs' noise, pairs +3 %, −0.3 %,
// −2 %; the collector's own CPU by GODEBUG=gctrace=1 about 0.1 ms per
// stream-second more, some 4 %). The runtime returns freed pages to the OS
// by itself (its background scavenger keeps RSS near the heap goal).
const DefaultGCPercent = 10

func (r RuntimeConfig) validate() error {
	switch {
	case r.GCPercent < -1 || r.GCPercent > 0 && r.GCPercent < 10:
		return fmt.Errorf("recorder: config: runtime.gcPercent %d: want 10 or more, or -1 (off, with runtime.memoryLimitMB)", r.GCPercent)
	case r.GCPercent == -1 && r.MemoryLimitMB == 0:
		return errors.New("recorder: config: runtime.gcPercent -1 (no collection by heap growth) needs runtime.memoryLimitMB")
	case r.MemoryLimitMB < 0:
		return errors.New("recorder: config: runtime.memoryLimitMB must not be negative")
	}
	return nil
}
