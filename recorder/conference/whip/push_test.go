package whip

import (
	"context"
	"encoding/binary"
	"io"
	"net/http/httptest"
	"slices"
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

// leaveMax bounds how long a track that left reads on (conference's
// leaveMax).
const leaveMax = 10 * time.Second

// TestAdapter_TrackPushesEveryPacketInOrder: a real Pion publisher sends
// 400 Opus packets 2 ms apart over WHIP; the track's reader starts after the
// 200th and calls PushRTP: the endpoint's track (its connection's
// PushBuffers) hands over those Pion held, then each packet as srtp
// decrypts it: every packet once, in order; the publisher's sender reports
// come pushed too; ending the session ends the track with io.EOF, once.
// Direct: the same with the UDP mux decrypting the audio itself
// (Settings.DirectAudio): the packets after the track came are every one
// handed over by the mux's reader (DirectPackets), none by srtp.
func TestAdapter_TrackPushesEveryPacketInOrder(t *testing.T) {
	t.Run("pion", func(t *testing.T) { testTrackPushes(t, Settings{LoopbackOnly: true, UDP4Only: true}) })
	t.Run("direct", func(t *testing.T) {
		testTrackPushes(t, Settings{LoopbackOnly: true, UDP4Only: true, UDPMux: "127.0.0.1:0", DirectAudio: true})
	})
}

func testTrackPushes(t *testing.T, settings Settings) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, _, ct, write, seqp := publishOpus(ctx, t, settings)
	direct0 := DirectPackets()
	seq := func() uint16 { return *seqp }
	pusher, ok := ct.Reader.(conference.RTPPusher)
	if !ok {
		t.Fatalf("the track's reader %T does not push", ct.Reader)
	}
	every := time.NewTicker(2 * time.Millisecond)
	defer every.Stop()
	first := seq() + 1
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
	for len(got) == 0 || got[len(got)-1] != seq() {
		select {
		case s := <-seqs:
			got = append(got, s)
		case <-ctx.Done():
			t.Fatalf("packet %d not handed over in 30 s (got %d packets)", seq(), len(got))
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
	if direct := DirectPackets() - direct0; settings.DirectAudio && direct != 400 {
		t.Errorf("the UDP mux handed over %d of the 400 packets sent after the track came, want every one", direct)
	} else if !settings.DirectAudio && direct != 0 {
		t.Errorf("the UDP mux handed over %d packets without DirectAudio", direct)
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

// TestAdapter_ReplayIsDropped: a real Pion publisher sends packets 1 to 30
// over WHIP, then packet 25 again (the same SRTP packet index: a replay),
// then 31 to 40: the track hands over each once, in order, as srtp's
// replay detector would have it (on Pion's path, the stream's buffer decides
// for it: replay.go). The packet before 20, never sent until after 30, is
// not a replay and is handed over. Direct: the same through the UDP mux's
// own decryption.
func TestAdapter_ReplayIsDropped(t *testing.T) {
	t.Run("pion", func(t *testing.T) { testReplayDropped(t, Settings{LoopbackOnly: true, UDP4Only: true}) })
	t.Run("direct", func(t *testing.T) {
		testReplayDropped(t, Settings{LoopbackOnly: true, UDP4Only: true, UDPMux: "127.0.0.1:0", DirectAudio: true})
	})
}

func testReplayDropped(t *testing.T, settings Settings) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _, ct, write, seqp := publishOpus(ctx, t, settings)
	seqs := make(chan uint16, 1000)
	var pkt rtp.Packet
	if !ct.Reader.(conference.RTPPusher).PushRTP(make([]byte, 1500), func(b []byte) {
		if err := pkt.Unmarshal(b); err != nil {
			t.Errorf("not RTP: %v", err)
		}
		seqs <- pkt.SequenceNumber
	}, func(error) {}) {
		t.Fatal("PushRTP: the track does not push")
	}
	// Packets from base+1: the publisher's writes rewind and replay by
	// setting its sequence number.
	base := *seqp
	send := func(n uint16) {
		*seqp = base + n - 1
		write()
	}
	for n := uint16(1); n <= 30; n++ {
		if n != 19 {
			send(n)
		}
	}
	send(19)
	send(25)
	for n := uint16(31); n <= 40; n++ {
		send(n)
	}
	var got []uint16
	for len(got) == 0 || got[len(got)-1] != 40 {
		select {
		case s := <-seqs:
			if int16(s-base) > 0 {
				got = append(got, s-base)
			}
		case <-ctx.Done():
			t.Fatalf("packet 40 not handed over in 30 s: got %v", got)
		}
	}
	var want []uint16
	for n := uint16(1); n <= 40; n++ {
		if n != 19 {
			want = append(want, n)
		}
		if n == 30 {
			want = append(want, 19)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("handed over %v, want %v (25 once)", got, want)
	}
}

// publishOpus starts a WHIP endpoint with settings and a real Pion
// publisher of one Opus track to it, and returns the endpoint, the
// publication, the endpoint's track (unread), a write of the publisher's
// next packet and its sequence number (advanced by each write). Until the
// endpoint has the track, the publisher sends a packet every 20 ms.
func publishOpus(ctx context.Context, t testing.TB, settings Settings) (a *Adapter, pub *Publication, ct *conference.Track, write func(), seq *uint16) {
	t.Helper()
	recvAPI, audioAPI, closeRecv, err := NewAPIs(settings)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeRecv() })
	a, err = New(Options{API: recvAPI, AudioAPI: audioAPI, Authorize: func(string, Publish) (string, error) { return "org", nil }})
	if err != nil {
		t.Fatal(err)
	}
	tracks := make(trackSink, 1)
	a.Listen(func(string, string) conference.Sink { return tracks })
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { a.Close() })
	api, closeFn, err := NewAPI(Settings{LoopbackOnly: true, UDP4Only: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeFn() })
	local, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "a", "s")
	if err != nil {
		t.Fatal(err)
	}
	pub, err = (&Client{API: api, Token: "k"}).Publish(ctx, Endpoint(srv.URL, "room", "u", "MIC"), local)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.PC.Close() })
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	seq = new(uint16)
	// Each packet is stamped with when it is written (48 kHz from the first),
	// whatever the pace of the writes (every 2 ms in the tests): a sender
	// report maps the stamps to the publisher's clock as Pion extrapolates
	// them from its last write, and a track that left ends at a packet that
	// report dates a second after the leave (PionTrack.sentAfter). Stamped
	// 20 ms apart and written 2 ms apart, the packets after a report that
	// came during the writes looked sent up to seconds later than they were.
	t0 := time.Now()
	write = func() {
		*seq++
		ts := uint32(time.Since(t0) * 48000 / time.Second)
		if err := local.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: *seq, Timestamp: ts}, Payload: []byte{0xfc, 0xff, 0xfe}}); err != nil {
			t.Fatal(err)
		}
	}
	for ct == nil {
		select {
		case ct = <-tracks:
		case <-time.After(20 * time.Millisecond):
			write()
		case <-ctx.Done():
			t.Fatal("no track in time")
		}
	}
	return a, pub, ct, write, seq
}

// BenchmarkAdapter_PushReadBack: what a WHIP track costs per packet from
// srtp's write of it (decrypted) to its consumer: the PushBuffer's
// hand-over, the track's read (through Pion's TrackRemote and its
// interceptors, or bare), its receipt, to a consumer that discards. A real
// publisher and endpoint; the packets are written to the stream's buffer as
// srtp writes them (a receiver report is due once a second: about none
// here, one per 50 packets of a real stream).
func BenchmarkAdapter_PushReadBack(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	a, pub, ct, _, seq := publishOpus(ctx, b, Settings{LoopbackOnly: true, UDP4Only: true})
	ssrc := uint32(pub.PC.GetSenders()[0].GetParameters().Encodings[0].SSRC)
	var buf *conference.PushBuffer
	a.mu.Lock()
	for _, s := range a.sess {
		buf = s.bufs.RTP(ssrc)
	}
	a.mu.Unlock()
	handed := 0
	if !ct.Reader.(conference.RTPPusher).PushRTP(make([]byte, 1500), func([]byte) { handed++ }, func(error) {}) {
		b.Fatal("PushRTP: the track does not push")
	}
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SSRC: ssrc}, Payload: make([]byte, 80)}
	raw, err := p.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	next := *seq
	b.ReportAllocs()
	for b.Loop() {
		next++
		binary.BigEndian.PutUint16(raw[2:4], next)
		binary.BigEndian.PutUint32(raw[4:8], uint32(next)*960)
		if _, err := buf.Write(raw); err != nil {
			b.Fatal(err)
		}
	}
	if handed == 0 {
		b.Fatal("nothing handed over")
	}
}

// TestAdapter_CloseWithoutDeleteIsALeave: a real Pion publisher closes its
// PeerConnection without a DELETE (its DTLS close_notify) while the
// track's reader is behind: the session ends at once, and the track, as
// after a DELETE, hands over every packet sent before the close, then ends
// with io.EOF once quiet: long before ICE would fail (25-30 s), within
// leaveMax. With a socket per connection and with the UDP mux.
func TestAdapter_CloseWithoutDeleteIsALeave(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings Settings
	}{
		{"socket per connection", Settings{LoopbackOnly: true, UDP4Only: true}},
		{"UDP mux", Settings{LoopbackOnly: true, UDP4Only: true, UDPMux: "127.0.0.1:0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			a, pub, ct, write, seq := publishOpus(ctx, t, tc.settings)
			pusher, ok := ct.Reader.(conference.RTPPusher)
			if !ok {
				t.Fatalf("the track's reader %T does not push", ct.Reader)
			}
			every := time.NewTicker(2 * time.Millisecond)
			defer every.Stop()
			first := *seq + 1
			for range 100 {
				<-every.C
				write()
			}
			last := *seq
			// The reader is behind: it starts after the close.
			if err := pub.PC.Close(); err != nil {
				t.Fatal(err)
			}
			closed := time.Now()
			for a.Sessions() != 0 {
				select {
				case <-every.C:
				case <-ctx.Done():
					t.Fatal("the session did not end after the publisher's close")
				}
			}
			t.Logf("session ended %v after the close", time.Since(closed))
			seqs := make(chan uint16, 1000)
			ended := make(chan error, 2)
			var pkt rtp.Packet
			pusher.PushRTP(make([]byte, 1500), func(b []byte) {
				if err := pkt.Unmarshal(b); err != nil {
					t.Errorf("not RTP: %v", err)
				}
				seqs <- pkt.SequenceNumber
			}, func(err error) { ended <- err })
			select {
			case err := <-ended:
				if err != io.EOF {
					t.Errorf("the track ended with %v, want io.EOF", err)
				}
				t.Logf("track ended %v after the close", time.Since(closed))
			case <-time.After(leaveMax):
				t.Fatalf("the track did not end in %v after the publisher closed", leaveMax)
			}
			var got []uint16
			for len(seqs) > 0 {
				got = append(got, <-seqs)
			}
			if i := slices.Index(got, first); i < 0 || got[len(got)-1] != last || len(got)-i != int(last-first+1) {
				t.Errorf("handed over %v, want every packet from %d to %d (sent before the close)", got, first, last)
			}
		})
	}
}
