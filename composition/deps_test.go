package composition

import (
	"strings"
	"testing"

	"github.com/rtcrec/recorder/internal/testenv"
)

// TestDeps_NoWebRTC guards the layering: composition works on finished files
// and links no WebRTC stack. The only pion modules it may reach are the two
// codec-level ones: pion/opus (the offline mix decodes Ogg/Opus tracks) and
// pion/rtp (the packet type of wavwriter's G.711 writer).
func TestDeps_NoWebRTC(t *testing.T) {
	for _, dep := range testenv.Deps(t, "github.com/rtcrec/recorder/composition") {
		if !strings.HasPrefix(dep, "github.com/pion/") {
			continue
		}
		if dep == "github.com/pion/opus" || strings.HasPrefix(dep, "github.com/pion/opus/") ||
			dep == "github.com/pion/rtp" || strings.HasPrefix(dep, "github.com/pion/rtp/") ||
			dep == "github.com/pion/randutil" { // pion/rtp's sequencer
			continue
		}
		t.Errorf("composition depends on %s", dep)
	}
}
