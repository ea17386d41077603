package api

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/recorder"
)

func (s *Server) pause(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	s.setPaused(w, r, k, true)
}

func (s *Server) resume(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	s.setPaused(w, r, k, false)
}

func (s *Server) setPaused(w http.ResponseWriter, r *http.Request, k *config.APIKey, pause bool) {
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

func (s *Server) metadata(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
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
func (s *Server) statusHistory(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
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
	} else if start.IsZero() && off != nil {
		start = at
	}
	// No start given: the Manager starts the blackout at its own now, so it
	// takes effect through the gate. Starting it at the request's arrival
	// would make every such blackout retroactive by a few milliseconds (a
	// re-mix of the mix already written, and edges that differ between the
	// track files and the mix).
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

func (s *Server) blackoutStart(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	s.blackout(w, r, k, false)
}

func (s *Server) blackoutStop(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	s.blackout(w, r, k, true)
}

func (s *Server) blackout(w http.ResponseWriter, r *http.Request, k *config.APIKey, stopping bool) {
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
