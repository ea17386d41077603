package api

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/recorder"
)

// The operator routes the console and the CLI client use (not from a seed):
// a search over the organization's recordings and the files of one recording
// with their signed URLs and checksums.

// RecordingSummary is one recording in GET /api/recordings.
type RecordingSummary struct {
	ApplicationID  string     `json:"applicationId"`
	ConferenceID   string     `json:"conferenceId"`
	ConversationID string     `json:"conversationId"`
	RecorderID     string     `json:"recorderId"`
	InstanceID     string     `json:"instanceId"`
	State          string     `json:"state"`
	Paused         bool       `json:"paused"`
	BlackedOut     []string   `json:"blackedOut"`   // participants blacked out now
	Participants   []string   `json:"participants"` // userIds, in order of arrival
	Started        string     `json:"started,omitempty"`
	Stopped        string     `json:"stopped,omitempty"`
	Duration       float64    `json:"duration"` // seconds: until now while it runs
	Error          *ErrorData `json:"error,omitempty"`
}

// RecordingList is a page of GET /api/recordings, newest first.
type RecordingList struct {
	Recordings    []RecordingSummary `json:"recordings"`
	NextPageToken string             `json:"nextPageToken,omitempty"`
}

// RecordingFile is one stored file of a recording.
type RecordingFile struct {
	File       string     `json:"file"` // path in the recording: tracks/…, mix.wav, manifest.json, chat.json, cobrowse/…
	Kind       string     `json:"kind"` // track | mix | manifest | chat | cobrowse
	UserID     string     `json:"userId,omitempty"`
	Size       int64      `json:"size"`
	SHA256     string     `json:"sha256,omitempty"`
	URL        string     `json:"url,omitempty"` // signed; absent until uploaded
	ValidUntil string     `json:"validUntil,omitempty"`
	Uploaded   string     `json:"uploaded,omitempty"`
	Error      *ErrorData `json:"error,omitempty"` // the upload's last error
}

// RecordingFiles is GET /api/recordings/{c}/{r}/{i}/files.
type RecordingFiles struct {
	ConversationID string          `json:"conversationId"`
	RecorderID     string          `json:"recorderId"`
	InstanceID     string          `json:"instanceId"`
	State          string          `json:"state"`
	Files          []RecordingFile `json:"files"`
}

// searchFilter is the query of GET /api/recordings.
type searchFilter struct {
	states                                []string
	conversation, conference, participant string
	from, to                              time.Time
}

func (f *searchFilter) keep(r *recorder.Recording) bool {
	if len(f.states) > 0 && !slices.Contains(f.states, string(r.State)) {
		return false
	}
	if (f.conversation != "" && r.ConversationID != f.conversation) || (f.conference != "" && r.ConferenceID != f.conference) {
		return false
	}
	if f.participant != "" && !slices.ContainsFunc(r.Streams, func(s *recorder.Stream) bool { return s.UserID == f.participant }) {
		return false
	}
	when := r.Started
	if when.IsZero() {
		when = r.Created
	}
	return (f.from.IsZero() || !when.Before(f.from)) && (f.to.IsZero() || when.Before(f.to))
}

// search serves GET /api/recordings?state=&conversationId=&conferenceId=
// &participant=&from=&to=&limit=&pageToken=: the organization's recordings
// (deleted ones left out), newest first.
func (s *Server) search(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	q := r.URL.Query()
	var f searchFilter
	bad := func(field, msg string) {
		writeError(w, http.StatusBadRequest, "invalid_field", field+": "+msg)
	}
	if v := q.Get("state"); v != "" {
		for st := range strings.SplitSeq(v, ",") {
			switch recorder.State(st) {
			case recorder.StateInitialised, recorder.StateActive, recorder.StateStopped, recorder.StateFailed,
				recorder.StateAborted, recorder.StatePendingRecovery:
				f.states = append(f.states, st)
			default:
				bad("state", "unknown state "+strconv.Quote(st))
				return
			}
		}
	}
	for _, p := range []struct {
		name string
		v    *string
	}{{"conversationId", &f.conversation}, {"conferenceId", &f.conference}, {"participant", &f.participant}} {
		if v := q.Get(p.name); v != "" {
			if err := recorder.ValidateID(p.name, v); err != nil {
				s.fail(w, r, err)
				return
			}
			*p.v = v
		}
	}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"from", &f.from}, {"to", &f.to}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				bad(p.name, "want an RFC 3339 time such as 2026-01-02T15:04:05Z")
				return
			}
			*p.t = t
		}
	}
	limit := 20
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			bad("limit", "want a number from 1 to 100")
			return
		}
		limit = n
	}
	page, err := s.m.List(r.Context(), k.OrganizationID, limit, q.Get("pageToken"), func(rec *recorder.Recording) bool {
		return rec.Deleted.IsZero() && k.Allows(rec.ApplicationID) && f.keep(rec)
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := RecordingList{Recordings: make([]RecordingSummary, 0, len(page.Recordings)), NextPageToken: page.Next}
	now := time.Now()
	for _, rec := range page.Recordings {
		out.Recordings = append(out.Recordings, summaryOf(rec, now))
	}
	writeJSON(w, http.StatusOK, out)
}

func summaryOf(r *recorder.Recording, now time.Time) RecordingSummary {
	sum := RecordingSummary{
		ApplicationID: r.ApplicationID, ConferenceID: r.ConferenceID, ConversationID: r.ConversationID,
		RecorderID: r.RecorderID, InstanceID: r.InstanceID, State: string(r.State),
		Paused:     r.Paused && r.State == recorder.StateActive,
		BlackedOut: []string{}, Participants: []string{},
		Started: ts(r.Started), Stopped: ts(r.Stopped), Error: errorData(r.Error),
	}
	for _, st := range r.Streams {
		if !slices.Contains(sum.Participants, st.UserID) {
			sum.Participants = append(sum.Participants, st.UserID)
		}
	}
	for _, b := range r.Blackouts {
		if b.End.IsZero() && !slices.Contains(sum.BlackedOut, b.UserID) {
			sum.BlackedOut = append(sum.BlackedOut, b.UserID)
		}
	}
	if !r.Started.IsZero() {
		end := r.Stopped
		if end.IsZero() {
			end = now
		}
		sum.Duration = end.Sub(r.Started).Seconds()
	}
	return sum
}

// files serves GET /api/recordings/{c}/{r}/{i}/files: every file of the
// recording with its size, SHA-256 and signed URL once uploaded.
func (s *Server) files(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	rec, ok := s.get(w, r, k)
	if !ok {
		return
	}
	sign := s.signer(r.Context(), rec)
	until := ts(time.Now().Add(s.ttl))
	out := RecordingFiles{ConversationID: rec.ConversationID, RecorderID: rec.RecorderID, InstanceID: rec.InstanceID,
		State: string(rec.State), Files: []RecordingFile{}}
	add := func(file, kind, user string, o *recorder.ObjectFile) {
		f := RecordingFile{File: file, Kind: kind, UserID: user}
		if o != nil {
			f.Size, f.SHA256, f.Uploaded, f.Error = o.Size, o.SHA256, ts(o.Uploaded), errorData(o.Error)
			if o.Error == nil && o.Key != "" && rec.Deleted.IsZero() {
				if f.URL = sign(o.Key); f.URL != "" {
					f.ValidUntil = until
				}
			}
		}
		out.Files = append(out.Files, f)
	}
	for _, st := range rec.Streams {
		for _, t := range st.Tracks {
			add(t.File, "track", st.UserID, t.Object)
		}
	}
	if c := rec.Composition; c != nil {
		for _, o := range c.Outputs {
			add(o.File, "mix", "", o.Object)
		}
		if c.Manifest != nil {
			add("manifest.json", "manifest", "", c.Manifest)
		}
	}
	paths := make([]string, 0, len(rec.Uploads))
	for p := range rec.Uploads {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		kind := "cobrowse"
		if p == "chat.json" {
			kind = "chat"
		}
		add(p, kind, "", rec.Uploads[p])
	}
	writeJSON(w, http.StatusOK, out)
}
