package recorder

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/recorder/store"
)

// Metadata bounds (seed 003's CallMetadata is a string map).
const (
	MaxMetadataEntries = 64
	MaxMetadataKey     = 128
	MaxMetadataValue   = 4096
)

// validMetadata checks the bounds of a metadata map.
func validMetadata(md map[string]string) error {
	if len(md) > MaxMetadataEntries {
		return errorf(KindInvalid, "invalid_field", "metadata: at most %d entries", MaxMetadataEntries)
	}
	for k, v := range md {
		if k == "" || len(k) > MaxMetadataKey || len(v) > MaxMetadataValue {
			return errorf(KindInvalid, "invalid_field", "metadata: keys of 1 to %d bytes and values up to %d bytes", MaxMetadataKey, MaxMetadataValue)
		}
	}
	return nil
}

// UpdateMetadata merges md into the metadata of an ACTIVE recording (seed
// 003's UpdateForAgent): keys in md replace existing ones, an empty value
// removes a key. The merged map is bounded like a start request's; it goes
// into manifest.json and the metadata of every uploaded object. A recording
// that is not ACTIVE is a conflict.
func (m *Manager) UpdateMetadata(ctx context.Context, organizationID, conversationID, recorderID, instanceID string, md map[string]string) (*Recording, error) {
	if err := validMetadata(md); err != nil {
		return nil, err
	}
	if r, ok, err := m.forward(ctx, &Command{Op: OpMetadata, OrganizationID: organizationID, ConversationID: conversationID,
		RecorderID: recorderID, InstanceID: instanceID, Metadata: md}); ok {
		return r, err
	}
	if _, err := m.Get(ctx, organizationID, conversationID, recorderID, instanceID); err != nil {
		return nil, err
	}
	s := m.session(instanceID)
	if s == nil {
		return nil, errorf(KindConflict, "not_active", "recording %s is not active", instanceID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping || s.rec.State != StateActive {
		return nil, errorf(KindConflict, "not_active", "recording %s is not active", instanceID)
	}
	merged := map[string]string{}
	for k, v := range s.rec.Metadata {
		merged[k] = v
	}
	for k, v := range md {
		if v == "" {
			delete(merged, k)
		} else {
			merged[k] = v
		}
	}
	if err := validMetadata(merged); err != nil {
		return nil, err
	}
	if err := s.commitLocked(ctx, func(r *Recording) { r.Metadata = merged }); err != nil {
		return nil, err
	}
	return s.rec.clone(), nil
}

// modify applies fn to a recording, running or stored, and persists it. A
// recording that is finishing (files being uploaded) is waited for first, so
// fn sees it final. fn's error aborts the change.
func (m *Manager) modify(ctx context.Context, org, conv, rid, iid string, fn func(r *Recording) error) (*Recording, error) {
	if _, err := m.Get(ctx, org, conv, rid, iid); err != nil {
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
	sr, err := m.store.Get(ctx, org, iid)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	r, err := decode(sr)
	if err != nil {
		return nil, err
	}
	old := r.clone() // before fn: changed publishes what fn changed
	if err := fn(r); err != nil {
		return nil, err
	}
	r.Updated = m.now()
	if err := m.put(ctx, r); err != nil {
		return nil, err
	}
	m.changed(old, r)
	return r, nil
}

// addLifecycle adds pauses, blackouts, chat and cobrowse files to a manifest.
func addLifecycle(man *composition.Manifest, rec *Recording) {
	man.PauseBehavior = rec.PauseBehavior
	rel := func(t time.Time) float64 {
		if t.IsZero() {
			t = rec.Stopped
		}
		return t.Sub(rec.Started).Seconds()
	}
	for _, p := range rec.Pauses {
		a, b := p.MixStart.Seconds(), p.MixEnd.Seconds()
		end := p.End
		if end.IsZero() {
			end = rec.Stopped
		}
		man.Pauses = append(man.Pauses, composition.Interval{Start: rel(p.Start), End: rel(p.End),
			MixStart: &a, MixEnd: &b, StartTime: p.Start, EndTime: end})
	}
	for _, b := range rec.Blackouts {
		end := b.End
		if end.IsZero() {
			end = rec.Stopped
		}
		man.Blackouts = append(man.Blackouts, composition.Interval{Start: rel(b.Start), End: rel(b.End),
			UserID: b.UserID, StartTime: b.Start, EndTime: end})
	}
	if len(rec.Chat) > 0 {
		man.Chat = &composition.Attachment{File: ChatFile, Entries: len(rec.Chat)}
	}
	for _, id := range cobrowseSessions(rec) {
		n := 0
		for _, e := range rec.Cobrowse {
			if e.SessionID == id {
				n++
			}
		}
		man.Cobrowse = append(man.Cobrowse, composition.Attachment{File: CobrowseFile(id), SessionID: id, Entries: n})
	}
}

// cobrowseSessions returns the cobrowse session ids of rec, sorted.
func cobrowseSessions(rec *Recording) []string {
	seen := map[string]bool{}
	var ids []string
	for _, e := range rec.Cobrowse {
		if !seen[e.SessionID] {
			seen[e.SessionID] = true
			ids = append(ids, e.SessionID)
		}
	}
	sort.Strings(ids)
	return ids
}
