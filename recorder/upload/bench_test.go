package upload

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rtcrec/recorder/recorder/internal/dbtest"
	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/memstore"
)

// BenchmarkQueue_Job measures the queue's own cost per job: enqueue (one
// insert), schedule, upload of a 4 KiB file to memstore with verification,
// the state update, and Wait.
func BenchmarkQueue_Job(b *testing.B) {
	dir := b.TempDir()
	bucket := storage.NewBucket(memstore.New(memstore.Options{Name: "bench"}))
	q, err := New(context.Background(), dbtest.Open(b, filepath.Join(dir, "recorder.db")), Options{
		Open:   func(string) (*storage.Bucket, error) { return bucket, nil },
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close(context.Background())
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, make([]byte, 4096), 0o644); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		id := strconv.Itoa(i)
		if err := q.Enqueue(ctx, Job{ID: id, RecordingID: id, ApplicationID: "a", LocalPath: path, Key: "k/" + id}); err != nil {
			b.Fatal(err)
		}
		if err := q.Wait(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}
