package events_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/rtcrec/recorder/recorder/events"
)

// A webhook receiver checks each request before trusting it, and
// deduplicates on the event id (delivery is at least once).
func ExampleVerifySignature() {
	const secret = "whsec-app1"
	seen := map[int64]bool{}
	receiver := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		id, err := events.VerifySignature(secret, r.Header, body, time.Now(), 5*time.Minute)
		if err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if !seen[id] {
			seen[id] = true
			fmt.Printf("event %d: %s\n", id, body)
		}
		w.WriteHeader(http.StatusNoContent) // acknowledged: no retry
	})

	// What the Bus sends for event 42:
	body := `{"id":42,"type":"state.updated","organizationId":"org1","applicationId":"app1","occurred":"2026-11-21T12:00:00Z","data":{"state":"STOPPED"}}`
	for range 2 { // a retry of the same event is acknowledged and ignored
		ts := time.Now().Unix()
		req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(body))
		req.Header.Set(events.HeaderEventID, "42")
		req.Header.Set(events.HeaderTimestamp, fmt.Sprint(ts))
		req.Header.Set(events.HeaderSignature, events.Sign(secret, 42, ts, []byte(body)))
		rec := httptest.NewRecorder()
		receiver.ServeHTTP(rec, req)
		fmt.Println(rec.Code)
	}
	// Output:
	// event 42: {"id":42,"type":"state.updated","organizationId":"org1","applicationId":"app1","occurred":"2026-11-21T12:00:00Z","data":{"state":"STOPPED"}}
	// 204
	// 204
}
