package recorder

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/composition/composite"
	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/recorder/store"
)

// The composite video (composition/composite): composite.mp4, one video of
// the whole conference, asked for at start (StartRequest.Composite), by the
// application's default (applications.<id>.composite) or afterwards
// (RequestComposite). Once the recording's files are uploaded its
// composition goes PENDING; a job of the persisted composite queue makes it
// PROCESSING, runs ffmpeg at low priority from the recording's files (hard
// links kept in {dataDir}/compositions/{instanceId}, or downloaded from
// storage when they are gone), uploads composite.mp4 through the upload
// queue (verified like every object) and ends COMPLETED, or FAILED with the
// reason. Every change of composition.state is an event (composition.pending,
// .processing, .completed, .failed).

// fleetLease is how long a composition instance holds a fleet job it took
// before another may take it (the first is presumed gone); a job cut by a
// restart runs again from the instance's own persisted queue.
const fleetLease = time.Hour

// compositeOptions are the composite package's options for the configured
// composite settings c.
func compositeOptions(c *config.CompositeConfig, m *Manager) composite.Options {
	nice := c.Nice
	if nice == 0 {
		nice = 10
	}
	if nice < 0 {
		nice = 0
	}
	return composite.Options{FFmpeg: c.FFmpeg, FFprobe: c.FFprobe, FontFile: c.FontFile, Nice: nice,
		Threads: c.Threads, Preset: c.Preset, Logger: m.log}
}

// compositeSettings validates a requested composite (nil: none) against the
// application's default.
func (m *Manager) compositeSettings(applicationID string, req *composite.Settings) (*composite.Settings, error) {
	if req == nil {
		if app := m.cfg.Applications[applicationID]; app != nil && app.Composite != nil {
			req = app.Composite
		} else {
			return nil, nil
		}
	}
	s := req.WithDefaults()
	if err := s.Validate(); err != nil {
		return nil, errorf(KindInvalid, "invalid_field", "composite: %v", strings.TrimPrefix(err.Error(), "composite: "))
	}
	if s.UserID != "" {
		if err := ValidateID("composite.userId", s.UserID); err != nil {
			return nil, err
		}
	}
	return &s, nil
}

// startComposites opens the persisted composite queue; its workers resume
// what an earlier process left.
func (m *Manager) startComposites(ctx context.Context) error {
	c := m.cfg.Composite
	run := m.runComposite
	wake := make(chan struct{}, 1) // composite.fleet take: look for the fleet's jobs now
	if c.Fleet == config.CompositeFleetTake {
		run = func(ctx context.Context, id string) error {
			err := m.runComposite(ctx, id)
			if ctx.Err() == nil { // done or failed for good: not cut by a shutdown
				if ferr := m.store.FinishComposite(context.WithoutCancel(ctx), id); ferr != nil {
					m.log.Warn("fleet composite job not removed", "instanceId", id, "err", ferr)
				}
				signal(wake) // a worker is free
			}
			return err
		}
	}
	q, err := composite.NewQueue(ctx, m.store.DB(), composite.QueueOptions{
		Workers: c.Workers, Capacity: c.Queue, Run: run, Logger: m.log})
	if err != nil {
		return err
	}
	m.composites = q
	if c.Fleet == config.CompositeFleetTake {
		tctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		m.fleetTaker = func() { cancel(); <-done }
		go func() {
			defer close(done)
			m.takeFleetComposites(tctx, wake)
		}()
	}
	return nil
}

// signal wakes whoever waits on ch (a channel of one), without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// fleetPoll is how often a composition instance looks for the fleet's
// composite jobs without being told: a notification lost while its
// listening connection was down is found this late at most.
const fleetPoll = 10 * time.Second

// takeFleetComposites is the loop of a composition instance: while its own
// queue has a free worker it claims the fleet's oldest composite job and
// queues it (persisted: a restart runs it again). It looks when a job is
// enqueued anywhere in the fleet (PostgreSQL NOTIFY on
// store.CompositeChannel), when one of its workers is free (wake), once
// its listening starts, and every fleetPoll (Options.FleetPoll in tests).
func (m *Manager) takeFleetComposites(ctx context.Context, wake chan struct{}) {
	go func() {
		for ctx.Err() == nil {
			err := m.store.Listen(ctx, store.CompositeChannel, func() { signal(wake) }, func(string) { signal(wake) })
			if errors.Is(err, store.ErrNoNotify) {
				return
			}
			if ctx.Err() == nil {
				m.log.Warn("fleet composite jobs: listening again", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	workers := max(1, m.cfg.Composite.Workers)
	tick := time.NewTicker(cmp.Or(m.fleetPoll, fleetPoll))
	defer tick.Stop()
	for {
		for {
			pending, err := m.composites.Pending(ctx)
			if err != nil || len(pending) >= workers {
				break
			}
			id, err := m.store.ClaimComposite(ctx, m.recorderID, m.now(), fleetLease)
			if err != nil {
				if ctx.Err() == nil {
					m.log.Warn("cannot claim a fleet composite job", "err", err)
				}
				break
			}
			if id == "" {
				break
			}
			m.log.Info("fleet composite job taken", "instanceId", id)
			if err := m.composites.Enqueue(ctx, id); err != nil {
				m.log.Error("fleet composite job not queued", "instanceId", id, "err", err)
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-tick.C:
		}
	}
}

// closeComposites stops the queue: compositions in progress are cut and run
// again at the next start.
func (m *Manager) closeComposites(ctx context.Context) {
	if m.fleetTaker != nil {
		m.fleetTaker() // takes no more fleet jobs
	}
	if m.composites == nil {
		return
	}
	if err := m.composites.Close(ctx); err != nil {
		m.log.Warn("compositions left for the next start", "err", err)
	}
}

// compositeDir is where a composite is built: hard links to the recording's
// files (or downloads of them) and the output.
func (m *Manager) compositeDir(instanceID string) string {
	return filepath.Join(m.cfg.DataDir, "compositions", instanceID)
}

// keepForComposite links the files a composite needs into its directory
// before the recording's own directory is removed. A file that
// cannot be linked is downloaded later.
func (m *Manager) keepForComposite(rec *Recording) {
	dir := m.compositeDir(rec.InstanceID)
	if err := os.MkdirAll(filepath.Join(dir, composition.TracksDir), 0o750); err != nil {
		m.log.Warn("cannot keep files for the composite", "err", err)
		return
	}
	for _, rel := range compositeInputs(rec) {
		dst := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.Link(filepath.Join(rec.Dir, filepath.FromSlash(rel)), dst); err != nil && !errors.Is(err, os.ErrExist) {
			m.log.Debug("composite input not linked", "file", rel, "err", err)
		}
	}
}

// compositeInputs lists the files of rec a composite reads.
func compositeInputs(rec *Recording) []string {
	files := []string{composition.ManifestFile, composition.MixFile}
	for _, st := range rec.Streams {
		for _, tr := range st.Tracks {
			files = append(files, tr.File)
		}
	}
	return files
}

// enqueueComposite queues the composite of rec (its composition is PENDING).
// finishing is nil for an ended recording; for one still finishing here it
// is closed once its final state is stored.
func (m *Manager) enqueueComposite(ctx context.Context, rec *Recording, finishing <-chan struct{}) error {
	if m.cfg.Composite.Fleet == config.CompositeFleetSend { // made by the fleet's composition instances
		if finishing == nil {
			return m.store.EnqueueComposite(ctx, rec.InstanceID, m.now())
		}
		// Finishing: the job is handed over once the final state is stored,
		// so that the composition instance's changes come after it.
		go func() {
			<-finishing
			if err := m.store.EnqueueComposite(context.WithoutCancel(ctx), rec.InstanceID, m.now()); err != nil {
				m.log.Error("composite not handed to the fleet", "instanceId", rec.InstanceID, "err", err)
			}
		}()
		return nil
	}
	if m.composites == nil {
		return errorf(KindUnavailable, "composition_unavailable", "the composition queue is not running")
	}
	err := m.composites.Enqueue(ctx, rec.InstanceID)
	if errors.Is(err, composite.ErrQueueFull) {
		return errorf(KindUnavailable, "composition_queue_full", "the composition queue is full: try again later")
	}
	return err
}

// RequestComposite asks for the composite video of an ended recording, with
// settings s (nil: the recording's own request, the application's default or
// a 1280×720 15 fps grid). A recording that has not ended, or whose
// composite is already pending or processing, is a conflict.
func (m *Manager) RequestComposite(ctx context.Context, org, conv, rid, iid string, s *composite.Settings) (*Recording, error) {
	rec, err := m.Get(ctx, org, conv, rid, iid)
	if err != nil {
		return nil, err
	}
	if s == nil {
		s = rec.Composite
	}
	settings, err := m.compositeSettings(rec.ApplicationID, s)
	if err != nil {
		return nil, err
	}
	if !rec.State.Final() {
		return nil, errorf(KindConflict, "not_ended", "recording %s has not ended: its composite can be made once it has", iid)
	}
	if settings == nil {
		d := composite.Settings{}.WithDefaults()
		settings = &d
	}
	var enqueued bool
	r, err := m.modifyComposition(ctx, org, conv, rid, iid, func(r *Recording) error {
		if !r.State.Final() || m.session(r.InstanceID) != nil {
			return errorf(KindConflict, "not_ended", "recording %s has not ended: its composite can be made once it has", r.InstanceID)
		}
		if r.Composition == nil || r.Composition.Manifest == nil {
			return errorf(KindConflict, "no_files", "recording %s has no uploaded files to compose", r.InstanceID)
		}
		if st := r.Composition.State; st == CompositionPending || st == CompositionProcessing {
			return errorf(KindConflict, "composition_in_progress", "the composite of recording %s is %s already", r.InstanceID, strings.ToLower(st.String()))
		}
		r.Composite = settings
		r.Composition.State, r.Composition.Error = CompositionPending, nil
		if err := m.enqueueComposite(ctx, r, nil); err != nil {
			return err
		}
		enqueued = true
		return nil
	})
	if err != nil && enqueued {
		m.log.Error("composite queued but not recorded", "instanceId", iid, "err", err)
	}
	if err != nil {
		return nil, err
	}
	return m.filled(ctx, r)
}

// modifyComposition applies fn to an ended (or finishing: waited for)
// recording, serialised with the upload queue's late results
// that update the same record.
func (m *Manager) modifyComposition(ctx context.Context, org, conv, rid, iid string, fn func(r *Recording) error) (*Recording, error) {
	if s := m.session(iid); s != nil { // finishing: its files are being uploaded
		select {
		case <-s.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	m.up.lateMu.Lock()
	defer m.up.lateMu.Unlock()
	return m.modify(ctx, org, conv, rid, iid, fn)
}

// runComposite is one job of the composite queue: the composite of the
// recording instanceID, built, uploaded and recorded.
func (m *Manager) runComposite(ctx context.Context, instanceID string) error {
	sr, err := m.store.Lookup(ctx, instanceID)
	if err != nil {
		return fmt.Errorf("recorder: composite of %s: %w", instanceID, err)
	}
	rec, err := decode(sr)
	if err != nil {
		return err
	}
	org, conv, rid := rec.OrganizationID, rec.ConversationID, rec.RecorderID
	rec, err = m.modifyComposition(ctx, org, conv, rid, instanceID, func(r *Recording) error {
		if r.Composition == nil || r.Composite == nil {
			return errorf(KindConflict, "no_composite", "no composite asked for")
		}
		r.Composition.State, r.Composition.Error = CompositionProcessing, nil
		return nil
	})
	if err != nil {
		return err
	}
	fail := func(code ErrorCode, cause error) error {
		if ctx.Err() != nil {
			return ctx.Err() // shutting down: the job runs again at the next start
		}
		now := m.now()
		_, err := m.modifyComposition(context.WithoutCancel(ctx), org, conv, rid, instanceID, func(r *Recording) error {
			r.Composition.State = CompositionFailed
			r.Composition.Error = failureInfo(m.log.With("instanceId", instanceID), code, cause, now)
			return nil
		})
		return errors.Join(cause, err)
	}
	dir := m.compositeDir(instanceID)
	if err := m.fetchCompositeInputs(ctx, rec, dir); err != nil {
		return fail(CodeCompositeInputs, err)
	}
	s := *rec.Composite
	res, err := composite.ComposePath(ctx, dir, filepath.Join(dir, composite.File), s, compositeOptions(&m.cfg.Composite, m))
	if err != nil {
		return fail(CodeCompositeFailed, err)
	}
	local := rec.clone()
	local.Dir = dir
	obj, uerr := m.uploadOutput(ctx, local, composite.File, objectMetadata(rec))
	if uerr != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	out := Output{Type: "VIDEO", Format: "mp4", Duration: res.Duration, File: composite.File, Object: obj,
		Layout: res.Layout, Width: res.Width, Height: res.Height, FPS: res.FPS}
	if res.Audio && rec.Composition.Outputs != nil {
		for _, o := range rec.Composition.Outputs {
			if o.Type == "AUDIO" {
				out.SampleRate, out.Channels = 48000, o.Channels
			}
		}
	}
	if uerr == nil {
		os.RemoveAll(dir) // uploaded and verified: the local copy goes, as every output's does
	}
	now := m.now()
	_, err = m.modifyComposition(context.WithoutCancel(ctx), org, conv, rid, instanceID, func(r *Recording) error {
		outs := r.Composition.Outputs[:0:0]
		for _, o := range r.Composition.Outputs {
			if o.File != composite.File {
				outs = append(outs, o)
			}
		}
		r.Composition.Outputs = append(outs, out)
		r.Composition.State, r.Composition.Error = CompositionCompleted, nil
		if uerr != nil {
			r.Composition.State = CompositionFailed
			r.Composition.Error = failureInfo(m.log.With("instanceId", rec.InstanceID), CodeUploadFailed, uerr, now)
		}
		return nil
	})
	return errors.Join(uerr, err)
}

// fetchCompositeInputs makes sure dir holds the files the composite reads:
// linked at the end of the recording, or downloaded from its storage.
func (m *Manager) fetchCompositeInputs(ctx context.Context, rec *Recording, dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, composition.TracksDir), 0o750); err != nil {
		return err
	}
	objects := map[string]*ObjectFile{}
	rec.objects(func(rel string, o **ObjectFile) {
		if *o != nil {
			objects[rel] = *o
		}
	})
	for _, rel := range compositeInputs(rec) {
		path := filepath.Join(dir, filepath.FromSlash(rel))
		if _, err := os.Stat(path); err == nil {
			continue
		}
		if err := os.Link(filepath.Join(rec.Dir, filepath.FromSlash(rel)), path); err == nil {
			continue
		}
		o := objects[rel]
		if o == nil || o.Error != nil {
			if rel == composition.ManifestFile {
				return fmt.Errorf("recorder: composite: %s was not uploaded", rel)
			}
			continue // a track that was never stored: the composite does without
		}
		if err := m.download(ctx, rec.ApplicationID, o.Key, path); err != nil {
			return err
		}
	}
	return nil
}

// download copies an object of applicationID's storage to path.
func (m *Manager) download(ctx context.Context, applicationID, key, path string) error {
	b, err := m.Bucket(ctx, applicationID)
	if err != nil {
		return err
	}
	r, err := b.NewReader(ctx, key)
	if err != nil {
		return fmt.Errorf("recorder: composite input %s: %w", key, err)
	}
	defer r.Close()
	tmp := path + ".part"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("recorder: composite input %s: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
