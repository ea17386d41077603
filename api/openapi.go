package api

import (
	_ "embed"
	"net/http"
)

// openAPIDocument is the OpenAPI 3.1 description of every route the
// recorder serves, served at GET /openapi.json. TestOpenAPI_Document writes
// it from the route table and the Go types; the contract test validates the
// API tests' requests and responses against it.
//
//go:embed openapi.json
var openAPIDocument []byte

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(openAPIDocument)
}

// OpenAPIDocument returns api/openapi.json, the document served at
// /openapi.json (the caller must not modify it): tests of the CLI validate
// their exchanges with a `recorder serve` process against it.
func OpenAPIDocument() []byte { return openAPIDocument }
