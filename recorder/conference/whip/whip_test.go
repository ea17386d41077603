package whip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/rtcrec/recorder/recorder/conference"
)

// sink collects the tracks of one conference and reads each like a Session.
type sink struct {
	mu     sync.Mutex
	tracks []*conference.Track
	pkts   map[string]int
	ended  map[string]bool
	// received counts the packets whose receive time the track's reader
	// knew (conference.ArrivalReader), at most a second before the read.
	received map[string]int
	// push: a track that pushes (conference.RTPPusher) is pushed, as the
	// recorder's room does, not read.
	push bool
	// marked counts the packets whose payload begins with byte 1: those a
	// test counts (testUDPMuxSinks), not the ones that announce a track.
	marked map[string]int
}

func (s *sink) AddTrack(t *conference.Track) {
	s.mu.Lock()
	s.tracks = append(s.tracks, t)
	s.mu.Unlock()
	k := t.StreamID + t.TrackID
	if p, ok := t.Reader.(conference.RTPPusher); ok && s.push {
		// The receive time is looked up on the pushing goroutine (srtp's),
		// as the room's subscribers do.
		ar, _ := t.Reader.(conference.ArrivalReader)
		var pkt rtp.Packet
		if p.PushRTP(make([]byte, 1500), func(b []byte) {
			known, marked := false, false
			if pkt.Unmarshal(b) == nil {
				marked = len(pkt.Payload) > 0 && pkt.Payload[0] == 1
				if ar != nil {
					at, ok := ar.Arrival(pkt.SSRC, pkt.SequenceNumber)
					known = ok && !at.After(time.Now()) && time.Since(at) < time.Second
				}
			}
			s.mu.Lock()
			s.pkts[k]++
			if known {
				s.received[k]++
			}
			if marked {
				s.marked[k]++
			}
			s.mu.Unlock()
		}, func(error) {
			s.mu.Lock()
			s.ended[k] = true
			s.mu.Unlock()
		}) {
			return
		}
	}
	go func() {
		buf := make([]byte, 1500)
		ar, _ := t.Reader.(conference.ArrivalReader)
		for {
			n, err := t.Reader.ReadRTP(buf)
			var pkt rtp.Packet
			if err == nil && pkt.Unmarshal(buf[:n]) == nil {
				if len(pkt.Payload) > 0 && pkt.Payload[0] == 1 {
					s.mu.Lock()
					s.marked[t.StreamID+t.TrackID]++
					s.mu.Unlock()
				}
				if ar != nil {
					if at, ok := ar.Arrival(pkt.SSRC, pkt.SequenceNumber); ok && !at.After(time.Now()) && time.Since(at) < time.Second {
						s.mu.Lock()
						s.received[t.StreamID+t.TrackID]++
						s.mu.Unlock()
					}
				}
			}
			if err != nil {
				s.mu.Lock()
				s.ended[t.StreamID+t.TrackID] = true
				s.mu.Unlock()
				return
			}
			s.mu.Lock()
			s.pkts[t.StreamID+t.TrackID]++
			s.mu.Unlock()
		}
	}()
}

func (s *sink) ConferenceEnded(error) {}

// newEndpoint returns a WHIP endpoint for tenants k1 (org1) and k2 (org2)
// and a lookup of the sink of "org/conference".
func newEndpoint(t *testing.T) (*Adapter, *httptest.Server, func(string) *sink) {
	t.Helper()
	return newEndpointWith(t, Settings{LoopbackOnly: true, UDP4Only: true})
}

func newEndpointWith(t *testing.T, settings Settings) (*Adapter, *httptest.Server, func(string) *sink) {
	t.Helper()
	return newEndpointSinks(t, settings, false)
}

// newEndpointSinks is newEndpointWith whose sinks push the tracks that push
// (sink.push) if push is set.
func newEndpointSinks(t *testing.T, settings Settings, push bool) (*Adapter, *httptest.Server, func(string) *sink) {
	t.Helper()
	api, audio, closeFn, err := NewAPIs(settings)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeFn() })
	a, err := New(Options{API: api, AudioAPI: audio, Receipts: settings.Receipts, Authorize: func(tok string, _ Publish) (string, error) {
		switch tok {
		case "k1":
			return "org1", nil
		case "k2":
			return "org2", nil
		}
		return "", errors.New("no such key")
	}})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	sinks := map[string]*sink{}
	a.Listen(func(org, conf string) conference.Sink {
		mu.Lock()
		defer mu.Unlock()
		k := org + "/" + conf
		if sinks[k] == nil {
			sinks[k] = &sink{pkts: map[string]int{}, ended: map[string]bool{}, received: map[string]int{}, push: push, marked: map[string]int{}}
		}
		return sinks[k]
	})
	srv := httptest.NewServer(a)
	t.Cleanup(func() { srv.Close(); a.Close() })
	return a, srv, func(k string) *sink {
		mu.Lock()
		defer mu.Unlock()
		return sinks[k]
	}
}

func TestAdapter_PublishAndDelete(t *testing.T) {
	a, srv, sinks := newEndpoint(t)
	api, closeFn, _ := NewAPI(Settings{LoopbackOnly: true, UDP4Only: true})
	defer closeFn()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	track, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "a", "s")
	pub, err := (&Client{API: api, Token: "k1"}).Publish(ctx, Endpoint(srv.URL, "room", "alice@example.com", "SCREEN"), track)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(pub.Location, srv.URL+"/whip/room/") || a.Sessions() != 1 {
		t.Errorf("Location %q, %d sessions", pub.Location, a.Sessions())
	}
	frame := make([]byte, 160)
	sending := make(chan struct{})
	go func() {
		for {
			select {
			case <-sending:
				return
			case <-time.After(20 * time.Millisecond):
				track.WriteSample(media.Sample{Data: frame, Duration: 20 * time.Millisecond})
			}
		}
	}()
	defer close(sending)
	// Wait (bounded) for the track and some of its packets to reach the sink.
	var s *sink
	var tr *conference.Track
	got := 0
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && got < 10; time.Sleep(20 * time.Millisecond) {
		if s = sinks("org1/room"); s == nil {
			continue
		}
		s.mu.Lock()
		if len(s.tracks) > 0 {
			tr = s.tracks[0]
			got = s.pkts[tr.StreamID+tr.TrackID]
		}
		s.mu.Unlock()
	}
	if s == nil || tr == nil {
		t.Fatal("no track reached the sink of org1/room")
	}
	s.mu.Lock()
	if len(s.tracks) != 1 {
		t.Errorf("%d tracks, want 1", len(s.tracks))
	}
	s.mu.Unlock()
	if tr.UserID != "alice@example.com" || tr.StreamType != conference.StreamSCREEN || tr.Kind != conference.KindAudio ||
		!strings.EqualFold(tr.Codec.MimeType, "audio/PCMU") || tr.Codec.ClockRate != 8000 || tr.ConferenceID != "room" || tr.RequestKeyframe != nil {
		t.Errorf("track %+v", tr)
	}
	key := tr.StreamID + tr.TrackID
	if got < 10 {
		t.Errorf("%d packets read, want at least 10", got)
	}
	// The publisher's RTCP sender reports (Pion sends one a second) reach
	// the track: its wall clock (ours: loopback) at an RTP timestamp.
	if tr.SenderReport == nil {
		t.Fatal("the track has no SenderReport")
	}
	var sr conference.SenderReport
	ok := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !ok; time.Sleep(50 * time.Millisecond) {
		sr, ok = tr.SenderReport()
	}
	if !ok {
		t.Error("no sender report within 5 s")
	} else if d := sr.Arrived.Sub(sr.NTP); d < 0 || d > time.Second || sr.SSRC == 0 {
		t.Errorf("sender report %+v: its wall clock is %v before its arrival, want 0–1 s", sr, d)
	}
	// Another tenant cannot end the session; its owner can, and the track ends.
	del := func(tok string) int {
		req, _ := http.NewRequest("DELETE", pub.Location, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := del("k2"); st != 404 {
		t.Errorf("DELETE by another tenant: %d, want 404", st)
	}
	if st := del("k1"); st != 200 {
		t.Errorf("DELETE: %d, want 200", st)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		ended := s.ended[key]
		s.mu.Unlock()
		if ended {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended[key] || a.Sessions() != 0 {
		t.Errorf("after DELETE: track ended %v, %d sessions", s.ended[key], a.Sessions())
	}
	pub.PC.Close()
}

// discard reads every track to its end and keeps nothing.
type discard struct{}

func (discard) AddTrack(t *conference.Track) {
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, err := t.Reader.ReadRTP(buf); err != nil {
				return
			}
		}
	}()
}

func (discard) ConferenceEnded(error) {}

// TestAdapter_EndReleasesPeerConnection checks that once a session ends
// (DELETE, or the endpoint closing) nothing of the endpoint keeps its
// PeerConnection: the garbage collector frees it long before ConnectTimeout.
// A pending connect timer used to keep each one, with its ICE agent, DTLS
// and SRTP state (about 140 KiB), for the whole timeout.
func TestAdapter_EndReleasesPeerConnection(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(t *testing.T, a *Adapter, pub *Publication)
	}{
		{"DELETE", func(t *testing.T, _ *Adapter, pub *Publication) {
			if err := pub.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
		}},
		{"endpoint closed", func(t *testing.T, a *Adapter, pub *Publication) {
			a.Close()
			pub.PC.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api, closeFn, err := NewAPI(Settings{LoopbackOnly: true, UDP4Only: true})
			if err != nil {
				t.Fatal(err)
			}
			defer closeFn()
			recvAPI, audioAPI, closeRecv, err := NewAPIs(Settings{LoopbackOnly: true, UDP4Only: true})
			if err != nil {
				t.Fatal(err)
			}
			defer closeRecv()
			a, err := New(Options{API: recvAPI, AudioAPI: audioAPI, ConnectTimeout: time.Hour, Authorize: func(string, Publish) (string, error) { return "org", nil }})
			if err != nil {
				t.Fatal(err)
			}
			a.Listen(func(string, string) conference.Sink { return discard{} })
			srv := httptest.NewServer(a)
			defer srv.Close()
			defer a.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			track, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "a", "s")
			pub, err := (&Client{API: api, Token: "k"}).Publish(ctx, Endpoint(srv.URL, "room", "u", "MIC"), track)
			if err != nil {
				t.Fatal(err)
			}
			if err := pub.WaitConnected(ctx); err != nil {
				t.Fatal(err)
			}
			freed := make(chan struct{})
			a.mu.Lock()
			for _, s := range a.sess {
				runtime.AddCleanup(s.pc, func(ch chan struct{}) { close(ch) }, freed)
			}
			n := len(a.sess)
			a.mu.Unlock()
			if n != 1 {
				t.Fatalf("%d sessions, want 1", n)
			}
			tc.end(t, a, pub)
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				runtime.GC()
				select {
				case <-freed:
					return
				default:
				}
				if time.Now().After(deadline) {
					t.Fatal("the ended session's PeerConnection is still reachable 10 s later")
				}
			}
		})
	}
}

func TestAdapter_CORSPreflight(t *testing.T) {
	_, srv, _ := newEndpoint(t)
	req, _ := http.NewRequest("OPTIONS", srv.URL+"/whip/room", nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Location") {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
}

// FuzzOffer posts arbitrary offers: the endpoint never panics, and anything
// it accepts is a real session it can end.
func FuzzOffer(f *testing.F) {
	f.Add("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n")
	f.Add("v=0\r\nm=video x\r\n")
	f.Add("garbage")
	api, _, closeFn, err := NewAPIs(Settings{LoopbackOnly: true, UDP4Only: true})
	if err != nil {
		f.Fatal(err)
	}
	defer closeFn()
	a, _ := New(Options{API: api, Authorize: func(string, Publish) (string, error) { return "org", nil }})
	a.Listen(func(string, string) conference.Sink { return &sink{pkts: map[string]int{}, ended: map[string]bool{}} })
	defer a.Close()
	f.Fuzz(func(t *testing.T, offer string) {
		req := httptest.NewRequest("POST", "/whip/room?userId=u", strings.NewReader(offer))
		req.Header.Set("Authorization", "Bearer x")
		req.Header.Set("Content-Type", "application/sdp")
		w := httptest.NewRecorder()
		a.ServeHTTP(w, req)
		switch w.Code {
		case http.StatusCreated:
			loc := w.Header().Get("Location")
			d := httptest.NewRequest("DELETE", loc, nil)
			d.Header.Set("Authorization", "Bearer x")
			dw := httptest.NewRecorder()
			a.ServeHTTP(dw, d)
			if dw.Code != 200 {
				t.Fatalf("accepted offer's session cannot be deleted: %d", dw.Code)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("offer %q: status %d", offer, w.Code)
		}
	})
}

// An offer with a video section (even a disabled one) gets the API with the
// NACK generator; one without gets the audio API.
func TestHasVideo(t *testing.T) {
	for _, c := range []struct {
		offer string
		want  bool
	}{
		{"v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", false},
		{"v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n", true},
		{"v=0\nm=audio 9 UDP/TLS/RTP/SAVPF 111\nm=video 0 UDP/TLS/RTP/SAVPF 96\n", true},
		{"v=0\r\na=x:m=video 9\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", false},
		{"", false},
	} {
		if got := HasVideo(c.offer); got != c.want {
			t.Errorf("HasVideo(%q) = %t, want %t", c.offer, got, c.want)
		}
	}
}

// On one UDP socket for every connection (webrtc.udpMux, read in recvmmsg
// batches) three publishers are received side by side, every packet of each:
// on an address given, and on every address gathered (":0", the recorder's
// default), where all three reach the endpoint on the same port. With
// Receipts, each track's reader knows when every packet of it reached the
// socket.
func TestAdapter_UDPMux(t *testing.T) {
	for _, mux := range []string{"127.0.0.1:0", ":0"} {
		t.Run(mux, func(t *testing.T) { testUDPMux(t, Settings{UDPMux: mux}, 1) })
	}
	t.Run("receipts", func(t *testing.T) { testUDPMux(t, Settings{UDPMux: ":0", Receipts: NewReceipts()}, 1) })
	t.Run("receipts/pushed", func(t *testing.T) {
		testUDPMuxSinks(t, Settings{UDPMux: ":0", Receipts: NewReceipts()}, 1, true)
	})
}

// TestAdapter_UDPMuxFallback: where the kernel grants the mux's socket a
// small receive buffer (here 208 KiB, a default net.core.rmem_max without
// CAP_NET_ADMIN), the default mux gives way to a socket per connection; a
// configured mux is kept.
func TestAdapter_UDPMuxFallback(t *testing.T) {
	readBuffer = func(*net.UDPConn, int) int { return 208 << 10 }
	defer func() { readBuffer = setReadBuffer }()
	t.Run("default", func(t *testing.T) { testUDPMux(t, Settings{UDPMux: ":0", UDPMuxFallback: true}, 3) })
	t.Run("configured", func(t *testing.T) { testUDPMux(t, Settings{UDPMux: ":0"}, 1) })
}

// testUDPMux publishes 3 streams to an endpoint with set (on loopback, IPv4)
// and checks that they reach it on wantPorts ports and all get their packets.
func testUDPMux(t *testing.T, set Settings, wantPorts int) {
	testUDPMuxSinks(t, set, wantPorts, false)
}

// testUDPMuxSinks is testUDPMux whose sink pushes the tracks (sink.push) if
// push is set.
func testUDPMuxSinks(t *testing.T, set Settings, wantPorts int, push bool) {
	set.LoopbackOnly, set.UDP4Only = true, true
	_, srv, sinks := newEndpointSinks(t, set, push)
	api, closeFn, _ := NewAPI(Settings{LoopbackOnly: true, UDP4Only: true})
	defer closeFn()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const pubs, packets = 3, 50
	var tracks []*webrtc.TrackLocalStaticSample
	ports := map[uint16]int{} // the endpoint's port each publisher's media goes to
	for i := range pubs {
		track, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "a", fmt.Sprint("s", i))
		pub, err := (&Client{API: api, Token: "k1"}).Publish(ctx, Endpoint(srv.URL, "mux", fmt.Sprint("u", i), "MIC"), track)
		if err != nil {
			t.Fatal(err)
		}
		defer pub.Close(context.Background())
		if err := pub.WaitConnected(ctx); err != nil {
			t.Fatal(err)
		}
		tracks = append(tracks, track)
		pair, err := pub.PC.GetSenders()[0].Transport().ICETransport().GetSelectedCandidatePair()
		if err != nil || pair == nil {
			t.Fatalf("publisher %d: no selected candidate pair (%v)", i, err)
		}
		ports[pair.Remote.Port]++
	}
	if len(ports) != wantPorts {
		t.Errorf("the endpoint received the publishers on ports %v, want %d", ports, wantPorts)
	}
	// Every track reaches the sink before media flows, so that none is missed.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		n := 0
		if s := sinks("org1/mux"); s != nil {
			s.mu.Lock()
			n = len(s.tracks)
			s.mu.Unlock()
		}
		if n == pubs {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d tracks reached the sink", n, pubs)
		}
		// Pion announces a track with its first packet: send one each.
		for _, tr := range tracks {
			tr.WriteSample(media.Sample{Data: make([]byte, 160), Duration: 20 * time.Millisecond})
		}
	}
	// The packets counted begin with byte 1, those that announced the
	// tracks with 0: one of those may still be on its way now (CI: 51
	// packets for 50 when a base count was taken here).
	s := sinks("org1/mux")
	for range packets {
		for _, tr := range tracks {
			data := make([]byte, 160)
			data[0] = 1
			tr.WriteSample(media.Sample{Data: data, Duration: 20 * time.Millisecond})
		}
		time.Sleep(5 * time.Millisecond)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		s.mu.Lock()
		done := 0
		got := map[string]int{}
		for _, tr := range s.tracks {
			k := tr.StreamID + tr.TrackID
			got[k] = s.marked[k]
			if got[k] >= packets {
				done++
			}
		}
		s.mu.Unlock()
		if done == pubs {
			for k, n := range got {
				if n != packets {
					t.Errorf("track %s: %d packets, want %d", k, n, packets)
				}
			}
			if set.Receipts != nil {
				// Each packet's receive time on the mux's socket is known
				// to its track's reader.
				s.mu.Lock()
				for k, n := range s.pkts {
					if s.received[k] != n {
						t.Errorf("track %s: the receive times of %d of its %d packets known", k, s.received[k], n)
					}
				}
				s.mu.Unlock()
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("packets received per track: %v, want %d each", got, packets)
		}
	}
}
