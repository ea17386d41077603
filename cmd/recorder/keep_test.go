package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// kept is what a test keeps of its processes when it fails: their logs and
// directories (data directories, storage, snapshots), copied when the test
// ends into a directory of their own under the system's temporary
// directory, which the test's log names. A real-process test's files live
// in t.TempDir and are gone once it ends; these are what is left to read
// of a failure seen once under load.
type kept struct {
	mu   sync.Mutex
	logs map[string]*logBuffer
	dirs map[string]string
}

// keepOnFailure registers the copy at the end of t, if it failed. Call it
// after the processes' and directories' own clean-ups are registered (after
// serveProcess and t.TempDir), so that it runs before them.
func keepOnFailure(t *testing.T) *kept {
	k := &kept{logs: map[string]*logBuffer{}, dirs: map[string]string{}}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		dst, err := os.MkdirTemp("", strings.ReplaceAll(t.Name(), "/", "_")+"-")
		if err != nil {
			t.Logf("cannot keep the processes' logs and files: %v", err)
			return
		}
		k.mu.Lock()
		defer k.mu.Unlock()
		var names []string
		for name, b := range k.logs {
			os.WriteFile(filepath.Join(dst, name+".log"), []byte(b.String()), 0o644)
			names = append(names, name+".log")
		}
		for name, src := range k.dirs {
			copyTree(filepath.Join(dst, name), src)
			names = append(names, name+"/")
		}
		sort.Strings(names)
		t.Logf("kept for a look at the failure, in %s: %v", dst, names)
	})
	return k
}

// log keeps a process's log as name.log.
func (k *kept) log(name string, b *logBuffer) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.logs[name] = b
}

// dir keeps the tree at src as name/.
func (k *kept) dir(name, src string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dirs[name] = src
}

// copyTree copies the regular files under src to dst with their
// modification times, as far as it can: a file that goes away while it
// copies (a process still running) is left out.
func copyTree(dst, src string) {
	filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return nil
		}
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			os.MkdirAll(to, 0o755)
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		if os.WriteFile(to, b, 0o644) == nil {
			if fi, err := d.Info(); err == nil {
				os.Chtimes(to, fi.ModTime(), fi.ModTime())
			}
		}
		return nil
	})
}
