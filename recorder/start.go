package recorder

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/composition/composite"
	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/media/pause"
)

// StartRequest is what a caller asks for when starting a recording.
type StartRequest struct {
	ApplicationID  string
	ConferenceID   string
	ConversationID string
	Audio          bool
	Video          bool
	Duplicate      bool                // allow a second ACTIVE recording of the conversation
	Metadata       map[string]string   // optional
	PauseBehavior  string              // optional: silence | skip
	Mix            *config.MixSettings // optional
	MaxDuration    time.Duration       // optional; 0: the default
	Only           *TrackFilter        // optional: record these tracks only
	// Composite asks for composite.mp4 once the recording ended;
	// nil: the application's default, if any.
	Composite *composite.Settings
}

// Start starts a recording of req.ConferenceID for organizationID and returns
// it once ACTIVE (or FAILED). It is a conflict to start a second recording of
// a conversation that has an ACTIVE one of the same application, unless
// req.Duplicate is set.
func (m *Manager) Start(ctx context.Context, organizationID string, req StartRequest) (*Recording, error) {
	for _, f := range []struct{ name, v string }{
		{"applicationId", req.ApplicationID}, {"conferenceId", req.ConferenceID}, {"conversationId", req.ConversationID},
	} {
		if err := ValidateID(f.name, f.v); err != nil {
			return nil, err
		}
	}
	rec := &Recording{
		InstanceID: uuid.NewString(), OrganizationID: organizationID, ApplicationID: req.ApplicationID,
		ConversationID: req.ConversationID, ConferenceID: req.ConferenceID, RecorderID: m.recorderID,
		Audio: req.Audio, Video: req.Video, Duplicate: req.Duplicate, State: StateInitialised,
		Created: m.now(), Metadata: req.Metadata, PauseBehavior: pause.Behavior(m.cfg.Defaults.PauseBehavior),
		Mix: m.cfg.Defaults.Mix, MaxDuration: m.cfg.Defaults.MaxDuration, Streams: []*Stream{}, Only: req.Only,
	}
	if req.PauseBehavior != "" {
		b := pause.Behavior(req.PauseBehavior)
		if b != pause.Silence && b != pause.Skip {
			return nil, errorf(KindInvalid, "invalid_field", "pauseBehavior %q is not silence or skip", req.PauseBehavior)
		}
		rec.PauseBehavior = b
	}
	if req.Mix != nil && req.Mix.None {
		rec.Mix = config.MixSettings{None: true}
	} else if req.Mix != nil {
		mix := *req.Mix // what the request leaves out comes from the defaults
		if mix.SampleRate == 0 {
			mix.SampleRate = m.cfg.Defaults.Mix.SampleRate
		}
		if mix.Channels == 0 {
			mix.Channels = m.cfg.Defaults.Mix.Channels
		}
		if mix.Latency == 0 {
			mix.Latency = m.cfg.Defaults.Mix.Latency
		}
		if err := mix.Validate(); err != nil {
			return nil, errorf(KindInvalid, "invalid_field", "mix: %v", err)
		}
		rec.Mix = mix
	}
	if req.MaxDuration < 0 {
		return nil, errorf(KindInvalid, "invalid_field", "maxDuration is negative")
	}
	if req.MaxDuration > m.cfg.Limits.MaxDuration {
		return nil, errorf(KindInvalid, "invalid_field", "maxDuration %s is more than this recorder's limit of %s", req.MaxDuration, m.cfg.Limits.MaxDuration)
	}
	if req.MaxDuration > 0 {
		rec.MaxDuration = req.MaxDuration
	}
	if owner := m.cfg.Owner(req.ApplicationID); owner != "" && owner != organizationID {
		return nil, errorf(KindNotFound, "unknown_application", "application %s is not known to this organization", quoteID(req.ApplicationID))
	}
	if err := validMetadata(req.Metadata); err != nil {
		return nil, err
	}
	cs, err := m.compositeSettings(req.ApplicationID, req.Composite) // composite.go
	if err != nil {
		return nil, err
	}
	rec.Composite = cs
	app := m.Application(req.ApplicationID)
	adapterKey := AdapterKey(req.ApplicationID)
	adapter := m.adapters[adapterKey]
	if adapter == nil {
		adapterKey = app.Conference.Kind
		adapter = m.adapters[adapterKey]
	}
	if adapter == nil {
		return nil, errorf(KindUnavailable, "adapter_unavailable", "conference adapter %q is not available", app.Conference.Kind)
	}
	if app.Conference.Kind != "whip" {
		// A dial-out conference may be recorded by any instance of a fleet.
		if placed, ok, err := m.place(ctx, organizationID, req); ok {
			return placed, err
		}
	} else if placed, ok, err := m.pinned(ctx, organizationID, req); ok {
		// A WHIP conference is recorded where its publishers are.
		return placed, err
	}
	bucket, err := m.Bucket(ctx, req.ApplicationID)
	if err != nil {
		return nil, err
	}
	prof := m.Profile(req.ApplicationID)
	rec.Storage = StorageInfo{ApplicationID: req.ApplicationID, Provider: prof.Provider, Location: bucket.Location(),
		Prefix: composition.Prefix(prof.Prefix, organizationID, rec.ConversationID, rec.RecorderID, rec.InstanceID)}
	rec.Dir = filepath.Join(m.cfg.DataDir, "recordings", organizationID, rec.ConversationID, rec.RecorderID, rec.InstanceID)

	s := &Session{m: m, rec: rec, stopCh: make(chan stopReason, 1), done: make(chan struct{}), recut: make(chan recutRequest),
		log: m.log.With("instanceId", rec.InstanceID, "conversationId", rec.ConversationID, "conferenceId", rec.ConferenceID)}
	if c, ok := ctx.Value(continuesKey{}).(*continuation); ok { // takeover.go
		s.cont = c
		of := c.of
		rec.Continues = &of
	}

	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		return nil, errorf(KindUnavailable, "shutting_down", "the recorder is shutting down")
	}
	if c := m.cfg.Capacity.Streams; c > 0 && m.recordingLoad() >= c { // capacity.go: what runs keeps its quality
		m.mu.Unlock()
		return nil, fullStreams()
	}
	quota, held := m.cfg.Quotas.For(organizationID).Recordings, 0
	for _, o := range m.active {
		o.mu.Lock()
		if o.rec.OrganizationID == organizationID {
			held++
		}
		o.mu.Unlock()
	}
	if held >= quota {
		m.mu.Unlock()
		return nil, QuotaError("recordings", quota)
	}
	if !req.Duplicate {
		for _, o := range m.active {
			o.mu.Lock()
			same := o.rec.OrganizationID == organizationID && o.rec.ApplicationID == req.ApplicationID &&
				o.rec.ConversationID == req.ConversationID && !o.stopping
			otherID := o.rec.InstanceID // o.rec is replaced under o.mu by every commit
			o.mu.Unlock()
			if same {
				m.mu.Unlock()
				return nil, errorf(KindConflict, "already_active",
					"conversation %s already has an active recording (%s); set duplicate to start another", req.ConversationID, otherID)
			}
		}
	}
	m.active[rec.InstanceID] = s
	m.mu.Unlock()

	if err := m.insert(ctx, rec, quota); err != nil {
		m.forget(rec.InstanceID, s)
		return nil, err
	}
	s.room = m.room(roomKey{adapterKey, organizationID, req.ConferenceID})
	if err := s.begin(ctx); err != nil {
		s.log.Error("recording failed to start", "err", err)
		now := m.now()
		cerr := s.commit(context.WithoutCancel(ctx), func(r *Recording) {
			r.State, r.Stopped = StateFailed, now
			// The cause may name internal hosts and quote their replies (a
			// WHEP endpoint's URL and body): it goes to the log above, under
			// the instanceId the caller has.
			r.Error = &ErrorInfo{Code: CodeStartFailed, Occurred: now,
				Message: "the recorder could not join the conference; its log has the cause under instanceId " + r.InstanceID}
		})
		s.room.detach(s)
		if s.media != nil {
			s.media.close()
		}
		m.forget(rec.InstanceID, s)
		close(s.done)
		if cerr != nil {
			return nil, cerr
		}
		return s.Snapshot(), nil
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		s.run(rec.MaxDuration)
	}()
	snap := s.Snapshot()
	s.log.Info("recording started", "state", snap.State, "applicationId", snap.ApplicationID)
	if m.remote != nil {
		m.remote.LoadChanged(ctx)
	}
	return snap, nil
}

// begin builds the media graph, joins the conference and makes the recording ACTIVE.
func (s *Session) begin(ctx context.Context) error {
	rec := s.Snapshot()
	if err := os.MkdirAll(filepath.Join(rec.Dir, composition.TracksDir), 0o750); err != nil {
		return err
	}
	started := s.m.now()
	med, err := newSessionMedia(rec, started, filepath.Join(rec.Dir, "mix.wav"), s.log)
	if err != nil {
		return err
	}
	s.m.mixStarted(med)
	s.mu.Lock()
	s.media = med
	s.rec.Started = started // track offsets count from here; persisted with ACTIVE below
	s.mu.Unlock()
	go s.watchWrites(med) // a disk full stops the recording at once
	go s.streamParts()    // upload while recording, unless uploads.chunkInterval is off
	// ACTIVE is persisted before any track can be added, so that no track is
	// ever stored with a recording that is not ACTIVE.
	if err := s.commit(ctx, func(r *Recording) { r.State = StateActive }); err != nil {
		return err
	}
	if s.cont != nil && s.cont.paused {
		// The continuation of a paused recording: paused before any track
		// is added, so nothing of the pause is recorded.
		if _, err := s.m.setPaused(ctx, rec.OrganizationID, rec.ConversationID, rec.RecorderID, rec.InstanceID, true); err != nil {
			return err
		}
	}
	return s.room.attach(ctx, s)
}

// safeName makes an adapter-given id usable in a file name: ids that pass
// ValidateID are kept, anything else is replaced by a readable, safe form.
func safeName(id string) string {
	if ValidateID("id", id) == nil {
		return id
	}
	var b strings.Builder
	for i := 0; i < len(id) && b.Len() < 64; i++ {
		c := id[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 || !isAlnum(b.String()[0]) {
		return "t" + b.String()
	}
	return b.String()
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
