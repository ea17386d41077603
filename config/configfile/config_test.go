package configfile

import (
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/recorder/ids"
)

func TestParseConfig(t *testing.T) {
	t.Setenv("TEST_REC_KEY", "s3cret")
	c, err := Parse([]byte(`
listen: 127.0.0.1:9999
urlTTL: 30m
apiKeys:
  - key: ${TEST_REC_KEY}
    organizationId: org1
    applications: ["*"]
defaults:
  maxDuration: 1h
applications:
  app1:
    storage:
      provider: LOCAL
      dir: /tmp/x
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9999" || c.URLTTL != 30*time.Minute || c.APIKeys[0].Key != "s3cret" {
		t.Errorf("parsed %+v", c)
	}
	if c.Defaults.Mix.SampleRate != 8000 || c.Defaults.Mix.Channels != 1 || c.Defaults.MaxDuration != time.Hour {
		t.Errorf("defaults %+v", c.Defaults)
	}
	if c, err := Parse([]byte("runtime: {gcPercent: 50, memoryLimitMB: 2048}\n")); err != nil || c.Runtime.GCPercent != 50 || c.Runtime.MemoryLimitMB != 2048 {
		t.Errorf("runtime: %+v, %v", c.Runtime, err)
	}
	if c.Applications["app1"].Conference.Kind != "whip" {
		t.Errorf("conference kind %q, want whip", c.Applications["app1"].Conference.Kind)
	}
}

func TestParseConfig_Errors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown key names key and line", "listen: x\nlisten2: y\n", "line 2: field listen2 not found"},
		{"nested unknown key", "webrtc:\n  includeLoopbak: true\n", "line 2: field includeLoopbak"},
		{"bad provider", "applications:\n  a:\n    storage: {provider: FTP}\n", "FTP"},
		{"bad app id", "applications:\n  ../a: {}\n", "applicationId"},
		{"bad port range", "webrtc: {udpPortRange: 5-1}\n", "udpPortRange"},
		{"udp mux without port", "webrtc: {udpMux: \"0.0.0.0\"}\n", "webrtc.udpMux \"0.0.0.0\" is not HOST:PORT"},
		{"udp mux host not an address", "webrtc: {udpMux: \"example.com:5000\"}\n", "udpMux \"example.com:5000\""},
		{"udp mux port out of range", "webrtc: {udpMux: \":70000\"}\n", "udpMux \":70000\""},
		{"key without org", "apiKeys: [{key: k}]\n", "organizationId"},
		{"bad mix", "defaults: {mix: {sampleRate: 44100}}\n", "sampleRate"},
		{"janus without url", "applications:\n  a: {conference: {kind: janus}}\n", "needs url"},
		{"whep without template", "applications:\n  a: {conference: {kind: whep}}\n", "needs urlTemplate"},
		{"unknown conference kind", "applications:\n  a: {conference: {kind: sip}}\n", "sip"},
		{"unknown store driver", "store: {driver: mysql}\n", "store.driver \"mysql\""},
		{"postgres without dsn", "store: {driver: postgres}\n", "needs dsn"},
		{"both capacities", "cluster: {capacity: 50}\ncapacity: {streams: 100}\n", "cluster.capacity is replaced by capacity.streams; remove cluster.capacity"},
		{"negative cluster capacity", "cluster: {capacity: -1}\n", "cluster.capacity is replaced by capacity.streams"},
		{"gc percent too low", "runtime: {gcPercent: 5}\n", "runtime.gcPercent 5: want 10 or more"},
		{"gc off without a limit", "runtime: {gcPercent: -1}\n", "runtime.gcPercent -1 (no collection by heap growth) needs runtime.memoryLimitMB"},
		{"negative memory limit", "runtime: {memoryLimitMB: -5}\n", "runtime.memoryLimitMB must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseConfig_Empty(t *testing.T) {
	c, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "./data" || c.URLTTL != time.Hour {
		t.Errorf("empty config: %+v", c)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("listen: 127.0.0.1:1\napiKeys: [{key: k, organizationId: o}]\n"))
	f.Add([]byte("applications:\n  a:\n    storage: {provider: LOCAL}\n"))
	f.Add([]byte("webrtc: {udpPortRange: 1-2}\n"))
	f.Add([]byte("runtime: {gcPercent: 50, memoryLimitMB: 2048}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		// A parsed config is valid: defaults set, ids usable.
		if c.DataDir == "" || c.URLTTL <= 0 || c.Defaults.Mix.SampleRate == 0 {
			t.Fatalf("defaults missing: %+v", c)
		}
		for id := range c.Applications {
			if ids.Validate("applicationId", id) != nil {
				t.Fatalf("accepted application id %q", id)
			}
		}
	})
}

// TestParse_ClusterCapacityMigrates: the deprecated cluster.capacity
// (recordings) is read as capacity.streams, the one capacity that placement
// and admission use, with a notice naming the new key for the log.
func TestParse_ClusterCapacityMigrates(t *testing.T) {
	c, err := Parse([]byte("cluster: {capacity: 50}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Capacity.Streams != 50 || c.Cluster.Capacity != 0 {
		t.Errorf("capacity.streams %d, cluster.capacity %d; want 50 and 0", c.Capacity.Streams, c.Cluster.Capacity)
	}
	if len(c.Notices) != 1 || !strings.Contains(c.Notices[0], "cluster.capacity is deprecated") || !strings.Contains(c.Notices[0], "set capacity.streams") {
		t.Errorf("notices %q", c.Notices)
	}
	if c, err := Parse([]byte("capacity: {streams: 7}\n")); err != nil || c.Capacity.Streams != 7 || len(c.Notices) != 0 {
		t.Errorf("capacity.streams alone: %+v %v", c, err)
	}
}
