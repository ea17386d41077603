package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/rtcrec/recorder/recorder/store"
)

// session returns the running session of instanceID, or nil.
func (m *Manager) session(instanceID string) *Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.active[instanceID]
}

// Get returns the recording (conversationID, recorderID, instanceID) of
// organizationID, or ErrNotFound; the three ids must all match.
func (m *Manager) Get(ctx context.Context, organizationID, conversationID, recorderID, instanceID string) (*Recording, error) {
	r, err := m.get(ctx, organizationID, conversationID, recorderID, instanceID)
	if err != nil {
		return nil, err
	}
	return m.filled(ctx, r)
}

// get is Get without the Attachments.
func (m *Manager) get(ctx context.Context, organizationID, conversationID, recorderID, instanceID string) (*Recording, error) {
	for _, f := range []struct{ name, v string }{
		{"conversationId", conversationID}, {"recorderId", recorderID}, {"instanceId", instanceID},
	} {
		if err := ValidateID(f.name, f.v); err != nil {
			return nil, err
		}
	}
	var r *Recording
	if s := m.session(instanceID); s != nil {
		r = s.Snapshot()
	} else {
		sr, err := m.store.Get(ctx, organizationID, instanceID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, err
		}
		if r, err = decode(sr); err != nil {
			return nil, err
		}
	}
	if r.OrganizationID != organizationID || r.ConversationID != conversationID || r.RecorderID != recorderID {
		return nil, ErrNotFound
	}
	return r, nil
}

// Lookup returns a recording by its ids for any organization: for signed
// attachment URLs, whose signature already proves the right to read.
func (m *Manager) Lookup(ctx context.Context, conversationID, recorderID, instanceID string) (*Recording, error) {
	for _, id := range []string{conversationID, recorderID, instanceID} {
		if err := ValidateID("id", id); err != nil {
			return nil, err
		}
	}
	sr, err := m.store.Lookup(ctx, instanceID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return m.Get(ctx, sr.OrganizationID, conversationID, recorderID, instanceID)
}

// Conversation returns the recordings of a conversation, oldest first; none is
// ErrNotFound.
func (m *Manager) Conversation(ctx context.Context, organizationID, conversationID string) ([]*Recording, error) {
	if err := ValidateID("conversationId", conversationID); err != nil {
		return nil, err
	}
	srs, err := m.store.Conversation(ctx, organizationID, conversationID)
	if err != nil {
		return nil, err
	}
	if len(srs) == 0 {
		return nil, ErrNotFound
	}
	out := make([]*Recording, 0, len(srs))
	for _, sr := range srs {
		if s := m.session(sr.InstanceID); s != nil {
			out = append(out, s.Snapshot())
			continue
		}
		r, err := decode(sr)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := m.withEntries(ctx, out...); err != nil {
		return nil, err
	}
	return out, nil
}

// Active returns the newest ACTIVE recording of a conversation, or ErrNotFound.
func (m *Manager) Active(ctx context.Context, organizationID, conversationID string) (*Recording, error) {
	rs, err := m.Conversation(ctx, organizationID, conversationID)
	if err != nil {
		return nil, err
	}
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i].State == StateActive {
			return rs[i], nil
		}
	}
	return nil, errorf(KindNotFound, "no_active_recording", "conversation %s has no active recording", conversationID)
}

// ActiveCount returns the number of recordings running now.
func (m *Manager) ActiveCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.active)
}

// modify applies fn to a recording, running or stored, and persists it. A
// recording that is finishing (files being uploaded) is waited for first, so
// fn sees it final. fn's error aborts the change.
func (m *Manager) modify(ctx context.Context, org, conv, rid, iid string, fn func(r *Recording) error) (*Recording, error) {
	if _, err := m.get(ctx, org, conv, rid, iid); err != nil {
		return nil, err
	}
	if s := m.session(iid); s != nil {
		s.mu.Lock()
		if !s.stopping {
			defer s.mu.Unlock()
			c := s.rec.clone()
			if err := fn(c); err != nil {
				return nil, err
			}
			if err := s.commitLocked(ctx, func(r *Recording) { *r = *c }); err != nil {
				return nil, err
			}
			return s.rec.clone(), nil
		}
		s.mu.Unlock()
		select {
		case <-s.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	m.lc.storedMu.Lock()
	defer m.lc.storedMu.Unlock()
	old, r, err := m.modifyStored(ctx, org, iid, fn)
	if err != nil {
		return nil, err
	}
	m.changed(old, r)
	return r, nil
}

// modifyStored applies fn to the stored recording iid of org (every
// organization's when org is empty) and stores it, in one store
// transaction that holds the recording: another instance of the fleet
// changing it at the same time (a composition instance, the instance that
// made it recording a late upload) waits, and then sees this change. It
// returns the recording before and after fn.
func (m *Manager) modifyStored(ctx context.Context, org, iid string, fn func(r *Recording) error) (old, r *Recording, err error) {
	err = m.store.Modify(ctx, iid, func(sr *store.Record) error {
		if org != "" && sr.OrganizationID != org {
			return ErrNotFound
		}
		if r, err = decode(sr); err != nil {
			return err
		}
		old = r.clone() // before fn: changed publishes what fn changed
		if err := fn(r); err != nil {
			return err
		}
		r.Updated = m.now()
		data, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("recorder: marshal %s: %w", r.InstanceID, err)
		}
		sr.State, sr.Data = string(r.State), data
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, ErrNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	return old, r, nil
}

// sessions returns the running sessions of org (of conference conf, unless empty).
func (m *Manager) sessions(org, conf string) []*Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Session
	for _, s := range m.active {
		s.mu.Lock()
		ok := s.rec.OrganizationID == org && (conf == "" || s.rec.ConferenceID == conf)
		s.mu.Unlock()
		if ok {
			out = append(out, s)
		}
	}
	return out
}
