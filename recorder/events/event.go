// Package events is the recorder's event outbox: every state change, pause,
// resume, blackout, upload and composition result becomes an Event that is
// persisted first (in the store's outbox tables, recorder/store outbox.go) and
// then published to Server-Sent Events subscribers (GET /api/events) and to
// signed webhooks. With a store shared by a fleet (PostgreSQL), every
// instance's subscribers see every event of their organization and each
// delivery is made by one instance.
//
// Guarantees:
//   - An Event returned by Bus.Publish is committed to the store; its ID is
//     the next number of its organization (1, 2, 3, …), so an organization's
//     IDs say nothing about another's activity.
//   - SSE subscribers of an organization see that organization's events in ID
//     order, without gaps or duplicates, including across a reconnect with
//     Last-Event-ID (replayed from the outbox, then live) and on any instance.
//     A subscriber that cannot keep up is disconnected, never waited for.
//   - Each webhook matching an event gets it at least once, in ID order per
//     endpoint URL (an endpoint belongs to one application, hence one
//     organization), signed (see Sign), retried with exponential backoff and
//     jitter until it answers 2xx or the event is older than Options.MaxAge.
//     An attempt holds a lease on the delivery in the store, so a fleet makes
//     it once; a lease that lapses (its instance died) lets another instance
//     send it. Delivery state is persisted, so pending deliveries survive a
//     restart.
package events

import (
	"encoding/json"
	"time"
)

// Type names what happened. The set is open: the service may publish other
// types; webhooks filter on the exact string.
type Type string

// The event types the recorder publishes.
const (
	StateUpdated          Type = "state.updated"
	RecordingPaused       Type = "recording.paused"
	RecordingResumed      Type = "recording.resumed"
	BlackoutStarted       Type = "blackout.started"
	BlackoutStopped       Type = "blackout.stopped"
	UploadCompleted       Type = "upload.completed"
	UploadFailed          Type = "upload.failed"
	CompositionPending    Type = "composition.pending"    // a composite video is queued
	CompositionProcessing Type = "composition.processing" // ffmpeg is making it
	CompositionCompleted  Type = "composition.completed"
	CompositionFailed     Type = "composition.failed"
)

// String returns the type's wire name, for example "state.updated".
func (t Type) String() string { return string(t) }

// Event is one thing that happened to a recording of an organization. Its JSON
// form is the SSE data line and the webhook body.
type Event struct {
	// ID is assigned by Publish: positive, the next of its organization.
	ID             int64  `json:"id"`
	Type           Type   `json:"type"`
	OrganizationID string `json:"organizationId"`
	ApplicationID  string `json:"applicationId"`
	// Occurred is when it happened, in UTC; Publish sets it to now when zero.
	// It is marshalled as RFC 3339 with nanoseconds.
	Occurred time.Time       `json:"occurred"`
	Data     json.RawMessage `json:"data"`
}
