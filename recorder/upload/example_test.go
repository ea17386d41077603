package upload_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rtcrec/recorder/recorder/upload"
	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/filestore"

	_ "modernc.org/sqlite"
)

// The service hands the queue its database and a function that returns each
// application's bucket; results become track state and upload.* events.
func Example() {
	dir, _ := os.MkdirTemp("", "upload-example-")
	defer os.RemoveAll(dir)
	db, _ := sql.Open("sqlite", filepath.Join(dir, "recorder.db")+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	defer db.Close()
	bucket, _ := filestore.OpenBucket(context.Background(), filestore.Options{Dir: filepath.Join(dir, "objects"), CreateDir: true})
	defer bucket.Close()

	q, err := upload.New(context.Background(), db, upload.Options{
		Open: func(applicationID string) (*storage.Bucket, error) { return bucket, nil },
		OnResult: func(r upload.Result) {
			// Uploaded: fill objectStorage, publish upload.completed.
			// Failing/Abandoned: set objectStorage.error from r.Code and r.Err, publish upload.failed.
			fmt.Println(r.Status, r.Job.Key, r.Size, r.SHA256[:16])
		},
	})
	if err != nil {
		panic(err)
	}
	local := filepath.Join(dir, "mix.wav")
	os.WriteFile(local, []byte("RIFF....WAVE"), 0o644)
	q.Enqueue(context.Background(), upload.Job{ID: "rec1/mix.wav", RecordingID: "rec1", ApplicationID: "app1",
		LocalPath: local, Key: "org1/conv1/node1/rec1/mix.wav", ContentType: "audio/wav", DeleteLocalAfter: true})
	if err := q.Wait(context.Background(), "rec1"); err != nil {
		panic(err)
	}
	q.Close(context.Background())
	_, err = os.Stat(local)
	fmt.Println("local copy removed:", os.IsNotExist(err))
	// Output:
	// Uploaded org1/conv1/node1/rec1/mix.wav 12 b589c9f03d18442e
	// local copy removed: true
}
