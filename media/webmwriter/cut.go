package webmwriter

// Cut returns how many bytes of b, the bytes of a growing WebM file flushed
// since the last part, may end a part: all of them, as the writer writes
// whole blocks with one write call per flush.
func Cut(b []byte) int { return len(b) }

// Repair makes a WebM file left behind by a crash playable: it leaves the
// file as it is and returns nil. An unknown-size Segment whose last Cluster
// has an unknown size plays up to its last whole block in every player we
// tried (ffprobe, Chromium); remuxing it needs ffmpeg, which a recorder host
// may not have.
func Repair(path string) error { return nil }
