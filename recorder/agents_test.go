package recorder

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/recorder/conference"
)

func TestManager_AgentLearntFromTracks(t *testing.T) {
	m, _, st := newTestManager(t)
	clock := time.Now().UTC()
	m.now = func() time.Time { clock = clock.Add(time.Millisecond); return clock }
	mic1 := &conference.Track{ConferenceID: "conf1", UserID: "alice", StreamType: conference.StreamMIC, AgentPhone: "5003"}
	m.agentTrack("org", mic1, 1)
	a, err := m.AgentOf("org", AgentRef{By: "phone", Value: "5003"})
	if err != nil {
		t.Fatal(err)
	}
	if a.AgentID != 1 || a.UserID != "alice" || a.DeviceID != "5003" || a.Source != AgentFromPublisher {
		t.Errorf("learnt agent %+v", a)
	}
	if c := a.ActiveCall(); c == nil || c.ConferenceID != "conf1" {
		t.Fatalf("active call %+v, want conf1", c)
	}
	// Another organization does not see it.
	if _, err := m.AgentOf("other", AgentRef{By: "Id", Value: "1"}); KindOf(err) != KindNotFound {
		t.Errorf("agent of another organization: %v", err)
	}
	// A second conference with a microphone becomes the active call; a track
	// without agent parameters counts for the agent by its userId.
	mic2 := &conference.Track{ConferenceID: "conf2", UserID: "alice", StreamType: conference.StreamMIC}
	m.agentTrack("org", mic2, 1)
	screen := &conference.Track{ConferenceID: "desk", UserID: "alice", StreamType: conference.StreamSCREEN, AgentID: "1"}
	m.agentTrack("org", screen, 1)
	a, _ = m.AgentOf("org", AgentRef{By: "Id", Value: "1"})
	if c := a.ActiveCall(); c == nil || c.ConferenceID != "conf2" {
		t.Fatalf("active call %+v, want conf2", c)
	}
	if len(a.Calls) != 3 || a.Call("conf1") == nil || !a.Call("conf1").IsCall() || a.Call("desk").IsCall() {
		t.Errorf("calls %+v, want conf1 and conf2 calls and desk a screen share", a.Calls)
	}
	// The microphone of conf2 ends: conf1 is active again.
	m.agentTrack("org", mic2, -1)
	a, _ = m.AgentOf("org", AgentRef{By: "Id", Value: "1"})
	if c := a.ActiveCall(); c == nil || c.ConferenceID != "conf1" || a.Call("conf2") != nil {
		t.Errorf("after conf2 ended: active %+v, calls %+v", c, a.Calls)
	}
	// The agent is stored (on another goroutine): a new Manager on the same
	// store knows it (no calls).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if stored, _ := st.Agents(context.Background()); len(stored) == 1 && strings.Contains(string(stored[0].Data), `"alice"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the learnt agent was not stored")
		}
	}
	m2, err := NewManager(context.Background(), Options{Config: m.cfg, Store: st, RecorderID: "rec1", Logger: slog.Default()})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Shutdown(context.Background())
	agents := m2.Agents("org")
	if len(agents) != 1 || agents[0].AgentPhone != "5003" || agents[0].UserID != "alice" || len(agents[0].Calls) != 0 {
		t.Errorf("agents after restart: %+v", agents)
	}
}

func TestManager_AgentRegistrationAndConfig(t *testing.T) {
	m0, _, st := newTestManager(t)
	m0.cfg.Organizations = map[string]*config.Organization{"org": {Agents: []config.AgentConfig{{AgentID: 2, AgentPhone: "5003", SystemUsername: "me"}}}}
	ctx := context.Background()
	m, err := NewManager(ctx, Options{Config: m0.cfg, Store: st, RecorderID: "rec2"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(ctx)
	a, err := m.AgentOf("org", AgentRef{By: "Id", Value: "2"})
	if err != nil || a.UserID != "agent-2" || a.SystemUsername != "me" || a.Source != AgentFromConfig || a.Username != nil {
		t.Fatalf("configured agent %+v %v", a, err)
	}
	bad := []config.AgentConfig{
		{AgentID: 0, AgentPhone: "1"},
		{AgentID: 3, AgentPhone: "50/03"},
		{AgentID: 3, AgentPhone: "1", UserID: "a\x00b"},
		{AgentID: 3, ApplicationID: "../x"},
	}
	for _, c := range bad {
		if _, err := m.RegisterAgent(ctx, "org", c); KindOf(err) != KindInvalid {
			t.Errorf("RegisterAgent(%+v) = %v, want invalid", c, err)
		}
	}
	if _, err := m.RegisterAgent(ctx, "org", config.AgentConfig{AgentID: 3, AgentPhone: "5003"}); KindOf(err) != KindConflict {
		t.Errorf("a second agent with phone 5003: %v, want conflict", err)
	}
	if a, err := m.RegisterAgent(ctx, "org", config.AgentConfig{AgentID: 3, AgentPhone: "5005", UserID: "bob", Username: "Bob"}); err != nil || *a.Username != "Bob" {
		t.Fatalf("register: %+v %v", a, err)
	}
	if err := m.DeleteAgent(ctx, "org", 2); KindOf(err) != KindConflict {
		t.Errorf("deleting a configured agent: %v, want conflict", err)
	}
	if err := m.DeleteAgent(ctx, "org", 3); err != nil {
		t.Errorf("delete: %v", err)
	}
	if _, err := m.AgentOf("org", AgentRef{By: "Phone", Value: "5005"}); KindOf(err) != KindNotFound {
		t.Errorf("deleted agent: %v", err)
	}
	for _, ref := range []AgentRef{{"", "2"}, {"Name", "2"}, {"Id", "two"}, {"Id", "-2"}, {"Phone", ""}} {
		if _, err := m.AgentOf("org", ref); KindOf(err) != KindInvalid {
			t.Errorf("AgentOf(%+v) = %v, want invalid", ref, err)
		}
	}
}

func TestManager_BlackoutTimesAsGiven(t *testing.T) {
	m, _, _ := newTestManager(t)
	ctx := context.Background()
	now := time.Now().UTC()
	// A start in the past is kept as given; the blackout is in force.
	past := now.Add(-2 * time.Second)
	b, err := m.StartBlackout(ctx, "org", BlackoutRequest{UserID: "u", Start: past})
	if err != nil || !b.Active || !b.Start.Equal(past) || !b.Stop.Equal(past.Add(m.cfg.Defaults.MaxBlackout)) {
		t.Fatalf("past start: %+v %v, want active from %v", b, err, past)
	}
	if !m.blackedOut("org", "any", "u") {
		t.Error("not blacked out")
	}
	// A blackout that would have ended before now is refused.
	if _, err := m.StartBlackout(ctx, "org", BlackoutRequest{UserID: "w", Start: now.Add(-2 * m.cfg.Defaults.MaxBlackout)}); KindOf(err) != KindInvalid {
		t.Errorf("blackout over before now: %v, want invalid", err)
	}
	// A blackout scheduled ahead is cancelled by a stop before it begins.
	b, err = m.StartBlackout(ctx, "org", BlackoutRequest{UserID: "v", Start: now.Add(time.Hour)})
	if err != nil || b.Active {
		t.Fatalf("scheduled: %+v %v", b, err)
	}
	if b, err := m.StopBlackout(ctx, "org", BlackoutRequest{UserID: "v", Stop: time.Now().UTC()}); err != nil || b.Active {
		t.Errorf("cancel: %+v %v", b, err)
	}
	if m.blackedOut("org", "any", "v") || m.Blackouts("org")["v"] != nil {
		t.Error("cancelled blackout still registered")
	}
	if _, err := m.StopBlackout(ctx, "org", BlackoutRequest{UserID: "v"}); KindOf(err) != KindNotFound {
		t.Errorf("second stop: %v, want not found", err)
	}
}

func FuzzAgentRef(f *testing.F) {
	for _, s := range []string{"2", "5003", "805003", "-1", "0x10", " 7 ", "99999999999999999999", "+1 (555) 010-0000", "a\x00"} {
		f.Add("Id", s)
		f.Add("Phone", s)
	}
	f.Fuzz(func(t *testing.T, by, value string) {
		if n, err := ParseAgentID(value); err == nil && n <= 0 {
			t.Errorf("ParseAgentID(%q) = %d", value, n)
		}
		if validPhone(value) == nil && len(value) > MaxAgentPhone {
			t.Errorf("phone of %d bytes accepted", len(value))
		}
		var tr agentTracker
		tr.agents = map[agentKey]*agentState{}
		tr.learn("org", &conference.Track{ConferenceID: "c", UserID: "u", AgentID: value, AgentPhone: value})
		for k := range tr.agents {
			if k.id <= 0 {
				t.Errorf("learnt agent id %d from %q", k.id, value)
			}
		}
	})
}

// TestManager_AgentsOfAnotherInstance: an agent another instance of a fleet
// stores (same store) is known to this one's reads without a restart.
func TestManager_AgentsOfAnotherInstance(t *testing.T) {
	m, _, st := newTestManager(t)
	ctx := context.Background()
	other, err := NewManager(ctx, Options{Config: m.cfg, Store: st, RecorderID: "rec2"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Shutdown(ctx)
	if _, err := other.RegisterAgent(ctx, "org", config.AgentConfig{AgentID: 9, AgentPhone: "7000", UserID: "zoe"}); err != nil {
		t.Fatal(err)
	}
	a, err := m.AgentOf("org", AgentRef{By: "Phone", Value: "7000"})
	if err != nil || a.AgentID != 9 || a.UserID != "zoe" {
		t.Fatalf("agent registered on another instance: %+v %v", a, err)
	}
	if all := m.Agents("org"); len(all) != 1 {
		t.Errorf("agents %+v", all)
	}
}

// TestManager_AgentLearntByTwoInstances: a publisher on this instance names
// only a phone; the id picked here was given by another instance to another
// phone meanwhile: the agent moves to a free id. Then a publisher names a
// phone another instance stored under id 9 after this one started: the
// agent learnt here is merged into agent 9.
func TestManager_AgentLearntByTwoInstances(t *testing.T) {
	m, _, st := newTestManager(t)
	ctx := context.Background()
	other, err := NewManager(ctx, Options{Config: m.cfg, Store: st, RecorderID: "rec2"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Shutdown(ctx)
	wait := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: agents %+v", what, m.Agents("org"))
			}
		}
	}
	if _, err := other.RegisterAgent(ctx, "org", config.AgentConfig{AgentID: 1, AgentPhone: "1111"}); err != nil {
		t.Fatal(err)
	}
	m.agentTrack("org", &conference.Track{ConferenceID: "c2", UserID: "yan", StreamType: conference.StreamMIC, AgentPhone: "2222"}, 1)
	wait("2222 moved off id 1", func() bool {
		a, err := m.AgentOf("org", AgentRef{By: "Phone", Value: "2222"})
		b, _ := m.AgentOf("org", AgentRef{By: "Id", Value: "1"})
		return err == nil && a.AgentID == 2 && a.ActiveCall() != nil && b != nil && b.AgentPhone == "1111"
	})
	if _, err := other.RegisterAgent(ctx, "org", config.AgentConfig{AgentID: 9, AgentPhone: "7000", UserID: "zoe"}); err != nil {
		t.Fatal(err)
	}
	m.agentTrack("org", &conference.Track{ConferenceID: "c1", UserID: "zoe", StreamType: conference.StreamMIC, AgentPhone: "7000"}, 1)
	wait("7000 merged into agent 9", func() bool {
		a, err := m.AgentOf("org", AgentRef{By: "Phone", Value: "7000"})
		return err == nil && a.AgentID == 9 && a.ActiveCall() != nil && a.ActiveCall().ConferenceID == "c1" && len(m.Agents("org")) == 3
	})
}
