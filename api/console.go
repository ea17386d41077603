package api

import (
	"embed"
	"io/fs"
	"net/http"
)

// consoleFiles is the web console: plain HTML, JavaScript and CSS, no build
// step and nothing loaded from elsewhere (README "Web console").
//
//go:embed console
var consoleFiles embed.FS

// consoleCSP allows the console's own files only; media and fetches may
// also reach storage providers' signed URLs (S3, Azure, GCS presigned URLs).
const consoleCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"media-src 'self' https: http: blob:; connect-src 'self' https: http:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// consoleHandler serves the console under /console/. The files are public;
// everything they show comes from the API with the key the user gives.
func consoleHandler() http.Handler {
	sub, err := fs.Sub(consoleFiles, "console")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix("/console/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", consoleCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
