package recorder

import "fmt"

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
