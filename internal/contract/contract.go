// Package contract validates HTTP exchanges against the recorder's OpenAPI
// document (api/openapi.json): a response whose status, header or field the
// document lacks, a route the document lacks, or a request the server
// accepted although the document forbids it is a violation. The api tests
// wrap every service's handler with Handler; tests that talk to a `recorder
// serve` process wrap their client's transport with Transport.
package contract

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// Doc is a loaded and validated OpenAPI document.
type Doc struct {
	T      *openapi3.T
	routes []route
}

// route is one operation of the document, matched by path segments.
type route struct {
	r    routers.Route
	segs []string
}

// Load parses and validates an OpenAPI document, its examples included.
func Load(data []byte) (*Doc, error) {
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("api/openapi.json is not a valid document: %w", err)
	}
	d := &Doc{T: doc}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			d.routes = append(d.routes, route{routers.Route{Spec: doc, Path: path, PathItem: item, Method: method, Operation: op},
				strings.Split(strings.Trim(path, "/"), "/")})
		}
	}
	return d, nil
}

// match finds the operation of a request: the path template of the same
// length whose literal segments match, the one with most literals.
func (d *Doc) match(method, path string) (*routers.Route, map[string]string) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i, s := range segs {
		if u, err := url.PathUnescape(s); err == nil {
			segs[i] = u
		}
	}
	if strings.HasSuffix(path, "/") && path != "/" {
		segs = append(segs, "")
	}
	var best *route
	var bestParams map[string]string
	bestLiterals := -1
	for i := range d.routes {
		r := &d.routes[i]
		if r.r.Method != method {
			continue
		}
		tmpl := r.segs
		if strings.HasSuffix(r.r.Path, "/") && r.r.Path != "/" {
			tmpl = append(slices.Clone(tmpl), "")
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
	return &best.r, bestParams
}

// Validate checks one request (its body given apart) and its response
// against the document.
func (d *Doc) Validate(req *http.Request, body []byte, status int, header http.Header, respBody []byte) error {
	rt, params := d.match(req.Method, req.URL.EscapedPath())
	if rt == nil {
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			return fmt.Errorf("the route is not in the document")
		}
		// The catch-all's error JSON, as every operation's default response.
		rt, params = d.match(http.MethodGet, "/api/recordings/x/y/z/state")
		if rt == nil {
			return fmt.Errorf("the document has no operation for the catch-all's error")
		}
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	opts := &openapi3filter.Options{
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus: true,
		MultiError:            true,
		ExcludeRequestBody:    len(body) == 0 || !isJSON(req.Header.Get("Content-Type")) && !looksJSON(body),
		ExcludeResponseBody:   !isJSON(header.Get("Content-Type")),
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: rt, Options: opts}
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
	return d.validateEvents(rt, status, header, respBody)
}

// validateEvents checks each complete event of a text/event-stream body
// against the item schema the document gives it (x-itemSchema, as OpenAPI
// 3.2's itemSchema): its data lines, joined, are one JSON value.
func (d *Doc) validateEvents(rt *routers.Route, status int, header http.Header, body []byte) error {
	if mt, _, _ := mime.ParseMediaType(header.Get("Content-Type")); mt != "text/event-stream" {
		return nil
	}
	resp := rt.Operation.Responses.Status(status)
	if resp == nil || resp.Value == nil {
		return nil
	}
	media := resp.Value.Content.Get("text/event-stream")
	if media == nil || media.Schema == nil || media.Schema.Value == nil {
		return fmt.Errorf("the document gives no schema for the event stream")
	}
	item, _ := media.Schema.Value.Extensions["x-itemSchema"].(map[string]any)
	ref, _ := item["$ref"].(string)
	name, ok := strings.CutPrefix(ref, "#/components/schemas/")
	schema := d.T.Components.Schemas[name]
	if !ok || schema == nil || schema.Value == nil {
		return fmt.Errorf("the event stream's x-itemSchema %q is not a schema of the document", ref)
	}
	blocks := strings.Split(strings.ReplaceAll(string(body), "\r\n", "\n"), "\n\n")
	for _, block := range blocks[:len(blocks)-1] { // the last one may be cut short
		var data []string
		for _, line := range strings.Split(block, "\n") {
			if v, ok := strings.CutPrefix(line, "data:"); ok {
				data = append(data, strings.TrimPrefix(v, " "))
			}
		}
		if len(data) == 0 {
			continue // a comment or a keep-alive
		}
		var v any
		if err := json.Unmarshal([]byte(strings.Join(data, "\n")), &v); err != nil {
			return fmt.Errorf("an event's data is not JSON: %v\n  event: %.300s", err, block)
		}
		if err := schema.Value.VisitJSON(v); err != nil {
			return fmt.Errorf("an event does not match %s: %v\n  event: %.300s", ref, err, block)
		}
	}
	return nil
}

func isJSON(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt == "application/json"
}

// looksJSON reports whether b looks like a JSON object or array (a client that
// sent JSON without saying so).
func looksJSON(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}
