package whip

import "testing"

// TestSharedLoggers: one logger per scope, shared by every caller.
func TestSharedLoggers(t *testing.T) {
	f := newSharedLoggers()
	ice, dtls := f.NewLogger("ice"), f.NewLogger("dtls")
	if ice != f.NewLogger("ice") {
		t.Error("a second logger for the same scope")
	}
	if ice == dtls {
		t.Error("one logger for two scopes")
	}
	if n := testing.AllocsPerRun(100, func() { f.NewLogger("ice") }); n != 0 {
		t.Errorf("%v allocations for a known scope", n)
	}
}
