package recorder

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/composition/composite"
	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/media/pause"
	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/recorder/store"
)

// State is a recording's state in the API's (seed 004) terms.
type State string

// The recording states. INITIALISED → ACTIVE → STOPPED is the normal life;
// FAILED carries an error; ABORTED is a recording stopped before any media or
// whose conference vanished; PENDING_RECOVERY is one found unfinished after a
// restart, until recovery moves it to STOPPED with Recovered set.
const (
	StateInitialised     State = "INITIALISED"
	StateActive          State = "ACTIVE"
	StateStopped         State = "STOPPED"
	StateFailed          State = "FAILED"
	StateAborted         State = "ABORTED"
	StatePendingRecovery State = "PENDING_RECOVERY"
)

// String returns the API name of the state.
func (s State) String() string { return string(s) }

// Final reports whether no transition leaves s.
func (s State) Final() bool { return s == StateStopped || s == StateFailed || s == StateAborted }

// StreamState is a participant stream's state within a recording.
type StreamState string

// The stream states of the API.
const (
	StreamRecording StreamState = "RECORDING"
	StreamStopped   StreamState = "STOPPED"
	StreamFailed    StreamState = "FAILED"
)

// ErrorInfo is the API's error object: {code, message, occurred}.
type ErrorInfo struct {
	Code     ErrorCode `json:"code"`
	Message  string    `json:"message"`
	Occurred time.Time `json:"occurred"`
}

// ErrorCode says why a recording, a track, an object or a composition
// failed: one of the Code constants, or a storage.ErrorCode's name for an
// object whose upload failed.
type ErrorCode string

// The error codes of ErrorInfo.
const (
	CodeStartFailed        ErrorCode = "start_failed"         // joining the conference failed
	CodeConferenceEnded    ErrorCode = "conference_ended"     // the conference ended before any media
	CodeTrackFailed        ErrorCode = "track_failed"         // a track's file could not be created
	CodeWriteFailed        ErrorCode = "write_failed"         // a file could not be written
	CodeDiskFull           ErrorCode = "disk_full"            // ENOSPC or EDQUOT while writing
	CodeNoMedia            ErrorCode = "no_media"             // a video track without a decodable frame
	CodeUploadFailed       ErrorCode = "upload_failed"        // an object could not be uploaded and verified
	CodeRecoveryFailed     ErrorCode = "recovery_failed"      // a recording's local files were gone at recovery
	CodeCompositeNotQueued ErrorCode = "composite_not_queued" // the composite queue refused the job
	CodeCompositeInputs    ErrorCode = "composite_inputs"     // the composite's input files could not be had
	CodeCompositeFailed    ErrorCode = "composite_failed"     // ffmpeg failed
)

// String returns the code as the API spells it.
func (c ErrorCode) String() string { return string(c) }

// TrackFilter selects the tracks a recording takes: those of UserID, of
// StreamType when set.
type TrackFilter struct {
	UserID     string                `json:"userId"`
	StreamType conference.StreamType `json:"streamType,omitempty"`
}

// Recording is everything known about one recording: what the API shows and
// what survives a restart. Values returned by the Manager are copies.
type Recording struct {
	InstanceID     string             `json:"instanceId"`
	OrganizationID string             `json:"organizationId"`
	ApplicationID  string             `json:"applicationId"`
	ConversationID string             `json:"conversationId"`
	ConferenceID   string             `json:"conferenceId"`
	RecorderID     string             `json:"recorderId"`
	Audio          bool               `json:"audio"`
	Video          bool               `json:"video"`
	Duplicate      bool               `json:"duplicate,omitempty"`
	State          State              `json:"state"`
	Error          *ErrorInfo         `json:"error,omitempty"`
	Created        time.Time          `json:"created"`            // the start request
	Started        time.Time          `json:"started,omitzero"`   // ACTIVE
	Stopped        time.Time          `json:"stopped,omitzero"`   // final
	Recovered      time.Time          `json:"recovered,omitzero"` // finished by start-up recovery
	Metadata       map[string]string  `json:"metadata,omitempty"` // caller's, kept in the manifest
	PauseBehavior  pause.Behavior     `json:"pauseBehavior"`
	Mix            config.MixSettings `json:"mix"`         // the mix WAV's format
	MaxDuration    time.Duration      `json:"maxDuration"` // nanoseconds
	Storage        StorageInfo        `json:"storage"`     // where outputs go
	Dir            string             `json:"dir"`         // local working directory
	Streams        []*Stream          `json:"streams"`     // in order of arrival
	Composition    *Composition       `json:"composition,omitempty"`
	MixFrames      int64              `json:"mixFrames,omitempty"` // frames in mix.wav
	// Only, when set, limits the recording to one participant's streams of
	// one type (seed 003's screen recordings: an agent's SCREEN).
	Only *TrackFilter `json:"only,omitempty"`
	// Composite is the composite video asked for; nil: none.
	Composite *composite.Settings `json:"composite,omitempty"`

	// Pauses and blackouts, chat and cobrowse, and their uploads.
	Paused    bool                   `json:"paused,omitempty"`
	Pauses    []PauseInterval        `json:"pauses,omitempty"`
	Blackouts []BlackoutInterval     `json:"blackouts,omitempty"`
	Uploads   map[string]*ObjectFile `json:"uploads,omitempty"` // chat.json, cobrowse files: by relative path
	// Entries summarises the chat and cobrowse entries, which the store
	// keeps in a table of their own (transcript.go): filled when the
	// Manager returns the recording, never stored in its document.
	Entries EntrySummary `json:"-"`
	// LegacyChat and LegacyCobrowse are entries that versions before the
	// table kept in the document; the first add moves them into the table,
	// and every reader of the entries reads them too.
	LegacyChat     []ChatEntry     `json:"chat,omitempty"`
	LegacyCobrowse []CobrowseEvent `json:"cobrowse,omitempty"`
	Updated        time.Time       `json:"updated,omitzero"`
	Deleted        time.Time       `json:"deleted,omitzero"` // soft delete (telephony view)

	// Takeover, in a fleet, tells that another instance finished the
	// recording after its owner died: the segment recorded
	// here, the gap, and the recording that continues it.
	Takeover *Takeover `json:"takeover,omitempty"`
	// Continues, on the segment that continues a recording taken over, is
	// the back-link to the segment it continues (takeover.go).
	Continues *Segment `json:"continues,omitempty"`

	// Owner and Epoch are the store's ownership of the recording (the
	// instance running it and the fencing epoch its writes carry); they
	// live in their own columns, not in the JSON.
	Owner string `json:"-"`
	Epoch int64  `json:"-"`
}

// StorageInfo is the storage profile a recording uploads to: never credentials.
type StorageInfo struct {
	ApplicationID string `json:"applicationId"`
	Provider      string `json:"provider"`
	Location      string `json:"location"` // the bucket's Location()
	Prefix        string `json:"prefix"`   // key prefix of this recording's objects, ending in "/"
}

// Stream is one participant stream (a WHIP session, a Janus feed).
type Stream struct {
	ID      string                `json:"id"`
	UserID  string                `json:"userId"`
	Type    conference.StreamType `json:"type"`
	State   StreamState           `json:"state"`
	Started time.Time             `json:"started"`
	Stopped time.Time             `json:"stopped,omitzero"`
	Tracks  []*Track              `json:"tracks"`
}

// Track is one recorded track of a stream and its file.
type Track struct {
	ID      string          `json:"id"`
	Kind    conference.Kind `json:"type"`
	Codec   string          `json:"codec"`
	File    string          `json:"file"`   // path relative to the recording: tracks/{streamId}-{trackId}.ext
	Offset  time.Duration   `json:"offset"` // start relative to the recording's start
	Started time.Time       `json:"started"`
	Stopped time.Time       `json:"stopped,omitzero"`
	Local   LocalFile       `json:"localStorage"`
	Object  *ObjectFile     `json:"objectStorage,omitempty"`
	Packets uint64          `json:"packets"`
	// FirstPacket is when the first packet was written: time zero of the
	// track's file (the video writers start there), later than Started.
	FirstPacket time.Time `json:"firstPacket,omitzero"`
	Dropped     uint64    `json:"dropped,omitempty"`
	// Timing places the file on the sender's clock (nil: no packet).
	Timing *composition.TrackTiming `json:"timing,omitempty"`
}

// LocalFile is a file on the recorder's disk.
type LocalFile struct {
	Location string     `json:"location"`
	Created  time.Time  `json:"created,omitzero"`
	Deleted  time.Time  `json:"deleted,omitzero"`
	Error    *ErrorInfo `json:"error,omitempty"`
}

// ObjectFile is an uploaded, verified object.
type ObjectFile struct {
	Key      string     `json:"key"`
	Location string     `json:"location"` // the bucket location and key
	Size     int64      `json:"size"`
	SHA256   string     `json:"sha256,omitempty"`
	Uploaded time.Time  `json:"uploaded,omitzero"`
	Error    *ErrorInfo `json:"error,omitempty"`
}

// Composition is what was built from a finished recording: the mix, the
// manifest and, when asked for, the composite video.
type Composition struct {
	State    CompositionState `json:"state"`
	Outputs  []Output         `json:"outputs"`
	Manifest *ObjectFile      `json:"manifest,omitempty"`
	Error    *ErrorInfo       `json:"error,omitempty"` // why the composite video FAILED
}

// Output is one composed output.
type Output struct {
	Type       string      `json:"type"`   // AUDIO | VIDEO
	Format     string      `json:"format"` // wav | mp4
	SampleRate int         `json:"sampleRate"`
	Channels   int         `json:"channels"`
	Duration   float64     `json:"duration"` // seconds
	File       string      `json:"file"`     // relative path: mix.wav, composite.mp4
	Object     *ObjectFile `json:"objectStorage,omitempty"`
	// The composite video's layout and format.
	Layout string `json:"layout,omitempty"`
	Width  int    `json:"width,omitempty"`
	Height int    `json:"height,omitempty"`
	FPS    int    `json:"fps,omitempty"`
}

// clone returns a deep copy of r.
func (r *Recording) clone() *Recording {
	c := *r
	c.Error = r.Error.clone()
	if r.Composite != nil {
		cs := *r.Composite
		c.Composite = &cs
	}
	r.cloneIntervals(&c)
	if r.Metadata != nil {
		c.Metadata = make(map[string]string, len(r.Metadata))
		for k, v := range r.Metadata {
			c.Metadata[k] = v
		}
	}
	c.Streams = make([]*Stream, len(r.Streams))
	for i, s := range r.Streams {
		cs := *s
		cs.Tracks = make([]*Track, len(s.Tracks))
		for j, t := range s.Tracks {
			ct := *t
			ct.Local.Error = t.Local.Error.clone()
			ct.Object = t.Object.clone()
			cs.Tracks[j] = &ct
		}
		c.Streams[i] = &cs
	}
	if r.Composition != nil {
		cc := *r.Composition
		cc.Manifest = r.Composition.Manifest.clone()
		cc.Error = r.Composition.Error.clone()
		cc.Outputs = make([]Output, len(r.Composition.Outputs))
		for i, o := range r.Composition.Outputs {
			o.Object = o.Object.clone()
			cc.Outputs[i] = o
		}
		c.Composition = &cc
	}
	return &c
}

func (e *ErrorInfo) clone() *ErrorInfo {
	if e == nil {
		return nil
	}
	c := *e
	return &c
}

func (o *ObjectFile) clone() *ObjectFile {
	if o == nil {
		return nil
	}
	c := *o
	c.Error = o.Error.clone()
	return &c
}

// stream returns the stream with id, or nil.
func (r *Recording) stream(id string) *Stream {
	for _, s := range r.Streams {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// hadMedia reports whether any track was recorded.
// HadMedia reports whether any track of r received a packet.
func (r *Recording) HadMedia() bool { return r.hadMedia() }

func (r *Recording) hadMedia() bool {
	for _, s := range r.Streams {
		for _, t := range s.Tracks {
			if t.Packets > 0 {
				return true
			}
		}
	}
	return false
}

// PauseInterval is one paused interval of a recording: wall-clock times and
// the positions in the mix timeline (with "skip" both positions are equal).
type PauseInterval struct {
	Start    time.Time     `json:"start"`
	End      time.Time     `json:"end,omitzero"` // zero while paused
	MixStart time.Duration `json:"mixStart"`
	MixEnd   time.Duration `json:"mixEnd"`
	// Stopped: the recording stopped while paused (End is the stop, not a resume).
	Stopped bool `json:"stopped,omitempty"`
}

// StatusChange is one entry of a recording's status history (seed 000).
type StatusChange struct {
	Status string    // start | pause | resume | stop
	Time   time.Time // when it happened
}

// Statuses returns the status history of r in seed 000's terms: start (when it
// became ACTIVE), pause and resume for every paused interval, and stop once it
// is final. A recording that never became ACTIVE has none.
func (r *Recording) Statuses() []StatusChange {
	if r.Started.IsZero() {
		return nil
	}
	out := []StatusChange{{"start", r.Started}}
	for _, p := range r.Pauses {
		out = append(out, StatusChange{"pause", p.Start})
		if !p.End.IsZero() && !p.Stopped {
			out = append(out, StatusChange{"resume", p.End})
		}
	}
	if r.State.Final() && !r.Stopped.IsZero() {
		out = append(out, StatusChange{"stop", r.Stopped})
	}
	return out
}

// cloneIntervals deep-copies the pauses, blackouts, chat, cobrowse and
// their uploads of r into c.
func (r *Recording) cloneIntervals(c *Recording) {
	c.Pauses = append([]PauseInterval(nil), r.Pauses...)
	c.Blackouts = append([]BlackoutInterval(nil), r.Blackouts...)
	c.LegacyChat = append([]ChatEntry(nil), r.LegacyChat...)
	c.LegacyCobrowse = append([]CobrowseEvent(nil), r.LegacyCobrowse...)
	c.Entries.Cobrowse = append([]CobrowseSession(nil), r.Entries.Cobrowse...)
	if r.Uploads != nil {
		c.Uploads = make(map[string]*ObjectFile, len(r.Uploads))
		for k, v := range r.Uploads {
			c.Uploads[k] = v.clone()
		}
	}
}

// BlackoutInterval is one blackout of one participant within a recording.
type BlackoutInterval struct {
	UserID string    `json:"userId"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end,omitzero"` // zero while on
}

// CompositionState is the state of a recording's composition.
type CompositionState string

// The composition states.
const (
	CompositionPending    CompositionState = "PENDING"    // a composite video is queued
	CompositionProcessing CompositionState = "PROCESSING" // ffmpeg is making the composite video
	CompositionCompleted  CompositionState = "COMPLETED"
	CompositionFailed     CompositionState = "FAILED"
)

// String returns the state as the API spells it.
func (s CompositionState) String() string { return string(s) }

// UploadsPending reports whether some output of the recording is not yet
// verified in storage: an object with an error, or a composition still uploading.
func (r *Recording) UploadsPending() bool {
	pending := false
	r.objects(func(_ string, o **ObjectFile) {
		if *o != nil && (*o).Error != nil {
			pending = true
		}
	})
	return pending
}

// objects calls fn for every object slot of r with its relative file path.
func (r *Recording) objects(fn func(rel string, o **ObjectFile)) {
	for _, st := range r.Streams {
		for _, tr := range st.Tracks {
			fn(tr.File, &tr.Object)
		}
	}
	for rel, o := range r.Uploads {
		fn(rel, &o)
		r.Uploads[rel] = o
	}
	if c := r.Composition; c != nil {
		for i := range c.Outputs {
			fn(c.Outputs[i].File, &c.Outputs[i].Object)
		}
		fn(composition.ManifestFile, &c.Manifest)
	}
}

// decode turns a stored record back into a Recording.
func decode(rec *store.Record) (*Recording, error) {
	var r Recording
	if err := json.Unmarshal(rec.Data, &r); err != nil {
		return nil, fmt.Errorf("recorder: stored recording %s: %w", rec.InstanceID, err)
	}
	r.Owner, r.Epoch = rec.Owner, rec.Epoch
	return &r, nil
}
