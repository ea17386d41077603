package janus

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// Plugin is the package name of the Janus VideoRoom plugin.
const Plugin = "janus.plugin.videoroom"

// VideoRoom error codes (janus_videoroom.c) the adapter tells apart.
const (
	codeNoSuchRoom     = 426
	codeNoSuchFeed     = 428
	codeInvalidElement = 430
)

// ID is a VideoRoom room or participant id as Janus sends it: a JSON number,
// or a JSON string in rooms configured with string_ids. It keeps the JSON
// token so that it goes back to Janus in the form it came.
type ID string

// RoomID returns the ID of a room named s: a number when s is all digits, a
// string otherwise (for Janus servers with string_ids = true).
func RoomID(s string) ID {
	if _, err := strconv.ParseUint(s, 10, 64); err == nil {
		return ID(s)
	}
	b, _ := json.Marshal(s)
	return ID(b)
}

// UnmarshalJSON keeps a number or a string token.
func (id *ID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || (b[0] != '"' && (b[0] < '0' || b[0] > '9')) {
		return errors.New("janus: id is neither a number nor a string")
	}
	*id = ID(b)
	return nil
}

// MarshalJSON writes the id as it came.
func (id ID) MarshalJSON() ([]byte, error) {
	if id == "" {
		return []byte("0"), nil
	}
	return []byte(id), nil
}

// String returns the id without JSON quotes.
func (id ID) String() string {
	if s := string(id); strings.HasPrefix(s, `"`) {
		var u string
		if json.Unmarshal([]byte(s), &u) == nil {
			return u
		}
	}
	return string(id)
}

// PublisherStream is one stream a publisher offers in the room.
type PublisherStream struct {
	Type        string `json:"type"` // audio, video, data
	MIndex      int    `json:"mindex"`
	MID         string `json:"mid"`
	Codec       string `json:"codec,omitempty"`
	Description string `json:"description,omitempty"`
	Disabled    bool   `json:"disabled,omitempty"`
}

// Publisher is an active publisher of a room.
type Publisher struct {
	ID      ID                `json:"id"`
	Display string            `json:"display,omitempty"`
	Streams []PublisherStream `json:"streams,omitempty"`
}

// SubscriberStream is one m-line of a subscription, as "attached" and
// "updated" events list them.
type SubscriberStream struct {
	MIndex          int    `json:"mindex"`
	MID             string `json:"mid"`
	Type            string `json:"type"`
	Active          *bool  `json:"active,omitempty"`
	FeedID          ID     `json:"feed_id,omitempty"`
	FeedMID         string `json:"feed_mid,omitempty"`
	FeedDisplay     string `json:"feed_display,omitempty"`
	FeedDescription string `json:"feed_description,omitempty"`
	Codec           string `json:"codec,omitempty"`
	Send            bool   `json:"send,omitempty"`
}

// roomEvent is the data of a VideoRoom event: which fields are set depends on
// the event ("joined", "event", "attached", "updated", "destroyed", …).
type roomEvent struct {
	VideoRoom   string             `json:"videoroom"`
	ID          ID                 `json:"id,omitempty"`
	PrivateID   uint64             `json:"private_id,omitempty"` // "joined": ties subscriptions to us (require_pvtid)
	Publishers  []Publisher        `json:"publishers,omitempty"`
	Unpublished json.RawMessage    `json:"unpublished,omitempty"` // a participant id, or "ok" for our own
	Leaving     json.RawMessage    `json:"leaving,omitempty"`     // likewise
	Kicked      json.RawMessage    `json:"kicked,omitempty"`
	Streams     []SubscriberStream `json:"streams,omitempty"`
	ErrorCode   int                `json:"error_code,omitempty"`
	Error       string             `json:"error,omitempty"`
}

// parseRoomEvent decodes the VideoRoom data of m, or returns nil when m has
// none.
func parseRoomEvent(m *Message) *roomEvent {
	if m.PluginData == nil || m.PluginData.Plugin != Plugin {
		return nil
	}
	var ev roomEvent
	if json.Unmarshal(m.PluginData.Data, &ev) != nil {
		return nil
	}
	return &ev
}

// participant returns the participant id in a field such as "leaving", or ""
// when the field is absent or names ourselves ("ok").
func participant(raw json.RawMessage) ID {
	var id ID
	if len(raw) == 0 || json.Unmarshal(raw, &id) != nil || id == `"ok"` {
		return ""
	}
	return id
}
