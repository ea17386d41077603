package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/recorder"
	"github.com/rtcrec/recorder/recorder/conference"
)

// The agent API of seed 003 at the seed's own paths (routes.go: matched
// case-insensitively). An agent's ActiveCall is the conference it publishes
// a microphone in (the latest one), its InactiveCalls the other conferences
// it is still in, its DesktopOnlySessions the conferences where it shares
// only a screen. The CallInstance of a call is its conferenceId; a recording
// of a call records the conference under conversationId = conferenceId.

// AgentMessage is seed 003's agent object; Blackout is our extension (the
// agent's blackout, when one is registered).
type AgentMessage struct {
	AgentID             int64                   `json:"AgentId"`
	BusinessUnit        int64                   `json:"BusinessUnit"`
	AgentPhone          string                  `json:"AgentPhone"`
	SystemUsername      string                  `json:"SystemUsername"`
	CrmUsername         string                  `json:"CrmUsername"`
	ActiveCall          *AgentCallMessage       `json:"ActiveCall"`
	InactiveCalls       []AgentCallMessage      `json:"InactiveCalls"`
	Username            *string                 `json:"Username"`
	DeviceID            string                  `json:"DeviceId"`
	DeviceAlias         string                  `json:"DeviceAlias"`
	DesktopOnlySessions []DesktopSessionMessage `json:"DesktopOnlySessions"`
	Blackout            *BlackoutMessage        `json:"Blackout,omitempty"`
}

// AgentCallMessage is one call of an agent (seed 003's ActiveCall).
type AgentCallMessage struct {
	CallInstance     string                   `json:"CallInstance"` // the conferenceId
	Metadata         map[string]string        `json:"Metadata"`
	CallState        string                   `json:"CallState"` // OnCall | OnHold
	Recordings       []AgentRecordingMessage  `json:"Recordings"`
	ScreenRecordings []ScreenRecordingMessage `json:"ScreenRecordings"`
}

// AgentRecordingMessage is one audio recording of a call.
type AgentRecordingMessage struct {
	RecordingIdentifier string `json:"RecordingIdentifier"` // instanceId
	IsDuplicate         bool   `json:"IsDuplicate"`
	RecordingState      string `json:"RecordingState"` // Recording | Paused | BlackedOut
	CallInstance        string `json:"CallInstance"`
}

// ScreenRecordingMessage is one screen recording of an agent (the seed's
// casing of ScreenRecordingidentifier kept).
type ScreenRecordingMessage struct {
	RelatedCallInstance       string `json:"RelatedCallInstance"`
	ScreenRecordingIdentifier string `json:"ScreenRecordingidentifier"` // instanceId
	RecordingState            string `json:"RecordingState"`
}

// DesktopSessionMessage is a screen share of an agent outside any call.
type DesktopSessionMessage struct {
	SessionInstance  string                   `json:"SessionInstance"` // the conferenceId
	ScreenRecordings []ScreenRecordingMessage `json:"ScreenRecordings"`
}

// AgentCommand is the body of seed 003's POST routes.
type AgentCommand struct {
	AgentIdentifier   string            `json:"AgentIdentifier"` // Id | Phone
	Value             flexString        `json:"Value"`
	CallMetadata      map[string]string `json:"CallMetadata"`
	CallIdentifier    flexString        `json:"CallIdentifier"` // a conferenceId (duplicates)
	BlackoutStartTime string            `json:"BlackoutStartTime"`
	BlackoutStopTime  string            `json:"BlackoutStopTime"`
	TimeOffset        *int64            `json:"TimeOffset"`
}

// flexString is a JSON string that also accepts a number ("Value": 2).
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] != '"' {
		var n json.Number
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		if err := d.Decode(&n); err != nil {
			return err
		}
		*f = flexString(n.String())
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*f = flexString(s)
	return nil
}

// AgentRegistration is the body of POST /api/agents (the admin route).
type AgentRegistration struct {
	AgentID        int64   `json:"AgentId"`
	AgentPhone     string  `json:"AgentPhone"`
	UserID         string  `json:"UserId"` // the participant id it publishes under; default agent-{AgentId}
	BusinessUnit   int64   `json:"BusinessUnit"`
	SystemUsername string  `json:"SystemUsername"`
	CrmUsername    string  `json:"CrmUsername"`
	Username       *string `json:"Username"`
	DeviceID       string  `json:"DeviceId"`
	DeviceAlias    string  `json:"DeviceAlias"`
	ApplicationID  string  `json:"ApplicationId"`
}

// agentRoutes are seed 003's twelve routes and the admin routes of agents.
func (s *Server) agentRoutes() []Route {
	key := func(h authed) http.Handler { return s.auth(h) }
	return []Route{
		{Method: "GET", Path: "/api/Agent", Seed: "003", Fold: true, handler: key(s.agentGet)},
		{Method: "GET", Path: "/api/Agent/GetAll", Seed: "003", Fold: true, handler: key(s.agentGetAll)},
		{Method: "POST", Path: "/api/Blackout/StartForAgent", Seed: "003", Fold: true, handler: key(s.agentBlackout(false))},
		{Method: "POST", Path: "/api/Blackout/StopForAgent", Seed: "003", Fold: true, handler: key(s.agentBlackout(true))},
		{Method: "POST", Path: "/api/Record/StartForAgent", Seed: "003", Fold: true, handler: key(s.agentRecordStart(false))},
		{Method: "POST", Path: "/api/Record/StopForAgent", Seed: "003", Fold: true, handler: key(s.agentRecordStop(false))},
		{Method: "POST", Path: "/api/Record/UpdateForAgent", Seed: "003", Fold: true, handler: key(s.agentUpdate(false))},
		{Method: "POST", Path: "/api/Record/StartDuplicateForAgent", Seed: "003", Fold: true, handler: key(s.agentRecordStart(true))},
		{Method: "POST", Path: "/api/Record/StopDuplicateForAgent", Seed: "003", Fold: true, handler: key(s.agentRecordStop(true))},
		{Method: "POST", Path: "/api/ScreenRecord/StartForAgent", Seed: "003", Fold: true, handler: key(s.agentScreenStart)},
		{Method: "POST", Path: "/api/ScreenRecord/UpdateForAgent", Seed: "003", Fold: true, handler: key(s.agentUpdate(true))},
		{Method: "POST", Path: "/api/ScreenRecord/StopForAgent", Seed: "003", Fold: true, handler: key(s.agentScreenStop)},
		// Admin: declare an agent before it publishes (or forget one).
		{Method: "POST", Path: "/api/agents", Seed: "003", handler: key(s.agentRegister)},
		{Method: "DELETE", Path: "/api/agents/{agentId}", Seed: "003", handler: key(s.agentDelete)},
	}
}

// Screen recordings are recordings of one agent's SCREEN streams, under the
// conversation {conferenceId}{screenSuffix}.
const screenSuffix = "-screen"

func (s *Server) agentMessage(a *recorder.Agent, running []*recorder.Recording, bo *recorder.Blackout) AgentMessage {
	msg := AgentMessage{AgentID: a.AgentID, BusinessUnit: a.BusinessUnit, AgentPhone: a.AgentPhone, SystemUsername: a.SystemUsername,
		CrmUsername: a.CrmUsername, InactiveCalls: []AgentCallMessage{}, Username: a.Username, DeviceID: a.DeviceID,
		DeviceAlias: a.DeviceAlias, DesktopOnlySessions: []DesktopSessionMessage{}, Blackout: blackoutOf(bo)}
	blacked := bo != nil && bo.Active
	state := func(r *recorder.Recording) string {
		switch {
		case r.Paused:
			return "Paused"
		case blacked:
			return "BlackedOut"
		}
		return "Recording"
	}
	screens := func(conf string) []ScreenRecordingMessage {
		out := []ScreenRecordingMessage{}
		for _, r := range running {
			if r.Only != nil && r.Only.UserID == a.UserID && r.ConferenceID == conf {
				out = append(out, ScreenRecordingMessage{RelatedCallInstance: conf, ScreenRecordingIdentifier: r.InstanceID, RecordingState: state(r)})
			}
		}
		return out
	}
	active := a.ActiveCall()
	for _, c := range a.Calls {
		if !c.IsCall() {
			msg.DesktopOnlySessions = append(msg.DesktopOnlySessions, DesktopSessionMessage{SessionInstance: c.ConferenceID, ScreenRecordings: screens(c.ConferenceID)})
			continue
		}
		cm := AgentCallMessage{CallInstance: c.ConferenceID, Metadata: callMetadata(a, &c), CallState: "OnHold",
			Recordings: []AgentRecordingMessage{}, ScreenRecordings: screens(c.ConferenceID)}
		for _, r := range running {
			if r.ConferenceID == c.ConferenceID && r.Only == nil {
				cm.Recordings = append(cm.Recordings, AgentRecordingMessage{RecordingIdentifier: r.InstanceID,
					IsDuplicate: r.Duplicate, RecordingState: state(r), CallInstance: c.ConferenceID})
			}
		}
		if active != nil && c.ConferenceID == active.ConferenceID {
			cm.CallState = "OnCall"
			msg.ActiveCall = &cm
		} else {
			msg.InactiveCalls = append(msg.InactiveCalls, cm)
		}
	}
	return msg
}

// callMetadata is a call's metadata: what the agent's commands set, over
// the fields the recorder knows (seed 003's lower-case names).
func callMetadata(a *recorder.Agent, c *recorder.AgentCall) map[string]string {
	md := map[string]string{"callid": c.ConferenceID, "callinstance": c.ConferenceID, "deviceid": a.DeviceID,
		"devicealias": a.DeviceAlias, "starttime": c.Joined.UTC().Format("01/02/2006 15:04:05")}
	for k, v := range c.Metadata {
		md[k] = v
	}
	return md
}

// agentReply writes the agent a (read again, with its recordings now).
func (s *Server) agentReply(w http.ResponseWriter, r *http.Request, k *config.APIKey, id int64) {
	a, err := s.m.AgentOf(k.OrganizationID, recorder.AgentRef{By: "Id", Value: strconv.FormatInt(id, 10)})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.agentMessage(a, s.m.Running(k.OrganizationID), s.m.Blackouts(k.OrganizationID)[a.UserID]))
}

func (s *Server) agentGet(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	var ref recorder.AgentRef
	for name, v := range r.URL.Query() { // the seed writes agentIdentifier and value; any case
		switch {
		case strings.EqualFold(name, "agentIdentifier") && len(v) > 0:
			ref.By = v[0]
		case strings.EqualFold(name, "value") && len(v) > 0:
			ref.Value = v[0]
		}
	}
	if ref.By == "" || ref.Value == "" {
		writeError(w, http.StatusBadRequest, "missing_field", "agentIdentifier (Id or Phone) and value are required query parameters")
		return
	}
	a, err := s.m.AgentOf(k.OrganizationID, ref)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.agentMessage(a, s.m.Running(k.OrganizationID), s.m.Blackouts(k.OrganizationID)[a.UserID]))
}

func (s *Server) agentGetAll(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	running, bos := s.m.Running(k.OrganizationID), s.m.Blackouts(k.OrganizationID)
	out := []AgentMessage{}
	for _, a := range s.m.Agents(k.OrganizationID) {
		out = append(out, s.agentMessage(a, running, bos[a.UserID]))
	}
	writeJSON(w, http.StatusOK, out)
}

// agentCommand decodes a seed-003 command and finds its agent.
func (s *Server) agentCommand(w http.ResponseWriter, r *http.Request, k *config.APIKey) (*AgentCommand, *recorder.Agent, bool) {
	var cmd AgentCommand
	if !decode(w, r, &cmd) {
		return nil, nil, false
	}
	if cmd.Value == "" {
		writeError(w, http.StatusBadRequest, "missing_field", "Value (the agent's id or phone) is required")
		return nil, nil, false
	}
	a, err := s.m.AgentOf(k.OrganizationID, recorder.AgentRef{By: cmd.AgentIdentifier, Value: string(cmd.Value)})
	if err != nil {
		s.fail(w, r, err)
		return nil, nil, false
	}
	return &cmd, a, true
}

// call returns the agent's call named by id (a conferenceId), or its active
// call when id is empty.
func agentCall(a *recorder.Agent, id string) (*recorder.AgentCall, error) {
	if id == "" {
		if c := a.ActiveCall(); c != nil {
			return c, nil
		}
		return nil, &recorder.Error{Kind: recorder.KindConflict, Reason: "no_active_call",
			Message: "agent " + strconv.FormatInt(a.AgentID, 10) + " has no active call (it publishes no microphone now)"}
	}
	if c := a.Call(id); c != nil && c.IsCall() {
		return c, nil
	}
	return nil, &recorder.Error{Kind: recorder.KindNotFound, Reason: "unknown_call",
		Message: "agent " + strconv.FormatInt(a.AgentID, 10) + " is in no call " + id}
}

// application is the application an agent's recordings use: the agent's,
// or the key's only application, or the configuration's only one, or
// "default".
func (s *Server) application(k *config.APIKey, preferred string) (string, error) {
	app := preferred
	if app == "" {
		if len(k.Applications) == 1 && k.Applications[0] != "*" {
			app = k.Applications[0]
		} else if apps := s.m.Config().Applications; len(apps) == 1 {
			for id := range apps {
				app = id
			}
		} else {
			app = "default"
		}
	}
	if !s.m.Config().Allows(k, app) {
		return "", &recorder.Error{Kind: recorder.KindNotFound, Reason: "unknown_application",
			Message: "application " + app + " is not known to this API key"}
	}
	return app, nil
}

func agentMetadata(a *recorder.Agent, c *recorder.AgentCall, extra map[string]string) map[string]string {
	md := map[string]string{"agentId": strconv.FormatInt(a.AgentID, 10)}
	if a.AgentPhone != "" {
		md["agentPhone"] = a.AgentPhone
	}
	for k, v := range c.Metadata {
		md[k] = v
	}
	for k, v := range extra {
		md[k] = v
	}
	return md
}

// recordCall decodes a record command and finds its call: the agent's
// active call, or for the duplicate commands the call CallIdentifier names
// (which StartForAgent refuses). ok is false when a reply was written.
func (s *Server) recordCall(w http.ResponseWriter, r *http.Request, k *config.APIKey, duplicate, start bool) (*AgentCommand, *recorder.Agent, *recorder.AgentCall, bool) {
	cmd, a, ok := s.agentCommand(w, r, k)
	if !ok {
		return nil, nil, nil, false
	}
	id := ""
	if duplicate {
		id = string(cmd.CallIdentifier)
	} else if start && cmd.CallIdentifier != "" {
		writeError(w, http.StatusBadRequest, "invalid_field", "CallIdentifier is for StartDuplicateForAgent; StartForAgent records the active call")
		return nil, nil, nil, false
	}
	call, err := agentCall(a, id)
	if err != nil {
		s.fail(w, r, err)
		return nil, nil, nil, false
	}
	return cmd, a, call, true
}

func (s *Server) agentRecordStart(duplicate bool) authed {
	return func(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
		cmd, a, call, ok := s.recordCall(w, r, k, duplicate, true)
		if !ok {
			return
		}
		var err error
		if !duplicate {
			for _, rec := range s.m.Running(k.OrganizationID) {
				if rec.ConferenceID == call.ConferenceID && rec.Only == nil && !rec.Duplicate {
					err = &recorder.Error{Kind: recorder.KindConflict, Reason: "already_recording",
						Message: "call " + call.ConferenceID + " is already being recorded (" + rec.InstanceID + "); use StartDuplicateForAgent for a second recording"}
				}
			}
		}
		var app string
		if err == nil {
			app, err = s.application(k, a.ApplicationID)
		}
		if err == nil && len(cmd.CallMetadata) > 0 {
			s.m.SetCallMetadata(k.OrganizationID, a.AgentID, call.ConferenceID, cmd.CallMetadata)
			call.Metadata = mergeMD(call.Metadata, cmd.CallMetadata)
		}
		if err == nil {
			_, err = s.m.Start(r.Context(), k.OrganizationID, recorder.StartRequest{ApplicationID: app, ConferenceID: call.ConferenceID,
				ConversationID: call.ConferenceID, Audio: true, Duplicate: duplicate, Metadata: agentMetadata(a, call, nil)})
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.agentReply(w, r, k, a.AgentID)
	}
}

func mergeMD(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// stopWhere stops the running recordings of org that keep selects; none is
// a conflict with reason.
func (s *Server) stopWhere(ctx context.Context, org, what string, keep func(*recorder.Recording) bool) error {
	n := 0
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for _, rec := range s.m.Running(org) {
		if keep(rec) {
			n++
			if _, err := s.m.Stop(ctx, org, rec.ConversationID, rec.RecorderID, rec.InstanceID); err != nil {
				return err
			}
		}
	}
	if n == 0 {
		return &recorder.Error{Kind: recorder.KindConflict, Reason: "not_recording", Message: what + " is not being recorded"}
	}
	return nil
}

func (s *Server) agentRecordStop(duplicate bool) authed {
	return func(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
		_, a, call, ok := s.recordCall(w, r, k, duplicate, false)
		if !ok {
			return
		}
		err := s.stopWhere(r.Context(), k.OrganizationID, "call "+call.ConferenceID, func(rec *recorder.Recording) bool {
			return rec.ConferenceID == call.ConferenceID && rec.Only == nil && rec.Duplicate == duplicate
		})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.agentReply(w, r, k, a.AgentID)
	}
}

// agentUpdate merges CallMetadata into the recordings of the agent's active
// call (screen: its screen recordings) and into the call's metadata.
func (s *Server) agentUpdate(screen bool) authed {
	return func(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
		cmd, a, ok := s.agentCommand(w, r, k)
		if !ok {
			return
		}
		if len(cmd.CallMetadata) == 0 {
			writeError(w, http.StatusBadRequest, "missing_field", "CallMetadata is required")
			return
		}
		n := 0
		for _, rec := range s.m.Running(k.OrganizationID) {
			mine := rec.Only == nil && !screen && a.ActiveCall() != nil && rec.ConferenceID == a.ActiveCall().ConferenceID ||
				screen && rec.Only != nil && rec.Only.UserID == a.UserID
			if !mine {
				continue
			}
			n++
			if _, err := s.m.UpdateMetadata(r.Context(), k.OrganizationID, rec.ConversationID, rec.RecorderID, rec.InstanceID, cmd.CallMetadata); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		if n == 0 {
			what := "agent " + strconv.FormatInt(a.AgentID, 10) + "'s active call"
			if screen {
				what = "agent " + strconv.FormatInt(a.AgentID, 10) + "'s screen"
			}
			s.fail(w, r, &recorder.Error{Kind: recorder.KindConflict, Reason: "not_recording", Message: what + " is not being recorded"})
			return
		}
		if c := a.ActiveCall(); c != nil && !screen {
			s.m.SetCallMetadata(k.OrganizationID, a.AgentID, c.ConferenceID, cmd.CallMetadata)
		}
		s.agentReply(w, r, k, a.AgentID)
	}
}

// screenCall is the conference where the agent shares its screen: its active
// call when it shares there, else its latest screen share.
func screenCall(a *recorder.Agent) *recorder.AgentCall {
	if c := a.ActiveCall(); c != nil && c.Screen {
		return c
	}
	var best *recorder.AgentCall
	for i := range a.Calls {
		if c := &a.Calls[i]; c.Screen && (best == nil || !c.Joined.Before(best.Joined)) {
			best = c
		}
	}
	return best
}

func (s *Server) agentScreenStart(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	cmd, a, ok := s.agentCommand(w, r, k)
	if !ok {
		return
	}
	c := screenCall(a)
	if c == nil {
		writeError(w, http.StatusConflict, "no_screen_share", "agent "+strconv.FormatInt(a.AgentID, 10)+" shares no screen now")
		return
	}
	for _, rec := range s.m.Running(k.OrganizationID) {
		if rec.Only != nil && rec.Only.UserID == a.UserID && rec.ConferenceID == c.ConferenceID {
			writeError(w, http.StatusConflict, "already_recording", "agent "+strconv.FormatInt(a.AgentID, 10)+"'s screen is already being recorded ("+rec.InstanceID+")")
			return
		}
	}
	app, err := s.application(k, a.ApplicationID)
	if err == nil {
		conv := c.ConferenceID + screenSuffix
		if len(conv) > recorder.MaxIDLength {
			conv = c.ConferenceID[:recorder.MaxIDLength-len(screenSuffix)] + screenSuffix
		}
		_, err = s.m.Start(r.Context(), k.OrganizationID, recorder.StartRequest{ApplicationID: app, ConferenceID: c.ConferenceID,
			ConversationID: conv, Video: true, Duplicate: true, Metadata: agentMetadata(a, c, cmd.CallMetadata),
			Only: &recorder.TrackFilter{UserID: a.UserID, StreamType: conference.StreamSCREEN}})
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.agentReply(w, r, k, a.AgentID)
}

func (s *Server) agentScreenStop(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	_, a, ok := s.agentCommand(w, r, k)
	if !ok {
		return
	}
	err := s.stopWhere(r.Context(), k.OrganizationID, "agent "+strconv.FormatInt(a.AgentID, 10)+"'s screen", func(rec *recorder.Recording) bool {
		return rec.Only != nil && rec.Only.UserID == a.UserID
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.agentReply(w, r, k, a.AgentID)
}

// agentBlackout starts or stops the blackout of the agent's participant: it
// follows the agent into every conference (seed 003), capped by maxBlackout.
func (s *Server) agentBlackout(stopping bool) authed {
	return func(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
		received := time.Now().UTC()
		cmd, a, ok := s.agentCommand(w, r, k)
		if !ok {
			return
		}
		if len(cmd.CallMetadata) > 0 || cmd.CallIdentifier != "" {
			writeError(w, http.StatusBadRequest, "invalid_field", "a blackout takes AgentIdentifier, Value, BlackoutStartTime, BlackoutStopTime and TimeOffset")
			return
		}
		bc := BlackoutCommand{BlackoutStartTime: cmd.BlackoutStartTime, BlackoutStopTime: cmd.BlackoutStopTime, SeedTimeOffset: cmd.TimeOffset}
		start, stop, err := bc.times(received, stopping)
		if err == nil {
			req := recorder.BlackoutRequest{UserID: a.UserID, Start: start, Stop: stop}
			if stopping {
				_, err = s.m.StopBlackout(r.Context(), k.OrganizationID, req)
			} else {
				_, err = s.m.StartBlackout(r.Context(), k.OrganizationID, req)
			}
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.agentReply(w, r, k, a.AgentID)
	}
}

func (s *Server) agentRegister(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	var reg AgentRegistration
	if !decode(w, r, &reg) {
		return
	}
	c := config.AgentConfig{AgentID: reg.AgentID, AgentPhone: reg.AgentPhone, UserID: reg.UserID, BusinessUnit: reg.BusinessUnit,
		SystemUsername: reg.SystemUsername, CrmUsername: reg.CrmUsername, DeviceID: reg.DeviceID, DeviceAlias: reg.DeviceAlias,
		ApplicationID: reg.ApplicationID}
	if reg.Username != nil {
		c.Username = *reg.Username
	}
	if c.ApplicationID != "" && !s.m.Config().Allows(k, c.ApplicationID) {
		writeError(w, http.StatusNotFound, "unknown_application", "application "+c.ApplicationID+" is not known to this API key")
		return
	}
	a, err := s.m.RegisterAgent(r.Context(), k.OrganizationID, c)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.agentReply(w, r, k, a.AgentID)
}

func (s *Server) agentDelete(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	id, err := recorder.ParseAgentID(r.PathValue("agentId"))
	if err == nil {
		err = s.m.DeleteAgent(r.Context(), k.OrganizationID, id)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
