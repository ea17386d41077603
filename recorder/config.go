package recorder

import "github.com/rtcrec/recorder/config"

// The configuration is package config (and its YAML reader
// config/configfile, which the engine does not link). These aliases keep
// code written against recorder's names building for one session; new code
// uses config. They go in the next session.
type (
	Config            = config.Config
	APIKey            = config.APIKey
	WebRTCConfig      = config.WebRTCConfig
	MixSettings       = config.MixSettings
	RecordingDefaults = config.RecordingDefaults
	Application       = config.Application
	WebhookConfig     = config.WebhookConfig
	ConferenceConfig  = config.ConferenceConfig
	StorageProfile    = config.StorageProfile
	StoreConfig       = config.StoreConfig
	ClusterConfig     = config.ClusterConfig
	Organization      = config.Organization
	AgentConfig       = config.AgentConfig
	Limits            = config.Limits
	Quota             = config.Quota
	QuotaConfig       = config.QuotaConfig
	ShutdownConfig    = config.ShutdownConfig
	UploadConfig      = config.UploadConfig
	CompositeConfig   = config.CompositeConfig
	CapacityConfig    = config.CapacityConfig
)

// Aliases of config's constants (see above).
const (
	ScopeAdmin         = config.ScopeAdmin
	ScopeControl       = config.ScopeControl
	ScopeRead          = config.ScopeRead
	ScopePublish       = config.ScopePublish
	ProviderS3         = config.ProviderS3
	ProviderAzure      = config.ProviderAzure
	ProviderGCS        = config.ProviderGCS
	ProviderSFTP       = config.ProviderSFTP
	ProviderLocal      = config.ProviderLocal
	ShutdownStop       = config.ShutdownStop
	ShutdownWait       = config.ShutdownWait
	CompositeFleetSend = config.CompositeFleetSend
	CompositeFleetTake = config.CompositeFleetTake
)

// DefaultConfig is config.Default (see above).
func DefaultConfig() *Config { return config.Default() }

// NameUUID is config.NameUUID (see above).
func NameUUID(organizationID, name string) string { return config.NameUUID(organizationID, name) }
