package recorder

import (
	"strings"
	"testing"

	"github.com/rtcrec/recorder/internal/testenv"
)

// TestDeps_NoCloudSDK guards the layering: the engine reaches storage through
// storage.Bucket only; the drivers and their SDKs are linked by cmd and api
// (storage/open), never by recorder.
func TestDeps_NoCloudSDK(t *testing.T) {
	sdks := []string{
		"github.com/aws/", "github.com/Azure/", "cloud.google.com/", "google.golang.org/api/",
		"github.com/pkg/sftp", "golang.org/x/crypto/ssh",
		"github.com/rtcrec/recorder/storage/open", "github.com/rtcrec/recorder/storage/s3store",
		"github.com/rtcrec/recorder/storage/azurestore", "github.com/rtcrec/recorder/storage/gcsstore",
		"github.com/rtcrec/recorder/storage/sftpstore",
	}
	for _, dep := range testenv.Deps(t, "github.com/rtcrec/recorder/recorder") {
		for _, sdk := range sdks {
			if strings.HasPrefix(dep, sdk) {
				t.Errorf("recorder depends on %s", dep)
			}
		}
	}
}

// TestDeps_NoConfigFile guards the other half: the engine takes a
// config.Config and never reads the configuration file, so neither the YAML
// parser nor config/configfile is linked into it.
func TestDeps_NoConfigFile(t *testing.T) {
	for _, dep := range testenv.Deps(t, "github.com/rtcrec/recorder/recorder") {
		if strings.HasPrefix(dep, "gopkg.in/yaml") || dep == "github.com/rtcrec/recorder/config/configfile" {
			t.Errorf("recorder depends on %s", dep)
		}
	}
}
