package api

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/recorder"
	"github.com/rtcrec/recorder/recorder/conference/whip"
	"github.com/rtcrec/recorder/recorder/conference/whip/whiptest"
)

// typedPaths returns the dotted key paths of a JSON value with the JSON type
// at each (string, number, bool, null, object, array); skip drops the paths
// under the given prefixes (free-form maps such as Metadata).
func typedPaths(v any, prefix string, out map[string]string, skip ...string) map[string]string {
	if out == nil {
		out = map[string]string{}
	}
	for _, s := range skip {
		if strings.HasPrefix(prefix, s) {
			return out
		}
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			out[prefix+k] = jsonType(e)
			typedPaths(e, prefix+k+".", out, skip...)
		}
	case []any:
		for _, e := range x {
			typedPaths(e, prefix+"[].", out, skip...)
		}
	}
	return out
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case []any:
		return "array"
	}
	return "object"
}

// sameShape compares our reply with the seed's example: every seed field is
// there with the seed's type (a seed null stands for any type), nothing else
// but the extensions, and nothing of the seed's is missing.
func sameShape(t *testing.T, what string, seed map[string]any, ours []byte, extensions []string, skip ...string) {
	t.Helper()
	var x any
	if err := json.Unmarshal(ours, &x); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	want, got := typedPaths(seed, "", nil, skip...), typedPaths(x, "", nil, skip...)
	for _, e := range extensions {
		for k := range got {
			if k == e || strings.HasPrefix(k, e+".") {
				delete(got, k)
			}
		}
	}
	for k, typ := range want {
		g, ok := got[k]
		switch {
		case !ok && !strings.Contains(k, "[]"): // array elements: only when ours has some
			t.Errorf("%s: seed field %s (%s) missing", what, k, typ)
		case ok && typ != "null" && g != typ && g != "null":
			t.Errorf("%s: field %s is %s, the seed's is %s", what, k, g, typ)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: field %s is not in the seed", what, k)
		}
	}
}

// agentSeed returns seed 003's agent status example and its GetAll example.
func agentSeed(t *testing.T) (status, listed map[string]any) {
	s003 := seedFile(t, "003")
	return seedObject(t, s003, "The following data is returned"), seedObject(t, s003, "Returns a list of all agents")
}

func TestSeed003_AgentShapes(t *testing.T) {
	status, listed := agentSeed(t)
	md := map[string]string{}
	for k := range status["ActiveCall"].(map[string]any)["Metadata"].(map[string]any) {
		md[k] = "x"
	}
	call := &AgentCallMessage{CallInstance: "c", Metadata: md, CallState: "OnCall",
		Recordings:       []AgentRecordingMessage{{RecordingIdentifier: "r", RecordingState: "Recording", CallInstance: "c"}},
		ScreenRecordings: []ScreenRecordingMessage{{RelatedCallInstance: "c", RecordingState: "Recording"}}}
	msg := AgentMessage{AgentID: 2, AgentPhone: "5003", ActiveCall: call, InactiveCalls: []AgentCallMessage{},
		DesktopOnlySessions: []DesktopSessionMessage{}, DeviceID: "5003"}
	b, _ := json.Marshal(msg)
	sameShape(t, "agent status", status, b, nil)
	msg.ActiveCall = nil
	b, _ = json.Marshal(msg)
	sameShape(t, "agent in GetAll", listed, b, nil)
}

// TestSeed003_Agent: an agent publishes over WHIP with its phone; the seed's
// routes record its call by phone; it takes a second call, which becomes
// its ActiveCall (the first one inactive); a blackout started before the
// second call's recording follows it there (the mix is silent until the
// blackout stops); and GetAll knows the agent after a restart.
func TestSeed003_Agent(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	dir := t.TempDir()
	h := startService(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	status, listed := agentSeed(t)
	get := func(path string) (AgentMessage, []byte, int) {
		t.Helper()
		var raw json.RawMessage
		st := h.do("GET", path, key1, nil, &raw)
		var a AgentMessage
		json.Unmarshal(raw, &a)
		return a, raw, st
	}
	post := func(path, body string, want int) AgentMessage {
		t.Helper()
		var raw json.RawMessage
		st := h.do("POST", path, key1, body, &raw)
		if st != want {
			t.Fatalf("POST %s %s: %d %s, want %d", path, body, st, raw, want)
		}
		var a AgentMessage
		json.Unmarshal(raw, &a)
		return a
	}
	waitAgent := func(cond func(AgentMessage) bool) AgentMessage {
		t.Helper()
		for {
			a, _, _ := get("/api/Agent?agentIdentifier=Phone&value=5003")
			if cond(a) {
				return a
			}
			select {
			case <-ctx.Done():
				t.Fatalf("agent never reached the state: %+v", a)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	// Errors before the agent exists.
	var e ErrorMessage
	if st := h.do("GET", "/api/Agent?agentIdentifier=Phone&value=5003", key1, nil, &e); st != 404 || e.Reason != "unknown_agent" {
		t.Errorf("unknown agent: %d %+v", st, e)
	}
	for _, tc := range []struct{ path, body, reason string }{
		{"/api/Record/StartForAgent", `{"AgentIdentifier":"Name","Value":"x"}`, "invalid_field"},
		{"/api/Record/StartForAgent", `{"AgentIdentifier":"Id","Value":"two"}`, "invalid_field"},
		{"/api/Record/StartForAgent", `{"AgentIdentifier":"Id"}`, "missing_field"},
		{"/api/Record/StartForAgent", `{"AgentIdentifier":"Id","Value":"2","Bogus":1}`, "malformed_json"},
	} {
		e = ErrorMessage{}
		if st := h.do("POST", tc.path, key1, tc.body, &e); st != 400 || e.Reason != tc.reason || e.Code != 400 {
			t.Errorf("%s %s: %d %+v, want 400 %s", tc.path, tc.body, st, e, tc.reason)
		}
	}

	c := h.whipClient(key1)
	alice, err := whiptest.Join(ctx, c, whip.Endpoint(h.url, "callA", "alice", "MIC")+"&agentPhone=5003", "alice", 440)
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Leave(context.Background())
	a := waitAgent(func(a AgentMessage) bool { return a.ActiveCall != nil })
	if a.ActiveCall.CallInstance != "callA" || a.AgentPhone != "5003" || a.AgentID != 1 || a.DeviceID != "5003" || a.ActiveCall.CallState != "OnCall" {
		t.Errorf("agent after publishing: %+v", a)
	}
	// Record its call by phone, at the seed's path.
	a = post("/api/Record/StartForAgent", `{"AgentIdentifier":"Phone","Value":"5003","CallMetadata":{"user1":"u1-8000"}}`, 200)
	if r := a.ActiveCall.Recordings; len(r) != 1 || r[0].RecordingState != "Recording" || r[0].IsDuplicate || r[0].CallInstance != "callA" {
		t.Fatalf("recordings after StartForAgent: %+v", a.ActiveCall)
	}
	if a.ActiveCall.Metadata["user1"] != "u1-8000" || a.ActiveCall.Metadata["callinstance"] != "callA" {
		t.Errorf("call metadata %v", a.ActiveCall.Metadata)
	}
	e = ErrorMessage{}
	if st := h.do("POST", "/api/Record/StartForAgent", key1, `{"AgentIdentifier":"Phone","Value":"5003"}`, &e); st != 409 || e.Reason != "already_recording" {
		t.Errorf("second StartForAgent: %d %+v", st, e)
	}
	_, raw, _ := get("/api/Agent?agentIdentifier=Id&value=1")
	sameShape(t, "GET /api/Agent", status, raw, []string{"Blackout"}, "ActiveCall.Metadata.")
	// A duplicate of the active call, then stopped (seed bodies, lower-case path).
	a = post("/api/record/startduplicateforagent", `{"AgentIdentifier":"Phone","Value":"5003"}`, 200)
	if len(a.ActiveCall.Recordings) != 2 {
		t.Errorf("after StartDuplicateForAgent: %+v", a.ActiveCall.Recordings)
	}
	a = post("/api/Record/StopDuplicateForAgent", `{"AgentIdentifier":"Phone","Value":"5003"}`, 200)
	if r := a.ActiveCall.Recordings; len(r) != 1 || r[0].IsDuplicate {
		t.Errorf("after StopDuplicateForAgent: %+v", r)
	}

	// The agent blacks out, then takes a second call: the blackout follows.
	a = post("/api/Blackout/StartForAgent", `{"AgentIdentifier":"Phone","Value":"5003"}`, 200)
	if a.Blackout == nil || !a.Blackout.Active || a.ActiveCall.Recordings[0].RecordingState != "BlackedOut" {
		t.Errorf("after Blackout/StartForAgent: %+v %+v", a.Blackout, a.ActiveCall)
	}
	alice2, err := whiptest.Join(ctx, c, whip.Endpoint(h.url, "callB", "alice", "MIC")+"&agentPhone=5003", "alice", 660)
	if err != nil {
		t.Fatal(err)
	}
	defer alice2.Leave(context.Background())
	a = waitAgent(func(a AgentMessage) bool { return a.ActiveCall != nil && a.ActiveCall.CallInstance == "callB" })
	if len(a.InactiveCalls) != 1 || a.InactiveCalls[0].CallInstance != "callA" || a.InactiveCalls[0].CallState != "OnHold" ||
		len(a.InactiveCalls[0].Recordings) != 1 {
		t.Errorf("inactive calls after the second call: %+v", a.InactiveCalls)
	}
	a = post("/api/Record/StartForAgent", `{"AgentIdentifier":"Phone","Value":"5003"}`, 200)
	if r := a.ActiveCall.Recordings; len(r) != 1 || r[0].RecordingState != "BlackedOut" {
		t.Errorf("second call's recording under the blackout: %+v", a.ActiveCall)
	}
	recB := a.ActiveCall.Recordings[0].RecordingIdentifier
	time.Sleep(1500 * time.Millisecond)
	a = post("/api/blackout/StopForAgent", `{"AgentIdentifier":"Phone","Value":"5003"}`, 200) // the seed's own casing
	if a.Blackout != nil {
		t.Errorf("blackout after StopForAgent: %+v", a.Blackout)
	}
	post("/api/Record/UpdateForAgent", `{"AgentIdentifier":"Phone","Value":"805003","CallMetadata":{"user2":"1234567890"}}`, 404)
	a = post("/api/Record/UpdateForAgent", `{"AgentIdentifier":"Phone","Value":"5003","CallMetadata":{"user2":"1234567890"}}`, 200)
	if a.ActiveCall.Metadata["user2"] != "1234567890" {
		t.Errorf("metadata after UpdateForAgent: %v", a.ActiveCall.Metadata)
	}
	time.Sleep(1500 * time.Millisecond)
	a = post("/api/Record/StopForAgent", `{"AgentIdentifier":"Phone","Value":"5003"}`, 200)
	if len(a.ActiveCall.Recordings) != 0 || len(a.InactiveCalls[0].Recordings) != 1 {
		t.Errorf("after StopForAgent: active %+v inactive %+v", a.ActiveCall, a.InactiveCalls)
	}
	post("/api/Record/StopForAgent", `{"AgentIdentifier":"Phone","Value":"5003"}`, 409)
	// The first call's recording is stopped through seed 001's call route.
	var tel TelephonyRecording
	if st := h.do("POST", "/calls/callA/recording_stop", key1, nil, &tel); st != 200 || tel.Status != StatusEnded || tel.ReferenceID != "callA" ||
		tel.OwnerType != "agent" || len(tel.OwnerID) != 36 {
		t.Errorf("recording_stop of callA: %d %+v", st, tel)
	}

	// The second call's mix: silent under the blackout, the tone after it.
	if st := h.do("GET", "/v1/recordings/"+recB, key1, nil, &tel); st != 200 || tel.Status != StatusEnded {
		t.Fatalf("recording of callB: %d %+v", st, tel)
	}
	var comp RecordingDataMessage
	if st := h.do("GET", "/api/compositions/callB", key1, nil, &comp); st != 200 || comp.Composition == nil || len(comp.Composition.Outputs) != 1 {
		t.Fatalf("composition of callB: %d %+v", st, comp.Composition)
	}
	wav := fetch(t, comp.Composition.Outputs[0].URL)
	pcm := wavPCM(t, wav)
	if len(pcm) < 2*8000 {
		t.Fatalf("callB's mix is %d samples", len(pcm))
	}
	if lv := mediatest.Goertzel(pcm[800:8000], 8000, 660); lv > 200 {
		t.Errorf("660 Hz amplitude %.0f in the first second of callB, under the blackout: want silence", lv)
	}
	if lv := mediatest.Goertzel(pcm[len(pcm)-8000:len(pcm)-800], 8000, 660); lv < 2000 {
		t.Errorf("660 Hz amplitude %.0f in the last second of callB, after the blackout: want the tone", lv)
	}

	// The agent is persisted: GetAll knows it after a restart.
	alice.Leave(context.Background())
	alice2.Leave(context.Background())
	h.stop()
	h2 := startService(t, dir)
	var all []json.RawMessage
	if st := h2.do("GET", "/api/Agent/GetAll", key1, nil, &all); st != 200 || len(all) != 1 {
		t.Fatalf("GetAll after restart: %d %s", st, all)
	}
	sameShape(t, "GET /api/Agent/GetAll", listed, all[0], nil)
	var got AgentMessage
	json.Unmarshal(all[0], &got)
	if got.AgentID != 1 || got.AgentPhone != "5003" || got.ActiveCall != nil {
		t.Errorf("agent after restart: %+v", got)
	}
	// Another tenant sees none of it.
	if st := h2.do("GET", "/api/Agent/GetAll", key2, nil, &all); st != 200 || len(all) != 0 {
		t.Errorf("GetAll of another tenant: %d %s", st, all)
	}
}

// TestSeed003_AgentRoutesAndAdmin: each of the twelve routes at the seed's
// path answers (not "no such route"), in any case; the admin route
// registers an agent that GET /api/Agent then shows; the errors are ours.
func TestSeed003_AgentRoutesAndAdmin(t *testing.T) {
	h := startService(t, t.TempDir())
	var e ErrorMessage
	if st := h.do("POST", "/api/agents", key1, `{"AgentId":2,"AgentPhone":"5003","SystemUsername":"me","UserId":"agent2"}`, nil); st != 200 {
		t.Fatalf("register: %d", st)
	}
	if st := h.do("POST", "/api/agents", key1, `{"AgentId":3,"AgentPhone":"5003"}`, &e); st != 409 || e.Reason != "phone_taken" {
		t.Errorf("second agent with the phone: %d %+v", st, e)
	}
	routes := []string{"Blackout/StartForAgent", "Blackout/StopForAgent", "Record/StartForAgent", "Record/StopForAgent",
		"Record/UpdateForAgent", "Record/StartDuplicateForAgent", "Record/StopDuplicateForAgent",
		"ScreenRecord/StartForAgent", "ScreenRecord/UpdateForAgent", "ScreenRecord/StopForAgent"}
	want := map[string]string{"Blackout/StartForAgent": "", "Blackout/StopForAgent": "no_blackout", "Record/UpdateForAgent": "not_recording",
		"ScreenRecord/StartForAgent": "no_screen_share", "ScreenRecord/UpdateForAgent": "not_recording", "ScreenRecord/StopForAgent": "not_recording"}
	for _, r := range routes {
		for _, p := range []string{"/api/" + r, strings.ToLower("/api/" + r), strings.ToUpper("/API/" + r)} {
			if strings.HasPrefix(p, "/API") {
				p = "/api" + p[4:]
			}
			body := `{"AgentIdentifier":"Id","Value":"2","CallMetadata":{"user1":"API Initiated"}}`
			if strings.HasPrefix(r, "Blackout") {
				body = `{"AgentIdentifier":"Id","Value":2}`
			}
			e = ErrorMessage{}
			st := h.do("POST", p, key1, body, &e)
			reason, ok := want[r]
			if !ok {
				reason = "no_active_call"
			}
			if r == "Blackout/StartForAgent" {
				if st != 200 {
					t.Errorf("%s: %d %+v", p, st, e)
				}
				h.do("POST", "/api/Blackout/StopForAgent", key1, body, nil)
				continue
			}
			if st < 400 || st >= 500 || e.Reason != reason || e.Message == "" {
				t.Errorf("%s: %d %+v, want 4xx %s", p, st, e, reason)
			}
		}
	}
	var a AgentMessage
	if st := h.do("GET", "/api/agent?agentidentifier=id&value=2", key1, nil, &a); st != 200 || a.SystemUsername != "me" || a.ActiveCall != nil {
		t.Errorf("GET lower-case: %d %+v", st, a)
	}
	if st := h.do("GET", "/api/Agent", key1, nil, &e); st != 400 || e.Reason != "missing_field" {
		t.Errorf("GET without parameters: %d %+v", st, e)
	}
	if st := h.do("GET", "/api/Agent/GetAll", "", nil, &e); st != 401 {
		t.Errorf("GetAll without a key: %d", st)
	}
	if st := h.do("DELETE", "/api/agents/2", key1, nil, nil); st != 204 {
		t.Errorf("delete: %d", st)
	}
	if st := h.do("GET", "/api/Agent?agentIdentifier=Id&value=2", key1, nil, &e); st != 404 {
		t.Errorf("deleted agent: %d", st)
	}
}

func FuzzAgentCommand(f *testing.F) {
	for _, s := range []string{`{"AgentIdentifier":"Id","Value":"1"}`, `{"AgentIdentifier":"Phone","Value":805003}`,
		`{"AgentIdentifier":"Phone","Value":"5003","CallMetadata":{"user2":"1"},"CallIdentifier":111222}`,
		`{"Value":1e400}`, `{"Value":null}`, `{"Value":[1]}`, `{"BlackoutStartTime":"2024-01-21T21:36:14+02:00","TimeOffset":3}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c AgentCommand
		if json.Unmarshal(b, &c) != nil {
			return
		}
		bc := BlackoutCommand{BlackoutStartTime: c.BlackoutStartTime, BlackoutStopTime: c.BlackoutStopTime, SeedTimeOffset: c.TimeOffset}
		start, stop, err := bc.times(time.Now(), false)
		if err == nil && !stop.IsZero() && !stop.After(start) {
			t.Errorf("times %v %v accepted", start, stop)
		}
	})
}

// TestSeed003_ScreenRecord: an agent in a call shares its screen; the seed's
// ScreenRecord routes record that screen share alone, as video (not the
// agent's microphone, not another participant's camera), with its metadata.
func TestSeed003_ScreenRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	vp8 := vp8Frames(t, 4)
	h := startService(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sendCtx, stopSending := context.WithCancel(ctx)
	defer stopSending()
	c := h.whipClient(key1)
	publish := func(endpoint string, tracks ...*webrtc.TrackLocalStaticSample) {
		var tl []webrtc.TrackLocal
		for _, tr := range tracks {
			tl = append(tl, tr)
		}
		p, err := c.Publish(ctx, endpoint, tl...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close(context.Background()) })
		if err := p.WaitConnected(ctx); err != nil {
			t.Fatal(err)
		}
	}
	bob, err := whiptest.Join(ctx, c, whip.Endpoint(h.url, "scall", "bob", "MIC")+"&agentId=7", "bob", 440)
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Leave(context.Background())
	screen, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "v", "bob-screen")
	publish(whip.Endpoint(h.url, "scall", "bob", "SCREEN")+"&agentId=7", screen)
	go sendLoop(sendCtx, screen, vp8, time.Second/30)
	cam, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "v", "carol-cam")
	publish(whip.Endpoint(h.url, "scall", "carol", "CAM"), cam)
	go sendLoop(sendCtx, cam, vp8, time.Second/30)

	// Wait until the agent is on the call and shares its screen there (the
	// screen's track is added once its first packet came: on a loaded
	// machine after the microphone's).
	sharing := func() bool {
		ag, err := h.svc.Manager.AgentOf("org1", recorder.AgentRef{By: "Id", Value: "7"})
		return err == nil && ag.ActiveCall() != nil && ag.ActiveCall().Screen
	}
	var a AgentMessage
	for a.ActiveCall == nil || len(a.InactiveCalls)+len(a.DesktopOnlySessions) != 0 || !sharing() {
		h.do("GET", "/api/Agent?agentIdentifier=Id&value=7", key1, nil, &a)
		select {
		case <-ctx.Done():
			t.Fatalf("agent 7: %+v", a)
		case <-time.After(50 * time.Millisecond):
		}
	}
	var raw json.RawMessage
	if st := h.do("POST", "/api/ScreenRecord/StartForAgent", key1, `{"AgentIdentifier":"Id", "Value":"7", "CallMetadata":{"user1":"API Initiated"}}`, &raw); st != 200 {
		t.Fatalf("ScreenRecord/StartForAgent: %d %s", st, raw)
	}
	json.Unmarshal(raw, &a)
	if s := a.ActiveCall.ScreenRecordings; len(s) != 1 || s[0].RelatedCallInstance != "scall" || s[0].RecordingState != "Recording" || len(a.ActiveCall.Recordings) != 0 {
		t.Fatalf("after ScreenRecord/StartForAgent: %+v", a.ActiveCall)
	}
	status, _ := agentSeed(t)
	sameShape(t, "ScreenRecord/StartForAgent", status, raw, nil, "ActiveCall.Metadata.")
	var e ErrorMessage
	if st := h.do("POST", "/api/ScreenRecord/StartForAgent", key1, `{"AgentIdentifier":"Id","Value":"7"}`, &e); st != 409 || e.Reason != "already_recording" {
		t.Errorf("second ScreenRecord/StartForAgent: %d %+v", st, e)
	}
	time.Sleep(2 * time.Second)
	if st := h.do("POST", "/api/ScreenRecord/UpdateForAgent", key1, `{"AgentIdentifier":"Id","Value":"7","CallMetadata":{"user2":"later"}}`, &a); st != 200 {
		t.Errorf("ScreenRecord/UpdateForAgent: %d", st)
	}
	if st := h.do("POST", "/api/ScreenRecord/StopForAgent", key1, `{"AgentIdentifier":"Id","Value":"7","CallMetadata":{"user1":"API Initiated"}}`, &a); st != 200 || len(a.ActiveCall.ScreenRecordings) != 0 {
		t.Fatalf("ScreenRecord/StopForAgent: %d %+v", st, a.ActiveCall)
	}
	stopSending()
	var conv ConversationMessage
	if st := h.do("GET", "/api/recordings/scall-screen", key1, nil, &conv); st != 200 || len(conv.Recordings) != 1 {
		t.Fatalf("the screen recording: %d %+v", st, conv)
	}
	rec := conv.Recordings[0]
	if len(rec.Streams) != 1 || rec.Streams[0].UserID != "bob" || rec.Streams[0].Type != "SCREEN" || len(rec.Streams[0].Tracks) != 1 || rec.Streams[0].Tracks[0].Type != "VIDEO" {
		t.Fatalf("the screen recording holds %+v, want bob's screen video only", rec.Streams)
	}
	var comp RecordingDataMessage
	if st := h.do("GET", "/api/compositions/scall-screen", key1, nil, &comp); st != 200 || len(comp.Streams) != 1 || len(comp.Streams[0].Tracks) != 1 {
		t.Fatalf("composition of the screen recording: %d %+v", st, comp)
	}
	var man struct {
		Metadata map[string]string `json:"metadata"`
	}
	if comp.Composition == nil || comp.Composition.Manifest == nil {
		t.Fatalf("no manifest: %+v", comp.Composition)
	}
	json.Unmarshal(fetch(t, comp.Composition.Manifest.URL), &man)
	if man.Metadata["user1"] != "API Initiated" || man.Metadata["user2"] != "later" || man.Metadata["agentId"] != "7" {
		t.Errorf("screen recording metadata %v", man.Metadata)
	}
	tr := comp.Streams[0].Tracks[0]
	a0, _ := time.Parse(time.RFC3339Nano, tr.Started)
	b0, _ := time.Parse(time.RFC3339Nano, tr.Stopped)
	if codec, d := probe(t, fetch(t, tr.URL), "screen"); codec != "vp8" || d < 1.5 || math.Abs(d-b0.Sub(a0).Seconds()) > 0.5 {
		t.Errorf("screen track: ffprobe says %s %.2f s, want vp8 of %.2f s", codec, d, b0.Sub(a0).Seconds())
	}
}
