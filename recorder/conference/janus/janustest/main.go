package janustest

import "github.com/rtcrec/recorder/recorder/conference/internal/rtctest"

// Main runs a test package's tests inside the private network namespace that
// Janus needs (see the package comment), for packages outside
// recorder/conference that start Janus (such as cmd/recorder's real-process
// tests). run calls m.Run and whatever the TestMain does around it; it runs
// once, in the process that runs the tests:
//
//	func TestMain(m *testing.M) { os.Exit(janustest.Main(func() int { setup(); return m.Run() })) }
func Main(run func() int) int { return rtctest.MainFunc(run) }

// Interface is the network interface a recorder under test must gather its
// ICE candidates on to reach Janus (webrtc.interfaces).
const Interface = rtctest.Interface
