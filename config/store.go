package config

import (
	"fmt"
	"net/url"
	"time"
)

// StoreConfig chooses the database (config key store). The default is the
// embedded SQLite file {dataDir}/recorder.db; driver postgres puts the
// recordings, blackouts and fleet state of every instance into one
// PostgreSQL database (DESIGN.md "Persistence").
type StoreConfig struct {
	Driver string `yaml:"driver"` // sqlite (default) | postgres
	// DSN is the SQLite file (default {dataDir}/recorder.db) or the
	// PostgreSQL connection string, e.g. postgres://rec:${PGPASSWORD}@db:5432/recorder?sslmode=require.
	DSN string `yaml:"dsn"`
}

func (c *StoreConfig) setDefaults() {
	if c.Driver == "" {
		c.Driver = "sqlite"
	}
}

func (c *StoreConfig) validate() error {
	switch c.Driver {
	case "sqlite":
	case "postgres":
		if c.DSN == "" {
			return fmt.Errorf("recorder: config: store: driver postgres needs dsn")
		}
	default:
		return fmt.Errorf("recorder: config: store.driver %q is not sqlite or postgres", c.Driver)
	}
	return nil
}

// ClusterConfig describes this instance to the fleet (config key cluster);
// it applies with store.driver postgres, where every instance sharing the
// database is a member (recorder/cluster).
type ClusterConfig struct {
	// InternalURL is where the other instances reach this one (forwarded
	// commands); default: publicURL.
	InternalURL string `yaml:"internalURL"`
	// Capacity is how many recordings this instance takes at most (default 100).
	Capacity int `yaml:"capacity"`
	// Heartbeat is the interval of this instance's heartbeats (default 2s);
	// an instance silent for three of them is dead.
	Heartbeat time.Duration `yaml:"heartbeat"`
}

// ClusterEnabled reports whether the instance is a member of a fleet.
func (c *Config) ClusterEnabled() bool { return c.Store.Driver == "postgres" }

func (c *ClusterConfig) setDefaults() {
	if c.Capacity <= 0 {
		c.Capacity = 100
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 2 * time.Second
	}
}

func (c *ClusterConfig) validate() error {
	if c.InternalURL != "" {
		u, err := url.Parse(c.InternalURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("recorder: config: cluster.internalURL %q is not an http(s) URL", c.InternalURL)
		}
	}
	return nil
}
