package api

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/recorder/conference/whip"
)

// scrape returns the samples of /metrics by series ("name" or
// `name{label="v",...}` as exposed).
func scrape(t *testing.T, h *harness) map[string]float64 {
	t.Helper()
	resp, err := http.Get(h.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// lossyPCMU publishes a PCMU tone over WHIP in 10 ms packets, leaving out one
// sequence number in every 100 (1 % loss), and returns after n sequence
// numbers (sent or left out) at real-time pace; early counts the packets
// written while the publisher's DTLS transport (dtls) was not yet connected,
// which its Pion drops without an error.
func lossyPCMU(t *testing.T, ctx context.Context, track *webrtc.TrackLocalStaticRTP, dtls *webrtc.DTLSTransport, freq float64, n int) (sent, skipped, early int) {
	tone := &synth.Tone{Freq: freq, Amplitude: 8000}
	const ptime = 10 * time.Millisecond
	buf := make([]byte, 0, 80)
	tick := time.NewTicker(ptime)
	defer tick.Stop()
	start := time.Now()
	for seq := 0; seq < n; {
		select {
		case <-ctx.Done():
			t.Errorf("publisher: %v", ctx.Err())
			return
		case now := <-tick.C:
			for due := int(now.Sub(start)/ptime) + 1; seq < due && seq < n; seq++ {
				buf = buf[:0]
				for len(buf) < 80 { // 10 ms at 8 kHz: half a 20 ms tone frame
					buf = tone.NextPCMU(buf)
				}
				if seq%100 == 50 {
					skipped++
					continue
				}
				pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(seq), Timestamp: uint32(seq * 80)}, Payload: buf[:80]}
				if dtls.State() != webrtc.DTLSTransportStateConnected {
					early++
				}
				if err := track.WriteRTP(pkt); err != nil {
					t.Errorf("publisher: %v", err)
					return
				}
				sent++
			}
		}
	}
	return sent, skipped, early
}

// TestMetrics_KnownRecording records two participants for 5 s with 1 % of
// their packets left out and checks that /metrics shows those figures
// within 2 %: packets received and lost, tracks, bytes written (against the
// uploaded objects' sizes), the recording's final state, the uploads, the
// storage latency histogram and the API request counter.
func TestMetrics_KnownRecording(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	h := startService(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const conf, conv = "mconf", "mconv"

	var tracks []*webrtc.TrackLocalStaticRTP
	var dtls []*webrtc.DTLSTransport
	for _, user := range []string{"alice", "bob"} {
		tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "audio", user)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := h.whipClient(key1).Publish(ctx, whip.Endpoint(h.url, conf, user, "MIC"), tr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pub.Close(context.Background()) })
		if err := pub.WaitConnected(ctx); err != nil {
			t.Fatal(err)
		}
		tracks, dtls = append(tracks, tr), append(dtls, pub.PC.SCTP().Transport())
	}
	ev, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: conf, ConversationID: conv})
	if st != 200 || ev.State != "ACTIVE" {
		t.Fatalf("start: %d %+v", st, ev)
	}

	const n = 500 // 5 s of 10 ms packets per participant
	type result struct{ sent, skipped, early int }
	results := make(chan result, len(tracks))
	for i, tr := range tracks {
		go func() {
			s, k, e := lossyPCMU(t, ctx, tr, dtls[i], 440*float64(i+1), n)
			results <- result{s, k, e}
		}()
	}
	var sent, skipped, early int
	for range tracks {
		r := <-results
		sent, skipped, early = sent+r.sent, skipped+r.skipped, early+r.early
	}
	if early > 0 {
		// WaitConnected returns once DTLS-SRTP is up: none, since.
		t.Errorf("%d packets written before the publisher's DTLS transport was connected (its Pion drops them)", early)
	}
	if sent != 990 || skipped != 10 {
		t.Fatalf("published %d packets and left out %d, want 990 and 10", sent, skipped)
	}
	// Wait until the recorder has read what was sent (or stops receiving).
	var m map[string]float64
	for last, stable := -1.0, 0; stable < 5; {
		time.Sleep(100 * time.Millisecond)
		m = scrape(t, h)
		got := m["recorder_rtp_packets_received_total"]
		if got == last {
			stable++
		} else {
			last, stable = got, 0
		}
		if got >= float64(sent) {
			break
		}
	}
	if got := m[`recorder_tracks{kind="audio"}`]; got != 2 {
		t.Errorf(`recorder_tracks{kind="audio"} = %v while recording, want 2`, got)
	}
	if got := m[`recorder_recordings{state="ACTIVE"}`]; got != 1 {
		t.Errorf(`recorder_recordings{state="ACTIVE"} = %v, want 1`, got)
	}

	var stopped RecordingDataEvent
	if st := h.do("POST", recPath(ev)+"/stop", key1, nil, &stopped); st != 200 || stopped.State != "STOPPED" {
		t.Fatalf("stop: %d %+v", st, stopped)
	}
	var comp RecordingDataMessage
	if st := h.do("GET", "/api/compositions/"+conv, key1, nil, &comp); st != 200 || comp.Composition == nil {
		t.Fatalf("composition: %d %+v", st, comp)
	}
	var files float64
	for _, s := range comp.Streams {
		for _, tr := range s.Tracks {
			if tr.Storage == nil || tr.Storage.ObjectStorage == nil {
				t.Fatalf("track %s has no uploaded object: %+v", tr.ID, tr)
			}
			sz, _ := strconv.ParseFloat(tr.Storage.ObjectStorage.Size, 64)
			files += sz
		}
	}
	for _, o := range comp.Composition.Outputs {
		sz, _ := strconv.ParseFloat(o.Size, 64)
		files += sz
	}

	m = scrape(t, h)
	within := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 0.02*want {
			t.Errorf("%s = %v, want %v ± 2 %%", name, got, want)
		}
	}
	within("recorder_rtp_packets_received_total", m["recorder_rtp_packets_received_total"], float64(sent))
	within("recorder_rtp_packets_lost_total", m["recorder_rtp_packets_lost_total"], float64(skipped))
	within("recorder_bytes_written_total", m["recorder_bytes_written_total"], files)
	// Where every packet went, file side: the gaps left out by the
	// publishers never came; everything that came was written or dropped
	// for a reason.
	within("recorder_track_packets_missing_total", m["recorder_track_packets_missing_total"], float64(skipped))
	var dropped float64
	for _, reason := range []string{"duplicate", "late", "paused", "after_stop"} {
		name := `recorder_track_packets_dropped_total{reason="` + reason + `"}`
		if _, ok := m[name]; !ok {
			t.Errorf("%s is missing", name)
		}
		dropped += m[name]
	}
	if w, got := m["recorder_track_packets_written_total"], m["recorder_rtp_packets_received_total"]; w+dropped != got || w < 0.98*float64(sent) {
		t.Errorf("%v packets written and %v dropped for %v received (%d sent)", w, dropped, got, sent)
	}
	if _, ok := m["recorder_udp_receive_drops"]; !ok {
		t.Error("recorder_udp_receive_drops is missing")
	}
	for name, want := range map[string]float64{
		"recorder_tracks_started_total":                                               2,
		`recorder_tracks{kind="audio"}`:                                               0,
		`recorder_recordings_ended_total{state="STOPPED"}`:                            1,
		`recorder_recordings{state="ACTIVE"}`:                                         0,
		"recorder_decode_errors_total":                                                0,
		"recorder_write_errors_total":                                                 0,
		`recorder_http_requests_total{code="200",route="POST /api/recordings/start"}`: 1,
		"recorder_upload_queue_depth":                                                 0,
		"recorder_upload_queue_oldest_age_seconds":                                    0,
	} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	// Three objects at least (two tracks and the mix) were uploaded to LOCAL
	// storage, and each upload's duration is in the histogram.
	if got := m[`recorder_uploads_total{outcome="uploaded",provider="LOCAL"}`]; got < 3 {
		t.Errorf("uploads to LOCAL = %v, want at least 3", got)
	}
	if got := m[`recorder_storage_operation_duration_seconds_count{op="upload",provider="LOCAL",result="ok"}`]; got < 3 {
		t.Errorf("storage upload durations observed = %v, want at least 3", got)
	}
	if got := m["recorder_rtp_packets_late_dropped_total"]; got > 0.02*float64(sent) {
		t.Errorf("late-dropped packets = %v, more than 2 %% of %d on loopback", got, sent)
	}
	if got := m["recorder_audio_packets_shed_total"]; got > 0.02*float64(sent) {
		t.Errorf("packets shed undecoded = %v, more than 2 %% of %d on loopback", got, sent)
	}

	// A route nobody serves, named after the recording: counted as "none".
	if st := h.do("GET", "/api/nothing/"+ev.InstanceID, key1, nil, nil); st != 404 {
		t.Errorf("an unknown route: %d, want 404", st)
	}
	families := scrapeFamilies(t, h)
	checkIssueMetrics(t, families, dashboardMetrics(t))
	// No label carries an id: only the bounded label names, and no value
	// holds the recording's, conversation's, conference's or participants'
	// ids (the unknown route above included).
	ids := []string{ev.InstanceID, ev.RecorderID, conv, conf, "alice", "bob", "/api/nothing"}
	for name, f := range families {
		for _, series := range f.series {
			for label, value := range series {
				if !boundedLabels[label] {
					t.Errorf("%s has label %s=%q: not one of the bounded labels", name, label, value)
				}
				for _, id := range ids {
					if strings.Contains(value, id) {
						t.Errorf("%s{%s=%q} carries the id %q", name, label, value, id)
					}
				}
			}
		}
	}
}

// boundedLabels are the label names /metrics may use: each takes a few
// known values (states, kinds, providers, operations, outcomes, results,
// reasons, route patterns, status codes; le and quantile of histograms and
// summaries; version of go_info).
var boundedLabels = map[string]bool{"state": true, "kind": true, "provider": true, "op": true, "outcome": true, "result": true,
	"reason": true, "route": true, "code": true, "le": true, "quantile": true, "version": true}

// issueMetrics are the metrics issue 15 asks for, with their type and label
// names: recordings by state; tracks; packets received, lost and
// late-dropped; decode errors; bytes written; mixer overruns; upload queue
// depth and oldest age; uploads by provider and outcome; storage latency
// histograms; webhook backlog; WHIP sessions; API requests by route and
// status; Go runtime.
var issueMetrics = []struct {
	name, typ string
	labels    []string
}{
	{"recorder_recordings", "gauge", []string{"state"}},
	{"recorder_tracks", "gauge", []string{"kind"}},
	{"recorder_rtp_packets_received_total", "counter", nil},
	{"recorder_rtp_packets_lost_total", "counter", nil},
	{"recorder_rtp_packets_late_dropped_total", "counter", nil},
	{"recorder_audio_packets_shed_total", "counter", nil},
	{"recorder_decode_errors_total", "counter", nil},
	{"recorder_bytes_written_total", "counter", nil},
	{"recorder_mixer_overruns_total", "counter", nil},
	{"recorder_upload_queue_depth", "gauge", nil},
	{"recorder_upload_queue_oldest_age_seconds", "gauge", nil},
	{"recorder_uploads_total", "counter", []string{"outcome", "provider"}},
	{"recorder_storage_operation_duration_seconds", "histogram", []string{"op", "provider", "result"}},
	{"recorder_webhook_backlog", "gauge", nil},
	{"recorder_whip_sessions", "gauge", nil},
	{"recorder_http_requests_total", "counter", []string{"code", "route"}},
	{"go_goroutines", "gauge", nil},
	{"go_memstats_heap_inuse_bytes", "gauge", nil},
}

// family is one metric of /metrics: its type and its series' labels.
type family struct {
	typ    string
	series []map[string]string
}

var seriesLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$`)
var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// scrapeFamilies reads /metrics by metric family (a histogram's _bucket,
// _sum and _count series belong to its family).
func scrapeFamilies(t *testing.T, h *harness) map[string]*family {
	t.Helper()
	resp, err := http.Get(h.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]*family{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(f, " ")
			out[name] = &family{typ: typ}
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		m := seriesLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("/metrics line %q", line)
		}
		name := m[1]
		f := out[name]
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); f == nil && ok {
				f = out[base]
			}
		}
		if f == nil {
			t.Fatalf("/metrics: series %s has no TYPE line", name)
		}
		labels := map[string]string{}
		for _, p := range labelPair.FindAllStringSubmatch(m[2], -1) {
			labels[p[1]] = p[2]
		}
		f.series = append(f.series, labels)
	}
	return out
}

// dashboardMetrics returns the metric names the Grafana dashboard's queries
// use (a histogram's _bucket, _sum and _count as its family).
func dashboardMetrics(t *testing.T) map[string]bool {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "deploy", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("deploy/grafana-dashboard.json: %v", err)
	}
	name := regexp.MustCompile(`\b(?:recorder|go|process)_[a-z0-9_]+`)
	out := map[string]bool{}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, n := range name.FindAllString(tg.Expr, -1) {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					n = strings.TrimSuffix(n, suffix)
				}
				out[n] = true
			}
		}
	}
	return out
}

// checkIssueMetrics: every metric the issue names is exposed with its type
// and label names and used by the dashboard; every metric the dashboard
// uses is exposed.
func checkIssueMetrics(t *testing.T, families map[string]*family, dashboard map[string]bool) {
	t.Helper()
	for _, want := range issueMetrics {
		f := families[want.name]
		switch {
		case f == nil:
			t.Errorf("%s is not in /metrics", want.name)
			continue
		case f.typ != want.typ:
			t.Errorf("%s is a %s, want a %s", want.name, f.typ, want.typ)
		case len(f.series) == 0:
			t.Errorf("%s has no series", want.name)
		}
		for _, s := range f.series {
			var names []string
			for l := range s {
				if l != "le" {
					names = append(names, l)
				}
			}
			slices.Sort(names)
			if !slices.Equal(names, want.labels) {
				t.Errorf("%s has labels %v, want %v", want.name, names, want.labels)
				break
			}
		}
		if !dashboard[want.name] {
			t.Errorf("%s is not used by deploy/grafana-dashboard.json", want.name)
		}
	}
	for n := range dashboard {
		if families[n] == nil {
			t.Errorf("deploy/grafana-dashboard.json queries %s, which /metrics does not have", n)
		}
	}
}
