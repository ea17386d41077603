package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/rtcrec/recorder/composition/composite"
	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/recorder/store"
	"github.com/rtcrec/recorder/storage"
)

// BucketOpener opens the bucket of an application's storage profile. The
// Manager calls it once per application and keeps the bucket.
type BucketOpener func(ctx context.Context, applicationID string, p *config.StorageProfile) (*storage.Bucket, error)

// Options configure a Manager.
type Options struct {
	Config     *config.Config // required; see DefaultConfig
	Store      *store.Store   // required
	RecorderID string         // required: this process's stable id
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
	// and composition result; nil: none are published.
	Events Publisher
	// Remote, in a fleet, runs commands on recordings another instance runs
	//; nil: every recording is this instance's.
	Remote Remote
	// Hooks are told about storage operations and upload outcomes.
	Hooks Hooks
	// StreamLoad, when set, returns the streams connected to a listening
	// adapter (the WHIP endpoint's sessions): part of Load.
	StreamLoad func() int
	// FleetPoll, on a composition instance (composite.fleet: take), is how
	// often it looks for the fleet's jobs without a notification; 10 s
	// when 0 (tests lengthen it to show the notifications work).
	FleetPoll time.Duration
}

// Manager owns the recordings of this process. It is safe for concurrent use.
type Manager struct {
	streamLoad func() int // Options.StreamLoad
	cfg        *config.Config
	store      *store.Store
	recorderID string
	adapters   map[string]conference.Adapter
	openBucket BucketOpener
	remote     Remote
	log        *slog.Logger
	now        func() time.Time
	wg         sync.WaitGroup // track readers and sessions
	discards   sync.WaitGroup // discards of recordings without media (chunks.go), waited for by Shutdown

	mu       sync.Mutex
	active   map[string]*Session // by instanceId, until final
	rooms    map[roomKey]*room
	buckets  map[string]*storage.Bucket // by applicationId
	closing  bool
	bucketMu sync.Mutex
	lc       managerState // blackouts and events
	agents   agentTracker // seed 003's agents
	up       uploads      // the persisted upload queue
	// transcriptLocks make the uploads of a recording's chat and cobrowse
	// files take turns (transcript.go), by instanceId.
	transcriptLocks keyedLocks
	// dirLocks guard the local directory of a final recording, by
	// instanceId: it is removed (or emptied) only under its lock, and a file
	// written into it after the end (a late chat or cobrowse file) is
	// written and queued under the lock, so that no removal takes a file
	// whose upload is not queued yet (uploads.go, removeLocalCopies).
	dirLocks keyedLocks
	// testPoints are called at points where tests force an interleaving
	// (nil outside tests).
	testPoints testPoints
	// composites is the persisted composite video queue.
	composites *composite.Queue
	fleetTaker func()        // stops taking the fleet's composite jobs (composite.fleet: take)
	fleetPoll  time.Duration // Options.FleetPoll
	hooks      Hooks
	met        metricsState // media counters
}

// NewManager creates a Manager, gives listening adapters their sinks and
// recovers recordings left unfinished by a previous run of this recorder.
func NewManager(ctx context.Context, o Options) (*Manager, error) {
	if o.Config == nil || o.Store == nil || o.RecorderID == "" {
		return nil, errors.New("recorder: Options need Config, Store and RecorderID")
	}
	m := &Manager{
		cfg: o.Config, store: o.Store, recorderID: o.RecorderID, adapters: o.Adapters, streamLoad: o.StreamLoad, fleetPoll: o.FleetPoll,
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
	m.loadAgents() // before any track: the track path never waits for the store
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
func (m *Manager) Config() *config.Config { return m.cfg }

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

// Application returns the configuration of applicationID (see Config.Application).
func (m *Manager) Application(applicationID string) *config.Application {
	return m.cfg.Application(applicationID)
}

// Profile returns the storage profile of applicationID (see Config.Profile).
func (m *Manager) Profile(applicationID string) *config.StorageProfile {
	return m.cfg.Profile(applicationID)
}

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
	// The discards the stops started (chunks.go) stop waiting for uploads
	// once the queue is closed; they remove local files and parts, and must
	// be done before the buckets close and before the caller removes the
	// data directory.
	discarded := make(chan struct{})
	go func() { m.discards.Wait(); close(discarded) }()
	select {
	case <-discarded:
	case <-ctx.Done():
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

// put persists r.
func (m *Manager) put(ctx context.Context, r *Recording) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("recorder: marshal %s: %w", r.InstanceID, err)
	}
	return m.store.Put(ctx, &store.Record{
		InstanceID: r.InstanceID, OrganizationID: r.OrganizationID, ApplicationID: r.ApplicationID,
		ConversationID: r.ConversationID, ConferenceID: r.ConferenceID, RecorderID: r.RecorderID,
		State: string(r.State), Started: r.Created, Data: data, Owner: r.Owner, Epoch: r.Epoch,
	})
}

// insert stores a new recording. In a fleet it counts against the
// organization's quota of recordings across every instance, atomically with
// the insert (the check in Start counts this instance's only).
func (m *Manager) insert(ctx context.Context, r *Recording, quota int) error {
	if m.remote == nil {
		return m.put(ctx, r)
	}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("recorder: marshal %s: %w", r.InstanceID, err)
	}
	err = m.store.Insert(ctx, &store.Record{
		InstanceID: r.InstanceID, OrganizationID: r.OrganizationID, ApplicationID: r.ApplicationID,
		ConversationID: r.ConversationID, ConferenceID: r.ConferenceID, RecorderID: r.RecorderID,
		State: string(r.State), Started: r.Created, Data: data, Owner: r.Owner, Epoch: r.Epoch,
	}, quota)
	if errors.Is(err, store.ErrQuota) {
		return QuotaError("recordings", quota)
	}
	return err
}

// testPoints are the places where a test can hold a goroutine to force an
// interleaving. Every field may be nil.
type testPoints struct {
	// lateWritten: uploadLate wrote the new content of rel beside its file.
	lateWritten func(rec *Recording, rel string)
	// discarding: discard is about to remove the local files of a recording
	// without media.
	discarding func(instanceID string)
	// finalCommitted: a stop persisted the recording's final state.
	finalCommitted func(instanceID string)
}
