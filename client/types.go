package client

import "encoding/json"

// The API's messages, as the OpenAPI document (api/openapi.json) names them.

// StartRequest is StartRecording.
type StartRequest struct {
	ApplicationID  string            `json:"applicationId"`
	ConferenceID   string            `json:"conferenceId"`
	ConversationID string            `json:"conversationId"`
	Audio          *bool             `json:"audio,omitempty"`
	Video          bool              `json:"video,omitempty"`
	Duplicate      bool              `json:"duplicate,omitempty"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	PauseBehavior  string            `json:"pauseBehavior,omitempty"`
	MaxDuration    string            `json:"maxDuration,omitempty"`
	Mix            json.RawMessage   `json:"mix,omitempty"` // "none" (tracks only) or {sampleRate, channels, latency}
}

// ErrorData is a recording's error.
type ErrorData struct {
	Code     string `json:"code,omitempty"`
	Message  string `json:"message,omitempty"`
	Occurred string `json:"occurred,omitempty"`
}

// RecordingEvent is RecordingDataEvent: a recording's state.
type RecordingEvent struct {
	ConversationID string     `json:"conversationId"`
	RecorderID     string     `json:"recorderId"`
	InstanceID     string     `json:"instanceId"`
	State          string     `json:"state"`
	Paused         bool       `json:"paused,omitempty"`
	Error          *ErrorData `json:"error,omitempty"`
}

// Ref returns the recording's reference.
func (e *RecordingEvent) Ref() Ref { return Ref{e.ConversationID, e.RecorderID, e.InstanceID} }

// Recording is RecordingDataMessage.
type Recording struct {
	ConversationID string          `json:"conversationId"`
	RecorderID     string          `json:"recorderId"`
	InstanceID     string          `json:"instanceId"`
	OrganizationID string          `json:"organizationId"`
	ConferenceID   string          `json:"conferenceId"`
	State          string          `json:"state"`
	Paused         bool            `json:"paused,omitempty"`
	Audio          bool            `json:"audio"`
	Video          bool            `json:"video"`
	Started        string          `json:"started,omitempty"`
	Stopped        string          `json:"stopped,omitempty"`
	Recovered      string          `json:"recovered,omitempty"`
	Error          *ErrorData      `json:"error,omitempty"`
	StorageProfile *StorageProfile `json:"storageProfile,omitempty"`
	Streams        []Stream        `json:"streams"`
}

// StorageProfile is StorageProfileDataMessage.
type StorageProfile struct {
	ApplicationID string `json:"applicationId"`
	Provider      string `json:"provider"`
	URL           string `json:"url"`
}

// Stream is StreamDataMessage.
type Stream struct {
	ID     string  `json:"id"`
	State  string  `json:"state"`
	Type   string  `json:"type"`
	UserID string  `json:"userId"`
	Tracks []Track `json:"tracks"`
}

// Track is TrackDataMessage.
type Track struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Started string `json:"started,omitempty"`
	Stopped string `json:"stopped,omitempty"`
	URL     string `json:"url,omitempty"`
}

// Summary is RecordingSummary, one row of List.
type Summary struct {
	ApplicationID  string     `json:"applicationId"`
	ConferenceID   string     `json:"conferenceId"`
	ConversationID string     `json:"conversationId"`
	RecorderID     string     `json:"recorderId"`
	InstanceID     string     `json:"instanceId"`
	State          string     `json:"state"`
	Paused         bool       `json:"paused"`
	BlackedOut     []string   `json:"blackedOut"`
	Participants   []string   `json:"participants"`
	Started        string     `json:"started,omitempty"`
	Stopped        string     `json:"stopped,omitempty"`
	Duration       float64    `json:"duration"`
	Error          *ErrorData `json:"error,omitempty"`
}

// Ref returns the recording's reference.
func (s *Summary) Ref() Ref { return Ref{s.ConversationID, s.RecorderID, s.InstanceID} }

// List is RecordingList.
type List struct {
	Recordings    []Summary `json:"recordings"`
	NextPageToken string    `json:"nextPageToken,omitempty"`
}

// File is RecordingFile.
type File struct {
	File       string     `json:"file"`
	Kind       string     `json:"kind"`
	UserID     string     `json:"userId,omitempty"`
	Size       int64      `json:"size"`
	SHA256     string     `json:"sha256,omitempty"`
	URL        string     `json:"url,omitempty"`
	ValidUntil string     `json:"validUntil,omitempty"`
	Uploaded   string     `json:"uploaded,omitempty"`
	Error      *ErrorData `json:"error,omitempty"`
}

// Files is RecordingFiles.
type Files struct {
	ConversationID string `json:"conversationId"`
	RecorderID     string `json:"recorderId"`
	InstanceID     string `json:"instanceId"`
	State          string `json:"state"`
	Files          []File `json:"files"`
}

// Manifest is the part of a recording's manifest.json the download checks
// against: every track's and the mix's file, size and SHA-256.
type Manifest struct {
	InstanceID string `json:"instanceId"`
	Mix        *struct {
		File   string `json:"file"`
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
	} `json:"mix"`
	Tracks []struct {
		File   string `json:"file"`
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
	} `json:"tracks"`
}
