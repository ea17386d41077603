package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/recorder"
	"github.com/rtcrec/recorder/storage"
)

// Chat transcripts and cobrowse events (seed 004).

// AddChatTranscriptCmd is seed 004's body of POST /api/recordings/chat/transcript/add.
type AddChatTranscriptCmd struct {
	ChatTranscriptList []ChatTranscriptEntry `json:"chatTranscriptList"`
	ConversationID     string                `json:"conversationId"`
	InstanceID         string                `json:"instanceId"`
	RecorderID         string                `json:"recorderId"`
}

// ChatTranscriptEntry is seed 004's ChatTranscriptEntry.
type ChatTranscriptEntry struct {
	TimeStamp       string `json:"timeStamp"`
	Transcript      string `json:"transcript"`
	UserDisplayName string `json:"userDisplayName"`
	UserID          string `json:"userId"`
}

// AddCobrowseEventCmd is seed 004's body of POST /api/recordings/cobrowse/event.
type AddCobrowseEventCmd struct {
	ConversationID string         `json:"conversationId"`
	Event          *CobrowseEvent `json:"event"`
	InstanceID     string         `json:"instanceId"`
	RecorderID     string         `json:"recorderId"`
}

// CobrowseEvent is seed 004's CobrowseEvent.
type CobrowseEvent struct {
	Payload    string `json:"payload"`
	SequenceID *int32 `json:"sequenceId"`
	SessionID  string `json:"sessionId"`
	Timestamp  *int64 `json:"timestamp"`
}

func missingIDs(w http.ResponseWriter, c, rid, i string) bool {
	for _, f := range []struct{ name, v string }{{"conversationId", c}, {"recorderId", rid}, {"instanceId", i}} {
		if f.v == "" {
			writeError(w, http.StatusBadRequest, "missing_field", f.name+" is required")
			return true
		}
	}
	return false
}

func (s *Server) chatAdd(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	var cmd AddChatTranscriptCmd
	if !decode(w, r, &cmd) || missingIDs(w, cmd.ConversationID, cmd.RecorderID, cmd.InstanceID) {
		return
	}
	if cmd.ChatTranscriptList == nil {
		writeError(w, http.StatusBadRequest, "missing_field", "chatTranscriptList is required")
		return
	}
	entries := make([]recorder.ChatEntry, 0, len(cmd.ChatTranscriptList))
	for n, e := range cmd.ChatTranscriptList {
		t, err := time.Parse(time.RFC3339Nano, e.TimeStamp)
		if err != nil || e.UserID == "" {
			writeError(w, http.StatusBadRequest, "invalid_field", "chatTranscriptList["+strconv.Itoa(n)+"] needs userId and a date-time timeStamp")
			return
		}
		entries = append(entries, recorder.ChatEntry{TimeStamp: t, Transcript: e.Transcript, UserDisplayName: e.UserDisplayName, UserID: e.UserID})
	}
	rec, err := s.m.AddChat(r.Context(), k.OrganizationID, cmd.ConversationID, cmd.RecorderID, cmd.InstanceID, entries)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, chatOf(rec))
}

// chatOf is the chatTranscript of a recording's views; nil without chat.
func chatOf(rec *recorder.Recording) *ChatTranscriptData {
	if rec.Entries.ChatEntries == 0 {
		return nil
	}
	d := &ChatTranscriptData{ID: rec.InstanceID + "/" + recorder.ChatFile, Created: ts(rec.Entries.ChatFirst),
		Location: publicLocation(rec, rec.Dir+"/"+recorder.ChatFile)}
	if o := rec.Uploads[recorder.ChatFile]; o != nil && o.Error == nil {
		d.Location, d.Created = publicLocation(rec, o.Location), ts(o.Uploaded)
	}
	return d
}

func (s *Server) cobrowseAdd(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	var cmd AddCobrowseEventCmd
	if !decode(w, r, &cmd) || missingIDs(w, cmd.ConversationID, cmd.RecorderID, cmd.InstanceID) {
		return
	}
	e := cmd.Event
	if e == nil || e.SessionID == "" || e.SequenceID == nil || e.Timestamp == nil {
		writeError(w, http.StatusBadRequest, "missing_field", "event with payload, sequenceId, sessionId and timestamp is required")
		return
	}
	_, err := s.m.AddCobrowse(r.Context(), k.OrganizationID, cmd.ConversationID, cmd.RecorderID, cmd.InstanceID,
		recorder.CobrowseEvent{Payload: e.Payload, SequenceID: *e.SequenceID, SessionID: e.SessionID, Timestamp: *e.Timestamp})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// ConversationCobrowseSessionDataMessage is seed 004's cobrowse listing.
type ConversationCobrowseSessionDataMessage struct {
	CobrowseSessions []CobrowseSessionDataMessage `json:"cobrowseSessions"`
	ConversationID   string                       `json:"conversationId"`
}

// CobrowseSessionDataMessage is one cobrowse session of a conversation.
type CobrowseSessionDataMessage struct {
	CobrowseSessionID  string `json:"cobrowseSessionId"`
	RecorderID         string `json:"recorderId"`
	RecorderInstanceID string `json:"recorderInstanceId"`
	Uploaded           string `json:"uploaded,omitempty"`
}

func (s *Server) cobrowseList(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	rs, err := s.m.Conversation(r.Context(), k.OrganizationID, r.PathValue("conversationId"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := ConversationCobrowseSessionDataMessage{CobrowseSessions: []CobrowseSessionDataMessage{}, ConversationID: rs[0].ConversationID}
	for _, rec := range rs {
		for _, c := range rec.Entries.Cobrowse {
			m := CobrowseSessionDataMessage{CobrowseSessionID: c.ID, RecorderID: rec.RecorderID, RecorderInstanceID: rec.InstanceID}
			if o := rec.Uploads[recorder.CobrowseFile(c.ID)]; o != nil && o.Error == nil {
				m.Uploaded = ts(o.Uploaded)
			}
			out.CobrowseSessions = append(out.CobrowseSessions, m)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// URLResourceMessage is seed 004's signed URL reply.
type URLResourceMessage struct {
	URL        string `json:"url"`
	ValidUntil string `json:"validUntil"`
}

// recordingSub serves GET routes below a recording that the mux cannot hold
// as patterns: .../cobrowse/{sessionId}/url/attachment.
func (s *Server) recordingSub(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	seg := strings.Split(r.PathValue("rest"), "/")
	switch r.PathValue("rest") {
	case "stop", "pause", "resume", "metadata": // POST routes: as the mux would answer
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method "+r.Method+" is not allowed on "+r.URL.Path)
		return
	}
	if len(seg) != 4 || seg[0] != "cobrowse" || seg[2] != "url" || seg[3] != "attachment" {
		writeError(w, http.StatusNotFound, "not_found", "no such route: "+r.Method+" "+r.URL.Path)
		return
	}
	rec, ok := s.get(w, r, k)
	if !ok {
		return
	}
	session := seg[1]
	if err := recorder.ValidateID("sessionId", session); err != nil {
		s.fail(w, r, err)
		return
	}
	o := rec.Uploads[recorder.CobrowseFile(session)]
	if o == nil || o.Error != nil || !rec.Deleted.IsZero() {
		writeError(w, http.StatusNotFound, "not_found", "cobrowse session "+session+" has no uploaded file")
		return
	}
	b, err := s.m.Bucket(r.Context(), rec.ApplicationID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	until := time.Now().Add(s.ttl)
	u, err := b.SignedURL(r.Context(), o.Key, &storage.SignedURLOptions{Method: http.MethodGet, Expiry: s.ttl})
	if err != nil {
		s.fail(w, r, &recorder.Error{Kind: recorder.KindUnavailable, Reason: "storage_unavailable", Message: "cannot sign the URL", Err: err})
		return
	}
	writeJSON(w, http.StatusOK, URLResourceMessage{URL: u, ValidUntil: ts(until)})
}
