package recorder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/recorder/store"
)

// chatFile reads the chat.json object of rec from its bucket.
func chatFile(t *testing.T, m *Manager, rec *Recording) []ChatEntry {
	t.Helper()
	ctx := context.Background()
	o := rec.Uploads[ChatFile]
	if o == nil || o.Error != nil {
		t.Fatalf("chat.json not uploaded: %+v", o)
	}
	b, err := m.Bucket(ctx, rec.ApplicationID)
	if err != nil {
		t.Fatal(err)
	}
	data, err := b.ReadAll(ctx, o.Key)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		ChatTranscriptList []ChatEntry `json:"chatTranscriptList"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("chat.json: %v: %s", err, data)
	}
	return f.ChatTranscriptList
}

// startRecording starts an audio recording of conversation conv in
// conference f of the test Manager m.
func startRecording(t *testing.T, m *Manager, conv string) *Recording {
	t.Helper()
	rec, err := m.Start(context.Background(), "org", StartRequest{ApplicationID: "app", ConferenceID: "f", ConversationID: conv, Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// toneRecording starts recording conversation c on a new test Manager, with
// u1 sending 300 ms of a 440 Hz tone; the track ends with the test.
func toneRecording(t *testing.T) (*Manager, *store.Store, *Recording) {
	t.Helper()
	m, fa, st := newTestManager(t)
	rec := startRecording(t, m, "c")
	tr, ft := newTrack("f", "u1")
	fa.sink("f").AddTrack(tr)
	ft.send(&synth.Tone{Freq: 440, Amplitude: 8000}, 300*time.Millisecond)
	t.Cleanup(func() { close(ft.ch) })
	return m, st, rec
}

func transcripts(es []ChatEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Transcript)
	}
	return out
}

// TestTranscript_AddsLeaveTheDocumentAlone: chat and cobrowse adds to a
// running recording insert rows: the recording's stored document is the
// same bytes before and after 60 adds, while the views show the chat and
// the cobrowse sessions; at the stop, chat.json holds every entry in time
// order (duplicates once) and the manifest counts them.
func TestTranscript_AddsLeaveTheDocumentAlone(t *testing.T) {
	m, st, rec := toneRecording(t)
	ctx := context.Background()
	before, err := st.Get(ctx, "org", rec.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	var got *Recording
	for i := range 40 { // added newest first: the file orders them by time
		e := ChatEntry{TimeStamp: t0.Add(time.Duration(40-i) * time.Second), Transcript: fmt.Sprint("line ", 40-i), UserID: "u1"}
		if got, err = m.AddChat(ctx, "org", "c", rec.RecorderID, rec.InstanceID, []ChatEntry{e, e}); err != nil {
			t.Fatal(err)
		}
	}
	if got.Entries.ChatEntries != 40 || !got.Entries.ChatFirst.Equal(t0.Add(time.Second)) {
		t.Errorf("AddChat returned entries %+v, want 40 from %s", got.Entries, t0.Add(time.Second))
	}
	for i := range 20 {
		ev := CobrowseEvent{SessionID: fmt.Sprint("s", i%2), SequenceID: int32(i / 2), Payload: "p", Timestamp: int64(i)}
		if _, err := m.AddCobrowse(ctx, "org", "c", rec.RecorderID, rec.InstanceID, ev); err != nil {
			t.Fatal(err)
		}
	}
	after, err := st.Get(ctx, "org", rec.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before.Data, after.Data) {
		t.Errorf("60 adds rewrote the stored recording:\nbefore %s\nafter  %s", before.Data, after.Data)
	}
	view, err := m.Get(ctx, "org", "c", rec.RecorderID, rec.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	if want := []CobrowseSession{{"s0", 10}, {"s1", 10}}; view.Entries.ChatEntries != 40 || !slices.Equal(view.Entries.Cobrowse, want) {
		t.Errorf("Get: entries %+v, want 40 chat and %v", view.Entries, want)
	}
	if !view.Updated.After(before.Started) || view.Updated.Before(view.Entries.LastAdded) {
		t.Errorf("Updated %s is before the latest add %s", view.Updated, view.Entries.LastAdded)
	}
	stopped, err := m.Stop(ctx, "org", "c", rec.RecorderID, rec.InstanceID)
	if err != nil || stopped.State != StateStopped {
		t.Fatalf("Stop: %+v, %v", stopped, err)
	}
	final, err := m.Get(ctx, "org", "c", rec.RecorderID, rec.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 40 {
		want = append(want, fmt.Sprint("line ", i+1))
	}
	if got := transcripts(chatFile(t, m, final)); !slices.Equal(got, want) {
		t.Errorf("chat.json holds %v, want %v", got, want)
	}
	for _, s := range []string{"s0", "s1"} {
		if o := final.Uploads[CobrowseFile(s)]; o == nil || o.Error != nil {
			t.Errorf("cobrowse file of %s: %+v", s, o)
		}
	}
}

// TestTranscript_AddsRacingTheStop: 120 adds sent while the recording
// stops. Those before the stop are in the files it composes, those after
// are uploaded late; in the end chat.json in storage holds every add that
// was accepted, none twice, and nothing else.
func TestTranscript_AddsRacingTheStop(t *testing.T) {
	m, _, rec := toneRecording(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var accepted []string
	for i := range 120 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 40 {
				if _, err := m.Stop(ctx, "org", "c", rec.RecorderID, rec.InstanceID); err != nil {
					t.Error(err)
				}
			}
			e := ChatEntry{TimeStamp: t0.Add(time.Duration(i) * time.Millisecond), Transcript: fmt.Sprintf("%03d", i), UserID: "u1"}
			if _, err := m.AddChat(ctx, "org", "c", rec.RecorderID, rec.InstanceID, []ChatEntry{e}); err != nil {
				t.Errorf("add %d: %v", i, err)
				return
			}
			mu.Lock()
			accepted = append(accepted, e.Transcript)
			mu.Unlock()
		}()
	}
	wg.Wait()
	final, err := m.Get(ctx, "org", "c", rec.RecorderID, rec.InstanceID)
	if err != nil || !final.State.Final() {
		t.Fatalf("after the stop: %+v, %v", final, err)
	}
	slices.Sort(accepted)
	if got := transcripts(chatFile(t, m, final)); !slices.Equal(got, accepted) {
		t.Errorf("chat.json holds %d entries, %d were accepted:\n%v\n%v", len(got), len(accepted), got, accepted)
	}
}

// TestTranscript_ConcurrentAddsStopAtTheLimits: 5 rounds of concurrent
// adds through the Manager against the byte limits of chat and cobrowse
// (TestSecurity_TranscriptLimitsUnderConcurrentAdds races the sessions
// through the API, the store's conformance suite the entry counts); the
// limit is reached exactly, never passed, and the refused adds are
// too_large.
func TestTranscript_ConcurrentAddsStopAtTheLimits(t *testing.T) {
	m, _, _ := newTestManager(t)
	ctx := context.Background()
	// 7 events of 140000 bytes and the small ones fit in 1 MiB; 8 do not.
	big := strings.Repeat("x", 140_000)
	for round := range 5 { // 20 rounds take 100 s with -race at load 12: big payloads
		a, b := startRecording(t, m, fmt.Sprint("a", round)), startRecording(t, m, fmt.Sprint("b", round))
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := map[string]int{}
		add := func(what string, f func() error) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := f()
				mu.Lock()
				defer mu.Unlock()
				var e *Error
				switch {
				case err == nil:
					ok[what]++
				case errors.As(err, &e) && e.Kind == KindTooLarge && e.Reason == "too_large":
				default:
					t.Errorf("%s: %v", what, err)
				}
			}()
		}
		for i := range 10 { // 6 entries of 40000 bytes fit in 256 KiB, 7 do not
			add("chat", func() error {
				_, err := m.AddChat(ctx, "org", a.ConversationID, a.RecorderID, a.InstanceID,
					[]ChatEntry{{TimeStamp: time.Unix(int64(i), 0), UserID: "u", Transcript: strings.Repeat("c", 40_000)}})
				return err
			})
		}
		for i := range 12 {
			add("bytes", func() error {
				_, err := m.AddCobrowse(ctx, "org", b.ConversationID, b.RecorderID, b.InstanceID,
					CobrowseEvent{SessionID: "big", SequenceID: int32(i), Payload: big})
				return err
			})
		}
		for i := range 40 {
			add("small", func() error {
				_, err := m.AddCobrowse(ctx, "org", b.ConversationID, b.RecorderID, b.InstanceID,
					CobrowseEvent{SessionID: "small", SequenceID: int32(i), Payload: "p"})
				return err
			})
		}
		wg.Wait()
		chat, _, err := m.Transcript(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if len(chat) != 6 || ok["chat"] != 6 {
			t.Errorf("round %d: %d chat entries stored, %d accepted; want 6", round, len(chat), ok["chat"])
		}
		_, events, err := m.Transcript(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		stored := 0
		for _, e := range events {
			stored += len(e.Payload)
		}
		if ok["bytes"] != 7 || ok["small"] != 40 || len(events) != 47 || stored > MaxCobrowseBytes {
			t.Errorf("round %d: %v accepted, %d events of %d payload bytes stored; want 7 big and 40 small", round, ok, len(events), stored)
		}
		for _, r := range []*Recording{a, b} {
			if _, err := m.Stop(ctx, "org", r.ConversationID, r.RecorderID, r.InstanceID); err != nil {
				t.Fatal(err)
			}
		}
		waitUploads(t, m, a, ChatFile)
		waitUploads(t, m, b, CobrowseFile("big"), CobrowseFile("small"))
	}
}

// waitUploads waits until the files rels of the stopped recording rec are
// uploaded (a recording without media uploads them after it is final).
func waitUploads(t *testing.T, m *Manager, rec *Recording, rels ...string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		r, err := m.Get(context.Background(), "org", rec.ConversationID, rec.RecorderID, rec.InstanceID)
		if err != nil {
			t.Fatal(err)
		}
		done := true
		for _, rel := range rels {
			if o := r.Uploads[rel]; o == nil || o.Error != nil || o.Uploaded.IsZero() {
				done = false
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: files %v not uploaded: %+v", rec.InstanceID, rels, r.Uploads)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTranscript_LegacyDocument: a recording stored by a version that kept
// chat and cobrowse in its document shows them; the first add moves them
// into the table (the document no longer holds them) and the files hold
// the old entries and the new, none twice.
func TestTranscript_LegacyDocument(t *testing.T) {
	m, _, st := newTestManager(t)
	ctx := context.Background()
	rec := startRecording(t, m, "c")
	if _, err := m.Stop(ctx, "org", "c", rec.RecorderID, rec.InstanceID); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	old := []ChatEntry{{TimeStamp: t0, Transcript: "old one", UserID: "u1"}, {TimeStamp: t0.Add(2 * time.Second), Transcript: "old two", UserID: "u1"}}
	// The document as the version before wrote it.
	sr, err := st.Get(ctx, "org", rec.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	json.Unmarshal(sr.Data, &doc)
	doc["chat"] = old
	doc["cobrowse"] = []CobrowseEvent{{SessionID: "cb", SequenceID: 1, Payload: "p1"}}
	sr.Data, _ = json.Marshal(doc)
	if err := st.Put(ctx, sr); err != nil {
		t.Fatal(err)
	}
	view, err := m.Get(ctx, "org", "c", rec.RecorderID, rec.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	if view.Entries.ChatEntries != 2 || len(view.Entries.Cobrowse) != 1 {
		t.Errorf("legacy entries not shown: %+v", view.Entries)
	}
	got, err := m.AddChat(ctx, "org", "c", rec.RecorderID, rec.InstanceID, []ChatEntry{old[1], {TimeStamp: t0.Add(time.Second), Transcript: "new", UserID: "u2"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.AddCobrowse(ctx, "org", "c", rec.RecorderID, rec.InstanceID, CobrowseEvent{SessionID: "cb", SequenceID: 2, Payload: "p2"}); err != nil {
		t.Fatal(err)
	}
	if sr, err = st.Get(ctx, "org", rec.InstanceID); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sr.Data, []byte(`"chat"`)) || bytes.Contains(sr.Data, []byte(`"cobrowse"`)) {
		t.Errorf("the document still holds entries after the first add: %s", sr.Data)
	}
	if want := []string{"old one", "new", "old two"}; !slices.Equal(transcripts(chatFile(t, m, got)), want) {
		t.Errorf("chat.json holds %v, want %v", transcripts(chatFile(t, m, got)), want)
	}
	final, _ := m.Get(ctx, "org", "c", rec.RecorderID, rec.InstanceID)
	if want := []CobrowseSession{{"cb", 2}}; final.Entries.ChatEntries != 3 || !slices.Equal(final.Entries.Cobrowse, want) {
		t.Errorf("entries after the move %+v", final.Entries)
	}
}

// FuzzEntryRows: any chat entry or cobrowse event becomes a row whose data
// reads back as the entry (the chat time in UTC), whose key is the same for
// an equal entry and whose size counts every byte the row stores; chat rows
// sort in time order.
func FuzzEntryRows(f *testing.F) {
	f.Add(int64(0), int64(0), "hi", "Alice", "u1", "s1", int32(3), "payload")
	f.Add(int64(-1<<62), int64(999_999_999), "<&>\u2028", "", strings.Repeat("u", 300), "s", int32(-7), "\x00\xff")
	f.Add(int64(253402300799), int64(1), "", "", "u", "s", int32(1<<31-1), "")
	f.Fuzz(func(t *testing.T, sec, nsec int64, text, name, user, session string, seq int32, payload string) {
		ts := time.Unix(sec, nsec).In(time.FixedZone("x", 3600))
		e := ChatEntry{TimeStamp: ts, Transcript: text, UserDisplayName: name, UserID: user}
		row, err := chatRow(e, time.Time{})
		if err != nil {
			if ts.Year() >= 0 && ts.Year() <= 9999 {
				t.Fatalf("chatRow(%+v): %v", e, err)
			}
			return
		}
		var back ChatEntry
		if err := json.Unmarshal(row.Data, &back); err != nil {
			t.Fatal(err)
		}
		if !back.TimeStamp.Equal(ts) || back.TimeStamp.Location() != time.UTC {
			t.Errorf("time %s read back as %s", ts, back.TimeStamp)
		}
		if row.Size() != int64(len(row.Data)+len(row.Key)) || row.Size() < int64(len(text)+len(name)+len(user)) {
			t.Errorf("size %d does not count the row (%d data, %d key)", row.Size(), len(row.Data), len(row.Key))
		}
		e2 := e
		e2.TimeStamp = ts.UTC()
		if row2, _ := chatRow(e2, time.Now()); row2.Key != row.Key {
			t.Errorf("the same entry in another zone has another key")
		}
		e2.Transcript += "!"
		if row3, _ := chatRow(e2, time.Time{}); row3.Key == row.Key {
			t.Errorf("two entries share the key %s", row.Key)
		}
		if later, _ := chatRow(ChatEntry{TimeStamp: ts.Add(time.Nanosecond), UserID: user}, time.Time{}); later.SortKey < row.SortKey {
			t.Errorf("a later entry sorts first: %d < %d", later.SortKey, row.SortKey)
		}
		ev := CobrowseEvent{Payload: payload, SequenceID: seq, SessionID: session, Timestamp: sec}
		crow, err := cobrowseRow(ev, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		var cback CobrowseEvent
		if err := json.Unmarshal(crow.Data, &cback); err != nil {
			t.Fatal(err)
		}
		if cback.SequenceID != seq || utf8.ValidString(session) && cback.SessionID != session || cback.Timestamp != sec || crow.SortKey != int64(seq) {
			t.Errorf("event %+v read back as %+v (sort key %d)", ev, cback, crow.SortKey)
		}
		if crow.Size() < int64(len(payload)+len(session)) {
			t.Errorf("cobrowse size %d below its fields", crow.Size())
		}
	})
}
