package config

import (
	"testing"

	"gopkg.in/yaml.v3"
)

// TestConfig_CompositeFleet: send and take need a fleet; other values are
// refused.
func TestConfig_CompositeFleet(t *testing.T) {
	for _, tc := range []struct {
		fleet, driver string
		ok            bool
	}{
		{"", "sqlite", true}, {"send", "postgres", true}, {"take", "postgres", true},
		{"send", "sqlite", false}, {"take", "sqlite", false}, {"elsewhere", "postgres", false},
	} {
		cfg := Default()
		cfg.Store.Driver = tc.driver
		if tc.driver == "postgres" {
			cfg.Store.DSN = "postgres://127.0.0.1:1/x"
		}
		cfg.Composite.Fleet = tc.fleet
		if err := cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("fleet %q on %s: %v", tc.fleet, tc.driver, err)
		}
	}
}

// TestWebRTCConfig_MuxAddress: one UDP socket for every connection unless
// udpMux is "off", or unset with a udpPortRange (a socket per connection in
// that range).
func TestWebRTCConfig_MuxAddress(t *testing.T) {
	for _, c := range []struct {
		mux, ports, want string
	}{
		{"", "", ":0"},
		{"off", "", ""},
		{"off", "40000-40099", ""},
		{"", "40000-40099", ""},
		{":0", "", ":0"},
		{":40000", "", ":40000"},
		{"10.0.0.5:40000", "40000-40099", "10.0.0.5:40000"},
	} {
		w := WebRTCConfig{UDPMux: c.mux, UDPPortRange: c.ports}
		if got := w.MuxAddress(); got != c.want {
			t.Errorf("udpMux %q, udpPortRange %q: mux address %q, want %q", c.mux, c.ports, got, c.want)
		}
		if def := c.mux == "" && c.ports == ""; w.MuxIsDefault() != def {
			t.Errorf("udpMux %q, udpPortRange %q: default mux %t, want %t", c.mux, c.ports, w.MuxIsDefault(), def)
		}
	}
}

// TestWebRTCConfig_DirectAudioOn: direct audio is on unless the file sets
// webrtc.directAudio false.
func TestWebRTCConfig_DirectAudioOn(t *testing.T) {
	for _, c := range []struct {
		yaml string
		want bool
	}{
		{"udpMux: \":0\"", true},
		{"directAudio: true", true},
		{"directAudio: false", false},
	} {
		var w WebRTCConfig
		if err := yaml.Unmarshal([]byte(c.yaml), &w); err != nil {
			t.Fatal(err)
		}
		if got := w.DirectAudioOn(); got != c.want {
			t.Errorf("%s: direct audio %t, want %t", c.yaml, got, c.want)
		}
	}
}
