package cluster

import (
	"context"
	"errors"
	"fmt"

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
