package recorder

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Remote runs commands on recordings that another instance of a fleet runs
// (package cluster implements it). Forward must return the recording as the
// owner answered, and the owner's *Error unchanged, so that a forwarded
// command reads exactly like a local one; an owner that cannot be reached is
// a KindUnavailable error.
//
// Broadcast hands cmd to every other instance, which runs it with Run
// (fleet-wide blackouts); it must not block on them.
//
// Place lists the live instances that take a new recording (not draining,
// below their capacity), least loaded first; LoadChanged tells the fleet at
// once that this instance's load changed (a heartbeat now), so that the next
// placement sees it. PinConference returns the instance a WHIP conference is
// pinned to (its publishers are sent there), pinning it first if need be.
type Remote interface {
	Forward(ctx context.Context, owner string, cmd *Command) (*Recording, error)
	Broadcast(ctx context.Context, cmd *Command) error
	Place(ctx context.Context) ([]string, error)
	LoadChanged(ctx context.Context)
	PinConference(ctx context.Context, organizationID, conferenceID string) (string, error)
	// PinHere pins the conference to this instance, moving the pin from
	// the instance from (a takeover).
	PinHere(ctx context.Context, organizationID, conferenceID, from string) error
	// UnpinConference deletes the conference's pin if this instance holds
	// it and none of its recordings is in an unfinished state.
	UnpinConference(ctx context.Context, organizationID, conferenceID string, unfinished []string) error
	// AcquireQuota takes a place (id) in the organization's fleet-wide
	// quota of kind, if it holds fewer than limit; until is when the place
	// lapses, zero: while this instance lives (renewed with its heartbeats).
	// ReleaseQuota gives it back.
	AcquireQuota(ctx context.Context, organizationID, kind, id string, limit int, until time.Time) (bool, error)
	ReleaseQuota(ctx context.Context, organizationID, kind, id string)
}

// The operations of a Command.
const (
	OpStop     = "stop"
	OpPause    = "pause"
	OpResume   = "resume"
	OpMetadata = "metadata"
	OpChat     = "chat"
	OpCobrowse = "cobrowse"
	OpStart    = "start" // a start placed on this instance
	// Broadcast to every instance:
	OpBlackoutStart = "blackout.start"
	OpBlackoutStop  = "blackout.stop"
)

// Command is one command on one recording, as forwarded between instances.
type Command struct {
	Op             string            `json:"op"`
	OrganizationID string            `json:"organizationId"`
	ConversationID string            `json:"conversationId"`
	RecorderID     string            `json:"recorderId"`
	InstanceID     string            `json:"instanceId"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	Chat           []ChatEntry       `json:"chat,omitempty"`
	Cobrowse       *CobrowseEvent    `json:"cobrowse,omitempty"`
	Blackout       *BlackoutRequest  `json:"blackout,omitempty"`
	Start          *StartRequest     `json:"start,omitempty"`
}

type localOnlyKey struct{}

// Run runs cmd on this instance and never forwards it again: the receiving
// end of Remote.Forward.
func (m *Manager) Run(ctx context.Context, cmd *Command) (*Recording, error) {
	ctx = context.WithValue(ctx, localOnlyKey{}, true)
	c := cmd
	switch c.Op {
	case OpStart:
		if c.Start == nil {
			return nil, errorf(KindInvalid, "missing_field", "a start command needs its request")
		}
		return m.Start(ctx, c.OrganizationID, *c.Start)
	case OpStop:
		return m.Stop(ctx, c.OrganizationID, c.ConversationID, c.RecorderID, c.InstanceID)
	case OpPause:
		return m.Pause(ctx, c.OrganizationID, c.ConversationID, c.RecorderID, c.InstanceID)
	case OpResume:
		return m.Resume(ctx, c.OrganizationID, c.ConversationID, c.RecorderID, c.InstanceID)
	case OpMetadata:
		return m.UpdateMetadata(ctx, c.OrganizationID, c.ConversationID, c.RecorderID, c.InstanceID, c.Metadata)
	case OpChat:
		return m.AddChat(ctx, c.OrganizationID, c.ConversationID, c.RecorderID, c.InstanceID, c.Chat)
	case OpCobrowse:
		if c.Cobrowse == nil {
			return nil, errorf(KindInvalid, "missing_field", "a cobrowse command needs its event")
		}
		return m.AddCobrowse(ctx, c.OrganizationID, c.ConversationID, c.RecorderID, c.InstanceID, *c.Cobrowse)
	case OpBlackoutStart, OpBlackoutStop:
		if c.Blackout == nil {
			return nil, errorf(KindInvalid, "missing_field", "a blackout command needs its request")
		}
		var err error
		if c.Op == OpBlackoutStart {
			_, err = m.StartBlackout(ctx, c.OrganizationID, *c.Blackout)
		} else {
			_, err = m.StopBlackout(ctx, c.OrganizationID, *c.Blackout)
		}
		return nil, err
	}
	return nil, errorf(KindInvalid, "unknown_command", "unknown command %q", c.Op)
}

// forward runs cmd on the instance that runs its recording, when that is
// another instance of the fleet: it reports whether it did. A recording that
// is final, or runs here, or a Manager without a Remote, is handled locally.
func (m *Manager) forward(ctx context.Context, cmd *Command) (*Recording, bool, error) {
	if m.remote == nil || ctx.Value(localOnlyKey{}) != nil || m.session(cmd.InstanceID) != nil {
		return nil, false, nil
	}
	r, err := m.get(ctx, cmd.OrganizationID, cmd.ConversationID, cmd.RecorderID, cmd.InstanceID)
	if err != nil {
		return nil, true, err
	}
	owner := r.Owner
	if owner == "" {
		owner = r.RecorderID
	}
	if r.State.Final() || owner == m.recorderID {
		return nil, false, nil
	}
	rec, err := m.remote.Forward(ctx, owner, cmd)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			err = &Error{Kind: KindUnavailable, Reason: "owner_unreachable",
				Message: fmt.Sprintf("recording %s runs on recorder %s, which cannot be reached", cmd.InstanceID, owner), Err: err}
		}
	}
	return rec, true, err
}

// broadcast hands a blackout change made here to the other instances of the
// fleet (a change that came from another instance is not sent on).
func (m *Manager) broadcast(ctx context.Context, cmd *Command) {
	if m.remote == nil || ctx.Value(localOnlyKey{}) != nil {
		return
	}
	if err := m.remote.Broadcast(ctx, cmd); err != nil {
		m.log.Error("cannot tell the fleet", "op", cmd.Op, "err", err)
	}
}

// fromFleet reports whether ctx carries a command another instance sent.
func fromFleet(ctx context.Context) bool { return ctx.Value(localOnlyKey{}) != nil }

// retryFull is the Retry-After of a start refused because the fleet (or
// this instance) is full: about when a heartbeat shows a recording ended.
const retryFull = 5 * time.Second

// fullError is the error of a start no instance has room for.
func fullError(what string) *Error {
	return &Error{Kind: KindUnavailable, Reason: "no_capacity", RetryAfter: retryFull,
		Message: what + " has no room for another recording; retry later"}
}

// place runs a start of a dial-out conference on the least-loaded instance
// of the fleet that has room: it reports whether it did (false: start it
// here). An instance that turns out full or draining is passed over for the
// next; when none is left the start is refused with 503 and Retry-After.
func (m *Manager) place(ctx context.Context, organizationID string, req StartRequest) (*Recording, bool, error) {
	if m.remote == nil || fromFleet(ctx) {
		return nil, false, nil
	}
	candidates, err := m.remote.Place(ctx)
	if err != nil {
		m.log.Warn("placement: cannot read the fleet; starting here", "err", err)
		return nil, false, nil
	}
	for _, id := range candidates {
		if id == m.recorderID {
			return nil, false, nil
		}
		rec, err := m.remote.Forward(ctx, id, &Command{Op: OpStart, OrganizationID: organizationID, Start: &req})
		var e *Error
		if err == nil || errors.As(err, &e) && e.Reason != "no_capacity" && e.Reason != "shutting_down" {
			return rec, true, err
		}
		m.log.Info("placement: instance passed over", "recorderId", id, "err", err)
	}
	return nil, true, fullError("the fleet")
}

// pinned runs a start of a WHIP conference on the instance the conference is
// pinned to (where its publishers are): it reports whether it did (false:
// the conference is pinned here, start it here).
func (m *Manager) pinned(ctx context.Context, organizationID string, req StartRequest) (*Recording, bool, error) {
	if m.remote == nil || fromFleet(ctx) {
		return nil, false, nil
	}
	owner, err := m.remote.PinConference(ctx, organizationID, req.ConferenceID)
	if err != nil {
		m.log.Warn("placement: cannot pin the conference; starting here", "conferenceId", req.ConferenceID, "err", err)
		return nil, false, nil
	}
	if owner == m.recorderID {
		return nil, false, nil
	}
	rec, err := m.remote.Forward(ctx, owner, &Command{Op: OpStart, OrganizationID: organizationID, Start: &req})
	var e *Error
	if err != nil && !errors.As(err, &e) {
		err = &Error{Kind: KindUnavailable, Reason: "owner_unreachable",
			Message: fmt.Sprintf("conference %s is recorded on recorder %s, which cannot be reached", req.ConferenceID, owner), Err: err}
	}
	return rec, true, err
}
