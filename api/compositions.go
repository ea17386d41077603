package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/rtcrec/recorder/composition/composite"
	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/recorder"
)

// requestComposite is POST /api/compositions/{conversationId}/{recorderId}/{instanceId}:
// make the composite video (composite.mp4) of an ended recording. The body is
// optional: {"layout":"grid|speaker|single","width":1280,"height":720,"fps":15,"userId":…};
// without one the recording's own request, the application's default or a
// 1280×720 15 fps grid. 202 with the recording and its composition (PENDING).
func (s *Server) requestComposite(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "the body is larger than "+strconv.Itoa(MaxBody)+" bytes")
			return
		}
		writeError(w, http.StatusBadRequest, "malformed_json", "cannot read the body: "+err.Error())
		return
	}
	var settings *composite.Settings
	if len(bytes.TrimSpace(body)) > 0 {
		settings = &composite.Settings{}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(settings); err != nil || dec.More() {
			if err == nil {
				err = errors.New("more than one JSON value")
			}
			writeError(w, http.StatusBadRequest, "malformed_json", "the body is not a composite request: "+err.Error())
			return
		}
	}
	c, rid, i := ids(r)
	rec, err := s.m.RequestComposite(r.Context(), k.OrganizationID, c, rid, i, settings)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sign := s.signer(r.Context(), rec)
	msg := messageOf(rec, sign)
	msg.Composition = compositionOf(rec, sign, ts(time.Now().Add(s.ttl)))
	writeJSON(w, http.StatusAccepted, msg)
}

// compositionOf is the composition of rec with signed URLs valid until until.
func compositionOf(rec *recorder.Recording, sign func(key string) string, until string) *CompositionData {
	c := rec.Composition
	if c == nil {
		return &CompositionData{State: "PENDING", Outputs: []CompositionOutput{}}
	}
	cd := &CompositionData{State: c.State.String(), Outputs: []CompositionOutput{}, Error: errorData(c.Error)}
	for _, o := range c.Outputs {
		co := CompositionOutput{Type: o.Type, Format: o.Format, SampleRate: o.SampleRate, Channels: o.Channels, Duration: o.Duration,
			Layout: o.Layout, Width: o.Width, Height: o.Height, FPS: o.FPS}
		if o.Object != nil && o.Object.Error == nil {
			co.Location, co.Size, co.SHA256 = publicLocation(rec, o.Object.Location), size(o.Object.Size), o.Object.SHA256
			if co.URL = sign(o.Object.Key); co.URL != "" {
				co.ValidUntil = until
			}
		}
		cd.Outputs = append(cd.Outputs, co)
	}
	if m := c.Manifest; m != nil && m.Error == nil {
		cd.Manifest = &SignedObject{Location: publicLocation(rec, m.Location), URL: sign(m.Key)}
		if cd.Manifest.URL != "" {
			cd.Manifest.ValidUntil = until
		}
	}
	return cd
}
