package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtcrec/recorder/api"
	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/media/wavwriter"
	"github.com/rtcrec/recorder/recorder"
	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/s3store"
	"github.com/rtcrec/recorder/storage/s3store/s3test"
)

// startS3 starts an S3 gateway with the bucket "recordings" and returns it
// with a directory for the recorder (real-time tests: skipped with -short).
func startS3(t *testing.T) (*s3test.Gateway, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("real-time media test")
	}
	g := s3test.Start(t)
	g.CreateBucket(context.Background(), t, "recordings")
	return g, t.TempDir()
}

// s3Config is the YAML of application "a" storing on gateway g with secret.
func s3Config(g *s3test.Gateway, secret string) string {
	return "applications:\n  a:\n    storage:\n      provider: AMAZON_S3\n      bucket: recordings\n      prefix: rec\n" +
		"      region: us-east-1\n      endpoint: " + g.Endpoint + "\n      pathStyle: true\n" +
		"      accessKeyId: " + s3test.Access + "\n      secretAccessKey: " + secret + "\n" +
		"uploads:\n  minBackoff: 200ms\n  maxBackoff: 1s\n"
}

// trackUpload returns the objectStorage of the recording's only track.
func trackUpload(msg *api.RecordingDataMessage) *api.UploadDataMessage {
	if len(msg.Streams) != 1 || len(msg.Streams[0].Tracks) != 1 || msg.Streams[0].Tracks[0].Storage == nil {
		return nil
	}
	return msg.Streams[0].Tracks[0].Storage.ObjectStorage
}

// waitState polls the recording until cond holds or 60 s pass.
func waitState(t *testing.T, s *server, key, path string, cond func(*api.RecordingDataMessage) bool) *api.RecordingDataMessage {
	t.Helper()
	var msg api.RecordingDataMessage
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		msg = api.RecordingDataMessage{}
		call(t, "GET", s.url+path, key, nil, &msg)
		if cond(&msg) {
			return &msg
		}
	}
	b, _ := json.Marshal(msg)
	t.Fatalf("recording never reached the expected state: %s\n%s", b, s.stderr)
	return nil
}

// checkS3Objects reads the manifest of the recording from the gateway and
// checks every track and the mix against its sizes and SHA-256.
func checkS3Objects(t *testing.T, g *s3test.Gateway, prefix string) {
	t.Helper()
	p, err := s3store.New(context.Background(), s3store.Options{Bucket: "recordings", Endpoint: g.Endpoint, PathStyle: true,
		AccessKeyID: s3test.Access, SecretAccessKey: s3test.Secret})
	if err != nil {
		t.Fatal(err)
	}
	b := storage.NewBucket(p)
	defer b.Close()
	ctx := context.Background()
	manData, err := b.ReadAll(ctx, prefix+composition.ManifestFile)
	if err != nil {
		t.Fatalf("manifest in S3: %v", err)
	}
	var man composition.Manifest
	if err := json.Unmarshal(manData, &man); err != nil || man.Mix == nil || len(man.Tracks) != 1 {
		t.Fatalf("manifest %s: %v", manData, err)
	}
	check := func(rel string, size int64, sum string) {
		data, err := b.ReadAll(ctx, prefix+rel)
		h := sha256.Sum256(data)
		if err != nil || (size >= 0 && int64(len(data)) != size) || hex.EncodeToString(h[:]) != sum || len(data) < 1000 {
			t.Errorf("S3 object %s: %d bytes (%v), sha256 %x; manifest: %d bytes, %s", rel, len(data), err, h, size, sum)
		}
	}
	for _, tr := range man.Tracks {
		check(tr.File, tr.Size, tr.SHA256)
	}
	check(composition.MixFile, -1, man.Mix.SHA256)
}

// prefixOf returns the object key prefix of a recording from a track location.
func prefixOf(t *testing.T, loc, instanceID string) string {
	t.Helper()
	_, key, ok := strings.Cut(loc, "/recordings/")
	i := strings.Index(key, instanceID+"/")
	if !ok || i < 0 {
		t.Fatalf("track location %q", loc)
	}
	return key[:i+len(instanceID)+1]
}

// TestServe_S3OutageDuringStopLosesNothing: the S3 gateway is killed
// before the recording stops and started again later. The upload failures are shown (FAILED upload_failed,
// the track's objectStorage.error), the local files are kept, and when the
// gateway is back the queue uploads everything: the recording becomes
// STOPPED, every object matches the manifest, the local copy is removed.
func TestServe_S3OutageDuringStopLosesNothing(t *testing.T) {
	g, dir := startS3(t)
	writeConfig(t, dir, s3Config(g, s3test.Secret))
	s := serveProcess(t, dir)
	key := readKey(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	ev, p := recordWithProcess(t, ctx, s, key)
	time.Sleep(2 * time.Second)
	g.Kill()
	defer p.Leave(ctx)
	path := "/api/recordings/c/" + ev.RecorderID + "/" + ev.InstanceID
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		var out api.RecordingDataEvent
		call(t, "POST", s.url+path+"/stop", key, nil, &out)
	}()
	failed := waitState(t, s, key, path, func(m *api.RecordingDataMessage) bool {
		o := trackUpload(m)
		return o != nil && o.Error != nil
	})
	o := trackUpload(failed)
	t.Logf("during the outage: state %s, track objectStorage.error %+v", failed.State, o.Error)
	if o.Error.Code != "Unavailable" || o.Error.Message == "" {
		t.Errorf("track upload error during the outage: %+v, want code Unavailable and a message", o.Error)
	}
	local := filepath.Join(dir, "data", "recordings", "default", "c", ev.RecorderID, ev.InstanceID)
	if _, err := os.Stat(filepath.Join(local, "mix.wav")); err != nil {
		t.Errorf("local mix gone during the outage: %v", err)
	}
	time.Sleep(time.Second)
	if err := g.Restart(); err != nil { // same address and directory
		t.Fatal(err)
	}
	done := waitState(t, s, key, path, func(m *api.RecordingDataMessage) bool {
		o := trackUpload(m)
		return m.State == "STOPPED" && o != nil && o.Error == nil && o.Location != ""
	})
	<-stopped
	if done.Error != nil {
		t.Errorf("recording error after the uploads: %+v", done.Error)
	}
	checkS3Objects(t, g, prefixOf(t, trackUpload(done).Location, ev.InstanceID))
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(local); err != nil {
			return
		}
	}
	t.Errorf("local copy %s kept after every upload was verified", local)
}

// TestServe_S3WrongCredentialsThenFixed: with a wrong secret the track's
// objectStorage.error says Unauthenticated/PermissionDenied clearly; after
// the configuration is fixed and the recorder restarted, the queue uploads
// everything and the recording becomes STOPPED.
func TestServe_S3WrongCredentialsThenFixed(t *testing.T) {
	g, dir := startS3(t)
	writeConfig(t, dir, s3Config(g, "wrong-secret-0123456789"))
	s := serveProcess(t, dir)
	key := readKey(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	ev, p := recordWithProcess(t, ctx, s, key)
	time.Sleep(1500 * time.Millisecond)
	path := "/api/recordings/c/" + ev.RecorderID + "/" + ev.InstanceID
	var out api.RecordingDataEvent
	call(t, "POST", s.url+path+"/stop", key, nil, &out)
	p.Leave(ctx)
	bad := waitState(t, s, key, path, func(m *api.RecordingDataMessage) bool { return m.State == "FAILED" })
	o := trackUpload(bad)
	if o == nil || o.Error == nil || (o.Error.Code != "Unauthenticated" && o.Error.Code != "PermissionDenied") || bad.Error == nil || bad.Error.Code != "upload_failed" {
		t.Fatalf("with wrong credentials: recording error %+v, track upload %+v", bad.Error, o)
	}
	t.Logf("wrong credentials: %s: %s", o.Error.Code, o.Error.Message)

	s.cmd.Process.Signal(syscall.SIGTERM)
	if code := s.wait(t, 30*time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
	writeConfig(t, dir, s3Config(g, s3test.Secret))
	s2 := serveProcess(t, dir)
	done := waitState(t, s2, key, path, func(m *api.RecordingDataMessage) bool {
		o := trackUpload(m)
		return m.State == "STOPPED" && o != nil && o.Error == nil && o.Location != ""
	})
	if done.Error != nil || done.Recovered != "" {
		t.Errorf("after the fix: error %+v, recovered %q", done.Error, done.Recovered)
	}
	checkS3Objects(t, g, prefixOf(t, trackUpload(done).Location, ev.InstanceID))
}

// TestServe_ChunkedMixSurvivesKill: with uploads.chunkInterval 1s the mix
// and the track file stream to S3 as byte-range parts while they are
// recorded. After kill -9 4 s or more in, half an interval after a cut,
// before any restart (the machine could be gone), S3 holds parts of
// mix.wav and of the PCMU track's WAV whose reassembly (recorder.
// Reassemble: concatenation, header repair) holds the tone covering all
// but about the last interval and write buffer. The restart then recovers
// the recording, uploads the final files and deletes the parts.
func TestServe_ChunkedMixSurvivesKill(t *testing.T) {
	g, dir := startS3(t)
	writeConfig(t, dir, s3Config(g, s3test.Secret)+"  chunkInterval: 1s\n")
	s := serveProcess(t, dir)
	key := readKey(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	ev, p := recordWithProcess(t, ctx, s, key)
	path := "/api/recordings/c/" + ev.RecorderID + "/" + ev.InstanceID
	var st api.RecordingDataMessage
	call(t, "GET", s.url+path, key, nil, &st)
	started, err := time.Parse(time.RFC3339Nano, st.Started)
	if err != nil {
		t.Fatalf("the recording's start %q: %v", st.Started, err)
	}
	pr, err := s3store.New(ctx, s3store.Options{Bucket: "recordings", Endpoint: g.Endpoint, PathStyle: true,
		AccessKeyID: s3test.Access, SecretAccessKey: s3test.Secret})
	if err != nil {
		t.Fatal(err)
	}
	b := storage.NewBucket(pr)
	defer b.Close()
	// The recorder cuts a part of every file each interval, on its own
	// ticker: it is killed half an interval after a cut of mix.wav that
	// comes 4 s or more into the recording (a part seen on its disk, until
	// uploaded, or in S3).
	const interval = time.Second
	seen := map[string]bool{} // mix.wav's parts seen
	var cut time.Time
	for deadline, first := time.Now().Add(30*time.Second), true; ; first = false {
		now := time.Now()
		if now.After(deadline) {
			t.Fatalf("30 s: the recorder cut mix.wav's parts %v", seen)
		}
		var names []string
		for _, f := range partFiles(filepath.Join(dir, "data", "recordings"), ev.InstanceID, composition.MixFile) {
			names = append(names, filepath.Base(f))
		}
		if objs, err := b.List(ctx, "rec/"); err == nil {
			for _, o := range objs {
				if _, rel, ok := strings.Cut(o.Key, ev.InstanceID+"/"+"parts/"); ok && strings.HasPrefix(rel, composition.MixFile+".part-") {
					names = append(names, rel)
				}
			}
		}
		isNew := false
		for _, n := range names {
			if !seen[n] {
				seen[n], isNew = true, !first
			}
		}
		if isNew && now.Sub(started) >= 4*time.Second {
			cut = now
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Until(cut.Add(interval / 2)))
	s.cmd.Process.Signal(syscall.SIGKILL)
	killed := time.Now()
	s.wait(t, 10*time.Second)
	p.Leave(ctx)
	recorded := killed.Sub(started)
	t.Logf("killed %.2f s after the recording started, %.2f s after a cut of mix.wav seen %.2f s in", recorded.Seconds(),
		killed.Sub(cut).Seconds(), cut.Sub(started).Seconds())

	all, err := b.List(ctx, "rec/")
	if err != nil {
		t.Fatal(err)
	}
	recPrefix, files := "", map[string]int{} // file → parts in S3
	for _, a := range all {
		k, rel, ok := strings.Cut(a.Key, ev.InstanceID+"/parts/")
		if !ok {
			continue
		}
		recPrefix = k + ev.InstanceID + "/"
		files[rel[:strings.LastIndex(rel, ".part-")]]++
	}
	t.Logf("in S3 after kill -9 at %.2f s, before a restart: parts %v", recorded.Seconds(), files)
	var track string
	for f := range files {
		if strings.HasPrefix(f, "tracks/") {
			track = f
		}
	}
	if files[composition.MixFile] == 0 || !strings.HasSuffix(track, ".wav") {
		t.Fatalf("parts in S3 after the kill: %v; want mix.wav and the track's WAV", files)
	}
	reassembled := map[string][]byte{}
	for _, f := range []string{composition.MixFile, track} {
		dst := filepath.Join(t.TempDir(), "re.wav")
		if _, err := recorder.Reassemble(ctx, b, recPrefix, f, dst); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		if h, err := wavwriter.ParseHeader(data); err != nil || int64(h.DataSize) != int64(len(data))-h.DataOffset {
			t.Fatalf("%s reassembled: header %+v (%v), %d bytes", f, h, err, len(data))
		}
		reassembled[f] = data
		var pcm []int16
		if f == composition.MixFile {
			pcm = wavSamples(t, data)
		} else {
			pcm = mediatest.Decode(t, dst, 8000) // G.711 μ-law
		}
		seconds := float64(len(pcm)) / 8000
		tone := 0.0 // seconds of tone, in 100 ms windows
		for i := 0; (i+1)*800 <= len(pcm); i++ {
			if mediatest.Goertzel(pcm[i*800:(i+1)*800], 8000, 440) > 1000 {
				tone += 0.1
			}
		}
		t.Logf("%s reassembled from %d parts: %.2f s, %.1f s of tone", f, files[f], seconds, tone)
		if seconds < 2.5 || tone < seconds-1.5 {
			t.Errorf("%s: only %.2f s (%.1f s of tone) of the %.2f s recorded are in S3 after the kill; want all but ~2 s (one interval and the write buffer)", f, seconds, tone, recorded.Seconds())
		}
	}

	s2 := serveProcess(t, dir)
	done := waitState(t, s2, key, path, func(m *api.RecordingDataMessage) bool {
		o := trackUpload(m)
		return m.State == "STOPPED" && m.Recovered != "" && o != nil && o.Error == nil && o.Location != ""
	})
	prefix := prefixOf(t, trackUpload(done).Location, ev.InstanceID)
	checkS3Objects(t, g, prefix)
	// The parts are the file as of the last cut: the reassembled media data
	// is the start of the final object's.
	for f, re := range reassembled {
		final, err := b.ReadAll(ctx, prefix+f)
		h, _ := wavwriter.ParseHeader(re)
		if err != nil || len(final) < len(re) || !bytes.Equal(final[h.DataOffset:len(re)], re[h.DataOffset:]) {
			t.Errorf("%s reassembled from the parts (%d bytes) is not the start of the final object (%d bytes, %v)", f, len(re), len(final), err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if left, err := b.List(ctx, prefix+"parts/"); err == nil && len(left) == 0 {
			return
		}
	}
	t.Errorf("the parts are still in S3 after the final mix.wav was uploaded")
}
