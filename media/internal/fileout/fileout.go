// Package fileout holds the file handling shared by the media file writers.
package fileout

import (
	"fmt"
	"os"
)

// Close finishes a writer's file: it fsyncs f (once per file, at the end of
// a recording) and closes it. err is the writer's error so far and wins over
// later ones; errors are prefixed with the writer's package name. A nil f
// (a writer that did not open its output) returns err.
func Close(pkg string, f *os.File, err error) error {
	if f == nil {
		return err
	}
	if serr := f.Sync(); err == nil && serr != nil {
		err = fmt.Errorf("%s: sync: %w", pkg, serr)
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%s: close: %w", pkg, cerr)
	}
	return err
}
