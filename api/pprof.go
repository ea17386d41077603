package api

import (
	"net"
	"net/http"
	"net/http/pprof"
)

// pprofHandlers returns Go's runtime profiles (net/http/pprof) under
// /debug/pprof/, for the metricsListen server only: never on the public API
// address. With a metrics key they need it as their bearer token, like
// /metrics; without one only loopback clients get them (a profile shows
// the process's internals, and a CPU profile costs CPU while it runs).
//
//	curl -o cpu.pprof 'http://127.0.0.1:9090/debug/pprof/profile?seconds=20'
//	curl -o heap.pprof http://127.0.0.1:9090/debug/pprof/heap
func pprofHandlers(mux *http.ServeMux, metricsKey string) {
	guard := func(h http.HandlerFunc) http.Handler {
		if metricsKey != "" {
			return metricsGuard(metricsKey, h)
		}
		return loopbackOnly(h)
	}
	mux.Handle("GET /debug/pprof/", guard(pprof.Index)) // heap, allocs, goroutine, block, mutex, threadcreate
	mux.Handle("GET /debug/pprof/cmdline", guard(pprof.Cmdline))
	mux.Handle("GET /debug/pprof/profile", guard(pprof.Profile))
	mux.Handle("GET /debug/pprof/symbol", guard(pprof.Symbol))
	mux.Handle("GET /debug/pprof/trace", guard(pprof.Trace))
}

// loopbackOnly refuses (403) a request that does not come from a loopback
// address.
func loopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			writeError(w, http.StatusForbidden, "loopback_only", "/debug/pprof/ is served to loopback clients only when no metricsKey is set")
			return
		}
		h.ServeHTTP(w, r)
	})
}
