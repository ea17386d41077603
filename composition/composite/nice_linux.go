package composite

import "syscall"

// setNice sets the niceness of process pid (Linux: per thread group leader;
// ffmpeg's threads created after this inherit it).
func setNice(pid, nice int) error {
	return syscall.Setpriority(syscall.PRIO_PROCESS, pid, nice)
}
