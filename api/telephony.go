package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/media/wavwriter"
	"github.com/rtcrec/recorder/recorder"
	"github.com/rtcrec/recorder/storage"
)

// The telephony view (seed 001): the same recordings as /api, by id, with
// telephony status, snake_case fields and tm_* times.

// TelephonyRecording is seed 001's Recording.
type TelephonyRecording struct {
	ID            string `json:"id"`
	CustomerID    string `json:"customer_id"`
	OwnerType     string `json:"owner_type"` // agent | ""
	OwnerID       string `json:"owner_id"`
	ActiveflowID  string `json:"activeflow_id"`
	ReferenceType string `json:"reference_type"` // call | confbridge
	ReferenceID   string `json:"reference_id"`
	Status        string `json:"status"` // initiating | recording | stopping | ended
	Format        string `json:"format"` // wav
	OnEndFlowID   string `json:"on_end_flow_id"`
	TMStart       string `json:"tm_start"`
	TMEnd         string `json:"tm_end"`
	TMCreate      string `json:"tm_create"`
	TMUpdate      string `json:"tm_update"`
	TMDelete      string `json:"tm_delete"`
}

// TelephonyList is a page of GET /v1/recordings.
type TelephonyList struct {
	Result        []TelephonyRecording `json:"result"`
	NextPageToken string               `json:"next_page_token"`
}

// The telephony statuses, reference types and time format of seed 001.
const (
	StatusInitiating = "initiating"
	StatusRecording  = "recording"
	StatusStopping   = "stopping"
	StatusEnded      = "ended"
	// StatusFailed is our addition to seed 001's statuses: the recording
	// ended without a file (its error says why, in the seed-004 views).
	StatusFailed = "failed"

	ReferenceCall       = "call"
	ReferenceConfbridge = "confbridge"

	// TelephonyTimeFormat is the layout of tm_* fields; NotYet is a time
	// that has not happened (seed 001's sentinel).
	TelephonyTimeFormat = "2006-01-02 15:04:05.000000"
	NotYet              = "9999-01-01 00:00:00.000000"
	nilUUID             = "00000000-0000-0000-0000-000000000000"
)

func tmTime(t time.Time) string {
	if t.IsZero() {
		return NotYet
	}
	return t.UTC().Format(TelephonyTimeFormat)
}

// telephonyStatus maps a recording to seed 001's status: initiating until
// ACTIVE, recording while ACTIVE, stopping while its files are written and
// uploaded (or recovered), ended when final; failed (ours) when it failed
// without a mix to download.
func telephonyStatus(r *recorder.Recording, finishing bool) string {
	switch {
	case r.State == recorder.StateFailed && !r.UploadsPending() && !hasMix(r):
		return StatusFailed
	case r.State.Final() && !r.UploadsPending():
		return StatusEnded
	case finishing || r.State == recorder.StatePendingRecovery || r.UploadsPending(): // uploads still retried (recorder/uploads.go)
		return StatusStopping
	case r.State == recorder.StateActive:
		return StatusRecording
	}
	return StatusInitiating
}

// referenceType is "call" for a recording of at most two participants,
// "confbridge" for more.
func referenceType(r *recorder.Recording) string {
	users := map[string]bool{}
	for _, s := range r.Streams {
		users[s.UserID] = true
	}
	if len(users) > 2 {
		return ReferenceConfbridge
	}
	return ReferenceCall
}

func (s *Server) telephonyOf(r *recorder.Recording) TelephonyRecording {
	t := TelephonyRecording{ID: r.InstanceID, CustomerID: s.m.Config().CustomerID(r.OrganizationID), OwnerType: "", OwnerID: nilUUID,
		ActiveflowID: nilUUID, ReferenceType: referenceType(r), ReferenceID: r.ConferenceID,
		Status: telephonyStatus(r, s.m.Finishing(r.InstanceID)), Format: "wav", OnEndFlowID: nilUUID,
		TMStart: tmTime(r.Started), TMEnd: tmTime(r.Stopped), TMCreate: tmTime(r.Created),
		TMUpdate: tmTime(r.Updated), TMDelete: tmTime(r.Deleted)}
	if t.TMUpdate == NotYet {
		t.TMUpdate = t.TMCreate
	}
	if agent := r.Metadata["agentId"]; agent != "" {
		t.OwnerType, t.OwnerID = "agent", agent
		if _, err := uuid.Parse(agent); err != nil { // seed 003's integer ids get a name-based UUID
			t.OwnerID = config.NameUUID(r.OrganizationID, "agent/"+agent)
		}
	}
	return t
}

// telephonyRoutes are seed 001's routes, at the seed's own paths and under
// /v1. The {id} of a call or conference route is a conferenceId; the
// recording it starts has conversationId = conferenceId.
func (s *Server) telephonyRoutes() []Route {
	key := func(h authed) http.Handler { return s.auth(h) }
	var rs []Route
	for _, base := range []string{"", "/v1"} {
		rs = append(rs,
			Route{Method: "GET", Path: base + "/recordings", Seed: "001", handler: key(s.telList)},
			Route{Method: "GET", Path: base + "/recordings/{id}", Seed: "001", handler: key(s.telGet)},
			Route{Method: "DELETE", Path: base + "/recordings/{id}", Seed: "001", handler: key(s.telDelete)},
			Route{Method: "GET", Path: base + "/recordingfiles/{id}", Seed: "001", handler: key(s.telFile)},
		)
		for _, kind := range []string{"calls", "conferences"} {
			rs = append(rs,
				Route{Method: "POST", Path: base + "/" + kind + "/{id}/recording_start", Seed: "001", handler: key(s.telStart)},
				Route{Method: "POST", Path: base + "/" + kind + "/{id}/recording_stop", Seed: "001", handler: key(s.telStop)},
			)
		}
	}
	return rs
}

// CallRecordingStart is the optional body of POST /calls/{id}/recording_start.
type CallRecordingStart struct {
	ApplicationID string            `json:"application_id"` // default: the key's only application, or "default"
	Format        string            `json:"format"`         // wav (the only one)
	Metadata      map[string]string `json:"metadata"`
}

// telStart starts recording the conference {id} (conversationId = {id}).
func (s *Server) telStart(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	var cmd CallRecordingStart
	if r.ContentLength != 0 && !decode(w, r, &cmd) {
		return
	}
	if cmd.Format != "" && cmd.Format != "wav" {
		writeError(w, http.StatusBadRequest, "invalid_field", "format must be wav")
		return
	}
	conf := r.PathValue("id")
	if err := recorder.ValidateID("id", conf); err != nil {
		s.fail(w, r, err)
		return
	}
	app, err := s.application(k, cmd.ApplicationID)
	if err == nil {
		var rec *recorder.Recording
		rec, err = s.m.Start(r.Context(), k.OrganizationID, recorder.StartRequest{ApplicationID: app, ConferenceID: conf,
			ConversationID: conf, Audio: true, Metadata: cmd.Metadata})
		if err == nil {
			writeJSON(w, http.StatusOK, s.telephonyOf(rec))
			return
		}
	}
	s.fail(w, r, err)
}

// telStop stops the recordings of the conference {id} (duplicates and screen
// recordings too) and returns the newest, once its file is uploaded.
func (s *Server) telStop(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	conf := r.PathValue("id")
	if err := recorder.ValidateID("id", conf); err != nil {
		s.fail(w, r, err)
		return
	}
	var last *recorder.Recording
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Minute)
	defer cancel()
	for _, rec := range s.m.Running(k.OrganizationID) {
		if rec.ConferenceID != conf {
			continue
		}
		stopped, err := s.m.Stop(ctx, k.OrganizationID, rec.ConversationID, rec.RecorderID, rec.InstanceID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		last = stopped
	}
	if last == nil {
		writeError(w, http.StatusConflict, "not_recording", "call "+conf+" is not being recorded")
		return
	}
	writeJSON(w, http.StatusOK, s.telephonyOf(last))
}

func (s *Server) telList(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	q := r.URL.Query()
	size := 100
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "invalid_field", "page_size must be 1 to 1000")
			return
		}
		size = n
	}
	status, refID, refType := q.Get("status"), q.Get("reference_id"), q.Get("reference_type")
	switch status {
	case "", StatusInitiating, StatusRecording, StatusStopping, StatusEnded:
	default:
		writeError(w, http.StatusBadRequest, "invalid_field", "status must be initiating, recording, stopping or ended")
		return
	}
	switch refType {
	case "", ReferenceCall, ReferenceConfbridge:
	default:
		writeError(w, http.StatusBadRequest, "invalid_field", "reference_type must be call or confbridge")
		return
	}
	page, err := s.m.List(r.Context(), k.OrganizationID, size, q.Get("page_token"), func(rec *recorder.Recording) bool {
		t := s.telephonyOf(rec)
		return (status == "" || t.Status == status) && (refID == "" || t.ReferenceID == refID) &&
			(refType == "" || t.ReferenceType == refType)
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := TelephonyList{Result: []TelephonyRecording{}, NextPageToken: page.Next}
	for _, rec := range page.Recordings {
		out.Result = append(out.Result, s.telephonyOf(rec))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) telGet(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	rec, err := s.m.ByID(r.Context(), k.OrganizationID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.telephonyOf(rec))
}

func (s *Server) telDelete(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	rec, err := s.m.Delete(r.Context(), k.OrganizationID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.telephonyOf(rec))
}

// mixKey returns the object key of rec's uploaded mix, or "".
func mixKey(rec *recorder.Recording) string {
	if c := rec.Composition; c != nil {
		for _, o := range c.Outputs {
			if o.Type != "VIDEO" && o.Object != nil && o.Object.Error == nil { // the mix, not the composite video
				return o.Object.Key
			}
		}
	}
	return ""
}

func hasMix(rec *recorder.Recording) bool { return mixKey(rec) != "" }

// emptyWAV is a 16-bit PCM WAV of rate and channels without samples.
func emptyWAV(rate, channels int) []byte {
	var b memFile
	if w, err := wavwriter.NewWith(&b, wavwriter.WithSampleRate(rate), wavwriter.WithChannels(channels)); err == nil {
		w.Close()
	}
	return b.b
}

// memFile is an in-memory io.Writer and io.WriterAt.
type memFile struct{ b []byte }

func (m *memFile) Write(p []byte) (int, error) { m.b = append(m.b, p...); return len(p), nil }

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	return copy(m.b[off:], p), nil
}

// telFile redirects (307) to a signed URL of the recording's mix.
func (s *Server) telFile(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	rec, err := s.m.ByID(r.Context(), k.OrganizationID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !rec.Deleted.IsZero() {
		writeError(w, http.StatusNotFound, "deleted", "recording "+rec.InstanceID+" was deleted")
		return
	}
	key := mixKey(rec)
	if key == "" {
		switch {
		case !rec.State.Final() || rec.UploadsPending():
			writeError(w, http.StatusConflict, "not_ended", "recording "+rec.InstanceID+" has not ended: its file is not ready")
		case rec.State == recorder.StateAborted && !rec.HadMedia():
			// Nothing was heard: the file is a WAV without samples.
			w.Header().Set("Content-Type", "audio/wav")
			w.Header().Set("Content-Disposition", `attachment; filename="`+rec.InstanceID+`.wav"`)
			w.Header().Set("Cache-Control", "no-store")
			w.Write(emptyWAV(rec.Mix.SampleRate, rec.Mix.Channels))
		default:
			msg := "recording " + rec.InstanceID + " has no uploaded file"
			if rec.Error != nil {
				msg += ": " + rec.Error.Code.String() + ": " + rec.Error.Message
			}
			writeError(w, http.StatusNotFound, "no_file", msg)
		}
		return
	}
	b, err := s.m.Bucket(r.Context(), rec.ApplicationID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := b.SignedURL(r.Context(), key, &storage.SignedURLOptions{Method: http.MethodGet, Expiry: s.ttl})
	if err != nil {
		s.fail(w, r, &recorder.Error{Kind: recorder.KindUnavailable, Reason: "storage_unavailable", Message: "cannot sign the URL", Err: err})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u, http.StatusTemporaryRedirect)
}
