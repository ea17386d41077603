// Package recorder runs recordings: the Manager owns every recording of this
// process, each a Session with its state machine (INITIALISED → ACTIVE →
// STOPPED, FAILED, ABORTED), its media graph and its finishing steps, and the
// store that keeps them across restarts.
package recorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/composition/composite"
	"github.com/rtcrec/recorder/media"
	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/recorder/store"
	"github.com/rtcrec/recorder/storage"
)

// BucketOpener opens the bucket of an application's storage profile. The
// Manager calls it once per application and keeps the bucket.
type BucketOpener func(ctx context.Context, applicationID string, p *StorageProfile) (*storage.Bucket, error)

// Options configure a Manager.
type Options struct {
	Config     *Config      // required; see DefaultConfig
	Store      *store.Store // required
	RecorderID string       // required: this process's stable id
	// Adapters by kind ("whip", "janus", "whep") or by AdapterKey(applicationID).
	// Listening adapters (whip) are given their sinks by NewManager.
	Adapters map[string]conference.Adapter
	// OpenBucket opens storage profiles; a profile-less application gets
	// {Provider: LOCAL, Dir: <dataDir>/storage}.
	OpenBucket BucketOpener
	// Logger receives the Manager's logs; slog.Default() when nil.
	Logger *slog.Logger
	Now    func() time.Time // for tests; time.Now by default
	// Events receives every state change, pause, resume, blackout, upload
	// and composition result (notify.go); nil: none are published.
	Events Publisher
	// Remote, in a fleet, runs commands on recordings another instance runs
	// (remote.go); nil: every recording is this instance's.
	Remote Remote
	// Hooks are told about storage operations and upload outcomes (metrics.go).
	Hooks Hooks
	// StreamLoad, when set, returns the streams connected to a listening
	// adapter (the WHIP endpoint's sessions): part of Load (capacity.go).
	StreamLoad func() int
}

// Manager owns the recordings of this process. It is safe for concurrent use.
type Manager struct {
	streamLoad func() int // Options.StreamLoad
	cfg        *Config
	store      *store.Store
	recorderID string
	adapters   map[string]conference.Adapter
	openBucket BucketOpener
	remote     Remote
	log        *slog.Logger
	now        func() time.Time
	wg         sync.WaitGroup // track readers and sessions

	mu       sync.Mutex
	active   map[string]*Session // by instanceId, until final
	rooms    map[roomKey]*room
	buckets  map[string]*storage.Bucket // by applicationId
	closing  bool
	bucketMu sync.Mutex
	lc       managerLifecycle // blackouts and events (blackout.go, notify.go)
	agents   agentTracker     // seed 003's agents (agents.go)
	up       uploads          // the persisted upload queue (uploads.go)
	// composites is the persisted composite video queue (composite.go).
	composites *composite.Queue
	fleetTaker func() // stops taking the fleet's composite jobs (composite.fleet: take)
	hooks      Hooks
	met        metricsState // media counters (metrics.go)
}

// NewManager creates a Manager, gives listening adapters their sinks and
// recovers recordings left unfinished by a previous run of this recorder.
func NewManager(ctx context.Context, o Options) (*Manager, error) {
	if o.Config == nil || o.Store == nil || o.RecorderID == "" {
		return nil, errors.New("recorder: Options need Config, Store and RecorderID")
	}
	m := &Manager{
		cfg: o.Config, store: o.Store, recorderID: o.RecorderID, adapters: o.Adapters, streamLoad: o.StreamLoad,
		openBucket: o.OpenBucket, remote: o.Remote, log: o.Logger, now: o.Now, hooks: o.Hooks,
		active: map[string]*Session{}, rooms: map[roomKey]*room{}, buckets: map[string]*storage.Bucket{},
	}
	m.lc.events = o.Events
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.now == nil {
		m.now = func() time.Time { return time.Now().UTC() }
	}
	if m.adapters == nil {
		m.adapters = map[string]conference.Adapter{}
	}
	m.loadAgents() // before any track: the track path never waits for the store (agents.go)
	for kind, a := range m.adapters {
		if l, ok := a.(conference.Listener); ok {
			l.Listen(func(org, conf string) conference.Sink { return m.room(roomKey{kind, org, conf}) })
		}
	}
	if err := m.startUploads(ctx); err != nil {
		return nil, err
	}
	if err := m.recover(ctx); err != nil {
		m.stopUploads()
		return nil, err
	}
	if err := m.startComposites(ctx); err != nil { // composite.go
		m.stopUploads()
		return nil, err
	}
	return m, nil
}

// AdapterKey is the key in Options.Adapters of an adapter that serves only
// applicationID (a Janus server or WHEP template of its own); the Manager
// prefers it to the adapter of the application's conference kind.
func AdapterKey(applicationID string) string { return "app:" + applicationID }

// RecorderID returns this recorder's id.
func (m *Manager) RecorderID() string { return m.recorderID }

// Config returns the configuration the Manager runs with.
func (m *Manager) Config() *Config { return m.cfg }

// room returns the room of key, creating it.
func (m *Manager) room(key roomKey) *room {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rooms[key]
	if r == nil {
		r = &room{m: m, key: key}
		m.rooms[key] = r
	}
	return r
}

// gcRoom drops r when it has neither tracks nor sessions.
func (m *Manager) gcRoom(r *room) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rooms[r.key] == r && r.idle() {
		delete(m.rooms, r.key)
	}
}

// StartRequest is what a caller asks for when starting a recording.
type StartRequest struct {
	ApplicationID  string
	ConferenceID   string
	ConversationID string
	Audio          bool
	Video          bool
	Duplicate      bool              // allow a second ACTIVE recording of the conversation
	Metadata       map[string]string // optional
	PauseBehavior  string            // optional: silence | skip
	Mix            *MixSettings      // optional
	MaxDuration    time.Duration     // optional; 0: the default
	Only           *TrackFilter      // optional: record these tracks only
	// Composite asks for composite.mp4 once the recording ended (composite.go);
	// nil: the application's default, if any.
	Composite *composite.Settings
}

// Application returns the configuration of applicationID (see Config.Application).
func (m *Manager) Application(applicationID string) *Application {
	return m.cfg.Application(applicationID)
}

// Profile returns the storage profile of applicationID (see Config.Profile).
func (m *Manager) Profile(applicationID string) *StorageProfile { return m.cfg.Profile(applicationID) }

// Bucket returns the (cached) bucket of applicationID's storage profile.
func (m *Manager) Bucket(ctx context.Context, applicationID string) (*storage.Bucket, error) {
	m.bucketMu.Lock()
	defer m.bucketMu.Unlock()
	if b := m.buckets[applicationID]; b != nil {
		return b, nil
	}
	if m.openBucket == nil {
		return nil, errorf(KindUnavailable, "storage_unavailable", "no storage driver configured")
	}
	b, err := m.openBucket(ctx, applicationID, m.Profile(applicationID))
	if err != nil {
		return nil, &Error{Kind: KindUnavailable, Reason: "storage_unavailable",
			Message: "cannot open the storage profile of application " + applicationID, Err: err}
	}
	if h := m.hooks.StorageOp; h != nil {
		provider := m.Profile(applicationID).Provider
		b.SetObserver(func(op string, d time.Duration, err error) { h(provider, op, d, err) })
	}
	m.buckets[applicationID] = b
	return b, nil
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
		Created: m.now(), Metadata: req.Metadata, PauseBehavior: media.PauseBehavior(m.cfg.Defaults.PauseBehavior),
		Mix: m.cfg.Defaults.Mix, MaxDuration: m.cfg.Defaults.MaxDuration, Streams: []*Stream{}, Only: req.Only,
	}
	if req.PauseBehavior != "" {
		b := media.PauseBehavior(req.PauseBehavior)
		if b != media.PauseSilence && b != media.PauseSkip {
			return nil, errorf(KindInvalid, "invalid_field", "pauseBehavior %q is not silence or skip", req.PauseBehavior)
		}
		rec.PauseBehavior = b
	}
	if req.Mix != nil && req.Mix.None {
		rec.Mix = MixSettings{None: true}
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
		if err := validMix(mix); err != nil {
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

	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		return nil, errorf(KindUnavailable, "shutting_down", "the recorder is shutting down")
	}
	if m.remote != nil && len(m.active) >= m.cfg.Cluster.Capacity {
		m.mu.Unlock()
		return nil, fullError("this recorder")
	}
	if c := m.cfg.Capacity.Streams; c > 0 && m.recordedStreams() >= c { // capacity.go: what runs keeps its quality
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
		m.forget(s)
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
		m.forget(s)
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
	if err := os.MkdirAll(filepath.Join(rec.Dir, "tracks"), 0o750); err != nil {
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
	go s.watchWrites(med) // a disk full stops the recording at once (durability.go)
	go s.streamParts()    // upload while recording, unless uploads.chunkInterval is off (chunks.go)
	// ACTIVE is persisted before any track can be added, so that no track is
	// ever stored with a recording that is not ACTIVE.
	if err := s.commit(ctx, func(r *Recording) { r.State = StateActive }); err != nil {
		return err
	}
	return s.room.attach(ctx, s)
}

// forget removes s from the active recordings.
func (m *Manager) forget(s *Session) {
	s.mu.Lock()
	id := s.rec.InstanceID // s.rec is replaced under s.mu by every commit
	s.mu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.active[id] == s {
		delete(m.active, id)
	}
}

// session returns the running session of instanceID, or nil.
func (m *Manager) session(instanceID string) *Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.active[instanceID]
}

// Get returns the recording (conversationID, recorderID, instanceID) of
// organizationID, or ErrNotFound; the three ids must all match.
func (m *Manager) Get(ctx context.Context, organizationID, conversationID, recorderID, instanceID string) (*Recording, error) {
	for _, f := range []struct{ name, v string }{
		{"conversationId", conversationID}, {"recorderId", recorderID}, {"instanceId", instanceID},
	} {
		if err := ValidateID(f.name, f.v); err != nil {
			return nil, err
		}
	}
	var r *Recording
	if s := m.session(instanceID); s != nil {
		r = s.Snapshot()
	} else {
		sr, err := m.store.Get(ctx, organizationID, instanceID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, err
		}
		if r, err = decode(sr); err != nil {
			return nil, err
		}
	}
	if r.OrganizationID != organizationID || r.ConversationID != conversationID || r.RecorderID != recorderID {
		return nil, ErrNotFound
	}
	return r, nil
}

// Lookup returns a recording by its ids for any organization: for signed
// attachment URLs, whose signature already proves the right to read.
func (m *Manager) Lookup(ctx context.Context, conversationID, recorderID, instanceID string) (*Recording, error) {
	for _, id := range []string{conversationID, recorderID, instanceID} {
		if err := ValidateID("id", id); err != nil {
			return nil, err
		}
	}
	sr, err := m.store.Lookup(ctx, instanceID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return m.Get(ctx, sr.OrganizationID, conversationID, recorderID, instanceID)
}

// Stop stops a recording and returns it in its final state, once its files are
// written and uploaded. Stopping a stopped recording returns it as it is.
// If ctx ends first, Stop returns the recording as it is then; the recording
// still finishes.
func (m *Manager) Stop(ctx context.Context, organizationID, conversationID, recorderID, instanceID string) (*Recording, error) {
	if r, ok, err := m.forward(ctx, &Command{Op: OpStop, OrganizationID: organizationID, ConversationID: conversationID,
		RecorderID: recorderID, InstanceID: instanceID}); ok {
		return r, err
	}
	r, err := m.Get(ctx, organizationID, conversationID, recorderID, instanceID)
	if err != nil {
		return nil, err
	}
	s := m.session(instanceID)
	if s == nil {
		return r, nil // final already (or pending recovery, which finishes by itself)
	}
	s.requestStop(stopReason{})
	select {
	case <-s.done:
	case <-ctx.Done():
	}
	return s.Snapshot(), nil
}

// Conversation returns the recordings of a conversation, oldest first; none is
// ErrNotFound.
func (m *Manager) Conversation(ctx context.Context, organizationID, conversationID string) ([]*Recording, error) {
	if err := ValidateID("conversationId", conversationID); err != nil {
		return nil, err
	}
	srs, err := m.store.Conversation(ctx, organizationID, conversationID)
	if err != nil {
		return nil, err
	}
	if len(srs) == 0 {
		return nil, ErrNotFound
	}
	out := make([]*Recording, 0, len(srs))
	for _, sr := range srs {
		if s := m.session(sr.InstanceID); s != nil {
			out = append(out, s.Snapshot())
			continue
		}
		r, err := decode(sr)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Active returns the newest ACTIVE recording of a conversation, or ErrNotFound.
func (m *Manager) Active(ctx context.Context, organizationID, conversationID string) (*Recording, error) {
	rs, err := m.Conversation(ctx, organizationID, conversationID)
	if err != nil {
		return nil, err
	}
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i].State == StateActive {
			return rs[i], nil
		}
	}
	return nil, errorf(KindNotFound, "no_active_recording", "conversation %s has no active recording", conversationID)
}

// ActiveCount returns the number of recordings running now.
func (m *Manager) ActiveCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.active)
}

// Shutdown stops every running recording, waiting (until ctx ends) for their
// files to be written and uploaded, then closes the buckets. New starts are
// refused from the moment it is called.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closing = true
	m.mu.Unlock()
	m.waitPolicy(ctx) // drain.go
	m.mu.Lock()
	var sessions []*Session
	for _, s := range m.active {
		sessions = append(sessions, s)
	}
	m.mu.Unlock()
	for _, s := range sessions {
		s.requestStop(stopReason{shutdown: true})
	}
	for _, s := range sessions {
		select {
		case <-s.done:
		case <-ctx.Done():
			n := m.ActiveCount()
			m.stopUploads()
			return fmt.Errorf("recorder: shutdown: %d recordings still finishing: %w", n, ctx.Err())
		}
	}
	m.closeComposites(ctx) // composite.go: cut compositions run again at the next start
	if err := m.closeUploads(ctx); err != nil {
		m.log.Warn("uploads left for the next start", "err", err)
	}
	m.bucketMu.Lock()
	for id, b := range m.buckets {
		b.Close()
		delete(m.buckets, id)
	}
	m.bucketMu.Unlock()
	return nil
}

// Verify runs the storage checks (bucket, write, read, modify, delete) on the
// storage profile of applicationID, under its prefix.
func (m *Manager) Verify(ctx context.Context, applicationID string) (*storage.VerifyResult, error) {
	if err := ValidateID("applicationId", applicationID); err != nil {
		return nil, err
	}
	p := m.Profile(applicationID)
	b, err := m.Bucket(ctx, applicationID)
	if err != nil {
		return nil, err
	}
	res := storage.Verify(ctx, b, strings.Trim(p.Prefix, "/"), &storage.VerifyOptions{Secrets: p.Secrets()})
	if res.OK() {
		if err := m.RetryUploads(ctx, applicationID); err != nil { // uploads.go
			m.log.Warn("cannot retry uploads after verify", "applicationId", applicationID, "err", err)
		}
	}
	return &res, nil
}
