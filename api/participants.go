package api

import (
	"net/http"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/recorder"
)

// The participants view (seed 003): who is being recorded now.

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

func (s *Server) participants(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	writeJSON(w, http.StatusOK, participantsOf(s.m.Running(k.OrganizationID), s.m.Blackouts(k.OrganizationID)))
}

func (s *Server) participant(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
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
