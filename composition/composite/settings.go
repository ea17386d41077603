// Package composite builds composite.mp4, one playable video of a whole
// recorded conference, from a recording's per-track files, its mix and its
// manifest. ffmpeg does the decoding, the layout and the H.264 encoding as a
// subprocess; this package plans the timeline (plan.go: which participant
// is shown where, when), picks the active speaker from the audio levels
// (speaker.go), writes the filter graph (graph.go) and runs ffmpeg
// (composite.go).
//
// The timeline is the recording's, the mix's: tracks are placed at their
// manifest offsets; a pause with pauseBehavior "silence" shows a black
// picture marked "paused" (the mix is silent there), with "skip" it is cut
// out exactly as in the mix and the track files; a blacked-out
// participant's tile carries a marker (the mix holds no audio of them).
package composite

import (
	"fmt"
	"strings"
)

// Layouts.
const (
	LayoutGrid    = "grid"    // every participant, re-laid out as people join and leave
	LayoutSpeaker = "speaker" // the active speaker large, the others in a strip
	LayoutSingle  = "single"  // one userId
)

// Settings are what a caller asks of a composite (the start request's
// "composite" object, an application default, or the compose command's flags).
type Settings struct {
	Layout string `json:"layout" yaml:"layout"`                     // grid | speaker | single; grid when empty
	Width  int    `json:"width,omitempty" yaml:"width"`             // 1280 when 0
	Height int    `json:"height,omitempty" yaml:"height"`           // 720 when 0
	FPS    int    `json:"fps,omitempty" yaml:"fps"`                 // 15 when 0
	UserID string `json:"userId,omitempty" yaml:"userId,omitempty"` // the participant of "single"
}

// WithDefaults returns s with its zero fields set to the defaults: grid,
// 1280×720, 15 fps.
func (s Settings) WithDefaults() Settings {
	if s.Layout == "" {
		s.Layout = LayoutGrid
	}
	if s.Width == 0 {
		s.Width = 1280
	}
	if s.Height == 0 {
		s.Height = 720
	}
	if s.FPS == 0 {
		s.FPS = 15
	}
	return s
}

// Validate reports what is wrong with s (after WithDefaults), in words a
// caller can act on.
func (s Settings) Validate() error {
	switch s.Layout {
	case LayoutGrid, LayoutSpeaker:
		if s.UserID != "" {
			return fmt.Errorf("composite: userId is only for the single layout")
		}
	case LayoutSingle:
		if s.UserID == "" {
			return fmt.Errorf("composite: the single layout needs a userId")
		}
		if len(s.UserID) > 256 || strings.ContainsAny(s.UserID, "\x00\r\n") {
			return fmt.Errorf("composite: userId is not a valid participant id")
		}
	default:
		return fmt.Errorf("composite: layout %q is not grid, speaker or single", s.Layout)
	}
	if s.Width < 160 || s.Width > 3840 || s.Height < 90 || s.Height > 2160 || s.Width%2 != 0 || s.Height%2 != 0 {
		return fmt.Errorf("composite: size %dx%d is not even and within 160x90 to 3840x2160", s.Width, s.Height)
	}
	if s.FPS < 1 || s.FPS > 60 {
		return fmt.Errorf("composite: fps %d is not within 1 to 60", s.FPS)
	}
	return nil
}
