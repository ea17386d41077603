package recorder

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/rtcrec/recorder/recorder/store"
	"github.com/rtcrec/recorder/storage"
)

// The telephony view (seed 001) looks at recordings by instanceId alone, lists
// them in pages and deletes them softly.

// ByID returns the recording instanceID of organizationID, or ErrNotFound.
func (m *Manager) ByID(ctx context.Context, organizationID, instanceID string) (*Recording, error) {
	if err := ValidateID("id", instanceID); err != nil {
		return nil, errorf(KindNotFound, "not_found", "recording not found")
	}
	if s := m.session(instanceID); s != nil {
		if r := s.Snapshot(); r.OrganizationID == organizationID {
			return m.filled(ctx, r)
		}
		return nil, ErrNotFound
	}
	sr, err := m.store.Get(ctx, organizationID, instanceID)
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
	return m.filled(ctx, r)
}

// Finishing reports whether the recording instanceID is stopping: its
// session still runs but no longer records (files are being written and
// uploaded), or it is being recovered.
func (m *Manager) Finishing(instanceID string) bool {
	s := m.session(instanceID)
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopping
}

// Page is one page of a listing.
type Page struct {
	Recordings []*Recording
	Next       string // token of the next page; empty on the last
}

// List returns up to limit recordings of organizationID that keep, newest
// first, after the page token of a previous call ("" for the first page).
func (m *Manager) List(ctx context.Context, organizationID string, limit int, token string, keep func(*Recording) bool) (*Page, error) {
	page, err := m.list(ctx, organizationID, limit, token, keep)
	if err != nil {
		return nil, err
	}
	if err := m.withEntries(ctx, page.Recordings...); err != nil {
		return nil, err
	}
	return page, nil
}

func (m *Manager) list(ctx context.Context, organizationID string, limit int, token string, keep func(*Recording) bool) (*Page, error) {
	var before int64
	var beforeID string
	if token != "" {
		a, b, ok := strings.Cut(token, "_")
		n, err := strconv.ParseInt(a, 10, 64)
		if !ok || err != nil || n <= 0 || ValidateID("page_token", b) != nil {
			return nil, errorf(KindInvalid, "invalid_field", "page_token is not a token this recorder returned")
		}
		before, beforeID = n, b
	}
	page := &Page{Recordings: []*Recording{}}
	for len(page.Recordings) < limit {
		srs, err := m.store.List(ctx, organizationID, before, beforeID, 100)
		if err != nil {
			return nil, err
		}
		for _, sr := range srs {
			before, beforeID = sr.Started.UnixNano(), sr.InstanceID
			r, err := decode(sr)
			if err != nil {
				return nil, err
			}
			if s := m.session(sr.InstanceID); s != nil {
				r = s.Snapshot()
			}
			if keep != nil && !keep(r) {
				continue
			}
			page.Recordings = append(page.Recordings, r)
			if len(page.Recordings) == limit {
				page.Next = fmt.Sprintf("%d_%s", before, beforeID)
				return page, nil
			}
		}
		if len(srs) < 100 {
			break
		}
	}
	return page, nil
}

// Delete deletes a finished recording softly: every object it uploaded is
// removed from storage and Deleted is set; the record stays, so reads show it
// deleted. Deleting a deleted recording returns it as it is; a recording
// that still runs is a conflict.
func (m *Manager) Delete(ctx context.Context, organizationID, instanceID string) (*Recording, error) {
	r, err := m.ByID(ctx, organizationID, instanceID)
	if err != nil {
		return nil, err
	}
	if !r.Deleted.IsZero() {
		return r, nil
	}
	if m.session(instanceID) != nil || !r.State.Final() {
		return nil, errorf(KindConflict, "not_final", "recording %s is still running; stop it first", instanceID)
	}
	bucket, err := m.Bucket(ctx, r.ApplicationID)
	if err != nil {
		return nil, err
	}
	for _, key := range objectKeys(r) {
		if err := bucket.Delete(ctx, key); err != nil && storage.Code(err) != storage.NotFound {
			return nil, &Error{Kind: KindUnavailable, Reason: "storage_unavailable", Message: "cannot delete " + key, Err: err}
		}
	}
	// Parts left by an interrupted upload or a recording without media.
	if err := m.deleteAllParts(ctx, r); err != nil {
		return nil, &Error{Kind: KindUnavailable, Reason: "storage_unavailable", Message: "cannot delete the recording's parts", Err: err}
	}
	now := m.now()
	return m.modify(ctx, organizationID, r.ConversationID, r.RecorderID, instanceID, func(r *Recording) error {
		r.Deleted = now
		return nil
	})
}

// objectKeys returns the keys of every object uploaded for r.
func objectKeys(r *Recording) []string {
	var keys []string
	add := func(o *ObjectFile) {
		if o != nil && o.Key != "" && o.Error == nil {
			keys = append(keys, o.Key)
		}
	}
	for _, st := range r.Streams {
		for _, t := range st.Tracks {
			add(t.Object)
		}
	}
	if c := r.Composition; c != nil {
		for _, o := range c.Outputs {
			add(o.Object)
		}
		add(c.Manifest)
	}
	for _, o := range r.Uploads {
		add(o)
	}
	return keys
}

// Running returns the running (ACTIVE, not stopping) recordings of
// organizationID, oldest first: the participants view.
func (m *Manager) Running(organizationID string) []*Recording {
	var out []*Recording
	for _, s := range m.sessions(organizationID, "") {
		s.mu.Lock()
		if !s.stopping && s.rec.State == StateActive {
			out = append(out, s.rec.clone())
		}
		s.mu.Unlock()
	}
	sortByCreated(out)
	return out
}

func sortByCreated(rs []*Recording) {
	slices.SortFunc(rs, func(a, b *Recording) int { return a.Created.Compare(b.Created) })
}
