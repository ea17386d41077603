//go:build !linux

package composite

// setNice is a no-op where the recorder does not set priorities.
func setNice(pid, nice int) error { return nil }
