package testenv

import (
	"os/exec"
	"strings"
	"testing"
)

// Deps returns the import paths of pkg and everything it imports, not
// counting tests (`go list -deps pkg`), for tests that guard the import graph.
func Deps(t testing.TB, pkg string) []string {
	t.Helper()
	out, err := exec.Command(LookPath(t, "go"), "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}
