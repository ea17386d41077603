package composition

import (
	"strings"
	"testing"

	"github.com/rtcrec/recorder/internal/testenv"
)

// TestDeps_NoPion guards the layering: composition works on finished files,
// so it links no WebRTC stack and no RTP packet type, nothing of pion at all
// (Opus is decoded by internal/opus, our fork; WAV is read and written by
// media/wavwriter, which knows no packet type).
func TestDeps_NoPion(t *testing.T) {
	for _, dep := range testenv.Deps(t, "github.com/rtcrec/recorder/composition/...") {
		if strings.HasPrefix(dep, "github.com/pion/") {
			t.Errorf("composition depends on %s", dep)
		}
	}
}
