package media

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU returns the CPU time used by the calling OS thread (Linux
// RUSAGE_THREAD), so benchmarks on a shared machine can report cost per core
// rather than wall time. The caller locks its goroutine to the thread.
func threadCPU() (time.Duration, bool) {
	const rusageThread = 1
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}

// threadClock returns the calling OS thread's CPU clock
// (CLOCK_THREAD_CPUTIME_ID): precise to the nanosecond, where RUSAGE_THREAD
// counts what the scheduler accounted at its last tick, so it can time one
// call of a few microseconds. The caller locks its goroutine to the thread.
func threadClock() (time.Duration, bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
