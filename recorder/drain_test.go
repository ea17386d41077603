package recorder

import (
	"context"
	"testing"
	"time"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/internal/synth"
)

// TestManager_ShutdownPolicyWait: under policy wait, Shutdown refuses new
// recordings at once, lets a recording that ends by itself finish, and
// stops the one still running when the deadline passes.
func TestManager_ShutdownPolicyWait(t *testing.T) {
	m, fa, _ := newTestManager(t)
	m.cfg.Shutdown = config.ShutdownConfig{Policy: config.ShutdownWait, Deadline: 1500 * time.Millisecond, Timeout: 10 * time.Second}
	ctx := context.Background()
	ends, err := m.Start(ctx, "org", StartRequest{ApplicationID: "app", ConferenceID: "f1", ConversationID: "c1", Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	runs, err := m.Start(ctx, "org", StartRequest{ApplicationID: "app", ConferenceID: "f2", ConversationID: "c2", Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, conf := range []string{"f1", "f2"} {
		tr, ft := newTrack(conf, "u-"+conf)
		fa.sink(conf).AddTrack(tr)
		go ft.send(&synth.Tone{Freq: 440, Amplitude: 8000}, 3*time.Second)
	}
	time.Sleep(300 * time.Millisecond)
	shut := make(chan error, 1)
	began := time.Now()
	go func() { shut <- m.Shutdown(ctx) }()
	for !m.Draining() {
		time.Sleep(time.Millisecond)
	}
	if _, err := m.Start(ctx, "org", StartRequest{ApplicationID: "app", ConferenceID: "f3", ConversationID: "c3", Audio: true}); KindOf(err) != KindUnavailable {
		t.Errorf("Start while draining: %v, want KindUnavailable", err)
	}
	time.Sleep(300 * time.Millisecond)
	if got, _ := m.Get(ctx, "org", "c2", "rec1", runs.InstanceID); got.State != StateActive {
		t.Errorf("under policy wait the recording is %s before the deadline", got.State)
	}
	fa.sink("f1").ConferenceEnded(nil) // the first ends by itself
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	took := time.Since(began)
	if took < 1500*time.Millisecond {
		t.Errorf("Shutdown returned after %v, before the 1.5 s deadline", took)
	}
	a, _ := m.Get(ctx, "org", "c1", "rec1", ends.InstanceID)
	b, _ := m.Get(ctx, "org", "c2", "rec1", runs.InstanceID)
	if a.State != StateStopped || b.State != StateStopped || b.Stopped.Sub(b.Started) < 1500*time.Millisecond {
		t.Errorf("after the drain: %s, %s (ran %v)", a.State, b.State, b.Stopped.Sub(b.Started))
	}
}
