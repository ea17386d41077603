package conference

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// loopbackAPI returns a Pion API whose peers gather only 127.0.0.1.
func loopbackAPI() *webrtc.API {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	return webrtc.NewAPI(webrtc.WithSettingEngine(se))
}

// TestPionTrack_ReadDeadline: a real Pion receiver's track read through
// PionTrack: a read deadline that passes without a packet gives
// ErrReadTimeout (the reader goroutine runs, the track goes on: the mix's
// deferred decoding ticks on it), the next read after the deadline is
// cleared gets the next packet, and End gives io.EOF, also after a deadline
// set or cleared once it ended.
func TestPionTrack_ReadDeadline(t *testing.T) {
	api := loopbackAPI()
	send, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer send.Close()
	recv, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	local, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "s")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := send.AddTrack(local); err != nil {
		t.Fatal(err)
	}
	remotes := make(chan *webrtc.TrackRemote, 1)
	recv.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { remotes <- tr })
	offer, err := send.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(send)
	if err := send.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-done
	if err := recv.SetRemoteDescription(*send.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	answer, err := recv.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done = webrtc.GatheringCompletePromise(recv)
	if err := recv.SetLocalDescription(answer); err != nil {
		t.Fatal(err)
	}
	<-done
	if err := send.SetRemoteDescription(*recv.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	seq := uint16(0)
	write := func() {
		seq++
		if err := local.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 960}, Payload: []byte{0xfc, 0xff, 0xfe}}); err != nil {
			t.Fatal(err)
		}
	}
	// Until the receiver has the track, the sender sends a packet every 20 ms.
	var remote *webrtc.TrackRemote
	for remote == nil {
		select {
		case remote = <-remotes:
		case <-time.After(20 * time.Millisecond):
			write()
		}
	}
	tr := NewPionTrack(remote, nil)
	buf := make([]byte, 1500)
	if _, err := tr.ReadRTP(buf); err != nil {
		t.Fatalf("first read: %v", err)
	}
	// Drain what the sender sent before the track came.
	for {
		if err := tr.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		_, err := tr.ReadRTP(buf)
		if errors.Is(err, ErrReadTimeout) {
			break
		}
		if err != nil {
			t.Fatalf("read with a deadline: %v, want a packet or ErrReadTimeout", err)
		}
	}
	if err := tr.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	write()
	for { // a packet from before that the loaded machine delayed may come first
		n, err := tr.ReadRTP(buf)
		var pkt rtp.Packet
		if err != nil || pkt.Unmarshal(buf[:n]) != nil {
			t.Fatalf("read after the deadline was cleared: %d bytes, %v; want packet %d", n, err, seq)
		}
		if pkt.SequenceNumber == seq {
			break
		}
	}
	tr.End()
	if err := tr.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.ReadRTP(buf); err != io.EOF {
		t.Fatalf("read after End: %v, want io.EOF", err)
	}
}
