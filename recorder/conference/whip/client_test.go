package whip

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// TestClient_WaitConnectedWaitsForDTLS: WaitConnected returns once media
// flows, not when ICE connected: a packet written as soon as it returns
// reaches the endpoint. The publisher's DTLS handshake is held (its first
// hello message waits for the test) after ICE connected, as a recorder on a
// busy core holds it for ~100 ms. Before, WaitConnected returned at ICE
// connected, and Pion dropped what the publisher wrote until DTLS-SRTP was
// up, without an error: test publishers "sent" packets that never left them
// (session 21: TestIssue10Table's b lacked its first 5 packets;
// TestMetrics_KnownRecording's alice 25).
func TestClient_WaitConnectedWaitsForDTLS(t *testing.T) {
	_, srv, sinks := newEndpoint(t)
	se, _, closeFn, err := settingEngine(Settings{LoopbackOnly: true, UDP4Only: true})
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	// The publisher is the DTLS client or server as the answer says: hold
	// whichever hello it sends first.
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	hold := func() { once.Do(func() { close(held); <-release }) }
	se.SetDTLSClientHelloMessageHook(func(m handshake.MessageClientHello) handshake.Message { hold(); return &m })
	se.SetDTLSServerHelloMessageHook(func(m handshake.MessageServerHello) handshake.Message { hold(); return &m })
	me := &webrtc.MediaEngine{}
	if err := registerCodecs(me, false); err != nil {
		t.Fatal(err)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "a", "s")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := (&Client{API: api, Token: "k1"}).Publish(ctx, Endpoint(srv.URL, "room", "alice", "MIC"), track)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(context.Background())
	// As soon as WaitConnected returns: one packet, marked (payload byte 1).
	wrote := make(chan error, 1)
	go func() {
		err := pub.WaitConnected(ctx)
		if err == nil {
			err = track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 1, Timestamp: 160}, Payload: append([]byte{1}, make([]byte, 159)...)})
		}
		wrote <- err
	}()
	select {
	case <-held: // ICE connected; DTLS began, and waits
	case <-ctx.Done():
		t.Fatal("the publisher's DTLS handshake did not begin")
	}
	// There is no event for "WaitConnected did not return": a wrong one
	// returns at ICE connected, already past; half a second shows it.
	select {
	case err := <-wrote:
		close(release)
		t.Fatalf("WaitConnected returned (then wrote: %v) while the DTLS handshake was held: what the publisher writes then is dropped", err)
	case <-time.After(500 * time.Millisecond):
	}
	close(release)
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	// The one packet reaches the endpoint's sink.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if s := sinks("org1/room"); s != nil {
			s.mu.Lock()
			n := 0
			for _, v := range s.marked {
				n += v
			}
			s.mu.Unlock()
			if n == 1 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the packet written as WaitConnected returned did not reach the endpoint in 10 s")
		}
	}
}
