package api

import (
	"context"
	"testing"
	"time"

	"github.com/rtcrec/recorder/internal/pgtest"
	"github.com/rtcrec/recorder/media/mediatest"
)

// TestService_Postgres runs the service on a real PostgreSQL: a recording of a
// tone is made, stopped and composed; a second recorder (its own data
// directory and recorderId) on the same database then serves the recording,
// its conversation and its mix, read from the shared store.
func TestService_Postgres(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	dsn := pgtest.Start(t).NewDatabase(t)
	cfg := testConfig(t.TempDir())
	cfg.Store.Driver, cfg.Store.DSN = "postgres", dsn
	h := startServiceConfig(t, cfg, nil)
	if d := h.svc.Store.Driver(); d != "postgres" {
		t.Fatalf("store driver %s, want postgres", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recordTone(t, ctx, h, "pg", 660, 1500*time.Millisecond)
	var before RecordingDataMessage
	if st := h.do("GET", "/api/compositions/pg", key1, nil, &before); st != 200 {
		t.Fatalf("composition: %d", st)
	}

	cfg2 := testConfig(t.TempDir())
	cfg2.Store = cfg.Store
	h2 := startServiceConfig(t, cfg2, nil)
	if h2.svc.RecorderID == h.svc.RecorderID {
		t.Fatalf("both recorders have recorderId %s", h.svc.RecorderID)
	}
	p := "/api/recordings/pg/" + before.RecorderID + "/" + before.InstanceID
	var state RecordingDataEvent
	if st := h2.do("GET", p+"/state", key1, nil, &state); st != 200 || state.State != "STOPPED" || state.RecorderID != h.svc.RecorderID {
		t.Errorf("state from the other recorder: %d %+v", st, state)
	}
	var conv ConversationMessage
	if st := h2.do("GET", "/api/recordings/pg", key1, nil, &conv); st != 200 {
		t.Errorf("conversation from the other recorder: %d", st)
	}
	if st := h2.do("GET", p+"/state", key2, nil, nil); st != 404 {
		t.Errorf("another tenant's read: %d, want 404", st)
	}
	var comp RecordingDataMessage
	if st := h2.do("GET", "/api/compositions/pg", key1, nil, &comp); st != 200 || comp.Composition == nil || len(comp.Composition.Outputs) == 0 {
		t.Fatalf("composition from the other recorder: %d %+v", st, comp)
	}
	// Both recorders share LOCAL storage here only through the first one's
	// signed URL: fetch the mix from where the first recorder serves it.
	wav := fetch(t, before.Composition.Outputs[0].URL)
	if a := mediatest.Goertzel(wavPCM(t, wav), 8000, 660); a < 2000 {
		t.Errorf("mix tone amplitude %.0f, want the 660 Hz tone", a)
	}
}
