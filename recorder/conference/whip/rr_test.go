package whip

import (
	"context"
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// The statistics of RFC 3550 A.3 and A.8: loss over a gap, reordering,
// sequence number wrap, jitter, and LSR/DLSR from the last sender report.
func TestReceiverReports_Statistics(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	at := func(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }

	// 100 packets from 65500 (wrapping at 65535), 20 ms apart at 48 kHz,
	// 10 lost, two swapped; then a second interval of 50 with 5 lost.
	s := &rrStream{ssrc: 7, clockRate: 48000}
	seqs := []uint16{}
	for i := range 100 {
		if i >= 40 && i < 50 {
			continue
		}
		seqs = append(seqs, uint16(65500+i))
	}
	seqs[60], seqs[61] = seqs[61], seqs[60]
	for _, q := range seqs {
		i := int(q - 65500)
		s.packet(q, uint32(i*960), at(float64(i*20)))
	}
	r := s.report(at(2000)).Reports[0]
	if r.SSRC != 7 || r.TotalLost != 10 || r.LastSequenceNumber != 65536+99-36 || r.FractionLost != 10*256/100 {
		t.Errorf("first report: %+v, want SSRC 7, 10 lost of 100 (fraction %d), last sequence %d", r, 10*256/100, 65536+99-36)
	}
	if r.Jitter != 0 {
		t.Errorf("jitter %d with packets exactly on time, want 0", r.Jitter)
	}
	for i := 100; i < 150; i++ {
		if i%10 == 0 {
			continue
		}
		s.packet(uint16(65500+i), uint32(i*960), at(float64(i*20)))
	}
	r = s.report(at(3000)).Reports[0]
	if r.TotalLost != 15 || r.FractionLost != 5*256/50 {
		t.Errorf("second report: %+v, want 15 lost in all, fraction %d", r, 5*256/50)
	}

	// Jitter: arrivals alternately 5 ms early and late converge near 10 ms
	// (480 timestamp units) of transit difference.
	j := &rrStream{clockRate: 48000}
	for i := range 500 {
		off := 5.0
		if i%2 == 1 {
			off = -5
		}
		j.packet(uint16(i), uint32(i*960), at(float64(i*20)+off))
	}
	if got := j.report(at(10_100)).Reports[0].Jitter; math.Abs(float64(got)-480) > 30 {
		t.Errorf("jitter %d timestamp units, want about 480 (10 ms at 48 kHz)", got)
	}

	// A sender report in a compound packet (after a receiver report) gives
	// LSR, the middle 32 bits of its NTP time, and DLSR since it arrived.
	ri := &rrInterceptor{}
	ri.streams.Store(uint32(7), s)
	sr, err := rtcp.Marshal([]rtcp.Packet{
		&rtcp.ReceiverReport{SSRC: 9},
		&rtcp.SenderReport{SSRC: 7, NTPTime: 0x1122334455667788, RTPTime: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	ri.senderReports(sr, at(3000))
	r = s.report(at(3500)).Reports[0]
	if r.LastSenderReport != 0x33445566 || r.Delay != 65536/2 {
		t.Errorf("LSR %#x, DLSR %d; want 0x33445566 and %d (0.5 s)", r.LastSenderReport, r.Delay, 65536/2)
	}
}

// Counting a packet (as its stream's buffer returns it) costs no allocation
// and no report until one is due; the report is written to the
// connection's RTCP writer. The stream's reader is Pion's own: no
// interceptor reads the stream.
func TestReceiverReports_CountAllocatesNothing(t *testing.T) {
	ri := &rrInterceptor{}
	var written []rtcp.Packet
	ri.BindRTCPWriter(interceptor.RTCPWriterFunc(func(p []rtcp.Packet, _ interceptor.Attributes) (int, error) {
		written = append(written, p...)
		return 0, nil
	}))
	count := ri.counter(5)
	pkt := make([]byte, 172)
	pkt[0] = 0x80
	count(pkt) // before the stream is bound: counts nowhere
	reader := &srtpReader{}
	if got := ri.BindRemoteStream(&interceptor.StreamInfo{SSRC: 5, ClockRate: 8000}, reader); got != interceptor.RTPReader(reader) {
		t.Errorf("BindRemoteStream returns %T, want the stream's reader itself", got)
	}
	seq := uint16(0)
	if n := testing.AllocsPerRun(1000, func() {
		seq++
		binary.BigEndian.PutUint16(pkt[2:4], seq)
		binary.BigEndian.PutUint32(pkt[4:8], uint32(seq)*160)
		count(pkt)
	}); n != 0 {
		t.Errorf("%.1f allocations per packet, want 0", n)
	}
	if len(written) != 0 {
		t.Errorf("%d reports within a second of the first packet, want none", len(written))
	}
	ri.streams.Range(func(_, v any) bool {
		v.(*rrStream).lastReport = time.Now().Add(-rrInterval)
		return true
	})
	seq++
	binary.BigEndian.PutUint16(pkt[2:4], seq)
	count(pkt)
	if len(written) != 1 {
		t.Fatalf("%d reports once one is due, want 1", len(written))
	}
	if rr := written[0].(*rtcp.ReceiverReport).Reports[0]; rr.SSRC != 5 || rr.TotalLost != 0 || rr.LastSequenceNumber != uint32(seq) {
		t.Errorf("report %+v, want SSRC 5, none lost, last sequence %d", rr, seq)
	}
}

// An audio stream gets a report every 5 s, as libwebrtc's receivers send
// them for audio; a video stream every second.
func TestReceiverReports_AudioEveryFiveSeconds(t *testing.T) {
	ri := &rrInterceptor{}
	reports := map[uint32]int{}
	ri.BindRTCPWriter(interceptor.RTCPWriterFunc(func(p []rtcp.Packet, _ interceptor.Attributes) (int, error) {
		for _, r := range p[0].(*rtcp.ReceiverReport).Reports {
			reports[r.SSRC]++
		}
		return 0, nil
	}))
	ri.BindRemoteStream(&interceptor.StreamInfo{SSRC: 1, ClockRate: 48000, MimeType: "audio/opus"}, &srtpReader{})
	ri.BindRemoteStream(&interceptor.StreamInfo{SSRC: 2, ClockRate: 90000, MimeType: "video/VP8"}, &srtpReader{})
	pkt := make([]byte, 100)
	pkt[0] = 0x80
	audio, video := ri.counter(1), ri.counter(2)
	seq := uint16(0)
	both := func(lastReport time.Duration) {
		for _, ssrc := range []uint32{1, 2} {
			if v, ok := ri.streams.Load(ssrc); ok && lastReport != 0 {
				v.(*rrStream).lastReport = time.Now().Add(-lastReport)
			}
		}
		seq++
		binary.BigEndian.PutUint16(pkt[2:4], seq)
		audio(pkt)
		video(pkt)
	}
	both(0) // the first packets: no report
	both(1500 * time.Millisecond)
	if reports[1] != 0 || reports[2] != 1 {
		t.Errorf("1.5 s after the last report: audio %d, video %d reports; want 0 and 1", reports[1], reports[2])
	}
	both(5 * time.Second)
	if reports[1] != 1 || reports[2] != 2 {
		t.Errorf("5 s after the last report: audio %d, video %d reports in all; want 1 and 2", reports[1], reports[2])
	}
}

// srtpReader stands for Pion's reader of a stream.
type srtpReader struct{}

func (*srtpReader) Read(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
	return 0, a, nil
}

// A real Pion publisher hears the WHIP endpoint's receiver reports, with the
// packets it left out counted lost.
func TestReceiverReports_ReachThePublisher(t *testing.T) {
	_, srv, _ := newEndpoint(t)
	api, closeFn, _ := NewAPI(Settings{LoopbackOnly: true, UDP4Only: true})
	defer closeFn()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "a", "s")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := (&Client{API: api, Token: "k1"}).Publish(ctx, Endpoint(srv.URL, "rr", "u", "MIC"), track)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(context.Background())
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	sender := pub.PC.GetSenders()[0]
	ssrc := uint32(sender.GetParameters().Encodings[0].SSRC)
	reports := make(chan rtcp.ReceptionReport, 16)
	go func() {
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if rr, ok := p.(*rtcp.ReceiverReport); ok {
					for _, r := range rr.Reports {
						if r.SSRC == ssrc {
							reports <- r
						}
					}
				}
			}
		}
	}()
	// Packets every 20 ms, sequence numbers 1000 on, 1030–1039 never sent,
	// until a report counts the ten lost after them.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for seq := uint16(1000); ; seq++ {
		select {
		case r := <-reports:
			t.Logf("receiver report: %+v", r)
			if r.LastSequenceNumber >= 1040 {
				if r.TotalLost != 10 {
					t.Errorf("report after the gap counts %d lost, want 10: %+v", r.TotalLost, r)
				}
				return
			}
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("no receiver report after the gap")
		}
		if seq >= 1030 && seq < 1040 {
			continue
		}
		p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 160}, Payload: make([]byte, 160)}
		if err := track.WriteRTP(p); err != nil {
			t.Fatal(err)
		}
	}
}
