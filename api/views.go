package api

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rtcrec/recorder/composition/composite"
	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/recorder"
)

// The JSON shapes of the API, field names and enum values exactly as in
// seed 004 (the Auvious recorder API). Times are RFC 3339 strings in UTC,
// sizes decimal strings, as the seed has them.

// ErrorMessage is the reply of every failed request.
type ErrorMessage struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Reason  string `json:"reason"`
	// RequestID names the request in the recorder's log, where the details
	// of a failure are.
	RequestID string `json:"requestId,omitempty"`
}

// StartRecording is the body of POST /api/recordings/start. The fields after
// video are this recorder's extensions.
type StartRecording struct {
	ApplicationID  string              `json:"applicationId"`
	Audio          *bool               `json:"audio"` // default true
	ConferenceID   string              `json:"conferenceId"`
	ConversationID string              `json:"conversationId"`
	Video          bool                `json:"video"`
	Duplicate      bool                `json:"duplicate"`
	Metadata       map[string]string   `json:"metadata"`
	PauseBehavior  string              `json:"pauseBehavior"`
	Mix            *config.MixSettings `json:"mix"`
	MaxDuration    string              `json:"maxDuration"` // Go duration ("90m") or seconds ("5400")
	Composite      *composite.Settings `json:"composite"`   // composite.mp4 once ended: {layout, width, height, fps, userId}
}

// ErrorData is seed 004's Error: {code, message, occurred}.
type ErrorData struct {
	Code     string `json:"code,omitempty"`
	Message  string `json:"message,omitempty"`
	Occurred string `json:"occurred,omitempty"`
}

// RecordingDataEvent is a recording's state.
type RecordingDataEvent struct {
	ConversationID string     `json:"conversationId"`
	Error          *ErrorData `json:"error,omitempty"`
	InstanceID     string     `json:"instanceId"`
	RecorderID     string     `json:"recorderId"`
	State          string     `json:"state"`
	Paused         bool       `json:"paused,omitempty"` // an ACTIVE recording that is paused (seeds 000, 002)
}

// StorageProfileDataMessage describes a storage profile, never its credentials.
type StorageProfileDataMessage struct {
	ApplicationID string `json:"applicationId"`
	Provider      string `json:"provider"`
	URL           string `json:"url"`
}

// LocalFileDataMessage is a track's file on the recorder.
type LocalFileDataMessage struct {
	Created  string     `json:"created,omitempty"`
	Deleted  string     `json:"deleted,omitempty"`
	Error    *ErrorData `json:"error,omitempty"`
	Location string     `json:"location,omitempty"`
}

// UploadDataMessage is a track's uploaded object.
type UploadDataMessage struct {
	Error    *ErrorData `json:"error,omitempty"`
	Location string     `json:"location,omitempty"`
	Size     string     `json:"size,omitempty"`
	Uploaded string     `json:"uploaded,omitempty"`
}

// TrackStorageDataMessage is where a track is stored.
type TrackStorageDataMessage struct {
	LocalStorage  *LocalFileDataMessage `json:"localStorage,omitempty"`
	ObjectStorage *UploadDataMessage    `json:"objectStorage,omitempty"`
}

// TrackDataMessage is one recorded track.
type TrackDataMessage struct {
	ID      string                   `json:"id"`
	Started string                   `json:"started,omitempty"`
	Stopped string                   `json:"stopped,omitempty"`
	Storage *TrackStorageDataMessage `json:"storage,omitempty"`
	Type    string                   `json:"type"`
	URL     string                   `json:"url,omitempty"`
}

// StreamDataMessage is one participant stream.
type StreamDataMessage struct {
	ID     string             `json:"id"`
	State  string             `json:"state"`
	Tracks []TrackDataMessage `json:"tracks"`
	Type   string             `json:"type"`
	UserID string             `json:"userId"`
}

// ChatTranscriptData is a conversation's chat transcript object.
type ChatTranscriptData struct {
	Created  string `json:"created"`
	ID       string `json:"id"`
	Location string `json:"location"`
}

// RecordingDataMessage is everything about one recording.
type RecordingDataMessage struct {
	Audio          bool                       `json:"audio"`
	ChatTranscript *ChatTranscriptData        `json:"chatTranscript,omitempty"`
	ConferenceID   string                     `json:"conferenceId"`
	ConversationID string                     `json:"conversationId"`
	Error          *ErrorData                 `json:"error,omitempty"`
	InstanceID     string                     `json:"instanceId"`
	OrganizationID string                     `json:"organizationId"`
	RecorderID     string                     `json:"recorderId"`
	Recovered      string                     `json:"recovered,omitempty"`
	Started        string                     `json:"started,omitempty"`
	State          string                     `json:"state"`
	Paused         bool                       `json:"paused,omitempty"` // seeds 000, 002
	Stopped        string                     `json:"stopped,omitempty"`
	StorageProfile *StorageProfileDataMessage `json:"storageProfile,omitempty"`
	Streams        []StreamDataMessage        `json:"streams"`
	// Takeover, in a fleet: another instance finished this recording after
	// its owner died, and continued it as a second segment.
	Takeover *TakeoverData `json:"takeover,omitempty"`
	// Continues, on the segment that continued a recording taken over: the
	// segment it continues (whose takeover lists every segment).
	Continues *SegmentData `json:"continues,omitempty"`
	Video     bool         `json:"video"`
	// Composition is set by GET /api/compositions/{conversationId} only.
	Composition *CompositionData `json:"composition,omitempty"`
}

// CompositionData describes the outputs built from a recording (an extension).
type CompositionData struct {
	State    string              `json:"state"` // PENDING | PROCESSING | COMPLETED | FAILED
	Outputs  []CompositionOutput `json:"outputs"`
	Manifest *SignedObject       `json:"manifest,omitempty"`
	Error    *ErrorData          `json:"error,omitempty"` // why it FAILED
}

// CompositionOutput is one composed output, such as mix.wav.
type CompositionOutput struct {
	Type       string  `json:"type"`
	Format     string  `json:"format"`
	SampleRate int     `json:"sampleRate"`
	Channels   int     `json:"channels"`
	Duration   float64 `json:"duration"`
	Location   string  `json:"location,omitempty"`
	Size       string  `json:"size,omitempty"`
	URL        string  `json:"url,omitempty"`
	ValidUntil string  `json:"validUntil,omitempty"`
	SHA256     string  `json:"sha256,omitempty"` // checksum of the object
	// The composite video's (type VIDEO, format mp4).
	Layout string `json:"layout,omitempty"`
	Width  int    `json:"width,omitempty"`
	Height int    `json:"height,omitempty"`
	FPS    int    `json:"fps,omitempty"`
}

// SignedObject is an object with a signed URL.
type SignedObject struct {
	Location   string `json:"location"`
	URL        string `json:"url,omitempty"`
	ValidUntil string `json:"validUntil,omitempty"`
}

// ConversationMessage lists the recordings of a conversation.
type ConversationMessage struct {
	ApplicationID  string                      `json:"applicationId"`
	ChatTranscript *ChatTranscriptData         `json:"chatTranscript,omitempty"`
	ConversationID string                      `json:"conversationId"`
	Duration       string                      `json:"duration"`
	Provider       string                      `json:"provider"`
	Recordings     []ConversationRecordingData `json:"recordings"`
}

// ConversationRecordingData is one recording of a conversation.
type ConversationRecordingData struct {
	Audio        bool                     `json:"audio"`
	ConferenceID string                   `json:"conferenceId"`
	RecorderID   string                   `json:"recorderId"`
	Recovered    string                   `json:"recovered,omitempty"`
	Started      string                   `json:"started,omitempty"`
	Stopped      string                   `json:"stopped,omitempty"`
	Streams      []ConversationStreamData `json:"streams"`
	Video        bool                     `json:"video"`
}

// ConversationStreamData is one stream of a conversation's recording.
type ConversationStreamData struct {
	Started string                  `json:"started,omitempty"`
	Stopped string                  `json:"stopped,omitempty"`
	Tracks  []ConversationTrackData `json:"tracks"`
	Type    string                  `json:"type"`
	UserID  string                  `json:"userId"`
}

// ConversationTrackData is one track of a conversation's recording.
type ConversationTrackData struct {
	Started string                        `json:"started,omitempty"`
	Stopped string                        `json:"stopped,omitempty"`
	Storage *ConversationTrackStorageData `json:"storage,omitempty"`
	Type    string                        `json:"type"`
}

// ConversationTrackStorageData is where a conversation's track is stored.
type ConversationTrackStorageData struct {
	Location string `json:"location,omitempty"`
	Size     string `json:"size,omitempty"`
	Uploaded string `json:"uploaded,omitempty"`
}

// ts formats a time for the API; the zero time is "".
func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func errorData(e *recorder.ErrorInfo) *ErrorData {
	if e == nil {
		return nil
	}
	return &ErrorData{Code: e.Code.String(), Message: e.Message, Occurred: ts(e.Occurred)}
}

func size(n int64) string { return strconv.FormatInt(n, 10) }

// isoDuration formats d as ISO 8601 ("PT12.345S"), as Java's Duration does.
func isoDuration(d time.Duration) string {
	return fmt.Sprintf("PT%sS", strconv.FormatFloat(d.Seconds(), 'f', -1, 64))
}

func eventOf(r *recorder.Recording) RecordingDataEvent {
	return RecordingDataEvent{ConversationID: r.ConversationID, Error: errorData(r.Error), InstanceID: r.InstanceID,
		RecorderID: r.RecorderID, State: string(r.State), Paused: r.Paused && r.State == recorder.StateActive}
}

func profileOf(r *recorder.Recording) *StorageProfileDataMessage {
	return &StorageProfileDataMessage{ApplicationID: r.Storage.ApplicationID, Provider: r.Storage.Provider, URL: publicLocation(r, r.Storage.Location)}
}

// publicLocation is the location callers see of loc, a location of r's
// storage (its bucket's or an object's) or a path in r's local directory:
// never a path of the server's file system. A LOCAL bucket (file:///root)
// is "local://", its objects "local://{key}"; a file of the recording's
// local directory is "local-file:{path in the recording}" (e.g.
// "local-file:tracks/s-u1-audio0.wav"); other providers' locations are the
// provider's URLs and unchanged.
func publicLocation(r *recorder.Recording, loc string) string {
	if rel, ok := strings.CutPrefix(loc, r.Dir+"/"); ok && r.Dir != "" {
		return "local-file:" + rel
	}
	if loc == r.Dir && r.Dir != "" {
		return "local-file:"
	}
	if !strings.HasPrefix(loc, "file://") {
		return loc
	}
	if root := strings.TrimSuffix(r.Storage.Location, "/"); strings.HasPrefix(root, "file://") {
		if loc == root || loc == root+"/" {
			return "local://"
		}
		if key, ok := strings.CutPrefix(loc, root+"/"); ok {
			return "local://" + key
		}
	}
	return "local://" // a file location outside the bucket: nothing of it is shown
}

// TakeoverData is how another instance of the fleet finished a recording
// whose owner died: the segments (this recording up to what its owner had
// uploaded, then the recording that continues it) and the gap between them.
type TakeoverData struct {
	From       string        `json:"from"` // recorderId of the instance that died
	By         string        `json:"by"`   // recorderId of the instance that took over
	At         string        `json:"at"`
	Parts      int           `json:"parts"` // parts reassembled
	GapSeconds float64       `json:"gapSeconds"`
	Segments   []SegmentData `json:"segments"`
}

// SegmentData is one segment of a recording split by a takeover.
type SegmentData struct {
	InstanceID string `json:"instanceId"`
	RecorderID string `json:"recorderId"` // the instance that recorded it
	Started    string `json:"started"`
	Ended      string `json:"ended,omitempty"`
}

func continuesOf(r *recorder.Recording) *SegmentData {
	s := r.Continues
	if s == nil {
		return nil
	}
	return &SegmentData{InstanceID: s.InstanceID, RecorderID: s.RecorderID, Started: ts(s.Started), Ended: ts(s.Ended)}
}

func takeoverOf(r *recorder.Recording) *TakeoverData {
	t := r.Takeover
	if t == nil {
		return nil
	}
	d := &TakeoverData{From: t.From, By: t.By, At: ts(t.At), Parts: t.Parts, GapSeconds: t.Gap.Seconds(), Segments: []SegmentData{}}
	for _, s := range t.Segments {
		d.Segments = append(d.Segments, SegmentData{InstanceID: s.InstanceID, RecorderID: s.RecorderID, Started: ts(s.Started), Ended: ts(s.Ended)})
	}
	return d
}

// messageOf builds a RecordingDataMessage; sign returns the signed URL of an
// object key ("" when it cannot be signed).
func messageOf(r *recorder.Recording, sign func(key string) string) *RecordingDataMessage {
	m := &RecordingDataMessage{
		Audio: r.Audio, ConferenceID: r.ConferenceID, ConversationID: r.ConversationID, Error: errorData(r.Error),
		InstanceID: r.InstanceID, OrganizationID: r.OrganizationID, RecorderID: r.RecorderID,
		Recovered: ts(r.Recovered), Started: ts(r.Started), State: string(r.State), Stopped: ts(r.Stopped),
		StorageProfile: profileOf(r), Streams: []StreamDataMessage{}, Video: r.Video,
		Paused: r.Paused && r.State == recorder.StateActive, ChatTranscript: chatOf(r), Takeover: takeoverOf(r), Continues: continuesOf(r),
	}
	for _, s := range r.Streams {
		sm := StreamDataMessage{ID: s.ID, State: string(s.State), Type: string(s.Type), UserID: s.UserID, Tracks: []TrackDataMessage{}}
		for _, t := range s.Tracks {
			tm := TrackDataMessage{ID: t.ID, Started: ts(t.Started), Stopped: ts(t.Stopped), Type: string(t.Kind),
				Storage: &TrackStorageDataMessage{LocalStorage: &LocalFileDataMessage{
					Created: ts(t.Local.Created), Deleted: ts(t.Local.Deleted), Error: errorData(t.Local.Error), Location: publicLocation(r, t.Local.Location)}}}
			if o := t.Object; o != nil {
				tm.Storage.ObjectStorage = &UploadDataMessage{Error: errorData(o.Error), Location: publicLocation(r, o.Location), Uploaded: ts(o.Uploaded)}
				if o.Error == nil {
					tm.Storage.ObjectStorage.Size = size(o.Size)
					tm.URL = sign(o.Key)
				}
			}
			sm.Tracks = append(sm.Tracks, tm)
		}
		m.Streams = append(m.Streams, sm)
	}
	return m
}

func conversationOf(rs []*recorder.Recording) *ConversationMessage {
	last := rs[len(rs)-1]
	c := &ConversationMessage{ApplicationID: last.ApplicationID, ConversationID: last.ConversationID,
		Provider: last.Storage.Provider, Recordings: []ConversationRecordingData{}}
	var total time.Duration
	for _, r := range rs {
		if !r.Started.IsZero() && !r.Stopped.IsZero() {
			total += r.Stopped.Sub(r.Started)
		}
		cr := ConversationRecordingData{Audio: r.Audio, ConferenceID: r.ConferenceID, RecorderID: r.RecorderID,
			Recovered: ts(r.Recovered), Started: ts(r.Started), Stopped: ts(r.Stopped), Video: r.Video,
			Streams: []ConversationStreamData{}}
		for _, s := range r.Streams {
			cs := ConversationStreamData{Started: ts(s.Started), Stopped: ts(s.Stopped), Type: string(s.Type), UserID: s.UserID,
				Tracks: []ConversationTrackData{}}
			for _, t := range s.Tracks {
				ct := ConversationTrackData{Started: ts(t.Started), Stopped: ts(t.Stopped), Type: string(t.Kind)}
				if o := t.Object; o != nil && o.Error == nil {
					ct.Storage = &ConversationTrackStorageData{Location: publicLocation(r, o.Location), Size: size(o.Size), Uploaded: ts(o.Uploaded)}
				}
				cs.Tracks = append(cs.Tracks, ct)
			}
			cr.Streams = append(cr.Streams, cs)
		}
		c.Recordings = append(c.Recordings, cr)
	}
	c.Duration = isoDuration(total)
	for _, r := range rs { // the newest recording's chat (lifecycle.go)
		if ct := chatOf(r); ct != nil {
			c.ChatTranscript = ct
		}
	}
	return c
}
