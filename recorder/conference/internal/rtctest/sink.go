package rtctest

import (
	"errors"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/media/g711"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/recorder/conference"
)

// Track is a track a Sink received, read to its end by its own goroutine as
// a Session would, its PCMU payloads decoded.
type Track struct {
	*conference.Track
	Added time.Time // when AddTrack came

	hold    sync.Mutex // held by Pause: the reader waits before its next read
	mu      sync.Mutex
	first   time.Time // first packet
	ended   time.Time
	err     error
	packets int
	lastSeq uint16
	gaps    int // packets whose sequence number does not follow the last one's
	pcm     []int16
	discard bool // count packets only
	done    chan struct{}
}

// Pause makes the track's reader stop reading (after the read in progress,
// if any) until Resume: a reader that falls behind.
func (r *Track) Pause() { r.hold.Lock() }

// Resume lets a paused reader read on.
func (r *Track) Resume() { r.hold.Unlock() }

// Gaps returns how many packets read so far did not follow the one before
// (a sequence number skipped: lost, or reordered).
func (r *Track) Gaps() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gaps
}

func (r *Track) read() {
	defer close(r.done)
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		r.hold.Lock()
		r.hold.Unlock() //nolint:staticcheck // an empty critical section: waits while paused
		n, err := r.Reader.ReadRTP(buf)
		if err != nil {
			r.mu.Lock()
			r.ended, r.err = time.Now(), err
			r.mu.Unlock()
			return
		}
		if pkt.Unmarshal(buf[:n]) != nil {
			continue
		}
		r.mu.Lock()
		if r.packets == 0 {
			r.first = time.Now()
		} else if pkt.SequenceNumber != r.lastSeq+1 {
			r.gaps++
		}
		r.lastSeq = pkt.SequenceNumber
		r.packets++
		if !r.discard {
			for _, b := range pkt.Payload {
				r.pcm = append(r.pcm, g711.DecodeMuLaw(b))
			}
		}
		r.mu.Unlock()
	}
}

// First returns when the first packet came (zero before).
func (r *Track) First() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first
}

// Packets returns the number of packets read so far.
func (r *Track) Packets() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.packets
}

// LastAudio returns the decoded audio of the last d of the track.
func (r *Track) LastAudio(d time.Duration) []int16 {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := min(int(d.Seconds()*8000), len(r.pcm))
	return append([]int16(nil), r.pcm[len(r.pcm)-n:]...)
}

// CheckTone asserts that the last second of the track carries freq at about
// the level ToneSender sends (-12 dBFS) and none of the other frequencies.
func (r *Track) CheckTone(t testing.TB, freq float64, others ...float64) {
	t.Helper()
	pcm := r.LastAudio(time.Second)
	if len(pcm) < 4000 {
		t.Fatalf("track %s: only %d samples", r.UserID, len(pcm))
	}
	got := mediatest.ToneLevel(pcm, 8000, freq)
	if got < -20 {
		t.Errorf("track %s: tone %v Hz at %.1f dBFS, want about -12", r.UserID, freq, got)
	}
	for _, f := range others {
		if l := mediatest.ToneLevel(pcm, 8000, f); l > got-30 {
			t.Errorf("track %s: foreign tone %v Hz at %.1f dBFS (own %.1f)", r.UserID, f, l, got)
		}
	}
}

// WaitEnded waits for the track's reader to end, fails the test unless it
// ended with io.EOF within the time, and returns when it ended.
func (r *Track) WaitEnded(t testing.TB, within time.Duration) time.Time {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(within):
		t.Fatalf("track %s did not end within %v", r.UserID, within)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !errors.Is(r.err, io.EOF) {
		t.Errorf("track %s ended with %v, want io.EOF", r.UserID, r.err)
	}
	return r.ended
}

// CheckGoneKeepsWhatCameBefore checks that a track whose participant goes
// while the track's reader is a second behind still gives what came before:
// it waits for 25 packets, pauses the reader for a second (what it holds),
// calls gone (the participant goes; it returns once the adapter knows),
// resumes the reader and checks that it reads the second held (the read in
// progress at the pause is one packet; 25 of the 50 at least, as a busy
// sender may send late), with the tone freq, nothing skipped, then io.EOF
// within leaveMax (10 s).
func (r *Track) CheckGoneKeepsWhatCameBefore(t testing.TB, freq float64, gone func()) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); r.Packets() < 25; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d packets in 10 s", r.Packets())
		}
	}
	r.Pause()
	before := r.Packets()
	time.Sleep(time.Second) // the reader falls a second behind: what it holds
	gone()
	resumed := time.Now()
	r.Resume()
	ended := r.WaitEnded(t, 10*time.Second)
	after := r.Packets() - before
	t.Logf("%d packets read after the participant went (%v held), ended %v after the reader resumed",
		after, time.Duration(after)*20*time.Millisecond, ended.Sub(resumed))
	if after < 25 {
		t.Fatalf("%d packets read after the participant went, want the second the reader was behind (50; 25 at least)", after)
	}
	if l := mediatest.ToneLevel(r.LastAudio(time.Duration(after)*20*time.Millisecond), 8000, freq); l < -20 {
		t.Errorf("what was read after the participant went has the tone at %.1f dBFS, want about -12", l)
	}
	if g := r.Gaps(); g != 0 {
		t.Errorf("%d packets skipped", g)
	}
}

// Sink is a conference.Sink for tests: it reads every track like a Session
// would and fails the test on concurrent or repeated calls.
type Sink struct {
	// Discard makes tracks count packets without keeping their audio (for
	// CPU measurements). Set it before the first track.
	Discard bool

	t      testing.TB
	added  chan *Track
	ended  chan error
	calls  sync.Mutex // held during a call: TryLock detects concurrent calls
	mu     sync.Mutex
	tracks []*Track
}

// NewSink returns an empty Sink.
func NewSink(t testing.TB) *Sink {
	return &Sink{t: t, added: make(chan *Track, 64), ended: make(chan error, 1)}
}

// AddTrack implements conference.Sink.
func (s *Sink) AddTrack(ct *conference.Track) {
	if !s.calls.TryLock() {
		s.t.Error("concurrent Sink calls")
		return
	}
	defer s.calls.Unlock()
	r := &Track{Track: ct, Added: time.Now(), discard: s.Discard, done: make(chan struct{})}
	s.mu.Lock()
	s.tracks = append(s.tracks, r)
	s.mu.Unlock()
	go r.read()
	s.added <- r
}

// ConferenceEnded implements conference.Sink.
func (s *Sink) ConferenceEnded(err error) {
	if !s.calls.TryLock() {
		s.t.Error("concurrent Sink calls")
		return
	}
	defer s.calls.Unlock()
	select {
	case s.ended <- err:
	default:
		s.t.Error("ConferenceEnded called twice")
	}
}

// Next waits for the next track, failing the test after within.
func (s *Sink) Next(t testing.TB, within time.Duration) *Track {
	t.Helper()
	select {
	case r := <-s.added:
		return r
	case <-time.After(within):
		t.Fatalf("no track within %v", within)
		return nil
	}
}

// NextByUser waits for the next n tracks and returns them by userId,
// failing the test unless they come within the time from distinct users.
func (s *Sink) NextByUser(t testing.TB, n int, within time.Duration) map[string]*Track {
	t.Helper()
	byUser := make(map[string]*Track, n)
	deadline := time.Now().Add(within)
	for range n {
		r := s.Next(t, time.Until(deadline))
		if byUser[r.UserID] != nil {
			t.Fatalf("two tracks of %s", r.UserID)
		}
		byUser[r.UserID] = r
	}
	return byUser
}

// NoTrack fails the test if a track comes within d.
func (s *Sink) NoTrack(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case r := <-s.added:
		t.Fatalf("unexpected track of %s", r.UserID)
	case <-time.After(d):
	}
}

// Ended waits up to within for ConferenceEnded and returns its error; ok is
// false when it did not come.
func (s *Sink) Ended(within time.Duration) (err error, ok bool) {
	select {
	case err := <-s.ended:
		return err, true
	case <-time.After(within):
		return nil, false
	}
}

// NoLeaks fails the test if, once it and its other cleanups are done,
// goroutines whose stacks mention marker (e.g. "conference/janus.(*") or any
// of Pion's (an open PeerConnection) are still running. Call it first.
func NoLeaks(t testing.TB, marker string) {
	t.Cleanup(func() {
		var stacks string
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			buf := make([]byte, 1<<20)
			stacks = string(buf[:runtime.Stack(buf, true)])
			if !strings.Contains(stacks, marker) && !strings.Contains(stacks, "github.com/pion/") {
				return
			}
		}
		t.Errorf("goroutines left running:\n%s", stacks)
	})
}

var _ conference.Sink = (*Sink)(nil)
