package api

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/recorder"
	"github.com/rtcrec/recorder/recorder/cluster"
	"github.com/rtcrec/recorder/recorder/events"
	"github.com/rtcrec/recorder/storage"
)

// The OpenAPI document (openapi.json, served at /openapi.json) is written by
// TestOpenAPI_Document from the table of routes below and the Go types the
// handlers encode and decode, with examples from the seeds:
//
//	go test ./api -run TestOpenAPI_Document -update
//
// The test fails when the committed document differs from what the table and
// types give, and the contract test (openapi_test.go) validates every
// request and response of the API tests against the committed document. So a
// route, a field or a status missing from the document fails the build.

var updateOpenAPI = flag.Bool("update", false, "rewrite api/openapi.json from the route table and the Go types")

// param is a path or query parameter.
type param struct {
	name, in, desc string
	required       bool
	schema         map[string]any // default {type: string}
}

// resp is one documented response.
type resp struct {
	desc        string
	body        any    // a Go value whose type is the JSON body; nil: none or not JSON
	contentType string // default application/json when body is set
	alt         any    // another body type the response may have instead
	headers     []string
}

// op is one operation: a route the recorder serves.
type op struct {
	method, path, id, summary, tag string
	params                         []param
	body                           any      // JSON request body (a Go value of its type)
	required                       []string // required fields of the request body
	bodyType                       string   // a non-JSON request body's content type
	optionalBody                   bool     // the JSON body may be left out
	responses                      map[int]resp
	public                         bool // no API key (signed URLs, health, metrics, console)
}

func pathParams(names ...string) []param {
	out := make([]param, len(names))
	for i, n := range names {
		s := map[string]any{"type": "string", "pattern": `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`} // recorder.ValidateID
		switch n {
		case "userId":
			s = map[string]any{"type": "string", "maxLength": 256}
		case "file":
			s = map[string]any{"type": "string"}
		case "kind":
			s = map[string]any{"type": "string", "enum": []string{"track", "composition", "cobrowse", "transcript"}}
		}
		out[i] = param{name: n, in: "path", required: true, schema: s}
	}
	return out
}

func query(name, desc string, schema map[string]any) param {
	if schema == nil {
		schema = map[string]any{"type": "string"}
	}
	return param{name: name, in: "query", desc: desc, schema: schema}
}

var (
	rec3    = pathParams("conversationId", "recorderId", "instanceId")
	recBase = "/api/recordings/{conversationId}/{recorderId}/{instanceId}"
	errResp = resp{desc: "Error", body: ErrorMessage{}}
	// internalErr is the owner's error as it crosses the fleet: kind, reason, message.
	internalErr = resp{desc: "The owner's error (kind, reason, message, retryAfter)", contentType: "application/json"}
	okEvent     = map[int]resp{200: {desc: "The recording's state", body: RecordingDataEvent{}}}
	text        = map[string]any{"type": "string"}
	integer     = func(min, max int) map[string]any {
		return map[string]any{"type": "integer", "minimum": min, "maximum": max}
	}
)

// metadataReply is the reply of POST .../metadata.
type metadataReply struct {
	RecordingDataEvent
	Metadata map[string]string `json:"metadata"`
}

// routes is every route the recorder serves (api.go, lifecycle.go,
// telephony.go, search.go, console.go, service.go and the WHIP endpoint).
func routes() []op {
	ops := []op{
		// Seed 004.
		{method: "POST", path: "/api/recordings/start", id: "startRecording", tag: "recordings", summary: "Start recording a conference",
			body: StartRecording{}, required: []string{"applicationId", "conferenceId", "conversationId"},
			responses: map[int]resp{200: {desc: "The new recording (ACTIVE, or FAILED with an error)", body: RecordingDataEvent{}},
				503: {desc: "No instance has room (no_capacity: every instance of the fleet is full or draining); retry after Retry-After seconds", body: ErrorMessage{}, headers: []string{"Retry-After"}}}},
		{method: "POST", path: recBase + "/stop", id: "stopRecording", tag: "recordings", summary: "Stop a recording; returns once its files are uploaded (idempotent)",
			params: rec3, responses: okEvent},
		{method: "GET", path: recBase + "/state", id: "getRecordingState", tag: "recordings", summary: "A recording's state", params: rec3, responses: okEvent},
		{method: "GET", path: recBase + "/storage/info", id: "getRecordingStorage", tag: "recordings", summary: "Where a recording is stored (never credentials)",
			params: rec3, responses: map[int]resp{200: {desc: "The storage profile", body: StorageProfileDataMessage{}}}},
		{method: "GET", path: recBase, id: "getRecording", tag: "recordings", summary: "A recording: streams, tracks, storage and a signed URL per track",
			params: rec3, responses: map[int]resp{200: {desc: "The recording", body: RecordingDataMessage{}}}},
		{method: "GET", path: "/api/recordings/{conversationId}", id: "getConversation", tag: "recordings", summary: "The recordings of a conversation",
			params: pathParams("conversationId"), responses: map[int]resp{200: {desc: "The conversation", body: ConversationMessage{}}}},
		{method: "GET", path: "/api/recordings/{conversationId}/active", id: "getActiveRecording", tag: "recordings", summary: "The conversation's ACTIVE recording (404 when none)",
			params: pathParams("conversationId"), responses: okEvent},
		{method: "GET", path: "/api/compositions/{conversationId}", id: "getComposition", tag: "recordings", summary: "The newest recording of a conversation with its composition (mix, manifest)",
			params: pathParams("conversationId"), responses: map[int]resp{200: {desc: "The recording and composition", body: RecordingDataMessage{}}}},
		{method: "POST", path: recBase[:len("/api/")] + "compositions/{conversationId}/{recorderId}/{instanceId}", id: "requestComposite", tag: "recordings",
			summary: "Ask for composite.mp4 of a finished recording (optional JSON body: layout)", params: rec3, bodyType: "application/json", optionalBody: true,
			responses: map[int]resp{202: {desc: "Accepted: the recording with its composition", body: RecordingDataMessage{}}}},
		{method: "POST", path: "/api/storageproviders/{applicationId}/verify", id: "verifyStorage", tag: "storage", summary: "Run the bucket, write, read, modify and delete checks on an application's storage profile",
			params: pathParams("applicationId"), responses: map[int]resp{200: {desc: "The five checks", body: storage.VerifyResult{}}}},
		{method: "POST", path: "/api/recordings/chat/transcript/add", id: "addChatTranscript", tag: "attachments", summary: "Add chat messages to a recording",
			body: AddChatTranscriptCmd{}, required: []string{"conversationId", "recorderId", "instanceId", "chatTranscriptList"},
			responses: map[int]resp{200: {desc: "The chat transcript", body: ChatTranscriptData{}}}},
		{method: "POST", path: "/api/recordings/cobrowse/event", id: "addCobrowseEvent", tag: "attachments", summary: "Add a cobrowse event to a recording",
			body: AddCobrowseEventCmd{}, required: []string{"conversationId", "recorderId", "instanceId", "event"},
			responses: map[int]resp{200: {desc: "Accepted", body: struct{}{}}}},
		{method: "GET", path: "/api/recordings/{conversationId}/cobrowse", id: "listCobrowseSessions", tag: "attachments", summary: "The cobrowse sessions of a conversation",
			params: pathParams("conversationId"), responses: map[int]resp{200: {desc: "The sessions", body: ConversationCobrowseSessionDataMessage{}}}},
		{method: "GET", path: recBase + "/cobrowse/{sessionId}/url/attachment", id: "getCobrowseURL", tag: "attachments", summary: "A signed URL of a cobrowse session's events",
			params: append(slices.Clone(rec3), pathParams("sessionId")...), responses: map[int]resp{200: {desc: "The signed URL", body: URLResourceMessage{}}}},
		{method: "GET", path: "/api/recordings/attachment/{kind}/{conversationId}/{recorderId}/{instanceId}/{file}", id: "getAttachment", tag: "attachments", public: true,
			summary: "An object of LOCAL or SFTP storage through its signed URL (Range supported); the signature is the right to read",
			params:  append(pathParams("kind", "conversationId", "recorderId", "instanceId", "file"), query("Date", "", nil), query("Expires", "", nil), query("Signature", "", nil)),
			responses: map[int]resp{200: {desc: "The object (its own content type)", contentType: "*/*"}, 206: {desc: "A range of the object", contentType: "*/*"},
				403: {desc: "Invalid or expired signature", body: ErrorMessage{}}}},
		{method: "GET", path: "/api/recordings/attachment/{kind}/{conversationId}/{recorderId}/{instanceId}/{sessionId}/{file}", id: "getCobrowseAttachment", tag: "attachments", public: true,
			summary: "A cobrowse session's object through its signed URL",
			params:  append(pathParams("kind", "conversationId", "recorderId", "instanceId", "sessionId", "file"), query("Date", "", nil), query("Expires", "", nil), query("Signature", "", nil)),
			responses: map[int]resp{200: {desc: "The object (its own content type)", contentType: "*/*"}, 206: {desc: "A range of the object", contentType: "*/*"},
				403: {desc: "Invalid or expired signature", body: ErrorMessage{}}}},

		// Seeds 000, 002, 003: the contact-centre extensions.
		{method: "POST", path: recBase + "/pause", id: "pauseRecording", tag: "lifecycle", summary: "Pause: paused audio reaches no file (again: no-op)", params: rec3, responses: okEvent},
		{method: "POST", path: recBase + "/resume", id: "resumeRecording", tag: "lifecycle", summary: "Resume a paused recording", params: rec3, responses: okEvent},
		{method: "POST", path: recBase + "/metadata", id: "updateMetadata", tag: "lifecycle", summary: "Merge metadata into a recording (metadata or seed 003's CallMetadata)",
			params: rec3, body: MetadataUpdate{}, responses: map[int]resp{200: {desc: "The recording with its metadata", body: metadataReply{}}}},
		{method: "GET", path: "/api/recordings/{conversationId}/status", id: "getStatusHistory", tag: "lifecycle", summary: "Seed 000: start, pause, resume and stop history",
			params: pathParams("conversationId"), responses: map[int]resp{200: {desc: "The history", body: StatusHistory{}},
				404: {desc: "No recording for this engagement (code 2817)", body: NoRecording{}}}},
		{method: "POST", path: "/api/blackouts/start", id: "startBlackout", tag: "lifecycle", summary: "Silence one participant in every recording",
			body: BlackoutCommand{}, responses: map[int]resp{200: {desc: "The blackout", body: BlackoutMessage{}}}},
		{method: "POST", path: "/api/blackouts/stop", id: "stopBlackout", tag: "lifecycle", summary: "End a participant's blackout",
			body: BlackoutCommand{}, responses: map[int]resp{200: {desc: "The blackout", body: BlackoutMessage{}}}},
		{method: "GET", path: "/api/participants", id: "listParticipants", tag: "lifecycle", summary: "Seed 003: who is being recorded now",
			responses: map[int]resp{200: {desc: "The participants", body: []ParticipantMessage{}}}},
		{method: "GET", path: "/api/participants/{userId}", id: "getParticipant", tag: "lifecycle", summary: "Seed 003: one participant's calls and blackout",
			params: pathParams("userId"), responses: map[int]resp{200: {desc: "The participant", body: ParticipantMessage{}}}},
		{method: "POST", path: "/api/commands", id: "command", tag: "lifecycle", summary: "Seed 002: the command envelope (start, stop, pause, resume)",
			body: Command{}, required: []string{"command", "target"},
			responses: map[int]resp{200: {desc: "Success or failure", body: CommandReply{}}, 400: {desc: "Failure, or a body that is not an envelope (ErrorMessage)", body: CommandReply{}, alt: ErrorMessage{}},
				404: {desc: "Failure", body: CommandReply{}}, 409: {desc: "Failure", body: CommandReply{}}, 422: {desc: "Failure", body: CommandReply{}}}},

		// Seed 001: the telephony view, at the seed's paths and under /v1 (telephonyOps).

		// Publish tokens (token.go) and the fleet's internal commands.
		{method: "POST", path: "/api/publishtokens", id: "createPublishToken", tag: "security", summary: "A short-lived token that lets one participant publish over WHIP to one conference",
			body: PublishTokenRequest{}, required: []string{"conferenceId", "userId"},
			responses: map[int]resp{200: {desc: "The token", body: PublishTokenMessage{}}}},
		{method: "POST", path: "/internal/cluster/v1/command", id: "clusterCommand", tag: "fleet", public: true,
			summary:  "Internal: a command forwarded by another instance of the fleet, signed with the fleet's secret (not for clients)",
			bodyType: "application/json", responses: map[int]resp{200: {desc: "The command's result", contentType: "application/json"},
				400: internalErr, 404: internalErr, 409: internalErr, 413: internalErr, 429: internalErr, 500: internalErr, 503: internalErr}},

		// Operator routes (search.go).
		{method: "GET", path: "/api/recordings", id: "searchRecordings", tag: "operator", summary: "Search the organization's recordings, newest first",
			params: []param{query("state", "comma-separated states", nil), query("conversationId", "", nil), query("conferenceId", "", nil),
				query("participant", "a userId", nil), query("from", "RFC 3339, on the start", map[string]any{"type": "string", "format": "date-time"}),
				query("to", "RFC 3339, on the start", map[string]any{"type": "string", "format": "date-time"}), query("limit", "1 to 100 (default 20)", integer(1, 100)),
				query("pageToken", "", nil)},
			responses: map[int]resp{200: {desc: "A page", body: RecordingList{}}}},
		{method: "GET", path: recBase + "/files", id: "getRecordingFiles", tag: "operator", summary: "Every file of a recording with size, SHA-256, upload status and signed URL",
			params: rec3, responses: map[int]resp{200: {desc: "The files", body: RecordingFiles{}}}},
		{method: "GET", path: "/api/keys/self", id: "getKeySelf", tag: "operator", summary: "The caller's API key: organization, scopes, applications (never the key); any scope may ask",
			responses: map[int]resp{200: {desc: "The key", body: KeyInfo{}}}},
		{method: "GET", path: "/api/applications", id: "listApplications", tag: "operator", summary: "The applications the key may use, with their conference adapter and storage profile names (no credentials)",
			responses: map[int]resp{200: {desc: "The applications", body: ApplicationList{}}}},

		// Events, WHIP, health, metrics, the console and this document.
		{method: "GET", path: "/api/events", id: "events", tag: "events", summary: "Server-Sent Events of the organization's recordings; resume with Last-Event-ID",
			params:    []param{query("lastEventId", "resume after this event id (or the Last-Event-ID header)", nil), {name: "Last-Event-ID", in: "header", schema: text}},
			responses: map[int]resp{200: {desc: "The event stream: id, event (the type) and data (an Event) per event", body: events.Event{}, contentType: "text/event-stream"}}},
		{method: "POST", path: "/whip/{conferenceId}", id: "whipPublish", tag: "whip", summary: "WHIP (RFC 9725): publish a participant's media",
			params:   append(pathParams("conferenceId"), query("userId", "the participant", nil), query("type", "MIC, CAM, SCREEN, ...", nil)),
			bodyType: "application/sdp", responses: map[int]resp{201: {desc: "The SDP answer", contentType: "application/sdp", headers: []string{"Location", "ETag"}},
				307: {desc: "In a fleet: the conference is pinned to another instance; post the offer again to Location", headers: []string{"Location"}}}},
		{method: "PATCH", path: "/whip/{conferenceId}/{sessionId}", id: "whipPatch", tag: "whip", summary: "WHIP: trickle ICE and ICE restart are not supported (405)",
			params: pathParams("conferenceId", "sessionId"), bodyType: "application/trickle-ice-sdpfrag",
			responses: map[int]resp{405: {desc: "Not supported: the answer carries every candidate", body: ErrorMessage{}}}},
		{method: "DELETE", path: "/whip/{conferenceId}/{sessionId}", id: "whipDelete", tag: "whip", summary: "WHIP: leave",
			params: pathParams("conferenceId", "sessionId"), responses: map[int]resp{200: {desc: "Left"}}},
		{method: "OPTIONS", path: "/whip/{conferenceId}", id: "whipOptions", tag: "whip", summary: "WHIP: CORS preflight and ICE servers", public: true,
			params: pathParams("conferenceId"), responses: map[int]resp{204: {desc: "Allowed methods", headers: []string{"Allow", "Access-Control-Allow-Methods"}}}},
		{method: "GET", path: "/healthz", id: "healthz", tag: "service", summary: "Liveness", public: true,
			responses: map[int]resp{200: {desc: "ok", contentType: "text/plain"}}},
		{method: "GET", path: "/readyz", id: "readyz", tag: "service", summary: "Readiness: 503 while shutting down or at capacity (no_capacity, Retry-After); the body gives load and capacity in streams", public: true,
			responses: map[int]resp{200: {desc: "ok load=N capacity=M", contentType: "text/plain"}, 503: errResp}},
		{method: "GET", path: "/metrics", id: "metrics", tag: "service", summary: "Prometheus metrics", public: true,
			responses: map[int]resp{200: {desc: "Prometheus text format", contentType: "text/plain"}}},
		{method: "GET", path: "/openapi.json", id: "openapi", tag: "service", summary: "This document", public: true,
			responses: map[int]resp{200: {desc: "OpenAPI 3.1", contentType: "application/json"}}},
		{method: "GET", path: "/console", id: "consoleRedirect", tag: "service", summary: "Redirect to /console/", public: true,
			responses: map[int]resp{301: {desc: "To /console/", headers: []string{"Location"}}}},
		{method: "GET", path: "/console/", id: "console", tag: "service", summary: "The web console", public: true,
			responses: map[int]resp{200: {desc: "HTML", contentType: "text/html"}}},
		{method: "GET", path: "/console/{file}", id: "consoleFile", tag: "service", summary: "The web console's files", public: true,
			params: []param{{name: "file", in: "path", required: true, schema: text}}, responses: map[int]resp{200: {desc: "A file of the console", contentType: "*/*"}}},
	}
	ops = append(ops, telephonyOps()...)
	ops = append(ops, agentOps()...)
	// Seed 004's routes are served under its own prefix too.
	for _, o := range ops {
		if seed004Ops[o.id] {
			o.path, o.id = Seed004Prefix+o.path, o.id+"Seed004"
			o.summary += " (seed 004's path)"
			ops = append(ops, o)
		}
	}
	return ops
}

var seed004Ops = map[string]bool{"startRecording": true, "stopRecording": true, "getRecordingState": true, "getRecordingStorage": true,
	"getRecording": true, "getConversation": true, "getActiveRecording": true, "getComposition": true, "verifyStorage": true,
	"addChatTranscript": true, "addCobrowseEvent": true, "listCobrowseSessions": true, "getCobrowseURL": true,
	"getAttachment": true, "getCobrowseAttachment": true}

// telephonyOps are seed 001's routes at the seed's paths and under /v1.
func telephonyOps() []op {
	var ops []op
	for _, base := range []string{"", "/v1"} {
		v := strings.TrimPrefix(base, "/")
		ops = append(ops,
			op{method: "GET", path: base + "/recordings", id: v + "listTelephonyRecordings", tag: "telephony", summary: "Seed 001: recordings, newest first",
				params: []param{query("page_size", "1 to 100", integer(1, 100)), query("page_token", "", nil), query("status", "initiating, recording, stopping, ended", nil),
					query("reference_id", "", nil), query("reference_type", "call or confbridge", nil)},
				responses: map[int]resp{200: {desc: "A page", body: TelephonyList{}}}},
			op{method: "GET", path: base + "/recordings/{id}", id: v + "getTelephonyRecording", tag: "telephony", summary: "Seed 001: one recording",
				params: pathParams("id"), responses: map[int]resp{200: {desc: "The recording", body: TelephonyRecording{}}}},
			op{method: "DELETE", path: base + "/recordings/{id}", id: v + "deleteTelephonyRecording", tag: "telephony", summary: "Seed 001: delete a finished recording's objects (soft delete)",
				params: pathParams("id"), responses: map[int]resp{200: {desc: "The deleted recording", body: TelephonyRecording{}}}},
			op{method: "GET", path: base + "/recordingfiles/{id}", id: v + "getTelephonyRecordingFile", tag: "telephony", summary: "Seed 001: a redirect to a signed URL of the mix",
				params: pathParams("id"), responses: map[int]resp{307: {desc: "Redirect to the signed URL", headers: []string{"Location"}}}},
		)
		for _, kind := range []string{"calls", "conferences"} {
			ops = append(ops,
				op{method: "POST", path: base + "/" + kind + "/{id}/recording_start", id: v + kind + "RecordingStart", tag: "telephony",
					summary: "Seed 001: start recording a call or conference (optional body)", params: pathParams("id"), body: CallRecordingStart{}, optionalBody: true,
					responses: map[int]resp{200: {desc: "The recording", body: TelephonyRecording{}}}},
				op{method: "POST", path: base + "/" + kind + "/{id}/recording_stop", id: v + kind + "RecordingStop", tag: "telephony",
					summary: "Seed 001: stop recording a call or conference", params: pathParams("id"),
					responses: map[int]resp{200: {desc: "The recording", body: TelephonyRecording{}}}},
			)
		}
	}
	return ops
}

// agentOps are seed 003's agent routes (matched case-insensitively) and the
// admin routes of agents.
func agentOps() []op {
	agent := map[int]resp{200: {desc: "The agent, with its calls and recordings", body: AgentMessage{}}}
	cmd := func(path, id, summary string) op {
		return op{method: "POST", path: path, id: id, tag: "agents", summary: "Seed 003: " + summary, body: AgentCommand{},
			required: []string{"AgentIdentifier", "Value"}, responses: agent}
	}
	return []op{
		{method: "GET", path: "/api/Agent", id: "getAgent", tag: "agents", summary: "Seed 003: an agent by Id or Phone",
			params: []param{query("agentIdentifier", "Id or Phone", nil), query("value", "", nil)}, responses: agent},
		{method: "GET", path: "/api/Agent/GetAll", id: "getAllAgents", tag: "agents", summary: "Seed 003: every agent",
			responses: map[int]resp{200: {desc: "The agents", body: []AgentMessage{}}}},
		cmd("/api/Blackout/StartForAgent", "agentBlackoutStart", "blackout an agent"),
		cmd("/api/Blackout/StopForAgent", "agentBlackoutStop", "end an agent's blackout"),
		cmd("/api/Record/StartForAgent", "agentRecordStart", "record the agent's active call"),
		cmd("/api/Record/StopForAgent", "agentRecordStop", "stop recording the agent's call"),
		cmd("/api/Record/UpdateForAgent", "agentRecordUpdate", "update the call recording's metadata"),
		cmd("/api/Record/StartDuplicateForAgent", "agentRecordStartDuplicate", "a duplicate recording of a call"),
		cmd("/api/Record/StopDuplicateForAgent", "agentRecordStopDuplicate", "stop a duplicate recording"),
		cmd("/api/ScreenRecord/StartForAgent", "agentScreenStart", "record the agent's screen"),
		cmd("/api/ScreenRecord/UpdateForAgent", "agentScreenUpdate", "update the screen recording's metadata"),
		cmd("/api/ScreenRecord/StopForAgent", "agentScreenStop", "stop recording the agent's screen"),
		{method: "POST", path: "/api/agents", id: "registerAgent", tag: "agents", summary: "Declare an agent before it publishes (admin)",
			body: AgentRegistration{}, responses: agent},
		{method: "DELETE", path: "/api/agents/{agentId}", id: "deleteAgent", tag: "agents", summary: "Forget an agent (admin)",
			params: []param{{name: "agentId", in: "path", required: true, schema: map[string]any{"type": "integer"}}}, responses: map[int]resp{204: {desc: "Forgotten"}}},
	}
}

// seedSchemaNames are the seeds' names of Go types whose Go name differs.
var seedSchemaNames = map[string]string{
	"ErrorData":    "Error",                            // seed 004's Error
	"VerifyResult": "StorageVerificationStatusMessage", // storage.VerifyResult
	"CheckResult":  "StorageTestResult",                // storage.CheckResult
}

// seedEnums are the enumerated values of the seeds' fields ("GoType.field"),
// with LOCAL, the provider this recorder adds. TestOpenAPI_SeedSchemas
// checks them against seed 004's "Enumerated Values".
var (
	recordingStates = []string{"ABORTED", "ACTIVE", "FAILED", "INITIALISED", "PENDING_RECOVERY", "STOPPED"}
	providers       = []string{"AMAZON_S3", "AZURE_BLOB", "GOOGLE_CLOUD", "SFTP_STORAGE", "LOCAL"}
	streamTypes     = []string{"CAM", "HOLD", "MIC", "SCREEN", "UNKNOWN", "VIDEO"}
	trackTypes      = []string{"AUDIO", "VIDEO"}
	seedEnums       = map[string][]string{
		"RecordingDataEvent.state":           recordingStates,
		"RecordingDataMessage.state":         recordingStates,
		"RecordingSummary.state":             recordingStates,
		"RecordingFiles.state":               recordingStates,
		"StorageProfileDataMessage.provider": providers,
		"ConversationMessage.provider":       providers,
		"StreamDataMessage.type":             streamTypes,
		"StreamDataMessage.state":            {"FAILED", "RECORDING", "STOPPED"},
		"ConversationStreamData.type":        streamTypes,
		"TrackDataMessage.type":              trackTypes,
		"ConversationTrackData.type":         trackTypes,
	}
)

// schemaGen turns Go types into JSON Schemas under components.schemas.
type schemaGen struct {
	schemas map[string]any
	request bool     // generating request bodies: no required fields but the given
	names   []string // types being generated (recursion guard)
}

var (
	timeType  = reflect.TypeFor[time.Time]()
	rawType   = reflect.TypeFor[json.RawMessage]()
	eventType = reflect.TypeFor[events.Event]()
)

// eventTypes are the event types the recorder publishes (recorder/events).
var eventTypes = []string{string(events.StateUpdated), string(events.RecordingPaused), string(events.RecordingResumed),
	string(events.BlackoutStarted), string(events.BlackoutStopped), string(events.UploadCompleted), string(events.UploadFailed),
	string(events.CompositionPending), string(events.CompositionProcessing), string(events.CompositionCompleted), string(events.CompositionFailed)}

// BlackoutEvent is the data of blackout.* events (recorder/notify.go
// blackoutEvent, unexported there; the contract check of every event the
// tests receive keeps the two the same).
type BlackoutEvent struct {
	UserID       string    `json:"userId"`
	ConferenceID string    `json:"conferenceId,omitempty"`
	Start        time.Time `json:"start"`
	Stop         time.Time `json:"stop"`
	Recordings   []string  `json:"recordings"`
}

func (g *schemaGen) of(t reflect.Type, nullable bool) map[string]any {
	s := g.bare(t)
	if nullable {
		if ref, ok := s["$ref"]; ok {
			return map[string]any{"anyOf": []any{map[string]any{"$ref": ref}, map[string]any{"type": "null"}}}
		}
		if typ, ok := s["type"].(string); ok {
			s["type"] = []any{typ, "null"}
		}
	}
	return s
}

func (g *schemaGen) bare(t reflect.Type) map[string]any {
	switch {
	case t.Name() == "flexString": // a string that may be sent as a number (agents.go)
		return map[string]any{"type": []any{"string", "number"}}
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType:
		return map[string]any{}
	case t == eventType: // data is a recording's or a blackout's event, by type
		if _, done := g.schemas["Event"]; !done {
			s := g.object(t)
			s["properties"].(map[string]any)["type"] = map[string]any{"type": "string", "enum": eventTypes}
			s["properties"].(map[string]any)["data"] = map[string]any{"oneOf": []any{
				g.of(reflect.TypeFor[recorder.RecordingEvent](), false), g.of(reflect.TypeFor[BlackoutEvent](), false)}}
			g.schemas["Event"] = s
		}
		return map[string]any{"$ref": "#/components/schemas/Event"}
	case t.Name() == "MixSettings": // "none", or an object whose latency is a duration string or nanoseconds (recorder/config.go)
		if _, done := g.schemas["MixSettings"]; !done {
			g.schemas["MixSettings"] = map[string]any{"oneOf": []any{
				map[string]any{"const": "none", "description": "no mix: tracks only"},
				map[string]any{"type": "object", "additionalProperties": false, "properties": map[string]any{
					"sampleRate": map[string]any{"type": "integer"},
					"channels":   map[string]any{"type": "integer"},
					"latency":    map[string]any{"type": []any{"string", "integer"}, "description": "a Go duration (\"5s\") or nanoseconds"},
				}},
			}}
		}
		return map[string]any{"$ref": "#/components/schemas/MixSettings"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.bare(t.Elem())
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": g.of(t.Elem(), false)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.of(t.Elem(), false)}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		if t.Name() == "" || strings.HasPrefix(t.Name(), "metadataReply") {
			return g.object(t)
		}
		name := t.Name()
		if seedName, ok := seedSchemaNames[name]; ok {
			name = seedName
		}
		if _, done := g.schemas[name]; !done && !slices.Contains(g.names, name) {
			g.names = append(g.names, name)
			g.schemas[name] = g.object(t)
			g.names = g.names[:len(g.names)-1]
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	panic("openapi: no schema for " + t.String())
}

// object is a struct's schema: its JSON fields, no others.
func (g *schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" || (!f.IsExported() && !f.Anonymous) {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" {
				walk(f.Type)
				continue
			}
			if name == "" {
				name = f.Name
			}
			optional := strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")
			// Go writes a nil pointer, map or RawMessage as null; and reads
			// null into any pointer, map or slice of a request.
			k := f.Type.Kind()
			nullable := !optional && (k == reflect.Pointer || k == reflect.Map || f.Type == rawType) ||
				g.request && (k == reflect.Pointer || k == reflect.Map || k == reflect.Slice)
			props[name] = g.of(f.Type, nullable)
			if values, ok := seedEnums[t.Name()+"."+name]; ok {
				props[name].(map[string]any)["enum"] = values
			}
			if !optional && !g.request {
				required = append(required, name)
			}
		}
	}
	walk(t)
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		slices.Sort(required)
		s["required"] = required
	}
	return s
}

// document builds the OpenAPI document.
func document(t *testing.T) map[string]any {
	resGen := &schemaGen{schemas: map[string]any{}}
	reqGen := &schemaGen{schemas: resGen.schemas, request: true}
	paths := map[string]any{}
	for _, o := range routes() {
		operation := map[string]any{"operationId": o.id, "summary": o.summary, "tags": []string{o.tag}}
		if o.public {
			operation["security"] = []any{}
		}
		var params []any
		for _, p := range o.params {
			s := p.schema
			if s == nil {
				s = text
			}
			pm := map[string]any{"name": p.name, "in": p.in, "schema": s}
			if p.required {
				pm["required"] = true
			}
			if p.desc != "" {
				pm["description"] = p.desc
			}
			params = append(params, pm)
		}
		if len(params) > 0 {
			operation["parameters"] = params
		}
		switch {
		case o.body != nil:
			s := reqGen.of(reflect.TypeOf(o.body), false)
			if len(o.required) > 0 {
				s = map[string]any{"allOf": []any{s}, "required": o.required}
			}
			operation["requestBody"] = map[string]any{"required": !o.optionalBody, "content": map[string]any{"application/json": map[string]any{"schema": s}}}
		case o.bodyType == "application/json":
			operation["requestBody"] = map[string]any{"required": !o.optionalBody, "content": map[string]any{o.bodyType: map[string]any{"schema": map[string]any{"type": "object"}}}}
		case o.bodyType != "":
			operation["requestBody"] = map[string]any{"required": true, "content": map[string]any{o.bodyType: map[string]any{"schema": text}}}
		}
		responses := map[string]any{}
		for status, r := range o.responses {
			rm := map[string]any{"description": r.desc}
			ct := r.contentType
			if ct == "" && r.body != nil {
				ct = "application/json"
			}
			if ct != "" {
				var s map[string]any
				switch {
				case r.body != nil && ct == "application/json":
					s = resGen.of(reflect.TypeOf(r.body), false)
					if r.alt != nil {
						s = map[string]any{"anyOf": []any{s, resGen.of(reflect.TypeOf(r.alt), false)}}
					}
				case r.body != nil: // the event stream: each event's data is one (x-itemSchema, as OpenAPI 3.2's itemSchema)
					ref := resGen.of(reflect.TypeOf(r.body), false)["$ref"].(string)
					s = map[string]any{"type": "string", "description": "events whose data lines are each a " + ref, "x-itemSchema": map[string]any{"$ref": ref}}
				case ct == "*/*" || ct == "application/json":
					s = map[string]any{} // the object's own content, or opaque JSON
				default:
					s = map[string]any{"type": "string"}
				}
				rm["content"] = map[string]any{ct: map[string]any{"schema": s}}
			}
			if len(r.headers) > 0 {
				hs := map[string]any{}
				for _, h := range r.headers {
					hs[h] = map[string]any{"schema": text}
				}
				rm["headers"] = hs
			}
			responses[strconv.Itoa(status)] = rm
		}
		if _, ok := o.responses[0]; !ok {
			responses["default"] = map[string]any{"description": "An error: 4xx or 5xx",
				"content": map[string]any{"application/json": map[string]any{"schema": resGen.of(reflect.TypeFor[ErrorMessage](), false)}}}
		}
		operation["responses"] = responses
		item, _ := paths[o.path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[o.path] = item
		}
		item[strings.ToLower(o.method)] = operation
	}
	addSeedExamples(t, resGen.schemas)
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "recorder", "version": "1",
			"description": "The recorder's HTTP API: seed 004 (recordings, compositions, storage verification, chat and cobrowse), seeds 000-003 " +
				"(pause, resume, status history, metadata, blackouts, participants, the command envelope, the telephony view), WHIP, events, " +
				"signed attachments, the operator routes and health. Errors are ErrorMessage. Written by TestOpenAPI_Document (api/openapi_gen_test.go)."},
		"servers":  []any{map[string]any{"url": "/"}},
		"security": []any{map[string]any{"apiKey": []any{}}, map[string]any{"bearer": []any{}}},
		"paths":    paths,
		"components": map[string]any{"schemas": resGen.schemas, "securitySchemes": map[string]any{
			"apiKey": map[string]any{"type": "apiKey", "in": "header", "name": "Authorization", "description": "Authorization: <key>"},
			"bearer": map[string]any{"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
		}},
	}
}

// addSeedExamples puts the seeds' JSON examples on their schemas: every
// schema of seed 004's "Schemas" section (but Resource and InputStream: the
// attachment routes answer with the object itself), seed 000's history and
// error, seed 001's recording, seed 002's command envelope and seed 003's
// agent and agent command. Load validates each against its schema.
func addSeedExamples(t *testing.T, schemas map[string]any) {
	s000, s001, s003 := seedFile(t, "000"), seedFile(t, "001"), seedFile(t, "003")
	examples := map[string][]any{
		"StatusHistory":      {seedObject(t, s000, "After the same call was paused")},
		"NoRecording":        {seedObject(t, s000, "New call, ad-hoc recording")},
		"TelephonyRecording": {seedObject(t, s001, "Recording")},
		"AgentMessage":       {seedObject(t, s003, "The following data is returned with successful execution of this command:")},
		"AgentCommand": {seedObject(t, s003, "api/Record/StartForAgent {"), seedObject(t, s003, "api/Record/UpdateForAgent {"),
			seedObject(t, s003, "api/ScreenRecord/StartForAgent {")},
		// Seed 002's envelope, copied from its (garbled) text.
		"Command": {map[string]any{"command": "interaction.request.recording.stop", "target": "<session-id>.<channel-id>.<interaction-id>", "data": map[string]any{}}},
		"CommandReply": {
			map[string]any{"command": " interaction.request.recording.stop", "target": "<session-id>.<channel-id>.<interaction-id>", "result": "success", "data": map[string]any{}},
			map[string]any{"command": " interaction.request.recording.stop", "target": "<session-id>.<channel-id>.<interaction-id>", "result": "failure",
				"failure":  map[string]any{"code": "<error-code-for-failure>", "message": "<error-message>", "context": "<stack-trace-if-applicable>"},
				"original": map[string]any{"command": "interaction.request.recording.stop", "target": "<session-id>.<channel-id>.<interaction-id>", "data": map[string]any{}}},
		},
	}
	for name, sch := range seed004Schemas(t) {
		if !seed004Unserved[name] {
			examples[name] = []any{sch.example}
		}
	}
	for name, ex := range examples {
		s, ok := schemas[name].(map[string]any)
		if !ok {
			t.Fatalf("no schema %s for the seed example", name)
		}
		s["examples"] = ex
	}
}

// seed004Unserved are seed 004's schemas of no reply of ours: the attachment
// routes answer with the object itself (*/*), not a Resource.
var seed004Unserved = map[string]bool{"Resource": true, "InputStream": true}

// seedSchema is one schema of seed 004's "Schemas" section: its example
// and its enumerated values by property.
type seedSchema struct {
	example map[string]any
	enums   map[string][]string
}

// seed004Schemas parses seed 004's "Schemas" section.
func seed004Schemas(t *testing.T) map[string]seedSchema {
	seed := seedFile(t, "004")
	i := strings.Index(seed, "\nSchemas\n")
	if i < 0 {
		t.Fatal("seed 004 has no Schemas section")
	}
	section := seed[i:]
	starts := regexp.MustCompile(`(?m)^([A-Z][A-Za-z]+)\n\n\{`).FindAllStringSubmatchIndex(section, -1)
	enumLine := regexp.MustCompile(`^([a-z]+(?:[A-Z][a-z]+)*)([A-Z][A-Z0-9_]*)$`) // "stateACTIVE", "providerAMAZON_S3"
	out := map[string]seedSchema{}
	for k, m := range starts {
		name := section[m[2]:m[3]]
		end := len(section)
		if k+1 < len(starts) {
			end = starts[k+1][0]
		}
		block := section[m[0]:end]
		sch := seedSchema{example: seedObject(t, block, name), enums: map[string][]string{}}
		if _, after, ok := strings.Cut(block, "Enumerated Values\nPropertyValue\n"); ok {
			for _, line := range strings.Split(after, "\n") {
				e := enumLine.FindStringSubmatch(strings.TrimSpace(line))
				if e == nil {
					break
				}
				sch.enums[e[1]] = append(sch.enums[e[1]], e[2])
			}
		}
		out[name] = sch
	}
	if len(out) < 25 {
		t.Fatalf("seed 004: %d schemas parsed, want 27", len(out))
	}
	return out
}

// TestOpenAPI_SeedSchemas: every schema of seed 004 that a reply or request
// of ours carries is in the document under the seed's name, with the seed's
// example (which the loader validates against it) and with the seed's
// enumerated values; every property the seed lists is one of ours.
func TestOpenAPI_SeedSchemas(t *testing.T) {
	doc, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	for name, seed := range seed004Schemas(t) {
		if seed004Unserved[name] {
			continue
		}
		ref := doc.T.Components.Schemas[name]
		if ref == nil || ref.Value == nil {
			t.Errorf("seed 004's schema %s is not in the document", name)
			continue
		}
		s := ref.Value
		if len(s.Examples) == 0 || !reflect.DeepEqual(s.Examples[0], seed.example) {
			t.Errorf("%s: example %v, want the seed's %v", name, s.Examples, seed.example)
		}
		if err := s.VisitJSON(seed.example); err != nil {
			t.Errorf("%s: the seed's example does not match our schema: %v", name, err)
		}
		for prop := range seed.example {
			if s.Properties[prop] == nil {
				t.Errorf("%s: the seed's property %s is not in our schema", name, prop)
			}
		}
		for prop, values := range seed.enums {
			p := s.Properties[prop]
			if p == nil || p.Value == nil {
				t.Errorf("%s.%s: not in our schema", name, prop)
				continue
			}
			var ours []string
			for _, v := range p.Value.Enum {
				ours = append(ours, v.(string))
			}
			for _, v := range values {
				if !slices.Contains(ours, v) {
					t.Errorf("%s.%s: the seed's value %s is not in our enum %v", name, prop, v, ours)
				}
			}
		}
	}
}

// TestOpenAPI_Document checks that api/openapi.json is what the route table
// and the Go types give (-update rewrites it).
func TestOpenAPI_Document(t *testing.T) {
	want, err := json.MarshalIndent(document(t), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *updateOpenAPI {
		if err := os.WriteFile("openapi.json", want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(want, openAPIDocument) {
		t.Fatal("api/openapi.json is not what the route table and the Go types give: run go test ./api -run TestOpenAPI_Document -update and review the diff")
	}
}

// TestOpenAPI_EveryRoute: every route the server registers (Server.Routes,
// with seed 004's prefixed twins) has an operation in the document.
func TestOpenAPI_EveryRoute(t *testing.T) {
	h := startService(t, t.TempDir())
	doc, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	star := regexp.MustCompile(`\{[^}]*\}`)
	var docPaths []string // METHOD path, params as *
	for path, item := range doc.T.Paths.Map() {
		for method := range item.Operations() {
			docPaths = append(docPaths, method+" "+star.ReplaceAllString(path, "*"))
		}
	}
	// The root mux's own routes (service.go) besides the API's.
	for _, rt := range []Route{{Method: "GET", Path: "/metrics"}, {Method: "POST", Path: cluster.CommandPath}} {
		if !slices.Contains(docPaths, rt.Method+" "+rt.Path) {
			t.Errorf("route %s %s is not in api/openapi.json", rt.Method, rt.Path)
		}
	}
	for _, rt := range h.svc.API.Routes() {
		paths := []string{rt.Path}
		if rt.Seed004 {
			paths = append(paths, Seed004Prefix+rt.Path)
		}
		for _, p := range paths {
			p = regexp.MustCompile(`\{[^}]*\.\.\.\}$`).ReplaceAllString(p, "") // {path...}, {rest...}: any operation below
			want := star.ReplaceAllString(p, "*")
			found := false
			for _, d := range docPaths {
				m, dp, _ := strings.Cut(d, " ")
				if (rt.Method == "" || m == rt.Method) && (dp == want || strings.HasSuffix(want, "/") && strings.HasPrefix(dp, want)) {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("route %s %s is not in api/openapi.json (add it to routes() in openapi_gen_test.go and run -update)", rt.Method, p)
			}
		}
	}
}
