package conference

import (
	"errors"
	"io"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/transport/v4/packetio"
	"github.com/pion/webrtc/v4"
)

// loopbackAPI returns a Pion API whose peers gather only 127.0.0.1; with
// bufs, its SRTP and SRTCP streams get PushBuffers.
func loopbackAPI(bufs *PushBuffers) *webrtc.API {
	if bufs == nil {
		return loopbackAPIWith(nil)
	}
	return loopbackAPIWith(bufs.New)
}

// loopbackAPIWith is loopbackAPI whose streams' buffers factory makes (nil:
// Pion's).
func loopbackAPIWith(factory func(packetio.BufferPacketType, uint32) io.ReadWriteCloser) *webrtc.API {
	var se webrtc.SettingEngine
	se.BufferFactory = factory
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	return webrtc.NewAPI(webrtc.WithSettingEngine(se))
}

// pionPair connects a Pion sender of one Opus track to a Pion receiver on
// loopback and returns the sender, a write of the sender's next packet
// (sequence number seq, advanced by each write) and the receiver's track and
// RTP receiver, once it has them (the sender sends a packet every 20 ms
// until then). With bufs, the receiver's streams get PushBuffers.
func pionPair(t *testing.T, bufs *PushBuffers) (send, recv *webrtc.PeerConnection, write func(), remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver, seq *uint16) {
	t.Helper()
	return pionPairWith(t, loopbackAPI(bufs))
}

// pionPairWith is pionPair with the receiver's API.
func pionPairWith(t testing.TB, api *webrtc.API) (send, recv *webrtc.PeerConnection, write func(), remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver, seq *uint16) {
	t.Helper()
	send, err := loopbackAPI(nil).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { send.Close() })
	recv, err = api.NewPeerConnection(webrtc.Configuration{})
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
			return send, recv, write, g.tr, g.r, seq
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
	_, _, write, remote, _, seq := pionPair(t, nil)
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
// is still kept (read by a goroutine, or pushed by srtp's). (It ended the
// reader of every adapter until 2026-12-06.)
func TestSenderReports_SkipMalformedPackets(t *testing.T) {
	for _, pushed := range []bool{false, true} {
		name := "read"
		if pushed {
			name = "pushed"
		}
		t.Run(name, func(t *testing.T) { testSenderReportsSkipMalformed(t, pushed) })
	}
}

func testSenderReportsSkipMalformed(t *testing.T, pushed bool) {
	var bufs *PushBuffers
	if pushed {
		bufs = &PushBuffers{}
	}
	send, _, _, remote, receiver, _ := pionPair(t, bufs)
	ssrc := uint32(remote.SSRC())
	var srs *SenderReports
	if pushed {
		srs = PushSenderReports(receiver, bufs.RTCP(ssrc), nil)
	} else {
		srs = ReadSenderReports(receiver)
	}
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

// TestPionTrack_PushesEveryPacketInOrder: a real Pion sender sends 400
// packets 2 ms apart to a Pion receiver whose streams have PushBuffers; the
// track's reader starts after the 200th. PushRTP hands over what Pion held,
// then every packet as srtp decrypts it: each once, in order, none lost;
// closing the receiver ends the track, once, with io.EOF.
func TestPionTrack_PushesEveryPacketInOrder(t *testing.T) {
	bufs := &PushBuffers{}
	_, recv, write, remote, receiver, seq := pionPair(t, bufs)
	ssrc := uint32(remote.SSRC())
	if bufs.RTP(ssrc) == nil || bufs.RTCP(ssrc) == nil {
		t.Fatalf("no PushBuffer for the track's SSRC %d", ssrc)
	}
	every := time.NewTicker(2 * time.Millisecond)
	defer every.Stop()
	first := *seq + 1
	for range 200 {
		<-every.C
		write()
	}
	tr := NewPushedPionTrack(remote, PushSenderReports(receiver, bufs.RTCP(ssrc), nil), bufs.RTP(ssrc))
	seqs := make(chan uint16, 1000)
	ended := make(chan error, 2)
	var pkt rtp.Packet
	if !tr.PushRTP(make([]byte, 1500), func(b []byte) {
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
	last := *seq
	var got []uint16
	timeout := time.After(10 * time.Second)
	for len(got) == 0 || got[len(got)-1] != last {
		select {
		case s := <-seqs:
			got = append(got, s)
		case <-timeout:
			t.Fatalf("packet %d not handed over in 10 s (got %d packets)", last, len(got))
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
	t.Logf("%d packets held before PushRTP, %d pushed after; first %d (the first sent after the track came: %d)", held, len(got)-held, got[0], first)
	if held == 0 || held == len(got) {
		t.Errorf("%d of %d packets handed over by PushRTP itself: want some held, then some pushed", held, len(got))
	}
	recv.Close()
	select {
	case err := <-ended:
		if err != io.EOF {
			t.Errorf("the track ended with %v, want io.EOF", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the track did not end in 10 s after the receiver closed")
	}
	select {
	case <-ended:
		t.Error("end called twice")
	default:
	}
}

// TestPionTrack_ReadsBareWhenCounted: a real Pion receiver whose SRTP
// buffers count the packets read from them (PushBuffer.SetCount, as whip's
// receiver reports do) and no interceptor: a pushed audio track reads the
// packets handed over from its buffer itself (bare) once Pion read one, and
// hands over every packet once, in order, each counted once. A packet of
// another payload type still goes through Pion's track: one of PCMU (the
// receiver's codecs have it) changes the track's codec and is handed over,
// and Opus after it changes it back; one of a payload type the receiver
// does not know ends the track with Pion's error, as it does through Pion.
func TestPionTrack_ReadsBareWhenCounted(t *testing.T) {
	bufs := &PushBuffers{}
	var counted atomic.Int64
	factory := func(tp packetio.BufferPacketType, ssrc uint32) io.ReadWriteCloser {
		b := bufs.New(tp, ssrc)
		if tp == packetio.RTPBufferPacket {
			b.(*PushBuffer).SetCount(func([]byte) { counted.Add(1) })
		}
		return b
	}
	_, _, write, remote, receiver, seq := pionPairWith(t, loopbackAPIWith(factory))
	ssrc := uint32(remote.SSRC())
	for range 20 {
		write() // held
	}
	tr := NewPushedPionTrack(remote, PushSenderReports(receiver, bufs.RTCP(ssrc), nil), bufs.RTP(ssrc))
	type handed struct {
		seq uint16
		pt  uint8
	}
	got := make(chan handed, 1000)
	ended := make(chan error, 2)
	var pkt rtp.Packet
	if !tr.PushRTP(make([]byte, 1500), func(b []byte) {
		if err := pkt.Unmarshal(b); err != nil {
			t.Errorf("not RTP: %v", err)
		}
		got <- handed{pkt.SequenceNumber, pkt.PayloadType}
	}, func(err error) { ended <- err }) {
		t.Fatal("PushRTP: the track does not push")
	}
	every := time.NewTicker(2 * time.Millisecond)
	defer every.Stop()
	for range 100 {
		<-every.C
		write()
	}
	var seqs []uint16
	until := func(last uint16) handed {
		t.Helper()
		for {
			select {
			case h := <-got:
				seqs = append(seqs, h.seq)
				if h.seq == last {
					return h
				}
			case err := <-ended:
				t.Fatalf("the track ended (%v) before packet %d", err, last)
			case <-time.After(10 * time.Second):
				t.Fatalf("packet %d not handed over in 10 s", last)
			}
		}
	}
	until(*seq)
	if !tr.bare {
		t.Error("the track does not read bare after 100 packets pushed")
	}
	// A PCMU packet, as srtp would write it to the buffer.
	*seq++
	pcmu := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: *seq, Timestamp: uint32(*seq) * 960, SSRC: ssrc}, Payload: make([]byte, 160)}
	raw, err := pcmu.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bufs.RTP(ssrc).Write(raw); err != nil {
		t.Fatal(err)
	}
	if h := until(*seq); h.pt != 0 || remote.Codec().MimeType != webrtc.MimeTypePCMU {
		t.Errorf("the PCMU packet handed over with payload type %d, the track's codec %s; want 0 and PCMU", h.pt, remote.Codec().MimeType)
	}
	for range 5 {
		write()
	}
	if h := until(*seq); h.pt != 111 || remote.Codec().MimeType != webrtc.MimeTypeOpus || !tr.bare {
		t.Errorf("Opus after PCMU: payload type %d, codec %s, bare %v; want 111, Opus, bare", h.pt, remote.Codec().MimeType, tr.bare)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("packet %d follows %d: lost or reordered", seqs[i], seqs[i-1])
		}
	}
	// Every packet handed over was read from the buffer, and counted,
	// once: by PushRTP's reads, or by Pion's peek to make the track (then
	// handed over from Pion's copy, not the buffer).
	if c := counted.Load(); c != int64(len(seqs)) {
		t.Errorf("%d packets counted, want %d (handed over %d to %d)", c, len(seqs), seqs[0], seqs[len(seqs)-1])
	}
	pcmu.PayloadType, pcmu.SequenceNumber = 77, *seq+1
	if raw, err = pcmu.Marshal(); err != nil {
		t.Fatal(err)
	}
	if _, err := bufs.RTP(ssrc).Write(raw); err != nil {
		t.Fatal(err)
	}
	select {
	case h := <-got:
		t.Errorf("a packet of payload type %d handed over, want the track ended", h.pt)
	case err := <-ended:
		if err == nil || err == io.EOF {
			t.Errorf("the track ended with %v, want Pion's error for an unknown payload type", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the track did not end in 10 s after a packet of an unknown payload type")
	}
}

// TestPionTrack_LeaveReadsWhatCameBefore: a real Pion receiver's track
// whose sender sent 25 packets the reader has not read yet when its
// participant leaves (Leave): ReadRTP gives every one of them, then io.EOF
// once nothing more came for leaveQuiet, and Done is closed; a reader
// blocked in ReadRTP then is woken. (End, what a DELETE did, gives io.EOF
// at once: the 25 packets are lost.)
func TestPionTrack_LeaveReadsWhatCameBefore(t *testing.T) {
	_, _, write, remote, _, seq := pionPair(t, nil)
	tr := NewPionTrack(remote, nil)
	buf := make([]byte, 1500)
	readUntilQuiet(t, tr, buf)
	if err := tr.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	var want []uint16
	for range 25 {
		write()
		want = append(want, *seq)
	}
	tr.Leave() // the 25 are on their way or waiting to be read
	var got []uint16
	var lastAt time.Time
	for {
		n, err := tr.ReadRTP(buf)
		if err == io.EOF {
			break
		}
		var pkt rtp.Packet
		if err != nil || pkt.Unmarshal(buf[:n]) != nil {
			t.Fatalf("read after Leave: %d bytes, %v", n, err)
		}
		got, lastAt = append(got, pkt.SequenceNumber), time.Now()
	}
	if !slices.Equal(got, want) {
		t.Errorf("read %v after Leave, want %v", got, want)
	}
	if d := time.Since(lastAt); d < leaveQuiet {
		t.Errorf("io.EOF %v after the last packet, want leaveQuiet (%v) without one first", d, leaveQuiet)
	}
	select {
	case <-tr.Done():
	default:
		t.Error("Done is not closed after io.EOF")
	}
	// A reader blocked without a packet is woken by Leave.
	_, _, _, remote2, _, _ := pionPair(t, nil)
	tr2 := NewPionTrack(remote2, nil)
	readUntilQuiet(t, tr2, buf)
	_ = tr2.SetReadDeadline(time.Time{})
	ended := make(chan error, 1)
	go func() {
		_, err := tr2.ReadRTP(buf)
		ended <- err
	}()
	tr2.Leave()
	select {
	case err := <-ended:
		if err != io.EOF {
			t.Errorf("blocked read after Leave: %v, want io.EOF", err)
		}
	case <-time.After(leaveMax):
		t.Error("a reader blocked when the participant left was never woken")
	}
}

// readUntilQuiet reads what a track's sender sent so far (until 50 ms pass
// without a packet).
func readUntilQuiet(t *testing.T, tr *PionTrack, buf []byte) {
	t.Helper()
	for {
		if err := tr.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		_, err := tr.ReadRTP(buf)
		if errors.Is(err, ErrReadTimeout) {
			return
		}
		if err != nil {
			t.Fatalf("read with a deadline: %v, want a packet or ErrReadTimeout", err)
		}
	}
}

// TestPionTrack_PushedLeaveEndsOnceQuiet: PushRTP's track ends on Leave as
// ReadRTP's does: every packet received before the leave is pushed, whether
// it came while pushing or waited in the buffer for PushRTP, then the
// track ends with io.EOF once nothing came for leaveQuiet, well before
// leaveMax, and Done is closed. (Before, a pushed track never ended on
// Leave, and a packet that waited for PushRTP failed its read: Leave set
// the read deadline that the buffer's reads obey.)
func TestPionTrack_PushedLeaveEndsOnceQuiet(t *testing.T) {
	for _, held := range []bool{false, true} {
		name := "while pushing"
		if held {
			name = "held until PushRTP"
		}
		t.Run(name, func(t *testing.T) {
			bufs := &PushBuffers{}
			_, _, write, remote, receiver, seq := pionPair(t, bufs)
			ssrc := uint32(remote.SSRC())
			tr := NewPushedPionTrack(remote, PushSenderReports(receiver, bufs.RTCP(ssrc), nil), bufs.RTP(ssrc))
			type pushed struct {
				seq uint16
				at  time.Time
			}
			got := make(chan pushed, 1000)
			ended := make(chan error, 2)
			var pkt rtp.Packet
			push := func() {
				if !tr.PushRTP(make([]byte, 1500), func(b []byte) {
					if err := pkt.Unmarshal(b); err != nil {
						t.Errorf("not RTP: %v", err)
					}
					got <- pushed{pkt.SequenceNumber, time.Now()}
				}, func(err error) { ended <- err }) {
					t.Fatal("PushRTP: the track does not push")
				}
			}
			if !held {
				push()
			}
			// What pionPair's packets left in the buffer: not one per packet
			// it wrote, since Pion drops a packet written before the
			// sender's SRTP is ready (srtpWriterFuture), as under load the
			// first ones are. Nothing reads the buffer until PushRTP, so
			// the count only grows.
			before := bufs.RTP(ssrc).pending.Load()
			first := *seq + 1
			for range 25 {
				write()
			}
			last := *seq
			if held {
				// Every packet sent from here waits in the buffer.
				want := before + int32(last-first+1)
				for wait := time.Now(); bufs.RTP(ssrc).pending.Load() < want; {
					if time.Since(wait) > 10*time.Second {
						t.Fatalf("%d packets held, want %d (%d before the %d sent)", bufs.RTP(ssrc).pending.Load(), want, before, last-first+1)
					}
					time.Sleep(time.Millisecond) // no event to wait for: the buffer counts
				}
			}
			tr.Leave()
			left := time.Now()
			if held {
				push()
			}
			var lastAt time.Time
			var seqs []uint16
			timeout := time.After(leaveMax)
			for {
				select {
				case p := <-got:
					seqs, lastAt = append(seqs, p.seq), p.at
					continue
				case err := <-ended:
					end := time.Now()
					for len(got) > 0 {
						p := <-got
						seqs, lastAt = append(seqs, p.seq), p.at
					}
					if err != io.EOF {
						t.Errorf("the track ended with %v, want io.EOF", err)
					}
					if i := slices.Index(seqs, first); i < 0 || seqs[len(seqs)-1] != last || len(seqs)-i != int(last-first+1) {
						t.Errorf("pushed %v, want every packet from %d to %d (sent before Leave)", seqs, first, last)
					}
					if d := end.Sub(lastAt); d < leaveQuiet {
						t.Errorf("ended %v after the last packet, want leaveQuiet (%v) without one first", d, leaveQuiet)
					}
					t.Logf("ended %v after Leave, %v after the last packet", end.Sub(left), end.Sub(lastAt))
				case <-timeout:
					t.Fatalf("the track did not end in leaveMax (%v) after Leave; %d packets pushed", leaveMax, len(seqs))
				}
				break
			}
			select {
			case <-tr.Done():
			case <-time.After(time.Second):
				t.Error("Done is not closed once the track ended")
			}
			select {
			case err := <-ended:
				t.Errorf("end called twice (%v)", err)
			default:
			}
		})
	}
}

// BenchmarkPionTrack_SenderReport: the look-up of the track's latest sender
// report that the mix pipeline makes at every packet (a real Pion pair).
func BenchmarkPionTrack_SenderReport(b *testing.B) {
	bufs := &PushBuffers{}
	_, _, _, remote, receiver, _ := pionPairWith(b, loopbackAPI(bufs))
	tr := NewPushedPionTrack(remote, PushSenderReports(receiver, bufs.RTCP(uint32(remote.SSRC())), nil), bufs.RTP(uint32(remote.SSRC())))
	b.ReportAllocs()
	for b.Loop() {
		tr.SenderReport()
	}
}
