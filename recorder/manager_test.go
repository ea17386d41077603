package recorder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/recorder/store"
	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/memstore"
)

// fakeAdapter is a dial-out adapter whose conferences the test drives.
type fakeAdapter struct {
	mu      sync.Mutex
	sinks   map[string]conference.Sink
	joinErr error
	left    atomic.Int32
}

func (a *fakeAdapter) Kind() string { return "fake" }

func (a *fakeAdapter) Join(ctx context.Context, org, conf string, sink conference.Sink) (func(), error) {
	if a.joinErr != nil {
		return nil, a.joinErr
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sinks[conf] = sink
	return func() { a.left.Add(1) }, nil
}

func (a *fakeAdapter) sink(conf string) conference.Sink {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sinks[conf]
}

// fakeTrack is a PCMU track fed by the test: packets go through a channel,
// closing it ends the track.
type fakeTrack struct {
	ch  chan []byte
	seq uint16
	ts  uint32
}

func (f *fakeTrack) ReadRTP(buf []byte) (int, error) {
	b, ok := <-f.ch
	if !ok {
		return 0, io.EOF
	}
	return copy(buf, b), nil
}

// send sends d of a tone in real time.
func (f *fakeTrack) send(tone *synth.Tone, d time.Duration) {
	start := time.Now()
	for i := 0; time.Duration(i)*20*time.Millisecond < d; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i) * 20 * time.Millisecond)))
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: f.seq, Timestamp: f.ts, SSRC: 1234},
			Payload: tone.NextPCMU(nil)}
		f.seq++
		f.ts += 160
		b, _ := p.Marshal()
		f.ch <- b
	}
}

func newTrack(conf, user string) (*conference.Track, *fakeTrack) {
	ft := &fakeTrack{ch: make(chan []byte, 64)}
	return &conference.Track{ConferenceID: conf, UserID: user, StreamID: "s-" + user, TrackID: "audio0",
		StreamType: conference.StreamMIC, Kind: conference.KindAudio, Started: time.Now(),
		Codec: conference.Codec{MimeType: "audio/PCMU", ClockRate: 8000}, Reader: ft}, ft
}

func newTestManager(t *testing.T, opts ...func(*Options)) (*Manager, *fakeAdapter, *store.Store) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Applications = map[string]*config.Application{"app": {Conference: config.ConferenceConfig{Kind: "fake"}}}
	fa := &fakeAdapter{sinks: map[string]conference.Sink{}}
	bucket := storage.NewBucket(memstore.New(memstore.Options{Name: "test"}))
	o := Options{Config: cfg, Store: st, RecorderID: "rec1",
		Adapters:   map[string]conference.Adapter{"fake": fa},
		OpenBucket: func(context.Context, string, *config.StorageProfile) (*storage.Bucket, error) { return bucket, nil }}
	for _, f := range opts {
		f(&o)
	}
	m, err := NewManager(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown(context.Background()) })
	return m, fa, st
}

func storedState(t *testing.T, st *store.Store, id string) string {
	t.Helper()
	r, err := st.Get(context.Background(), "org", id)
	if err != nil {
		t.Fatal(err)
	}
	return r.State
}

func TestManager_RecordsAndStops(t *testing.T) {
	m, fa, st := newTestManager(t)
	ctx := context.Background()
	rec, err := m.Start(ctx, "org", StartRequest{ApplicationID: "app", ConferenceID: "f", ConversationID: "c", Audio: true})
	if err != nil || rec.State != StateActive {
		t.Fatalf("Start = %+v, %v", rec, err)
	}
	if s := storedState(t, st, rec.InstanceID); s != "ACTIVE" {
		t.Errorf("stored state %s when Start reported ACTIVE", s)
	}
	tr, ft := newTrack("f", "u1")
	fa.sink("f").AddTrack(tr)
	ft.send(&synth.Tone{Freq: 440, Amplitude: 8000}, 500*time.Millisecond)
	got, err := m.Stop(ctx, "org", "c", "rec1", rec.InstanceID)
	if err != nil || got.State != StateStopped {
		t.Fatalf("Stop = %+v, %v", got, err)
	}
	if s := storedState(t, st, rec.InstanceID); s != "STOPPED" {
		t.Errorf("stored state %s after Stop", s)
	}
	if len(got.Streams) != 1 || len(got.Streams[0].Tracks) != 1 {
		t.Fatalf("streams %+v", got.Streams)
	}
	s, trk := got.Streams[0], got.Streams[0].Tracks[0]
	if s.State != StreamStopped || s.UserID != "u1" || trk.Stopped.IsZero() || trk.Packets < 20 || trk.Object == nil || trk.Object.Size == 0 {
		t.Errorf("stream %+v track %+v", s, trk)
	}
	if got.Composition == nil || got.Composition.State != "COMPLETED" || got.Composition.Manifest == nil {
		t.Errorf("composition %+v", got.Composition)
	}
	if fa.left.Load() != 1 {
		t.Errorf("left the conference %d times, want 1", fa.left.Load())
	}
	close(ft.ch)
	// Stopping again returns the same final state.
	again, err := m.Stop(ctx, "org", "c", "rec1", rec.InstanceID)
	if err != nil || again.State != StateStopped {
		t.Errorf("second Stop = %+v, %v", again, err)
	}
	// Another tenant sees nothing.
	if _, err := m.Get(ctx, "org2", "c", "rec1", rec.InstanceID); KindOf(err) != KindNotFound {
		t.Errorf("other tenant's Get: %v", err)
	}
}

func TestManager_EndStates(t *testing.T) {
	tests := []struct {
		name      string
		withMedia bool
		end       func(m *Manager, fa *fakeAdapter, id string)
		want      State
		errCode   ErrorCode
	}{
		{"stop before media", false, func(m *Manager, _ *fakeAdapter, id string) {
			m.Stop(context.Background(), "org", "c", "rec1", id)
		}, StateAborted, ""},
		{"conference vanished", true, func(_ *Manager, fa *fakeAdapter, _ string) {
			fa.sink("f").ConferenceEnded(errors.New("room destroyed at http://sfu.internal:8088/janus"))
		}, StateAborted, "conference_ended"},
		{"platform lost the session", true, func(_ *Manager, fa *fakeAdapter, _ string) {
			fa.sink("f").ConferenceEnded(fmt.Errorf("sfu: %w: no reply from http://sfu.internal:8088/janus", conference.ErrSessionLost))
		}, StateAborted, "conference_ended"},
		{"conference closed normally", true, func(_ *Manager, fa *fakeAdapter, _ string) {
			fa.sink("f").ConferenceEnded(nil)
		}, StateStopped, ""},
		{"max duration", true, func(*Manager, *fakeAdapter, string) {}, StateStopped, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, fa, _ := newTestManager(t)
			rec, err := m.Start(context.Background(), "org", StartRequest{ApplicationID: "app", ConferenceID: "f",
				ConversationID: "c", Audio: true, MaxDuration: 1500 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if tt.withMedia {
				tr, ft := newTrack("f", "u")
				fa.sink("f").AddTrack(tr)
				ft.send(&synth.Tone{Freq: 300, Amplitude: 4000}, 300*time.Millisecond)
				defer close(ft.ch)
			}
			tt.end(m, fa, rec.InstanceID)
			deadline := time.Now().Add(5 * time.Second)
			var got *Recording
			for time.Now().Before(deadline) {
				got, err = m.Get(context.Background(), "org", "c", "rec1", rec.InstanceID)
				if err != nil {
					t.Fatal(err)
				}
				if got.State.Final() {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if got.State != tt.want {
				t.Fatalf("state %s, want %s", got.State, tt.want)
			}
			if tt.errCode != "" && (got.Error == nil || got.Error.Code != tt.errCode) {
				t.Errorf("error %+v, want code %s", got.Error, tt.errCode)
			}
			// The adapter's text (its server, its replies) stays in the log:
			// the message is a fixed one per reason.
			if got.Error != nil && tt.errCode == CodeConferenceEnded {
				lost := strings.Contains(tt.name, "session")
				if strings.Contains(got.Error.Message, "sfu") || strings.Contains(got.Error.Message, "destroyed") ||
					strings.Contains(got.Error.Message, "dropped the recorder's session") != lost {
					t.Errorf("message %q: want the fixed message of the reason (session lost: %v)", got.Error.Message, lost)
				}
			}
		})
	}
}

func TestManager_StartFailures(t *testing.T) {
	m, fa, _ := newTestManager(t)
	ctx := context.Background()
	fa.joinErr = conference.ErrNoConference
	rec, err := m.Start(ctx, "org", StartRequest{ApplicationID: "app", ConferenceID: "f", ConversationID: "c", Audio: true})
	if err != nil || rec.State != StateFailed || rec.Error == nil || rec.Error.Code != "start_failed" {
		t.Errorf("Start with a failing join = %+v, %v; want FAILED with an error", rec, err)
	}
	fa.joinErr = nil
	if _, err := m.Start(ctx, "org", StartRequest{ApplicationID: "app", ConferenceID: "f", ConversationID: "c", Audio: true}); err != nil {
		t.Errorf("Start after a FAILED one: %v", err)
	}
	if _, err := m.Start(ctx, "org", StartRequest{ApplicationID: "app", ConferenceID: "f", ConversationID: "c", Audio: true}); KindOf(err) != KindConflict {
		t.Errorf("second Start: %v, want a conflict", err)
	}
	if _, err := m.Start(ctx, "org", StartRequest{ApplicationID: "nope", ConferenceID: "f", ConversationID: "c2", Audio: true}); KindOf(err) != KindUnavailable {
		t.Errorf("Start with an application whose adapter is missing: %v, want unavailable", err)
	}
}

// nopSink counts packets.
type nopSink struct{ n atomic.Int64 }

func (s *nopSink) WriteRTP(*rtp.Packet) error { s.n.Add(1); return nil }
func (s *nopSink) Close() error               { return nil }

// testTrackSub returns a trackSub writing to sink, in a session of a manager
// with the wall clock (write stamps the first packet).
func testTrackSub(sink packetSink) *trackSub {
	return &trackSub{s: &Session{m: &Manager{now: time.Now}}, sink: sink, quiet: make(chan struct{})}
}

func TestTrackSub_FanOutZeroAllocs(t *testing.T) {
	rt := &roomTrack{}
	subs := []*trackSub{}
	for range 3 {
		subs = append(subs, testTrackSub(&nopSink{}))
	}
	rt.subs.Store(&subs)
	var pkt rtp.Packet
	raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 1}, Payload: make([]byte, 160)}).Marshal()
	allocs := testing.AllocsPerRun(1000, func() {
		if pkt.Unmarshal(raw) != nil {
			t.Fatal("unmarshal")
		}
		for _, ts := range *rt.subs.Load() {
			ts.write(&pkt)
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per packet, want 0", allocs)
	}
}

func TestTrackSub_CloseWaitsForWrite(t *testing.T) {
	sink := &slowSink{}
	ts := testTrackSub(sink)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var p rtp.Packet
		for {
			select {
			case <-stop:
				return
			default:
				ts.write(&p)
			}
		}
	}()
	for sink.writes.Load() < 10 { // the writer is writing
		time.Sleep(time.Millisecond)
	}
	if !ts.close() {
		t.Fatal("close reported already closed")
	}
	sink.closed.Store(true)           // any write from now on is a bug
	time.Sleep(10 * time.Millisecond) // a window for a late write to show (its absence is what is checked)
	close(stop)
	<-done
	if n := sink.late.Load(); n != 0 {
		t.Errorf("%d writes after close returned", n)
	}
	if ts.close() {
		t.Error("second close reported closing")
	}
}

type slowSink struct {
	closed atomic.Bool
	late   atomic.Int64
	writes atomic.Int64
}

func (s *slowSink) WriteRTP(*rtp.Packet) error {
	s.writes.Add(1)
	if s.closed.Load() {
		s.late.Add(1)
	}
	time.Sleep(50 * time.Microsecond)
	return nil
}
func (s *slowSink) Close() error { return nil }

func BenchmarkTrackSub_FanOut(b *testing.B) {
	rt := &roomTrack{}
	subs := []*trackSub{{sink: &nopSink{}, quiet: make(chan struct{})}}
	rt.subs.Store(&subs)
	raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 1}, Payload: make([]byte, 160)}).Marshal()
	var pkt rtp.Packet
	b.ReportAllocs()
	for b.Loop() {
		pkt.Unmarshal(raw)
		for _, ts := range *rt.subs.Load() {
			ts.write(&pkt)
		}
	}
}
