// Package config is the recorder's configuration: its types, its defaults
// and its validation (DESIGN.md "Configuration"). The file is read by
// config/configfile for the binary (cmd/recorder) and the HTTP layer (api);
// the engine (recorder.NewManager) takes the Config and never reads YAML.
// Ids in it follow the rules of recorder/ids.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rtcrec/recorder/composition/composite"
	"github.com/rtcrec/recorder/media"
	"github.com/rtcrec/recorder/media/pause"
	"github.com/rtcrec/recorder/recorder/ids"
	"github.com/rtcrec/recorder/storage"
)

// Config is the recorder's configuration file (DESIGN.md "Configuration").
// Every field is optional; SetDefaults fills in what is missing.
type Config struct {
	Listen       string                  `yaml:"listen"`
	PublicURL    string                  `yaml:"publicURL"`
	DataDir      string                  `yaml:"dataDir"`
	RecorderID   string                  `yaml:"recorderId"`
	SigningKey   string                  `yaml:"signingKey"`
	URLTTL       time.Duration           `yaml:"urlTTL"`
	APIKeys      []APIKey                `yaml:"apiKeys"`
	WebRTC       WebRTCConfig            `yaml:"webrtc"`
	Defaults     RecordingDefaults       `yaml:"defaults"`
	Applications map[string]*Application `yaml:"applications"`
	Uploads      UploadConfig            `yaml:"uploads"`  // upload queue
	Shutdown     ShutdownConfig          `yaml:"shutdown"` // graceful drain
	Store        StoreConfig             `yaml:"store"`    // database
	Cluster      ClusterConfig           `yaml:"cluster"`  // fleet membership
	Limits       Limits                  `yaml:"limits"`   // bounds on what one request may ask
	Quotas       QuotaConfig             `yaml:"quotas"`   // per organization
	// MetricsListen, when set, serves /metrics on this address only (not on
	// Listen); MetricsKey, when set, is required as its bearer token.
	MetricsListen string `yaml:"metricsListen"`
	MetricsKey    string `yaml:"metricsKey"`
	// Organizations: seed 001's customer ids and seed 003's agents.
	Organizations map[string]*Organization `yaml:"organizations"`
	Composite     CompositeConfig          `yaml:"composite"` // composite video queue
	Capacity      CapacityConfig           `yaml:"capacity"`  // streams this instance takes at most
	Runtime       RuntimeConfig            `yaml:"runtime"`   // Go's garbage collector

	// Notices are what the service logs at start about this configuration:
	// deprecated keys it read, and as what (Migrate; not from YAML).
	Notices []string `yaml:"-"`
}

// The scopes of an API key (DESIGN.md "Security model").
const (
	ScopeAdmin   = "admin"   // storage verification and storage info
	ScopeControl = "control" // start, stop, pause, resume, metadata, blackouts, chat, cobrowse, delete, publish tokens
	ScopeRead    = "read"    // state, recordings, events, signed URLs
	ScopePublish = "publish" // WHIP publishing
)

// APIKey maps a key to the organization it acts for, the applications it may
// use and its scopes.
type APIKey struct {
	Key            string   `yaml:"key"`
	OrganizationID string   `yaml:"organizationId"`
	Applications   []string `yaml:"applications"` // "*": every application of the key's organization
	// Scopes of the key: admin, control, read, publish. A key without scopes
	// has them all (the configuration of earlier versions keeps working).
	Scopes []string `yaml:"scopes"`
}

// Allows reports whether the key's application list names applicationID
// (or is "*"). Whether the application belongs to the key's organization is
// Config.Allows's question.
func (k *APIKey) Allows(applicationID string) bool {
	for _, a := range k.Applications {
		if a == "*" || a == applicationID {
			return true
		}
	}
	return false
}

// HasScope reports whether the key carries scope; a key without scopes
// carries every scope.
func (k *APIKey) HasScope(scope string) bool {
	if len(k.Scopes) == 0 {
		return true
	}
	for _, s := range k.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// WebRTCConfig configures the ICE agent of every PeerConnection.
type WebRTCConfig struct {
	Interfaces      []string `yaml:"interfaces"`
	IncludeLoopback bool     `yaml:"includeLoopback"`
	UDPPortRange    string   `yaml:"udpPortRange"`
	// UDPMux is the address of one UDP socket that receives every
	// connection ("host:port"; an empty host: every address ICE gathers
	// on, ":0" an ephemeral port on each); "off": a socket per connection;
	// unset: ":0", or a socket per connection within UDPPortRange when
	// that is set (MuxAddress).
	UDPMux     string   `yaml:"udpMux"`
	NATIPs     []string `yaml:"natIPs"`
	ICEServers []string `yaml:"iceServers"`
	// IPv4Only gathers IPv4 addresses only. On a host with a global IPv6
	// address too, every connection otherwise has a second candidate: a
	// second reader goroutine and 8 KiB buffer in pion/ice, about 17 KB
	// per stream. Set it where no publisher reaches the recorder over IPv6
	// alone (one without IPv4 could not connect).
	IPv4Only bool `yaml:"ipv4Only"`
	// DirectAudio: the UDP mux's reader decrypts the SRTP of WHIP
	// publishers without video itself and a worker per core hands each
	// packet to its track, skipping three of Pion's goroutines per
	// packet; the recorder then answers them as the DTLS server
	// (a=setup:passive). Unset: on (DirectAudioOn;
	// whip.Settings.DirectAudio; needs the mux).
	DirectAudio *bool `yaml:"directAudio"`
	// VideoBitrate (bits per second) is asked of every WHIP video sender
	// with REMB, about once a second from its first packet; default
	// 2500000; negative: none (the sender gets no bandwidth feedback but
	// receiver reports). Past three quarters of capacity.streams it asks
	// less in proportion, a quarter of it at capacity
	// (whip.VideoBitrateAt).
	VideoBitrate int64 `yaml:"videoBitrate"`
}

// DefaultVideoBitrate is webrtc.videoBitrate's default: a 720p camera's
// picture, or a 1080p screen's.
const DefaultVideoBitrate = 2_500_000

// UDPMuxOff is the udpMux value for one UDP socket per connection.
const UDPMuxOff = "off"

// DefaultUDPMux is udpMux's default: one socket on every address ICE
// gathers on, an ephemeral port on each.
const DefaultUDPMux = ":0"

// DirectAudioOn reports whether the UDP mux decrypts and hands over the
// audio of WHIP publishers without video (DirectAudio; on unless set
// false).
func (w *WebRTCConfig) DirectAudioOn() bool { return w.DirectAudio == nil || *w.DirectAudio }

// MuxAddress is the address the WHIP endpoint's UDP mux listens on, or ""
// for one socket per connection ("off"). Unset, it is DefaultUDPMux: the mux
// costs less CPU per stream (BENCHMARKS.md); but a configuration that sets
// udpPortRange alone keeps its socket per connection within that range (a
// firewall opened for the range).
func (w *WebRTCConfig) MuxAddress() string {
	switch {
	case w.UDPMux == UDPMuxOff:
		return ""
	case w.UDPMux == "" && w.UDPPortRange != "":
		return ""
	case w.UDPMux == "":
		return DefaultUDPMux
	}
	return w.UDPMux
}

// MuxIsDefault reports whether MuxAddress is the default mux (udpMux and
// udpPortRange unset): the WHIP endpoint then falls back to a socket per
// connection where the kernel grants the mux's socket too small a receive
// buffer (whip.Settings.UDPMuxFallback).
func (w *WebRTCConfig) MuxIsDefault() bool {
	return w.UDPMux == "" && w.UDPPortRange == ""
}

// validateMux checks that udpMux is "off" or HOST:PORT (HOST an IP address
// or empty).
func (w *WebRTCConfig) validateMux() error {
	if w.UDPMux == "" || w.UDPMux == UDPMuxOff {
		return nil
	}
	host, port, err := net.SplitHostPort(w.UDPMux)
	if err == nil {
		if _, perr := strconv.ParseUint(port, 10, 16); perr != nil || (host != "" && net.ParseIP(host) == nil) {
			err = errors.New("the host must be an IP address or empty, the port 0–65535")
		}
	}
	if err != nil {
		return fmt.Errorf("recorder: webrtc.udpMux %q is not HOST:PORT or \"off\": %w", w.UDPMux, err)
	}
	return nil
}

// PortRange parses UDPPortRange ("40000-40999"); zero values when empty.
func (w *WebRTCConfig) PortRange() (lo, hi uint16, err error) {
	if w.UDPPortRange == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(w.UDPPortRange, "-")
	l, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 16)
	h, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 16)
	if !ok || err1 != nil || err2 != nil || l == 0 || l > h {
		return 0, 0, fmt.Errorf("recorder: webrtc.udpPortRange %q is not LOW-HIGH", w.UDPPortRange)
	}
	return uint16(l), uint16(h), nil
}

// MixSettings are the mix WAV's format and its latency budget.
type MixSettings struct {
	// None: the recording has no mix ("mix": "none" in a start request):
	// its audio tracks are written as they come and nothing is decoded.
	None       bool `yaml:"-" json:"-"`
	SampleRate int  `yaml:"sampleRate" json:"sampleRate"`
	Channels   int  `yaml:"channels" json:"channels"`
	// Latency is how long the mixer waits for late audio before it writes a
	// part of the mix without it (media.MixConfig.Latency); default 5 s. In
	// JSON a Go duration ("5s") or seconds ("5"); a number is nanoseconds.
	Latency time.Duration `yaml:"latency" json:"latency"`
}

// mixSettingsJSON is MixSettings with the latency as written in JSON.
type mixSettingsJSON struct {
	SampleRate int             `json:"sampleRate"`
	Channels   int             `json:"channels"`
	Latency    json.RawMessage `json:"latency,omitempty"`
}

// MarshalJSON writes the latency as a Go duration ("5s"), and no mix as "none".
func (m MixSettings) MarshalJSON() ([]byte, error) {
	if m.None {
		return []byte(`"none"`), nil
	}
	j := mixSettingsJSON{SampleRate: m.SampleRate, Channels: m.Channels}
	if m.Latency != 0 {
		j.Latency, _ = json.Marshal(m.Latency.String())
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads "none" (no mix) or an object whose latency is a Go
// duration or seconds in a string, or nanoseconds in a number.
func (m *MixSettings) UnmarshalJSON(b []byte) error {
	if b = bytes.TrimSpace(b); len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil || s != "none" {
			return fmt.Errorf("mix: want \"none\" or an object {sampleRate, channels, latency}, not %s", b)
		}
		*m = MixSettings{None: true}
		return nil
	}
	var j mixSettingsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*m = MixSettings{SampleRate: j.SampleRate, Channels: j.Channels}
	if len(j.Latency) == 0 || string(j.Latency) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(j.Latency, &s); err != nil {
		var ns int64
		if err := json.Unmarshal(j.Latency, &ns); err != nil {
			return fmt.Errorf("latency: want a duration such as \"5s\", not %s", j.Latency)
		}
		m.Latency = time.Duration(ns)
		return nil
	}
	if sec, err := strconv.ParseFloat(s, 64); err == nil && sec >= 0 && sec < 1e6 {
		m.Latency = time.Duration(sec * float64(time.Second))
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("latency: %q is not a duration such as \"5s\"", s)
	}
	m.Latency = d
	return nil
}

// RecordingDefaults apply to every recording unless its start request says otherwise.
type RecordingDefaults struct {
	Mix           MixSettings   `yaml:"mix"`
	PauseBehavior string        `yaml:"pauseBehavior"`
	MaxDuration   time.Duration `yaml:"maxDuration"`
	MaxBlackout   time.Duration `yaml:"maxBlackout"` // longest blackout (seed 003's maxagentblackout); default 1h
}

// Application is one applicationId's conference adapter and storage profile.
type Application struct {
	// OrganizationID owns the application: only its keys may use it, and its
	// storage and webhooks see only its recordings. Required once the
	// configuration has keys of more than one organization.
	OrganizationID string           `yaml:"organizationId"`
	Conference     ConferenceConfig `yaml:"conference"`
	Storage        *StorageProfile  `yaml:"storage"`
	Webhooks       []WebhookConfig  `yaml:"webhooks"`
	// BackupStorage, when set, takes an upload that failed BackupAfter
	// times (default 3) on Storage.
	BackupStorage *StorageProfile `yaml:"backupStorage"`
	BackupAfter   int             `yaml:"backupAfter"`
	// Composite, when set, makes composite.mp4 of every recording of the
	// application that does not ask otherwise.
	Composite *composite.Settings `yaml:"composite"`
}

// WebhookConfig is one webhook of an application: events (exact types such as
// "state.updated", "upload.*" or "*"; empty: all) are POSTed to URL, signed
// with Secret (see recorder/events).
type WebhookConfig struct {
	URL    string   `yaml:"url"`
	Secret string   `yaml:"secret"`
	Events []string `yaml:"events"`
}

// ConferenceConfig chooses the conference adapter of an application.
type ConferenceConfig struct {
	Kind        string   `yaml:"kind"`        // whip (default), janus, whep
	URL         string   `yaml:"url"`         // janus: the HTTP API base, http://host:8088/janus
	URLTemplate string   `yaml:"urlTemplate"` // whep: endpoint URL with {conferenceId}, {organizationId}, {streamId}
	Streams     []string `yaml:"streams"`     // whep: the values of {streamId}
	Token       string   `yaml:"token"`       // whep: bearer token of the endpoints
}

// The storage providers of the API (seed 004) and LOCAL.
const (
	ProviderS3    = storage.ProviderS3
	ProviderAzure = storage.ProviderAzure
	ProviderGCS   = storage.ProviderGCS
	ProviderSFTP  = storage.ProviderSFTP
	ProviderLocal = storage.ProviderLocal
)

// StorageProfile is where an application's recordings go (storage.Profile).
type StorageProfile = storage.Profile

// Application returns the configuration of applicationID: the configured one,
// or the embedded default (WHIP, LOCAL storage).
func (c *Config) Application(applicationID string) *Application {
	if a := c.Applications[applicationID]; a != nil {
		return a
	}
	return &Application{Conference: ConferenceConfig{Kind: "whip"}}
}

// Allows reports whether key may act for applicationID: the key lists it
// (or "*"), and a configured application belongs to the key's organization.
// An application that is not configured runs on the embedded defaults
// (WHIP, LOCAL storage) and, like every recording, keeps each
// organization's objects under its own key prefix.
func (c *Config) Allows(key *APIKey, applicationID string) bool {
	if key == nil || !key.Allows(applicationID) {
		return false
	}
	if a := c.Applications[applicationID]; a != nil && a.OrganizationID != "" && a.OrganizationID != key.OrganizationID {
		return false
	}
	return true
}

// Owner returns the organization of a configured application; empty when
// the application is not configured or names no organization.
func (c *Config) Owner(applicationID string) string {
	if a := c.Applications[applicationID]; a != nil {
		return a.OrganizationID
	}
	return ""
}

// Profile returns the storage profile of applicationID; an application without
// one stores LOCAL under {dataDir}/storage.
func (c *Config) Profile(applicationID string) *StorageProfile {
	if p := c.Application(applicationID).Storage; p != nil {
		return p
	}
	return &StorageProfile{Provider: ProviderLocal, Dir: filepath.Join(c.DataDir, "storage")}
}

// Default is the configuration used without a file: embedded defaults.
func Default() *Config {
	var c Config
	c.SetDefaults()
	return &c
}

// SetDefaults fills in what the configuration leaves out.
func (c *Config) SetDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.URLTTL <= 0 {
		c.URLTTL = time.Hour
	}
	if c.WebRTC.VideoBitrate == 0 {
		c.WebRTC.VideoBitrate = DefaultVideoBitrate
	}
	if c.Defaults.Mix.SampleRate == 0 {
		c.Defaults.Mix.SampleRate = 8000
	}
	if c.Defaults.Mix.Channels == 0 {
		c.Defaults.Mix.Channels = 1
	}
	if c.Defaults.Mix.Latency == 0 {
		c.Defaults.Mix.Latency = media.DefaultLatency
	}
	if c.Defaults.PauseBehavior == "" {
		c.Defaults.PauseBehavior = string(pause.Silence)
	}
	if c.Defaults.MaxDuration <= 0 {
		c.Defaults.MaxDuration = 4 * time.Hour
	}
	if c.Defaults.MaxBlackout <= 0 {
		c.Defaults.MaxBlackout = time.Hour
	}
	if c.Uploads.ChunkInterval == 0 {
		c.Uploads.ChunkInterval = time.Minute // upload while recording; negative: off
		if c.ClusterEnabled() {
			// A fleet takes over a dead instance's recordings from their
			// parts: at most one interval is lost.
			c.Uploads.ChunkInterval = 10 * time.Second
		}
	}
	c.Shutdown.setDefaults()
	c.Store.setDefaults()
	c.Cluster.setDefaults()
	if c.Limits.MaxDuration <= 0 && c.Defaults.MaxDuration > 24*time.Hour {
		c.Limits.MaxDuration = c.Defaults.MaxDuration
	}
	c.Limits.setDefaults()
	c.Quotas.setDefaults()
	for _, a := range c.Applications {
		if a != nil && a.Conference.Kind == "" {
			a.Conference.Kind = "whip"
		}
	}
}

// Validate checks the configuration (with its defaults filled in): every
// error says which key is wrong and starts "recorder: config:".
func (c *Config) Validate() error {
	orgs := map[string]bool{}
	keys := map[string]bool{}
	for i, k := range c.APIKeys {
		if k.Key == "" || k.OrganizationID == "" {
			return fmt.Errorf("recorder: config: apiKeys[%d] needs key and organizationId", i)
		}
		if err := ids.Validate("organizationId", k.OrganizationID); err != nil {
			return fmt.Errorf("recorder: config: apiKeys[%d]: %w", i, err)
		}
		if keys[k.Key] {
			return fmt.Errorf("recorder: config: apiKeys[%d]: the same key is configured twice", i)
		}
		keys[k.Key] = true
		orgs[k.OrganizationID] = true
		for _, s := range k.Scopes {
			switch s {
			case ScopeAdmin, ScopeControl, ScopeRead, ScopePublish:
			default:
				return fmt.Errorf("recorder: config: apiKeys[%d].scopes: %q is not admin, control, read or publish", i, s)
			}
		}
	}
	if c.Cluster.Capacity != 0 {
		return errors.New("recorder: config: cluster.capacity is replaced by capacity.streams")
	}
	if c.Capacity.Streams < 0 {
		return errors.New("recorder: config: capacity.streams must not be negative")
	}
	if err := c.Runtime.validate(); err != nil {
		return err
	}
	if err := c.Limits.validate(); err != nil {
		return err
	}
	if c.Defaults.MaxDuration > c.Limits.MaxDuration {
		return fmt.Errorf("recorder: config: defaults.maxDuration %s is more than limits.maxDuration %s", c.Defaults.MaxDuration, c.Limits.MaxDuration)
	}
	if err := c.Quotas.validate(); err != nil {
		return err
	}
	if c.RecorderID != "" {
		if err := ids.Validate("recorderId", c.RecorderID); err != nil {
			return fmt.Errorf("recorder: config: %w", err)
		}
	}
	if _, _, err := c.WebRTC.PortRange(); err != nil {
		return err
	}
	if err := c.WebRTC.validateMux(); err != nil {
		return err
	}
	if err := c.Shutdown.validate(); err != nil {
		return err
	}
	if err := c.Store.validate(); err != nil {
		return err
	}
	if err := c.Cluster.validate(); err != nil {
		return err
	}
	if err := c.Defaults.Mix.Validate(); err != nil {
		return fmt.Errorf("recorder: config: defaults.mix: %w", err)
	}
	if err := c.validateOrganizations(); err != nil {
		return err
	}
	for id, a := range c.Applications {
		if err := ids.Validate("applicationId", id); err != nil {
			return fmt.Errorf("recorder: config: applications: %w", err)
		}
		if a == nil {
			continue
		}
		if a.OrganizationID == "" && len(orgs) > 1 {
			return fmt.Errorf("recorder: config: applications.%s needs organizationId: the API keys belong to more than one organization", id)
		}
		if a.OrganizationID != "" {
			if err := ids.Validate("organizationId", a.OrganizationID); err != nil {
				return fmt.Errorf("recorder: config: applications.%s: %w", id, err)
			}
		}
		switch a.Conference.Kind {
		case "whip":
		case "janus":
			if a.Conference.URL == "" {
				return fmt.Errorf("recorder: config: applications.%s.conference: kind janus needs url", id)
			}
		case "whep":
			if a.Conference.URLTemplate == "" {
				return fmt.Errorf("recorder: config: applications.%s.conference: kind whep needs urlTemplate", id)
			}
		default:
			return fmt.Errorf("recorder: config: applications.%s.conference.kind %q is not whip, janus or whep", id, a.Conference.Kind)
		}
		if a.Storage != nil {
			switch a.Storage.Provider {
			case ProviderS3, ProviderAzure, ProviderGCS, ProviderSFTP, ProviderLocal:
			default:
				return fmt.Errorf("recorder: config: applications.%s.storage.provider %q is not one of AMAZON_S3, AZURE_BLOB, GOOGLE_CLOUD, SFTP_STORAGE, LOCAL", id, a.Storage.Provider)
			}
		}
		if a.Composite != nil {
			if err := a.Composite.WithDefaults().Validate(); err != nil {
				return fmt.Errorf("recorder: config: applications.%s.composite: %w", id, err)
			}
		}
	}
	if cc := c.Composite; cc.Workers < 0 || cc.Queue < 0 || cc.Threads < 0 || cc.Nice > 19 || cc.Nice < -1 {
		return errors.New("recorder: config: composite: workers, queue and threads are not negative; nice is -1 (unchanged) to 19")
	}
	if err := c.Composite.validateFleet(c.ClusterEnabled()); err != nil {
		return err
	}
	return nil
}

// maxLatency is the largest latency budget: each audio track's ring holds
// the budget (16 KB a second at 8 kHz).
const maxLatency = 60 * time.Second

// Validate checks the mix format (8, 16 or 48 kHz; one or two channels)
// and the latency budget (0 for the default, or 100 ms to maxLatency).
func (m MixSettings) Validate() error {
	switch m.SampleRate {
	case 8000, 16000, 48000:
	default:
		return fmt.Errorf("sampleRate %d is not 8000, 16000 or 48000", m.SampleRate)
	}
	if m.Channels != 1 && m.Channels != 2 {
		return fmt.Errorf("channels %d is not 1 or 2", m.Channels)
	}
	if m.Latency != 0 && (m.Latency < 100*time.Millisecond || m.Latency > maxLatency) {
		return fmt.Errorf("latency %v is not between 100ms and %v", m.Latency, maxLatency)
	}
	return nil
}
