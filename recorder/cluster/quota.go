package cluster

import (
	"context"
	"slices"
	"time"

	"github.com/rtcrec/recorder/recorder/store"
)

// Fleet-wide quotas (issue 12): the WHIP sessions, event streams and
// blackouts an organization holds are counted across the fleet, as lease
// rows in the shared store (store.AcquireLease: count and insert in one
// transaction per organization and kind). A connection's lease lives while
// this instance does: each heartbeat renews it to DeadAfter ahead, so a dead
// instance's places free themselves within DeadAfter. A blackout's lease
// lapses when the blackout ends.

// AcquireQuota takes the place id in the organization's quota of kind if it
// holds fewer than limit (recorder.Remote). until is when the lease lapses;
// zero: while this instance lives (renewed with its heartbeats).
func (n *Node) AcquireQuota(ctx context.Context, organizationID, kind, id string, limit int, until time.Time) (bool, error) {
	if until.IsZero() {
		n.renewMu.Lock()
		if !slices.Contains(n.renewed, kind) {
			n.renewed = append(n.renewed, kind)
		}
		n.renewMu.Unlock()
		until = n.opts.Now().Add(n.opts.DeadAfter)
	}
	return n.opts.Store.AcquireLease(ctx, &store.Lease{OrganizationID: organizationID, Kind: kind, ID: id,
		Holder: n.opts.RecorderID, Expires: until}, limit)
}

// ReleaseQuota gives the place back (recorder.Remote); a failure is logged:
// the lease lapses by itself.
func (n *Node) ReleaseQuota(ctx context.Context, organizationID, kind, id string) {
	if err := n.opts.Store.ReleaseLease(ctx, organizationID, kind, id); err != nil {
		n.opts.Logger.Warn("cluster: cannot release a quota lease (it lapses by itself)", "kind", kind, "err", err)
	}
}
