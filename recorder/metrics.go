package recorder

import (
	"context"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rtcrec/recorder/media"
	"github.com/rtcrec/recorder/recorder/upload"
)

// Hooks are told what the Manager measures off the media path, for the
// service's metrics. Every field is optional; each must return quickly.
type Hooks struct {
	// StorageOp is called after every operation on a bucket: provider is
	// the profile's provider (AMAZON_S3, LOCAL, ...), op the operation
	// (see storage.Observer).
	StorageOp func(provider, op string, d time.Duration, err error)
	// Upload is called for every outcome of the upload queue: outcome is
	// "uploaded", "uploaded_backup", "failing" or "abandoned".
	Upload func(provider, outcome string)
}

// MediaStats are this process's media counters since it started: the tracks
// and mixes that ended plus those running now. They only grow, except the
// gauges Tracks and Recordings.
type MediaStats struct {
	Tracks        map[string]int   // tracks being recorded now, by kind (audio, video)
	TracksStarted uint64           // tracks recorded since start
	Recordings    map[State]int    // recordings running now, by state
	Ended         map[State]uint64 // recordings that reached a final state since start, by state
	Packets       uint64           // RTP packets received on recorded tracks (written or not)
	WriteErrors   uint64           // packets a track's file or pipeline refused
	Lost          uint64           // audio sequence numbers the mix gave up on (not arrived in time)
	Late          uint64           // audio packets dropped because the mix had played their time
	Shed          uint64           // of the mix's packets, those dropped whole undecoded: later than the budget (or before the track's start)
	DecodeErrors  uint64           // audio packets the decoder rejected
	Decoded       uint64           // audio packets decoded for a mix (none without one)
	Skipped       uint64           // of those, inactive Opus packets played as silence undecoded
	Bytes         uint64           // bytes of track and mix files written locally
	MixerOverruns uint64           // mixer ticks more than one frame behind
	// Where the packets of recorded tracks went, file side: Packets =
	// Written + DroppedDuplicate + DroppedLate + DroppedPaused +
	// DroppedAfterStop + WriteErrors (+ what a reorder stage holds now).
	Written          uint64 // packets written to track files
	Missing          uint64 // sequence numbers that never reached the recorder's reader (the file holds silence there)
	DroppedDuplicate uint64 // packets that reached the track twice (written once)
	DroppedLate      uint64 // packets that came after their track file had given up on them (later than the budget)
	DroppedPaused    uint64 // packets dropped on purpose by a pause or blackout
	DroppedAfterStop uint64 // packets from after the recording's stop
}

// metricsState holds what MediaStats sums: the totals of what ended, and the
// tracks and mixes running now. Its lock is taken when a track or mix starts
// or ends and at each scrape, never per packet.
type metricsState struct {
	mu     sync.Mutex
	live   map[*trackSub]struct{}
	mixes  map[*sessionMedia]struct{}
	ended  MediaStats // counters only
	states map[State]uint64
}

// trackCounters are the counters of one track so far.
func (ts *trackSub) counters() MediaStats {
	st := MediaStats{Packets: ts.pkts.Load() + ts.errs.Load(), WriteErrors: ts.errs.Load()}
	if ms, ok := ts.sink.(*mediaSink); ok {
		fs := ms.fileStats()
		st.Written, st.Missing, st.DroppedDuplicate, st.DroppedLate = fs.Written, fs.Missing, fs.DroppedDuplicate, fs.DroppedLate
		st.DroppedPaused, st.DroppedAfterStop = fs.DroppedPaused, fs.DroppedAfterStop
		if p, ok := ms.audio.(interface{ Stats() media.PipelineStats }); ok {
			ps := p.Stats()
			st.Lost, st.Late, st.Shed, st.DecodeErrors, st.Decoded, st.Skipped = ps.Lost, ps.Late, ps.Shed, ps.DecodeErrors, ps.Decoded, ps.Skipped
		}
	}
	st.Bytes = fileSize(ts.path)
	return st
}

func (sm *sessionMedia) counters() MediaStats {
	if sm.mixer == nil {
		return MediaStats{}
	}
	return MediaStats{Bytes: fileSize(sm.path), MixerOverruns: sm.mixer.Expired()}
}

func fileSize(path string) uint64 {
	if path == "" {
		return 0
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return uint64(fi.Size())
}

func (a *MediaStats) add(b MediaStats) {
	a.Packets += b.Packets
	a.WriteErrors += b.WriteErrors
	a.Lost += b.Lost
	a.Late += b.Late
	a.Shed += b.Shed
	a.DecodeErrors += b.DecodeErrors
	a.Decoded += b.Decoded
	a.Skipped += b.Skipped
	a.Bytes += b.Bytes
	a.MixerOverruns += b.MixerOverruns
	a.Written += b.Written
	a.Missing += b.Missing
	a.DroppedDuplicate += b.DroppedDuplicate
	a.DroppedLate += b.DroppedLate
	a.DroppedPaused += b.DroppedPaused
	a.DroppedAfterStop += b.DroppedAfterStop
}

// trackStarted and trackStopped keep the set of live tracks; trackStopped
// folds the track's final counters into the totals.
func (m *Manager) trackStarted(ts *trackSub) {
	m.met.mu.Lock()
	defer m.met.mu.Unlock()
	if m.met.live == nil {
		m.met.live = map[*trackSub]struct{}{}
	}
	m.met.live[ts] = struct{}{}
	m.met.ended.TracksStarted++
}

func (m *Manager) trackStopped(ts *trackSub) {
	m.met.mu.Lock()
	defer m.met.mu.Unlock()
	if _, ok := m.met.live[ts]; !ok {
		return
	}
	delete(m.met.live, ts)
	m.met.ended.add(ts.counters())
}

func (m *Manager) mixStarted(sm *sessionMedia) {
	m.met.mu.Lock()
	defer m.met.mu.Unlock()
	if m.met.mixes == nil {
		m.met.mixes = map[*sessionMedia]struct{}{}
	}
	m.met.mixes[sm] = struct{}{}
}

func (m *Manager) mixStopped(sm *sessionMedia) {
	m.met.mu.Lock()
	defer m.met.mu.Unlock()
	if _, ok := m.met.mixes[sm]; !ok {
		return
	}
	delete(m.met.mixes, sm)
	m.met.ended.add(sm.counters())
}

// recordingEnded counts a recording that reached a final state.
func (m *Manager) recordingEnded(s State) {
	m.met.mu.Lock()
	defer m.met.mu.Unlock()
	if m.met.states == nil {
		m.met.states = map[State]uint64{}
	}
	m.met.states[s]++
}

// MediaStats returns the process's media counters now.
func (m *Manager) MediaStats() MediaStats {
	m.mu.Lock()
	sessions := make([]*Session, 0, len(m.active))
	for _, s := range m.active {
		sessions = append(sessions, s)
	}
	m.mu.Unlock()
	out := MediaStats{Tracks: map[string]int{}, Recordings: map[State]int{}, Ended: map[State]uint64{}}
	for _, s := range sessions {
		s.mu.Lock()
		out.Recordings[s.rec.State]++
		s.mu.Unlock()
	}
	m.met.mu.Lock()
	defer m.met.mu.Unlock()
	out.add(m.met.ended)
	out.TracksStarted = m.met.ended.TracksStarted
	for st, n := range m.met.states {
		out.Ended[st] = n
	}
	for ts := range m.met.live {
		out.Tracks[strings.ToLower(string(ts.t.Kind))]++
		out.add(ts.counters())
	}
	for sm := range m.met.mixes {
		out.add(sm.counters())
	}
	return out
}

// UploadBacklog returns the number of uploads waiting in the queue and the
// age of the oldest.
func (m *Manager) UploadBacklog(ctx context.Context) (int, time.Duration, error) {
	n, oldest, err := m.up.q.Pending(ctx)
	if err != nil || n == 0 {
		return n, 0, err
	}
	return n, time.Since(oldest), nil
}

// uploadOutcome names an upload Result for Hooks.Upload.
func uploadOutcome(r upload.Result) string {
	switch r.Status {
	case upload.Uploaded:
		if r.Backup {
			return "uploaded_backup"
		}
		return "uploaded"
	case upload.Abandoned:
		return "abandoned"
	}
	return "failing"
}
