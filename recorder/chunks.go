package recorder

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/media/wavwriter"
	"github.com/rtcrec/recorder/recorder/upload"
)

// Upload while recording (uploads.chunkInterval, off when zero). Every
// interval the mix written since the last cut becomes a complete small WAV,
// parts/mix.part-0001.wav, parts/mix.part-0002.wav …, enqueued to the upload
// queue at once (and deleted locally once verified). A recorder that
// vanishes with its disk loses at most the last interval plus the one-second
// write buffer: the parts in storage are the recording.
//
// The WAV header problem (RIFF and data sizes are only known at the end):
//
//   - mix.wav itself is written as before, one file, its header patched at
//     every flush (once a second), so on disk it is always a valid WAV of
//     what was flushed; after a crash wavwriter.Repair sets the sizes from
//     the file length.
//   - A part is cut from mix.wav's flushed data (whole frames only, from the
//     byte after the previous part to the current end) and written as its
//     own file with its own header, whose sizes are known because the part
//     is complete before it is written. Parts need no header fix-up and
//     each plays on its own; concatenating their data chunks gives the mix.
//   - At stop the final mix.wav (one header, all data) is uploaded as
//     before, and once it is verified the parts are deleted from storage, so
//     the recording's objects are the same as without chunking.
//
// Only the mix is cut; track files are uploaded at stop.

// chunkPrefix is the relative directory of the mix parts.
const chunkPrefix = "parts/"

// mixChunks cuts mix.wav into parts; it is used by one goroutine.
type mixChunks struct {
	s    *Session
	rec  *Recording
	hdr  wavwriter.Header
	off  int64 // file offset of the first byte not yet in a part; 0 before the header is read
	n    int   // parts cut
	buf  []byte
	pcm  []int16
	path string
}

// streamMix cuts and uploads parts of the mix every chunkInterval until the
// session stops; it does nothing when chunking is off or there is no queue.
func (s *Session) streamMix() {
	interval := s.m.cfg.Uploads.ChunkInterval
	if interval <= 0 || s.m.up.q == nil {
		return
	}
	rec := s.Snapshot()
	c := &mixChunks{s: s, rec: rec, path: filepath.Join(rec.Dir, composition.MixFile)}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-s.done:
			return
		}
		s.mu.Lock()
		stopping := s.stopping
		s.mu.Unlock()
		if stopping {
			return // the final mix.wav is uploaded by compose
		}
		if err := c.cut(context.Background()); err != nil {
			s.log.Warn("cannot upload a part of the mix", "part", c.n+1, "err", err)
		}
	}
}

// cut writes the mix flushed since the last part as the next part and
// enqueues its upload.
func (c *mixChunks) cut(ctx context.Context) error {
	f, err := os.Open(c.path)
	if err != nil {
		return err
	}
	defer f.Close()
	if c.off == 0 {
		head := make([]byte, 512)
		n, _ := f.ReadAt(head, 0)
		if c.hdr, err = wavwriter.ParseHeader(head[:n]); err != nil {
			return err
		}
		c.off = c.hdr.DataOffset
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	align := int64(c.hdr.BlockAlign)
	end := c.hdr.DataOffset + (st.Size()-c.hdr.DataOffset)/align*align
	if end-c.off < align*int64(c.hdr.SampleRate)/10 {
		return nil // less than 100 ms new: wait for more
	}
	c.buf = append(c.buf[:0], make([]byte, end-c.off)...)
	if _, err := f.ReadAt(c.buf, c.off); err != nil {
		return err
	}
	c.pcm = c.pcm[:0]
	for i := 0; i+1 < len(c.buf); i += 2 {
		c.pcm = append(c.pcm, int16(binary.LittleEndian.Uint16(c.buf[i:])))
	}
	rel := fmt.Sprintf("%smix.part-%04d.wav", chunkPrefix, c.n+1)
	local := filepath.Join(c.rec.Dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(local), 0o750); err != nil {
		return err
	}
	w, err := wavwriter.New(local, wavwriter.WithSampleRate(c.hdr.SampleRate), wavwriter.WithChannels(c.hdr.Channels))
	if err != nil {
		return err
	}
	if err := w.WriteFrame(c.pcm); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	c.n++
	c.off = end
	key := c.rec.Storage.Prefix + rel
	return c.s.m.up.q.Enqueue(ctx, upload.Job{ID: c.rec.InstanceID + "/" + rel, RecordingID: c.rec.InstanceID,
		ApplicationID: c.rec.ApplicationID, LocalPath: local, Key: key, ContentType: "audio/wav",
		Metadata: objectMetadata(c.rec), DeleteLocalAfter: true})
}

// isPart reports whether a job is a part of the mix.
func isPart(j upload.Job) bool {
	return strings.HasPrefix(strings.TrimPrefix(j.ID, j.RecordingID+"/"), chunkPrefix)
}

// deleteParts removes the parts of a recording from storage once its final
// mix.wav is verified there (mixJob is that upload).
func (m *Manager) deleteParts(mixJob upload.Job) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := m.Bucket(ctx, mixJob.ApplicationID)
	if err != nil {
		return
	}
	prefix := strings.TrimSuffix(mixJob.Key, composition.MixFile) + chunkPrefix
	parts, err := b.List(ctx, prefix)
	if err != nil {
		m.log.Warn("cannot list the parts of the mix", "prefix", prefix, "err", err)
		return
	}
	for _, p := range parts {
		if err := b.Delete(ctx, p.Key); err != nil {
			m.log.Warn("cannot delete a part of the mix", "key", p.Key, "err", err)
		}
	}
}
