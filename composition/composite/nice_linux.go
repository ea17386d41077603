package composite

import (
	"syscall"
	"time"
)

// setNice sets the niceness of process pid (Linux: per thread group leader;
// ffmpeg's threads created after this inherit it).
func setNice(pid, nice int) error {
	return syscall.Setpriority(syscall.PRIO_PROCESS, pid, nice)
}

// setThreadNice sets the niceness of the calling OS thread only (Linux
// applies PRIO_PROCESS to a thread id).
func setThreadNice(nice int) error {
	return syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), nice)
}

// threadCPU returns the CPU time (user and system) of the calling OS thread.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(1, &ru) != nil { // RUSAGE_THREAD
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
