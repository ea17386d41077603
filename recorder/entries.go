package recorder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/rtcrec/recorder/recorder/store"
)

// The chat and cobrowse entries of recordings as rows of the store's
// recording_entries table (transcript.go has the adds and the files).

// The kinds of entries in the table.
const (
	kindChat     = "chat"
	kindCobrowse = "cobrowse"
)

// limitsOf returns the limits of a recording's entries of kind.
func limitsOf(kind string) store.EntryLimits {
	if kind == kindChat {
		return store.EntryLimits{Bytes: MaxChatBytes, Entries: MaxChatEntries}
	}
	return store.EntryLimits{Bytes: MaxCobrowseBytes, Entries: MaxCobrowseEvents, Sessions: MaxCobrowseSessions}
}

// tooLarge is the refusal of an add past the limits of kind.
func tooLarge(kind string) error {
	if kind == kindChat {
		return errorf(KindTooLarge, "too_large", "the chat transcript of a recording is limited to %d entries and %d bytes", MaxChatEntries, MaxChatBytes)
	}
	return errorf(KindTooLarge, "too_large", "the cobrowse events of a recording are limited to %d events in %d sessions and %d bytes",
		MaxCobrowseEvents, MaxCobrowseSessions, MaxCobrowseBytes)
}

// chatRow is the row of a chat entry: its JSON (time in UTC), keyed by a
// hash of it (an exact duplicate has the same key), sorted by its time.
func chatRow(e ChatEntry, added time.Time) (store.Entry, error) {
	e.TimeStamp = e.TimeStamp.UTC()
	data, err := json.Marshal(e)
	if err != nil {
		return store.Entry{}, err
	}
	sum := sha256.Sum256(data)
	return store.Entry{Key: hex.EncodeToString(sum[:16]), SortKey: sortNanos(e.TimeStamp), Data: data, Added: added}, nil
}

// cobrowseRow is the row of a cobrowse event: keyed by its sequenceId
// within its session (an event whose sequenceId is known is a duplicate),
// sorted by it.
func cobrowseRow(e CobrowseEvent, added time.Time) (store.Entry, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return store.Entry{}, err
	}
	return store.Entry{SessionID: e.SessionID, Key: strconv.FormatInt(int64(e.SequenceID), 10), SortKey: int64(e.SequenceID),
		Data: data, Added: added}, nil
}

// The times Unix nanoseconds can hold.
var (
	minNanos = time.Unix(0, math.MinInt64)
	maxNanos = time.Unix(0, math.MaxInt64)
)

// sortNanos is t in Unix nanoseconds, clamped to what an int64 holds (a
// time before 1678 or after 2262 sorts first or last; readTranscript puts
// such entries in their place).
func sortNanos(t time.Time) int64 {
	switch {
	case t.Before(minNanos):
		return math.MinInt64
	case t.After(maxNanos):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// EntrySummary summarises a recording's chat and cobrowse entries.
type EntrySummary struct {
	ChatEntries int
	ChatFirst   time.Time         // the earliest entry's timeStamp
	Cobrowse    []CobrowseSession // by session id
	LastAdded   time.Time         // when the latest entry was added
}

// CobrowseSession is one cobrowse session of a recording.
type CobrowseSession struct {
	ID     string
	Events int
}

// transcript is the chat and cobrowse entries of a recording, in the order
// of their files.
type transcript struct {
	chat      []ChatEntry     // by timeStamp, then as added
	cobrowse  []CobrowseEvent // by sessionId, then sequenceId
	lastAdded time.Time
}

// readTranscript reads the entries of rec: its rows and the entries its
// document still holds from a version before the table.
func (m *Manager) readTranscript(ctx context.Context, rec *Recording) (*transcript, error) {
	t := &transcript{}
	seen := map[string]bool{}
	for _, e := range rec.LegacyChat {
		if row, err := chatRow(e, time.Time{}); err == nil && !seen[row.Key] {
			seen[row.Key] = true
			t.chat = append(t.chat, e)
		}
	}
	rows, err := m.store.Entries(ctx, rec.InstanceID, kindChat)
	if err != nil {
		return nil, err
	}
	for _, row := range rows {
		var e ChatEntry
		if err := json.Unmarshal(row.Data, &e); err != nil {
			return nil, fmt.Errorf("recorder: chat entry of %s: %w", rec.InstanceID, err)
		}
		if !seen[row.Key] {
			seen[row.Key] = true
			t.chat = append(t.chat, e)
		}
		t.lastAdded = later(t.lastAdded, row.Added)
	}
	sort.SliceStable(t.chat, func(i, j int) bool { return t.chat[i].TimeStamp.Before(t.chat[j].TimeStamp) })

	type id struct {
		session string
		seq     int32
	}
	seenEv := map[id]bool{}
	for _, e := range rec.LegacyCobrowse {
		if !seenEv[id{e.SessionID, e.SequenceID}] {
			seenEv[id{e.SessionID, e.SequenceID}] = true
			t.cobrowse = append(t.cobrowse, e)
		}
	}
	if rows, err = m.store.Entries(ctx, rec.InstanceID, kindCobrowse); err != nil {
		return nil, err
	}
	for _, row := range rows {
		var e CobrowseEvent
		if err := json.Unmarshal(row.Data, &e); err != nil {
			return nil, fmt.Errorf("recorder: cobrowse event of %s: %w", rec.InstanceID, err)
		}
		if !seenEv[id{e.SessionID, e.SequenceID}] {
			seenEv[id{e.SessionID, e.SequenceID}] = true
			t.cobrowse = append(t.cobrowse, e)
		}
		t.lastAdded = later(t.lastAdded, row.Added)
	}
	sort.SliceStable(t.cobrowse, func(i, j int) bool {
		a, b := t.cobrowse[i], t.cobrowse[j]
		if a.SessionID != b.SessionID {
			return a.SessionID < b.SessionID
		}
		return a.SequenceID < b.SequenceID
	})
	return t, nil
}

// Transcript returns the chat entries and cobrowse events of rec as its
// files list them.
func (m *Manager) Transcript(ctx context.Context, rec *Recording) ([]ChatEntry, []CobrowseEvent, error) {
	t, err := m.readTranscript(ctx, rec)
	if err != nil {
		return nil, nil, err
	}
	return t.chat, t.cobrowse, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// summary summarises t.
func (t *transcript) summary() EntrySummary {
	a := EntrySummary{ChatEntries: len(t.chat), LastAdded: t.lastAdded}
	if len(t.chat) > 0 {
		a.ChatFirst = t.chat[0].TimeStamp
	}
	for _, e := range t.cobrowse {
		if n := len(a.Cobrowse); n == 0 || a.Cobrowse[n-1].ID != e.SessionID {
			a.Cobrowse = append(a.Cobrowse, CobrowseSession{ID: e.SessionID})
		}
		a.Cobrowse[len(a.Cobrowse)-1].Events++
	}
	return a
}

// counts is the number of entries in each of t's files.
func (t *transcript) counts() []int {
	a := t.summary()
	out := []int{a.ChatEntries}
	for _, c := range a.Cobrowse {
		out = append(out, c.Events)
	}
	return out
}

// withEntries fills the Entries of recs from the store (one query),
// and moves each one's Updated to its latest entry when that is later.
func (m *Manager) withEntries(ctx context.Context, recs ...*Recording) error {
	ids := make([]string, 0, len(recs))
	for _, r := range recs {
		ids = append(ids, r.InstanceID)
	}
	groups, err := m.store.EntryGroups(ctx, ids...)
	if err != nil {
		return err
	}
	byID := map[string][]store.EntryGroup{}
	for _, g := range groups {
		byID[g.InstanceID] = append(byID[g.InstanceID], g)
	}
	for _, r := range recs {
		if len(r.LegacyChat)+len(r.LegacyCobrowse) > 0 {
			t, err := m.readTranscript(ctx, r) // merges the document's entries
			if err != nil {
				return err
			}
			r.Entries = t.summary()
		} else {
			r.Entries = summaryOf(byID[r.InstanceID])
		}
		r.Updated = later(r.Updated, r.Entries.LastAdded)
	}
	return nil
}

// filled is rec with its Entries filled (withEntries).
func (m *Manager) filled(ctx context.Context, rec *Recording) (*Recording, error) {
	if err := m.withEntries(ctx, rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// summaryOf summarises the entry groups of one recording.
func summaryOf(groups []store.EntryGroup) EntrySummary {
	var a EntrySummary
	for _, g := range groups {
		a.LastAdded = later(a.LastAdded, g.LastAdded)
		if g.Kind == kindChat {
			a.ChatEntries += g.Count
			a.ChatFirst = time.Unix(0, g.FirstSortKey).UTC()
			continue
		}
		a.Cobrowse = append(a.Cobrowse, CobrowseSession{ID: g.SessionID, Events: g.Count})
	}
	return a
}

// keyedLocks are mutexes by key, made when first locked and dropped when
// the last holder unlocks.
type keyedLocks struct {
	mu sync.Mutex
	m  map[string]*keyedLock
}

type keyedLock struct {
	sync.Mutex
	users int
}

// lock locks key and returns its unlock.
func (k *keyedLocks) lock(key string) func() {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyedLock{}
		k.m[key] = l
	}
	l.users++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		if l.users--; l.users == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
