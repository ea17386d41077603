package httperr

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWrite(t *testing.T) {
	for _, tc := range []struct {
		name, requestID string
	}{{"with request id", "r-1"}, {"without", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			if tc.requestID != "" {
				w.Header().Set(RequestIDHeader, tc.requestID)
			}
			Write(w, http.StatusNotFound, "not_found", "no such thing")
			if w.Code != http.StatusNotFound {
				t.Errorf("status %d, want 404", w.Code)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var got map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{"code": float64(404), "message": "no such thing", "reason": "not_found"}
			if tc.requestID != "" {
				want["requestId"] = tc.requestID
			}
			if len(got) != len(want) {
				t.Errorf("body %v, want %v", got, want)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
		})
	}
}
