package recorder

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/recorder/ids"
	"github.com/rtcrec/recorder/recorder/store"
)

// The agent tracker (seed 003). An agent is a participant known by an
// integer id and a phone number. Agents are declared in the configuration
// (organizations.{org}.agents), registered through the API (RegisterAgent),
// or learnt when a publisher joins with an agent's id or phone (a WHIP
// publisher's ?agentId= and ?agentPhone=, conference.Track.AgentID and
// AgentPhone). Every agent is stored (store.PutAgent) and known again after
// a restart; its calls are live state: the conferences where it publishes
// now, learnt from the tracks the adapters deliver.

// Agent sources.
const (
	AgentFromConfig    = "config"
	AgentFromAdmin     = "admin"
	AgentFromPublisher = "publisher"
)

// Agent is one agent of an organization and, in snapshots, its calls.
type Agent struct {
	OrganizationID string  `json:"organizationId"`
	AgentID        int64   `json:"agentId"`
	AgentPhone     string  `json:"agentPhone"`
	UserID         string  `json:"userId"` // the participant id it publishes under
	BusinessUnit   int64   `json:"businessUnit"`
	SystemUsername string  `json:"systemUsername"`
	CrmUsername    string  `json:"crmUsername"`
	Username       *string `json:"username"` // null when unknown, as in the seed
	DeviceID       string  `json:"deviceId"`
	DeviceAlias    string  `json:"deviceAlias"`
	ApplicationID  string  `json:"applicationId,omitempty"` // the application its recordings use
	Source         string  `json:"source"`                  // config | admin | publisher

	// Calls are the conferences the agent publishes in now, oldest first
	// (snapshots only; not stored).
	Calls []AgentCall `json:"-"`
}

// AgentCall is one conference an agent publishes in.
type AgentCall struct {
	ConferenceID string
	Joined       time.Time // the agent's first track in it
	MicSince     time.Time // when its microphone came (zero: none now)
	Mic, Screen  bool      // publishes a microphone, a screen share now
	Other        bool      // publishes another stream (camera…)
	Metadata     map[string]string
}

// IsCall reports whether c is a call (the agent is in it with more than a
// screen share); screen shares alone are desktop-only sessions.
func (c *AgentCall) IsCall() bool { return c.Mic || c.Other }

// ActiveCall returns the call in which the agent publishes a microphone,
// the latest such one when there are several, or nil.
func (a *Agent) ActiveCall() *AgentCall {
	var best *AgentCall
	for i := range a.Calls {
		c := &a.Calls[i]
		if c.Mic && (best == nil || !c.MicSince.Before(best.MicSince)) {
			best = c
		}
	}
	return best
}

// Call returns the agent's call in conferenceID, or nil.
func (a *Agent) Call(conferenceID string) *AgentCall {
	for i := range a.Calls {
		if a.Calls[i].ConferenceID == conferenceID {
			return &a.Calls[i]
		}
	}
	return nil
}

// AgentRef names an agent as seed 003 does: AgentIdentifier "Id" or "Phone"
// (any case) and its Value.
type AgentRef struct {
	By    string
	Value string
}

// agentState is a tracked agent and its live calls.
type agentState struct {
	a     Agent
	calls map[string]*callState // by conferenceId
}

type callState struct {
	joined, micSince time.Time
	tracks           map[conference.StreamType]int
	metadata         map[string]string
}

type agentKey struct {
	org string
	id  int64
}

// agentTracker is the Manager's agents.
type agentTracker struct {
	mu       sync.Mutex
	agents   map[agentKey]*agentState
	loadOnce sync.Once
	loadErr  error
}

// MaxAgentPhone bounds an agent's phone number and other text fields.
const MaxAgentPhone = ids.MaxAgentPhone

// validAgentFields checks an agent's fields (ids.ValidateAgent); a violation
// is a KindInvalid *Error.
func validAgentFields(id int64, phone, user, app string, text ...string) error {
	return invalid(ids.ValidateAgent(id, phone, user, app, text...))
}

// validPhone checks an agent phone (ids.ValidatePhone).
func validPhone(p string) error { return invalid(ids.ValidatePhone(p)) }

// ParseAgentID parses an agent id: a positive integer.
func ParseAgentID(v string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n <= 0 {
		return 0, errorf(KindInvalid, "invalid_field", "agent id %s is not a positive integer", quoteID(v))
	}
	return n, nil
}

// loadAgents registers the stored agents and then the configured ones
// (which win), once.
func (m *Manager) loadAgents() {
	t := &m.agents
	t.loadOnce.Do(func() {
		stored, err := m.store.Agents(context.Background())
		t.mu.Lock()
		defer t.mu.Unlock()
		t.agents = map[agentKey]*agentState{}
		if err != nil {
			t.loadErr = err
			m.log.Error("cannot load agents", "err", err)
		}
		for _, sa := range stored {
			var a Agent
			if err := json.Unmarshal(sa.Data, &a); err != nil {
				m.log.Error("stored agent unreadable", "agentId", sa.AgentID, "err", err)
				continue
			}
			a.OrganizationID, a.AgentID = sa.OrganizationID, sa.AgentID
			t.agents[agentKey{a.OrganizationID, a.AgentID}] = &agentState{a: a, calls: map[string]*callState{}}
		}
		for org, o := range m.cfg.Organizations {
			if o == nil {
				continue
			}
			for _, c := range o.Agents {
				a := agentOfConfig(org, c, AgentFromConfig)
				key := agentKey{org, a.AgentID}
				if st := t.agents[key]; st != nil {
					st.a = a
				} else {
					t.agents[key] = &agentState{a: a, calls: map[string]*callState{}}
				}
			}
		}
	})
}

// refreshAgents reads the stored agents again, for the API's reads: in a
// fleet another instance may have learnt or registered an agent since this
// one started. Agents this instance knows keep their live calls; configured
// ones keep the configuration's fields.
func (m *Manager) refreshAgents(ctx context.Context) {
	m.loadAgents()
	stored, err := m.store.Agents(ctx)
	if err != nil {
		m.log.Warn("cannot read the stored agents", "err", err)
		return
	}
	t := &m.agents
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, sa := range stored {
		var a Agent
		if json.Unmarshal(sa.Data, &a) != nil {
			continue
		}
		a.OrganizationID, a.AgentID = sa.OrganizationID, sa.AgentID
		key := agentKey{a.OrganizationID, a.AgentID}
		switch st := t.agents[key]; {
		case st == nil:
			t.agents[key] = &agentState{a: a, calls: map[string]*callState{}}
		case st.a.Source != AgentFromConfig:
			st.a = a
		}
	}
}

func agentOfConfig(org string, c config.AgentConfig, source string) Agent {
	a := Agent{OrganizationID: org, AgentID: c.AgentID, AgentPhone: c.AgentPhone, UserID: c.UserID,
		BusinessUnit: c.BusinessUnit, SystemUsername: c.SystemUsername, CrmUsername: c.CrmUsername,
		DeviceID: c.DeviceID, DeviceAlias: c.DeviceAlias, ApplicationID: c.ApplicationID, Source: source}
	if c.Username != "" {
		u := c.Username
		a.Username = &u
	}
	if a.UserID == "" {
		a.UserID = "agent-" + strconv.FormatInt(a.AgentID, 10)
	}
	if a.DeviceID == "" {
		a.DeviceID = a.AgentPhone
	}
	return a
}

// RegisterAgent adds or replaces an agent of organizationID (the admin
// route). Its phone must not be another agent's; its live calls are kept.
func (m *Manager) RegisterAgent(ctx context.Context, organizationID string, c config.AgentConfig) (*Agent, error) {
	if err := invalid(c.Validate()); err != nil {
		return nil, err
	}
	m.loadAgents()
	t := &m.agents
	a := agentOfConfig(organizationID, c, AgentFromAdmin)
	t.mu.Lock()
	for k, st := range t.agents {
		if k.org == organizationID && k.id != a.AgentID && a.AgentPhone != "" && st.a.AgentPhone == a.AgentPhone {
			t.mu.Unlock()
			return nil, errorf(KindConflict, "phone_taken", "agent %d already has phone %s", k.id, a.AgentPhone)
		}
	}
	key := agentKey{organizationID, a.AgentID}
	st := t.agents[key]
	if st == nil {
		st = &agentState{calls: map[string]*callState{}}
		t.agents[key] = st
	}
	st.a = a
	snap := st.snapshot()
	t.mu.Unlock()
	if err := m.persistAgent(ctx, snap); err != nil {
		return nil, err
	}
	return snap, nil
}

// DeleteAgent forgets an agent registered through the API or learnt from a
// publisher; a configured agent cannot be deleted (it comes back at the next
// start).
func (m *Manager) DeleteAgent(ctx context.Context, organizationID string, agentID int64) error {
	m.loadAgents()
	t := &m.agents
	key := agentKey{organizationID, agentID}
	t.mu.Lock()
	st := t.agents[key]
	if st == nil {
		t.mu.Unlock()
		return errorf(KindNotFound, "unknown_agent", "no agent with id %d", agentID)
	}
	if st.a.Source == AgentFromConfig {
		t.mu.Unlock()
		return errorf(KindConflict, "configured_agent", "agent %d is declared in the configuration; remove it there", agentID)
	}
	delete(t.agents, key)
	t.mu.Unlock()
	return m.store.DeleteAgent(context.WithoutCancel(ctx), organizationID, agentID)
}

// Agents returns the agents of organizationID by id, with their calls.
func (m *Manager) Agents(organizationID string) []*Agent {
	m.refreshAgents(context.Background())
	t := &m.agents
	t.mu.Lock()
	var out []*Agent
	for k, st := range t.agents {
		if k.org == organizationID {
			out = append(out, st.snapshot())
		}
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b *Agent) int { return int(min(max(a.AgentID-b.AgentID, -1), 1)) })
	return out
}

// AgentOf returns the agent ref names in organizationID: unknown agents are
// not found, a malformed ref is invalid.
func (m *Manager) AgentOf(organizationID string, ref AgentRef) (*Agent, error) {
	m.refreshAgents(context.Background())
	t := &m.agents
	var id int64
	switch {
	case strings.EqualFold(ref.By, "Id"):
		n, err := ParseAgentID(ref.Value)
		if err != nil {
			return nil, err
		}
		id = n
	case strings.EqualFold(ref.By, "Phone"):
		if ref.Value == "" {
			return nil, errorf(KindInvalid, "missing_field", "Value (the agent's phone) is required")
		}
		if err := validPhone(ref.Value); err != nil {
			return nil, err
		}
	case ref.By == "":
		return nil, errorf(KindInvalid, "missing_field", "AgentIdentifier (Id or Phone) is required")
	default:
		return nil, errorf(KindInvalid, "invalid_field", "AgentIdentifier %s is not Id or Phone", quoteID(ref.By))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, st := range t.agents {
		if k.org == organizationID && (id != 0 && k.id == id || id == 0 && st.a.AgentPhone == ref.Value) {
			return st.snapshot(), nil
		}
	}
	return nil, errorf(KindNotFound, "unknown_agent", "no agent with %s %s", strings.ToLower(ref.By), quoteID(ref.Value))
}

// SetCallMetadata merges md into the metadata of the agent's call in
// conferenceID (an empty value removes a key).
func (m *Manager) SetCallMetadata(organizationID string, agentID int64, conferenceID string, md map[string]string) {
	t := &m.agents
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.agents[agentKey{organizationID, agentID}]
	if st == nil || st.calls[conferenceID] == nil {
		return
	}
	c := st.calls[conferenceID]
	if c.metadata == nil {
		c.metadata = map[string]string{}
	}
	for k, v := range md {
		if v == "" {
			delete(c.metadata, k)
		} else {
			c.metadata[k] = v
		}
	}
}

// snapshot copies st; the caller holds the tracker's lock.
func (st *agentState) snapshot() *Agent {
	a := st.a
	if a.Username != nil {
		u := *a.Username
		a.Username = &u
	}
	a.Calls = make([]AgentCall, 0, len(st.calls))
	for conf, c := range st.calls {
		ac := AgentCall{ConferenceID: conf, Joined: c.joined, MicSince: c.micSince, Metadata: map[string]string{},
			Mic: c.tracks[conference.StreamMIC] > 0, Screen: c.tracks[conference.StreamSCREEN] > 0}
		for typ, n := range c.tracks {
			ac.Other = ac.Other || n > 0 && typ != conference.StreamMIC && typ != conference.StreamSCREEN
		}
		for k, v := range c.metadata {
			ac.Metadata[k] = v
		}
		a.Calls = append(a.Calls, ac)
	}
	slices.SortFunc(a.Calls, func(x, y AgentCall) int {
		if c := x.Joined.Compare(y.Joined); c != 0 {
			return c
		}
		return strings.Compare(x.ConferenceID, y.ConferenceID)
	})
	return &a
}

// agentTrack counts a track that started (delta 1) or ended (-1) for the
// agent it belongs to: the one the publisher named (AgentID or AgentPhone),
// learnt on first sight, or the agent whose userId sent it. It takes only the
// tracker's lock (a leaf lock); a newly learnt agent is stored on another
// goroutine, so that a track never waits for the store.
func (m *Manager) agentTrack(org string, t *conference.Track, delta int) {
	tr := &m.agents
	now := m.now()
	var learnt *Agent
	isNew := false
	tr.mu.Lock()
	st := tr.find(org, t)
	if st == nil && delta > 0 && (t.AgentID != "" || t.AgentPhone != "") {
		st = tr.learn(org, t)
		if st != nil {
			learnt, isNew = st.snapshot(), t.AgentID == ""
		}
	}
	if st != nil {
		if delta > 0 && t.UserID != "" && st.a.UserID != t.UserID && (t.AgentID != "" || t.AgentPhone != "") {
			st.a.UserID = t.UserID // the agent publishes under this participant id now
			learnt = st.snapshot()
		}
		c := st.calls[t.ConferenceID]
		if c == nil && delta > 0 {
			c = &callState{joined: now, tracks: map[conference.StreamType]int{}}
			st.calls[t.ConferenceID] = c
		}
		if c != nil {
			c.tracks[t.StreamType] += delta
			if t.StreamType == conference.StreamMIC && delta > 0 && c.tracks[conference.StreamMIC] == 1 {
				c.micSince = now
			}
			live := 0
			for _, n := range c.tracks {
				live += max(n, 0)
			}
			if live == 0 {
				delete(st.calls, t.ConferenceID)
			}
		}
	}
	tr.mu.Unlock()
	if learnt != nil {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.storeLearnt(learnt, isNew)
		}()
	}
}

// storeLearnt stores an agent learnt from a publisher. When the publisher
// gave only a phone, the id was picked here (the next free one this
// instance knows); another instance of a fleet may have stored the phone
// under another id, or the id for another phone, meanwhile: the agent is
// then merged into the stored one, or moved to a free id.
func (m *Manager) storeLearnt(a *Agent, pickedID bool) {
	ctx := context.Background()
	if pickedID {
		stored, err := m.store.Agents(ctx)
		if err != nil {
			m.log.Error("cannot read the stored agents", "err", err)
			return
		}
		maxID, clash := int64(0), false
		for _, sa := range stored {
			if sa.OrganizationID != a.OrganizationID {
				continue
			}
			maxID = max(maxID, sa.AgentID)
			var s Agent
			if json.Unmarshal(sa.Data, &s) != nil {
				continue
			}
			if sa.AgentID != a.AgentID && s.AgentPhone == a.AgentPhone {
				s.OrganizationID, s.AgentID = sa.OrganizationID, sa.AgentID
				m.moveAgent(a.OrganizationID, a.AgentID, &s)
				return
			}
			clash = clash || sa.AgentID == a.AgentID && s.AgentPhone != a.AgentPhone
		}
		if clash {
			moved := *a
			m.agents.mu.Lock()
			for k := range m.agents.agents {
				if k.org == a.OrganizationID {
					maxID = max(maxID, k.id)
				}
			}
			m.agents.mu.Unlock()
			moved.AgentID = maxID + 1
			m.moveAgent(a.OrganizationID, a.AgentID, &moved)
			a = &moved
		}
	}
	m.persistAgent(ctx, a)
}

// moveAgent makes the tracked agent from into agent into: its calls are
// added to into's (which is into itself when not tracked yet).
func (m *Manager) moveAgent(org string, from int64, into *Agent) {
	t := &m.agents
	t.mu.Lock()
	defer t.mu.Unlock()
	src := t.agents[agentKey{org, from}]
	delete(t.agents, agentKey{org, from})
	key := agentKey{org, into.AgentID}
	dst := t.agents[key]
	if dst == nil {
		a := *into
		a.Calls = nil
		if a.UserID == "" && src != nil {
			a.UserID = src.a.UserID
		}
		dst = &agentState{a: a, calls: map[string]*callState{}}
		t.agents[key] = dst
	}
	if src == nil {
		return
	}
	for conf, c := range src.calls {
		d := dst.calls[conf]
		if d == nil {
			dst.calls[conf] = c
			continue
		}
		for typ, n := range c.tracks {
			d.tracks[typ] += n
		}
		if d.micSince.IsZero() || c.micSince.After(d.micSince) {
			d.micSince = c.micSince
		}
	}
}

// find returns the agent of track t; the caller holds the lock.
func (tr *agentTracker) find(org string, t *conference.Track) *agentState {
	id, _ := strconv.ParseInt(t.AgentID, 10, 64)
	for k, st := range tr.agents {
		if k.org != org {
			continue
		}
		switch {
		case id > 0:
			if k.id == id {
				return st
			}
		case t.AgentPhone != "":
			if st.a.AgentPhone == t.AgentPhone {
				return st
			}
		case st.a.UserID == t.UserID:
			return st
		}
	}
	return nil
}

// learn registers the agent a publisher named; the caller holds the lock.
func (tr *agentTracker) learn(org string, t *conference.Track) *agentState {
	id, _ := strconv.ParseInt(t.AgentID, 10, 64)
	if id <= 0 { // the next free id
		id = 0
		for k := range tr.agents {
			if k.org == org && k.id > id {
				id = k.id
			}
		}
		id++
	}
	st := &agentState{calls: map[string]*callState{}, a: Agent{OrganizationID: org, AgentID: id, AgentPhone: t.AgentPhone,
		UserID: t.UserID, DeviceID: t.AgentPhone, Source: AgentFromPublisher}}
	tr.agents[agentKey{org, id}] = st
	return st
}

// persistAgent stores a (without its calls).
func (m *Manager) persistAgent(ctx context.Context, a *Agent) error {
	data, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if err := m.store.PutAgent(context.WithoutCancel(ctx), &store.Agent{OrganizationID: a.OrganizationID, AgentID: a.AgentID, Data: data}); err != nil {
		m.log.Error("cannot store agent", "agentId", a.AgentID, "err", err)
		return fmt.Errorf("recorder: store agent %d: %w", a.AgentID, err)
	}
	return nil
}
