package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/rtcrec/recorder/recorder/store"
)

// Chat transcripts and cobrowse events (seed 004) belong to their recording
// but are not kept in its document: each entry is a row of the store's
// recording_entries table (entries.go), so an add inserts rows and never
// rewrites the recording. Entries are ordered and without duplicates, and
// bounded: the store counts and inserts in one transaction, so concurrent
// adds, on any instances, never take a recording past its limits. They are
// written as chat.json and cobrowse/{sessionId}/events.json beside the
// tracks and uploaded with the recording; when they arrive after the
// recording finished, the files are made again and uploaded at once.

// Bounds of the chat and cobrowse data of one recording: the bytes stored
// (every byte of every entry's row: its JSON, session id and key, see
// store.Entry.Size) and the number of entries, events and cobrowse sessions;
// beyond them an addition is refused with KindTooLarge (reason "too_large").
const (
	MaxChatBytes        = 256 << 10
	MaxChatEntries      = 4096
	MaxCobrowseBytes    = 1 << 20
	MaxCobrowseEvents   = 10000
	MaxCobrowseSessions = 64
)

// Attachment file names within a recording.
const ChatFile = "chat.json"

// CobrowseFile returns the relative file of a cobrowse session's events.
func CobrowseFile(sessionID string) string { return "cobrowse/" + sessionID + "/events.json" }

// ChatEntry is one line of a conversation's chat transcript (seed 004's
// ChatTranscriptEntry).
type ChatEntry struct {
	TimeStamp       time.Time `json:"timeStamp"`
	Transcript      string    `json:"transcript"`
	UserDisplayName string    `json:"userDisplayName,omitempty"`
	UserID          string    `json:"userId"`
}

// CobrowseEvent is one event of a cobrowse session (seed 004's CobrowseEvent).
type CobrowseEvent struct {
	Payload    string `json:"payload"`
	SequenceID int32  `json:"sequenceId"`
	SessionID  string `json:"sessionId"`
	Timestamp  int64  `json:"timestamp"`
}

// AddChat adds transcript entries to a recording: ordered by timeStamp,
// exact duplicates ignored. It returns the recording.
func (m *Manager) AddChat(ctx context.Context, organizationID, conversationID, recorderID, instanceID string, entries []ChatEntry) (*Recording, error) {
	for _, e := range entries {
		if e.UserID == "" || e.TimeStamp.IsZero() {
			return nil, errorf(KindInvalid, "missing_field", "chatTranscriptList entries need userId, timeStamp and transcript")
		}
		if err := ValidateUserID(e.UserID); err != nil {
			return nil, err
		}
	}
	if r, ok, err := m.forward(ctx, &Command{Op: OpChat, OrganizationID: organizationID, ConversationID: conversationID,
		RecorderID: recorderID, InstanceID: instanceID, Chat: entries}); ok {
		if err != nil {
			return nil, err
		}
		return m.filled(ctx, r) // the summary does not travel: the store has the entries
	}
	now := m.now()
	rows := make([]store.Entry, 0, len(entries))
	for _, e := range entries {
		row, err := chatRow(e, now)
		if err != nil {
			return nil, errorf(KindInvalid, "invalid_field", "a chatTranscriptList entry cannot be stored: %v", err)
		}
		rows = append(rows, row)
	}
	return m.addEntries(ctx, organizationID, conversationID, recorderID, instanceID, kindChat, rows, []string{ChatFile})
}

// AddCobrowse adds a cobrowse event: ordered by sequenceId within its
// session, an event whose (sessionId, sequenceId) is known is ignored.
func (m *Manager) AddCobrowse(ctx context.Context, organizationID, conversationID, recorderID, instanceID string, ev CobrowseEvent) (*Recording, error) {
	if err := ValidateID("sessionId", ev.SessionID); err != nil {
		return nil, err
	}
	if r, ok, err := m.forward(ctx, &Command{Op: OpCobrowse, OrganizationID: organizationID, ConversationID: conversationID,
		RecorderID: recorderID, InstanceID: instanceID, Cobrowse: &ev}); ok {
		if err != nil {
			return nil, err
		}
		return m.filled(ctx, r)
	}
	row, err := cobrowseRow(ev, m.now())
	if err != nil {
		return nil, errorf(KindInvalid, "invalid_field", "the cobrowse event cannot be stored: %v", err)
	}
	return m.addEntries(ctx, organizationID, conversationID, recorderID, instanceID, kindCobrowse, []store.Entry{row},
		[]string{CobrowseFile(ev.SessionID)})
}

// addEntries stores rows of kind for a recording within its limits and
// returns the recording. An add to a running recording is stored before its
// stop reads the entries for its files (the session's lock orders the two);
// once the recording is stopping, the add waits until it is final, and the
// files rels are then made again and uploaded.
func (m *Manager) addEntries(ctx context.Context, org, conv, rid, iid, kind string, rows []store.Entry, rels []string) (*Recording, error) {
	rec, err := m.get(ctx, org, conv, rid, iid)
	if err != nil {
		return nil, err
	}
	if len(rec.LegacyChat)+len(rec.LegacyCobrowse) > 0 {
		if rec, err = m.moveLegacyEntries(ctx, rec); err != nil {
			return nil, err
		}
	}
	add := func() error {
		_, err := m.store.AppendEntries(ctx, iid, kind, rows, limitsOf(kind))
		if errors.Is(err, store.ErrEntryLimit) {
			return tooLarge(kind)
		}
		return err
	}
	if s := m.session(iid); s != nil {
		s.mu.Lock()
		if !s.stopping {
			err := add()
			s.mu.Unlock()
			if err != nil {
				return nil, err
			}
			return m.filled(ctx, s.Snapshot())
		}
		s.mu.Unlock()
		select {
		case <-s.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err := add(); err != nil {
		return nil, err
	}
	if rec, err = m.get(ctx, org, conv, rid, iid); err != nil {
		return nil, err
	}
	if rec.State.Final() && rec.Deleted.IsZero() && m.session(iid) == nil {
		if rec, err = m.uploadTranscript(ctx, rec, rels); err != nil {
			return nil, err
		}
	}
	return m.filled(ctx, rec)
}

// moveLegacyEntries moves the entries rec's document holds (written by a
// version before the entries table) into the table, with no limit (they were
// accepted), and removes them from the document: once per recording.
func (m *Manager) moveLegacyEntries(ctx context.Context, rec *Recording) (*Recording, error) {
	return m.modify(ctx, rec.OrganizationID, rec.ConversationID, rec.RecorderID, rec.InstanceID, func(r *Recording) error {
		var chat, cobrowse []store.Entry
		for _, e := range r.LegacyChat {
			row, err := chatRow(e, r.Updated)
			if err != nil {
				return err
			}
			chat = append(chat, row)
		}
		for _, e := range r.LegacyCobrowse {
			row, err := cobrowseRow(e, r.Updated)
			if err != nil {
				return err
			}
			cobrowse = append(cobrowse, row)
		}
		for kind, rows := range map[string][]store.Entry{kindChat: chat, kindCobrowse: cobrowse} {
			if _, err := m.store.AppendEntries(ctx, r.InstanceID, kind, rows, store.EntryLimits{}); err != nil {
				return err
			}
		}
		r.LegacyChat, r.LegacyCobrowse = nil, nil
		return nil
	})
}

// attachFinal uploads the chat and cobrowse files of a stopping recording
// without media (which has no composition to carry them) before its final
// state is persisted, as compose does for one with media, and returns their
// objects for that commit. A crash before the commit leaves the recording
// to recovery; after it every upload is in the persisted queue, which
// resumes it at the next start (its outcome reaches the object through
// settle). A file whose upload could not be queued (its entries unreadable,
// the file unwritable) is not returned: uploadAttachments tries it again
// once the recording is final.
func (m *Manager) attachFinal(ctx context.Context, rec *Recording) map[string]*ObjectFile {
	t, err := m.readTranscript(ctx, rec)
	if err != nil {
		m.log.Error("cannot read the chat and cobrowse entries", "instanceId", rec.InstanceID, "err", err)
		return nil
	}
	objs := map[string]*ObjectFile{}
	for _, rel := range t.files() {
		data, err := t.file(rec.ConversationID, rel)
		if err == nil {
			objs[rel], err = m.uploadLate(ctx, rec, rel, data)
		}
		if objs[rel] == nil {
			delete(objs, rel)
			m.log.Error("cannot queue the upload of a chat or cobrowse file", "instanceId", rec.InstanceID, "file", rel, "err", err)
		}
	}
	return objs
}

// uploadAttachments uploads the chat and cobrowse files of a final recording
// that had no composition to carry them, those its stop did not (see
// attachFinal). The queue retries an upload that failed; what fails before
// its upload is queued (writing the file, reading the entries, storing the
// objects) is tried again, after 1 s, 2 s, … up to a minute apart, until it
// succeeds, the recording is gone or the recorder shuts down.
func (m *Manager) uploadAttachments(rec *Recording) {
	for wait := time.Second; ; wait = min(2*wait, time.Minute) {
		t, err := m.readTranscript(context.Background(), rec)
		if err == nil {
			var rels []string
			for _, rel := range t.files() {
				if rec.Uploads[rel] == nil {
					rels = append(rels, rel)
				}
			}
			if len(rels) == 0 {
				return
			}
			_, err = m.uploadTranscript(context.Background(), rec, rels)
		}
		if err == nil || KindOf(err) == KindNotFound {
			return
		}
		m.log.Error("cannot upload chat and cobrowse files; trying again", "instanceId", rec.InstanceID, "in", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-m.up.closed:
			return
		}
	}
}

// uploadTranscript makes the files rels (nil: every chat and cobrowse file)
// of the final recording rec from the entries stored now, uploads them
// through the upload queue like every object (a failed upload is retried),
// and records their objects in the recording, which it returns.
//
// On one instance the uploads of a recording's files take turns. After each,
// the entries are read again: when some were added meanwhile (an add on
// another instance may have uploaded files older than this one's after it),
// the files are made and uploaded again, so the last upload holds every
// entry.
func (m *Manager) uploadTranscript(ctx context.Context, rec *Recording, rels []string) (*Recording, error) {
	defer m.transcriptLocks.lock(rec.InstanceID)()
	t, err := m.readTranscript(ctx, rec)
	if err != nil {
		return nil, err
	}
	for range 4 {
		files := rels
		if files == nil {
			files = t.files()
		}
		if len(files) == 0 {
			break
		}
		objs := map[string]*ObjectFile{}
		for _, rel := range files {
			data, err := t.file(rec.ConversationID, rel)
			if err != nil {
				return nil, err
			}
			objs[rel], err = m.uploadLate(ctx, rec, rel, data)
			if err != nil && objs[rel] == nil {
				return nil, err
			}
		}
		if rec, err = m.modify(ctx, rec.OrganizationID, rec.ConversationID, rec.RecorderID, rec.InstanceID, func(r *Recording) error {
			recordUploads(r, objs)
			return nil
		}); err != nil {
			return nil, err
		}
		now, err := m.readTranscript(ctx, rec)
		if err != nil {
			return nil, err
		}
		if slices.Equal(now.counts(), t.counts()) {
			break
		}
		t = now
	}
	// The last upload of the recording may be one of these, whose result
	// went to its waiter, not to applyLateResult.
	if err := m.settle(ctx, rec.InstanceID, nil); err != nil {
		m.log.Warn("cannot settle the recording after its late chat and cobrowse uploads", "instanceId", rec.InstanceID, "err", err)
	} else if r, err := m.get(ctx, rec.OrganizationID, rec.ConversationID, rec.RecorderID, rec.InstanceID); err == nil {
		rec = r
	}
	return rec, nil
}

// uploadLate uploads data as the file rel of a final recording: written to
// the recording's directory (made again if it was removed) and replaced in
// the queue, which deletes it once verified. A failed upload returns its
// object with the error; the queue retries it.
func (m *Manager) uploadLate(ctx context.Context, rec *Recording, rel string, data []byte) (*ObjectFile, error) {
	local := filepath.Join(rec.Dir, filepath.FromSlash(rel))
	wait, err := m.writeLate(ctx, rec, rel, local, data)
	if err != nil {
		return nil, fmt.Errorf("recorder: %s: %w", rel, err)
	}
	o, err := wait()
	if err == nil { // the file is gone: remove the directories it needed, if empty
		unlock := m.dirLocks.lock(rec.InstanceID)
		for dir := filepath.Dir(local); len(dir) >= len(rec.Dir); dir = filepath.Dir(dir) {
			if os.Remove(dir) != nil {
				break
			}
		}
		unlock()
	}
	return o, err
}

// writeLate writes data as the file local of rel and queues its upload,
// under the directory's lock (see removeLocalCopies), and returns the wait
// for its outcome.
func (m *Manager) writeLate(ctx context.Context, rec *Recording, rel, local string, data []byte) (wait func() (*ObjectFile, error), err error) {
	defer m.dirLocks.lock(rec.InstanceID)()
	if err := os.MkdirAll(filepath.Dir(local), 0o750); err != nil {
		return nil, err
	}
	tmp := local + ".tmp"
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		return nil, err
	}
	if h := m.testPoints.lateWritten; h != nil {
		h(rec, rel)
	}
	if err := os.Rename(tmp, local); err != nil { // an attempt in flight reads the old file or this one
		return nil, err
	}
	return m.enqueueUpload(ctx, rec, rel, local, objectMetadata(rec), true), nil
}

// recordUploads stores the objects of chat and cobrowse files in r.
func recordUploads(r *Recording, objs map[string]*ObjectFile) {
	for rel, o := range objs {
		if rel != ChatFile && !isCobrowseFile(rel) {
			continue
		}
		if r.Uploads == nil {
			r.Uploads = map[string]*ObjectFile{}
		}
		r.Uploads[rel] = o
	}
}

func isCobrowseFile(rel string) bool {
	return len(rel) > len("cobrowse/") && rel[:len("cobrowse/")] == "cobrowse/"
}

// file returns the content of the chat or a cobrowse file of t.
func (t *transcript) file(conversationID, rel string) ([]byte, error) {
	var v any
	if rel == ChatFile {
		v = struct {
			ConversationID     string      `json:"conversationId"`
			ChatTranscriptList []ChatEntry `json:"chatTranscriptList"`
		}{conversationID, append([]ChatEntry{}, t.chat...)}
	} else {
		var list []CobrowseEvent
		for _, e := range t.cobrowse {
			if CobrowseFile(e.SessionID) == rel {
				list = append(list, e)
			}
		}
		v = struct {
			ConversationID string          `json:"conversationId"`
			Events         []CobrowseEvent `json:"events"`
		}{conversationID, list}
	}
	return json.MarshalIndent(v, "", "  ")
}

// files returns the relative paths of t's files: chat.json if t has chat,
// then one per cobrowse session.
func (t *transcript) files() []string {
	var rels []string
	if len(t.chat) > 0 {
		rels = append(rels, ChatFile)
	}
	for _, c := range t.summary().Cobrowse {
		rels = append(rels, CobrowseFile(c.ID))
	}
	return rels
}

// writeAttachments writes the chat and cobrowse files of t into rec's
// directory for compose, and returns their relative paths.
func writeAttachments(rec *Recording, t *transcript) ([]string, error) {
	rels := t.files()
	for _, rel := range rels {
		data, err := t.file(rec.ConversationID, rel)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(rec.Dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, data, 0o640); err != nil {
			return nil, err
		}
	}
	return rels, nil
}
