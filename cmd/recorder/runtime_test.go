package main

import (
	"io"
	"log/slog"
	"runtime/debug"
	"testing"

	"github.com/rtcrec/recorder/config"
)

// TestApplyRuntime: the runtime block sets Go's GC percent and memory limit;
// unset, it leaves them as they are.
func TestApplyRuntime(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	gc, limit := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	defer func() { debug.SetGCPercent(gc); debug.SetMemoryLimit(limit) }()

	applyRuntime(config.RuntimeConfig{GCPercent: 50, MemoryLimitMB: 3072}, log)
	if got := debug.SetGCPercent(100); got != 50 {
		t.Errorf("GC percent %d, want 50", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 3072<<20 {
		t.Errorf("memory limit %d, want %d", got, 3072<<20)
	}
	// Unset: GOGC from the environment is left as the runtime read it.
	t.Setenv("GOGC", "70")
	debug.SetGCPercent(70)
	applyRuntime(config.RuntimeConfig{}, log)
	if got := debug.SetGCPercent(100); got != 70 {
		t.Errorf("unset with GOGC=70: GC percent %d, want it left at 70", got)
	}
	// Neither: the recorder's default.
	t.Setenv("GOGC", "")
	applyRuntime(config.RuntimeConfig{}, log)
	if got := debug.SetGCPercent(100); got != config.DefaultGCPercent {
		t.Errorf("unset: GC percent %d, want %d", got, config.DefaultGCPercent)
	}
}
