package recorder

import "time"

// ChatEntry is one line of a conversation's chat transcript (seed 004's
// ChatTranscriptEntry).
type ChatEntry struct {
	TimeStamp       time.Time `json:"timeStamp"`
	Transcript      string    `json:"transcript"`
	UserDisplayName string    `json:"userDisplayName,omitempty"`
	UserID          string    `json:"userId"`
}

// CobrowseEvent is one event of a cobrowse session (seed 004's CobrowseEvent).
type CobrowseEvent struct {
	Payload    string `json:"payload"`
	SequenceID int32  `json:"sequenceId"`
	SessionID  string `json:"sessionId"`
	Timestamp  int64  `json:"timestamp"`
}
