package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rtcrec/recorder/recorder"
	"github.com/rtcrec/recorder/storage"
)

// The routes of the other seeds (DESIGN.md "Extensions from the other
// seeds"): pause and resume (000, 002), status history (000), metadata,
// blackouts and participants (003), chat and cobrowse (004), the command
// envelope (002), the telephony view (001) and the event stream.
func (s *Server) lifecycleRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/recordings/{conversationId}/{recorderId}/{instanceId}/pause", s.auth(s.pause))
	mux.HandleFunc("POST /api/recordings/{conversationId}/{recorderId}/{instanceId}/resume", s.auth(s.resume))
	mux.HandleFunc("POST /api/recordings/{conversationId}/{recorderId}/{instanceId}/metadata", s.auth(s.metadata))
	mux.HandleFunc("GET /api/recordings/{conversationId}/status", s.auth(s.statusHistory))
	mux.HandleFunc("POST /api/blackouts/start", s.auth(s.blackoutStart))
	mux.HandleFunc("POST /api/blackouts/stop", s.auth(s.blackoutStop))
	mux.HandleFunc("GET /api/participants", s.auth(s.participants))
	mux.HandleFunc("GET /api/participants/{userId}", s.auth(s.participant))
	mux.HandleFunc("POST /api/recordings/chat/transcript/add", s.auth(s.chatAdd))
	mux.HandleFunc("POST /api/recordings/cobrowse/event", s.auth(s.cobrowseAdd))
	mux.HandleFunc("GET /api/recordings/{conversationId}/cobrowse", s.auth(s.cobrowseList))
	// Registered as a catch-all below a recording so it cannot clash with the
	// attachment route (whose first segment is the literal "attachment").
	mux.HandleFunc("GET /api/recordings/{conversationId}/{recorderId}/{instanceId}/{rest...}", s.auth(s.recordingSub))
	mux.HandleFunc("POST /api/commands", s.auth(s.command))
	s.telephonyRoutes(mux)
	if s.events != nil {
		mux.Handle("GET /api/events", s.auth(func(w http.ResponseWriter, r *http.Request, k *recorder.APIKey) {
			s.events.Handler(func(*http.Request) (string, bool) { return k.OrganizationID, true }).ServeHTTP(w, r)
		}))
	}
}

func (s *Server) pause(w http.ResponseWriter, r *http.Request, k *recorder.APIKey) {
	s.setPaused(w, r, k, true)
}

func (s *Server) resume(w http.ResponseWriter, r *http.Request, k *recorder.APIKey) {
	s.setPaused(w, r, k, false)
}

func (s *Server) setPaused(w http.ResponseWriter, r *http.Request, k *recorder.APIKey, pause bool) {
	c, rid, i := ids(r)
	op := s.m.Resume
	if pause {
		op = s.m.Pause
	}
	rec, err := op(r.Context(), k.OrganizationID, c, rid, i)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, eventOf(rec))
}

// MetadataUpdate is the body of POST .../metadata: a string map under
// "metadata", or under seed 003's "CallMetadata".
type MetadataUpdate struct {
	Metadata     map[string]string `json:"metadata"`
	CallMetadata map[string]string `json:"CallMetadata"`
}

func (s *Server) metadata(w http.ResponseWriter, r *http.Request, k *recorder.APIKey) {
	var cmd MetadataUpdate
	if !decode(w, r, &cmd) {
		return
	}
	if cmd.Metadata == nil {
		cmd.Metadata = cmd.CallMetadata
	} else if cmd.CallMetadata != nil {
		writeError(w, http.StatusBadRequest, "invalid_field", "give metadata or CallMetadata, not both")
		return
	}
	if len(cmd.Metadata) == 0 {
		writeError(w, http.StatusBadRequest, "missing_field", "metadata is required")
		return
	}
	c, rid, i := ids(r)
	rec, err := s.m.UpdateMetadata(r.Context(), k.OrganizationID, c, rid, i, cmd.Metadata)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		RecordingDataEvent
		Metadata map[string]string `json:"metadata"`
	}{eventOf(rec), rec.Metadata})
}

// StatusHistory is seed 000's reply.
type StatusHistory struct {
	Statuses     []StatusEntry `json:"statuses"`
	EngagementID string        `json:"engagement_id"`
	Channel      string        `json:"channel"` // voice | video
}

// StatusEntry is one status of a StatusHistory.
type StatusEntry struct {
	Status           string `json:"status"` // start | pause | resume | stop
	LastModifiedTime string `json:"last_modified_time"`
}

// NoRecording is seed 000's reply for an engagement without a recording.
type NoRecording struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// statusHistory serves seed 000's status history of a conversation's
// recording: its newest recording that is not a duplicate (the newest
// duplicate when all are).
func (s *Server) statusHistory(w http.ResponseWriter, r *http.Request, k *recorder.APIKey) {
	rs, err := s.m.Conversation(r.Context(), k.OrganizationID, r.PathValue("conversationId"))
	if errors.Is(err, recorder.ErrNotFound) {
		writeJSON(w, http.StatusNotFound, NoRecording{Code: 2817, Message: "There is no recording for this engagement"})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rec := rs[len(rs)-1]
	for j := len(rs) - 1; j >= 0; j-- {
		if !rs[j].Duplicate {
			rec = rs[j]
			break
		}
	}
	h := StatusHistory{Statuses: []StatusEntry{}, EngagementID: rec.ConversationID, Channel: "voice"}
	if rec.Video {
		h.Channel = "video"
	}
	for _, st := range rec.Statuses() {
		h.Statuses = append(h.Statuses, StatusEntry{Status: st.Status, LastModifiedTime: st.Time.UTC().Format(time.RFC3339)})
	}
	if len(h.Statuses) == 0 {
		writeJSON(w, http.StatusNotFound, NoRecording{Code: 2817, Message: "There is no recording for this engagement"})
		return
	}
	writeJSON(w, http.StatusOK, h)
}

// BlackoutCommand is the body of POST /api/blackouts/start and /stop. It takes
// DESIGN.md's camelCase fields or seed 003's (AgentIdentifier "Id" with
// Value as the userId, BlackoutStartTime, BlackoutStopTime, TimeOffset).
type BlackoutCommand struct {
	UserID       string `json:"userId"`
	ConferenceID string `json:"conferenceId"`
	StartTime    string `json:"startTime"`
	StopTime     string `json:"stopTime"`
	TimeOffset   *int64 `json:"timeOffset"`

	AgentIdentifier   string `json:"AgentIdentifier"`
	Value             string `json:"Value"`
	BlackoutStartTime string `json:"BlackoutStartTime"`
	BlackoutStopTime  string `json:"BlackoutStopTime"`
	SeedTimeOffset    *int64 `json:"TimeOffset"`
}

// times applies seed 003's rules: explicit times win and TimeOffset is then
// ignored (when either time is given); TimeOffset alone is seconds after
// receipt; neither is receipt.
// It returns the start and stop of the command (zero where not given).
func (b *BlackoutCommand) times(received time.Time, stopping bool) (start, stop time.Time, err error) {
	parse := func(name, v string) (time.Time, error) {
		if v == "" {
			return time.Time{}, nil
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return t, &recorder.Error{Kind: recorder.KindInvalid, Reason: "invalid_time",
				Message: name + " is not a date-time with offset such as 2024-01-21T21:36:14+02:00"}
		}
		return t.UTC(), nil
	}
	if start, err = parse("startTime", firstOf(b.StartTime, b.BlackoutStartTime)); err != nil {
		return
	}
	if stop, err = parse("stopTime", firstOf(b.StopTime, b.BlackoutStopTime)); err != nil {
		return
	}
	off := b.TimeOffset
	if off == nil {
		off = b.SeedTimeOffset
	}
	if !start.IsZero() || !stop.IsZero() {
		off = nil // explicit times given: TimeOffset is ignored
	}
	if off != nil && (*off < 0 || *off > 7*24*3600) {
		return start, stop, &recorder.Error{Kind: recorder.KindInvalid, Reason: "invalid_time", Message: "timeOffset must be 0 to 604800 seconds"}
	}
	at := received
	if off != nil {
		at = received.Add(time.Duration(*off) * time.Second)
	}
	if stopping {
		if stop.IsZero() {
			stop = at
		}
	} else if start.IsZero() {
		start = at
	}
	if !start.IsZero() && !stop.IsZero() && !stop.After(start) {
		return start, stop, &recorder.Error{Kind: recorder.KindInvalid, Reason: "invalid_time", Message: "the blackout's stop time is not after its start time"}
	}
	return start, stop, nil
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (s *Server) blackoutStart(w http.ResponseWriter, r *http.Request, k *recorder.APIKey) {
	s.blackout(w, r, k, false)
}

func (s *Server) blackoutStop(w http.ResponseWriter, r *http.Request, k *recorder.APIKey) {
	s.blackout(w, r, k, true)
}

func (s *Server) blackout(w http.ResponseWriter, r *http.Request, k *recorder.APIKey, stopping bool) {
	received := time.Now().UTC()
	var cmd BlackoutCommand
	if !decode(w, r, &cmd) {
		return
	}
	user := cmd.UserID
	if user == "" && cmd.Value != "" {
		if cmd.AgentIdentifier != "" && !strings.EqualFold(cmd.AgentIdentifier, "Id") {
			writeError(w, http.StatusBadRequest, "invalid_field", "AgentIdentifier must be Id (the participant's userId)")
			return
		}
		user = cmd.Value
	}
	if user == "" {
		writeError(w, http.StatusBadRequest, "missing_field", "userId is required")
		return
	}
	start, stop, err := cmd.times(received, stopping)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	req := recorder.BlackoutRequest{UserID: user, ConferenceID: cmd.ConferenceID, Start: start, Stop: stop}
	op := s.m.StartBlackout
	if stopping {
		op = s.m.StopBlackout
	}
	b, err := op(r.Context(), k.OrganizationID, req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, blackoutOf(b))
}

// BlackoutMessage is a participant's blackout.
type BlackoutMessage struct {
	UserID       string   `json:"userId"`
	ConferenceID string   `json:"conferenceId,omitempty"`
	Active       bool     `json:"active"`
	StartTime    string   `json:"startTime"`
	StopTime     string   `json:"stopTime"`
	Recordings   []string `json:"recordings"`
}

func blackoutOf(b *recorder.Blackout) *BlackoutMessage {
	if b == nil {
		return nil
	}
	return &BlackoutMessage{UserID: b.UserID, ConferenceID: b.ConferenceID, Active: b.Active,
		StartTime: ts(b.Start), StopTime: ts(b.Stop), Recordings: b.Recordings}
}

// ParticipantMessage is one participant being recorded now, in the shape of
// seed 003's agent status (AgentId becomes UserId): the conversation they are
// recorded in (ActiveCall), others (InactiveCalls) and their blackout.
type ParticipantMessage struct {
	UserID        string            `json:"UserId"`
	ActiveCall    *ParticipantCall  `json:"ActiveCall"`
	InactiveCalls []ParticipantCall `json:"InactiveCalls"`
	Blackout      *BlackoutMessage  `json:"Blackout"`
}

// ParticipantCall is one conversation of a participant.
type ParticipantCall struct {
	CallInstance string                 `json:"CallInstance"` // conversationId
	Metadata     map[string]string      `json:"Metadata"`
	CallState    string                 `json:"CallState"` // OnCall
	Recordings   []ParticipantRecording `json:"Recordings"`
}

// ParticipantRecording is one recording of a participant's conversation;
// after seed 003's fields come this recorder's ids and streams.
type ParticipantRecording struct {
	RecordingIdentifier string              `json:"RecordingIdentifier"` // instanceId
	IsDuplicate         bool                `json:"IsDuplicate"`
	RecordingState      string              `json:"RecordingState"` // Recording | Paused | BlackedOut
	CallInstance        string              `json:"CallInstance"`
	ConversationID      string              `json:"conversationId"`
	RecorderID          string              `json:"recorderId"`
	InstanceID          string              `json:"instanceId"`
	ConferenceID        string              `json:"conferenceId"`
	State               string              `json:"state"`
	Paused              bool                `json:"paused"`
	Streams             []StreamDataMessage `json:"streams"`
}

// participantsOf builds the participants view of the running recordings.
func participantsOf(rs []*recorder.Recording, blackouts map[string]*recorder.Blackout) []*ParticipantMessage {
	byUser := map[string]*ParticipantMessage{}
	var order []string
	noSign := func(string) string { return "" }
	for _, rec := range rs {
		msg := messageOf(rec, noSign)
		for _, st := range msg.Streams {
			p := byUser[st.UserID]
			if p == nil {
				p = &ParticipantMessage{UserID: st.UserID, InactiveCalls: []ParticipantCall{}, Blackout: blackoutOf(blackouts[st.UserID])}
				byUser[st.UserID] = p
				order = append(order, st.UserID)
			}
			call := p.ActiveCall
			if call == nil || call.CallInstance != rec.ConversationID {
				call = nil
				for i := range p.InactiveCalls {
					if p.InactiveCalls[i].CallInstance == rec.ConversationID {
						call = &p.InactiveCalls[i]
					}
				}
			}
			if call == nil {
				c := ParticipantCall{CallInstance: rec.ConversationID, Metadata: rec.Metadata, CallState: "OnCall", Recordings: []ParticipantRecording{}}
				if c.Metadata == nil {
					c.Metadata = map[string]string{}
				}
				if p.ActiveCall == nil {
					p.ActiveCall = &c
					call = p.ActiveCall
				} else {
					p.InactiveCalls = append(p.InactiveCalls, c)
					call = &p.InactiveCalls[len(p.InactiveCalls)-1]
				}
			}
			pr := findRecording(call, rec.InstanceID)
			if pr == nil {
				state := "Recording"
				if rec.Paused {
					state = "Paused"
				} else if b := blackouts[st.UserID]; b != nil && b.Active {
					state = "BlackedOut"
				}
				call.Recordings = append(call.Recordings, ParticipantRecording{RecordingIdentifier: rec.InstanceID,
					IsDuplicate: rec.Duplicate, RecordingState: state, CallInstance: rec.ConversationID,
					ConversationID: rec.ConversationID, RecorderID: rec.RecorderID, InstanceID: rec.InstanceID,
					ConferenceID: rec.ConferenceID, State: string(rec.State), Paused: rec.Paused, Streams: []StreamDataMessage{}})
				pr = &call.Recordings[len(call.Recordings)-1]
			}
			pr.Streams = append(pr.Streams, st)
		}
	}
	out := make([]*ParticipantMessage, 0, len(order))
	for _, u := range order {
		out = append(out, byUser[u])
	}
	return out
}

func findRecording(c *ParticipantCall, instanceID string) *ParticipantRecording {
	for i := range c.Recordings {
		if c.Recordings[i].RecordingIdentifier == instanceID {
			return &c.Recordings[i]
		}
	}
	return nil
}

func (s *Server) participants(w http.ResponseWriter, r *http.Request, k *recorder.APIKey) {
	writeJSON(w, http.StatusOK, participantsOf(s.m.Running(k.OrganizationID), s.m.Blackouts(k.OrganizationID)))
}

func (s *Server) participant(w http.ResponseWriter, r *http.Request, k *recorder.APIKey) {
	user := r.PathValue("userId")
	if err := recorder.ValidateUserID(user); err != nil {
		s.fail(w, r, err)
		return
	}
	bs := s.m.Blackouts(k.OrganizationID)
	for _, p := range participantsOf(s.m.Running(k.OrganizationID), bs) {
		if p.UserID == user {
			writeJSON(w, http.StatusOK, p)
			return
		}
	}
	if b := bs[user]; b != nil { // blacked out, not in a recording now
		writeJSON(w, http.StatusOK, &ParticipantMessage{UserID: user, InactiveCalls: []ParticipantCall{}, Blackout: blackoutOf(b)})
		return
	}
	writeError(w, http.StatusNotFound, "not_found", "participant "+user+" is not being recorded")
}

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

// failTooLarge maps a "too_large" recorder error to 413; other errors go to fail.
func (s *Server) failTooLarge(w http.ResponseWriter, r *http.Request, err error) {
	var re *recorder.Error
	if errors.As(err, &re) && re.Reason == "too_large" {
		writeError(w, http.StatusRequestEntityTooLarge, re.Reason, re.Message)
		return
	}
	s.fail(w, r, err)
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

func (s *Server) chatAdd(w http.ResponseWriter, r *http.Request, k *recorder.APIKey) {
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
		s.failTooLarge(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, chatOf(rec))
}

// chatOf is the chatTranscript of a recording's views; nil without chat.
func chatOf(rec *recorder.Recording) *ChatTranscriptData {
	if len(rec.Chat) == 0 {
		return nil
	}
	d := &ChatTranscriptData{ID: rec.InstanceID + "/" + recorder.ChatFile, Created: ts(rec.Chat[0].TimeStamp),
		Location: rec.Dir + "/" + recorder.ChatFile}
	if o := rec.Uploads[recorder.ChatFile]; o != nil && o.Error == nil {
		d.Location, d.Created = o.Location, ts(o.Uploaded)
	}
	return d
}

func (s *Server) cobrowseAdd(w http.ResponseWriter, r *http.Request, k *recorder.APIKey) {
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
		s.failTooLarge(w, r, err)
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

func (s *Server) cobrowseList(w http.ResponseWriter, r *http.Request, k *recorder.APIKey) {
	rs, err := s.m.Conversation(r.Context(), k.OrganizationID, r.PathValue("conversationId"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := ConversationCobrowseSessionDataMessage{CobrowseSessions: []CobrowseSessionDataMessage{}, ConversationID: rs[0].ConversationID}
	for _, rec := range rs {
		seen := map[string]bool{}
		for _, e := range rec.Cobrowse {
			if seen[e.SessionID] {
				continue
			}
			seen[e.SessionID] = true
			m := CobrowseSessionDataMessage{CobrowseSessionID: e.SessionID, RecorderID: rec.RecorderID, RecorderInstanceID: rec.InstanceID}
			if o := rec.Uploads[recorder.CobrowseFile(e.SessionID)]; o != nil && o.Error == nil {
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
func (s *Server) recordingSub(w http.ResponseWriter, r *http.Request, k *recorder.APIKey) {
	seg := strings.Split(r.PathValue("rest"), "/")
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
