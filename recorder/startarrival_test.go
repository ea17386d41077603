package recorder

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rtcrec/recorder/media/g711"
	"github.com/rtcrec/recorder/media/wavwriter"
	"github.com/rtcrec/recorder/storage"
)

// TestManager_FileBeginsAtTheRecordingsStart: a track is live (recorded by
// another recording of its conference) when a recording starts, and its
// reader, starved of CPU, reads nothing from 300 ms (or 2.5 s) before the
// start until 400 ms after it: the packets that reached the machine before
// the start are read after the new recording subscribed. They were sent
// before the recording: its mix places them before its time zero and
// leaves them out, and its track file leaves them out too. The file begins
// with the first packet that reached the machine at or after the start,
// and so does the mix (each packet carries its own µ-law byte: the file's
// first packet and the mix's first audio name it); and the mix holds each
// packet where it was sent (within two packets), not moved by
// the backlog read at the start. Before, the file kept them and began with
// audio sent before the recording (session 12, A-1 it3: alice's file 0.66 s
// longer than what she sent after the start, placed at −0.267 s of the
// mix); and a backlog of more than a second, every arrival before the
// start being taken for the start itself, ran the mix's timeline of the
// track more than a second ahead of its arrivals, which re-anchored every
// packet after it at the end of what was written, for good (TestIssue10Table
// busy core, session 15: reanchors=432, origin −1 s, beeps 436–496 ms off).
func TestManager_FileBeginsAtTheRecordingsStart(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	for _, starved := range []time.Duration{300 * time.Millisecond, 2500 * time.Millisecond} {
		t.Run(fmt.Sprintf("starved %v before the start", starved), func(t *testing.T) {
			m, fa, bucket, _, tr, st := startStarved(t) // recording "c", the track's first
			ctx := context.Background()
			fa.sink("f").AddTrack(tr)
			st.sending(t, &marked{})

			waitRead(t, m, 50) // the track is live and read in step: the first recording read a second of it
			held := time.Now()
			st.hold()
			time.Sleep(starved) // the scenario: the reader starved, packets wait for it (how many, is measured)
			rec, err := m.Start(ctx, "org", StartRequest{ApplicationID: "app", ConferenceID: "f", ConversationID: "c2", Audio: true})
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(400 * time.Millisecond) // the scenario: still starved after the start
			st.release()
			// The recording goes on until the sender sent its packet of
			// 2.9 s into it (the mix is checked up to 2.5 s), however late
			// a sender short of CPU sends.
			st.waitArrived(t, uint16(st.scheduledAt(rec.Started.Add(2900*time.Millisecond))))
			got, err := m.Stop(ctx, "org", "c2", "rec1", rec.InstanceID)
			if err != nil {
				t.Fatal(err)
			}
			file := readWavData(ctx, t, bucket, uploadedTrack(t, got).Object.Key)
			if got.Composition == nil || len(got.Composition.Outputs) == 0 || got.Composition.Outputs[0].Object == nil {
				t.Fatalf("composition %+v: want an uploaded mix", got.Composition)
			}
			mix := readWavData(ctx, t, bucket, got.Composition.Outputs[0].Object.Key)

			first := st.firstReceivedFrom(got.Started) // the first packet sent in the recording
			if len(file) < 160 {
				t.Fatalf("the track's file holds %d bytes", len(file))
			}
			fileFirst := slices.Index(markBytes[:], file[0])
			// The mix's first audio: the first sample that is not silence.
			pcm := mixSamples(mix)
			at := slices.IndexFunc(pcm, func(v int16) bool { return v != 0 })
			t.Logf("the reader held %v before the start (%d packets reached the machine meanwhile); the first packet received at or after the start: %d; the file's first: %d; the mix's first audio at %d ms: packet %d (mod %d)",
				got.Started.Sub(held).Round(time.Millisecond), st.receivedBefore(got.Started)-st.receivedBefore(held),
				first%len(markBytes), fileFirst, at/8, markAt(pcm, at), len(markBytes))
			if want := markBytes[first%len(markBytes)]; file[0] != want {
				t.Errorf("the track's file begins with packet byte %#x, want %#x: the first packet that reached the machine at or after the recording's start", file[0], want)
			}
			// The mix places a packet by its capture (the sender's schedule
			// from its least-late arrival), and leaves out what was captured
			// before the start: its first audio is the first packet captured
			// at or after it, or the end of the one before, which the start
			// falls in (the test's schedule and the pipeline's mapping differ
			// by a few ms). That is the file's first unless the sender was
			// late around the start (a sender short of CPU: what it captured
			// before the start reached the machine after it, and the file,
			// by arrival, keeps it).
			captured, before := st.firstScheduledFrom(got.Started)
			fileTrack := uploadedTrack(t, got)
			t.Logf("the first packet captured at or after the start: %d (the one before it %v before the start); the file placed at %v, its first packet captured %v from the start",
				captured%len(markBytes), before.Round(100*time.Microsecond), fileTrack.Offset, st.scheduledTime(first).Sub(got.Started).Round(time.Millisecond))
			mixFirst := markAt(pcm, at)
			if mixFirst != captured%len(markBytes) && mixFirst != (captured-1)%len(markBytes) {
				t.Errorf("the mix's first audio is packet %d (mod %d), want %d (or the end of %d): the first packet captured at or after the recording's start", mixFirst, len(markBytes), captured%len(markBytes), (captured-1)%len(markBytes))
			}
			// Later, the mix holds the packet sent then (placed by its
			// timestamp from its least-late arrival: its audio from there).
			for _, sec := range []time.Duration{time.Second, 2 * time.Second, 2500 * time.Millisecond} {
				i := int(sec / time.Millisecond * 8)
				want := st.scheduledAt(got.Started.Add(sec)) % len(markBytes)
				d := (markAt(pcm, i) - want + len(markBytes)) % len(markBytes)
				if d > 2 && d < len(markBytes)-2 {
					t.Errorf("the mix at %v holds packet %d (mod %d), want %d (within two): the one sent then", sec, markAt(pcm, i), len(markBytes), want)
				}
			}
		})
	}
}

// markAt returns which packet (its index mod len(markBytes)) the mix's
// sample i holds: -1 for none.
func markAt(pcm []int16, i int) int {
	if i < 0 || i >= len(pcm) {
		return -1
	}
	return slices.IndexFunc(markBytes[:], func(b byte) bool { return g711.DecodeMuLaw(b) == pcm[i] })
}

// markBytes are the µ-law bytes that mark packets (marked): packet i
// is all markBytes[i%len]; each decodes to a value of its own, none to silence.
var markBytes = func() (b [50]byte) {
	for i := range b {
		b[i] = byte(0x10 + i) // loud µ-law codes, far from silence (0xFF, 0x7F)
	}
	return b
}()

// marked is a source of PCMU frames that mark packets (send): frame i is
// all markBytes[i%len(markBytes)].
type marked struct{ i int }

func (m *marked) NextPCMU(b []byte) []byte {
	for range 160 {
		b = append(b, markBytes[m.i%len(markBytes)])
	}
	m.i++
	return b
}

// scheduledAt returns the sequence number of the packet the sender's
// schedule had at t (packet i at 20 ms × i from its least-late packet's
// arrival): where the mix places it. A sender short of CPU sends late and
// then catches up: its arrivals are no measure.
func (s *starvedTrack) scheduledAt(t time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var base time.Time
	for seq, at := range s.arrived {
		if b := at.Add(-time.Duration(seq) * 20 * time.Millisecond); base.IsZero() || b.Before(base) {
			base = b
		}
	}
	return int(t.Sub(base) / (20 * time.Millisecond))
}

// firstScheduledFrom returns the sequence number of the first packet that
// the sender's schedule (scheduledAt) has at or after t, and how long
// before t the schedule has the packet before it.
func (s *starvedTrack) firstScheduledFrom(t time.Time) (int, time.Duration) {
	k := s.scheduledAt(t) // the packet of the 20 ms that hold t
	if at := s.scheduledTime(k); at.Before(t) {
		return k + 1, t.Sub(at)
	}
	return k, t.Sub(s.scheduledTime(k - 1))
}

// scheduledTime returns when the sender's schedule (scheduledAt) has
// packet seq.
func (s *starvedTrack) scheduledTime(seq int) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var base time.Time
	for q, at := range s.arrived {
		if b := at.Add(-time.Duration(q) * 20 * time.Millisecond); base.IsZero() || b.Before(base) {
			base = b
		}
	}
	return base.Add(time.Duration(seq) * 20 * time.Millisecond)
}

// firstReceivedFrom returns the sequence number of the first packet that
// reached the machine at or after t.
func (s *starvedTrack) firstReceivedFrom(t time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := -1
	for seq, at := range s.arrived {
		if !at.Before(t) && (first < 0 || int(seq) < first) {
			first = int(seq)
		}
	}
	return first
}

// readWavData returns the data chunk of the WAV file at key in bucket.
func readWavData(ctx context.Context, t *testing.T, bucket *storage.Bucket, key string) []byte {
	t.Helper()
	wav, err := bucket.ReadAll(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	h, err := wavwriter.ParseHeader(wav)
	if err != nil {
		t.Fatal(err)
	}
	return wav[h.DataOffset:]
}

// mixSamples returns 16-bit PCM data as samples.
func mixSamples(data []byte) []int16 {
	out := make([]int16, len(data)/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
	}
	return out
}
