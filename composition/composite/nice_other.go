//go:build !linux

package composite

import "time"

// setNice is a no-op where the recorder does not set priorities.
func setNice(pid, nice int) error { return nil }

// setThreadNice is a no-op where the recorder does not set priorities.
func setThreadNice(nice int) error { return nil }

// threadCPU is not measured here.
func threadCPU() time.Duration { return 0 }
