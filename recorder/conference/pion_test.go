package conference

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/pion/rtcp"
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

// pionPair connects a Pion sender of one Opus track to a Pion receiver on
// loopback and returns the sender, a write of the sender's next packet
// (sequence number seq, advanced by each write) and the receiver's track and
// RTP receiver, once it has them (the sender sends a packet every 20 ms
// until then).
func pionPair(t *testing.T) (send *webrtc.PeerConnection, write func(), remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver, seq *uint16) {
	t.Helper()
	api := loopbackAPI()
	send, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { send.Close() })
	recv, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { recv.Close() })
	local, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "s")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := send.AddTrack(local); err != nil {
		t.Fatal(err)
	}
	type got struct {
		tr *webrtc.TrackRemote
		r  *webrtc.RTPReceiver
	}
	remotes := make(chan got, 1)
	recv.OnTrack(func(tr *webrtc.TrackRemote, r *webrtc.RTPReceiver) { remotes <- got{tr, r} })
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
	seq = new(uint16)
	write = func() {
		*seq++
		if err := local.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: *seq, Timestamp: uint32(*seq) * 960}, Payload: []byte{0xfc, 0xff, 0xfe}}); err != nil {
			t.Fatal(err)
		}
	}
	for {
		select {
		case g := <-remotes:
			return send, write, g.tr, g.r, seq
		case <-time.After(20 * time.Millisecond):
			write()
		}
	}
}

// TestPionTrack_ReadDeadline: a real Pion receiver's track read through
// PionTrack: a read deadline that passes without a packet gives
// ErrReadTimeout (the reader goroutine runs, the track goes on: the mix's
// deferred decoding ticks on it), the next read after the deadline is
// cleared gets the next packet, and End gives io.EOF, also after a deadline
// set or cleared once it ended.
func TestPionTrack_ReadDeadline(t *testing.T) {
	_, write, remote, _, seq := pionPair(t)
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
			t.Fatalf("read after the deadline was cleared: %d bytes, %v; want packet %d", n, err, *seq)
		}
		if pkt.SequenceNumber == *seq {
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

// TestSenderReports_SkipMalformedPackets: a compound RTCP packet of a sender
// report and a receiver report with a profile-specific extension (RFC 3550
// §6.4.2), which pion/srtp hands on re-marshalled with a wrong length, so
// that it no longer parses, does not end the reading: a later sender report
// is still kept. (It ended the reader of every adapter until 2026-12-06.)
func TestSenderReports_SkipMalformedPackets(t *testing.T) {
	send, _, remote, receiver, _ := pionPair(t)
	srs := ReadSenderReports(receiver)
	ssrc := uint32(remote.SSRC())
	// A receiver report of 24 bytes without report blocks: 16 of extension.
	rrWithExtension := rtcp.RawPacket(append([]byte{0x80, 201, 0, 5, 0, 0, 0, 9}, make([]byte, 16)...))
	sendSR := func(rtpTime uint32, more ...rtcp.Packet) {
		pkts := append([]rtcp.Packet{&rtcp.SenderReport{SSRC: ssrc, NTPTime: uint64(rtpTime) << 32, RTPTime: rtpTime}}, more...)
		if err := send.WriteRTCP(pkts); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(rtpTime uint32, more ...rtcp.Packet) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		every := time.NewTicker(20 * time.Millisecond)
		defer every.Stop()
		for {
			if sr, ok := srs.Latest(ssrc); ok && sr.RTPTime == rtpTime {
				return
			}
			if time.Now().After(deadline) {
				sr, ok := srs.Latest(ssrc)
				t.Fatalf("sender report %d not kept in 10 s (latest: %+v, %v)", rtpTime, sr, ok)
			}
			sendSR(rtpTime, more...) // until one is kept: RTCP may be lost
			<-every.C
		}
	}
	// The report before the malformed one arrives with it, in one
	// datagram: once it is kept the malformed one is read next.
	waitFor(1, &rrWithExtension)
	waitFor(2)
}
