// Package testenv lets tests declare the external tools and servers they need.
//
// Outside CI a missing tool skips the test with a message that says what is
// missing. Under CI=true a missing tool fails the test: CI installs everything
// (see .ci/run), so a skip there would hide a suite that never ran.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true), where nothing may skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// LookPath returns the path of the named program, failing the test under CI and
// skipping it elsewhere when the program is not installed.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" is not installed (make test installs it; CI installs it in .ci/run)")
	}
	return p
}

// Missing reports that a test's prerequisite is unavailable: a failure under CI,
// a skip with the reason elsewhere.
func Missing(t testing.TB, reason string) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true and a prerequisite is missing: %s", reason)
	}
	t.Skipf("skipped: %s", reason)
}

// ChromiumEnv are the variables to add to the environment of every Chromium
// a test starts (exec.Cmd.Env after os.Environ(), chromedp.Env). Chromium
// sets both itself at start-up when they are missing, FC_FONTATIONS on a
// thread-pool thread while its other threads read the environment; glibc's
// setenv of a variable not yet in the environment reallocates the
// environment's array, and a getenv on another thread meanwhile reads the
// freed array. Under load that killed Chromium 148 at start-up with SIGSEGV
// in getenv (five crash dumps in ~/.config/chromium/Crash Reports, all at
// getenv+157; the tests saw "chromium exited"). Already set, each setenv
// replaces the value in place and the array stays where it is.
var ChromiumEnv = []string{"FC_FONTATIONS=1", "DBUS_SESSION_BUS_ADDRESS=disabled:"}
