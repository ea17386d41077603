//go:build !linux

package media

import "time"

// threadCPU is only implemented on Linux.
func threadCPU() (time.Duration, bool) { return 0, false }

func threadClock() (time.Duration, bool) { return 0, false }
