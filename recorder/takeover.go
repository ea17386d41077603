package recorder

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/media/wavwriter"
	"github.com/rtcrec/recorder/recorder/store"
)

// Takeover in a fleet: when an instance stops heart-beating, another one
// takes over its unfinished recordings (TakeOverOrphans, called by package
// cluster every heartbeat). For each one it
//
//  1. claims the recording in the store with the next fencing epoch: of
//     instances trying at once one wins, and every later write of the dead
//     (or partitioned) owner fails with store.ErrFenced, which stops its
//     session without another write or upload (a zombie cannot write over
//     the new owner);
//  2. re-joins the conference as a new segment: a new recording of the same
//     conference and conversation on this instance (Continues names the
//     first), after re-pinning a WHIP conference here so that its publishers
//     reconnect here;
//  3. reassembles what the dead owner had uploaded while recording (its
//     parts, uploads.chunkInterval: 10 s in a fleet) and finishes it as a
//     recovery does: STOPPED with Recovered, its Takeover listing both
//     segments and the measured gap between them. The first segment ends
//     where its mix completed from the tracks ends (firstSegmentEnds).

// A client reading either segment finds the other: the first's Takeover
// lists both (GET /api/recordings/…), the continuation's Continues links
// back, and both manifests list the segments in order with their storage
// prefixes and offsets on the first segment's timeline (manifestSegments).
// A paused recording continues paused, and a participant blacked out stays
// so (blackouts are fleet-wide, in the store).

// Takeover is how another instance finished a recording whose owner died.
type Takeover struct {
	From     string        `json:"from"`     // the recorderId that died
	By       string        `json:"by"`       // the recorderId that took over
	At       time.Time     `json:"at"`       // when
	Parts    int           `json:"parts"`    // parts reassembled
	Segments []Segment     `json:"segments"` // this recording's, then its continuation's
	Gap      time.Duration `json:"gap"`      // from the end of the first segment to the start of the second (ns)
}

// Segment is one stretch of a recording that a takeover split.
type Segment struct {
	InstanceID string    `json:"instanceId"`
	RecorderID string    `json:"recorderId"` // the instance that recorded it
	Started    time.Time `json:"started"`
	Ended      time.Time `json:"ended,omitzero"` // what survived of it, for the first: where its recovered mix ends
}

// TakeOverOrphans takes over every unfinished recording whose owner is not
// alive. It returns the instanceIds it took.
func (m *Manager) TakeOverOrphans(ctx context.Context, alive func(recorderID string) bool) ([]string, error) {
	m.mu.Lock()
	closing := m.closing
	m.mu.Unlock()
	if closing {
		return nil, nil
	}
	recs, err := m.store.InStates(ctx, string(StateInitialised), string(StateActive), string(StatePendingRecovery))
	if err != nil {
		return nil, err
	}
	var took []string
	for _, sr := range recs {
		if sr.Owner == m.recorderID || alive(sr.Owner) {
			continue
		}
		ok, err := m.takeOver(ctx, sr)
		if err != nil {
			m.log.Error("takeover failed", "instanceId", sr.InstanceID, "from", sr.Owner, "err", err)
			continue
		}
		if ok {
			took = append(took, sr.InstanceID)
		}
	}
	return took, nil
}

// takeOver claims one recording of a dead owner and finishes it (see above);
// false: another instance claimed it first.
func (m *Manager) takeOver(ctx context.Context, sr *store.Record) (bool, error) {
	ok, err := m.store.Claim(ctx, sr.InstanceID, sr.Epoch, m.recorderID)
	if err != nil || !ok {
		return false, err
	}
	from := sr.Owner
	sr.Owner, sr.Epoch = m.recorderID, sr.Epoch+1
	rec, err := decode(sr)
	if err != nil {
		return true, err
	}
	now := m.now()
	log := m.log.With("instanceId", rec.InstanceID, "conversationId", rec.ConversationID, "from", from)
	log.Info("taking over a recording of a dead instance")

	// What the dead owner uploaded, into this instance's working directory.
	rec.Dir = filepath.Join(m.cfg.DataDir, "recordings", rec.OrganizationID, rec.ConversationID, rec.RecorderID, rec.InstanceID)
	if err := os.MkdirAll(filepath.Join(rec.Dir, composition.TracksDir), 0o750); err != nil {
		return true, err
	}
	parts := 0
	if bucket, err := m.Bucket(ctx, rec.ApplicationID); err != nil {
		log.Error("takeover: cannot open the storage to reassemble the parts", "err", err)
	} else {
		rels := []string{composition.MixFile}
		for _, st := range rec.Streams {
			for _, tr := range st.Tracks {
				rels = append(rels, tr.File)
			}
		}
		for _, rel := range rels {
			n, err := Reassemble(ctx, bucket, rec.Storage.Prefix, rel, filepath.Join(rec.Dir, filepath.FromSlash(rel)))
			if err != nil {
				log.Warn("takeover: file not reassembled", "file", rel, "err", err)
			}
			parts += n
		}
	}
	ended := rec.Started
	if d, err := wavDuration(filepath.Join(rec.Dir, composition.MixFile)); err == nil {
		ended = rec.Started.Add(d)
	}
	t := &Takeover{From: from, By: m.recorderID, At: now, Parts: parts,
		Segments: []Segment{{InstanceID: rec.InstanceID, RecorderID: from, Started: rec.Started, Ended: ended}}}

	// Re-join: the conference continues as a new segment here.
	if rec.State == StateActive && rec.Deleted.IsZero() {
		if cont, err := m.continueRecording(ctx, rec, from, t.Segments[0]); err != nil {
			log.Error("takeover: cannot re-join the conference", "err", err)
		} else {
			t.Segments = append(t.Segments, Segment{InstanceID: cont.InstanceID, RecorderID: m.recorderID, Started: cont.Started})
			t.Gap = cont.Started.Sub(ended)
		}
	}
	rec.Takeover = t
	prev := rec.State
	rec.State = StatePendingRecovery
	if err := m.put(ctx, rec); err != nil {
		return true, err
	}
	if prev != StatePendingRecovery {
		m.publish(ctx, rec, "state.updated", recordingEventData(rec))
	}
	s := &Session{m: m, rec: rec, stopCh: make(chan stopReason, 1), done: make(chan struct{}),
		log: log, stopping: true}
	m.mu.Lock()
	m.active[rec.InstanceID] = s
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		s.recoverFiles()
	}()
	log.Info("took over a recording", "parts", parts, "segments", len(t.Segments), "gap", t.Gap)
	return true, nil
}

// firstSegmentEnds sets where the first segment of a recording taken over
// ends once its recovery has completed the mix from the track files
// (completeMix): where that mix ends. takeOver could only measure the mix
// reassembled from the dead owner's parts, which lags its tracks (the
// truth) by the live mixer's place behind the clock and its one-second
// buffer: 1.5 s short under load (session 21), a gap as much too long, and
// a client that plays the first segment to its end would leave out its
// last 1.5 s. Takeover.Gap and the continuation's Continues (its
// manifest and API view) follow; a continuation already ended keeps the
// earlier end (logged). Without a mix (mix none) the end stays the
// reassembled mix's.
func (s *Session) firstSegmentEnds(ctx context.Context, mixPath string) {
	rec := s.Snapshot()
	d, err := wavDuration(mixPath)
	if err != nil || len(rec.Takeover.Segments) == 0 {
		return
	}
	ended := rec.Started.Add(d)
	was := rec.Takeover.Segments[0].Ended
	if !ended.After(was) {
		return
	}
	if err := s.commit(ctx, func(r *Recording) {
		t := *r.Takeover // shared with the snapshots before: replaced, not changed
		t.Segments = slices.Clone(t.Segments)
		t.Segments[0].Ended = ended
		if len(t.Segments) > 1 {
			t.Gap = t.Segments[1].Started.Sub(ended)
		}
		r.Takeover = &t
	}); err != nil {
		s.log.Error("cannot store where the first segment ends", "err", err)
		return
	}
	s.log.Info("first segment ends where its tracks end", "seconds", d.Seconds(), "reassembledSeconds", was.Sub(rec.Started).Seconds())
	if len(rec.Takeover.Segments) < 2 {
		return
	}
	id := rec.Takeover.Segments[1].InstanceID
	cont := s.m.session(id)
	if cont == nil {
		s.log.Warn("the continuation ended before the first segment's end was measured: it keeps the earlier end", "continuation", id)
		return
	}
	if err := cont.commit(ctx, func(r *Recording) {
		if r.Continues != nil && r.Continues.InstanceID == rec.InstanceID {
			c := *r.Continues
			c.Ended = ended
			r.Continues = &c
		}
	}); err != nil {
		s.log.Error("cannot store where the first segment ends in its continuation", "continuation", id, "err", err)
	}
}

// continueRecording starts the second segment of rec on this instance: the
// same conference, conversation and settings, for what is left of its
// maximum duration. A WHIP conference is first pinned here.
func (m *Manager) continueRecording(ctx context.Context, rec *Recording, from string, first Segment) (*Recording, error) {
	left := rec.MaxDuration - m.now().Sub(rec.Started)
	if left <= 0 {
		return nil, fmt.Errorf("its maximum duration has passed")
	}
	if m.Application(rec.ApplicationID).Conference.Kind == "whip" && m.remote != nil {
		if err := m.remote.PinHere(ctx, rec.OrganizationID, rec.ConferenceID, from); err != nil {
			return nil, err
		}
	}
	mix := rec.Mix
	req := StartRequest{ApplicationID: rec.ApplicationID, ConferenceID: rec.ConferenceID, ConversationID: rec.ConversationID,
		Audio: rec.Audio, Video: rec.Video, Duplicate: true, Metadata: maps.Clone(rec.Metadata), PauseBehavior: string(rec.PauseBehavior),
		Mix: &mix, MaxDuration: left, Only: rec.Only, Composite: rec.Composite}
	// Run here, never placed or forwarded elsewhere; linked back to rec,
	// and paused from its start if rec was.
	ctx = context.WithValue(context.WithoutCancel(ctx), localOnlyKey{}, true)
	ctx = context.WithValue(ctx, continuesKey{}, &continuation{of: first, paused: rec.Paused})
	return m.Start(ctx, rec.OrganizationID, req)
}

// continuesKey carries a *continuation into Start.
type continuesKey struct{}

// continuation is what Start needs to begin a recording as the next segment
// of one taken over.
type continuation struct {
	of     Segment // the segment it continues
	paused bool    // that one was paused: so is this from its start
}

// manifestSegments lists the segments of rec's recording for its manifest:
// the first segment's Takeover names both; a continuation knows the one it
// continues and itself. Nil for a recording never split.
func manifestSegments(rec *Recording) []composition.Segment {
	var segs []Segment
	switch {
	case rec.Takeover != nil:
		segs = rec.Takeover.Segments
	case rec.Continues != nil:
		segs = []Segment{*rec.Continues, {InstanceID: rec.InstanceID, RecorderID: rec.RecorderID, Started: rec.Started, Ended: rec.Stopped}}
	default:
		return nil
	}
	// Every segment shares the application's prefix; only the recorder and
	// instance ids at its end differ (composition.Prefix).
	base := strings.TrimSuffix(rec.Storage.Prefix, rec.RecorderID+"/"+rec.InstanceID+"/")
	out := make([]composition.Segment, 0, len(segs))
	for _, sg := range segs {
		cs := composition.Segment{InstanceID: sg.InstanceID, RecorderID: sg.RecorderID, Prefix: base + sg.RecorderID + "/" + sg.InstanceID + "/",
			Offset: sg.Started.Sub(segs[0].Started).Seconds(), Started: sg.Started}
		if !sg.Ended.IsZero() {
			e := sg.Ended
			cs.Ended = &e
		}
		out = append(out, cs)
	}
	return out
}

// fencedInStore reports whether the recording's ownership moved to another
// instance (a takeover while this one was cut off); it then stops the
// session as a fenced write does.
func (s *Session) fencedInStore() bool {
	rec := s.Snapshot()
	owner, epoch, err := s.m.store.Epoch(context.Background(), rec.InstanceID)
	if err != nil || epoch == rec.Epoch {
		return false
	}
	s.mu.Lock()
	first := !s.fenced
	s.fenced = true
	s.mu.Unlock()
	if first {
		s.log.Error("recording taken over by another instance: stopping without writing", "owner", owner, "epoch", epoch)
		go s.requestStop(stopReason{err: store.ErrFenced})
	}
	return true
}

// wavDuration returns the length of the WAV file at path, from its header.
func wavDuration(path string) (time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	b := make([]byte, 4096)
	n, _ := io.ReadFull(f, b)
	h, err := wavwriter.ParseHeader(b[:n])
	if err != nil {
		return 0, err
	}
	if h.SampleRate <= 0 || h.BlockAlign <= 0 {
		return 0, fmt.Errorf("recorder: %s: no sample rate", path)
	}
	frames := int64(h.DataSize) / int64(h.BlockAlign)
	return time.Duration(frames) * time.Second / time.Duration(h.SampleRate), nil
}
