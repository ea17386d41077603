package contract

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const doc = `{
  "openapi": "3.1.0",
  "info": {"title": "t", "version": "1"},
  "paths": {
    "/api/things/{id}": {
      "get": {
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": {
          "200": {"description": "a thing", "content": {"application/json": {"schema": {
            "type": "object", "additionalProperties": false, "required": ["id"],
            "properties": {"id": {"type": "string"}}}}}},
          "default": {"description": "an error", "content": {"application/json": {"schema": {"type": "object"}}}}
        }
      }
    },
    "/api/events": {
      "get": {
        "responses": {
          "200": {"description": "events", "content": {"text/event-stream": {"schema": {"type": "string",
            "x-itemSchema": {"$ref": "#/components/schemas/Ev"}}}}}
        }
      }
    },
    "/api/recordings/{a}/{b}/{c}/state": {
      "get": {
        "parameters": [{"name": "a", "in": "path", "required": true, "schema": {"type": "string"}},
          {"name": "b", "in": "path", "required": true, "schema": {"type": "string"}},
          {"name": "c", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": {"default": {"description": "an error", "content": {"application/json": {"schema": {"type": "object"}}}}}
      }
    }
  },
  "components": {"schemas": {"Ev": {"type": "object", "additionalProperties": false, "required": ["id"],
    "properties": {"id": {"type": "integer"}, "data": {"type": "object", "additionalProperties": false, "properties": {"state": {"type": "string"}}}}}}}
}`

// recTB records what a check reports and runs its cleanups on demand.
type recTB struct {
	testing.TB
	errs     []string
	cleanups []func()
}

func (r *recTB) Cleanup(f func())               { r.cleanups = append(r.cleanups, f) }
func (r *recTB) Errorf(format string, a ...any) { r.errs = append(r.errs, fmt.Sprintf(format, a...)) }
func (r *recTB) end() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

// server answers /api/things/ok with a documented thing, /api/things/extra
// with an undocumented field and /api/other with a route the document lacks.
func server(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/things/ok":
			io.WriteString(w, `{"id":"ok"}`+"\n")
		case "/api/things/extra":
			io.WriteString(w, `{"id":"extra","secret":"x"}`)
		default:
			io.WriteString(w, `{}`)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// TestTransport_ReportsViolations: a client's exchanges with the server are
// validated at the end of the test, those with other hosts are not.
func TestTransport_ReportsViolations(t *testing.T) {
	d, err := Load([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	s := server(t)
	other := server(t)
	for _, c := range []struct {
		path, host string
		want       string // "" for no violation
	}{
		{"/api/things/ok", s.URL, ""},
		{"/api/things/extra", s.URL, "secret"},
		{"/api/other", s.URL, "not in the document"},
		{"/api/other", other.URL, "no exchange"}, // another host: not checked, and nothing else was
	} {
		tb := &recTB{TB: t}
		hc := &http.Client{Transport: Transport(tb, d, s.URL, nil)}
		resp, err := hc.Get(c.host + c.path)
		if err != nil {
			t.Fatal(err)
		}
		// A decoder reads the value and closes: the check still sees it all.
		var b [5]byte
		resp.Body.Read(b[:])
		resp.Body.Close()
		tb.end()
		got := strings.Join(tb.errs, "\n")
		if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("%s%s: reported %q, want %q", c.host, c.path, got, c.want)
		}
	}
}

// TestHandler_ReportsViolations: the same through a wrapped handler.
func TestHandler_ReportsViolations(t *testing.T) {
	d, err := Load([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	tb := &recTB{TB: t}
	s := httptest.NewServer(Handler(tb, d, server(t).Config.Handler))
	defer s.Close()
	for _, p := range []string{"/api/things/ok", "/api/things/extra", "/api/other", "/api/test/mine"} {
		resp, err := http.Get(s.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	tb.end()
	if len(tb.errs) != 2 || !strings.Contains(tb.errs[0], "secret") || !strings.Contains(tb.errs[1], "not in the document") {
		t.Errorf("reported %q, want the undocumented field and the undocumented route", tb.errs)
	}
}

// TestValidate_EventStream: each complete event of a stream is checked
// against the item schema; an event cut short at the end is not.
func TestValidate_EventStream(t *testing.T) {
	d, err := Load([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://recorder/api/events", nil)
	header := http.Header{"Content-Type": {"text/event-stream"}}
	for _, c := range []struct {
		body, want string // want "": no violation
	}{
		{": hello\n\nid: 1\nevent: x\ndata: {\"id\":1,\"data\":{\"state\":\"ACTIVE\"}}\n\nid: 2\ndata: {\"id\":2,\"da", ""},
		{"id: 1\ndata: {\"id\":1,\"data\":{\"state\":\"ACTIVE\",\"secret\":\"x\"}}\n\n", "secret"},
		{"id: 1\ndata: {\"data\":{}}\n\n", "id"},
		{"data: not json\n\n", "not JSON"},
	} {
		err := d.Validate(req, nil, 200, header, []byte(c.body))
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%q: %v, want %q", c.body, err, c.want)
		}
	}
}
