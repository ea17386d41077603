package recorder

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/rtcrec/recorder/recorder/events"
)

// Publisher persists and delivers events (recorder/events.Bus implements it).
// Publish is called with the session's lock held, in the order things happen.
type Publisher interface {
	Publish(ctx context.Context, ev events.Event) (events.Event, error)
}

// RecordingEvent is the data of every recording event: the fields of seed
// 004's RecordingDataEvent plus what a listener needs to act without asking.
type RecordingEvent struct {
	ConversationID string     `json:"conversationId"`
	Error          *ErrorInfo `json:"error,omitempty"`
	InstanceID     string     `json:"instanceId"`
	RecorderID     string     `json:"recorderId"`
	State          string     `json:"state"`
	ApplicationID  string     `json:"applicationId"`
	ConferenceID   string     `json:"conferenceId"`
	Paused         bool       `json:"paused"`
	// Object is the uploaded object (upload.* events).
	Object *ObjectFile `json:"object,omitempty"`
	// Composition is the composition result (composition.* events).
	Composition *Composition `json:"composition,omitempty"`
}

func recordingEventData(r *Recording) *RecordingEvent {
	return &RecordingEvent{ConversationID: r.ConversationID, Error: r.Error, InstanceID: r.InstanceID,
		RecorderID: r.RecorderID, State: string(r.State), ApplicationID: r.ApplicationID,
		ConferenceID: r.ConferenceID, Paused: r.Paused}
}

// publish sends one event about r; failures are logged, never returned: the
// recording's own state is already persisted.
func (m *Manager) publish(ctx context.Context, r *Recording, typ string, data any) {
	m.publishOrg(ctx, r.OrganizationID, r.ApplicationID, typ, data)
}

func (m *Manager) publishOrg(ctx context.Context, org, app, typ string, data any) {
	if m.lc.events == nil {
		return
	}
	raw, err := json.Marshal(data)
	if err != nil {
		m.log.Error("cannot marshal event", "type", typ, "err", err)
		return
	}
	ev := events.Event{Type: events.Type(typ), OrganizationID: org, ApplicationID: app, Occurred: m.now(), Data: raw}
	if _, err := m.lc.events.Publish(context.WithoutCancel(ctx), ev); err != nil {
		m.log.Error("cannot publish event", "type", typ, "err", err)
	}
}

// changed publishes what a commit changed: state.updated on a new state,
// upload.* for every object recorded, composition.* for the composition.
func (m *Manager) changed(old, cur *Recording) {
	if !old.State.Final() && cur.State.Final() {
		m.recordingEnded(cur.State)
	}
	if !old.State.Final() && cur.State.Final() && cur.Composition == nil {
		// No composition (a recording without media): the chat and
		// cobrowse files, if it has entries, are uploaded on their own
		// once it is final.
		go m.uploadAttachments(cur.clone())
	}
	if m.lc.events == nil {
		return
	}
	ctx := context.Background()
	if old.State != cur.State {
		m.publish(ctx, cur, string(events.StateUpdated), recordingEventData(cur))
	}
	uploaded := func(o *ObjectFile) {
		d := recordingEventData(cur)
		d.Object = o
		typ := events.UploadCompleted
		if o.Error != nil {
			typ = events.UploadFailed
		}
		m.publish(ctx, cur, string(typ), d)
	}
	oldObj := map[string]bool{}
	for _, st := range old.Streams {
		for _, t := range st.Tracks {
			if t.Object != nil {
				oldObj[t.File] = true
			}
		}
	}
	for _, st := range cur.Streams {
		for _, t := range st.Tracks {
			if t.Object != nil && !oldObj[t.File] {
				uploaded(t.Object)
			}
		}
	}
	if cur.Composition == nil {
		return
	}
	oldOut := map[string]bool{}
	var oldState CompositionState
	if old.Composition != nil {
		oldState = old.Composition.State
		for _, o := range old.Composition.Outputs {
			oldOut[o.File] = o.Object != nil
		}
	}
	for _, o := range cur.Composition.Outputs {
		if o.Object != nil && !oldOut[o.File] {
			uploaded(o.Object)
		}
	}
	if old.Composition == nil && cur.Composition.Manifest != nil {
		uploaded(cur.Composition.Manifest)
	}
	if cur.Composition.State != oldState { // composition.pending, .processing, .completed, .failed
		d := recordingEventData(cur)
		d.Composition = cur.Composition
		m.publish(ctx, cur, "composition."+strings.ToLower(cur.Composition.State.String()), d)
	}
}

// blackoutEvent is the data of blackout.* events.
type blackoutEvent struct {
	UserID       string    `json:"userId"`
	ConferenceID string    `json:"conferenceId,omitempty"`
	Start        time.Time `json:"start"`
	Stop         time.Time `json:"stop"`
	Recordings   []string  `json:"recordings"`
}

// publishBlackout publishes a blackout event once per application whose
// recordings it silenced (once with no application when none).
func (m *Manager) publishBlackout(bo *blackout, typ string) {
	b := m.blackoutSnapshot(bo)
	m.lc.mu.Lock()
	quiet := bo.fromFleet && len(b.Recordings) == 0
	m.lc.mu.Unlock()
	if quiet {
		return // the instance that started it publishes it once for the fleet
	}
	data := blackoutEvent{UserID: b.UserID, ConferenceID: b.ConferenceID, Start: b.Start, Stop: b.Stop, Recordings: b.Recordings}
	apps := map[string]bool{}
	ctx := context.Background()
	for _, id := range b.Recordings {
		if s := m.session(id); s != nil {
			apps[s.Snapshot().ApplicationID] = true
		} else if sr, err := m.store.Get(ctx, b.OrganizationID, id); err == nil {
			apps[sr.ApplicationID] = true
		}
	}
	if len(apps) == 0 {
		apps[""] = true
	}
	for app := range apps {
		m.publishOrg(ctx, b.OrganizationID, app, typ, data)
	}
}
