package configfile

import (
	"os"
	"testing"
)

// TestDeployConfig_Parses keeps deploy/recorder.yaml, the configuration of
// the compose file and the Kubernetes manifests, valid.
func TestDeployConfig_Parses(t *testing.T) {
	data, err := os.ReadFile("../../deploy/recorder.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"RECORDER_ID": "rec-a", "RECORDER_PUBLIC_URL": "http://127.0.0.1:8081", "RECORDER_API_KEY": "k0123456789",
		"RECORDER_DSN": "postgres://r:r@db:5432/r", "RECORDER_INTERNAL_URL": "http://recorder-a:8080",
		"RECORDER_UDP_PORTS": "40000-40099", "RECORDER_NAT_IP": "203.0.113.1", "S3_ENDPOINT": "http://minio:9000",
	} {
		t.Setenv(k, v)
	}
	c, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if !c.ClusterEnabled() || c.Cluster.InternalURL != "http://recorder-a:8080" || c.Capacity.Streams != 180 || len(c.Notices) != 0 || c.WebRTC.NATIPs[0] != "203.0.113.1" {
		t.Errorf("parsed %+v", c)
	}
}
