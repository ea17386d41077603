package recorder

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Chat transcripts and cobrowse events (seed 004) are kept with their
// recording (in its stored document), ordered and without duplicates, and
// bounded in size. They are written as chat.json and
// cobrowse/{sessionId}/events.json beside the tracks and uploaded with the
// recording; when they arrive after the recording finished, the files are
// uploaded at once.

// Bounds of the chat and cobrowse data of one recording: the bytes stored
// (every field of every entry plus entryOverhead for its JSON and time) and
// the number of entries, events and cobrowse sessions; beyond them an
// addition is refused with KindTooLarge (reason "too_large").
const (
	MaxChatBytes        = 256 << 10
	MaxChatEntries      = 4096
	MaxCobrowseBytes    = 1 << 20
	MaxCobrowseEvents   = 10000
	MaxCobrowseSessions = 64
	entryOverhead       = 128
)

func (e ChatEntry) size() int {
	return len(e.Transcript) + len(e.UserDisplayName) + len(e.UserID) + entryOverhead
}

func (e CobrowseEvent) size() int { return len(e.Payload) + len(e.SessionID) + entryOverhead }

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
		return r, err
	}
	return m.addAttachment(ctx, organizationID, conversationID, recorderID, instanceID, func(r *Recording) error {
		seen := map[ChatEntry]bool{}
		total := 0
		for _, e := range r.Chat {
			seen[e] = true
			total += e.size()
		}
		chat := append([]ChatEntry(nil), r.Chat...)
		for _, e := range entries {
			e.TimeStamp = e.TimeStamp.UTC()
			if seen[e] {
				continue
			}
			seen[e] = true
			total += e.size()
			chat = append(chat, e)
		}
		if total > MaxChatBytes || len(chat) > MaxChatEntries {
			return errorf(KindTooLarge, "too_large", "the chat transcript of a recording is limited to %d entries and %d bytes", MaxChatEntries, MaxChatBytes)
		}
		sort.SliceStable(chat, func(i, j int) bool { return chat[i].TimeStamp.Before(chat[j].TimeStamp) })
		r.Chat = chat
		return nil
	}, []string{ChatFile})
}

// AddCobrowse adds a cobrowse event: ordered by sequenceId within its
// session, an event whose (sessionId, sequenceId) is known is ignored.
func (m *Manager) AddCobrowse(ctx context.Context, organizationID, conversationID, recorderID, instanceID string, ev CobrowseEvent) (*Recording, error) {
	if err := ValidateID("sessionId", ev.SessionID); err != nil {
		return nil, err
	}
	if r, ok, err := m.forward(ctx, &Command{Op: OpCobrowse, OrganizationID: organizationID, ConversationID: conversationID,
		RecorderID: recorderID, InstanceID: instanceID, Cobrowse: &ev}); ok {
		return r, err
	}
	return m.addAttachment(ctx, organizationID, conversationID, recorderID, instanceID, func(r *Recording) error {
		total := ev.size()
		sessions := map[string]bool{ev.SessionID: true}
		for _, e := range r.Cobrowse {
			if e.SessionID == ev.SessionID && e.SequenceID == ev.SequenceID {
				return nil
			}
			total += e.size()
			sessions[e.SessionID] = true
		}
		if total > MaxCobrowseBytes || len(r.Cobrowse)+1 > MaxCobrowseEvents || len(sessions) > MaxCobrowseSessions {
			return errorf(KindTooLarge, "too_large", "the cobrowse events of a recording are limited to %d events in %d sessions and %d bytes",
				MaxCobrowseEvents, MaxCobrowseSessions, MaxCobrowseBytes)
		}
		list := append(append([]CobrowseEvent(nil), r.Cobrowse...), ev)
		sort.SliceStable(list, func(i, j int) bool {
			if list[i].SessionID != list[j].SessionID {
				return list[i].SessionID < list[j].SessionID
			}
			return list[i].SequenceID < list[j].SequenceID
		})
		r.Cobrowse = list
		return nil
	}, []string{CobrowseFile(ev.SessionID)})
}

// uploadAttachments uploads the chat and cobrowse files of a final recording
// that had no composition to carry them.
func (m *Manager) uploadAttachments(rec *Recording) {
	var rels []string
	if len(rec.Chat) > 0 {
		rels = append(rels, ChatFile)
	}
	for _, id := range cobrowseSessions(rec) {
		rels = append(rels, CobrowseFile(id))
	}
	ctx := context.Background()
	if _, err := m.addAttachment(ctx, rec.OrganizationID, rec.ConversationID, rec.RecorderID, rec.InstanceID,
		func(*Recording) error { return nil }, rels); err != nil {
		m.log.Error("cannot upload chat and cobrowse files", "instanceId", rec.InstanceID, "err", err)
	}
}

// addAttachment changes a recording's chat or cobrowse data with fn; when
// the recording is final its files (rels) are uploaded now, through the
// upload queue like every object (so a failed upload is retried).
func (m *Manager) addAttachment(ctx context.Context, org, conv, rid, iid string, fn func(r *Recording) error, rels []string) (*Recording, error) {
	rec, err := m.modify(ctx, org, conv, rid, iid, fn)
	if err != nil || !rec.State.Final() || !rec.Deleted.IsZero() {
		return rec, err
	}
	objs := map[string]*ObjectFile{}
	for _, rel := range rels {
		data, err := attachmentData(rec, rel)
		if err != nil {
			return nil, err
		}
		objs[rel], err = m.uploadLate(ctx, rec, rel, data)
		if err != nil && objs[rel] == nil {
			return nil, err
		}
	}
	return m.modify(ctx, org, conv, rid, iid, func(r *Recording) error {
		recordUploads(r, objs)
		return nil
	})
}

// uploadLate uploads data as the file rel of a final recording: written to
// the recording's directory (made again if it was removed) and replaced in
// the queue, which deletes it once verified. A failed upload returns its
// object with the error; the queue retries it.
func (m *Manager) uploadLate(ctx context.Context, rec *Recording, rel string, data []byte) (*ObjectFile, error) {
	local := filepath.Join(rec.Dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(local), 0o750); err != nil {
		return nil, fmt.Errorf("recorder: %s: %w", rel, err)
	}
	tmp := local + ".tmp"
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		return nil, fmt.Errorf("recorder: %s: %w", rel, err)
	}
	if err := os.Rename(tmp, local); err != nil { // an attempt in flight reads the old file or this one
		return nil, fmt.Errorf("recorder: %s: %w", rel, err)
	}
	o, err := m.upload(ctx, rec, rel, local, objectMetadata(rec), true)
	if err == nil { // the file is gone: remove the directories it needed, if empty
		for dir := filepath.Dir(local); len(dir) >= len(rec.Dir); dir = filepath.Dir(dir) {
			if os.Remove(dir) != nil {
				break
			}
		}
	}
	return o, err
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

// attachmentData returns the content of the chat or a cobrowse file of rec.
func attachmentData(rec *Recording, rel string) ([]byte, error) {
	var v any
	if rel == ChatFile {
		v = struct {
			ConversationID     string      `json:"conversationId"`
			ChatTranscriptList []ChatEntry `json:"chatTranscriptList"`
		}{rec.ConversationID, append([]ChatEntry{}, rec.Chat...)}
	} else {
		var list []CobrowseEvent
		for _, e := range rec.Cobrowse {
			if CobrowseFile(e.SessionID) == rel {
				list = append(list, e)
			}
		}
		v = struct {
			ConversationID string          `json:"conversationId"`
			Events         []CobrowseEvent `json:"events"`
		}{rec.ConversationID, list}
	}
	return json.MarshalIndent(v, "", "  ")
}

// writeAttachments writes the chat and cobrowse files of rec into its
// directory for compose, and returns their relative paths.
func writeAttachments(rec *Recording) ([]string, error) {
	var rels []string
	if len(rec.Chat) > 0 {
		rels = append(rels, ChatFile)
	}
	for _, id := range cobrowseSessions(rec) {
		rels = append(rels, CobrowseFile(id))
	}
	for _, rel := range rels {
		data, err := attachmentData(rec, rel)
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
