// Package pause names what a paused recording writes. It is a leaf, so that
// the recording's manifest (composition) and its configuration can speak of
// it without linking the media hot path.
package pause

import (
	"fmt"
	"strings"
)

// Behavior says what a paused recording writes: "silence" or "skip", the
// spelling of the API, the recording's record and the manifest. The zero
// value is Silence's behaviour.
type Behavior string

const (
	// Silence writes silent frames while paused: the mix keeps its
	// wall-clock timeline.
	Silence Behavior = "silence"
	// Skip writes nothing while paused: the paused interval is cut out of
	// the mix.
	Skip Behavior = "skip"
)

// String returns "silence" or "skip" ("silence" for the zero value).
func (b Behavior) String() string {
	if b == "" {
		return string(Silence)
	}
	return string(b)
}

// ParseBehavior parses "silence" or "skip" (case-insensitive); an empty
// string is Silence.
func ParseBehavior(s string) (Behavior, error) {
	switch strings.ToLower(s) {
	case "", "silence":
		return Silence, nil
	case "skip":
		return Skip, nil
	}
	return Silence, fmt.Errorf("unknown pause behavior %q (want silence or skip)", s)
}
