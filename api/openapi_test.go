package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// The contract test: every service the API tests start (startServiceConfig)
// has its handler wrapped by contractCheck, which validates each request and
// response against api/openapi.json. A response whose status, header or
// field the document lacks, a route the document lacks, or a request the
// server accepted although the document forbids it fails the test that made
// it.

var loadContract = sync.OnceValues(func() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(openAPIDocument)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("api/openapi.json is not a valid document: %w", err)
	}
	return doc, nil
})

// contractRoute is one operation of the document, matched by path segments.
type contractRoute struct {
	route routers.Route
	segs  []string
}

var contractRoutes = sync.OnceValue(func() []contractRoute {
	doc, err := loadContract()
	if err != nil {
		return nil
	}
	var out []contractRoute
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			out = append(out, contractRoute{routers.Route{Spec: doc, Path: path, PathItem: item, Method: method, Operation: op},
				strings.Split(strings.Trim(path, "/"), "/")})
		}
	}
	return out
})

// matchRoute finds the operation of a request: the path template of the
// same length whose literal segments match, the one with most literals.
func matchRoute(method, path string) (*routers.Route, map[string]string) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i, s := range segs {
		if u, err := url.PathUnescape(s); err == nil {
			segs[i] = u
		}
	}
	if strings.HasSuffix(path, "/") && path != "/" {
		segs = append(segs, "")
	}
	var best *contractRoute
	var bestParams map[string]string
	bestLiterals := -1
	routes := contractRoutes()
	for i := range routes {
		r := &routes[i]
		if r.route.Method != method || len(r.segs) != len(segs) && !(strings.HasSuffix(r.route.Path, "/") && len(r.segs)+1 == len(segs)) {
			continue
		}
		tmpl := r.segs
		if strings.HasSuffix(r.route.Path, "/") && r.route.Path != "/" {
			tmpl = append(slicesClone(tmpl), "")
		}
		if len(tmpl) != len(segs) {
			continue
		}
		params, literals, ok := map[string]string{}, 0, true
		for j, s := range tmpl {
			if strings.HasPrefix(s, "{") {
				if segs[j] == "" {
					ok = false
					break
				}
				params[strings.Trim(s, "{}")] = segs[j]
				continue
			}
			if !strings.EqualFold(s, segs[j]) { // seed 003's routes match in any case
				ok = false
				break
			}
			literals++
		}
		if ok && literals > bestLiterals {
			best, bestParams, bestLiterals = r, params, literals
		}
	}
	if best == nil {
		return nil, nil
	}
	return &best.route, bestParams
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// exchangeCapture records a response's status, headers and (up to 1 MiB) body
// while passing it on.
type exchangeCapture struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (c *exchangeCapture) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *exchangeCapture) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	if c.body.Len() < 1<<20 {
		c.body.Write(b)
	}
	return c.ResponseWriter.Write(b)
}

func (c *exchangeCapture) Unwrap() http.ResponseWriter { return c.ResponseWriter }

func isJSON(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt == "application/json"
}

// exchange is one request and its response, as the contract check saw them.
type exchange struct {
	req      *http.Request
	body     []byte
	status   int
	header   http.Header
	respBody []byte
}

// contractCheck wraps a service's handler with the contract validation;
// violations are reported on t. The exchanges are recorded as they happen
// and validated when the test ends (after the service stopped), so that the
// validation's work does not compete with the media the test records;
// identical exchanges are validated once.
func contractCheck(t testing.TB, h http.Handler) http.Handler {
	if _, err := loadContract(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[[32]byte]bool{}
	var log []exchange
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, x := range log {
			if err := validateExchange(x.req, x.body, x.status, x.header, x.respBody); err != nil {
				t.Errorf("contract (api/openapi.json): %s %s → %d: %v\n  response: %.400s", x.req.Method, x.req.URL.RequestURI(), x.status, err, x.respBody)
			}
		}
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		if r.Body != nil { // a copy of up to 1 MiB; the handler reads the whole body
			body, _ = io.ReadAll(io.LimitReader(r.Body, 1<<20))
			r.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
		}
		req := r.Clone(context.Background())
		c := &exchangeCapture{ResponseWriter: w}
		h.ServeHTTP(c, r)
		if c.status == 0 {
			c.status = http.StatusOK
		}
		if strings.HasPrefix(req.URL.Path, "/api/test/") {
			return // routes a test registers for itself (TestSecurity_EveryRouteAuthenticated)
		}
		sum := sha256.New()
		fmt.Fprintf(sum, "%s %s %d %q %q", req.Method, req.URL.RequestURI(), c.status, body, c.body.Bytes())
		var k [32]byte
		copy(k[:], sum.Sum(nil))
		mu.Lock()
		defer mu.Unlock()
		if !seen[k] {
			seen[k] = true
			log = append(log, exchange{req, body, c.status, c.Header().Clone(), bytes.Clone(c.body.Bytes())})
		}
	})
}

// validateExchange checks one request and its response against the document.
func validateExchange(req *http.Request, body []byte, status int, header http.Header, respBody []byte) error {
	route, params := matchRoute(req.Method, req.URL.EscapedPath())
	if route == nil {
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			return fmt.Errorf("the route is not in the document")
		}
		// The catch-all's error JSON, as every operation's default response.
		route, params = matchRoute(http.MethodGet, "/api/recordings/x/y/z/state")
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	opts := &openapi3filter.Options{
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus: true,
		MultiError:            true,
		ExcludeRequestBody:    len(body) == 0 || !isJSON(req.Header.Get("Content-Type")) && !looksJSON(body),
		ExcludeResponseBody:   !isJSON(header.Get("Content-Type")),
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	ctx := context.Background()
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil && status < 400 {
		return fmt.Errorf("the server accepted a request the document forbids: %w", err)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header, Options: opts}
	out.SetBodyBytes(respBody)
	if status == http.StatusNoContent || len(respBody) == 0 && opts.ExcludeResponseBody {
		out.Options = &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: true}
	}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return err
	}
	return nil
}

// looksJSON reports whether b looks like a JSON object or array (a client that
// sent JSON without saying so).
func looksJSON(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
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
// latency is a duration string or nanoseconds (recorder.MixSettings's JSON),
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
