package configfile

import (
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/config"
)

func TestParseConfig_ShutdownAndUploads(t *testing.T) {
	tests := []struct {
		name, yaml string
		check      func(*config.Config) bool
		err        string
	}{
		{"defaults", "", func(c *config.Config) bool {
			return c.Shutdown.Policy == config.ShutdownStop && c.Shutdown.Deadline == 30*time.Second && c.Shutdown.Budget() == 2*time.Minute
		}, ""},
		{"wait", "shutdown: {policy: wait, deadline: 5s, timeout: 1m}\n", func(c *config.Config) bool {
			return c.Shutdown.Policy == config.ShutdownWait && c.Shutdown.Budget() == 65*time.Second
		}, ""},
		{"bad policy", "shutdown: {policy: later}\n", nil, `shutdown.policy "later"`},
		{"uploads and backup", "uploads: {minBackoff: 2s, permanentRetry: 1m, chunkInterval: 60s}\n" +
			"applications:\n  a:\n    backupStorage: {provider: LOCAL, dir: /tmp/b}\n    backupAfter: 5\n", func(c *config.Config) bool {
			a := c.Applications["a"]
			return c.Uploads.MinBackoff == 2*time.Second && c.Uploads.ChunkInterval == time.Minute &&
				a.BackupStorage != nil && a.BackupStorage.Dir == "/tmp/b" && a.BackupAfter == 5
		}, ""},
		{"unknown uploads key", "uploads: {chunks: 3}\n", nil, "chunks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseConfig = %v, want an error containing %q", err, tt.err)
				}
				return
			}
			if err != nil || !tt.check(c) {
				t.Fatalf("ParseConfig = %+v, %v", c, err)
			}
		})
	}
}
