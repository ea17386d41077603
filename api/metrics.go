package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/internal/udpstat"
	"github.com/rtcrec/recorder/recorder"
	"github.com/rtcrec/recorder/recorder/conference/whip"
)

// metrics are the service's Prometheus metrics (README "Metrics"; the
// dashboard in deploy/grafana-dashboard.json uses them). No label has
// unbounded values: states, kinds, providers, operations, outcomes, route
// patterns and status codes only, never a recording, conversation or key.
//
// Media counters are read from the Manager when scraped (the pipelines count
// with atomics already); nothing is added to the media path.
type metrics struct {
	reg      *prometheus.Registry
	storage  *prometheus.HistogramVec
	uploads  *prometheus.CounterVec
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		storage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "recorder_storage_operation_duration_seconds",
			Help:    "Duration of storage operations (upload includes verification), by provider, operation and result (ok, error).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"provider", "op", "result"}),
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recorder_uploads_total",
			Help: "Outcomes of the upload queue by provider: uploaded, uploaded_backup, failing (reported, still retried), abandoned.",
		}, []string{"provider", "outcome"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recorder_http_requests_total",
			Help: "HTTP requests by route pattern and status code (route \"none\": no route matched).",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "recorder_http_request_duration_seconds",
			Help:    "Duration of HTTP requests by route pattern (event streams last as long as the client stays).",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	m.reg.MustRegister(m.storage, m.uploads, m.requests, m.latency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// hooks are the Manager's hooks feeding these metrics.
func (m *metrics) hooks() recorder.Hooks {
	return recorder.Hooks{
		StorageOp: func(provider, op string, d time.Duration, err error) {
			result := "ok"
			if err != nil {
				result = "error"
			}
			m.storage.WithLabelValues(providerLabel(provider), op, result).Observe(d.Seconds())
		},
		Upload: func(provider, outcome string) {
			m.uploads.WithLabelValues(providerLabel(provider), outcome).Inc()
		},
	}
}

func providerLabel(p string) string {
	if p == "" {
		return config.ProviderLocal
	}
	return p
}

// register adds the collectors reading the service's state at scrape time.
func (m *metrics) register(s *Service) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "recorder_recordings_active", Help: "Recordings running in this process (not yet in a final state).",
		}, func() float64 { return float64(s.Manager.ActiveCount()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "recorder_whip_sessions", Help: "WHIP sessions connected or connecting.",
		}, func() float64 { return float64(s.WHIP.Sessions()) }),
		&stateCollector{s: s},
	)
}

// The descriptions of the metrics stateCollector reads at scrape time.
var (
	descRecordings    = prometheus.NewDesc("recorder_recordings", "Recordings running in this process, by state.", []string{"state"}, nil)
	descEnded         = prometheus.NewDesc("recorder_recordings_ended_total", "Recordings that reached a final state since the process started, by state.", []string{"state"}, nil)
	descTracks        = prometheus.NewDesc("recorder_tracks", "Tracks being recorded now, by kind.", []string{"kind"}, nil)
	descTracksStarted = prometheus.NewDesc("recorder_tracks_started_total", "Tracks recorded since the process started.", nil, nil)
	descPackets       = prometheus.NewDesc("recorder_rtp_packets_received_total", "RTP packets received on recorded tracks.", nil, nil)
	descLost          = prometheus.NewDesc("recorder_rtp_packets_lost_total", "Audio RTP sequence numbers the mix gave up on: not arrived when their place was written (a packet arriving after that is also late-dropped).", nil, nil)
	descLate          = prometheus.NewDesc("recorder_rtp_packets_late_dropped_total", "Audio RTP packets dropped because the mix had already played their time.", nil, nil)
	descDecodeErrors  = prometheus.NewDesc("recorder_decode_errors_total", "Audio packets the decoder rejected (played as silence).", nil, nil)
	descDecoded       = prometheus.NewDesc("recorder_audio_packets_decoded_total", "Audio packets decoded for a mix (a recording with mix none decodes none).", nil, nil)
	descShed          = prometheus.NewDesc("recorder_audio_packets_shed_total", "Audio packets given to a mix and dropped whole without being decoded: their place in the mix was written before they came (later than the latency budget), or lies before the track's start in the mix. The track file keeps them.", nil, nil)
	descLoad          = prometheus.NewDesc("recorder_load_streams", "Streams this instance carries: the larger of the tracks recorded and the WHIP sessions (recorder/capacity.go).", nil, nil)
	descCapacity      = prometheus.NewDesc("recorder_capacity_streams", "Streams this instance takes at most (capacity.streams; 0: no limit); past it new recordings and publishers get 503.", nil, nil)
	descSkipped       = prometheus.NewDesc("recorder_audio_packets_skipped_total", "Of the decoded audio packets, inactive Opus ones (SILK VAD flags clear, DTX) played as silence without decoding.", nil, nil)
	descWriteErrors   = prometheus.NewDesc("recorder_write_errors_total", "Packets a track's file or pipeline refused.", nil, nil)
	descBytes         = prometheus.NewDesc("recorder_bytes_written_total", "Bytes of track and mix files written to local disk.", nil, nil)
	descOverruns      = prometheus.NewDesc("recorder_mixer_overruns_total", "Mix frames written before every input had them: the latency budget passed (media.Mixer.Expired).", nil, nil)
	descWritten       = prometheus.NewDesc("recorder_track_packets_written_total", "RTP packets written to track files.", nil, nil)
	descMissing       = prometheus.NewDesc("recorder_track_packets_missing_total", "RTP sequence numbers of recorded tracks that never reached the recorder's reader (lost on the network, dropped by the kernel or in the WebRTC stack): the track file holds silence there.", nil, nil)
	descDropped       = prometheus.NewDesc("recorder_track_packets_dropped_total", "RTP packets of recorded tracks that reached the recorder but not the track file, by reason: duplicate, late (after the file gave up on its place: later than the latency budget), paused (pause or blackout), after_stop.", []string{"reason"}, nil)
	descUDPDrops      = prometheus.NewDesc("recorder_udp_receive_drops", "Datagrams the kernel dropped on this process's open UDP sockets (receive buffer full): they never reached the recorder. A gauge over the sockets open now (a closed socket's count goes with it).", nil, nil)
	descUDPQueued     = prometheus.NewDesc("recorder_udp_receive_queued_bytes", "Bytes waiting in the receive queues of this process's open UDP sockets (a recorder that falls behind queues here first).", nil, nil)
	descMuxDrops      = prometheus.NewDesc("recorder_udp_mux_queue_drops_total", "Datagrams the WHIP endpoint's UDP mux dropped because their connection's queue was full (its reader had not run for 256 datagrams): they never reached the recorder.", nil, nil)
	descDirect        = prometheus.NewDesc("recorder_udp_mux_direct_packets_total", "RTP packets the WHIP endpoint's UDP mux decrypted and handed to their tracks itself (webrtc.directAudio), not through Pion's goroutines.", nil, nil)
	descQueueDepth    = prometheus.NewDesc("recorder_upload_queue_depth", "Uploads waiting in the persisted queue.", nil, nil)
	descQueueAge      = prometheus.NewDesc("recorder_upload_queue_oldest_age_seconds", "Age of the oldest upload waiting in the queue (0: none waits).", nil, nil)
	descWebhooks      = prometheus.NewDesc("recorder_webhook_backlog", "Webhook deliveries not yet made.", nil, nil)
)

// Every state and kind is reported, 0 when none, so that dashboards see the series.
var (
	liveStates  = []recorder.State{recorder.StateInitialised, recorder.StateActive, recorder.StatePendingRecovery}
	finalStates = []recorder.State{recorder.StateStopped, recorder.StateFailed, recorder.StateAborted}
)

// stateCollector reads the Manager's media counters, the upload queue and
// the webhook backlog once per scrape.
type stateCollector struct{ s *Service }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRecordings, descEnded, descTracks, descTracksStarted, descPackets, descLost, descLate,
		descDecodeErrors, descDecoded, descSkipped, descShed, descLoad, descCapacity, descWriteErrors, descBytes, descOverruns,
		descWritten, descMissing, descDropped, descUDPDrops, descUDPQueued, descMuxDrops, descDirect, descQueueDepth, descQueueAge, descWebhooks} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Manager.MediaStats()
	load, capacity := c.s.Manager.Load()
	ch <- prometheus.MustNewConstMetric(descLoad, prometheus.GaugeValue, float64(load))
	ch <- prometheus.MustNewConstMetric(descCapacity, prometheus.GaugeValue, float64(capacity))
	for _, s := range liveStates {
		ch <- prometheus.MustNewConstMetric(descRecordings, prometheus.GaugeValue, float64(st.Recordings[s]), string(s))
	}
	for _, s := range finalStates {
		ch <- prometheus.MustNewConstMetric(descEnded, prometheus.CounterValue, float64(st.Ended[s]), string(s))
	}
	for _, k := range []string{"audio", "video"} {
		ch <- prometheus.MustNewConstMetric(descTracks, prometheus.GaugeValue, float64(st.Tracks[k]), k)
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	counter(descTracksStarted, st.TracksStarted)
	counter(descPackets, st.Packets)
	counter(descLost, st.Lost)
	counter(descLate, st.Late)
	counter(descDecodeErrors, st.DecodeErrors)
	counter(descDecoded, st.Decoded)
	counter(descSkipped, st.Skipped)
	counter(descShed, st.Shed)
	counter(descWriteErrors, st.WriteErrors)
	counter(descBytes, st.Bytes)
	counter(descOverruns, st.MixerOverruns)
	counter(descWritten, st.Written)
	counter(descMissing, st.Missing)
	for _, d := range []struct {
		reason string
		n      uint64
	}{{"duplicate", st.DroppedDuplicate}, {"late", st.DroppedLate}, {"paused", st.DroppedPaused}, {"after_stop", st.DroppedAfterStop}} {
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(d.n), d.reason)
	}
	if us, err := udpstat.Read(); err == nil {
		ch <- prometheus.MustNewConstMetric(descUDPDrops, prometheus.GaugeValue, float64(us.Drops))
		ch <- prometheus.MustNewConstMetric(descUDPQueued, prometheus.GaugeValue, float64(us.Queued))
	}
	counter(descMuxDrops, whip.MuxQueueDrops())
	counter(descDirect, whip.DirectPackets())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if n, age, err := c.s.Manager.UploadBacklog(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(descQueueDepth, prometheus.GaugeValue, float64(n))
		ch <- prometheus.MustNewConstMetric(descQueueAge, prometheus.GaugeValue, age.Seconds())
	} else {
		ch <- prometheus.NewInvalidMetric(descQueueDepth, err)
	}
	if c.s.Events != nil {
		if n, err := c.s.Events.Backlog(ctx); err == nil {
			ch <- prometheus.MustNewConstMetric(descWebhooks, prometheus.GaugeValue, float64(n))
		} else {
			ch <- prometheus.NewInvalidMetric(descWebhooks, err)
		}
	}
}

// handler serves the metrics.
func (m *metrics) handler() http.Handler {
	// A collector that fails (the upload queue's query timing out on a
	// recorder starved of CPU) leaves its metrics out, not every metric.
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// routeKey holds, in a request's context, where Server.ServeHTTP notes the
// route pattern it matched (noteRoute).
type routeKey struct{}

// noteRoute records the API's route pattern of a request for instrument.
func noteRoute(ctx context.Context, pattern string) {
	if p, ok := ctx.Value(routeKey{}).(*string); ok {
		*p = pattern
	}
}

// instrument counts h's requests by the route pattern that served them and
// their status: the label is the pattern, never the path.
func (m *metrics) instrument(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		var route string
		r = r.WithContext(context.WithValue(r.Context(), routeKey{}, &route))
		h.ServeHTTP(sw, r)
		if route == "" && r.Pattern != "/" {
			route = r.Pattern // a route of the root mux: /metrics, the fleet's
		}
		if route == "" {
			route = "none"
		}
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		m.requests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
		m.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// statusWriter remembers the status written; Unwrap lets
// http.ResponseController reach Flush (the event stream) and the rest.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
