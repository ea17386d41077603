package api

import (
	"net/http"
	"sync"
	"testing"

	"github.com/rtcrec/recorder/internal/contract"
)

// The contract test: every service the API tests start (startServiceConfig)
// has its handler wrapped by contractCheck, which validates each request and
// response against api/openapi.json. A response whose status, header or
// field the document lacks, a route the document lacks, or a request the
// server accepted although the document forbids it fails the test that made
// it.

var loadContract = sync.OnceValues(func() (*contract.Doc, error) { return contract.Load(openAPIDocument) })

// contractCheck wraps a service's handler with the contract validation
// (internal/contract); violations are reported on t when it ends.
func contractCheck(t testing.TB, h http.Handler) http.Handler {
	doc, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	return contract.Handler(t, doc, h)
}

// validateExchange checks one request and its response against the document.
func validateExchange(req *http.Request, body []byte, status int, header http.Header, respBody []byte) error {
	doc, err := loadContract()
	if err != nil {
		return err
	}
	return doc.Validate(req, body, status, header, respBody)
}

// TestContract_FailsOnUndocumentedField: the check rejects a response with
// a field the document lacks, a route it lacks, and a status it lacks.
func TestContract_FailsOnUndocumentedField(t *testing.T) {
	get := func(path string) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, "http://recorder"+path, nil)
		return r
	}
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	ok := `{"conversationId":"c","instanceId":"i","recorderId":"r","state":"ACTIVE"}`
	if err := validateExchange(get("/api/recordings/c/r/i/state"), nil, 200, jsonHeader, []byte(ok)); err != nil {
		t.Fatalf("a documented response was refused: %v", err)
	}
	extra := `{"conversationId":"c","instanceId":"i","recorderId":"r","state":"ACTIVE","secret":"x"}`
	if err := validateExchange(get("/api/recordings/c/r/i/state"), nil, 200, jsonHeader, []byte(extra)); err == nil {
		t.Error("a response with an undocumented field passed")
	}
	if err := validateExchange(get("/api/nothing-here"), nil, 200, jsonHeader, []byte(`{}`)); err == nil {
		t.Error("an undocumented route passed")
	}
	if err := validateExchange(get("/api/recordings/c/r/i/state"), nil, 299, jsonHeader, []byte(ok)); err != nil {
		t.Logf("an undocumented status is refused: %v", err)
	} else {
		t.Error("an undocumented status passed")
	}
}

// TestContract_MixSettings: a start's mix is "none" or an object whose
// latency is a duration string or nanoseconds (config.MixSettings's JSON),
// and nothing else.
func TestContract_MixSettings(t *testing.T) {
	start := func() *http.Request {
		r, _ := http.NewRequest(http.MethodPost, "http://recorder/api/recordings/start", nil)
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	ok := []byte(`{"conversationId":"c","instanceId":"i","recorderId":"r","state":"ACTIVE"}`)
	for mix, valid := range map[string]bool{
		`"none"`:                              true,
		`{"latency":"5s","sampleRate":16000}`: true,
		`{"latency":5000000000,"channels":1}`: true,
		`"all"`:                               false,
		`{"latency":"5s","volume":3}`:         false,
	} {
		body := []byte(`{"applicationId":"app1","conferenceId":"c","conversationId":"c","mix":` + mix + `}`)
		err := validateExchange(start(), body, 200, jsonHeader, ok)
		if valid && err != nil {
			t.Errorf("mix %s: refused: %v", mix, err)
		}
		if !valid && err == nil {
			t.Errorf("mix %s: passed", mix)
		}
	}
}
