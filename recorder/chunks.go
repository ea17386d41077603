package recorder

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/media/format"
	"github.com/rtcrec/recorder/recorder/upload"
	"github.com/rtcrec/recorder/storage"
)

// Upload while recording (uploads.chunkInterval, 60s by default, off when
// negative, e.g. -1s). Every file a recording grows (mix.wav and every
// tracks/* file: Ogg Opus, G.711 WAV, WebM, fragmented MP4) streams to
// storage as byte-range parts:
//
//	{prefix}parts/{file}.part-0001, {file}.part-0002, …
//
// e.g. parts/mix.wav.part-0003, parts/tracks/u1-audio.ogg.part-0001. Every
// interval one goroutine per recording (Session.streamParts) reads, for
// each file, the bytes from the end of its previous part to the file's
// flushed length, trimmed to whole container units, writes them as the
// next part and enqueues its upload on the persisted queue at once (the
// local copy is deleted once verified). The writers flush at least once a
// second, so a recorder that vanishes with its disk loses at most one
// interval plus the one-second write buffer, and the parts whose uploads
// were still under way: the parts in storage are the recording.
//
// Whole units (each container's Cutter in media/format): WAV parts end on a
// whole sample frame after the header, Ogg parts on a page boundary, MP4
// parts after a whole top-level box (never between a moof and its mdat);
// WebM parts end where the file ends, as webmwriter writes whole blocks
// with one write call per flush.
//
// Reassembly: the concatenation of a file's parts in order IS the file as
// of the last cut, except for the bytes the writers patch in place after
// they were cut: the WAV header's sizes (part 1 holds those of the first
// cut), the WebM Segment/Cluster sizes (unknown-size until patched; a
// live-style WebM plays as is) and Duration. So: concatenate, then fix the
// WAV header from the length with the container's Repair (Ogg and WebM/fMP4
// are streamable and play as concatenated; Ogg's Repair drops a torn last
// page). Reassemble does exactly this from a bucket.
//
// What becomes of parts: they are not outputs of the recording (no object,
// manifest entry or event). At stop (or recovery after a restart) every file is
// uploaded whole as before; once a file's final object is verified, its
// parts are deleted from storage, so a finished recording's objects are
// the same as without chunking. Parts of a file that has no final upload
// are deleted once the manifest is verified. A file rewritten shorter than
// what was cut (not done by today's writers) is no longer cut.

// chunkPrefix is the relative directory of the parts.
const chunkPrefix = "parts/"

// partKey is the relative path of part n (1-based) of the file rel.
func partKey(rel string, n int) string { return fmt.Sprintf("%s%s.part-%04d", chunkPrefix, rel, n) }

// fileCut is where the parts of one growing file stand.
type fileCut struct {
	off    int64         // first byte not yet in a part
	n      int           // parts cut
	starts []int64       // the first byte of each part cut
	jobs   []string      // the latest upload job of each part cut
	cut    format.Cutter // nil: not a container we cut in units; cut where the file ends
	done   bool          // the file shrank: no longer cut
}

// chunker cuts the files of one recording into parts; it is used by one goroutine.
type chunker struct {
	recuts int // requests to cut again so far
	s      *Session
	rec    *Recording
	files  map[string]*fileCut // by relative path
	buf    []byte
}

// streamParts cuts and uploads parts of every file of the recording every
// chunkInterval until the session stops; it does nothing when chunking is
// off.
func (s *Session) streamParts() {
	interval := s.m.cfg.Uploads.ChunkInterval
	if interval <= 0 {
		return
	}
	c := &chunker{s: s, rec: s.Snapshot(), files: map[string]*fileCut{}}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case req := <-s.recut:
			c.recut(context.Background(), req)
			continue
		case <-s.done:
			return
		}
		s.mu.Lock()
		stopping := s.stopping
		s.mu.Unlock()
		if stopping {
			return // the final files are uploaded by compose
		}
		if s.m.remote != nil && s.fencedInStore() {
			return // another instance owns the recording now
		}
		c.cutAll(context.Background())
	}
}

// cutAll cuts the next part of mix.wav and of every track file.
func (c *chunker) cutAll(ctx context.Context) {
	var rels []string
	if !c.rec.Mix.None {
		rels = append(rels, composition.MixFile)
	}
	if ents, err := os.ReadDir(filepath.Join(c.rec.Dir, composition.TracksDir)); err == nil {
		for _, e := range ents {
			if e.Type().IsRegular() {
				rels = append(rels, composition.TracksDir+e.Name())
			}
		}
	}
	for _, rel := range rels {
		fc := c.files[rel]
		if fc == nil {
			fc = &fileCut{}
			if f := format.ForFile(rel); f != nil {
				fc.cut = f.NewCutter()
			}
			c.files[rel] = fc
		}
		if fc.done {
			continue
		}
		if err := c.cut(ctx, rel, fc); err != nil {
			c.s.log.Warn("cannot upload a part", "file", rel, "part", fc.n+1, "err", err)
		}
	}
}

// cut writes the whole units of rel flushed since its last part as the
// next part and enqueues its upload.
func (c *chunker) cut(ctx context.Context, rel string, fc *fileCut) error {
	src := filepath.Join(c.rec.Dir, filepath.FromSlash(rel))
	f, err := os.Open(src)
	if err != nil {
		if os.IsNotExist(err) {
			return nil // not created yet
		}
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() < fc.off {
		fc.done = true
		return fmt.Errorf("recorder: %s shrank from %d to %d bytes; no longer cut", rel, fc.off, st.Size())
	}
	c.buf = append(c.buf[:0], make([]byte, st.Size()-fc.off)...)
	if _, err := f.ReadAt(c.buf, fc.off); err != nil && err != io.EOF {
		return err
	}
	n := len(c.buf)
	if fc.cut != nil {
		n = fc.cut.Cut(c.buf, fc.off)
	}
	if n <= 0 {
		return nil // nothing whole yet: wait for more
	}
	job, err := c.writePart(rel, fc.n+1, "", c.buf[:n])
	if err != nil {
		return err
	}
	fc.starts = append(fc.starts, fc.off)
	fc.jobs = append(fc.jobs, job.ID)
	fc.n++
	fc.off += int64(n)
	return c.s.m.up.q.Enqueue(ctx, job)
}

// writePart writes the local copy of part n of rel (suffix: "" for the
// first cut, ".r1"… for one cut again) and returns its upload job.
func (c *chunker) writePart(rel string, n int, suffix string, data []byte) (upload.Job, error) {
	prel := partKey(rel, n)
	local := filepath.Join(c.rec.Dir, filepath.FromSlash(prel+suffix))
	if err := os.MkdirAll(filepath.Dir(local), 0o750); err != nil {
		return upload.Job{}, err
	}
	if err := os.WriteFile(local, data, 0o640); err != nil {
		return upload.Job{}, err
	}
	return upload.Job{ID: c.rec.InstanceID + "/" + prel + suffix, RecordingID: c.rec.InstanceID,
		ApplicationID: c.rec.ApplicationID, LocalPath: local, Key: c.rec.Storage.Prefix + prel,
		ContentType: "application/octet-stream", Metadata: objectMetadata(c.rec), DeleteLocalAfter: true,
		Background: true}, nil // behind every output of a stopped recording
}

// recut cuts again every part whose bytes changed in place (a retroactive
// blackout, retro.go) from the edited file, with the same key, and uploads
// each once the earlier upload of its key has ended, so the new bytes are
// the last the key receives. Parts not cut yet hold the edit already.
func (c *chunker) recut(ctx context.Context, req recutRequest) {
	defer close(req.done)
	c.recuts++
	after := map[string]upload.Job{} // by the job each waits for
	defer func() {
		if len(after) > 0 {
			c.s.m.afterJobs(c.rec.InstanceID, after)
		}
	}()
	for rel, from := range req.from {
		fc := c.files[rel]
		if fc == nil {
			continue
		}
		f, err := os.Open(filepath.Join(c.rec.Dir, filepath.FromSlash(rel)))
		if err != nil {
			c.s.log.Warn("cannot cut parts again", "file", rel, "err", err)
			continue
		}
		for i := range fc.n {
			end := fc.off
			if i+1 < fc.n {
				end = fc.starts[i+1]
			}
			if end <= from {
				continue
			}
			data := make([]byte, end-fc.starts[i])
			if _, err := f.ReadAt(data, fc.starts[i]); err != nil {
				c.s.log.Warn("cannot cut a part again", "file", rel, "part", i+1, "err", err)
				continue
			}
			job, err := c.writePart(rel, i+1, fmt.Sprintf(".r%d", c.recuts), data)
			if err != nil {
				c.s.log.Warn("cannot cut a part again", "file", rel, "part", i+1, "err", err)
				continue
			}
			after[fc.jobs[i]] = job
			fc.jobs[i] = job.ID
		}
		f.Close()
	}
}

// afterJobs enqueues each job once the upload job of the same key before it
// (prev, by job ID) has ended, uploaded or abandoned: in the background,
// tracked by the Manager's wait group, with one query of the queue per round.
func (m *Manager) afterJobs(recordingID string, prev map[string]upload.Job) {
	m.discards.Add(1)
	go func() {
		defer m.discards.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		for len(prev) > 0 {
			jobs, err := m.up.q.Jobs(ctx, recordingID)
			if err != nil {
				m.log.Warn("cannot upload the parts cut again", "instanceId", recordingID, "err", err)
				return
			}
			for _, j := range jobs {
				job, ok := prev[j.Job.ID]
				if !ok || j.Status != upload.Uploaded && j.Status != upload.Abandoned {
					continue
				}
				delete(prev, j.Job.ID)
				if err := m.up.q.Enqueue(ctx, job); err != nil {
					m.log.Warn("cannot upload a part cut again", "key", job.Key, "err", err)
				}
			}
			if len(prev) == 0 {
				return
			}
			select {
			case <-ctx.Done():
				m.log.Warn("parts cut again not uploaded: their earlier uploads did not end", "instanceId", recordingID, "parts", len(prev))
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
}

// isPart reports whether a job is a part (not an output of the recording).
func isPart(j upload.Job) bool {
	return strings.HasPrefix(strings.TrimPrefix(j.ID, j.RecordingID+"/"), chunkPrefix)
}

// deleteParts removes from storage the parts of the file that job, a final
// upload just verified, uploaded; after the manifest, the parts of every
// file of the recording that has no final upload.
func (m *Manager) deleteParts(job upload.Job) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := m.Bucket(ctx, job.ApplicationID)
	if err != nil {
		return
	}
	rel := strings.TrimPrefix(job.ID, job.RecordingID+"/")
	base := strings.TrimSuffix(job.Key, rel) // the recording's prefix
	prefix := base + chunkPrefix + rel + ".part-"
	final := map[string]bool{}
	if rel == composition.ManifestFile {
		prefix = base + chunkPrefix
		jobs, err := m.up.q.Jobs(ctx, job.RecordingID)
		if err != nil {
			return
		}
		for _, j := range jobs {
			final[strings.TrimPrefix(j.Job.ID, j.Job.RecordingID+"/")] = true
		}
	}
	parts, err := b.List(ctx, prefix)
	if err != nil {
		m.log.Warn("cannot list parts", "prefix", prefix, "err", err)
		return
	}
	for _, p := range parts {
		of, _, _ := strings.Cut(strings.TrimPrefix(p.Key, base+chunkPrefix), ".part-")
		if rel == composition.ManifestFile && final[of] {
			continue // deleted after its own upload
		}
		if err := b.Delete(ctx, p.Key); err != nil {
			m.log.Warn("cannot delete a part", "key", p.Key, "err", err)
		}
	}
}

// Reassemble rebuilds the file rel of a recording (e.g. "mix.wav",
// "tracks/u1-audio.ogg") at dst from its parts under prefix (the
// recording's storage prefix) in b, for when the recorder and its disk are
// gone: the parts concatenated in order, a WAV header fixed from the
// length, an Ogg torn page dropped (the container's Repair). It returns
// the number of parts.
func Reassemble(ctx context.Context, b *storage.Bucket, prefix, rel, dst string) (int, error) {
	parts, err := b.List(ctx, prefix+chunkPrefix+rel+".part-")
	if err != nil {
		return 0, err
	}
	if len(parts) == 0 {
		return 0, fmt.Errorf("recorder: no parts of %s under %s", rel, prefix)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].Key < parts[j].Key })
	out, err := os.Create(dst)
	if err != nil {
		return 0, err
	}
	for _, p := range parts {
		data, err := b.ReadAll(ctx, p.Key)
		if err == nil {
			_, err = out.Write(data)
		}
		if err != nil {
			out.Close()
			return 0, err
		}
	}
	if err := out.Close(); err != nil {
		return 0, err
	}
	if f := format.ForFile(rel); f != nil {
		err = f.Repair(dst)
	}
	return len(parts), err
}

// discard removes what a recording that ended with no media left behind:
// its local directory (a mix of silence, empty track files; not the chat
// and cobrowse files whose uploads are still to be done, see
// removeLocalCopies) and the parts uploaded while it ran, once the part
// uploads in flight are done (or the queue closes: a shutdown). It runs in
// the background; Shutdown waits for it.
func (m *Manager) discard(rec *Recording) {
	m.discards.Add(1)
	go func() {
		defer m.discards.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		go func() { // a shutdown closes the queue: wait no longer
			select {
			case <-m.up.closed:
				cancel()
			case <-ctx.Done():
			}
		}()
		if err := m.up.q.Wait(ctx, rec.InstanceID); err != nil {
			m.log.Warn("discarding a recording without media: part uploads still pending", "instanceId", rec.InstanceID, "err", err)
		}
		if h := m.testPoints.discarding; h != nil {
			h(rec.InstanceID)
		}
		if err := m.removeLocalCopies(context.WithoutCancel(ctx), rec); err != nil {
			m.log.Warn("cannot delete the local files of a recording without media", "dir", rec.Dir, "err", err)
		}
		m.deleteAllParts(ctx, rec)
	}()
}

// deleteAllParts deletes every part of rec from its storage.
func (m *Manager) deleteAllParts(ctx context.Context, rec *Recording) error {
	if rec.Storage.Prefix == "" {
		return nil
	}
	b, err := m.Bucket(ctx, rec.ApplicationID)
	if err != nil {
		return err
	}
	parts, err := b.List(ctx, rec.Storage.Prefix+chunkPrefix)
	if err != nil {
		return err
	}
	for _, p := range parts {
		if err := b.Delete(ctx, p.Key); err != nil && storage.Code(err) != storage.NotFound {
			return err
		}
	}
	return nil
}

// deleteLatePart deletes a part verified after its file's final object (a
// part job resumed by a restart that recovered the recording first), or
// after its recording ended with no media.
func (m *Manager) deleteLatePart(part upload.Job) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if sr, err := m.store.Get(ctx, part.Metadata["organizationid"], part.RecordingID); err == nil {
		if rec, err := decode(sr); err == nil && rec.State.Final() && !rec.hadMedia() {
			if b, err := m.Bucket(ctx, part.ApplicationID); err == nil {
				b.Delete(ctx, part.Key)
			}
			return
		}
	}
	rel, _, _ := strings.Cut(strings.TrimPrefix(part.ID, part.RecordingID+"/"+chunkPrefix), ".part-")
	jobs, err := m.up.q.Jobs(ctx, part.RecordingID)
	if err != nil {
		return
	}
	for _, j := range jobs {
		if j.Job.ID == part.RecordingID+"/"+rel && j.Status == upload.Uploaded {
			if b, err := m.Bucket(ctx, part.ApplicationID); err == nil {
				b.Delete(ctx, part.Key)
			}
			return
		}
	}
}
