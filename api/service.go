package api

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/recorder"
	"github.com/rtcrec/recorder/recorder/cluster"
	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/recorder/conference/janus"
	"github.com/rtcrec/recorder/recorder/conference/whep"
	"github.com/rtcrec/recorder/recorder/conference/whip"
	"github.com/rtcrec/recorder/recorder/events"
	"github.com/rtcrec/recorder/recorder/store"
	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/open"
)

// Service is a whole recorder: store, Manager, WHIP endpoint and API,
// listening on Config.Listen. cmd/recorder runs one; the tests and the demo
// run one in-process.
type Service struct {
	Config     *config.Config
	Manager    *recorder.Manager
	Store      *store.Store
	WHIP       *whip.Adapter
	API        *Server
	HTTP       *http.Server
	Listener   net.Listener
	URL        string // the public base URL
	RecorderID string
	// GeneratedKey is the API key generated and persisted by this start (the
	// first start without configured keys); empty otherwise. Print it once.
	GeneratedKey string
	// Keys are the API keys in force.
	Keys []config.APIKey
	// Events is the event outbox: SSE, webhooks (events.go).
	Events *events.Bus
	// Node is this instance's membership of a fleet (store.driver
	// postgres); nil for a lone recorder.
	Node *cluster.Node
	// MetricsURL is where /metrics is served when metricsListen is set.
	MetricsURL string
	metrics    *http.Server // the metricsListen server; nil: /metrics is on Listen
	prom       *metrics     // the Prometheus metrics (metrics.go)
	log        *slog.Logger
	udp        func() error
}

// Files in the data directory.
const (
	recorderIDFile = "recorder-id"
	signingKeyFile = "signing.key"
	apiKeyFile     = "api-key"
	databaseFile   = "recorder.db"
)

// NewService opens the data directory and the database, recovers unfinished
// recordings, and listens; Serve then serves. The configuration's missing
// identities (recorderId, signing key, API key) are generated and persisted in
// the data directory on first start.
func NewService(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Service, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Service{Config: cfg, log: log, prom: newMetrics()}
	id, err := LoadIdentity(cfg)
	if err != nil {
		return nil, err
	}
	s.RecorderID, s.Keys, s.GeneratedKey = id.RecorderID, id.Keys, id.GeneratedKey
	signingKey := id.SigningKey

	s.Listener, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("api: listen: %w", err)
	}
	fail := func(err error) (*Service, error) {
		s.close()
		return nil, err
	}
	for _, n := range cfg.Notices { // deprecated keys read (config.Config.Migrate)
		log.Warn(n)
	}
	s.URL = strings.TrimSuffix(cfg.PublicURL, "/")
	if s.URL == "" {
		addr := s.Listener.Addr().(*net.TCPAddr)
		host := addr.IP.String()
		if addr.IP.IsUnspecified() {
			host = "127.0.0.1"
			log.Warn("publicURL is not set and the recorder listens on every address: signed URLs and WHIP Locations use 127.0.0.1; set publicURL")
		}
		s.URL = "http://" + net.JoinHostPort(host, strconv.Itoa(addr.Port))
	}
	base, err := url.Parse(s.URL)
	if err != nil {
		return fail(fmt.Errorf("api: publicURL: %w", err))
	}
	att := &recorder.Attachments{Base: base, Signer: storage.NewURLSigner([]byte(signingKey))}

	lo, hi, err := cfg.WebRTC.PortRange()
	if err != nil {
		return fail(err)
	}
	settings := whip.Settings{
		Interfaces: cfg.WebRTC.Interfaces, IncludeLoopback: cfg.WebRTC.IncludeLoopback, PortMin: lo, PortMax: hi,
		UDPMux: cfg.WebRTC.MuxAddress(), UDPMuxFallback: cfg.WebRTC.MuxIsDefault(), NATIPs: cfg.WebRTC.NATIPs, LoopbackOnly: isLoopbackOnly(cfg), Log: log,
		VideoBitrate: uint64(max(0, cfg.WebRTC.VideoBitrate)),
		Streams:      cfg.Capacity.Streams,
		UDP4Only:     cfg.WebRTC.IPv4Only,
		DirectAudio:  cfg.WebRTC.DirectAudioOn(),
		// When each RTP packet reached the UDP mux: a reader starved of
		// CPU is not taken for a slow sender (conference.ArrivalReader).
		Receipts: whip.NewReceipts(),
	}
	webrtcAPI, audioAPI, udpClose, err := whip.NewAPIs(settings)
	if err != nil {
		return fail(err)
	}
	s.udp = udpClose
	var srv *Server
	s.WHIP, err = whip.New(whip.Options{
		API:      webrtcAPI,
		AudioAPI: audioAPI,
		Receipts: settings.Receipts,
		// REMB for every video sender (the APIs negotiate it).
		VideoBitrate: settings.VideoBitrate,
		Authorize:    func(token string, p whip.Publish) (string, error) { return srv.AuthorizePublish(token, p) },
		Quota:        func(org string) int { return cfg.Quotas.For(org).WHIPSessions },
		// In a fleet the quota counts every instance's sessions (the
		// Manager exists by the time an offer comes).
		FleetQuota: func(ctx context.Context, org, id string, quota int) (func(), bool, error) {
			return s.Manager.FleetQuota(ctx, org, recorder.QuotaWHIP, id, quota)
		},
		ValidID: func(id string) error { return recorder.ValidateID("conferenceId", id) },
		Full:    func() bool { return s.Manager != nil && s.Manager.Full() },
		Load: func() (int, int) {
			if s.Manager == nil {
				return 0, 0
			}
			return s.Manager.Load()
		},
		Logger: log,
	})
	if err != nil {
		return fail(err)
	}

	adapters := map[string]conference.Adapter{"whip": s.WHIP}
	if err := dialOutAdapters(cfg, settings, adapters, log); err != nil {
		return fail(err)
	}
	if s.Store, err = openStore(ctx, cfg); err != nil {
		return fail(err)
	}
	if s.Events, err = newEvents(ctx, s.Store, cfg, s.RecorderID, log); err != nil {
		return fail(err)
	}
	var remote recorder.Remote
	if cfg.ClusterEnabled() {
		internal := cfg.Cluster.InternalURL
		if internal == "" {
			internal = s.URL
		}
		if s.Node, err = cluster.New(ctx, cluster.Options{Store: s.Store, RecorderID: s.RecorderID, InternalURL: internal,
			PublicURL: s.URL, Capacity: cfg.Capacity.Streams, Heartbeat: cfg.Cluster.Heartbeat, Logger: log}); err != nil {
			return fail(err)
		}
		remote = s.Node
	}
	s.Manager, err = recorder.NewManager(ctx, recorder.Options{
		Events: s.Events, Remote: remote,
		Config: cfg, Store: s.Store, RecorderID: s.RecorderID,
		Adapters:   adapters,
		OpenBucket: OpenBucket(cfg, att),
		Logger:     log,
		Hooks:      s.prom.hooks(),
		StreamLoad: s.WHIP.Sessions,
	})
	if err != nil {
		return fail(err)
	}
	s.prom.register(s)
	var whipHandler http.Handler = s.WHIP
	if s.Node != nil {
		whipHandler = whipPinned(s.Node, func() *Server { return srv }, s.WHIP, log)
	}
	srv = New(Options{Manager: s.Manager, Keys: s.Keys, Attachments: att, WHIP: whipHandler, URLTTL: cfg.URLTTL, Logger: log, Events: s.Events,
		Tokens: NewPublishTokens(signingKey, cfg.Limits.PublishTokenTTL)})
	s.API = srv
	root := http.NewServeMux()
	metrics := metricsGuard(cfg.MetricsKey, s.prom.handler())
	if cfg.MetricsListen != "" {
		// /metrics (and /debug/pprof/) on an address of its own (an internal
		// network), not on Listen.
		ln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			return fail(fmt.Errorf("api: metricsListen: %w", err))
		}
		mm := http.NewServeMux()
		mm.Handle("GET /metrics", metrics)
		pprofHandlers(mm, cfg.MetricsKey) // pprof.go: profiles here only, never on Listen
		s.metrics = &http.Server{Handler: mm, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second}
		s.MetricsURL = "http://" + ln.Addr().String() + "/metrics"
		go s.metrics.Serve(ln)
	} else {
		root.Handle("GET /metrics", metrics)
	}
	root.Handle("/", srv)
	if s.Node != nil {
		root.Handle(cluster.CommandPath, s.Node.Handler(s.Manager))
		s.Node.SetLoad(func() int { load, _ := s.Manager.Load(); return load }, s.Manager.Draining)
		s.Node.Start()
		s.Node.Listen(s.Manager) // fleet-wide blackouts
		s.Node.Watch(s.Manager)  // takeover of a dead instance's recordings
	}
	// ReadTimeout bounds the headers and the body together: a body that
	// trickles in is cut off (limits.bodyTimeout). Reading ends with the body,
	// so long replies (the event stream, a stop that waits) are not cut.
	s.HTTP = &http.Server{Handler: s.prom.instrument(root), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 10*time.Second + cfg.Limits.BodyTimeout, IdleTimeout: 2 * time.Minute}
	return s, nil
}

// openStore opens the configured database: SQLite in the data directory by
// default, or PostgreSQL with the instance's own tables (upload queue) in
// the data directory's SQLite file.
func openStore(ctx context.Context, cfg *config.Config) (*store.Store, error) {
	local := filepath.Join(cfg.DataDir, databaseFile)
	sc := store.Config{Driver: cfg.Store.Driver, DSN: cfg.Store.DSN, LocalPath: local}
	if sc.Driver != store.DriverPostgres && sc.DSN == "" {
		sc.DSN = local
	}
	return store.OpenConfig(ctx, sc)
}

// metricsGuard requires "Authorization: Bearer <key>" on /metrics when key is set.
func metricsGuard(key string, h http.Handler) http.Handler {
	if key == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(key)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			writeError(w, http.StatusUnauthorized, "invalid_metrics_key", "/metrics needs the metrics key")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// dialOutAdapters adds an adapter for every application whose conferences
// are on a Janus server or behind WHEP endpoints, under AdapterKey(app).
func dialOutAdapters(cfg *config.Config, settings whip.Settings, adapters map[string]conference.Adapter, log *slog.Logger) error {
	var ice []webrtc.ICEServer
	for _, u := range cfg.WebRTC.ICEServers {
		ice = append(ice, webrtc.ICEServer{URLs: []string{u}})
	}
	var dialAPI *webrtc.API
	var whepAPI *whip.ReceiveAPI
	for id, app := range cfg.Applications {
		if app == nil || (app.Conference.Kind != "janus" && app.Conference.Kind != "whep") {
			continue
		}
		if dialAPI == nil {
			settings.DTLSServer = true
			settings.UDPMux = "" // the WHIP endpoint holds the mux port
			a, _, err := whip.NewAPI(settings)
			if err != nil {
				return err
			}
			// WHEP's connections see the endpoint's close_notify
			// (whep.Options.Receive); no mux: nothing to close.
			whepAPI, _, _, err = whip.NewAPIs(settings)
			if err != nil {
				return err
			}
			dialAPI = a
		}
		c := app.Conference
		switch c.Kind {
		case "janus":
			adapters[recorder.AdapterKey(id)] = janus.New(janus.Options{URL: c.URL, API: dialAPI, ICEServers: ice, Video: true, Logger: log})
		case "whep":
			adapters[recorder.AdapterKey(id)] = whep.New(whep.Options{URLTemplate: c.URLTemplate, Streams: c.Streams, Token: c.Token,
				API: dialAPI, Receive: whepAPI, ICEServers: ice, Video: true, Logger: log})
		}
	}
	return nil
}

// isLoopbackOnly reports whether the WebRTC configuration asks for loopback
// candidates only: includeLoopback with interfaces ["lo"].
func isLoopbackOnly(cfg *config.Config) bool {
	return cfg.WebRTC.IncludeLoopback && len(cfg.WebRTC.Interfaces) == 1 &&
		(cfg.WebRTC.Interfaces[0] == "lo" || cfg.WebRTC.Interfaces[0] == "lo0")
}

// Serve serves the API until Shutdown; it returns nil after a Shutdown.
func (s *Service) Serve() error {
	s.log.Info("recorder listening", "url", s.URL, "recorderId", s.RecorderID, "dataDir", s.Config.DataDir)
	if err := s.HTTP.Serve(s.Listener); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown finishes the running recordings (their files are written and
// uploaded) while the API still answers, then stops the HTTP server and
// closes everything. If ctx ends first, what is unfinished is left for
// recovery at the next start.
func (s *Service) Shutdown(ctx context.Context) error {
	err := s.Manager.Shutdown(ctx)
	if s.Node != nil {
		err = errors.Join(err, s.Node.Close(ctx))
	}
	hctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = errors.Join(err, s.HTTP.Shutdown(hctx))
	s.close()
	return err
}

func (s *Service) close() {
	if s.metrics != nil {
		s.metrics.Close()
	}
	if s.Node != nil {
		s.Node.Stop()
	}
	if s.WHIP != nil {
		s.WHIP.Close()
	}
	if s.udp != nil {
		s.udp()
	}
	if s.Events != nil {
		s.Events.Close()
	}
	if s.Store != nil {
		s.Store.Close()
	}
	if s.Listener != nil {
		s.Listener.Close()
	}
}

// Identity is what a recorder's data directory (or its configuration) fixes
// across restarts: its id, the key of its signed URLs and its API keys.
type Identity struct {
	RecorderID string
	SigningKey string
	Keys       []config.APIKey
	// GeneratedKey is the API key generated by this call (the first start
	// without configured keys), to be printed once; empty otherwise.
	GeneratedKey string
}

// LoadIdentity returns the configured identity, generating what is missing
// and persisting it in the data directory (files recorder-id, signing.key,
// api-key, mode 0600).
func LoadIdentity(cfg *config.Config) (*Identity, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("api: data directory: %w", err)
	}
	var id Identity
	var err error
	if id.RecorderID, err = persisted(cfg.DataDir, recorderIDFile, cfg.RecorderID, func() string { return "rec-" + randomHex(6) }); err != nil {
		return nil, err
	}
	if id.SigningKey, err = persisted(cfg.DataDir, signingKeyFile, cfg.SigningKey, func() string { return randomHex(32) }); err != nil {
		return nil, err
	}
	id.Keys = cfg.APIKeys
	if len(id.Keys) == 0 {
		existed := fileExists(filepath.Join(cfg.DataDir, apiKeyFile))
		key, err := persisted(cfg.DataDir, apiKeyFile, "", func() string { return "rk_" + randomHex(24) })
		if err != nil {
			return nil, err
		}
		if !existed {
			id.GeneratedKey = key
		}
		id.Keys = []config.APIKey{{Key: key, OrganizationID: "default", Applications: []string{"*"}}}
	}
	return &id, nil
}

// persisted returns configured when set; otherwise the content of file in dir,
// creating it with gen() on first use (mode 0600).
func persisted(dir, file, configured string, gen func() string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	path := filepath.Join(dir, file)
	if b, err := os.ReadFile(path); err == nil {
		if v := strings.TrimSpace(string(b)); v != "" {
			return v, nil
		}
	}
	v := gen()
	if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("api: persist %s: %w", file, err)
	}
	return v, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// OpenBucket returns the recorder's BucketOpener for cfg: storage/open with
// LOCAL objects under {dataDir}/storage by default and the recorder's own
// signed attachment URLs for LOCAL and SFTP objects.
func OpenBucket(cfg *config.Config, att *recorder.Attachments) recorder.BucketOpener {
	return open.For(open.Options{LocalDir: filepath.Join(cfg.DataDir, "storage"), SignURL: att.SignKeyFunc})
}
