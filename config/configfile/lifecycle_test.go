package configfile

import (
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/config"
)

func TestParseConfig_WebhooksAndMaxBlackout(t *testing.T) {
	c, err := Parse([]byte(`
defaults:
  maxBlackout: 15m
applications:
  app1:
    webhooks:
      - url: https://example.com/hook
        secret: s3cret
        events: ["state.updated", "upload.*"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Defaults.MaxBlackout != 15*time.Minute {
		t.Errorf("maxBlackout %v", c.Defaults.MaxBlackout)
	}
	h := c.Applications["app1"].Webhooks
	if len(h) != 1 || h[0].URL != "https://example.com/hook" || h[0].Secret != "s3cret" || len(h[0].Events) != 2 {
		t.Errorf("webhooks %+v", h)
	}
	if config.Default().Defaults.MaxBlackout != time.Hour {
		t.Errorf("default maxBlackout %v, want 1h", config.Default().Defaults.MaxBlackout)
	}
	// Unknown keys inside a webhook are an error naming the key and line.
	_, err = Parse([]byte("applications:\n  app1:\n    webhooks:\n      - url: https://x\n        secrte: typo\n"))
	if err == nil || !strings.Contains(err.Error(), "secrte") || !strings.Contains(err.Error(), "line 5") {
		t.Errorf("unknown webhook key: %v", err)
	}
}
