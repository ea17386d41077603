package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestStore_ListPages(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Unix(1700000000, 0)
	for i := range 7 {
		org := "org1"
		if i == 3 {
			org = "org2"
		}
		// Two recordings share a start time: the id breaks the tie.
		started := t0.Add(time.Duration(i/2) * time.Second)
		if err := s.Put(ctx, &Record{InstanceID: fmt.Sprintf("i%d", i), OrganizationID: org, ApplicationID: "a",
			ConversationID: "c", ConferenceID: "f", RecorderID: "r", State: "ACTIVE", Started: started, Data: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	var before int64
	var beforeID string
	for page := 0; page < 10; page++ {
		recs, err := s.List(ctx, "org1", before, beforeID, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			got = append(got, r.InstanceID)
		}
		last := recs[len(recs)-1]
		before, beforeID = last.Started.UnixNano(), last.InstanceID
	}
	want := "[i6 i5 i4 i2 i1 i0]"
	if fmt.Sprint(got) != want {
		t.Errorf("pages gave %v, want %s (org2's i3 excluded)", got, want)
	}
}

func TestStore_Blackouts(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Unix(1700000000, 0).UTC()
	b := &Blackout{OrganizationID: "o", UserID: "u", Start: t0, Stop: t0.Add(time.Hour), Recordings: []byte(`[]`)}
	if err := s.PutBlackout(ctx, b); err != nil {
		t.Fatal(err)
	}
	b.Stop, b.Recordings = t0.Add(time.Minute), []byte(`["i1"]`)
	if err := s.PutBlackout(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, err := s.Blackouts(ctx)
	if err != nil || len(got) != 1 || !got[0].Stop.Equal(t0.Add(time.Minute)) || string(got[0].Recordings) != `["i1"]` {
		t.Fatalf("blackouts %+v, %v", got, err)
	}
	if err := s.DeleteBlackout(ctx, "o", "u"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Blackouts(ctx); len(got) != 0 {
		t.Errorf("after delete: %+v", got)
	}
}
