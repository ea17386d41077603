package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/recorder"
)

// The command envelope of seed 002: POST /api/commands with
// {"command": "interaction.request.recording.{start,stop,pause,resume}",
// "target": "<session-id>.<channel-id>.<interaction-id>" (or with a
// channel-group id: four segments), "data": {…}}. The last segment of the
// target is the conversationId. Every reply echoes command and target: on
// success "result":"success" and the request's data; on failure
// "result":"failure", a failure {code, message, context} and the original
// request. A request that cannot be carried out (unsupported command,
// malformed target, unknown conversation, wrong state) is a failure reply
// with the matching HTTP status (400, 404, 409), never a 500.

// The commands of the envelope.
const (
	CommandStart  = "interaction.request.recording.start"
	CommandStop   = "interaction.request.recording.stop"
	CommandPause  = "interaction.request.recording.pause"
	CommandResume = "interaction.request.recording.resume"
)

// Command is the envelope's request.
type Command struct {
	Command string          `json:"command"`
	Target  string          `json:"target"`
	Data    json.RawMessage `json:"data"`
}

// CommandReply is the envelope's reply.
type CommandReply struct {
	Command  string           `json:"command"`
	Target   string           `json:"target"`
	Result   string           `json:"result"` // success | failure
	Data     json.RawMessage  `json:"data,omitempty"`
	Failure  *CommandFailure  `json:"failure,omitempty"`
	Original *json.RawMessage `json:"original,omitempty"`
}

// CommandFailure is the failure of a CommandReply. Code is a machine word
// (the reason of the error format: unsupported_command, malformed_target,
// not_found, not_active, …); Context holds the underlying error, never a
// stack trace.
type CommandFailure struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Context string `json:"context"`
}

// StartData is the data of a start command: seed 004's StartRecording
// fields, all optional (conversationId comes from the target; conferenceId
// defaults to it; applicationId to the API key's only application).
type StartData struct {
	ApplicationID string            `json:"applicationId"`
	ConferenceID  string            `json:"conferenceId"`
	Audio         *bool             `json:"audio"`
	Video         bool              `json:"video"`
	Duplicate     bool              `json:"duplicate"`
	Metadata      map[string]string `json:"metadata"`
	PauseBehavior string            `json:"pauseBehavior"`
}

func (s *Server) command(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "the body is larger than 64 KiB")
		return
	}
	var cmd Command
	if err := json.Unmarshal(raw, &cmd); err != nil || !json.Valid(raw) {
		writeError(w, http.StatusBadRequest, "malformed_json", "the body is not a command envelope")
		return
	}
	original := json.RawMessage(bytes.TrimSpace(raw))
	fail := func(status int, code, msg string, cause error) {
		f := &CommandFailure{Code: code, Message: msg}
		if cause != nil {
			f.Context = cause.Error()
		}
		writeJSON(w, status, CommandReply{Command: cmd.Command, Target: cmd.Target, Result: "failure", Failure: f, Original: &original})
	}
	failErr := func(err error) {
		var re *recorder.Error
		if errors.As(err, &re) && re.Kind != recorder.KindInternal {
			fail(re.Kind.HTTPStatus(), re.Reason, re.Message, re.Err)
			return
		}
		s.log.Error("command failed", "command", cmd.Command, "err", err)
		fail(http.StatusInternalServerError, "internal", "internal error", nil)
	}
	// Some senders pad the command with a space (seed 002 shows " interaction…").
	name := strings.TrimSpace(cmd.Command)
	switch name {
	case CommandStart, CommandStop, CommandPause, CommandResume:
	default:
		fail(http.StatusBadRequest, "unsupported_command", "command "+quote(cmd.Command)+" is not supported: "+
			"use interaction.request.recording.start, stop, pause or resume", nil)
		return
	}
	conv, ok := targetConversation(cmd.Target)
	if !ok {
		fail(http.StatusBadRequest, "malformed_target",
			"target must be <session-id>.<channel-id>.<interaction-id> or <session-id>.<channel-group-id>.<channel-id>.<interaction-id>", nil)
		return
	}
	data := cmd.Data
	if len(bytes.TrimSpace(data)) == 0 || string(bytes.TrimSpace(data)) == "null" {
		data = json.RawMessage("{}")
	}
	if name == CommandStart {
		var sd StartData
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&sd); err != nil {
			fail(http.StatusBadRequest, "invalid_data", "data is not a start request", err)
			return
		}
		app := sd.ApplicationID
		if app == "" && len(k.Applications) == 1 && k.Applications[0] != "*" {
			app = k.Applications[0]
		}
		if app == "" {
			fail(http.StatusBadRequest, "missing_field", "data.applicationId is required", nil)
			return
		}
		if recorder.ValidateID("applicationId", app) != nil || !s.m.Config().Allows(k, app) {
			fail(http.StatusNotFound, "unknown_application", "application "+quote(app)+" is not known to this API key", nil)
			return
		}
		conf := sd.ConferenceID
		if conf == "" {
			conf = conv
		}
		_, err := s.m.Start(r.Context(), k.OrganizationID, recorder.StartRequest{ApplicationID: app, ConferenceID: conf,
			ConversationID: conv, Audio: sd.Audio == nil || *sd.Audio, Video: sd.Video, Duplicate: sd.Duplicate,
			Metadata: sd.Metadata, PauseBehavior: sd.PauseBehavior})
		if err != nil {
			failErr(err)
			return
		}
		writeJSON(w, http.StatusOK, CommandReply{Command: cmd.Command, Target: cmd.Target, Result: "success", Data: data})
		return
	}
	rs, err := s.m.Conversation(r.Context(), k.OrganizationID, conv)
	if err != nil {
		failErr(err)
		return
	}
	acted := false
	for _, rec := range rs {
		if rec.State != recorder.StateActive {
			continue
		}
		acted = true
		switch name {
		case CommandStop:
			_, err = s.m.Stop(r.Context(), k.OrganizationID, rec.ConversationID, rec.RecorderID, rec.InstanceID)
		case CommandPause:
			_, err = s.m.Pause(r.Context(), k.OrganizationID, rec.ConversationID, rec.RecorderID, rec.InstanceID)
		case CommandResume:
			_, err = s.m.Resume(r.Context(), k.OrganizationID, rec.ConversationID, rec.RecorderID, rec.InstanceID)
		}
		if err != nil {
			failErr(err)
			return
		}
	}
	if !acted && name != CommandStop { // stopping a stopped recording succeeds
		fail(http.StatusConflict, "not_active", "conversation "+conv+" has no active recording", nil)
		return
	}
	writeJSON(w, http.StatusOK, CommandReply{Command: cmd.Command, Target: cmd.Target, Result: "success", Data: data})
}

// targetConversation returns the conversationId of a target: its last
// segment, of three or four non-empty ones.
func targetConversation(target string) (string, bool) {
	seg := strings.Split(target, ".")
	if len(seg) != 3 && len(seg) != 4 {
		return "", false
	}
	for _, s := range seg {
		if s == "" || strings.TrimSpace(s) != s {
			return "", false
		}
	}
	conv := seg[len(seg)-1]
	return conv, recorder.ValidateID("conversationId", conv) == nil
}

func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	b, _ := json.Marshal(s)
	return string(b)
}
