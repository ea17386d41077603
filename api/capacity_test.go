package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/recorder/conference/whip"
	"github.com/rtcrec/recorder/recorder/conference/whip/whiptest"
)

// TestCapacity_RefusesPastItKeepsRunning: an instance with capacity.streams 2
// records a conference of two WHIP publishers; then a third publisher and a
// new recording are refused with 503 no_capacity and Retry-After, /readyz
// says so and the metrics give load 2 of 2, and the running recording keeps
// both tones to its end. Once a publisher leaves, a publisher is admitted
// again.
func TestCapacity_RefusesPastItKeepsRunning(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	cfg := testConfig(t.TempDir())
	cfg.Capacity.Streams = 2
	h := startServiceConfig(t, cfg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := h.whipClient(key1)
	var ps []*whiptest.Participant
	for _, p := range []struct {
		name string
		freq float64
	}{{"alice", 440}, {"bob", 660}} {
		pp, err := whiptest.Join(ctx, c, whip.Endpoint(h.url, "cap", p.name, "MIC"), p.name, p.freq)
		if err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		t.Cleanup(func() { pp.Leave(context.Background()) })
		ps = append(ps, pp)
	}
	ev, st := h.start(key1, StartRecording{ApplicationID: "app1", ConferenceID: "cap", ConversationID: "capconv"})
	if st != 200 || ev.State != "ACTIVE" {
		t.Fatalf("start within capacity: %d %+v", st, ev)
	}

	// Wait until the recording takes both streams (its tracks are added as
	// it subscribes, just after the start returns).
	waitFor(t, 20*time.Second, func() bool {
		r, err := h.svc.Manager.Get(ctx, "org1", ev.ConversationID, ev.RecorderID, ev.InstanceID)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, s := range r.Streams {
			n += len(s.Tracks)
		}
		return n == 2
	})

	// At capacity: a third publisher is refused.
	_, err := whiptest.Join(ctx, c, whip.Endpoint(h.url, "cap", "carol", "MIC"), "carol", 880)
	var he *whip.HTTPError
	if !errors.As(err, &he) || he.Status != 503 || !strings.Contains(he.Body, "no_capacity") {
		t.Errorf("a publisher past capacity: %v; want 503 no_capacity", err)
	}
	// A new recording is refused, with Retry-After.
	body, _ := json.Marshal(StartRecording{ApplicationID: "app1", ConferenceID: "other", ConversationID: "otherconv"})
	req, _ := http.NewRequest("POST", h.url+"/api/recordings/start", bytes.NewReader(body))
	req.Header.Set("Authorization", key1)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !bytes.Contains(b, []byte("no_capacity")) {
		t.Errorf("a start past capacity: %d Retry-After %q %s; want 503 with Retry-After, no_capacity", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	// /readyz and the metrics say so.
	resp, err = http.Get(h.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !bytes.Contains(b, []byte("no_capacity")) {
		t.Errorf("/readyz at capacity: %d %s", resp.StatusCode, b)
	}
	resp, err = http.Get(h.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"recorder_load_streams 2", "recorder_capacity_streams 2"} {
		if !bytes.Contains(b, []byte(want+"\n")) {
			t.Errorf("metrics lack %q", want)
		}
	}

	time.Sleep(2 * time.Second) // the running recording goes on
	var stopped RecordingDataEvent
	if st := h.do("POST", recPath(ev)+"/stop", key1, nil, &stopped); st != 200 || stopped.State != "STOPPED" {
		t.Fatalf("stop: %d %+v", st, stopped)
	}
	var comp RecordingDataMessage
	if st := h.do("GET", "/api/compositions/capconv", key1, nil, &comp); st != 200 || comp.Composition == nil || len(comp.Composition.Outputs) != 1 ||
		comp.Composition.Manifest == nil {
		t.Fatalf("composition: %d %+v", st, comp.Composition)
	}
	var man composition.Manifest
	if err := json.Unmarshal(fetch(t, comp.Composition.Manifest.URL), &man); err != nil {
		t.Fatal(err)
	}
	wav := fetch(t, comp.Composition.Outputs[0].URL)
	pcm := wavPCM(t, wav)
	if len(pcm) < 2*8000 {
		t.Fatalf("the mix has %d samples", len(pcm))
	}
	for _, c := range []struct {
		user string
		freq float64
	}{{"alice", 440}, {"bob", 660}} { // both, from their tracks' start to the end, in 200 ms windows
		f := c.freq
		for i := int(heardFrom(t, &man, c.user, 0.2) * 8000); i+1600 <= len(pcm)-800; i += 1600 {
			if a := mediatest.Goertzel(pcm[i:i+1600], 8000, f); a < 1000 {
				t.Errorf("%.0f Hz missing from the running recording at %.1f s (level %.0f)", f, float64(i)/8000, a)
				break
			}
		}
	}

	// Below capacity again: a publisher is admitted.
	if err := ps[1].Leave(ctx); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		p, err := whiptest.Join(ctx, c, whip.Endpoint(h.url, "cap", "dave", "MIC"), "dave", 550)
		if err == nil {
			p.Leave(context.Background())
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a publisher once below capacity: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestCapacity_ConcurrentOffersTakeOnlyTheRoomLeft: eight WHIP publishers
// offer at once to an instance with room for two streams. Exactly two are
// admitted and six refused with 503 no_capacity: a session being negotiated
// counts in the load from its reservation, and the capacity check and the
// reservation are one step (with capacity 400, 401 publishers once got in
// when the check looked only at sessions already negotiated).
func TestCapacity_ConcurrentOffersTakeOnlyTheRoomLeft(t *testing.T) {
	if testing.Short() {
		t.Skip("real WebRTC test")
	}
	cfg := testConfig(t.TempDir())
	cfg.Capacity.Streams = 2
	h := startServiceConfig(t, cfg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := h.whipClient(key1)

	const offers = 8
	type result struct {
		p   *whiptest.Participant
		err error
	}
	results := make(chan result, offers)
	start := make(chan struct{})
	for i := range offers {
		name := fmt.Sprintf("p%d", i)
		go func() {
			<-start
			p, err := whiptest.Join(ctx, c, whip.Endpoint(h.url, "crowd", name, "MIC"), name, 300+100*float64(i))
			results <- result{p, err}
		}()
	}
	close(start)
	admitted, refused := 0, 0
	for range offers {
		r := <-results
		var he *whip.HTTPError
		switch {
		case r.err == nil:
			admitted++
			t.Cleanup(func() { r.p.Leave(context.Background()) })
		case errors.As(r.err, &he) && he.Status == 503 && strings.Contains(he.Body, "no_capacity"):
			refused++
		default:
			t.Errorf("an offer failed otherwise: %v", r.err)
		}
	}
	if admitted != 2 || refused != offers-2 {
		t.Fatalf("%d offers at once with room for 2: %d admitted, %d refused with no_capacity; want 2 and %d", offers, admitted, refused, offers-2)
	}
	if n := h.svc.WHIP.Sessions(); n != 2 {
		t.Errorf("WHIP sessions after the refusals: %d, want 2", n)
	}
}
