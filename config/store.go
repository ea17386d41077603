package config

import (
	"errors"
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
	// Capacity is deprecated: the fleet places by capacity.streams, as
	// admission does (recorder/capacity.go). A file that sets it is read
	// with it as capacity.streams and a notice (Config.Migrate).
	Capacity int `yaml:"capacity"`
	// Heartbeat is the interval of this instance's heartbeats (default 2s);
	// an instance silent for three of them is dead.
	Heartbeat time.Duration `yaml:"heartbeat"`
}

// ClusterEnabled reports whether the instance is a member of a fleet.
func (c *Config) ClusterEnabled() bool { return c.Store.Driver == "postgres" }

func (c *ClusterConfig) setDefaults() {
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

// Migrate reads the deprecated keys of a configuration file as their
// replacements, with a notice for the log (configfile.Parse calls it before
// SetDefaults):
//
//   - cluster.capacity (recordings an instance took at most, for the fleet's
//     placement) is capacity.streams, the one capacity that placement and
//     admission use. It is read as that many streams: a recording counts as
//     at least one stream, so the limit is no looser than it was. Both keys
//     at once is an error naming the one to keep.
func (c *Config) Migrate() error {
	if n := c.Cluster.Capacity; n != 0 {
		switch {
		case n < 0:
			return errors.New("recorder: config: cluster.capacity is replaced by capacity.streams (streams this instance takes at most); remove it")
		case c.Capacity.Streams != 0:
			return errors.New("recorder: config: cluster.capacity and capacity.streams are both set: cluster.capacity is replaced by capacity.streams; remove cluster.capacity")
		}
		c.Capacity.Streams, c.Cluster.Capacity = n, 0
		c.Notices = append(c.Notices, fmt.Sprintf("config: cluster.capacity is deprecated and read as capacity.streams: %d "+
			"(the fleet now places by streams, as admission does: a recording counts one stream per track it records, at least one); "+
			"set capacity.streams instead", n))
	}
	return nil
}
