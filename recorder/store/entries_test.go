package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var added0 = time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)

func entry(session, key string, sortKey int64, data string) Entry {
	return Entry{SessionID: session, Key: key, SortKey: sortKey, Data: []byte(data), Added: added0}
}

func keysOf(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.SessionID+"/"+e.Key)
	}
	return out
}

// testEntries: appends are ordered by session, sort key and arrival;
// duplicates (stored, or twice in one append) are skipped; an append over a
// limit stores nothing; one that adds nothing is never refused; kinds and
// recordings are apart; all of it survives a reopen.
func testEntries(t *testing.T, open opener) {
	ctx := context.Background()
	s := open(t)
	none := EntryLimits{}
	if n, err := s.AppendEntries(ctx, "i1", "chat", []Entry{
		entry("", "b", 20, `{"t":"b"}`), entry("", "a", 10, `{"t":"a"}`), entry("", "c", 20, `{"t":"c"}`), entry("", "a", 10, `{"t":"a"}`),
	}, none); err != nil || n != 3 {
		t.Fatalf("append: %d, %v; want 3 new", n, err)
	}
	if n, err := s.AppendEntries(ctx, "i1", "chat", []Entry{entry("", "c", 20, `{"t":"c"}`), entry("", "d", 20, `{"t":"d"}`)}, none); err != nil || n != 1 {
		t.Fatalf("append with a duplicate: %d, %v; want 1 new", n, err)
	}
	if _, err := s.AppendEntries(ctx, "i1", "cobrowse", []Entry{entry("s2", "1", 1, `{}`), entry("s1", "2", 2, `{}`), entry("s1", "1", 1, `{}`)}, none); err != nil {
		t.Fatal(err)
	}
	later := entry("", "z", 1, `{"t":"z"}`)
	later.Added = added0.Add(time.Second)
	if _, err := s.AppendEntries(ctx, "i2", "chat", []Entry{later}, none); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t)
	chat, err := s.Entries(ctx, "i1", "chat")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := keysOf(chat), []string{"/a", "/b", "/c", "/d"}; !slices.Equal(got, want) {
		t.Errorf("chat entries %v, want %v (by sort key, then arrival)", got, want)
	}
	if string(chat[1].Data) != `{"t":"b"}` || chat[1].SortKey != 20 || !chat[1].Added.Equal(added0) {
		t.Errorf("entry b read back as %+v", chat[1])
	}
	cb, err := s.Entries(ctx, "i1", "cobrowse")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := keysOf(cb), []string{"s1/1", "s1/2", "s2/1"}; !slices.Equal(got, want) {
		t.Errorf("cobrowse entries %v, want %v", got, want)
	}
	if es, err := s.Entries(ctx, "nope", "chat"); err != nil || len(es) != 0 {
		t.Errorf("entries of an unknown recording: %v, %v", es, err)
	}
	groups, err := s.EntryGroups(ctx, "i1", "i2", "nope")
	if err != nil {
		t.Fatal(err)
	}
	wantGroups := []EntryGroup{
		{InstanceID: "i1", Kind: "chat", Count: 4, Bytes: 4*9 + 4, FirstSortKey: 10, LastAdded: added0},
		{InstanceID: "i1", Kind: "cobrowse", SessionID: "s1", Count: 2, Bytes: 2 * 5, FirstSortKey: 1, LastAdded: added0},
		{InstanceID: "i1", Kind: "cobrowse", SessionID: "s2", Count: 1, Bytes: 5, FirstSortKey: 1, LastAdded: added0},
		{InstanceID: "i2", Kind: "chat", Count: 1, Bytes: 10, FirstSortKey: 1, LastAdded: added0.Add(time.Second)},
	}
	if !slices.Equal(groups, wantGroups) {
		t.Errorf("groups\n%+v, want\n%+v", groups, wantGroups)
	}

	// Limits: bytes (data + session id + key), entries, sessions.
	lim := EntryLimits{Bytes: 100, Entries: 5, Sessions: 2}
	big := entry("", "big", 1, strings.Repeat("x", 100))
	if _, err := s.AppendEntries(ctx, "i3", "chat", []Entry{big}, lim); !errors.Is(err, ErrEntryLimit) {
		t.Errorf("an entry of 103 bytes under a limit of 100: %v, want ErrEntryLimit", err)
	}
	fits := entry("", "fit", 1, strings.Repeat("x", 97)) // 97 + 3 = 100
	if _, err := s.AppendEntries(ctx, "i3", "chat", []Entry{fits}, lim); err != nil {
		t.Errorf("an entry of exactly 100 bytes: %v", err)
	}
	if n, err := s.AppendEntries(ctx, "i3", "chat", []Entry{fits}, lim); err != nil || n != 0 {
		t.Errorf("its duplicate at the limit: %d, %v; want 0 new and no error", n, err)
	}
	var five []Entry
	for i := range 6 {
		five = append(five, entry("s", fmt.Sprint(i), int64(i), ""))
	}
	if _, err := s.AppendEntries(ctx, "i4", "cobrowse", five, lim); !errors.Is(err, ErrEntryLimit) {
		t.Errorf("6 entries under a limit of 5: %v", err)
	}
	if es, _ := s.Entries(ctx, "i4", "cobrowse"); len(es) != 0 {
		t.Errorf("a refused append stored %d entries", len(es))
	}
	if n, err := s.AppendEntries(ctx, "i4", "cobrowse", five[:5], lim); err != nil || n != 5 {
		t.Errorf("5 entries: %d, %v", n, err)
	}
	if _, err := s.AppendEntries(ctx, "i5", "cobrowse", []Entry{entry("a", "1", 1, ""), entry("b", "1", 1, "")}, lim); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendEntries(ctx, "i5", "cobrowse", []Entry{entry("c", "1", 1, "")}, lim); !errors.Is(err, ErrEntryLimit) {
		t.Errorf("a third session under a limit of 2: %v", err)
	}
	if _, err := s.AppendEntries(ctx, "i5", "cobrowse", []Entry{entry("a", "2", 2, "")}, lim); err != nil {
		t.Errorf("another event in a known session: %v", err)
	}
	// More rows than one INSERT carries.
	var many []Entry
	for i := range 2*appendRows + 7 {
		many = append(many, entry("", fmt.Sprint(i), int64(-i), "{}"))
	}
	if n, err := s.AppendEntries(ctx, "i6", "chat", many, none); err != nil || n != len(many) {
		t.Fatalf("%d entries: %d, %v", len(many), n, err)
	}
	if es, _ := s.Entries(ctx, "i6", "chat"); len(es) != len(many) || es[0].Key != fmt.Sprint(len(many)-1) {
		t.Errorf("read %d entries, first %q", len(es), es[0].Key)
	}
}

// testEntriesRaceTheLimits: 20 rounds; in each, 12 appends race for a
// recording whose limits hold 5 of them (by bytes, by entries, by sessions:
// a different limit binds in each third of the rounds). On PostgreSQL they
// go through two Stores on the same database, as two instances would (a
// SQLite file belongs to one instance). Exactly 5 are stored, never more.
func testEntriesRaceTheLimits(t *testing.T, open opener) {
	ctx := context.Background()
	stores := []*Store{open(t)}
	if stores[0].Driver() == DriverPostgres {
		stores = append(stores, open(t))
	}
	for round := range 20 {
		id := fmt.Sprint("race-", round)
		var lim EntryLimits
		switch round % 3 {
		case 0:
			lim = EntryLimits{Bytes: 5 * 12} // each entry: 8 bytes of data, 2 of session id, 2 of key
		case 1:
			lim = EntryLimits{Entries: 5}
		case 2:
			lim = EntryLimits{Sessions: 5}
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, refused := 0, 0
		for i := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e := entry(fmt.Sprintf("%02d", i), fmt.Sprintf("%02d", i), 0, strings.Repeat("d", 8))
				_, err := stores[i%len(stores)].AppendEntries(ctx, id, "cobrowse", []Entry{e}, lim)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, ErrEntryLimit):
					refused++
				default:
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		es, err := stores[0].Entries(ctx, id, "cobrowse")
		if err != nil {
			t.Fatal(err)
		}
		if ok != 5 || refused != 7 || len(es) != 5 {
			t.Errorf("round %d (%+v): %d stored, %d refused, %d entries in the table; want 5, 7, 5", round, lim, ok, refused, len(es))
		}
	}
}
