package whip

import (
	"context"
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/rtcrec/recorder/recorder/conference"
)

// trackSink hands the tracks of a conference to the test, unread.
type trackSink chan *conference.Track

func (s trackSink) AddTrack(t *conference.Track) { s <- t }
func (trackSink) ConferenceEnded(error)          {}

// TestAdapter_TrackPushesEveryPacketInOrder: a real Pion publisher sends
// 400 Opus packets 2 ms apart over WHIP; the track's reader starts after the
// 200th and calls PushRTP: the endpoint's track (its connection's
// PushBuffers) hands over those Pion held, then each packet as srtp
// decrypts it: every packet once, in order; the publisher's sender reports
// come pushed too; ending the session ends the track with io.EOF, once.
func TestAdapter_TrackPushesEveryPacketInOrder(t *testing.T) {
	recvAPI, audioAPI, closeRecv, err := NewAPIs(Settings{LoopbackOnly: true, UDP4Only: true})
	if err != nil {
		t.Fatal(err)
	}
	defer closeRecv()
	a, err := New(Options{API: recvAPI, AudioAPI: audioAPI, Authorize: func(string, Publish) (string, error) { return "org", nil }})
	if err != nil {
		t.Fatal(err)
	}
	tracks := make(trackSink, 1)
	a.Listen(func(string, string) conference.Sink { return tracks })
	srv := httptest.NewServer(a)
	defer srv.Close()
	defer a.Close()
	api, closeFn, err := NewAPI(Settings{LoopbackOnly: true, UDP4Only: true})
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	local, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "a", "s")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := (&Client{API: api, Token: "k"}).Publish(ctx, Endpoint(srv.URL, "room", "u", "MIC"), local)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.PC.Close()
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	seq := uint16(0)
	write := func() {
		seq++
		if err := local.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 960}, Payload: []byte{0xfc, 0xff, 0xfe}}); err != nil {
			t.Fatal(err)
		}
	}
	// Until the endpoint has the track, a packet every 20 ms.
	var ct *conference.Track
	for ct == nil {
		select {
		case ct = <-tracks:
		case <-time.After(20 * time.Millisecond):
			write()
		case <-ctx.Done():
			t.Fatal("no track in 30 s")
		}
	}
	pusher, ok := ct.Reader.(conference.RTPPusher)
	if !ok {
		t.Fatalf("the track's reader %T does not push", ct.Reader)
	}
	every := time.NewTicker(2 * time.Millisecond)
	defer every.Stop()
	first := seq + 1
	for range 200 {
		<-every.C
		write()
	}
	seqs := make(chan uint16, 1000)
	ended := make(chan error, 2)
	var pkt rtp.Packet
	if !pusher.PushRTP(make([]byte, 1500), func(b []byte) {
		if err := pkt.Unmarshal(b); err != nil {
			t.Errorf("not RTP: %v", err)
		}
		seqs <- pkt.SequenceNumber
	}, func(err error) { ended <- err }) {
		t.Fatal("PushRTP: the track does not push")
	}
	held := len(seqs)
	for range 200 {
		<-every.C
		write()
	}
	var got []uint16
	for len(got) == 0 || got[len(got)-1] != seq {
		select {
		case s := <-seqs:
			got = append(got, s)
		case <-ctx.Done():
			t.Fatalf("packet %d not handed over in 30 s (got %d packets)", seq, len(got))
		}
	}
	if got[0] > first {
		t.Errorf("the first packet handed over is %d: packets %d to %d, sent before the reader started, are lost", got[0], first, got[0]-1)
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("packet %d follows %d: lost or reordered", got[i], got[i-1])
		}
	}
	t.Logf("%d packets handed over by PushRTP itself, %d pushed after; first %d (the first sent after the track came: %d)", held, len(got)-held, got[0], first)
	if held == 0 || held == len(got) {
		t.Errorf("%d of %d packets handed over by PushRTP itself: want some held, then some pushed", held, len(got))
	}
	// The publisher's sender reports (Pion's, once a second) come pushed.
	for {
		if _, ok := ct.SenderReport(); ok {
			break
		}
		select {
		case <-every.C:
		case <-ctx.Done():
			t.Fatal("no sender report of the publisher in 30 s")
		}
	}
	a.Close()
	select {
	case err := <-ended:
		if err != io.EOF {
			t.Errorf("the track ended with %v, want io.EOF", err)
		}
	case <-ctx.Done():
		t.Fatal("the track did not end in 30 s after its session ended")
	}
	select {
	case <-ended:
		t.Error("end called twice")
	default:
	}
}
