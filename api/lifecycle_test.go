package api

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/media/wavwriter"
	"github.com/rtcrec/recorder/recorder"
	"github.com/rtcrec/recorder/recorder/conference/whip"
	"github.com/rtcrec/recorder/recorder/conference/whip/whiptest"
	"github.com/rtcrec/recorder/recorder/events"
	"github.com/rtcrec/recorder/storage"
)

// seedDir holds the source documents (DESIGN.md: seeds/ beside it).
func seedFile(t *testing.T, prefix string) string {
	t.Helper()
	for _, dir := range []string{os.Getenv("RECORDER_SEEDS"), "../../shared/seeds", "/work/shared/seeds"} {
		if dir == "" {
			continue
		}
		m, _ := filepath.Glob(filepath.Join(dir, prefix+"_*.txt"))
		if len(m) == 1 {
			data, err := os.ReadFile(m[0])
			if err != nil {
				t.Fatal(err)
			}
			return string(data)
		}
	}
	t.Skipf("seed %s not found (set RECORDER_SEEDS)", prefix)
	return ""
}

// seedObject parses the first JSON object after marker in a seed.
func seedObject(t *testing.T, seed, marker string) map[string]any {
	t.Helper()
	i := strings.Index(seed, marker)
	if i < 0 {
		t.Fatalf("marker %q not in seed", marker)
	}
	start := i + strings.Index(seed[i:], "{")
	depth := 0
	for j := start; j < len(seed); j++ {
		switch seed[j] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				var v map[string]any
				if err := json.Unmarshal([]byte(seed[start:j+1]), &v); err != nil {
					t.Fatalf("seed JSON after %q: %v", marker, err)
				}
				return v
			}
		}
	}
	t.Fatalf("unterminated JSON after %q", marker)
	return nil
}

// keyPaths returns the dotted key paths of a JSON value (arrays as []).
func keyPaths(v any, prefix string, out map[string]bool) map[string]bool {
	if out == nil {
		out = map[string]bool{}
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			out[prefix+k] = true
			keyPaths(e, prefix+k+".", out)
		}
	case []any:
		for _, e := range x {
			keyPaths(e, prefix+"[].", out)
		}
	}
	return out
}

func jsonPaths(t *testing.T, v any) map[string]bool {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var x any
	json.Unmarshal(data, &x)
	return keyPaths(x, "", nil)
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestSeedShapes compares the JSON field names of the replies and commands
// with the examples in the seed texts: every seed field is there, and
// nothing else but the listed extensions.
func TestSeedShapes(t *testing.T) {
	s000, s001, s004 := seedFile(t, "000"), seedFile(t, "001"), seedFile(t, "004")
	one := int32(1)
	n := int64(1)
	tests := []struct {
		name       string
		seed       map[string]any
		ours       any
		extensions []string
	}{
		{"000 status history", seedObject(t, s000, "After the same call was paused"),
			StatusHistory{Statuses: []StatusEntry{{"start", "x"}}, EngagementID: "e", Channel: "voice"}, nil},
		{"000 no recording", seedObject(t, s000, "New call, ad-hoc recording"), NoRecording{2817, "m"}, nil},
		{"001 recording", seedObject(t, s001, "Recording"), TelephonyRecording{}, nil},
		{"004 chat transcript", seedObject(t, s004, "AddChatTranscriptCmd\n\n{"),
			AddChatTranscriptCmd{ChatTranscriptList: []ChatTranscriptEntry{{}}}, nil},
		{"004 cobrowse event", seedObject(t, s004, "AddCobrowseEventCmd\n\n{"),
			AddCobrowseEventCmd{Event: &CobrowseEvent{SequenceID: &one, Timestamp: &n}}, nil},
		{"004 cobrowse sessions", seedObject(t, s004, "ConversationCobrowseSessionDataMessage\n\n{"),
			ConversationCobrowseSessionDataMessage{CobrowseSessions: []CobrowseSessionDataMessage{{Uploaded: "x"}}}, nil},
		{"004 URL resource", seedObject(t, s004, "URLResourceMessage\n\n{"), URLResourceMessage{}, nil},
		{"004 chat transcript data", seedObject(t, s004, "ChatTranscriptData\n\n{"), ChatTranscriptData{}, nil},
		{"004 state with paused", seedObject(t, s004, "RecordingDataEvent\n\n{"),
			RecordingDataEvent{Error: &ErrorData{"c", "m", "o"}, Paused: true}, []string{"paused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, got := keyPaths(tt.seed, "", nil), jsonPaths(t, tt.ours)
			for _, e := range tt.extensions {
				delete(got, e)
			}
			if !maps(want, got) {
				t.Errorf("fields differ from the seed:\n seed %v\n ours %v", sortedKeys(want), sortedKeys(got))
			}
		})
	}

	// Seed 002's envelope is not JSON as printed; its field names are.
	s002 := seedFile(t, "002")
	seedKeys := map[string]bool{}
	for _, m := range regexp.MustCompile(`"([a-z]+)":`).FindAllStringSubmatch(s002, -1) {
		seedKeys[m[1]] = true
	}
	orig := json.RawMessage(`{}`)
	reply := jsonPaths(t, CommandReply{Data: json.RawMessage(`{}`), Failure: &CommandFailure{}, Original: &orig})
	reply["original"] = true
	for k := range reply {
		if k = k[strings.LastIndex(k, ".")+1:]; !seedKeys[k] {
			t.Errorf("command reply field %q is not in seed 002 (%v)", k, sortedKeys(seedKeys))
		}
	}
	for _, k := range []string{"command", "target", "data", "result", "failure", "code", "message", "context", "original"} {
		if !reply[k] && !reply["failure."+k] {
			t.Errorf("seed 002 field %q missing from the command reply %v", k, sortedKeys(reply))
		}
	}
	for _, v := range []string{"interaction.request.recording.stop",
		"interaction.request.recording.pause", "interaction.request.recording.resume", `"result": "success"`, `"result": "failure"`} {
		if !strings.Contains(s002, v) {
			t.Errorf("seed 002 does not hold %q", v)
		}
	}
	// Seed 001's enums and sentinel.
	for _, v := range []string{StatusInitiating, StatusRecording, StatusStopping, StatusEnded, ReferenceCall, ReferenceConfbridge, NotYet, "\nwav\n"} {
		if !strings.Contains(s001, v) {
			t.Errorf("seed 001 does not hold %q", v)
		}
	}
	if !strings.Contains(s000, `"code": 2817`) || !strings.Contains(s000, "There is no recording for this engagement") {
		t.Error("seed 000's no-recording reply changed")
	}
}

func maps(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func TestAPI_PauseResumeStatusBadInput(t *testing.T) {
	h := startService(t, t.TempDir())
	var nr NoRecording
	if st := h.do("GET", "/api/recordings/nobody/status", key1, nil, &nr); st != 404 || nr.Code != 2817 || nr.Message != "There is no recording for this engagement" {
		t.Errorf("status of a conversation without recording: %d %+v", st, nr)
	}
	var e ErrorMessage
	if st := h.do("GET", "/api/recordings/a..b%2F/status", key1, nil, &e); st != 400 && st != 404 {
		t.Errorf("status with a bad id: %d %+v", st, e)
	}
	ev, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: "f1", ConversationID: "c1"})
	if st != 200 {
		t.Fatalf("start: %d", st)
	}
	p := recPath(ev)
	for _, tc := range []struct {
		name, method, path, key string
		body                    any
		status                  int
	}{
		{"pause unknown", "POST", "/api/recordings/c1/" + ev.RecorderID + "/00000000-0000-0000-0000-000000000000/pause", key1, nil, 404},
		{"resume unknown", "POST", "/api/recordings/c1/" + ev.RecorderID + "/00000000-0000-0000-0000-000000000000/resume", key1, nil, 404},
		{"pause other tenant", "POST", p + "/pause", key2, nil, 404},
		{"pause bad id", "POST", "/api/recordings/c1/" + ev.RecorderID + "/-x/pause", key1, nil, 400},
		{"pause no key", "POST", p + "/pause", "", nil, 401},
		{"metadata empty", "POST", p + "/metadata", key1, `{"metadata":{}}`, 400},
		{"metadata unknown field", "POST", p + "/metadata", key1, `{"meta":{"a":"b"}}`, 400},
		{"metadata too many", "POST", p + "/metadata", key1, map[string]any{"metadata": manyKeys(65)}, 400},
		{"metadata other tenant", "POST", p + "/metadata", key2, `{"metadata":{"a":"b"}}`, 404},
	} {
		var e ErrorMessage
		if st := h.do(tc.method, tc.path, tc.key, tc.body, &e); st != tc.status || e.Code != tc.status {
			t.Errorf("%s: %d %+v, want %d", tc.name, st, e, tc.status)
		}
	}
	// Pause before any media: allowed; status history shows it.
	var got RecordingDataEvent
	if st := h.do("POST", p+"/pause", key1, nil, &got); st != 200 || !got.Paused || got.State != "ACTIVE" {
		t.Errorf("pause: %d %+v", st, got)
	}
	var msg RecordingDataMessage
	if st := h.do("GET", p, key1, nil, &msg); st != 200 || !msg.Paused {
		t.Errorf("recording view while paused: %d paused=%v", st, msg.Paused)
	}
	var hist StatusHistory
	if st := h.do("GET", "/api/recordings/c1/status", key1, nil, &hist); st != 200 || len(hist.Statuses) != 2 || hist.Statuses[1].Status != "pause" {
		t.Errorf("status while paused: %d %+v", st, hist)
	}
	var md struct {
		Metadata map[string]string `json:"metadata"`
	}
	if st := h.do("POST", p+"/metadata", key1, `{"CallMetadata":{"user2":"1234567890"},"metadata":{"a":"b"}}`, &md); st != 400 {
		t.Errorf("metadata in both forms: %d", st)
	}
	if st := h.do("POST", p+"/metadata", key1, `{"CallMetadata":{"user2":"1234567890","agent":"a1"}}`, &md); st != 200 || md.Metadata["user2"] != "1234567890" {
		t.Errorf("metadata: %d %+v", st, md)
	}
	md.Metadata = nil
	if st := h.do("POST", p+"/metadata", key1, `{"metadata":{"agent":""}}`, &md); st != 200 || md.Metadata["agent"] != "" || md.Metadata["user2"] == "" {
		t.Errorf("metadata removal: %d %+v", st, md)
	}
	h.do("POST", p+"/stop", key1, nil, &got)
	for _, op := range []string{"pause", "resume", "metadata"} {
		var e ErrorMessage
		if st := h.do("POST", p+"/"+op, key1, `{"metadata":{"a":"b"}}`, &e); st != 409 {
			t.Errorf("%s of a stopped recording: %d %+v, want 409", op, st, e)
		}
	}
	if st := h.do("GET", "/api/recordings/c1/status", key1, nil, &hist); st != 200 || len(hist.Statuses) != 3 || hist.Statuses[2].Status != "stop" {
		t.Errorf("status after stop (paused until then): %d %+v", st, hist)
	}
}

func manyKeys(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m["k"+string(rune('a'+i%26))+strings.Repeat("x", i/26)] = "v"
	}
	return m
}

func TestAPI_Commands(t *testing.T) {
	h := startService(t, t.TempDir())
	send := func(body any) (CommandReply, int) {
		t.Helper()
		var r CommandReply
		st := h.do("POST", "/api/commands", key1, body, &r)
		return r, st
	}
	target := "sess1.chan1.conv-cmd"
	failures := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"unknown command", `{"command":"conversation.answer","target":"` + target + `","data":{}}`, 400, "unsupported_command"},
		{"empty command", `{"target":"` + target + `","data":{}}`, 400, "unsupported_command"},
		{"malformed target: two segments", `{"command":"interaction.request.recording.start","target":"a.b","data":{}}`, 400, "malformed_target"},
		{"malformed target: five segments", `{"command":"interaction.request.recording.stop","target":"a.b.c.d.e","data":{}}`, 400, "malformed_target"},
		{"malformed target: empty segment", `{"command":"interaction.request.recording.stop","target":"a..c","data":{}}`, 400, "malformed_target"},
		{"malformed target: bad conversation", `{"command":"interaction.request.recording.stop","target":"a.b.-c","data":{}}`, 400, "malformed_target"},
		{"start without application", `{"command":"interaction.request.recording.start","target":"` + target + `","data":{}}`, 400, "missing_field"},
		{"start with bad data", `{"command":"interaction.request.recording.start","target":"` + target + `","data":{"bogus":1}}`, 400, "invalid_data"},
		{"pause unknown conversation", `{"command":"interaction.request.recording.pause","target":"s.c.nobody","data":{}}`, 404, "not_found"},
	}
	for _, f := range failures {
		r, st := send(f.body)
		if st != f.status || r.Result != "failure" || r.Failure == nil || r.Failure.Code != f.code || r.Failure.Message == "" || r.Original == nil {
			t.Errorf("%s: %d %+v, want %d failure %s with the original", f.name, st, r, f.status, f.code)
			continue
		}
		var orig, sent any
		json.Unmarshal(*r.Original, &orig)
		json.Unmarshal([]byte(f.body), &sent)
		if b1, _ := json.Marshal(orig); string(b1) != mustJSON(sent) {
			t.Errorf("%s: original %s, want the request %s", f.name, *r.Original, f.body)
		}
	}
	var e ErrorMessage
	if st := h.do("POST", "/api/commands", key1, `{"command":`, &e); st != 400 || e.Reason != "malformed_json" {
		t.Errorf("malformed JSON: %d %+v", st, e)
	}

	ok := func(cmd string, data string) {
		t.Helper()
		r, st := send(`{"command":"` + cmd + `","target":"` + target + `","data":` + data + `}`)
		if st != 200 || r.Result != "success" || r.Command != cmd || r.Target != target || mustJSONRaw(r.Data) != mustJSONRaw(json.RawMessage(data)) {
			t.Fatalf("%s: %d %+v", cmd, st, r)
		}
	}
	ok(CommandStart, `{"applicationId":"app1"}`)
	var active RecordingDataEvent
	if st := h.do("GET", "/api/recordings/conv-cmd/active", key1, nil, &active); st != 200 || active.State != "ACTIVE" {
		t.Fatalf("active after start command: %d %+v", st, active)
	}
	ok(CommandPause, `{}`)
	if h.do("GET", recPath(active)+"/state", key1, nil, &active); !active.Paused {
		t.Errorf("not paused after the pause command: %+v", active)
	}
	ok(CommandPause, `{}`) // already paused: success
	// Seed 002 pads the command with a space in its replies.
	ok(" "+CommandResume, `{}`)
	ok(CommandStop, `{}`)
	ok(CommandStop, `{}`) // stopped already: success
	r, st := send(`{"command":"interaction.request.recording.pause","target":"` + target + `","data":{}}`)
	if st != 409 || r.Result != "failure" || r.Failure.Code != "not_active" {
		t.Errorf("pause after stop: %d %+v", st, r)
	}
	var hist StatusHistory
	if h.do("GET", "/api/recordings/conv-cmd/status", key1, nil, &hist); len(hist.Statuses) != 4 {
		t.Errorf("status history after commands: %+v", hist)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func mustJSONRaw(r json.RawMessage) string {
	var v any
	json.Unmarshal(r, &v)
	return mustJSON(v)
}

func TestAPI_BlackoutRules(t *testing.T) {
	h := startService(t, t.TempDir())
	bad := []struct {
		name, path, body string
		status           int
		reason           string
	}{
		{"stop before start", "/api/blackouts/start", `{"userId":"u1","startTime":"2030-01-01T10:00:00Z","stopTime":"2030-01-01T09:00:00Z"}`, 400, "invalid_time"},
		{"stop equals start", "/api/blackouts/start", `{"userId":"u1","startTime":"2030-01-01T10:00:00+02:00","stopTime":"2030-01-01T08:00:00Z"}`, 400, "invalid_time"},
		{"bad time", "/api/blackouts/start", `{"userId":"u1","startTime":"tomorrow"}`, 400, "invalid_time"},
		{"negative offset", "/api/blackouts/start", `{"userId":"u1","timeOffset":-5}`, 400, "invalid_time"},
		{"no user", "/api/blackouts/start", `{}`, 400, "missing_field"},
		{"seed form, unknown identifier", "/api/blackouts/start", `{"AgentIdentifier":"Phone","Value":"805003"}`, 400, "invalid_field"},
		{"unknown field", "/api/blackouts/start", `{"userId":"u1","when":"now"}`, 400, "malformed_json"},
		{"stop without blackout", "/api/blackouts/stop", `{"userId":"nobody"}`, 404, "no_blackout"},
	}
	for _, b := range bad {
		var e ErrorMessage
		if st := h.do("POST", b.path, key1, b.body, &e); st != b.status || e.Reason != b.reason {
			t.Errorf("%s: %d %+v, want %d %s", b.name, st, e, b.status, b.reason)
		}
	}
	// TimeOffset alone: starts that many seconds after receipt (seed 003).
	var b BlackoutMessage
	if st := h.do("POST", "/api/blackouts/start", key1, `{"AgentIdentifier":"Id","Value":"agent7","TimeOffset":1}`, &b); st != 200 || b.Active || b.UserID != "agent7" {
		t.Fatalf("scheduled blackout: %d %+v", st, b)
	}
	start, _ := time.Parse(time.RFC3339Nano, b.StartTime)
	if d := time.Until(start); d < 500*time.Millisecond || d > 1100*time.Millisecond {
		t.Errorf("TimeOffset 1 starts in %v, want about 1 s", d)
	}
	// Explicit times win over TimeOffset.
	var b2 BlackoutMessage
	stop := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if st := h.do("POST", "/api/blackouts/start", key1, `{"userId":"u2","stopTime":"`+stop+`","timeOffset":3000}`, &b2); st != 200 || !b2.Active {
		t.Errorf("explicit stop with offset: %d %+v", st, b2)
	} else if got, _ := time.Parse(time.RFC3339Nano, b2.StopTime); got.Format(time.RFC3339) != stop {
		t.Errorf("stop time %s, want the explicit %s", b2.StopTime, stop)
	}
	// A recording that starts during a blackout records it from its start.
	time.Sleep(1200 * time.Millisecond)
	var p ParticipantMessage
	if st := h.do("GET", "/api/participants/agent7", key1, nil, &p); st != 200 || p.Blackout == nil || !p.Blackout.Active {
		t.Errorf("agent7 after the offset: %d %+v", st, p)
	}
	// maxBlackout bounds a blackout without stop time.
	if max := h.svc.Config.Defaults.MaxBlackout; max <= 0 {
		t.Fatal("no maxBlackout default")
	}
	end, _ := time.Parse(time.RFC3339Nano, p.Blackout.StopTime)
	if d := end.Sub(start); d != h.svc.Config.Defaults.MaxBlackout {
		t.Errorf("blackout without stop lasts %v, want maxBlackout %v", d, h.svc.Config.Defaults.MaxBlackout)
	}
	// Stop with TimeOffset: later; then now.
	if st := h.do("POST", "/api/blackouts/stop", key1, `{"userId":"agent7","timeOffset":1}`, &b); st != 200 || !b.Active {
		t.Errorf("stop in a second: %d %+v", st, b)
	}
	time.Sleep(1200 * time.Millisecond)
	if st := h.do("GET", "/api/participants/agent7", key1, nil, &p); st != 404 {
		t.Errorf("agent7 after the blackout ended: %d %+v, want 404", st, p)
	}
	b = BlackoutMessage{}
	if st := h.do("POST", "/api/blackouts/stop", key1, `{"userId":"u2"}`, &b); st != 200 || b.Active || b.UserID != "u2" {
		t.Errorf("stop u2: %d %+v", st, b)
	}
	// Another tenant sees none of it.
	var list []ParticipantMessage
	if st := h.do("GET", "/api/participants", key2, nil, &list); st != 200 || len(list) != 0 {
		t.Errorf("participants of org2: %d %+v", st, list)
	}
}

func TestAPI_ChatAndCobrowse(t *testing.T) {
	h := startService(t, t.TempDir())
	ev, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: "f-chat", ConversationID: "c-chat"})
	if st != 200 {
		t.Fatalf("start: %d", st)
	}
	ids := map[string]any{"conversationId": ev.ConversationID, "recorderId": ev.RecorderID, "instanceId": ev.InstanceID}
	chat := func(entries ...ChatTranscriptEntry) map[string]any {
		m := map[string]any{"chatTranscriptList": entries}
		for k, v := range ids {
			m[k] = v
		}
		return m
	}
	e1 := ChatTranscriptEntry{TimeStamp: "2024-01-21T21:36:20Z", Transcript: "second", UserID: "u1"}
	e0 := ChatTranscriptEntry{TimeStamp: "2024-01-21T21:36:14Z", Transcript: "first", UserID: "u2", UserDisplayName: "Bob"}
	var ct ChatTranscriptData
	if st := h.do("POST", "/api/recordings/chat/transcript/add", key1, chat(e1, e0), &ct); st != 200 || ct.ID == "" {
		t.Fatalf("chat add: %d %+v", st, ct)
	}
	if st := h.do("POST", "/api/recordings/chat/transcript/add", key1, chat(e0), &ct); st != 200 {
		t.Errorf("duplicate chat entry: %d", st)
	}
	cob := func(seq int32, payload string) map[string]any {
		m := map[string]any{"event": map[string]any{"payload": payload, "sequenceId": seq, "sessionId": "cb1", "timestamp": 1700000000000 + int64(seq)}}
		for k, v := range ids {
			m[k] = v
		}
		return m
	}
	for _, seq := range []int32{2, 1, 1, 3} {
		if st := h.do("POST", "/api/recordings/cobrowse/event", key1, cob(seq, "p"+string(rune('0'+seq))), nil); st != 200 {
			t.Errorf("cobrowse event %d: %d", seq, st)
		}
	}
	bad := []struct {
		name, path string
		body       any
		status     int
	}{
		{"chat unknown recording", "/api/recordings/chat/transcript/add", map[string]any{"conversationId": "c-chat", "recorderId": ev.RecorderID, "instanceId": "nope", "chatTranscriptList": []any{}}, 404},
		{"chat other tenant", "/api/recordings/chat/transcript/add", chat(e0), 404},
		{"chat missing ids", "/api/recordings/chat/transcript/add", map[string]any{"chatTranscriptList": []any{}}, 400},
		{"chat bad timestamp", "/api/recordings/chat/transcript/add", chat(ChatTranscriptEntry{TimeStamp: "yesterday", UserID: "u"}), 400},
		{"cobrowse without event", "/api/recordings/cobrowse/event", ids, 400},
		{"cobrowse bad session id", "/api/recordings/cobrowse/event", map[string]any{"conversationId": "c-chat", "recorderId": ev.RecorderID, "instanceId": ev.InstanceID,
			"event": map[string]any{"payload": "x", "sequenceId": 1, "sessionId": "../x", "timestamp": 1}}, 400},
	}
	for _, b := range bad {
		key := key1
		if strings.Contains(b.name, "other tenant") {
			key = key2
		}
		var e ErrorMessage
		if st := h.do("POST", b.path, key, b.body, &e); st != b.status {
			t.Errorf("%s: %d %+v, want %d", b.name, st, e, b.status)
		}
	}
	// Oversized: one body over the request limit, then a transcript over the
	// recording's limit in several requests.
	var e ErrorMessage
	big := ChatTranscriptEntry{TimeStamp: "2024-01-21T21:40:00Z", Transcript: strings.Repeat("x", MaxBody), UserID: "u1"}
	if st := h.do("POST", "/api/recordings/chat/transcript/add", key1, chat(big), &e); st != 413 {
		t.Errorf("oversized body: %d %+v, want 413", st, e)
	}
	got413 := false
	for i := range 8 {
		part := ChatTranscriptEntry{TimeStamp: time.Date(2024, 1, 21, 22, i, 0, 0, time.UTC).Format(time.RFC3339), Transcript: strings.Repeat("y", 50<<10), UserID: "u1"}
		if st := h.do("POST", "/api/recordings/chat/transcript/add", key1, chat(part), &e); st == 413 {
			got413 = e.Reason == "too_large"
			break
		} else if st != 200 {
			t.Fatalf("chat part %d: %d %+v", i, st, e)
		}
	}
	if !got413 {
		t.Errorf("a transcript over %d bytes was accepted", recorder.MaxChatBytes)
	}

	var msg RecordingDataMessage
	if st := h.do("GET", recPath(ev), key1, nil, &msg); st != 200 || msg.ChatTranscript == nil {
		t.Errorf("recording without chatTranscript: %d %+v", st, msg.ChatTranscript)
	}
	var stopped RecordingDataEvent
	h.do("POST", recPath(ev)+"/stop", key1, nil, &stopped)

	// Uploaded after the stop (no media: no composition to carry them).
	var list ConversationCobrowseSessionDataMessage
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st := h.do("GET", "/api/recordings/c-chat/cobrowse", key1, nil, &list); st != 200 {
			t.Fatalf("cobrowse list: %d", st)
		}
		if len(list.CobrowseSessions) == 1 && list.CobrowseSessions[0].Uploaded != "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(list.CobrowseSessions) != 1 || list.ConversationID != "c-chat" || list.CobrowseSessions[0].CobrowseSessionID != "cb1" ||
		list.CobrowseSessions[0].RecorderInstanceID != ev.InstanceID || list.CobrowseSessions[0].Uploaded == "" {
		t.Fatalf("cobrowse sessions: %+v", list)
	}
	var u URLResourceMessage
	if st := h.do("GET", recPath(ev)+"/cobrowse/cb1/url/attachment", key1, nil, &u); st != 200 || u.URL == "" || u.ValidUntil == "" {
		t.Fatalf("cobrowse url: %d %+v", st, u)
	}
	if !strings.Contains(u.URL, "/api/recordings/attachment/cobrowse/") {
		t.Errorf("cobrowse URL %s is not a cobrowse attachment URL", u.URL)
	}
	var file struct {
		Events []CobrowseEvent `json:"events"`
	}
	if err := json.Unmarshal(fetch(t, u.URL), &file); err != nil {
		t.Fatal(err)
	}
	var seqs []int32
	for _, e := range file.Events {
		seqs = append(seqs, *e.SequenceID)
	}
	if !slices.Equal(seqs, []int32{1, 2, 3}) {
		t.Errorf("cobrowse file sequence %v, want [1 2 3] (ordered, duplicate ignored)", seqs)
	}
	for _, bad := range []string{"/cobrowse/nope/url/attachment", "/cobrowse/cb1/url/other", "/whatever"} {
		if st := h.do("GET", recPath(ev)+bad, key1, nil, &e); st != 404 {
			t.Errorf("GET %s: %d, want 404", bad, st)
		}
	}
	if st := h.do("GET", recPath(ev)+"/cobrowse/cb1/url/attachment", key2, nil, &e); st != 404 {
		t.Errorf("other tenant's cobrowse url: %d", st)
	}
	// chat.json, through a transcript-kind signed URL.
	rec, err := h.svc.Manager.Get(context.Background(), "org1", ev.ConversationID, ev.RecorderID, ev.InstanceID)
	if err != nil || rec.Uploads[recorder.ChatFile] == nil {
		t.Fatalf("chat not uploaded: %v %+v", err, rec.Uploads)
	}
	b, _ := h.svc.Manager.Bucket(context.Background(), "app1")
	cu, err := b.SignedURL(context.Background(), rec.Uploads[recorder.ChatFile].Key, &storage.SignedURLOptions{Method: "GET", Expiry: time.Minute})
	if err != nil || !strings.Contains(cu, "/attachment/transcript/") {
		t.Fatalf("chat URL %q: %v", cu, err)
	}
	var cf struct {
		ChatTranscriptList []ChatTranscriptEntry `json:"chatTranscriptList"`
	}
	json.Unmarshal(fetch(t, cu), &cf)
	if len(cf.ChatTranscriptList) < 2 || cf.ChatTranscriptList[0].Transcript != "first" || cf.ChatTranscriptList[1].Transcript != "second" {
		t.Errorf("chat.json entries %+v, want first, second, …", cf.ChatTranscriptList[:min(2, len(cf.ChatTranscriptList))])
	}
	if n := len(cf.ChatTranscriptList); n > 2+recorder.MaxChatBytes/(50<<10) {
		t.Errorf("chat.json has %d entries: the duplicate or the refused part was kept", n)
	}
}

func TestAPI_Telephony(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	h := startService(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := whiptest.Join(ctx, h.whipClient(key1), whip.Endpoint(h.url, "tconf", "agent", "MIC"), "agent", 440)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Leave(context.Background())
	ev, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: "tconf", ConversationID: "tconv", Metadata: map[string]string{"agentId": "a-1"}})
	if st != 200 {
		t.Fatalf("start: %d", st)
	}
	var tr TelephonyRecording
	if st := h.do("GET", "/v1/recordings/"+ev.InstanceID, key1, nil, &tr); st != 200 || tr.Status != StatusRecording || tr.TMEnd != NotYet || tr.TMDelete != NotYet {
		t.Errorf("telephony view while recording: %d %+v", st, tr)
	}
	var e ErrorMessage
	if st := h.do("GET", "/v1/recordingfiles/"+ev.InstanceID, key1, nil, &e); st != 409 {
		t.Errorf("file while recording: %d %+v, want 409", st, e)
	}
	if st := h.do("DELETE", "/v1/recordings/"+ev.InstanceID, key1, nil, &e); st != 409 {
		t.Errorf("delete while recording: %d %+v, want 409", st, e)
	}
	var md struct{}
	if st := h.do("POST", recPath(ev)+"/metadata", key1, `{"metadata":{"user2":"1234567890"}}`, &md); st != 200 {
		t.Errorf("metadata: %d", st)
	}
	time.Sleep(1500 * time.Millisecond)
	var stopped RecordingDataEvent
	h.do("POST", recPath(ev)+"/stop", key1, nil, &stopped)
	// A second recording, still running, to filter and page.
	ev2, _ := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: "tconf2", ConversationID: "tconv2"})

	if st := h.do("GET", "/v1/recordings/"+ev.InstanceID, key1, nil, &tr); st != 200 {
		t.Fatalf("get: %d", st)
	}
	tm := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$`)
	if tr.ID != ev.InstanceID || tr.CustomerID != h.svc.Config.CustomerID("org1") || tr.Status != StatusEnded || tr.Format != "wav" ||
		tr.ReferenceType != ReferenceCall || tr.ReferenceID != "tconf" || tr.OwnerType != "agent" || tr.OwnerID != config.NameUUID("org1", "agent/a-1") ||
		tr.ActiveflowID != nilUUID || tr.OnEndFlowID != nilUUID || tr.TMDelete != NotYet {
		t.Errorf("ended recording: %+v", tr)
	}
	for name, v := range map[string]string{"tm_start": tr.TMStart, "tm_end": tr.TMEnd, "tm_create": tr.TMCreate, "tm_update": tr.TMUpdate, "tm_delete": tr.TMDelete} {
		if !tm.MatchString(v) {
			t.Errorf("%s %q is not in the seed's time format", name, v)
		}
	}
	var list TelephonyList
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{ev2.InstanceID, ev.InstanceID}},
		{"?status=ended", []string{ev.InstanceID}},
		{"?status=recording", []string{ev2.InstanceID}},
		{"?reference_id=tconf", []string{ev.InstanceID}},
		{"?reference_type=confbridge", nil},
		{"?reference_type=call&status=stopping", nil},
	} {
		if st := h.do("GET", "/v1/recordings"+tc.query, key1, nil, &list); st != 200 {
			t.Errorf("list %s: %d", tc.query, st)
			continue
		}
		var got []string
		for _, r := range list.Result {
			got = append(got, r.ID)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("list %s: %v, want %v", tc.query, got, tc.want)
		}
	}
	h.do("GET", "/v1/recordings?page_size=1", key1, nil, &list)
	if len(list.Result) != 1 || list.Result[0].ID != ev2.InstanceID || list.NextPageToken == "" {
		t.Fatalf("page 1: %+v", list)
	}
	h.do("GET", "/v1/recordings?page_size=1&page_token="+list.NextPageToken, key1, nil, &list)
	if len(list.Result) != 1 || list.Result[0].ID != ev.InstanceID {
		t.Errorf("page 2: %+v", list)
	}
	for _, q := range []string{"?status=done", "?reference_type=sip", "?page_size=0", "?page_token=zz"} {
		if st := h.do("GET", "/v1/recordings"+q, key1, nil, &e); st != 400 {
			t.Errorf("list %s: %d, want 400", q, st)
		}
	}
	if st := h.do("GET", "/v1/recordings", key2, nil, &list); st != 200 || len(list.Result) != 0 {
		t.Errorf("org2's list: %+v", list)
	}
	if st := h.do("GET", "/v1/recordings/"+ev.InstanceID, key2, nil, &e); st != 404 {
		t.Errorf("org2 reads org1's recording: %d", st)
	}

	// The file: 307 to a signed URL of the mix.
	req, _ := http.NewRequest("GET", h.url+"/v1/recordingfiles/"+ev.InstanceID, nil)
	req.Header.Set("Authorization", key1)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != 307 || loc == "" {
		t.Fatalf("recordingfiles: %d %q", resp.StatusCode, loc)
	}
	pcm := wavPCM(t, fetch(t, loc))
	if d := float64(len(pcm)) / 8000; d < 1 || level(pcm, 440, 0.3, d-0.2) < 2000 {
		t.Errorf("the mix behind recordingfiles is %.2f s without the tone", d)
	}
	// Metadata reached the manifest and the objects.
	rec, _ := h.svc.Manager.ByID(ctx, "org1", ev.InstanceID)
	b, _ := h.svc.Manager.Bucket(ctx, "app1")
	attrs, err := b.Attributes(ctx, rec.Composition.Manifest.Key)
	if err != nil || attrs.Metadata["user-user2"] != "1234567890" {
		t.Errorf("manifest object metadata %v (%v), want user-user2", attrs, err)
	}
	man, _ := b.ReadAll(ctx, rec.Composition.Manifest.Key)
	if !strings.Contains(string(man), `"user2": "1234567890"`) {
		t.Errorf("manifest lacks the updated metadata: %s", man)
	}

	// Every upload and the composition were published as events.
	evs, err := h.svc.Events.Since(ctx, "org1", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range evs {
		var d recorder.RecordingEvent
		json.Unmarshal(e.Data, &d)
		if d.InstanceID == ev.InstanceID {
			count[string(e.Type)]++
		}
	}
	// Objects: the track, mix.wav, manifest.json.
	if count["upload.completed"] != 3 || count["composition.completed"] != 1 || count["state.updated"] < 2 {
		t.Errorf("events of the recording: %v, want 3 upload.completed, 1 composition.completed, state.updated", count)
	}

	// Soft delete.
	if st := h.do("DELETE", "/v1/recordings/"+ev.InstanceID, key1, nil, &tr); st != 200 || tr.TMDelete == NotYet || !tm.MatchString(tr.TMDelete) {
		t.Fatalf("delete: %d %+v", st, tr)
	}
	if st := h.do("GET", "/v1/recordings/"+ev.InstanceID, key1, nil, &tr); st != 200 || tr.TMDelete == NotYet {
		t.Errorf("read after delete: %d %+v", st, tr)
	}
	if st := h.do("DELETE", "/v1/recordings/"+ev.InstanceID, key1, nil, &tr); st != 200 {
		t.Errorf("second delete: %d", st)
	}
	if st := h.do("GET", "/v1/recordingfiles/"+ev.InstanceID, key1, nil, &e); st != 404 {
		t.Errorf("file after delete: %d, want 404", st)
	}
	for _, key := range []string{rec.Composition.Manifest.Key, rec.Composition.Outputs[0].Object.Key, rec.Streams[0].Tracks[0].Object.Key} {
		if _, err := b.Attributes(ctx, key); storage.Code(err) != storage.NotFound {
			t.Errorf("object %s still there after delete: %v", key, err)
		}
	}
	if r, err := http.Get(loc); err == nil {
		if r.StatusCode == 200 {
			t.Errorf("the old signed URL still serves the deleted mix")
		}
		r.Body.Close()
	}
}

// startWithConfig runs a service with cfg changed by change.
func startWithConfig(t *testing.T, dir string, change func(*config.Config)) *harness {
	t.Helper()
	cfg := testConfig(dir)
	change(cfg)
	svc, err := NewService(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc.HTTP.Handler = contractCheck(t, svc.HTTP.Handler) // openapi_test.go
	done := make(chan error, 1)
	go func() { done <- svc.Serve() }()
	h := &harness{t: t, svc: svc, url: svc.URL}
	var stopped bool
	h.stop = func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		svc.Shutdown(ctx)
		<-done
	}
	t.Cleanup(h.stop)
	return h
}

// sseEvents reads n events from GET /api/events (with Last-Event-ID after, when > 0).
func sseEvents(t *testing.T, h *harness, key string, after int64, n int) []events.Event {
	t.Helper()
	return sseEventsSubscribed(t, h, key, after, n, nil)
}

// sseEventsSubscribed is sseEvents that closes subscribed (if not nil) once
// the stream's response came: the server subscribed the client before it
// answered, so every event from then on reaches it.
func sseEventsSubscribed(t *testing.T, h *harness, key string, after int64, n int, subscribed chan<- struct{}) []events.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.url+"/api/events", nil)
	req.Header.Set("Authorization", key)
	if after > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(after, 10))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if subscribed != nil {
		close(subscribed)
	}
	var out []events.Event
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for len(out) < n && sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data:"); ok {
			var ev events.Event
			if err := json.Unmarshal([]byte(strings.TrimSpace(data)), &ev); err != nil {
				t.Fatalf("event data %q: %v", data, err)
			}
			out = append(out, ev)
		}
	}
	return out
}

// TestAPI_LifecycleRoutesNeedKey: every route of the other seeds answers 401
// without a valid key, before looking at anything else.
func TestAPI_LifecycleRoutesNeedKey(t *testing.T) {
	h := startService(t, t.TempDir())
	for _, r := range []struct{ method, path string }{
		{"POST", "/api/recordings/c/r/i/pause"},
		{"POST", "/api/recordings/c/r/i/resume"},
		{"POST", "/api/recordings/c/r/i/metadata"},
		{"GET", "/api/recordings/c/status"},
		{"POST", "/api/blackouts/start"},
		{"POST", "/api/blackouts/stop"},
		{"GET", "/api/participants"},
		{"GET", "/api/participants/u"},
		{"POST", "/api/recordings/chat/transcript/add"},
		{"POST", "/api/recordings/cobrowse/event"},
		{"GET", "/api/recordings/c/cobrowse"},
		{"GET", "/api/recordings/c/r/i/cobrowse/s/url/attachment"},
		{"POST", "/api/commands"},
		{"GET", "/api/events"},
		{"GET", "/v1/recordings"},
		{"GET", "/v1/recordings/x"},
		{"DELETE", "/v1/recordings/x"},
		{"GET", "/v1/recordingfiles/x"},
	} {
		for _, key := range []string{"", "nope"} {
			var e ErrorMessage
			if st := h.do(r.method, r.path, key, nil, &e); st != 401 || e.Code != 401 {
				t.Errorf("%s %s with key %q: %d %+v, want 401", r.method, r.path, key, st, e)
			}
		}
	}
	// A wrong method on a new route is 405, as on the others.
	for _, p := range []string{"/api/blackouts/start", "/api/recordings/c/r/i/stop", "/api/recordings/c/r/i/pause"} {
		var e ErrorMessage
		if st := h.do("GET", p, key1, nil, &e); st != 405 || e.Reason != "method_not_allowed" {
			t.Errorf("GET %s: %d %+v, want 405", p, st, e)
		}
	}
}

func TestTelephonyStatus(t *testing.T) {
	tests := []struct {
		state     recorder.State
		finishing bool
		want      string
	}{
		{recorder.StateInitialised, false, StatusInitiating},
		{recorder.StateActive, false, StatusRecording},
		{recorder.StateActive, true, StatusStopping},
		{recorder.StatePendingRecovery, false, StatusStopping},
		{recorder.StateStopped, false, StatusEnded},
		{recorder.StateFailed, false, StatusFailed}, // without a mix
		{recorder.StateAborted, false, StatusEnded},
	}
	for _, tt := range tests {
		if got := telephonyStatus(&recorder.Recording{State: tt.state}, tt.finishing); got != tt.want {
			t.Errorf("%s (finishing %v): %s, want %s", tt.state, tt.finishing, got, tt.want)
		}
	}
	withMix := &recorder.Recording{State: recorder.StateFailed, Composition: &recorder.Composition{
		Outputs: []recorder.Output{{Object: &recorder.ObjectFile{Key: "k"}}}}}
	if got := telephonyStatus(withMix, false); got != StatusEnded {
		t.Errorf("FAILED with its mix uploaded: %s, want ended", got)
	}
	if b := emptyWAV(8000, 1); len(b) != 44 {
		t.Errorf("empty WAV of %d bytes", len(b))
	} else if h, err := wavwriter.ParseHeader(b); err != nil || h.DataSize != 0 || h.SampleRate != 8000 {
		t.Errorf("empty WAV header %+v %v", h, err)
	}
	streams := func(users ...string) *recorder.Recording {
		r := &recorder.Recording{}
		for _, u := range users {
			r.Streams = append(r.Streams, &recorder.Stream{UserID: u})
		}
		return r
	}
	for _, tt := range []struct {
		rec  *recorder.Recording
		want string
	}{
		{streams(), ReferenceCall},
		{streams("a", "b", "a"), ReferenceCall},
		{streams("a", "b", "c"), ReferenceConfbridge},
	} {
		if got := referenceType(tt.rec); got != tt.want {
			t.Errorf("referenceType of %d streams: %s, want %s", len(tt.rec.Streams), got, tt.want)
		}
	}
	if tmTime(time.Time{}) != NotYet || tmTime(time.Date(2024, 1, 21, 21, 36, 14, 123456789, time.FixedZone("x", 3600))) != "2024-01-21 20:36:14.123456" {
		t.Error("tm_* format")
	}
}
