package api

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsHandler serves the service's Prometheus metrics: recordings running,
// WHIP sessions connected, and the Go runtime and process collectors. Values
// are read when scraped; nothing is counted on the media path.
func (s *Service) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "recorder_recordings_active", Help: "Recordings running in this process (not yet in a final state).",
		}, func() float64 { return float64(s.Manager.ActiveCount()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "recorder_whip_sessions", Help: "WHIP sessions connected or connecting.",
		}, func() float64 { return float64(s.WHIP.Sessions()) }),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
