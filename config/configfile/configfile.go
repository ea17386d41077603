// Package configfile reads the recorder's configuration file (YAML) into a
// config.Config: ${VAR} references, unknown keys refused, defaults filled in
// and the whole validated. It is apart from package config so that the
// engine, which takes a config.Config, does not link a YAML parser.
package configfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"

	"gopkg.in/yaml.v3"

	"github.com/rtcrec/recorder/config"
)

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Parse parses a YAML configuration. ${VAR} is replaced by the value of
// the environment variable VAR (empty when unset) before parsing, so a value
// holding YAML syntax should be quoted. A key the Config does not know is an
// error naming the key and its line.
func Parse(data []byte) (*config.Config, error) {
	data = envRef.ReplaceAllFunc(data, func(m []byte) []byte {
		return []byte(os.Getenv(string(m[2 : len(m)-1])))
	})
	var c config.Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) { // io.EOF: empty file
		return nil, fmt.Errorf("recorder: config: %w", err)
	}
	if err := c.Migrate(); err != nil {
		return nil, err
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Load reads and parses the configuration file at path.
func Load(path string) (*config.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("recorder: config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return c, nil
}
