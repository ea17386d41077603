package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestStore_PutGetAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "recorder.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	recs := []*Record{
		{InstanceID: "i1", OrganizationID: "org1", ApplicationID: "app", ConversationID: "c1", ConferenceID: "f", RecorderID: "r", State: "ACTIVE", Started: t0, Data: []byte(`{"a":1}`)},
		{InstanceID: "i2", OrganizationID: "org1", ApplicationID: "app", ConversationID: "c1", ConferenceID: "f", RecorderID: "r", State: "STOPPED", Started: t0.Add(time.Second), Data: []byte(`{"a":2}`)},
		{InstanceID: "i3", OrganizationID: "org2", ApplicationID: "app", ConversationID: "c1", ConferenceID: "f", RecorderID: "r", State: "ACTIVE", Started: t0, Data: []byte(`{}`)},
	}
	for _, r := range recs {
		if err := s.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// Update replaces state and data.
	upd := *recs[0]
	upd.State, upd.Data = "STOPPED", []byte(`{"a":3}`)
	if err := s.Put(ctx, &upd); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Get(ctx, "org1", "i1")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != "STOPPED" || string(got.Data) != `{"a":3}` || !got.Started.Equal(t0) {
		t.Errorf("Get(i1) = %+v, want the update", got)
	}
	if _, err := s.Get(ctx, "org2", "i1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("another tenant's Get: err = %v, want ErrNotFound", err)
	}
	conv, err := s.Conversation(ctx, "org1", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if len(conv) != 2 || conv[0].InstanceID != "i1" || conv[1].InstanceID != "i2" {
		t.Errorf("Conversation = %d records, want i1, i2 in order", len(conv))
	}
	active, err := s.InStates(ctx, "ACTIVE", "INITIALISED")
	if err != nil {
		t.Fatal(err)
	}
	if len(active) != 1 || active[0].InstanceID != "i3" {
		t.Errorf("InStates(ACTIVE) = %v, want only i3", active)
	}
}
