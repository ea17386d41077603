package client_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/rtcrec/recorder/api"
	"github.com/rtcrec/recorder/client"
	"github.com/rtcrec/recorder/internal/contract"
)

// TestClient_WrittenAgainstTheDocument: every JSON field of the client's
// types is a property of the document's schema of the same message
// (api/openapi.json), of a matching JSON type, nested messages included. A
// field renamed or dropped in the document fails here; the contract check of
// TestCLI_Client then validates what the client sends and receives.
func TestClient_WrittenAgainstTheDocument(t *testing.T) {
	doc, err := contract.Load(api.OpenAPIDocument())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		v      any
		schema string
	}{
		{client.StartRequest{}, "StartRecording"},
		{client.ErrorData{}, "Error"},
		{client.RecordingEvent{}, "RecordingDataEvent"},
		{client.Recording{}, "RecordingDataMessage"},
		{client.StorageProfile{}, "StorageProfileDataMessage"},
		{client.Stream{}, "StreamDataMessage"},
		{client.Track{}, "TrackDataMessage"},
		{client.Summary{}, "RecordingSummary"},
		{client.List{}, "RecordingList"},
		{client.File{}, "RecordingFile"},
		{client.Files{}, "RecordingFiles"},
		{client.Error{}, "ErrorMessage"},
		{client.Event{}, "Event"},
	} {
		s := doc.T.Components.Schemas[c.schema]
		if s == nil || s.Value == nil {
			t.Errorf("the document has no schema %s (client.%T)", c.schema, c.v)
			continue
		}
		matchType(t, c.schema, reflect.TypeOf(c.v), s.Value)
	}
}

// matchType checks that every JSON field of struct type typ is a property
// of schema s with a compatible type.
func matchType(t *testing.T, where string, typ reflect.Type, s *openapi3.Schema) {
	t.Helper()
	s = nonNull(s)
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		p := s.Properties[name]
		if p == nil || p.Value == nil {
			t.Errorf("%s: the client's field %s (%s) is not in the document", where, name, f.Type)
			continue
		}
		matchValue(t, where+"."+name, f.Type, nonNull(p.Value))
	}
}

// matchValue checks one Go type against one schema.
func matchValue(t *testing.T, where string, typ reflect.Type, s *openapi3.Schema) {
	t.Helper()
	if typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	want := ""
	switch {
	case typ == reflect.TypeFor[json.RawMessage]():
		return // any JSON value
	case typ.Kind() == reflect.String:
		want = "string"
	case typ.Kind() == reflect.Bool:
		want = "boolean"
	case typ.Kind() >= reflect.Int && typ.Kind() <= reflect.Uint64:
		want = "integer"
	case typ.Kind() == reflect.Float32 || typ.Kind() == reflect.Float64:
		want = "number"
	case typ.Kind() == reflect.Slice:
		if s.Type == nil || !s.Type.Is("array") || s.Items == nil || s.Items.Value == nil {
			t.Errorf("%s: a list in the client, %s in the document", where, typeNames(s))
			return
		}
		matchValue(t, where+"[]", typ.Elem(), nonNull(s.Items.Value))
		return
	case typ.Kind() == reflect.Map:
		want = "object"
	case typ.Kind() == reflect.Struct:
		matchType(t, where, typ, s)
		return
	}
	if s.Type == nil || !s.Type.Includes(want) && !(want == "integer" && s.Type.Includes("number")) {
		t.Errorf("%s: %s in the client (%s), %s in the document", where, want, typ, typeNames(s))
	}
}

// nonNull returns the non-null alternative of a nullable schema (anyOf
// [X, null]).
func nonNull(s *openapi3.Schema) *openapi3.Schema {
	for _, a := range s.AnyOf {
		if a.Value != nil && (a.Value.Type == nil || !a.Value.Type.Is("null")) {
			return a.Value
		}
	}
	return s
}

func typeNames(s *openapi3.Schema) string {
	if s.Type == nil {
		return "no type"
	}
	return strings.Join(*s.Type, " or ")
}
