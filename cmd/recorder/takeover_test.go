package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rtcrec/recorder/api"
	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/internal/pgtest"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/media/wavwriter"
	"github.com/rtcrec/recorder/recorder/conference/janus/janustest"
)

// takeoverChunk is the upload interval of the takeover test: what the owner
// recorded in its last interval before the kill is lost (issue 13: "at most
// one upload interval").
const takeoverChunk = time.Second

// TestFleet_KillNineTakesOverAJanusRecording: three `recorder serve`
// processes share one PostgreSQL and one storage; a Janus room with a real
// Pion publisher (440 Hz) is recorded by A. A is killed with SIGKILL mid
// recording, mid-way between two of its cuts. One survivor takes the
// recording over within the fleet's lease (default heartbeats: dead after
// 6 s; under 10 s in all), the other reads it from the store throughout:
// every GET on both survivors answers 200 from the kill to the end. The
// first recording ends STOPPED, recovered, with the two segments and the
// gap. What A had uploaded when it died (its parts in the storage then) is
// all in the first segment, which ends where A's uploaded mix ends, and the
// gap is from there to the continuation's start. What A had cut holds erin's
// track (the truth) up to at most one upload interval plus the writers'
// one-second flush before the kill; what it had cut and not yet uploaded
// (an upload in flight: the storage's time, which the contract does not
// bound) is lost with it and logged. Each segment's mix holds the tone
// wherever its track does, and the continuation holds it from its start to
// its stop (when the stop took effect: its record's stopped time).
func TestFleet_KillNineTakesOverAJanusRecording(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes")
	}
	srv := janustest.Start(t) // fails under CI without the namespace
	srv.CreateRoom(t, "4004")
	srv.Publish(t, "4004", "erin", 440, "MIC")

	dsn := pgtest.Start(t).NewDatabase(t)
	shared := t.TempDir() // the storage every instance uploads to
	var fleet []*server
	var dirs []string
	for range 3 {
		dir := t.TempDir()
		cfg := fmt.Sprintf("listen: 127.0.0.1:0\ndataDir: %s\n"+
			"webrtc: {includeLoopback: true, interfaces: [%s]}\n"+
			"apiKeys: [{key: %s, organizationId: org1, applications: [\"*\"]}]\n"+
			"store: {driver: postgres, dsn: %q}\n"+
			"uploads: {chunkInterval: %s}\n"+
			"applications:\n  jan:\n    conference: {kind: janus, url: %q}\n    storage: {provider: LOCAL, dir: %q}\n",
			filepath.Join(dir, "data"), janustest.Interface, fleetKey, dsn, takeoverChunk, srv.URL, shared)
		if err := os.WriteFile(filepath.Join(dir, "recorder.yaml"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		fleet = append(fleet, serveProcess(t, dir))
		dirs = append(dirs, dir)
	}
	keep := keepOnFailure(t)
	keep.dir("storage", shared)
	for i, s := range fleet {
		keep.log(s.id, s.stderr)
		keep.dir(s.id, dirs[i])
	}
	var ev api.RecordingDataEvent
	if st := call(t, "POST", fleet[0].url+"/api/recordings/start", fleetKey,
		api.StartRecording{ApplicationID: "jan", ConferenceID: "4004", ConversationID: "kn"}, &ev); st != 200 || ev.State != "ACTIVE" {
		t.Fatalf("start: %d %+v", st, ev)
	}
	var owner *server
	var ownerDir string
	var survivors []*server
	for i, s := range fleet {
		if s.id == ev.RecorderID {
			owner, ownerDir = s, dirs[i]
		} else {
			survivors = append(survivors, s)
		}
	}
	if owner == nil {
		t.Fatalf("the recording runs on %s, none of the processes", ev.RecorderID)
	}
	path := "/api/recordings/kn/" + ev.RecorderID + "/" + ev.InstanceID
	// The owner records erin, and uploads parts of her track to the shared
	// storage.
	var msg api.RecordingDataMessage
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		msg = api.RecordingDataMessage{}
		call(t, "GET", owner.url+path, fleetKey, nil, &msg)
		if len(msg.Streams) > 0 && len(msg.Streams[0].Tracks) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the owner never subscribed to erin: %+v", msg)
		}
	}
	started, err := time.Parse(time.RFC3339Nano, msg.Started)
	if err != nil {
		t.Fatal(err)
	}
	// The owner cuts a part of every file each interval, on its own ticker:
	// it is killed half an interval after a cut of mix.wav that comes 4 s or
	// more into the recording, seen on its disk (until uploaded) or in the
	// storage, once the storage holds parts of erin's track.
	seen := map[int]bool{} // mix.wav's parts seen
	for deadline, first := time.Now().Add(30*time.Second), true; ; first = false {
		now := time.Now()
		if now.After(deadline) {
			t.Fatalf("30 s: the owner cut mix.wav's parts %v and uploaded %d parts of erin's track", seen,
				len(partFiles(shared, ev.InstanceID, composition.TracksDir+"*")))
		}
		cut := false
		for _, root := range []string{filepath.Join(ownerDir, "data", "recordings"), shared} {
			for _, p := range partFiles(root, ev.InstanceID, composition.MixFile) {
				var n int
				if _, err := fmt.Sscanf(p[strings.LastIndex(p, ".part-")+len(".part-"):], "%d", &n); err == nil && !seen[n] {
					seen[n], cut = true, !first
				}
			}
		}
		if cut && now.Sub(started) >= 4*time.Second && len(partFiles(shared, ev.InstanceID, composition.TracksDir+"*")) >= 2 {
			time.Sleep(time.Until(now.Add(takeoverChunk / 2)))
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := owner.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	owner.wait(t, 10*time.Second)
	t.Logf("owner %s killed %.2f s after the recording started", owner.id, killed.Sub(started).Seconds())

	// Both survivors answer for the recording all along: 200 on every read,
	// polled every 100 ms, until it is final.
	var mu sync.Mutex
	var final api.RecordingDataMessage
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for _, s := range survivors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				var m api.RecordingDataMessage
				if st := call(t, "GET", s.url+path, fleetKey, nil, &m); st != 200 {
					errs <- fmt.Sprintf("GET on %s %.1f s after the kill: %d", s.id, time.Since(killed).Seconds(), st)
				}
				if m.State == "STOPPED" || m.State == "FAILED" {
					mu.Lock()
					final = m
					mu.Unlock()
					return
				}
				if time.Now().After(deadline) {
					errs <- fmt.Sprintf("%s: the recording is %s a minute after the kill", s.id, m.State)
					return
				}
			}
		}()
	}
	// What the owner had: its disk and the storage as they were at its
	// death (the takeover deletes the parts once it has uploaded the whole
	// files), and when the fleet counts it dead (its last heartbeat).
	snap := t.TempDir()
	copyTree(filepath.Join(snap, "data"), ownerDir)
	copyTree(filepath.Join(snap, "storage"), shared)
	keep.dir("at-kill", snap)
	var mixAt, trackAt *fileAtKill
	for _, f := range ownerAtKill(t, snap, ev.InstanceID) {
		t.Logf("the owner at the kill: %s%s", f, f.partsTimeline(started))
		if f.hole {
			t.Errorf("the owner's %s at the kill: a part missing in the storage below one there", f.rel)
		}
		if f.rel == composition.MixFile {
			mixAt = &f
		} else if strings.HasPrefix(f.rel, composition.TracksDir) {
			trackAt = &f
		}
	}
	if db, err := sql.Open("pgx", dsn); err == nil {
		var beat int64
		if err := db.QueryRow(`SELECT heartbeat FROM instances WHERE recorder_id = $1`, owner.id).Scan(&beat); err == nil {
			last := time.Unix(0, beat)
			t.Logf("the owner's last heartbeat %.2f s before the kill: dead for the fleet %.2f s after the kill (3 heartbeats)",
				killed.Sub(last).Seconds(), last.Add(6*time.Second).Sub(killed).Seconds())
		}
		db.Close()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if mixAt == nil || trackAt == nil {
		t.Errorf("the owner's mix.wav and erin's track at the kill: %v %v", mixAt, trackAt)
	}
	if t.Failed() {
		t.FailNow()
	}
	tk := final.Takeover
	if final.State != "STOPPED" || final.Recovered == "" || tk == nil || tk.From != owner.id || len(tk.Segments) != 2 || tk.Parts == 0 {
		t.Fatalf("the first recording after the takeover: %s, recovered %q, takeover %+v", final.State, final.Recovered, tk)
	}
	var by, other *server
	for _, s := range survivors {
		if s.id == tk.By {
			by = s
		} else {
			other = s
		}
	}
	if by == nil || tk.Segments[1].RecorderID != by.id {
		t.Fatalf("taken over by %s (second segment on %s), not a survivor", tk.By, tk.Segments[1].RecorderID)
	}
	seg1End, err1 := time.Parse(time.RFC3339Nano, tk.Segments[0].Ended)
	seg2Start, err2 := time.Parse(time.RFC3339Nano, tk.Segments[1].Started)
	if err1 != nil || err2 != nil {
		t.Fatalf("segment times: %v %v", err1, err2)
	}
	takeover := seg2Start.Sub(killed)
	lost := killed.Sub(seg1End)
	gap := time.Duration(tk.GapSeconds * float64(time.Second))
	t.Logf("takeover by %s: kill → second segment ACTIVE %v; first segment %v of audio from %d parts, ends %v before the kill; gap %v",
		by.id, takeover.Round(time.Millisecond), seg1End.Sub(started).Round(time.Millisecond), tk.Parts, lost.Round(time.Millisecond), gap.Round(time.Millisecond))
	if at := logTime(by.stderr, "taking over a recording of a dead instance"); !at.IsZero() {
		t.Logf("%s claimed the recording %.2f s after the kill", by.id, at.Sub(killed).Seconds())
	}
	if takeover > 10*time.Second {
		t.Errorf("takeover took %v after the kill, want under 10 s", takeover)
	}
	// The first segment holds what the owner had uploaded: it ends no
	// earlier than the owner's mix in the storage at the kill (it ends
	// where its mix completed from the tracks ends: checked below), and the
	// gap runs from there to the continuation.
	if d := seg1End.Sub(started) - mixAt.uploaded; d < -time.Millisecond {
		t.Errorf("the first segment ends %v into the recording; the owner had uploaded %v of its mix", seg1End.Sub(started), mixAt.uploaded)
	}
	if d := gap - seg2Start.Sub(seg1End); d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("gap %v, want the time from the first segment's end to the second's start, %v", gap, seg2Start.Sub(seg1End))
	}
	t.Logf("cut by the owner and not in the storage at the kill (uploads in flight, lost with it): mix %v, track %v",
		mixAt.cut-mixAt.uploaded, trackAt.cut-trackAt.uploaded)
	// Exactly one continuation: the other survivor started none.
	var conv api.ConversationMessage
	if st := call(t, "GET", other.url+"/api/recordings/kn", fleetKey, nil, &conv); st != 200 || len(conv.Recordings) != 2 ||
		conv.Recordings[0].RecorderID != owner.id || conv.Recordings[1].RecorderID != by.id {
		t.Fatalf("recordings of the conversation read on %s: %d %+v, want the first and one continuation", other.id, st, conv.Recordings)
	}

	// The continuation records erin on its instance; stopped through the
	// other survivor (forwarded).
	time.Sleep(time.Until(seg2Start.Add(3 * time.Second)))
	path2 := "/api/recordings/kn/" + by.id + "/" + tk.Segments[1].InstanceID
	var stopped api.RecordingDataEvent
	if st := call(t, "POST", other.url+path2+"/stop", fleetKey, nil, &stopped); st != 200 || stopped.State != "STOPPED" {
		t.Fatalf("stop of the continuation through %s: %d %+v", other.id, st, stopped)
	}
	returned := time.Now()
	// The continuation lasts until its stop took effect (its record's
	// stopped time), not until the forwarded call returned: the call waits
	// for the drain, the files' close and the uploads' verification.
	var cont api.RecordingDataMessage
	if st := call(t, "GET", other.url+path2, fleetKey, nil, &cont); st != 200 || cont.State != "STOPPED" {
		t.Fatalf("the continuation read on %s after its stop: %d %+v", other.id, st, cont)
	}
	stopAt, err := time.Parse(time.RFC3339Nano, cont.Stopped)
	if err != nil {
		t.Fatalf("the continuation's stopped time %q: %v", cont.Stopped, err)
	}
	t.Logf("the continuation stopped %.2f s after it started; the stop call returned %.2f s later", stopAt.Sub(seg2Start).Seconds(), returned.Sub(stopAt).Seconds())

	// By content: each segment's track (the truth) holds the tone over all
	// it covers (from 1 s into the recording, or its first 100 ms window),
	// placed where the manifest places its file (mediaOffset and its
	// timing's steps, as the offline mix does: not the track's started
	// time, which can come after its first sample), and its mix holds it
	// wherever the track does. The first: everything the owner had uploaded
	// (to the window: the tone's end is measured in 100 ms windows); the
	// second: up to its stop less the writers' flush.
	checkSegment := func(what, instanceID string, slack time.Duration, recorded func(place func(time.Duration) time.Duration) (mix, track time.Duration)) func(time.Duration) time.Duration {
		t.Helper()
		var man composition.Manifest
		if err := json.Unmarshal(readObject(t, shared, instanceID, composition.ManifestFile), &man); err != nil {
			t.Fatal(err)
		}
		if len(man.Tracks) != 1 {
			t.Fatalf("%s: manifest tracks %+v, want erin's", what, man.Tracks)
		}
		tr := man.Tracks[0]
		place := func(d time.Duration) time.Duration { return placed(t, tr, []time.Duration{d})[0] }
		zero := place(0)
		from := max(time.Second, zero+100*time.Millisecond)
		file := filepath.Join(t.TempDir(), filepath.Base(tr.File))
		if err := os.WriteFile(file, readObject(t, shared, instanceID, tr.File), 0o600); err != nil {
			t.Fatal(err)
		}
		mixTo, trackTo := recorded(place)
		track := mediatest.Decode(t, file, 8000)
		checkToneFrom(t, what+": "+tr.File, track, 440, zero, from, trackTo, slack)
		checkToneFrom(t, what+": mix", wavSamples(t, readObject(t, shared, instanceID, composition.MixFile)), 440, 0, from,
			max(mixTo, place(toneEnd(track, 440))), slack)
		return place
	}
	place1 := checkSegment("first segment (the owner's parts)", ev.InstanceID, 100*time.Millisecond,
		func(place func(time.Duration) time.Duration) (time.Duration, time.Duration) {
			return mixAt.uploaded, place(0) + trackAt.uploaded // the file's own time: its tone's end is read without the timing's steps
		})
	// The first segment ends where its audio does: its mix, completed from
	// the tracks by the recovery (not the mix reassembled from the parts,
	// which lags the tracks by the live mixer's place behind the clock).
	h, err := wavwriter.ParseHeader(readObject(t, shared, ev.InstanceID, composition.MixFile))
	if err != nil || h.SampleRate <= 0 || h.BlockAlign <= 0 {
		t.Fatalf("the first segment's mix: header %+v, %v", h, err)
	}
	mix1 := time.Duration(int64(h.DataSize)/int64(h.BlockAlign)) * time.Second / time.Duration(h.SampleRate)
	if d := seg1End.Sub(started) - mix1; d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("the first segment ends %v into the recording; its mix (completed from the tracks) ends %v", seg1End.Sub(started), mix1)
	}
	// What the owner had cut of erin's track, uploaded or not: at most one
	// upload interval plus the writers' one-second flush before the kill
	// (README, recorder/chunks.go).
	lost = killed.Sub(started) - place1(trackAt.cut)
	t.Logf("the owner had cut erin's track up to %v before the kill", lost.Round(time.Millisecond))
	if lost > takeoverChunk+time.Second {
		t.Errorf("the owner had cut erin's track up to %v before the kill: more than one upload interval (%v) and the 1 s write buffer", lost, takeoverChunk)
	}
	checkSegment("second segment", tk.Segments[1].InstanceID, time.Second, func(func(time.Duration) time.Duration) (time.Duration, time.Duration) {
		return stopAt.Sub(seg2Start), stopAt.Sub(seg2Start)
	})
}

// partFiles returns the parts of the file rel (a glob) of recording
// instanceID found under root: a storage, or a data directory's recordings.
func partFiles(root, instanceID, rel string) []string {
	m, _ := filepath.Glob(filepath.Join(root, "*", "*", "*", instanceID, "parts", filepath.FromSlash(rel)+".part-*"))
	parts := m[:0]
	for _, p := range m {
		if !strings.HasPrefix(filepath.Base(p), ".") { // not a storage's attributes or temporary file
			parts = append(parts, p)
		}
	}
	return parts
}

// readObject returns the object rel of recording instanceID in the LOCAL
// storage at root.
func readObject(t *testing.T, root, instanceID, rel string) []byte {
	t.Helper()
	var found string
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(filepath.ToSlash(path), "/"+instanceID+"/"+rel) {
			found = path
		}
		return nil
	})
	b, err := os.ReadFile(found)
	if err != nil {
		t.Fatalf("%s of %s in storage: %v", rel, instanceID, err)
	}
	return b
}

// fileAtKill is what the killed owner had of one growing file (mix.wav, a
// track's file) when it died, read from copies of its data directory and of
// the storage taken at once: the media its writers had flushed to its disk,
// the parts it had cut of it (enqueued for upload) and those of them in the
// storage.
type fileAtKill struct {
	rel                   string
	onDisk, cut, uploaded time.Duration // media from the file's start; uploaded: the parts in the storage up to the first missing
	parts                 []partAtKill
	hole                  bool // a part missing in the storage below one there
}

// partAtKill is one part: the media it holds (from the file's start), when
// the owner cut it (its upload job's enqueue) and when it was in the
// storage (its job's end; zero: not uploaded at the kill).
type partAtKill struct {
	n             int
	from, to      time.Duration
	cut, uploaded time.Time
}

func (f fileAtKill) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %.2f s on its disk, %.2f s cut into %d parts, %.2f s uploaded;", f.rel,
		f.onDisk.Seconds(), f.cut.Seconds(), len(f.parts), f.uploaded.Seconds())
	return b.String()
}

// partsTimeline lists f's parts relative to t0 (the recording's start).
func (f fileAtKill) partsTimeline(t0 time.Time) string {
	var b strings.Builder
	for _, p := range f.parts {
		fmt.Fprintf(&b, " part %d [%.2f-%.2f s] cut %+.2f s", p.n, p.from.Seconds(), p.to.Seconds(), p.cut.Sub(t0).Seconds())
		if p.uploaded.IsZero() {
			b.WriteString(" NOT UPLOADED;")
		} else {
			fmt.Fprintf(&b, " uploaded %+.2f s;", p.uploaded.Sub(t0).Seconds())
		}
	}
	return b.String()
}

// ownerAtKill reads, from snap (the owner's data directory, "data/", and
// the shared storage, "storage/", copied right after its kill), what the
// owner had of each file of recording instanceID.
func ownerAtKill(t *testing.T, snap, instanceID string) []fileAtKill {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(snap, "data", "data", "recordings", "*", "*", "*", instanceID))
	stored, _ := filepath.Glob(filepath.Join(snap, "storage", "*", "*", "*", instanceID))
	if len(dirs) != 1 || len(stored) != 1 {
		t.Logf("the owner's recording at the kill: local %v, in storage %v", dirs, stored)
		return nil
	}
	local := dirs[0]
	db, err := sql.Open("sqlite", "file:"+filepath.Join(snap, "data", "data", "recorder.db"))
	if err != nil {
		t.Logf("the owner's upload queue: %v", err)
		return nil
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id, enqueued, state, uploaded FROM upload_jobs WHERE recording_id = ?`, instanceID)
	if err != nil {
		t.Logf("the owner's upload queue: %v", err)
		return nil
	}
	type job struct {
		cut, uploaded time.Time
	}
	jobs := map[string]map[int]job{} // by file, by part
	for rows.Next() {
		var id, state string
		var enq, up int64
		if err := rows.Scan(&id, &enq, &state, &up); err != nil {
			t.Logf("the owner's upload queue: %v", err)
			return nil
		}
		rel, n, ok := strings.Cut(strings.TrimPrefix(id, instanceID+"/"), ".part-")
		if !ok || !strings.HasPrefix(rel, "parts/") {
			continue // a final output, or a part cut again
		}
		rel = strings.TrimPrefix(rel, "parts/")
		var num int
		fmt.Sscanf(n, "%d", &num)
		j := job{cut: time.Unix(0, enq)}
		if state == "uploaded" {
			j.uploaded = time.Unix(0, up)
		}
		if jobs[rel] == nil {
			jobs[rel] = map[int]job{}
		}
		jobs[rel][num] = j
	}
	var out []fileAtKill
	for rel, parts := range jobs {
		f := fileAtKill{rel: rel}
		head, err := os.ReadFile(filepath.Join(local, filepath.FromSlash(rel)))
		if err != nil {
			t.Logf("the owner's %s at the kill: %v", rel, err)
			continue
		}
		h, err := wavwriter.ParseHeader(head)
		if err != nil || h.SampleRate <= 0 || h.BlockAlign <= 0 {
			t.Logf("the owner's %s at the kill: header %+v: %v", rel, h, err)
			continue
		}
		rate := float64(h.SampleRate * h.BlockAlign) // bytes a second
		media := func(off int64) time.Duration {
			return time.Duration(float64(max(off-h.DataOffset, 0)) / rate * float64(time.Second))
		}
		f.onDisk = media(int64(len(head)))
		off := int64(0)
		missing := false
		for n := 1; n <= len(parts); n++ {
			j, ok := parts[n]
			if !ok {
				t.Logf("the owner's %s at the kill: part %d never cut but %d were", rel, n, len(parts))
				break
			}
			name := filepath.FromSlash("parts/"+rel) + fmt.Sprintf(".part-%04d", n)
			p := partAtKill{n: n, cut: j.cut}
			var size int64 = -1
			if fi, err := os.Stat(filepath.Join(stored[0], name)); err == nil {
				size = fi.Size()
				p.uploaded = j.uploaded
				if p.uploaded.IsZero() {
					p.uploaded = fi.ModTime() // in the storage, its job not yet marked
				}
			} else if fi, err := os.Stat(filepath.Join(local, name)); err == nil {
				size = fi.Size()
			}
			if size < 0 {
				t.Logf("the owner's %s at the kill: part %d neither in the storage nor on its disk", rel, n)
				break
			}
			p.from, p.to = media(off), media(off+size)
			off += size
			f.cut = p.to
			if p.uploaded.IsZero() {
				missing = true
			} else {
				if missing {
					f.hole = true
				}
				if !f.hole {
					f.uploaded = p.to
				}
			}
			f.parts = append(f.parts, p)
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rel < out[j].rel })
	return out
}

// logTime returns the time of the first line of a recorder's log with the
// message msg (zero: none).
func logTime(b *logBuffer, msg string) time.Time {
	for _, l := range b.Lines(`msg="` + msg + `"`) {
		if v, ok := strings.CutPrefix(l, "time="); ok {
			v, _, _ = strings.Cut(v, " ")
			if at, err := time.Parse(time.RFC3339Nano, v); err == nil {
				return at
			}
		}
	}
	return time.Time{}
}
