package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rtcrec/recorder/recorder/store"
)

// Pin returns the live instance the conference of an organization is pinned
// to: every WHIP publisher of the conference is sent there, so that all its
// tracks land on one instance. An unpinned conference is pinned to prefer; one
// pinned to an instance that is dead or left the fleet is re-pinned to prefer
// (its publishers reconnect there).
func (n *Node) Pin(ctx context.Context, organizationID, conferenceID, prefer string) (*store.Instance, error) {
	st := n.opts.Store
	for range 3 { // a re-pin raced by another instance's: read again
		p, err := st.PinConference(ctx, organizationID, conferenceID, prefer)
		if err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		if in, err := n.live(ctx, p.RecorderID); err != nil || in != nil {
			return in, err
		}
		moved, err := st.RepinConference(ctx, organizationID, conferenceID, p.RecorderID, prefer)
		if err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		if moved {
			n.opts.Logger.Info("cluster: conference re-pinned from a dead instance", "conferenceId", conferenceID,
				"from", p.RecorderID, "to", prefer, "epoch", p.Epoch+1)
			if in, err := n.live(ctx, prefer); err != nil || in != nil {
				return in, err
			}
			return nil, fmt.Errorf("cluster: recorder %s is not alive", prefer)
		}
	}
	return nil, fmt.Errorf("cluster: cannot pin conference %s", conferenceID)
}

// live returns the instance recorderID when it is alive (this one always
// is), nil when it is dead or not in the fleet.
func (n *Node) live(ctx context.Context, recorderID string) (*store.Instance, error) {
	if recorderID == n.opts.RecorderID {
		return n.Self(), nil
	}
	in, err := n.opts.Store.Instance(ctx, recorderID)
	if errors.Is(err, store.ErrNoInstance) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if !n.Alive(in) {
		return nil, nil
	}
	return in, nil
}

// PinConference returns the recorderId of the instance the conference is
// pinned to (recorder.Remote), pinning it to the least-loaded instance with
// room (this one when none has) when it is not pinned to a live one.
func (n *Node) PinConference(ctx context.Context, organizationID, conferenceID string) (string, error) {
	prefer := n.opts.RecorderID
	if ids, err := n.Place(ctx); err == nil && len(ids) > 0 {
		prefer = ids[0]
	}
	in, err := n.Pin(ctx, organizationID, conferenceID, prefer)
	if err != nil {
		return "", err
	}
	return in.RecorderID, nil
}

// UnpinConference deletes the conference's pin (recorder.Remote) if this
// instance holds it and no recording of the conference is in one of the
// unfinished states: its recordings ended.
func (n *Node) UnpinConference(ctx context.Context, organizationID, conferenceID string, unfinished []string) error {
	ok, err := n.opts.Store.UnpinConference(ctx, organizationID, conferenceID, n.opts.RecorderID, unfinished...)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	if ok {
		n.opts.Logger.Info("cluster: conference unpinned: its recordings ended", "conferenceId", conferenceID)
	}
	return nil
}

// PinHere pins the conference to this instance (recorder.Remote), moving the
// pin from the instance from, which died: its publishers reconnect here.
func (n *Node) PinHere(ctx context.Context, organizationID, conferenceID, from string) error {
	p, err := n.opts.Store.PinConference(ctx, organizationID, conferenceID, n.opts.RecorderID)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	if p.RecorderID == n.opts.RecorderID {
		return nil
	}
	if p.RecorderID != from {
		return fmt.Errorf("cluster: conference %s is pinned to %s, not %s", conferenceID, p.RecorderID, from)
	}
	if _, err := n.opts.Store.RepinConference(ctx, organizationID, conferenceID, from, n.opts.RecorderID); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	return nil
}

// Orphans is what takes over a dead instance's recordings
// (recorder.Manager.TakeOverOrphans).
type Orphans interface {
	TakeOverOrphans(ctx context.Context, alive func(recorderID string) bool) ([]string, error)
}

// Watch looks, every heartbeat until Close, for unfinished recordings whose
// owner stopped heart-beating (dead after DeadAfter) and has m take them
// over: within DeadAfter plus a heartbeat of the owner's last heartbeat.
func (n *Node) Watch(m Orphans) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		t := time.NewTicker(n.opts.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-n.stop:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			n.watchOnce(ctx, m)
			cancel()
		}
	}()
}

func (n *Node) watchOnce(ctx context.Context, m Orphans) {
	all, err := n.opts.Store.Instances(ctx)
	if err != nil {
		n.opts.Logger.Warn("cluster: takeover: cannot read the fleet", "err", err)
		return
	}
	alive := map[string]bool{n.opts.RecorderID: true}
	for _, in := range all {
		if n.Alive(in) {
			alive[in.RecorderID] = true
		}
	}
	took, err := m.TakeOverOrphans(ctx, func(id string) bool { return alive[id] })
	if err != nil {
		n.opts.Logger.Warn("cluster: takeover failed", "err", err)
	}
	for _, id := range took {
		n.opts.Logger.Info("cluster: took over a recording of a dead instance", "instanceId", id)
	}
}
