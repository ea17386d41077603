// Package composition turns a finished recording into its outputs: the mix
// (mix.wav, written live by the mixer), the manifest (manifest.json: the
// timeline of tracks with their start offsets, pause and blackout intervals,
// metadata) and the object keys they are stored under:
//
//	{prefix}/{organizationId}/{conversationId}/{recorderId}/{instanceId}/
//	    tracks/{streamId}-{trackId}.{ogg|webm|mp4|wav}
//	    mix.wav
//	    manifest.json
package composition

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/rtcrec/recorder/media/pause"
	"github.com/rtcrec/recorder/media/wavwriter"
)

// File names within a recording.
const (
	MixFile      = "mix.wav"
	ManifestFile = "manifest.json"
	TracksDir    = "tracks/"
)

// TrackFile returns the relative file name of a track: tracks/{streamId}-{trackId}.{ext}.
func TrackFile(streamID, trackID, ext string) string {
	return TracksDir + streamID + "-" + trackID + "." + ext
}

// Prefix returns the object key prefix of a recording, ending in "/":
// {prefix}/{organizationId}/{conversationId}/{recorderId}/{instanceId}/. The
// ids must already be validated; prefix may be empty.
func Prefix(prefix, organizationID, conversationID, recorderID, instanceID string) string {
	p := organizationID + "/" + conversationID + "/" + recorderID + "/" + instanceID + "/"
	if prefix = strings.Trim(prefix, "/"); prefix != "" {
		p = prefix + "/" + p
	}
	return p
}

// Manifest is manifest.json: everything needed to rebuild the recording's
// timeline from its files.
type Manifest struct {
	Version        int               `json:"version"`
	OrganizationID string            `json:"organizationId"`
	ApplicationID  string            `json:"applicationId"`
	ConversationID string            `json:"conversationId"`
	ConferenceID   string            `json:"conferenceId"`
	RecorderID     string            `json:"recorderId"`
	InstanceID     string            `json:"instanceId"`
	State          string            `json:"state"`
	Started        time.Time         `json:"started"`
	Stopped        time.Time         `json:"stopped"`
	Recovered      *time.Time        `json:"recovered,omitempty"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	Mix            *Mix              `json:"mix,omitempty"`
	Tracks         []Track           `json:"tracks"`
	Pauses         []Interval        `json:"pauses,omitempty"`
	Blackouts      []Interval        `json:"blackouts,omitempty"`
	PauseBehavior  pause.Behavior    `json:"pauseBehavior,omitempty"`
	Chat           *Attachment       `json:"chat,omitempty"`     // chat.json
	Cobrowse       []Attachment      `json:"cobrowse,omitempty"` // cobrowse/{sessionId}/events.json
	// Segments, for a recording that a fleet took over after its owner
	// died: every segment of it in order, this one among them, with where
	// its files are and where it starts on the first segment's timeline.
	Segments []Segment `json:"segments,omitempty"`
	// Continues is the instanceId of the segment this one continues (its
	// back-link); empty for the first.
	Continues string `json:"continues,omitempty"`
}

// Segment is one segment of a recording split by a takeover.
type Segment struct {
	InstanceID string     `json:"instanceId"`
	RecorderID string     `json:"recorderId"`
	Prefix     string     `json:"prefix"` // its objects' key prefix (manifest.json, mix.wav, tracks/…)
	Offset     float64    `json:"offset"` // seconds from the first segment's start
	Started    time.Time  `json:"started"`
	Ended      *time.Time `json:"ended,omitempty"` // unknown while it records
}

// Attachment is a file of the recording other than tracks and mix: the chat
// transcript or one cobrowse session's events.
type Attachment struct {
	File      string `json:"file"`
	SessionID string `json:"sessionId,omitempty"`
	Entries   int    `json:"entries"`
}

// Mix describes mix.wav.
type Mix struct {
	File       string  `json:"file"`
	Format     string  `json:"format"` // wav
	SampleRate int     `json:"sampleRate"`
	Channels   int     `json:"channels"`
	Frames     int64   `json:"frames"`
	Duration   float64 `json:"duration"` // seconds
	Size       int64   `json:"size"`
	SHA256     string  `json:"sha256,omitempty"`
}

// Track is one track of the manifest.
type Track struct {
	StreamID   string  `json:"streamId"`
	TrackID    string  `json:"trackId"`
	UserID     string  `json:"userId"`
	StreamType string  `json:"streamType"`
	Kind       string  `json:"type"` // AUDIO | VIDEO
	Codec      string  `json:"codec"`
	File       string  `json:"file"`
	Offset     float64 `json:"offset"` // seconds from the recording's start
	// MediaOffset is when the track's first packet was written (seconds from
	// the recording's start): the time zero of its file, where the video
	// writers place frames from. For audio with a mix, where the mix placed
	// its first sample: where its sender captured it, which is negative for
	// audio captured before the recording's start (the file holds it, the mix
	// does not). Absent in older manifests and recovered tracks.
	MediaOffset *float64 `json:"mediaOffset,omitempty"`
	// Timing places the track's file by its sender's clock: the RTP
	// timestamp of its first sample and the sender's RTCP sender report.
	// Absent in older manifests and when no packet came.
	Timing   *TrackTiming `json:"timing,omitempty"`
	Duration float64      `json:"duration"` // seconds between started and stopped
	Started  time.Time    `json:"started"`
	Stopped  time.Time    `json:"stopped"`
	Size     int64        `json:"size"`
	SHA256   string       `json:"sha256,omitempty"`
}

// TrackTiming maps a track file's RTP time to wall-clock time. The file's
// first sample has RTP timestamp RTPZero (at ClockRate). When the sender sent
// RTCP sender reports, the latest says its wall clock read SenderReportNTP at
// RTP timestamp SenderReportRTP; so the file's first sample was sent at
// SenderReportNTP + (RTPZero - SenderReportRTP)/ClockRate (signed 32-bit
// difference), on the sender's clock. The recorder's mix places audio by the
// same report when the sender's clock agrees with its own (within 100 ms of
// arrival), and then mediaOffset is that instant; video placed by the same
// formula lines up with its sender's audio.
//
// A sender whose media clock slips against its wall clock (a sound card
// running 0.5 % fast, a capture that stalls and loses 100 ms) sends reports
// whose mapping moves. Mappings keeps every report whose mapping moved more
// than MappingMoved from the one kept before it (the first report is always
// kept), so that the file can be placed piecewise: Steps.
//
// An audio track in a recording with a mix is placed where the live mix
// placed it (MixPlaced): the mix follows the sender's reports only after
// checking them against the packets' arrival (it takes a report stamped
// late back, leaves out one that does not fit), resamples a sender whose
// clock drifts, and pulls back by its packets' arrival a track first placed
// late (its first packets were read late: a loaded recorder, a network
// queue at connect; a sender without reports). Moves keeps its placement,
// each time it moved MappingMoved or more from the one kept before, so that
// the offline mix and the composite place the file where the live mix did
// (Steps), not where the raw reports would. Its Mappings then only say the
// sender's clock (FirstSent), not where its file goes.
type TrackTiming struct {
	ClockRate       uint32     `json:"clockRate"`
	RTPZero         uint32     `json:"rtpZero"`
	SenderReportNTP *time.Time `json:"senderReportNtp,omitempty"`
	SenderReportRTP uint32     `json:"senderReportRtp,omitempty"`
	Mappings        []Mapping  `json:"mappings,omitempty"`
	// Moves are where the live mix placed the file: from File seconds into
	// the file on, its samples lie By seconds later than mediaOffset puts
	// them (negative: earlier), in file order. Without MixPlaced (older
	// manifests) they are the live mix's moves that the mappings do not
	// say, on top of the mappings' steps.
	Moves []Step `json:"moves,omitempty"`
	// MixPlaced says that Moves are the live mix's whole placement of the
	// file: Steps are Moves alone, whatever the mappings say.
	MixPlaced bool `json:"mixPlaced,omitempty"`
	// MixSent is when the file's first sample was sent, on the sender's
	// wall clock, by its reports as the live mix followed them: the
	// instant of the sender's clock that the mix put at mediaOffset (see
	// PlacedSent). The mix checks a report against the packets' arrival
	// before it follows it: a first report stamped late (Pion stamps a
	// report by when it last wrote a packet), which is Mappings[0], is not
	// in it. Absent in older manifests, without a mix, and when the mix
	// followed no report.
	MixSent *time.Time `json:"mixSent,omitempty"`
}

// MappingMoved is how far a sender report's mapping must move from the
// reports before it to be a step of the sender's clock (a capture that
// stalled, a clock that was set), once the next report confirms it by
// placing the audio within as much of it: see ReportMoved.
const MappingMoved = 10 * time.Millisecond

// ReportMoved reports whether a sender report that places the sender's
// audio d later than the reports before it (earlier if negative) moved:
// more than MappingMoved. A report that moved is a step candidate; the next
// report confirms it if it has not moved from it. Less is a report's jitter
// or the sender's clock drifting. It is the one definition of a step for
// the manifest's mappings (recorder's senderClock keeps a confirmed
// candidate in TrackTiming.Mappings, by which the offline mix and the
// composite place a file the live mix did not place: Steps) and for the
// live mix (media's AudioPipeline takes a confirmed step from the
// confirming report on, or a step forward from the gap in its packets that
// began it, and absorbs smaller moves by resampling). It is
// also how far the live mix's placement must move to be kept in
// TrackTiming.Moves.
func ReportMoved(d time.Duration) bool {
	return d > MappingMoved || d < -MappingMoved
}

// Mapping is one sender report of a track: the sender's wall clock read NTP
// at RTP timestamp RTP, which is File seconds into the track's file (from
// its first sample, after a skipped pause's shift).
type Mapping struct {
	NTP  time.Time `json:"ntp"`
	RTP  uint32    `json:"rtp"`
	File float64   `json:"file"`
}

// Step is a change of a file's placement: from File seconds into the file
// on, its samples belong By seconds later than the first mapping puts them
// (negative: earlier).
type Step struct {
	File, By float64
}

// sent returns when the file's first sample was sent by mapping k.
func (t *TrackTiming) sentBy(k Mapping) time.Time {
	d := float64(int32(t.RTPZero-k.RTP)) / float64(t.ClockRate)
	return k.NTP.Add(time.Duration(d * float64(time.Second)))
}

// Steps returns the changes of the file's placement, relative to where
// mediaOffset puts its first sample, in file order: where the live mix
// placed it (Moves) when MixPlaced; otherwise those its mappings say
// (relative to the first mapping), plus the live mix's other moves (Moves).
// None without either. A step at a file time before the previous one's (a
// report out of order) is left out, as is one that says the same as the
// step before.
func (t *TrackTiming) Steps() []Step {
	if t == nil {
		return nil
	}
	var reports []Step
	if !t.MixPlaced {
		reports = t.reportSteps()
	}
	if len(t.Moves) == 0 {
		return reports
	}
	// Both are piecewise constant in file time: their sum changes where
	// either does.
	var out []Step
	i, j := 0, 0
	for i < len(reports) || j < len(t.Moves) {
		var at float64
		switch {
		case j == len(t.Moves) || i < len(reports) && reports[i].File <= t.Moves[j].File:
			at = reports[i].File
			i++
		default:
			at = t.Moves[j].File
			j++
		}
		v := StepAt(reports, at) + StepAt(t.Moves, at)
		if math.IsNaN(at) || math.IsNaN(v) || math.Abs(v) > 3600 || len(out) > 0 && (at < out[len(out)-1].File || v == out[len(out)-1].By) {
			continue
		}
		if len(out) > 0 && at == out[len(out)-1].File {
			out[len(out)-1].By = v
			continue
		}
		out = append(out, Step{File: max(0, at), By: v})
	}
	return out
}

// StepAt returns how far steps (in file order, as Steps returns them) move
// a file's instant f (seconds from its first sample) from where its time
// zero puts it, in seconds: By of the last step at or before f, none before
// the first.
func StepAt(steps []Step, f float64) float64 {
	by := 0.0
	for _, st := range steps {
		if st.File <= f {
			by = st.By
		}
	}
	return by
}

// Placement returns where the track file's instant f (seconds from its
// first sample) lies on the recording's timeline, in seconds, as the
// offline mix and the composite place it: its time zero (MediaOffset, where
// the live mix placed its first sample; Offset in older manifests) moved by
// its timing's step at f (Timing.Steps: the live mix's moves, or its
// sender's reports). Not Started: the file begins at its first packet
// written, which may have been captured before the track was added (a
// first packet that came late: its time zero moved back).
func (t Track) Placement() func(f float64) float64 {
	zero, steps := t.Offset, t.Timing.Steps()
	if t.MediaOffset != nil {
		zero = *t.MediaOffset
	}
	return func(f float64) float64 { return zero + f + StepAt(steps, f) }
}

// reportSteps returns the changes of the file's placement that its
// mappings say, relative to the first mapping, in file order (Steps).
func (t *TrackTiming) reportSteps() []Step {
	if t.ClockRate == 0 || len(t.Mappings) < 2 {
		return nil
	}
	first := t.sentBy(t.Mappings[0])
	var out []Step
	last, prev := 0.0, 0.0
	for _, k := range t.Mappings[1:] {
		by := t.sentBy(k).Sub(first).Seconds()
		at := max(0, k.File)
		if math.IsNaN(by) || math.IsNaN(at) || math.Abs(by) > 3600 || at < last || by == prev {
			continue
		}
		out = append(out, Step{File: at, By: by})
		last, prev = at, by
	}
	return out
}

// FirstSent returns when the file's first sample was sent by the first
// mapping (the one the file is placed by before any step), or by the latest
// sender report for a manifest without mappings.
func (t *TrackTiming) FirstSent() (time.Time, bool) {
	if t != nil && t.ClockRate != 0 && len(t.Mappings) > 0 {
		return t.sentBy(t.Mappings[0]), true
	}
	return t.Sent()
}

// PlacedSent returns when the file's first sample was sent, on the
// sender's wall clock, as the file is placed at mediaOffset: where the live
// mix followed the sender's reports (MixSent), otherwise by the first
// mapping (FirstSent). The sender's instant w is then at mediaOffset +
// (w − PlacedSent) on the recording's timeline: where the composite puts
// the sender's video.
func (t *TrackTiming) PlacedSent() (time.Time, bool) {
	if t != nil && t.MixSent != nil {
		return *t.MixSent, true
	}
	return t.FirstSent()
}

// Sent returns when the file's first sample was sent, on the sender's wall
// clock, by its latest sender report; ok is false without one (or without
// t).
func (t *TrackTiming) Sent() (time.Time, bool) {
	if t == nil || t.SenderReportNTP == nil || t.ClockRate == 0 {
		return time.Time{}, false
	}
	d := float64(int32(t.RTPZero-t.SenderReportRTP)) / float64(t.ClockRate)
	return t.SenderReportNTP.Add(time.Duration(d * float64(time.Second))), true
}

// Interval is a time span relative to the recording's start, in seconds: a
// pause (the whole recording) or a blackout (one participant, UserID).
// MixStart and MixEnd are its positions in the mix's timeline, in seconds
// (equal for a pause with pauseBehavior skip, whose interval is cut out);
// StartTime and EndTime are the wall-clock times.
type Interval struct {
	Start     float64   `json:"start"`
	End       float64   `json:"end"`
	UserID    string    `json:"userId,omitempty"`
	MixStart  *float64  `json:"mixStart,omitempty"`
	MixEnd    *float64  `json:"mixEnd,omitempty"`
	StartTime time.Time `json:"startTime,omitzero"`
	EndTime   time.Time `json:"endTime,omitzero"`
}

// WriteManifest writes m as indented JSON to path, atomically (temporary file
// and rename), so a reader never sees half a manifest.
func WriteManifest(path string, m *Manifest) error {
	if m.Version == 0 {
		m.Version = 1
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("composition: manifest: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o640); err != nil {
		return fmt.Errorf("composition: manifest: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("composition: manifest: %w", err)
	}
	return nil
}

// ReadManifest reads a manifest.json.
func ReadManifest(r io.Reader) (*Manifest, error) {
	var m Manifest
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		return nil, fmt.Errorf("composition: manifest: %w", err)
	}
	return &m, nil
}

// ReadMix returns the description of the mix WAV at path from its header.
func ReadMix(path string) (*Mix, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("composition: mix: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("composition: mix: %w", err)
	}
	buf := make([]byte, 512)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF {
		return nil, fmt.Errorf("composition: mix %s: %w", path, err)
	}
	h, err := wavwriter.ParseHeader(buf[:n])
	if err != nil {
		return nil, fmt.Errorf("composition: mix %s: %w", path, err)
	}
	return mixFromHeader(h, fi.Size()), nil
}

func mixFromHeader(h wavwriter.Header, fileSize int64) *Mix {
	data := int64(h.DataSize)
	if avail := fileSize - h.DataOffset; data > avail || h.DataSize == ^uint32(0) {
		data = avail // streaming header or a file cut short
	}
	frames := data / int64(h.BlockAlign)
	return &Mix{
		File: MixFile, Format: "wav", SampleRate: h.SampleRate, Channels: h.Channels, Frames: frames,
		Duration: float64(frames) / float64(h.SampleRate), Size: fileSize,
	}
}
